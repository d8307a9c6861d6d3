//! The `akte` command line: a thin front over the library.
//!
//! Every command takes `--json` for scripts. Errors are one line on stderr and a
//! non-zero exit; `verify` exits 1 when anything is broken.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::archive::Archive;
use crate::clock::SystemClock;
use crate::service::Services;
use crate::store::{LockMode, Store};

/// `println!` for command output: a reader that stops early (`akte … | head`) ends
/// the command quietly instead of a panic with a backtrace.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            $crate::cli::output_failed(e);
        }
    }};
}

/// `print!` for command output, like [`outln!`].
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($t)*) {
            $crate::cli::output_failed(e);
        }
    }};
}

/// `--json` output, JSON Lines: one value on one line. A command that lists things
/// calls this once per thing; a command about one thing (a record, a file, a report,
/// a search result page) once. README.md ("Scripting") documents it.
pub(crate) fn json_line<T: serde::Serialize + ?Sized>(v: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Standard output is gone (a closed pipe): stop as `head` expects; anything else is
/// reported.
pub(crate) fn output_failed(e: std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("akte: cannot write the output: {e}");
    std::process::exit(1);
}

mod archive;
mod audit;
mod demo;
mod import;
mod mail;
mod parties;
mod records;
mod retention;
mod search;
mod serve;
mod tokens;

#[derive(Debug, Parser)]
#[command(
    name = "akte",
    version,
    about = "Revision-safe archive for the Kundenakte"
)]
pub struct Cli {
    /// Data directory of the embedded local store (default ./akte-data; only `serve`
    /// and `demo` create it there without being told).
    #[arg(long = "data", global = true, env = "AKTE_DATA")]
    data_dir: Option<PathBuf>,
    /// The data directory in effect (`--data`, `AKTE_DATA`, else ./akte-data).
    #[arg(skip)]
    data: PathBuf,
    /// Store URL instead of --data: a path, memory://, or s3://bucket/prefix.
    #[arg(long, global = true, env = "AKTE_STORE")]
    store: Option<String>,
    /// Where the parties' data keys live (a path, memory:// or s3://bucket/prefix);
    /// default: the store itself. Required when the store has Object Lock, so that keys
    /// can be destroyed while the documents stay locked.
    #[arg(long, global = true, env = "AKTE_KEY_STORE")]
    key_store: Option<String>,
    /// S3 Object Lock mode (compliance or governance). Refused when the bucket has no
    /// Object Lock; without it, the bucket's own configuration is used.
    #[arg(long, global = true, env = "AKTE_OBJECT_LOCK", value_parser = ["compliance", "governance"])]
    object_lock: Option<String>,
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
    /// Page cache of the catalog file (`catalog.redb` under --data), in MiB: the memory
    /// the record summaries take, whatever their number.
    #[arg(
        long,
        global = true,
        env = "AKTE_CATALOG_CACHE_MB",
        default_value_t = 64
    )]
    catalog_cache_mb: usize,
    /// Memory for the search index's decoded facet columns, in MiB: faceted searches read
    /// segments within it from plain arrays, the rest from the index's columns (slower).
    #[arg(
        long,
        global = true,
        env = "AKTE_FACET_CACHE_MB",
        default_value_t = 256
    )]
    facet_cache_mb: usize,
    /// Ed25519 key (PKCS#8 file, kept outside the store, owner-only) that signs every
    /// checkpoint; created there when missing. Its public key is trusted by `verify`.
    #[arg(long, global = true, env = "AKTE_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
    /// An RFC 3161 time-stamping authority (http:// or https:// URL) that timestamps
    /// every checkpoint (needs --tsa-ca).
    #[arg(long, global = true, env = "AKTE_TSA", requires = "tsa_ca")]
    tsa: Option<String>,
    /// The TSA's certificate chain (PEM): its tokens must chain to one of these, with the
    /// time-stamping key purpose. `verify` and `verify-export` check timestamps against it.
    #[arg(long, global = true, env = "AKTE_TSA_CA")]
    tsa_ca: Option<PathBuf>,
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
    Amend(records::AmendArgs),
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
    Verify(audit::VerifyArgs),
    /// Run the HTTP server.
    #[command(after_help = serve::ENVIRONMENT)]
    Serve(serve::ServeArgs),
    /// Seed an empty store with a generated demo Kundenakte (parties, cases, emails,
    /// PDFs, e-invoices, notes, a hold, a record awaiting disposal) and print a token
    /// for each demo person. Then `akte serve` shows it.
    Demo,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Parties (business partners) and their file.
    #[command(subcommand)]
    Party(parties::PartyCommand),
    /// Cases (Vorgänge) of a party.
    #[command(subcommand)]
    Case(parties::CaseCommand),
    /// Record a phone note or memo about a party.
    Note(NoteArgs),
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
        /// Where the server anchors the journal (its --anchor-to; repeatable): listed
        /// with the last anchor each holds.
        #[arg(long = "anchor-to")]
        anchor_to: Vec<String>,
    },
    /// Write a checkpoint of the journal's head now (one is also written every 1000 entries).
    Checkpoint,
    /// Hand checkpoint signing from --signing-key to a new key: the old key signs the new
    /// one in a journaled `signing.rotate` entry, so `verify --trusted-key OLD` trusts the
    /// new key's checkpoints. Start with --signing-key NEW afterwards.
    RotateSigningKey {
        /// The new key (PKCS#8; created there, owner-only, when missing).
        #[arg(long = "new-key")]
        new_key: PathBuf,
    },
    /// Sign the journal's head with --signing-key and write it outside the store (a file,
    /// or stdout for a ticket or an email): `verify --anchor FILE` then proves the journal
    /// was not cut back before it.
    Anchor(audit::AnchorArgs),
    /// Full-text search over the records (or one party's file with --party).
    Search(search::SearchArgs),
    /// Rebuild the search index from the store (stop the server first).
    Reindex,
    /// Import files, directory trees, .eml, mbox and Maildir (idempotent).
    Import(import::ImportArgs),
    /// Mail intake: sync a mailbox over IMAP.
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Internal: a text-extraction worker (stdin/stdout frames; see extract::sandbox).
    #[command(hide = true)]
    ExtractWorker {
        #[arg(long, default_value_t = 1024 * 1024 * 1024)]
        memory_bytes: u64,
    },
    /// Internal: runs an OCR tool confined (memory, processes, Landlock; see
    /// extract::confine), replacing itself with it.
    #[command(hide = true)]
    ConfineExec {
        #[arg(long)]
        memory_bytes: u64,
        #[arg(long)]
        input: Vec<PathBuf>,
        #[arg(long)]
        work: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Verify an export zip using nothing but its contents.
    VerifyExport { file: PathBuf },
    /// Link a record to parties or cases (or unlink with --remove).
    Link(records::LinkArgs),
}

