//! `akte import PATH…`: the command line of `ingest::import` (progress bar, summary).

use super::json_line;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::ingest::Ingest;
use crate::ingest::batch::IngestDefaults;
use crate::ingest::import::{self, Progress};
use crate::record::PartyLink;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files, directories (recursively), .eml files, mbox files, Maildir folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Class for everything imported (emails default to `email`).
    #[arg(long)]
    class: Option<String>,
    /// Link everything to this party (repeatable).
    #[arg(long = "party")]
    parties: Vec<String>,
    /// The role of --party.
    #[arg(long, default_value = "subject")]
    role: String,
    /// Add everything to this case (repeatable).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Read and check everything, archive nothing.
    #[arg(long)]
    dry_run: bool,
    /// Classification rules (TOML) instead of the shipped ones
    /// (schemas/classification.toml).
    #[arg(long, env = "AKTE_RULES")]
    rules: Option<PathBuf>,
}

/// A progress bar on a terminal: bytes, MB/s, ETA, items and items/s.
struct Bar {
    bar: ProgressBar,
    started: Instant,
}

/// What the command shows while it imports: a line per item as its batch commits (a
/// JSON line with `--json`), and the progress bar on a terminal.
struct Shown {
    bar: Option<Bar>,
    json: bool,
}

impl Progress for Shown {
    fn total(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.bar.set_length(bytes);
        }
    }
    fn advance(&self, bytes: u64, items: u64) {
        if let Some(b) = &self.bar {
            b.bar.inc(bytes);
            b.bar.set_message(import::rate(items, b.started));
        }
    }
    fn item(&self, i: &import::Imported) {
        let print = || {
            if self.json {
                if let Err(e) = json_line(i) {
                    eprintln!("akte: {e}");
                }
            } else {
                outln!("{}", item_line(i));
            }
        };
        match &self.bar {
            Some(b) => b.bar.suspend(print),
            None => print(),
        }
    }
}

/// `  archived  mail.eml  0193…  +2 attachments, linked to 0192… (customer: sender …)`
fn item_line(i: &import::Imported) -> String {
    let mut notes = Vec::new();
    if !i.attachments.is_empty() {
        let n = i.attachments.len();
        notes.push(format!("+{n} attachment{}", if n == 1 { "" } else { "s" }));
    }
    for l in &i.linked {
        notes.push(format!(
            "linked to {} ({}{})",
            l.party,
            l.role,
            l.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    for m in &i.ambiguous {
        notes.push(format!(
            "not linked: {} names {} parties",
            m.evidence,
            m.parties.len()
        ));
    }
    if !i.related.is_empty() {
        notes.push(format!(
            "same Message-ID as {} (other bytes, kept)",
            i.related.join(", ")
        ));
    }
    format!(
        "  {:<9} {}  {}{}",
        if i.duplicate { "duplicate" } else { "archived" },
        i.item,
        i.id,
        if notes.is_empty() {
            String::new()
        } else {
            format!("  {}", notes.join("; "))
        }
    )
}

/// The ingest pipeline of a command: extraction workers of this binary, the rules of
/// `rules` (else the shipped ones), the catalog loaded.
pub(super) async fn pipeline(
    archive: crate::archive::Archive,
    rules: Option<&std::path::Path>,
) -> anyhow::Result<Ingest> {
    let mut ingest = Ingest::new(super::services(archive))
        .with_extractor(crate::extract::sandbox::Extractor::for_this_binary());
    if let Some(path) = rules {
        let cat = ingest.svc.archive.catalogue().clone();
        let rules = crate::ingest::rules::Rules::load(path, &|c| cat.classes.contains_key(c))?;
        ingest = ingest.with_rules(rules);
    }
    ingest.svc.load().await?;
    Ok(ingest)
}

pub async fn import(
    archive: crate::archive::Archive,
    actor: &str,
    json: bool,
    a: ImportArgs,
) -> anyhow::Result<ExitCode> {
    let svc = pipeline(archive, a.rules.as_deref()).await?;
    let d = IngestDefaults {
        class: a.class.clone(),
        parties: a
            .parties
            .iter()
            .map(|p| PartyLink::given(p, &a.role))
            .collect(),
        cases: a.cases.clone(),
        keep_copies: false,
        envelope: None,
        extra: Default::default(),
    };
    // Checked once here, before anything is written.
    svc.check_defaults(&d).await?;
    // Ctrl-C: the batch in hand is finished (committed or not at all), then the import
    // stops; running it again resumes (everything already archived is a duplicate).
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        if let Ok(s) = ProgressStyle::with_template(
            "import {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        ) {
            b.set_style(s);
        }
        Bar {
            bar: b,
            started: Instant::now(),
        }
    });
    let shown = Shown { bar, json };
    let s = import::run(&svc, actor, &a.paths, &d, a.dry_run, &shown, &stop).await?;
    if let Some(b) = &shown.bar {
        b.bar.finish_and_clear();
    }
    let hard = s.failed > 0;
    if json {
        json_line(&s)?;
    } else {
        // A dry run archives nothing: it says what an import would do.
        let (head, verb, failed) = if s.dry_run {
            (
                "dry run (nothing written):",
                "would be archived",
                "would fail",
            )
        } else {
            ("import:", "archived", "failed (not archived)")
        };
        outln!(
            "{head} {} {verb} (+{} from attachments; {} linked to a party), {} duplicates, \
             {} {failed}, {} warnings, {:.1} MB in {:.1} s",
            s.archived,
            s.attachments,
            s.linked,
            s.duplicates,
            s.failed,
            s.warnings.len(),
            s.bytes as f64 / 1e6,
            s.seconds
        );
        for m in &s.ambiguous {
            outln!("  ambiguous: {}: {} (link it by hand)", m.item, m.reason);
        }
        for f in &s.failures {
            outln!("  failed: {}: {} (not archived)", f.item, f.reason);
        }
        for w in &s.warnings {
            outln!(
                "  warning: {}: {}{}",
                w.item,
                w.reason,
                if s.dry_run { "" } else { " (archived)" }
            );
        }
    }
    if s.interrupted {
        eprintln!("interrupted: run the same import again to resume (nothing is archived twice)");
        return Ok(ExitCode::from(130));
    }
    Ok(if hard {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
