//! `akte journal`, `akte checkpoint`, `akte anchor`, `akte verify`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::archive::Archive;
use crate::verify::{self, Progress};

use super::json_line;

pub(super) async fn journal(
    archive: Archive,
    since: u64,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let entries = archive.journal().entries(since, limit).await?;
    for e in &entries {
        if json {
            json_line(e)?;
        } else {
            let subjects: Vec<String> = e
                .subjects
                .iter()
                .map(|s| match s.rev {
                    Some(r) => format!("{}:{}@{}", s.kind, s.id, r),
                    None => format!("{}:{}", s.kind, s.id),
                })
                .collect();
            outln!(
                "{:>8}  {}  {:<16} {:<20} {}  {}",
                e.seq,
                e.time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                e.actor,
                e.action,
                subjects.join(","),
                &e.hash[..16]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn rotate_signing_key(
    archive: Archive,
    actor: &str,
    json: bool,
    new_key: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use crate::audit::signing::{ROTATE_ACTION, Rotation, Signer, fingerprint};
    let Some(old) = archive.journal().signer() else {
        anyhow::bail!("rotate-signing-key needs the current key: give --signing-key OLD");
    };
    let (new, created) = Signer::load_or_create(new_key)?;
    if new.public_hex() == old.public_hex() {
        anyhow::bail!("the new key is the current key");
    }
    let rotation = Rotation::sign(&old, &new);
    let entry = archive
        .journal()
        .append(crate::audit::journal::Draft {
            actor: actor.to_string(),
            action: ROTATE_ACTION.into(),
            subjects: vec![crate::audit::journal::Subject {
                kind: "signing-key".into(),
                id: fingerprint(new.public_hex()),
                rev: None,
                digest: None,
            }],
            payload_digest: None,
            detail: Some(serde_json::to_string(&rotation)?),
        })
        .await?;
    if json {
        json_line(&serde_json::json!({
            "seq": entry.seq,
            "old": rotation.old,
            "new": rotation.new,
            "created": created,
        }))?;
    } else {
        outln!(
            "entry {}: checkpoints are signed by key {} (fingerprint {}) from now on, handed over by key {} (fingerprint {}); start akte with --signing-key {}",
            entry.seq,
            rotation.new,
            fingerprint(&rotation.new),
            rotation.old,
            fingerprint(&rotation.old),
            new_key.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn checkpoint(archive: Archive, json: bool) -> anyhow::Result<ExitCode> {
    match archive.journal().checkpoint().await? {
        Some(c) if json => outln!("{}", serde_json::to_string(&c)?),
        Some(c) => {
            outln!("checkpoint at entry {}: {}", c.seq, c.hash);
            if let (Some(Ok(s)), Some(_)) = (c.stamp_check(&[]), &c.timestamp) {
                outln!("timestamped by {} at {}", s.tsa, s.time.to_rfc3339());
            }
        }
        None => outln!("the journal is empty; nothing to checkpoint"),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Anchors written by `akte anchor` or the server's `--anchor-to` (repeatable): a file,
    /// or a directory or `s3://bucket/prefix` holding `anchors/*.json`. The journal must
    /// still hold each.
    #[arg(long = "anchor")]
    anchors: Vec<String>,
    /// A public key (hex) trusted to sign checkpoints (repeatable; the --signing-key's own
    /// is trusted too). A checkpoint or anchor signed by any other key is a problem.
    #[arg(long = "trusted-key")]
    trusted_keys: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct AnchorArgs {
    /// Write it to this file (else stdout, unless --to is given).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Also write it (create-only, `anchors/<seq>.json`) to this directory or
    /// `s3://bucket/prefix` — another bucket, with Object Lock (repeatable).
    #[arg(long = "to")]
    to: Vec<String>,
}

/// `akte anchor`: a signed checkpoint of the head, for places outside the store.
pub(super) async fn anchor(
    archive: Archive,
    json: bool,
    a: AnchorArgs,
) -> anyhow::Result<ExitCode> {
    let targets =
        a.to.iter()
            .map(|t| crate::audit::anchor::Target::open(t))
            .collect::<Result<Vec<_>, _>>()?;
    let Some(c) = crate::audit::anchor::anchor_now(archive.journal(), &targets).await? else {
        anyhow::bail!("the journal is empty; nothing to anchor");
    };
    for t in &targets {
        eprintln!("akte: anchored entry {} in {}", c.seq, t.spec);
    }
    let line = serde_json::to_string(&c)?;
    match &a.out {
        None if !targets.is_empty() => {
            if json {
                json_line(&c)?;
            }
        }
        Some(path) => {
            std::fs::write(path, format!("{line}\n"))
                .with_context(|| path.display().to_string())?;
            if json {
                json_line(&c)?;
            } else {
                outln!(
                    "anchored entry {} ({}) in {}; check it later with: akte verify --anchor {}",
                    c.seq,
                    c.hash,
                    path.display(),
                    path.display()
                );
            }
        }
        None => outln!("{line}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The anchors at `src`: one file, or every anchor a directory or bucket holds.
async fn read_anchors(src: &str) -> anyhow::Result<Vec<verify::Anchor>> {
    let path = std::path::Path::new(src);
    if path.is_file() {
        let bytes = std::fs::read(path).with_context(|| src.to_string())?;
        return Ok(vec![verify::Anchor {
            source: src.to_string(),
            checkpoint: crate::audit::anchor::parse(src, &bytes)?,
        }]);
    }
    if !src.contains("://") && !path.is_dir() {
        anyhow::bail!("--anchor {src}: no such file or directory");
    }
    let found = crate::audit::anchor::Target::open(src)?.read_all().await?;
    if found.is_empty() {
        anyhow::bail!("--anchor {src}: holds no anchors (anchors/*.json)");
    }
    Ok(found
        .into_iter()
        .map(|(source, checkpoint)| verify::Anchor { source, checkpoint })
        .collect())
}

pub(super) async fn verify(
    archive: Archive,
    actor: &str,
    json: bool,
    a: VerifyArgs,
    tsa_trusted: Vec<rustls_pki_types::CertificateDer<'static>>,
) -> anyhow::Result<ExitCode> {
    let mut opts = verify::Options {
        trusted_keys: a.trusted_keys,
        tsa_trusted,
        ..Default::default()
    };
    for k in &opts.trusted_keys {
        if hex::decode(k).map(|b| b.len()) != Ok(32) {
            anyhow::bail!("--trusted-key {k}: not an Ed25519 public key (64 hex digits)");
        }
    }
    if let Some(own) = archive.journal().signing_key() {
        opts.trusted_keys.push(own);
    }
    for src in &a.anchors {
        opts.anchors.extend(read_anchors(src).await?);
    }
    let bar: Arc<dyn Progress> = if !json && std::io::stderr().is_terminal() {
        Arc::new(Bar(ProgressBar::new(0)))
    } else {
        Arc::new(verify::NoProgress)
    };
    let report = verify::verify(archive.store(), &opts, bar).await?;
    let ok = report.ok();
    // The run is an audit event (the retention report names the last one), journaled
    // after the check so that it does not count itself. A store this user may only read
    // (a backup copy) is verified all the same.
    let detail = format!(
        "{}: {} objects, {} problems (command line)",
        if ok { "passed" } else { "failed" },
        report.objects,
        report.problems.len()
    );
    let id = archive.clock().new_id().to_string();
    if let Err(e) = archive
        .journal()
        .append(crate::audit::journal::Draft {
            actor: actor.to_string(),
            action: "audit.verify".into(),
            subjects: vec![crate::audit::journal::Subject {
                kind: "verify-job".into(),
                id,
                rev: None,
                digest: None,
            }],
            payload_digest: None,
            detail: Some(detail),
        })
        .await
    {
        eprintln!("akte: the verification could not be journaled: {e}");
    }
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            ok: bool,
            mb_per_s: f64,
            #[serde(flatten)]
            report: &'a verify::Report,
        }
        outln!(
            "{}",
            serde_json::to_string(&Out {
                ok,
                mb_per_s: report.mb_per_s(),
                report: &report
            })?
        );
    } else {
        for p in &report.problems {
            outln!("BROKEN {p}");
        }
        for p in &report.warnings {
            outln!("WARNING {p}");
        }
        outln!(
            "{}: {} objects checked ({} blobs, {} records with {} revisions, {} journal entries), {:.1} MB hashed in {:.2} s ({:.0} MB/s), {} problems, {} crash leftovers recorded by recovery, {} not yet recorded",
            if ok { "OK" } else { "FAILED" },
            report.objects,
            report.blobs,
            report.records,
            report.revisions,
            report.journal_entries,
            report.bytes_hashed as f64 / 1e6,
            report.seconds,
            report.mb_per_s(),
            report.problems.len(),
            report.leftovers_recovered,
            report.warnings.len(),
        );
        if !report.warnings.is_empty() {
            outln!(
                "  (leftovers are invisible to every reader; start the server or run any writing command to record them)"
            );
        }
        if report.checkpoints_signed > 0 || report.anchors > 0 {
            outln!(
                "  {} signed checkpoints and {} anchors checked",
                report.checkpoints_signed,
                report.anchors
            );
        }
        if report.checkpoints_stamped > 0 {
            outln!(
                "  {} RFC 3161 timestamps checked{}",
                report.checkpoints_stamped,
                if opts.tsa_trusted.is_empty() {
                    " against their own signer only (give --tsa-ca to check the TSA is trusted)"
                } else {
                    " against the TSA certificates of --tsa-ca"
                }
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
        if let Ok(style) = ProgressStyle::with_template(
            "verify {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            self.0.set_style(style);
        }
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
