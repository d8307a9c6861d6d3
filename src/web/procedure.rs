//! `akte docs procedure`: the facts of the Verfahrensdokumentation (GoBD procedure
//! documentation) generated from the live configuration, so they cannot drift from it.

use std::fmt::Write as _;

use crate::access::Tokens;
use crate::service::Services;

pub async fn procedure(svc: &Services, html: bool) -> crate::error::Result<String> {
    let a = &svc.archive;
    let cat = a.catalogue();
    let store = a.store().describe().to_string();
    let head = a.journal().head_seq().await?;
    let last = if head > 0 {
        a.journal().read(head).await?
    } else {
        None
    };
    let tokens = Tokens::new(a.store().clone(), a.journal_arc(), a.clock().clone());
    tokens.load().await?;
    let holds = svc.holds.all().await?;
    let now = a.clock().now();
    let backend = if store.starts_with("s3://") {
        "S3-compatible object storage. Write-once is enforced by akte (conditional create, `If-None-Match: *`; no overwrite or delete path except the per-party key store and approved disposals). A storage-level guarantee exists only if the bucket has Object Lock in compliance mode with a default retention — check the bucket configuration; akte does not change it."
    } else if store == "memory://" {
        "In-memory store (tests only; not durable)."
    } else {
        "Local file system. Write-once is enforced by akte (objects created with a hard link that fails if the name exists; no overwrite or delete path except the per-party key store and approved disposals); every write is fsynced with its directory before it is acknowledged. The file system itself offers no WORM guarantee: protect the directory by permissions and back it up."
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Verfahrensdokumentation — technische Fakten / procedure documentation facts\n"
    );
    let _ = writeln!(
        s,
        "Generated {} from the live configuration by akte {}.\n",
        now.to_rfc3339(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        s,
        "## Storage\n\n- Store: `{store}`\n- {backend}\n- Originals are stored byte-exact, addressed by SHA-256; every change is a new revision; history is never rewritten.\n"
    );
    let _ = writeln!(
        s,
        "## Journal\n\n- Entries: {head}; hash-chained (`hash = sha256(prev_hash ‖ canonical entry)`)."
    );
    if let Some(e) = last {
        let _ = writeln!(
            s,
            "- Last entry: #{} at {} — hash `{}` (record it externally as an anchor).",
            e.seq,
            e.time.to_rfc3339(),
            e.hash
        );
    }
    match a.journal().signing_key() {
        Some(k) => {
            let _ = writeln!(
                s,
                "- Checkpoints (every {} entries, on demand, at shutdown) are signed with Ed25519; public key `{k}` (fingerprint `{}`). The private key is kept outside the store. `akte anchor` writes a signed head outside the store; `akte verify --anchor FILE --trusted-key {k}` proves the journal still holds it.",
                crate::audit::journal::CHECKPOINT_EVERY,
                crate::audit::signing::fingerprint(&k)
            );
        }
        None => {
            let _ = writeln!(
                s,
                "- Checkpoints (every {} entries, on demand, at shutdown) are not signed: no signing key is configured (`--signing-key`).",
                crate::audit::journal::CHECKPOINT_EVERY
            );
        }
    }
    match a.journal().tsa() {
        Some(tsa) => {
            let _ = writeln!(
                s,
                "- Checkpoints are timestamped (RFC 3161) by the time-stamping authority `{}`; its tokens must chain to: {}. A token is stored beside its checkpoint (`checkpoints/<seq>.tst`) and carried in anchors and exports; `akte verify --tsa-ca CA.pem` checks it, and so does `openssl ts -verify -token_in -in journal/checkpoint.tst -data journal/checkpoint.txt -CAfile CA.pem` on an export.",
                tsa.url,
                tsa.trusted()
                    .iter()
                    .map(|c| crate::audit::timestamp::describe(c))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        None => {
            let _ = writeln!(
                s,
                "- Checkpoints are not timestamped: no time-stamping authority is configured (`--tsa URL --tsa-ca CA.pem`)."
            );
        }
    }
    let targets = a.journal().anchor_targets();
    if targets.is_empty() {
        let _ = writeln!(
            s,
            "- Anchoring targets: none configured (`akte serve --anchor-to DIR|s3://…`); anchors made by hand with `akte anchor` are kept wherever they were written."
        );
    }
    for t in targets {
        let last = match t.last().await {
            Ok(Some(c)) => format!(
                "last anchor: entry #{} of {} — hash `{}`{}",
                c.seq,
                c.time.to_rfc3339(),
                c.hash,
                if c.timestamp.is_some() {
                    ", timestamped"
                } else {
                    ""
                }
            ),
            Ok(None) => "no anchor written yet".into(),
            Err(e) => format!("not readable now ({e})"),
        };
        let _ = writeln!(s, "- Anchoring target `{}`: {last}.", t.spec);
    }
    let _ = writeln!(
        s,
        "- Reads of records and parties are journaled (batched, flushed on shutdown).\n- `akte verify` re-hashes every object and recomputes the chain.\n"
    );
    let _ = writeln!(
        s,
        "## Retention catalogue `{}`\n\n{}\n\n| class | years | trigger | legal basis |\n|---|---|---|---|",
        cat.version, cat.law
    );
    for e in cat.classes.values() {
        let _ = writeln!(
            s,
            "| {} ({}) | {} | {} | {} |",
            e.id,
            e.label_de.as_deref().unwrap_or(""),
            e.years,
            e.event
                .as_deref()
                .unwrap_or("end of the year of the document date"),
            e.basis
        );
    }
    let _ = writeln!(
        s,
        "| any other class | {} | end of the year of the document date | {} |\n",
        cat.default.years, cat.default.basis
    );
    let _ = writeln!(
        s,
        "Nothing is deleted at expiry. Disposal needs a request and the approval of a different person, no legal hold, and a clock not behind the journal; it leaves a tombstone revision.\n"
    );
    let _ = writeln!(
        s,
        "## Roles and token holders\n\n| name | role | created | by | expires | state |\n|---|---|---|---|---|---|"
    );
    for t in tokens.list().await {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            t.name,
            t.role,
            t.created_at.format("%Y-%m-%d"),
            t.created_by,
            t.expires_at
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "-".into()),
            if t.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            }
        );
    }
    let _ = writeln!(
        s,
        "\nadmin: tokens and configuration; archivist: ingest, amend, holds, disposal requests and approvals; clerk: read, notes, links, cases; auditor: read everything incl. journal and reports, change nothing.\n"
    );
    let active: Vec<&str> = holds
        .iter()
        .filter(|h| h.active)
        .map(|h| h.name.as_str())
        .collect();
    let _ = writeln!(
        s,
        "## Legal holds\n\n{} active{}\n",
        active.len(),
        if active.is_empty() {
            String::new()
        } else {
            format!(": {}", active.join(", "))
        }
    );
    let _ = writeln!(
        s,
        "## Personal data\n\nPersonal fields of parties are sealed with a per-party key (AES-256-GCM) kept under `keys/`; erasure after retention destroys the key (journaled). The key store must be backed up with the archive and kept outside any Object Lock retention."
    );
    if html {
        return Ok(format!(
            "<!doctype html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><title>Verfahrensdokumentation</title></head><body>\n{}\n</body></html>\n",
            markdown_html(&s)
        ));
    }
    Ok(s)
}

