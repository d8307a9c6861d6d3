//! `akte mail sync`: the command line of `ingest::imap` (a line per folder, a summary).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::json_line;
use crate::ingest::batch::IngestDefaults;
use crate::ingest::imap::{self, FolderReport};
use crate::record::PartyLink;

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Archive a mailbox over IMAP: every folder (or --folder …), incrementally (UID and
    /// UIDVALIDITY), byte-exact, without marking anything read. A second run archives
    /// only what is new; a run killed midway resumes.
    Sync(SyncArgs),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The server: imaps://host[:port]/ (TLS) or imap://host[:port]/ (plain).
    #[arg(long)]
    imap: String,
    #[arg(long)]
    user: String,
    /// A file holding the password (its first line).
    #[arg(long)]
    password_file: PathBuf,
    /// Only this folder (repeatable; default: every folder).
    #[arg(long = "folder")]
    folders: Vec<String>,
    /// Link every message to this party (repeatable).
    #[arg(long = "party")]
    parties: Vec<String>,
    /// The role of --party.
    #[arg(long, default_value = "subject")]
    role: String,
    /// Extra certificate authority (PEM) for a server certificate no system root signs.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Where the sync remembers each folder's position (default: mail-sync.json under
    /// --data).
    #[arg(long)]
    state: Option<PathBuf>,
}

struct Shown {
    json: bool,
}

impl imap::Progress for Shown {
    fn folder(&self, r: &FolderReport) {
        if self.json {
            let _ = json_line(r);
        } else {
            outln!(
                "{}: {} fetched, {} archived, {} duplicates{} (UIDVALIDITY {}, up to UID {})",
                r.folder,
                r.fetched,
                r.archived,
                r.duplicates,
                if r.rescanned {
                    ", re-scanned: UIDVALIDITY changed"
                } else {
                    ""
                },
                r.uidvalidity,
                r.last_uid
            );
        }
    }
}

pub(super) async fn mail(
    archive: crate::archive::Archive,
    actor: &str,
    json: bool,
    data: &Path,
    cmd: MailCommand,
) -> anyhow::Result<ExitCode> {
    let MailCommand::Sync(a) = cmd;
    let password = imap::read_password(&a.password_file)?;
    let ingest = super::import::pipeline(archive, None).await?;
    let d = IngestDefaults {
        parties: a
            .parties
            .iter()
            .map(|p| PartyLink::given(p, &a.role))
            .collect(),
        ..Default::default()
    };
    ingest.check_defaults(&d).await?;
    let mb = imap::Mailbox {
        url: a.imap,
        user: a.user,
        password,
        folders: a.folders,
        ca: a.ca,
    };
    let state = a.state.unwrap_or_else(|| data.join("mail-sync.json"));
    let reports = imap::sync(&ingest, actor, &mb, &d, &state, &Shown { json }).await?;
    let (fetched, archived, duplicates) = reports.iter().fold((0, 0, 0), |(f, a, d), r| {
        (f + r.fetched, a + r.archived, d + r.duplicates)
    });
    if json {
        json_line(&serde_json::json!({
            "folders": reports.len(),
            "fetched": fetched,
            "archived": archived,
            "duplicates": duplicates,
        }))?;
    } else {
        outln!(
            "{} folders: {fetched} fetched, {archived} archived, {duplicates} duplicates",
            reports.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
