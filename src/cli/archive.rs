//! `akte archive FILE…`: each file a record of its own, through the one ingest pipeline
//! (text extraction in the worker processes, classification rules, e-invoice facts,
//! auto-links) — the same path as an upload through the API.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Args;
use serde::Serialize;

use crate::ingest::batch::{Given, IngestDefaults};
use crate::record::PartyLink;
use crate::store::content::Content;

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Record class (invoice, contract, business-letter, email, …); default: by the
    /// classification rules, else `document`.
    #[arg(long)]
    class: Option<String>,
    #[arg(long)]
    title: Option<String>,
    /// Document date, YYYY-MM-DD.
    #[arg(long, value_parser = super::parse_date)]
    date: Option<NaiveDate>,
    /// Media type, when the guess from name and content would be wrong.
    #[arg(long)]
    media_type: Option<String>,
    /// Link to this party (repeatable).
    #[arg(long = "party")]
    parties: Vec<String>,
    /// The role of --party.
    #[arg(long, default_value = "subject")]
    role: String,
    /// Add to this case (repeatable).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Classification rules (TOML) instead of the shipped ones.
    #[arg(long, env = "AKTE_RULES")]
    rules: Option<PathBuf>,
}

pub async fn archive(
    archive: crate::archive::Archive,
    actor: &str,
    json: bool,
    a: ArchiveArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(d) = a.date {
        archive.check_document_date(d)?;
    }
    let svc = super::import::pipeline(archive, a.rules.as_deref()).await?;
    let d = IngestDefaults {
        class: a.class.clone(),
        parties: a
            .parties
            .iter()
            .map(|p| PartyLink::given(p, &a.role))
            .collect(),
        cases: a.cases.clone(),
        keep_copies: true,
        envelope: None,
        extra: Default::default(),
    };
    let mut failed = 0;
    for f in &a.files {
        // An empty file is kept (byte-exact, as asked), but not without a word: it is
        // usually a mistake, and the record stays for its whole retention period.
        if std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.len() == 0) {
            eprintln!(
                "warning: {} is empty (0 bytes); it is archived as it is — if that was a \
                 mistake, it can only be disposed of once its retention has passed",
                f.display()
            );
        }
        let given = Given {
            title: a.title.clone(),
            document_date: a.date,
            media_type: a.media_type.clone(),
            ..Default::default()
        };
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        let result = match Content::file(f) {
            Ok(content) => {
                svc.archive_document(actor, content, name, given, d.clone())
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok((r, o)) => {
                if json {
                    #[derive(Serialize)]
                    struct Out<'a> {
                        file: String,
                        #[serde(flatten)]
                        a: &'a crate::archive::Archived,
                        class: &'a str,
                        auto_links: &'a [crate::catalog::LinkBrief],
                        #[serde(skip_serializing_if = "Option::is_none")]
                        extraction: Option<&'a str>,
                    }
                    outln!(
                        "{}",
                        serde_json::to_string(&Out {
                            file: f.display().to_string(),
                            a: &r,
                            class: &r.revision.class,
                            auto_links: &o.auto_links,
                            extraction: o.extraction_failed.as_deref(),
                        })?
                    );
                } else {
                    outln!(
                        "{}  {}  sha256:{}  {} bytes  retain until {}{}  {}",
                        r.id,
                        r.revision.class,
                        r.sha256,
                        r.size,
                        r.retain_until,
                        if r.new_blob {
                            ""
                        } else {
                            "  (content already stored)"
                        },
                        f.display()
                    );
                    for l in &o.auto_links {
                        outln!(
                            "  linked to {} as {}: {}",
                            l.party,
                            l.role,
                            l.reason.as_deref().unwrap_or_default()
                        );
                    }
                    if let Some(w) = &o.extraction_failed {
                        outln!("  warning: {w}");
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e}", f.display());
            }
        }
    }
    svc.svc.archive.drain().await;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
