//! The `akte` command line: a thin front over the library.
//!
//! Every command takes `--json` for scripts. Errors are one line on stderr and a
//! non-zero exit; `verify` exits 1 when anything is broken.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::archive::{Amendment, Archive, NewContent};
use crate::clock::SystemClock;
use crate::record::RecordRevision;
use crate::store::Store;
use crate::verify::{self, Progress};

mod archive;
mod docs;
mod import;
mod parties;
mod retention;
mod search;

#[derive(Debug, Parser)]
#[command(
    name = "akte",
    version,
    about = "Revision-safe archive for the Kundenakte"
)]
pub struct Cli {
    /// Data directory of the embedded local store.
    #[arg(long, global = true, env = "AKTE_DATA", default_value = "./akte-data")]
    data: PathBuf,
    /// Store URL instead of --data: a path, memory://, or s3://bucket/prefix.
    #[arg(long, global = true, env = "AKTE_STORE")]
    store: Option<String>,
    /// Who is acting (recorded in the journal).
    #[arg(long, global = true, env = "AKTE_ACTOR")]
    actor: Option<String>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// A company retention catalogue (TOML) adding to or overriding the shipped one.
    #[arg(long, global = true, env = "AKTE_CATALOGUE")]
    catalogue: Option<PathBuf>,
    /// Directory of the search index (default: `index` under --data).
    #[arg(long, global = true, env = "AKTE_INDEX")]
    index: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Archive files as new records (text, class, e-invoice facts and links found as
    /// for an upload).
    Archive(archive::ArchiveArgs),
    /// Show the latest revision of a record.
    Show { id: String },
    /// List every revision of a record.
    History { id: String },
    /// Write a record's original content to stdout, byte-exact.
    Cat {
        id: String,
        /// Revision whose content to write (default: latest).
        #[arg(long)]
        rev: Option<u32>,
    },
    /// Amend metadata, or add a new content version, as a new revision.
    Amend {
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
    },
    /// Print journal entries.
    Journal {
        /// Print entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Verify every blob, revision and journal entry (read-only; exit 1 on tampering or
    /// loss, 0 otherwise — crash leftovers are reported as warnings, never repaired here).
    Verify,
    /// Run the HTTP server.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, env = "AKTE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Largest upload in bytes.
        #[arg(long, env = "AKTE_MAX_UPLOAD", default_value_t = 4 * 1024 * 1024 * 1024)]
        max_upload: u64,
        /// Requests per second per token.
        #[arg(long, env = "AKTE_RATE", default_value_t = 500.0)]
        rate: f64,
        /// Upload bytes per second per token.
        #[arg(long, env = "AKTE_UPLOAD_RATE", default_value_t = 256.0 * 1024.0 * 1024.0)]
        upload_rate: f64,
        /// Concurrent requests per token.
        #[arg(long, env = "AKTE_CONCURRENCY", default_value_t = 64)]
        concurrency: usize,
        /// Log format.
        #[arg(long, env = "AKTE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// How often the search index takes up new journal entries (milliseconds).
        #[arg(long, env = "AKTE_INDEX_INTERVAL_MS", default_value_t = 500)]
        index_interval_ms: u64,
        /// A connection must send a whole request head within this many seconds (and
        /// its first byte too: silent connections are closed).
        #[arg(long, env = "AKTE_HEADER_TIMEOUT", default_value_t = 30)]
        header_timeout: u64,
        /// Open connections per client address.
        #[arg(long, env = "AKTE_CONNECTIONS_PER_CLIENT", default_value_t = 128)]
        connections_per_client: usize,
    },
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Parties (business partners) and their file.
    #[command(subcommand)]
    Party(parties::PartyCommand),
    /// Cases (Vorgänge) of a party.
    #[command(subcommand)]
    Case(parties::CaseCommand),
    /// Record a phone note or memo about a party.
    Note {
        #[arg(long)]
        party: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        case: Option<String>,
        /// Duration of the call, e.g. 12m.
        #[arg(long)]
        duration: Option<String>,
        /// memo instead of phone-note.
        #[arg(long)]
        memo: bool,
    },
    /// Legal holds.
    #[command(subcommand)]
    Hold(retention::HoldCommand),
    /// Retention: what is eligible for disposal.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// Four-eyes disposal of records past retention.
    #[command(subcommand)]
    Dispose(retention::DisposeCommand),
    /// Exports an auditor can verify offline.
    #[command(subcommand)]
    Export(retention::ExportCommand),
    /// Generated documentation: `akte docs procedure [--html]`.
    Docs {
        /// What to generate: procedure (Verfahrensdokumentation facts).
        #[arg(value_parser = ["procedure"])]
        what: String,
        #[arg(long)]
        html: bool,
    },
    /// Write a checkpoint of the journal's head now (one is also written every 1000 entries).
    Checkpoint,
    /// Full-text search over the records (or one party's file with --party).
    Search(search::SearchArgs),
    /// Rebuild the search index from the store (stop the server first).
    Reindex,
    /// Import files, directory trees, .eml, mbox and Maildir (idempotent).
    Import(import::ImportArgs),
    /// Internal: a text-extraction worker (stdin/stdout frames; see extract::sandbox).
    #[command(hide = true)]
    ExtractWorker {
        #[arg(long, default_value_t = 1024 * 1024 * 1024)]
        memory_bytes: u64,
    },
    /// Verify an export zip using nothing but its contents.
    VerifyExport { file: PathBuf },
    /// Link a record to parties or cases (or unlink with --remove).
    Link {
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
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once.
    Create {
        /// admin, archivist, clerk or auditor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
        /// Last day the token is valid (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        expires: Option<NaiveDate>,
        /// Restrict the token to this party's file, records and search (repeatable).
        #[arg(long = "party")]
        parties: Vec<String>,
        /// The person the token belongs to (default: the acting person, `--actor`).
        #[arg(long)]
        person: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke { id: String },
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

pub fn main() -> ExitCode {
    // Everything akte creates — data directory, objects, key files, index, temporary
    // files — is for its own user only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    // A worker runs before (and without) the async runtime: one thread, a capped
    // address space.
    if let Command::ExtractWorker { memory_bytes } = cli.command {
        return crate::extract::sandbox::worker_main(memory_bytes);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn default_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// Takes the writer lock and records what a crash left behind, saying so on stderr.
async fn start_writer(archive: &Archive) -> anyhow::Result<crate::audit::recovery::WriterSession> {
    let w = archive.start_writer().await?;
    let r = &w.recovery;
    if !r.recorded.is_empty() {
        eprintln!(
            "akte: recovery: {} write(s) of an interrupted run were never committed; recorded in journal entry {} and set aside",
            r.recorded.len(),
            r.entries
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(w)
}

pub fn open_store(data: &std::path::Path, store: Option<&str>) -> anyhow::Result<Store> {
    let spec = match store {
        Some(s) => s.to_string(),
        None => data.display().to_string(),
    };
    Ok(Store::open(&spec)?)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::VerifyExport { file } = &cli.command {
        let ok = retention::verify_export(file, cli.json)?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Command::Openapi = cli.command {
        print!("{}", crate::api::openapi_json());
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(&cli.data, cli.store.as_deref())?;
    let mut archive = Archive::new(store, Arc::new(SystemClock));
    if let Some(path) = &cli.catalogue {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let company = crate::retention::catalogue::Catalogue::parse(&text)
            .with_context(|| format!("{}: not a retention catalogue", path.display()))?;
        archive = archive.with_catalogue(
            crate::retention::catalogue::Catalogue::shipped().with_company(company),
        );
    }
    let actor = cli.actor.clone().unwrap_or_else(default_actor);
    let json = cli.json;
    // Every writer records crash leftovers first (DESIGN §2.6); `verify` only reads, and
    // the server does this itself.
    let _writer = match cli.command {
        Command::Verify | Command::Serve { .. } => None,
        _ => Some(start_writer(&archive).await?),
    };
    let index_dir = cli.index.clone().unwrap_or_else(|| cli.data.join("index"));
    match cli.command {
        Command::Archive(a) => archive::archive(archive, &actor, json, a).await,
        Command::Show { id } => {
            let r = archive.latest(&id).await?;
            print_revision(&r, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::History { id } => {
            let revs = archive.history(&id).await?;
            if json {
                println!("{}", serde_json::to_string(&revs)?);
            } else {
                for r in &revs {
                    println!(
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
        Command::Cat { id, rev } => {
            let (_, mut stream) = archive.open_content(&id, rev, None).await?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?).context("writing to stdout")?;
            }
            out.flush().context("writing to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Amend {
            id,
            title,
            class,
            date,
            retain_until,
            content,
            reason,
        } => {
            let mut last = None;
            if let Some(path) = content {
                let file = crate::store::content::Content::file(&path)?;
                let meta = NewContent {
                    file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    reason: reason.clone(),
                    ..Default::default()
                };
                let svc = import::pipeline(archive.clone(), None).await?;
                last = Some(svc.new_content(&actor, &id, file, meta).await?);
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
                last = Some(archive.amend(&actor, &id, a).await?);
            }
            let Some(r) = last else {
                anyhow::bail!(
                    "nothing to amend: give --title, --class, --date, --retain-until or --content"
                );
            };
            print_revision(&r, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Journal { since, limit } => {
            let entries = archive.journal().entries(since, limit).await?;
            for e in &entries {
                if json {
                    println!("{}", serde_json::to_string(e)?);
                } else {
                    let subjects: Vec<String> = e
                        .subjects
                        .iter()
                        .map(|s| match s.rev {
                            Some(r) => format!("{}:{}@{}", s.kind, s.id, r),
                            None => format!("{}:{}", s.kind, s.id),
                        })
                        .collect();
                    println!(
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
        Command::Openapi => Ok(ExitCode::SUCCESS),
        Command::Party(cmd) => {
            let svc = crate::service::Services::new(archive);
            parties::party(&svc, &actor, json, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Case(cmd) => {
            let svc = crate::service::Services::new(archive);
            parties::case(&svc, &actor, json, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Note {
            party,
            text,
            case,
            duration,
            memo,
        } => {
            let svc = import::pipeline(archive, None).await?;
            let n = crate::ingest::NoteInput {
                text,
                kind: memo.then(|| "memo".to_string()),
                case,
                duration,
                title: None,
            };
            parties::note(&svc, &actor, json, party, n).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Hold(cmd) => {
            let svc = crate::service::Services::new(archive);
            retention::hold(&svc, &actor, json, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention(cmd) => {
            let svc = crate::service::Services::new(archive);
            retention::retention(&svc, &actor, json, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::VerifyExport { .. } => Ok(ExitCode::SUCCESS),
        Command::Checkpoint => {
            match archive.journal().checkpoint().await? {
                Some(c) if json => println!("{}", serde_json::to_string(&c)?),
                Some(c) => println!("checkpoint at entry {}: {}", c.seq, c.hash),
                None => println!("the journal is empty; nothing to checkpoint"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Search(a) => {
            search::search(crate::service::Services::new(archive), &index_dir, json, a).await
        }
        Command::Import(a) => import::import(archive, &actor, json, a).await,
        Command::ExtractWorker { .. } => Ok(ExitCode::FAILURE),
        Command::Reindex => {
            search::reindex(crate::service::Services::new(archive), &index_dir, json).await
        }
        Command::Docs { what: _, html } => {
            let svc = crate::service::Services::new(archive);
            print!("{}", docs::procedure(&svc, html).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(cmd) => {
            let svc = crate::service::Services::new(archive);
            retention::export(&svc, &actor, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dispose(cmd) => {
            let svc = crate::service::Services::new(archive);
            retention::dispose(&svc, &actor, json, cmd).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Link {
            record,
            parties: ps,
            role,
            cases,
            remove,
            reason,
        } => {
            let svc = crate::service::Services::new(archive);
            parties::link(&svc, &actor, json, record, ps, role, cases, remove, reason).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            listen,
            max_upload,
            rate,
            upload_rate,
            concurrency,
            log_format,
            index_interval_ms,
            header_timeout,
            connections_per_client,
        } => {
            init_logging(&log_format);
            let config = crate::api::ServerConfig {
                max_upload_bytes: max_upload,
                limits: crate::api::auth::LimitConfig {
                    requests_per_second: rate,
                    burst: rate * 2.0,
                    concurrent_requests: concurrency,
                    upload_bytes_per_second: upload_rate,
                },
                index_dir: Some(index_dir.clone()),
                index_interval: std::time::Duration::from_millis(index_interval_ms.max(10)),
                header_timeout: std::time::Duration::from_secs(header_timeout.max(1)),
                max_connections_per_client: connections_per_client.max(1),
                spool_dir: Some(cli.data.join("spool")),
                ..Default::default()
            };
            serve(archive, config, &listen, &cli.data).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(cmd) => {
            let tokens = crate::access::Tokens::new(
                archive.store().clone(),
                archive.journal_arc(),
                archive.clock().clone(),
            );
            tokens.load().await?;
            match cmd {
                TokenCommand::Create {
                    role,
                    name,
                    expires,
                    parties,
                    person,
                } => {
                    let role: crate::access::Role = role.parse()?;
                    let name = name.unwrap_or_else(|| role.to_string());
                    let expires_at = expires.and_then(crate::api::tokens::end_of_day);
                    let person = person.unwrap_or_else(|| {
                        crate::access::person_of(&actor)
                            .trim_start_matches("cli:")
                            .to_string()
                    });
                    let (t, secret) = tokens
                        .create(
                            &actor,
                            crate::access::NewToken {
                                role,
                                name,
                                person,
                                expires_at,
                                secret: None,
                                parties,
                            },
                        )
                        .await?;
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"id": t.id, "name": t.name, "role": t.role, "expires_at": t.expires_at, "token": secret})
                        );
                    } else {
                        println!("{secret}");
                        eprintln!(
                            "token {} ({}, role {}) created; it is shown only now",
                            t.id, t.name, t.role
                        );
                    }
                }
                TokenCommand::List => {
                    for t in tokens.list().await {
                        if json {
                            println!(
                                "{}",
                                serde_json::json!({"id": t.id, "name": t.name, "role": t.role, "created_at": t.created_at, "created_by": t.created_by, "expires_at": t.expires_at, "revoked_at": t.revoked_at})
                            );
                        } else {
                            let state = match (t.revoked_at, t.expires_at) {
                                (Some(r), _) => format!("revoked {}", r.format("%Y-%m-%d")),
                                (None, Some(e)) => {
                                    format!("expires {}", e.format("%Y-%m-%d %H:%M"))
                                }
                                (None, None) => "active".into(),
                            };
                            println!("{}  {:<10} {:<20} {}", t.id, t.role, t.name, state);
                        }
                    }
                }
                TokenCommand::Revoke { id } => {
                    let t = tokens.revoke(&actor, &id).await?;
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"id": t.id, "revoked_at": t.revoked_at})
                        );
                    } else {
                        println!("revoked {} ({})", t.id, t.name);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => {
            let bar: Arc<dyn Progress> = if !json && std::io::stderr().is_terminal() {
                Arc::new(Bar(ProgressBar::new(0)))
            } else {
                Arc::new(verify::NoProgress)
            };
            let report = verify::verify(archive.store(), &verify::Options::default(), bar).await?;
            let ok = report.ok();
            if json {
                #[derive(Serialize)]
                struct Out<'a> {
                    ok: bool,
                    mb_per_s: f64,
                    #[serde(flatten)]
                    report: &'a verify::Report,
                }
                println!(
                    "{}",
                    serde_json::to_string(&Out {
                        ok,
                        mb_per_s: report.mb_per_s(),
                        report: &report
                    })?
                );
            } else {
                for p in &report.problems {
                    println!("BROKEN {p}");
                }
                for p in &report.warnings {
                    println!("WARNING {p}");
                }
                println!(
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
                    println!(
                        "  (leftovers are invisible to every reader; start the server or run any writing command to record them)"
                    );
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AKTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

async fn serve(
    archive: Archive,
    config: crate::api::ServerConfig,
    listen: &str,
    data: &std::path::Path,
) -> anyhow::Result<()> {
    let admin = std::env::var("AKTE_ADMIN_TOKEN")
        .ok()
        .filter(|s| !s.is_empty());
    let supplied = admin.is_some();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let store_desc = archive.store().describe().to_string();
    let started = crate::api::start(archive, config, admin).await?;
    if let Some(token) = &started.new_admin_token {
        if supplied {
            eprintln!(
                "akte: first start on an empty store: admin token taken from AKTE_ADMIN_TOKEN"
            );
        } else if std::io::stderr().is_terminal() {
            eprintln!("akte: first start on an empty store: created the admin token");
            eprintln!("akte: admin token (shown only now, store it safely): {token}");
        } else {
            // Not on a terminal (systemd, a log collector): a secret in a log stays there
            // for good. It goes to a file only this user can read.
            let path = data.join("admin-token");
            write_secret(&path, token)
                .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
            eprintln!(
                "akte: first start on an empty store: the admin token is in {} (readable by \
                 this user only); store it safely, then delete the file",
                path.display()
            );
            tracing::warn!(path = %path.display(), "admin token written to a file");
        }
    }
    tracing::info!(store = %store_desc, "akte listening on http://{addr}");
    eprintln!("akte: listening on http://{addr}");
    crate::api::serve(listener, started.state, shutdown_signal()).await?;
    Ok(())
}

/// Writes a secret to a new file readable by this user only.
fn write_secret(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{secret}")?;
    f.sync_all()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}

fn print_revision(r: &RecordRevision, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!("id:            {}", r.id);
    println!(
        "revision:      {} ({} by {} at {})",
        r.rev,
        r.change,
        r.actor,
        r.revised_at.to_rfc3339()
    );
    println!("class:         {}", r.class);
    println!("title:         {}", r.title);
    if let Some(d) = r.document_date {
        println!("document date: {d}");
    }
    println!("archived at:   {}", r.archived_at.to_rfc3339());
    println!(
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
    println!(
        "retention:     until {} ({}, {} years from {}; {})",
        r.retention.retain_until,
        r.retention.policy,
        r.retention.period_years,
        r.retention.start,
        r.retention.legal_basis
    );
    for p in &r.parties {
        println!("party:         {} as {}", p.party, p.role);
    }
    Ok(())
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
