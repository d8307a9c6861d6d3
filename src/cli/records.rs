//! `akte show`, `akte history`, `akte cat`, `akte amend`, `akte link`.

use super::json_line;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Args;
use futures::StreamExt;

use super::{import, parse_date, parties};
use crate::archive::{Amendment, Archive, NewContent};
use crate::record::RecordRevision;

#[derive(Debug, Args)]
pub struct AmendArgs {
    id: String,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    class: Option<String>,
    #[arg(long, value_parser = parse_date)]
    date: Option<NaiveDate>,
    /// Extend retention to this date (it can never be shortened).
    #[arg(long, value_parser = parse_date)]
    retain_until: Option<NaiveDate>,
    /// A file whose bytes become the new content version.
    #[arg(long)]
    content: Option<PathBuf>,
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    record: String,
    #[arg(long = "party")]
    parties: Vec<String>,
    /// The parties' role in this record.
    #[arg(long, default_value = "subject")]
    role: String,
    #[arg(long = "case")]
    cases: Vec<String>,
    #[arg(long)]
    remove: bool,
    #[arg(long)]
    reason: Option<String>,
}

pub(super) async fn show(archive: Archive, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let mut r = archive.latest(id).await?;
    // The holds in force, however placed (party, case, class), not only the record's.
    r.holds = crate::service::Services::new(archive.clone())
        .holds_in_force(&r)
        .await?;
    print_revision(&r, json)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn history(archive: Archive, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let revs = archive.history(id).await?;
    if json {
        for r in &revs {
            json_line(r)?;
        }
    } else {
        for r in &revs {
            outln!(
                "rev {}  {}  {}  {}  content v{} sha256:{}{}",
                r.rev,
                r.revised_at.format("%Y-%m-%d %H:%M:%S"),
                r.actor,
                r.change,
                r.content.version,
                r.content.sha256,
                r.reason
                    .as_ref()
                    .map(|x| format!("  reason: {x}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cat(archive: Archive, id: &str, rev: Option<u32>) -> anyhow::Result<ExitCode> {
    let (_, mut stream) = archive.open_content(id, rev, None).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn amend(
    archive: Archive,
    actor: &str,
    json: bool,
    a: AmendArgs,
) -> anyhow::Result<ExitCode> {
    let AmendArgs {
        id,
        title,
        class,
        date,
        retain_until,
        content,
        reason,
    } = a;
    let mut last = None;
    if let Some(path) = content {
        let file = crate::store::content::Content::file(&path)?;
        let meta = NewContent {
            file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            reason: reason.clone(),
            ..Default::default()
        };
        let svc = import::pipeline(archive.clone(), None).await?;
        last = Some(svc.new_content(actor, &id, file, meta).await?);
    }
    if title.is_some() || class.is_some() || date.is_some() || retain_until.is_some() {
        let a = Amendment {
            title,
            class,
            document_date: date,
            retain_until,
            reason,
            base_rev: None,
        };
        let new_class = a.class.clone();
        let r = archive.amend(actor, &id, a).await?;
        if let Some(class) = new_class {
            // A record's retention never shortens (DESIGN §2.4); say so when the new class
            // alone would keep it for less.
            let trigger = r.document_date.unwrap_or(r.archived_at.date_naive());
            let own = archive.catalogue().compute(&class, trigger);
            if own.retain_until < r.retention.retain_until {
                eprintln!(
                    "akte: retention stays until {} ({}): the class {class} alone keeps until {}, \
                     and a record's retention never shortens",
                    r.retention.retain_until, r.retention.policy, own.retain_until
                );
            }
        }
        last = Some(r);
    }
    let Some(r) = last else {
        anyhow::bail!(
            "nothing to amend: give --title, --class, --date, --retain-until or --content"
        );
    };
    print_revision(&r, json)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn link(
    archive: Archive,
    actor: &str,
    json: bool,
    a: LinkArgs,
) -> anyhow::Result<ExitCode> {
    let LinkArgs {
        record,
        parties: ps,
        role,
        cases,
        remove,
        reason,
    } = a;
    let svc = crate::service::Services::new(archive);
    parties::link(&svc, actor, json, record, ps, role, cases, remove, reason).await?;
    Ok(ExitCode::SUCCESS)
}

fn print_revision(r: &RecordRevision, json: bool) -> anyhow::Result<()> {
    if json {
        json_line(r)?;
        return Ok(());
    }
    outln!("id:            {}", r.id);
    outln!(
        "revision:      {} ({} by {} at {})",
        r.rev,
        r.change,
        r.actor,
        r.revised_at.to_rfc3339()
    );
    outln!("class:         {}", r.class);
    outln!("title:         {}", r.title);
    if let Some(d) = r.document_date {
        outln!("document date: {d}");
    }
    outln!("archived at:   {}", r.archived_at.to_rfc3339());
    outln!(
        "content:       v{} sha256:{} {} bytes {}{}",
        r.content.version,
        r.content.sha256,
        r.content.size,
        r.content.media_type,
        r.content
            .file_name
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    outln!(
        "retention:     until {} ({}, {} years from {}; {})",
        r.retention.retain_until,
        r.retention.policy,
        r.retention.period_years,
        r.retention.start,
        r.retention.legal_basis
    );
    for p in &r.parties {
        outln!("party:         {} as {}", p.party, p.role);
    }
    Ok(())
}