#[derive(Debug, Args)]
struct NoteArgs {
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
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

pub fn main() -> ExitCode {
    // Everything akte creates — data directory, objects, key files, index, temporary
    // files — is for its own user only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let mut cli = Cli::parse();
    cli.data = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./akte-data"));
    // A worker runs before (and without) the async runtime: one thread, a capped
    // address space.
    if let Command::ExtractWorker { memory_bytes } = cli.command {
        return crate::extract::sandbox::worker_main(memory_bytes);
    }
    if let Command::ConfineExec {
        memory_bytes,
        input,
        work,
        command,
    } = cli.command
    {
        return crate::extract::sandbox::confine_exec(memory_bytes, &input, &work, &command);
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

pub async fn open_store(cli: &Cli) -> anyhow::Result<Store> {
    // Run in the wrong directory, a command would otherwise create an empty archive there
    // and write into it. Only the server and the demo create the default one unasked.
    if cli.store.is_none()
        && cli.data_dir.is_none()
        && !cli.data.exists()
        && !matches!(cli.command, Command::Serve(_) | Command::Demo)
    {
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        anyhow::bail!(
            "no archive in ./akte-data (the default data directory, in {cwd}): run this in the \
             archive's directory, name it with --data DIR (or AKTE_DATA), or create it with \
             `akte serve`"
        );
    }
    let spec = match &cli.store {
        Some(s) => s.to_string(),
        None => cli.data.display().to_string(),
    };
    let opts = crate::store::StoreOptions {
        key_store: cli.key_store.clone(),
        object_lock: cli.object_lock.as_deref().and_then(LockMode::parse),
    };
    Ok(Store::open_with(&spec, &opts).await?)
}

/// Where this command's catalog keeps its record summaries (set once, from --data).
static CATALOG: std::sync::OnceLock<(PathBuf, usize)> = std::sync::OnceLock::new();

/// The services of a command, their catalog persisted under --data.
pub(crate) fn services(archive: Archive) -> Services {
    let svc = Services::new(archive);
    if let Some((path, cache)) = CATALOG.get() {
        svc.catalog.persist_at(path.clone(), *cache);
    }
    svc
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let catalog = (
        cli.data.join("catalog.redb"),
        cli.catalog_cache_mb.max(1) << 20,
    );
    let _ = CATALOG.set(catalog.clone());
    // Only a server keeps facet tables: a command searches once and ends.
    crate::search::set_facet_budget(match cli.command {
        Command::Serve(_) | Command::Demo => cli.facet_cache_mb << 20,
        _ => 0,
    });
    let tsa_trusted = match &cli.tsa_ca {
        Some(p) => crate::audit::timestamp::load_certs(p)?,
        None => Vec::new(),
    };
    if let Command::VerifyExport { file } = &cli.command {
        let ok = retention::verify_export(file, &tsa_trusted, cli.json)?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    if let Command::Openapi = cli.command {
        out!("{}", crate::api::openapi_json());
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(&cli).await?;
    let mut archive = Archive::new(store, Arc::new(SystemClock));
    if let Some(path) = &cli.catalogue {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let company = crate::retention::catalogue::Catalogue::parse(&text)
            .with_context(|| format!("{}: not a retention catalogue", path.display()))?;
        archive = archive.with_catalogue(
            crate::retention::catalogue::Catalogue::shipped().with_company(company),
        );
    }
    // The ledger (what the journal committed) persists beside the catalog, so that a
    // start reads only the journal entries since. `verify` trusts nothing derived.
    if !matches!(cli.command, Command::Verify(_)) {
        archive
            .journal()
            .persist_ledger_at(cli.data.join("ledger.redb"), catalog.1);
    }
    if let Some(path) = &cli.signing_key {
        let (signer, created) = crate::audit::signing::Signer::load_or_create(path)?;
        if created {
            eprintln!(
                "akte: created the checkpoint signing key {} (public key {}); keep it outside \
                 the store and back it up",
                path.display(),
                signer.public_hex()
            );
        }
        archive.journal().set_signer(Arc::new(signer));
    }
    if let Some(url) = &cli.tsa {
        // clap makes --tsa require --tsa-ca: its certificates are `tsa_trusted`.
        let tsa = crate::audit::timestamp::Tsa::new(url, tsa_trusted.clone())?;
        archive.journal().set_tsa(Arc::new(tsa));
    }
    let actor = cli.actor.clone().unwrap_or_else(default_actor);
    let json = cli.json;
    // Every writer records crash leftovers first (DESIGN §2.6); `verify` only reads, and
    // the server does this itself.
    let writer = match cli.command {
        Command::Verify(_) | Command::Serve(_) | Command::Demo => None,
        _ => Some(start_writer(&archive).await?),
    };
    let index_dir = cli.index.clone().unwrap_or_else(|| cli.data.join("index"));
    // The commands of parties.rs and retention.rs take the services (a clone is cheap).
    let svc = || services(archive.clone());
    let writes = writer.is_some();
    let changes = writes && changes_state(&cli.command);
    let locked = archive.clone();
    let result = match cli.command {
        Command::Archive(a) => archive::archive(archive, &actor, json, a).await,
        Command::Show { id } => records::show(archive, &id, json).await,
        Command::History { id } => records::history(archive, &id, json).await,
        Command::Cat { id, rev } => records::cat(archive, &id, rev).await,
        Command::Amend(a) => records::amend(archive, &actor, json, a).await,
        Command::Link(a) => records::link(archive, &actor, json, a).await,
        Command::Journal { since, limit } => audit::journal(archive, since, limit, json).await,
        Command::Checkpoint => audit::checkpoint(archive, json).await,
        Command::Verify(a) => audit::verify(archive, &actor, json, a, tsa_trusted).await,
        Command::Anchor(a) => audit::anchor(archive, json, a).await,
        Command::RotateSigningKey { new_key } => {
            audit::rotate_signing_key(archive, &actor, json, &new_key).await
        }
        Command::Serve(a) => serve::serve(archive, a, index_dir, &cli.data, catalog).await,
        Command::Demo => serve::demo(archive, index_dir, &cli.data, catalog).await,
        Command::Token(cmd) => tokens::token(archive, &actor, json, cmd).await,
        Command::Openapi => Ok(ExitCode::SUCCESS),
        Command::VerifyExport { .. } => Ok(ExitCode::SUCCESS),
        Command::ExtractWorker { .. } | Command::ConfineExec { .. } => Ok(ExitCode::FAILURE),
        Command::Party(cmd) => done(parties::party(&svc(), &actor, json, cmd).await),
        Command::Case(cmd) => done(parties::case(&svc(), &actor, json, cmd).await),
        Command::Note(n) => note(archive, &actor, json, n).await,
        Command::Hold(cmd) => done(retention::hold(&svc(), &actor, json, cmd).await),
        Command::Retention(cmd) => done(retention::retention(&svc(), &actor, json, cmd).await),
        Command::Export(cmd) => done(retention::export(&svc(), &actor, cmd).await),
        Command::Dispose(cmd) => done(retention::dispose(&svc(), &actor, json, cmd).await),
        Command::Docs {
            what: _,
            html,
            anchor_to,
        } => {
            let targets = anchor_to
                .iter()
                .map(|t| crate::audit::anchor::Target::open(t))
                .collect::<Result<Vec<_>, _>>()?;
            archive.journal().set_anchor_targets(targets);
            print_procedure(&services(archive), html).await
        }
        Command::Search(a) => search::search(services(archive), &index_dir, json, a).await,
        Command::Reindex => search::reindex(services(archive), &index_dir, json).await,
        Command::Import(a) => import::import(archive, &actor, json, a).await,
        Command::Mail(cmd) => mail::mail(archive, &actor, json, &cli.data, cmd).await,
    };
    if changes && matches!(&result, Ok(code) if *code == ExitCode::SUCCESS) {
        // Said on stderr after every command that may have written, so that a command run
        // against the wrong archive does not go unnoticed (and stdout stays the output).
        let place = match &cli.store {
            Some(spec) => spec.clone(),
            None => std::fs::canonicalize(&cli.data)
                .unwrap_or(cli.data.clone())
                .display()
                .to_string(),
        };
        eprintln!("akte: archive {place}");
    }
    if let Err(e) = locked.journal().flush_ledger() {
        eprintln!("akte: {e}");
    }
    if let Some(w) = &writer
        && let Err(e) = w.end(locked.store(), locked.journal()).await
    {
        eprintln!("akte: ending the writer session: {e}");
    }
    if writes && locked.store().object_lock().is_some() {
        // What this command committed gets its Object Lock retention now, not only when
        // a server next catches up (the bucket's default retention covered it meanwhile).
        let svc = services(locked);
        svc.load().await?;
        if let Some(locker) = crate::worm::Locker::new(svc, &cli.data) {
            locker
                .catch_up()
                .await
                .context("applying the Object Lock retention")?;
        }
    }
    result
}

/// Whether a command may change the archive (and so says which one it used).
fn changes_state(c: &Command) -> bool {
    use parties::{CaseCommand as C, PartyCommand as P};
    use retention::{DisposeCommand as D, HoldCommand as H, RetentionCommand as R};
    !matches!(
        c,
        Command::Show { .. }
            | Command::History { .. }
            | Command::Cat { .. }
            | Command::Journal { .. }
            | Command::Verify(_)
            | Command::Search(_)
            | Command::Export(_)
            | Command::Docs { .. }
            | Command::Openapi
            | Command::VerifyExport { .. }
            | Command::Party(P::Show { .. } | P::List { .. } | P::History { .. })
            | Command::Case(C::Show { .. })
            | Command::Hold(H::List)
            | Command::Retention(R::Eligible | R::Catalogue | R::Report { .. })
            | Command::Dispose(D::List | D::Show { .. })
            | Command::Token(tokens::TokenCommand::List)
    )
}

/// The result of a command that prints its own output.
fn done(r: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    r.map(|()| ExitCode::SUCCESS)
}

async fn note(archive: Archive, actor: &str, json: bool, a: NoteArgs) -> anyhow::Result<ExitCode> {
    let svc = import::pipeline(archive, None).await?;
    let n = crate::ingest::NoteInput {
        text: a.text,
        kind: a.memo.then(|| "memo".to_string()),
        case: a.case,
        duration: a.duration,
        title: None,
    };
    parties::note(&svc, actor, json, a.party, n).await?;
    Ok(ExitCode::SUCCESS)
}

async fn print_procedure(svc: &Services, html: bool) -> anyhow::Result<ExitCode> {
    out!("{}", crate::web::procedure::procedure(svc, html).await?);
    Ok(ExitCode::SUCCESS)
}
