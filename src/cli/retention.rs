//! `akte hold …`, `akte retention eligible`, `akte dispose …`.

use super::json_line;
use chrono::NaiveDate;
use clap::Subcommand;

use super::parse_date;
use crate::disposal;
use crate::disposal::hold::HoldScope;
use crate::service::Services;

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a legal hold.
    Place {
        #[arg(long)]
        name: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        authority: Option<String>,
        #[arg(long = "record")]
        records: Vec<String>,
        #[arg(long)]
        party: Option<String>,
        #[arg(long)]
        case: Option<String>,
        #[arg(long)]
        class: Option<String>,
        #[arg(long, value_parser = parse_date)]
        from: Option<NaiveDate>,
        #[arg(long, value_parser = parse_date)]
        to: Option<NaiveDate>,
    },
    /// Release a legal hold.
    Release {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// List holds.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Records past retention and under no hold.
    Eligible,
    /// Record the event an event-triggered retention waits for (contract end, …).
    Event {
        record: String,
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Recompute every record's retention with the catalogue in force (only extends).
    Recompute,
    /// Print the catalogue in force.
    Catalogue,
    /// The retention audit report.
    Report {
        #[arg(long, default_value = "text", value_parser = ["text", "json", "csv", "html"])]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A party's complete file (GDPR access request), verifiable offline.
    Party {
        party: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Tax-audit data access (GDPdU index.xml + CSV + originals) for a date range.
    Tax {
        #[arg(long, value_parser = parse_date)]
        from: NaiveDate,
        #[arg(long, value_parser = parse_date)]
        to: NaiveDate,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

pub async fn export(svc: &Services, actor: &str, cmd: ExportCommand) -> anyhow::Result<()> {
    use anyhow::Context;
    let (out, what) = match &cmd {
        ExportCommand::Party { out, party } => (out.clone(), format!("party {party}")),
        ExportCommand::Tax { out, from, to } => (out.clone(), format!("tax data {from}..{to}")),
    };
    // Write to a temporary file beside the target and rename: never a half-written export.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| dir.display().to_string())?;
    let file = tmp.reopen().context("temporary file")?;
    match cmd {
        ExportCommand::Party { party, .. } => {
            svc.load().await?;
            crate::export::party(svc, actor, &party, file).await?
        }
        ExportCommand::Tax { from, to, .. } => {
            let n = crate::export::tax(svc, actor, from, to, file).await?;
            if n == 0 {
                eprintln!(
                    "warning: no document is dated {from} to {to}: the export holds an empty \
                     table (belege.csv has its header line only)"
                );
            }
        }
    }
    tmp.persist(&out)
        .with_context(|| out.display().to_string())?;
    let _ = svc
        .archive
        .journal()
        .append(crate::audit::journal::Draft {
            actor: actor.into(),
            action: "export".into(),
            subjects: vec![],
            payload_digest: None,
            detail: Some(what.clone()),
        })
        .await?;
    outln!(
        "exported {what} to {}; check it with: akte verify-export {}",
        out.display(),
        out.display()
    );
    Ok(())
}

pub fn verify_export(
    path: &std::path::Path,
    tsa_trusted: &[rustls_pki_types::CertificateDer<'_>],
    json: bool,
) -> anyhow::Result<bool> {
    use anyhow::Context;
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let c = crate::export::verify_with(f, tsa_trusted)?;
    if json {
        json_line(&c)?;
    } else {
        for p in &c.problems {
            outln!("BROKEN {p}");
        }
        outln!(
            "{}: {} files, {} journal entries, {} revisions, {} originals checked, {} problems",
            if c.problems.is_empty() {
                "OK"
            } else {
                "FAILED"
            },
            c.files,
            c.journal_entries,
            c.revisions,
            c.originals,
            c.problems.len()
        );
        match &c.signed_by {
            Some(k) => outln!(
                "journal segment signed by the archive's key {} (fingerprint {}): compare it with the procedure documentation",
                k,
                crate::audit::signing::fingerprint(k)
            ),
            None => outln!("no signed checkpoint (the archive has no signing key)"),
        }
        if let Some(t) = &c.timestamp {
            outln!(
                "timestamped by {} at {} (serial {}){}",
                t.tsa,
                t.time.to_rfc3339(),
                t.serial,
                if t.trusted {
                    ", a TSA trusted by --tsa-ca"
                } else {
                    "; give --tsa-ca to check that TSA is trusted"
                }
            );
        }
    }
    Ok(c.problems.is_empty())
}

#[derive(Debug, Subcommand)]
pub enum DisposeCommand {
    /// Request the disposal of eligible records.
    Request {
        #[arg(required = true)]
        records: Vec<String>,
        #[arg(long)]
        reason: String,
    },
    /// Approve and execute a request (not by its requester).
    Approve { request: String },
    /// List every request, newest first.
    List,
    /// Show a request; `--html` prints its disposal certificate.
    Show {
        request: String,
        #[arg(long)]
        html: bool,
    },
}

pub async fn hold(svc: &Services, actor: &str, json: bool, cmd: HoldCommand) -> anyhow::Result<()> {
    let holds = match cmd {
        HoldCommand::Place {
            name,
            reason,
            authority,
            records,
            party,
            case,
            class,
            from,
            to,
        } => {
            let scope = match (records.is_empty(), party, case, class) {
                (false, None, None, None) => HoldScope::Records { ids: records },
                (true, Some(id), None, None) => HoldScope::Party { id },
                (true, None, Some(id), None) => HoldScope::Case { id },
                (true, None, None, Some(class)) => HoldScope::Class { class, from, to },
                _ => anyhow::bail!(
                    "name exactly one scope: --record ID…, --party P, --case C or --class C [--from D --to D]"
                ),
            };
            vec![
                svc.holds
                    .place(actor, &name, &reason, authority, scope)
                    .await?,
            ]
        }
        HoldCommand::Release { id, reason } => vec![svc.holds.release(actor, &id, &reason).await?],
        HoldCommand::List => svc.holds.all().await?,
    };
    for h in holds {
        if json {
            outln!(
                "{}",
                serde_json::json!({"id": h.id, "name": h.name, "reason": h.reason, "authority": h.authority, "scope": h.scope, "active": h.active, "placed_at": h.placed_at, "placed_by": h.placed_by, "released_at": h.released_at, "released_by": h.released_by, "release_reason": h.release_reason})
            );
        } else {
            outln!(
                "{}  {}  {}  placed {} by {}  {}",
                h.id,
                if h.active { "active  " } else { "released" },
                h.name,
                h.placed_at.format("%Y-%m-%d"),
                h.placed_by,
                scope_line(&h.scope)
            );
        }
    }
    Ok(())
}

pub async fn retention(
    svc: &Services,
    actor: &str,
    json: bool,
    cmd: RetentionCommand,
) -> anyhow::Result<()> {
    match cmd {
        RetentionCommand::Event {
            record,
            date,
            reason,
        } => {
            let r = svc
                .archive
                .record_event(actor, &record, date, reason)
                .await?;
            if json {
                json_line(&r)?;
            } else {
                outln!(
                    "{}: retained until {} ({})",
                    r.id,
                    r.retention.retain_until,
                    r.retention.legal_basis
                );
            }
        }
        RetentionCommand::Recompute => {
            svc.load().await?;
            let (mut changed, mut total) = (0, 0);
            let mut after: Option<String> = None;
            // Page by page: memory does not grow with the number of records.
            loop {
                let page = svc.catalog.record_ids_after(after.as_deref(), 1000).await;
                let Some(last) = page.last().cloned() else {
                    break;
                };
                after = Some(last);
                for id in page {
                    total += 1;
                    match svc.archive.recompute_retention(actor, &id).await {
                        Ok(Some(r)) => {
                            changed += 1;
                            outln!("{}: retained until {}", r.id, r.retention.retain_until);
                        }
                        Ok(None) | Err(crate::Error::Disposed { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            outln!(
                "{total} records checked against catalogue {}, {changed} extended",
                svc.archive.catalogue().version
            );
        }
        RetentionCommand::Report { format } => {
            use crate::disposal::report::{self, RowFormat};
            let format = if json { "json".to_string() } else { format };
            let streamed = match format.as_str() {
                "json" => Some(RowFormat::Json),
                "csv" => Some(RowFormat::Csv),
                _ => None,
            };
            if let Some(rows) = streamed {
                // Printed as the rows are counted, in one pass: memory independent of the
                // number of records.
                let tally =
                    report::prepare(&svc.archive, &svc.catalog, &svc.holds, &svc.disposals, true)
                        .await?;
                let mut rx =
                    report::spawn_stream(svc.archive.clone(), svc.catalog.clone(), tally, rows);
                while let Some(chunk) = rx.recv().await {
                    use std::io::Write as _;
                    if let Err(e) = std::io::stdout().write_all(&chunk?) {
                        crate::cli::output_failed(e);
                    }
                }
                if rows == RowFormat::Json {
                    outln!();
                }
                return Ok(());
            }
            // The text summary and the HTML page show counts only: no row is kept for them.
            let r = report::build(
                &svc.archive,
                &svc.catalog,
                &svc.holds,
                &svc.disposals,
                false,
            )
            .await?;
            match format.as_str() {
                "html" => out!("{}", report::to_html(&r)),
                _ => {
                    outln!(
                        "retention report {} (catalogue {}): {} records",
                        r.today,
                        r.catalogue,
                        r.records_total
                    );
                    for p in &r.by_policy {
                        outln!(
                            "  {:<22} {:<28} {:>6}  {}",
                            p.class,
                            p.policy,
                            p.records,
                            p.legal_basis
                        );
                    }
                    outln!(
                        "  expiring in 30/90/365 days: {}/{}/{}; eligible now {}; on hold {}; awaiting event {}; without policy {}; disposed {}",
                        r.expiring_30_days,
                        r.expiring_90_days,
                        r.expiring_365_days,
                        r.eligible_now,
                        r.on_hold,
                        r.awaiting_event,
                        r.without_policy,
                        r.disposed
                    );
                    for h in &r.holds {
                        outln!(
                            "  hold {} ({}): {} records",
                            h.name,
                            if h.active { "active" } else { "released" },
                            h.records
                        );
                    }
                    for d in &r.disposals {
                        outln!(
                            "  disposal {} {}: {} records, requested by {}, approved by {}",
                            d.id,
                            d.state,
                            d.records,
                            d.requested_by,
                            d.approved_by.as_deref().unwrap_or("-")
                        );
                    }
                    outln!(
                        "  last verification: {}",
                        r.last_verify.as_deref().unwrap_or("never")
                    );
                }
            }
        }
        RetentionCommand::Catalogue => {
            let c = svc.archive.catalogue();
            if json {
                outln!(
                    "{}",
                    serde_json::json!({"version": c.version, "law": c.law, "default": c.default, "classes": c.classes})
                );
            } else {
                outln!("catalogue {} — {}", c.version, c.law);
                for e in c.classes.values() {
                    outln!(
                        "  {:<26} {:>2} years{}  {}",
                        e.id,
                        e.years,
                        e.event
                            .as_ref()
                            .map(|x| format!(" after {x}"))
                            .unwrap_or_default(),
                        e.basis
                    );
                }
                outln!(
                    "  {:<26} {:>2} years  {}",
                    "(any other class)",
                    c.default.years,
                    c.default.basis
                );
            }
        }
        RetentionCommand::Eligible => {
            let mut after: Option<String> = None;
            loop {
                let page = svc
                    .disposals
                    .eligible(&svc.catalog, after.as_deref(), 1000)
                    .await?;
                let full = page.len() == 1000;
                after = page.last().map(|r| r.id.clone());
                for r in page {
                    if json {
                        outln!(
                            "{}",
                            serde_json::json!({"id": r.id, "class": r.class, "retain_until": r.retention.retain_until, "policy": r.retention.policy})
                        );
                    } else {
                        outln!(
                            "{}  {:<16} retained until {}  {}",
                            r.id,
                            r.class,
                            r.retention.retain_until,
                            r.title
                        );
                    }
                }
                if !full {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Progress of a disposal's execution on the terminal.
struct DisposalBar(indicatif::ProgressBar);

impl DisposalBar {
    fn new(json: bool) -> DisposalBar {
        use std::io::IsTerminal;
        let bar = if json || !std::io::stderr().is_terminal() {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(0)
        };
        DisposalBar(bar)
    }
}

impl disposal::Progress for DisposalBar {
    fn started(&self, total: usize, done: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
    }

    fn record_done(&self) {
        self.0.inc(1);
    }
}

pub async fn dispose(
    svc: &Services,
    actor: &str,
    json: bool,
    cmd: DisposeCommand,
) -> anyhow::Result<()> {
    let d = match cmd {
        DisposeCommand::Request { records, reason } => {
            svc.disposals.request(actor, &records, &reason).await?
        }
        DisposeCommand::Approve { request } => {
            // Approving an approved request resumes its execution where it stopped.
            let approved = svc.disposals.approve_only(actor, &request).await?;
            let bar = DisposalBar::new(json);
            let d = svc.disposals.execute(&approved.id, &bar).await;
            bar.0.finish_and_clear();
            d?
        }
        DisposeCommand::List => {
            for d in svc.disposals.all().await? {
                let (done, _) = svc.disposals.progress(&d).await?;
                if json {
                    let mut v = serde_json::to_value(&d)?;
                    v["records_done"] = done.into();
                    outln!("{v}");
                } else {
                    let n = d.records.len();
                    outln!(
                        "{}  {:?}  {n} record{}  requested by {} at {}{}",
                        d.id,
                        d.state,
                        if n == 1 { "" } else { "s" },
                        d.requested_by,
                        d.requested_at.format("%Y-%m-%d %H:%M"),
                        d.approved_by
                            .as_ref()
                            .map(|a| format!(", approved by {a}"))
                            .unwrap_or_default()
                    );
                }
            }
            return Ok(());
        }
        DisposeCommand::Show { request, html } => {
            let d = svc.disposals.get(&request).await?;
            if html {
                out!("{}", disposal::certificate_html(&d));
                return Ok(());
            }
            d
        }
    };
    let (done, total) = svc.disposals.progress(&d).await?;
    if json {
        let mut v = serde_json::to_value(&d)?;
        v["records_done"] = done.into();
        outln!("{v}");
    } else {
        outln!(
            "{}  {:?}  {} records  requested by {}{}",
            d.id,
            d.state,
            d.records.len(),
            d.requested_by,
            d.approved_by
                .map(|a| format!(", approved by {a}"))
                .unwrap_or_default()
        );
        if d.state == disposal::DisposalState::Approved {
            outln!(
                "  execution: {done} of {total} records disposed so far (run `dispose approve` again, or start the server, to finish)"
            );
        }
        for i in &d.items {
            let n = i.blobs_deleted.len();
            outln!(
                "  {} {} disposed ({n} blob{} deleted)",
                i.record,
                i.class,
                if n == 1 { "" } else { "s" }
            );
        }
    }
    Ok(())
}

/// A hold's scope for people: `party 0192…`, `class invoice 2020-01-01 to 2022-12-31`.
fn scope_line(s: &crate::disposal::hold::HoldScope) -> String {
    use crate::disposal::hold::HoldScope;
    match s {
        HoldScope::Records { ids } => format!("records {}", ids.join(", ")),
        HoldScope::Party { id } => format!("party {id}"),
        HoldScope::Case { id } => format!("case {id}"),
        HoldScope::Class { class, from, to } => {
            let mut out = format!("class {class}");
            if let Some(f) = from {
                out.push_str(&format!(" from {f}"));
            }
            if let Some(t) = to {
                out.push_str(&format!(" to {t}"));
            }
            out
        }
    }
}