/// The small Markdown of [`procedure`] as HTML: headings, paragraphs, lists, tables and
/// `code`; every character of the text escaped first.
pub fn markdown_html(md: &str) -> String {
    fn inline(l: &str) -> String {
        let esc = l
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        // `code` spans: every other backtick opens one.
        let mut out = String::new();
        for (i, part) in esc.split('`').enumerate() {
            if i % 2 == 1 {
                out.push_str("<code>");
                out.push_str(part);
                out.push_str("</code>");
            } else {
                out.push_str(part);
            }
        }
        out
    }
    fn cells(l: &str) -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| inline(c.trim()))
            .collect()
    }
    let mut out = Vec::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(h) = l.strip_prefix("## ") {
            out.push(format!("<h2>{}</h2>", inline(h)));
        } else if let Some(h) = l.strip_prefix("# ") {
            out.push(format!("<h1>{}</h1>", inline(h)));
        } else if l.starts_with('|') {
            let mut rows = Vec::new();
            while i < lines.len() && lines[i].starts_with('|') {
                rows.push(lines[i]);
                i += 1;
            }
            let mut t = String::from("<table>");
            for (n, r) in rows.iter().enumerate() {
                if r.trim_matches(|c| c == '|' || c == '-' || c == ' ')
                    .is_empty()
                {
                    continue;
                }
                let tag = if n == 0 { "th" } else { "td" };
                t.push_str("<tr>");
                for c in cells(r) {
                    t.push_str(&format!("<{tag}>{c}</{tag}>"));
                }
                t.push_str("</tr>");
            }
            t.push_str("</table>");
            out.push(t);
            continue;
        } else if l.starts_with("- ") {
            let mut t = String::from("<ul>");
            while i < lines.len() && lines[i].starts_with("- ") {
                t.push_str(&format!("<li>{}</li>", inline(&lines[i][2..])));
                i += 1;
            }
            t.push_str("</ul>");
            out.push(t);
            continue;
        } else if !l.trim().is_empty() {
            out.push(format!("<p>{}</p>", inline(l)));
        }
        i += 1;
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::markdown_html;

    #[test]
    fn markdown_becomes_escaped_html() {
        let h = markdown_html(
            "# T\n\n- a `x<y`\n- b\n\n| k | v |\n|---|---|\n| 1 | <script> |\n\ntext & more",
        );
        assert!(h.contains("<h1>T</h1>"), "{h}");
        assert!(
            h.contains("<ul><li>a <code>x&lt;y</code></li><li>b</li></ul>"),
            "{h}"
        );
        assert!(h.contains("<table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>&lt;script&gt;</td></tr></table>"), "{h}");
        assert!(h.contains("<p>text &amp; more</p>"), "{h}");
        assert!(!h.contains("<pre>") && !h.contains("|") && !h.contains("<script>"));
    }
}
