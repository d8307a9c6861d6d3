//! `akte serve`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::archive::Archive;

/// The environment `akte serve` reads beyond its options (shown by `akte serve --help`;
/// deploy/ files may use only variables named here or as an option's `[env: …]`).
pub const ENVIRONMENT: &str = "\
Environment (besides the options' [env: …] above):
  AKTE_ADMIN_TOKEN           the first admin token of an empty store (≥ 32 characters)
  AKTE_ADMIN_PERSON          the person that first admin token belongs to
  AKTE_LOG                   log filter (e.g. info, akte=debug)
  AKTE_RULES                 a company classification rules file (TOML)
  AKTE_EXTRACT_MEMORY_MB     address space of an extraction worker (default 1024)
  AKTE_EXTRACT_TIMEOUT_SECS  time per item in an extraction worker (default 60)
  AKTE_EXTRACT_WORKERS       extraction worker processes (default: one per core)
  AKTE_S3_ENDPOINT           S3 endpoint (or AWS_ENDPOINT_URL), e.g. http://minio:9000
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION
                             S3 credentials and region (else the profile AWS_PROFILE
                             of ~/.aws/credentials and ~/.aws/config)
  AWS_VIRTUAL_HOSTED_STYLE_REQUEST
                             true for virtual-hosted-style S3 URLs (default: path style)";

#[derive(Debug, Args)]
pub struct ServeArgs {
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
    /// On an empty store: seed the generated demo Kundenakte first (see `akte demo`) and
    /// print a token per demo person.
    #[arg(long, env = "AKTE_DEMO")]
    demo: bool,
    /// Write a signed checkpoint of the journal's head to this directory or
    /// `s3://bucket/prefix` (another bucket, with Object Lock) every --anchor-interval and
    /// at shutdown (repeatable; needs --signing-key). `akte verify --anchor` reads them.
    #[arg(long = "anchor-to", env = "AKTE_ANCHOR_TO", value_delimiter = ',')]
    anchor_to: Vec<String>,
    /// Seconds between anchors (only when the journal has grown).
    #[arg(long, env = "AKTE_ANCHOR_INTERVAL", default_value_t = 3600)]
    anchor_interval: u64,
    #[command(flatten)]
    smtp: SmtpArgs,
    /// Mailboxes to sync over IMAP on a schedule (a TOML file of [[mailbox]] entries:
    /// imap, user, password_file, folders, party, ca, every); see `akte mail sync`.
    #[arg(long = "mail-sync", env = "AKTE_MAIL_SYNC")]
    mail_sync: Option<PathBuf>,
}

/// The SMTP journaling receiver (off unless --smtp is given).
#[derive(Debug, Args)]
pub struct SmtpArgs {
    /// Receive journaled mail over SMTP on this address (e.g. 0.0.0.0:2525; port 0 picks
    /// a free one). A message is answered 250 only once it is archived.
    #[arg(long = "smtp", env = "AKTE_SMTP")]
    addr: Option<String>,
    /// PEM certificate chain for STARTTLS (with --smtp-tls-key).
    #[arg(
        long = "smtp-tls-cert",
        env = "AKTE_SMTP_TLS_CERT",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key for STARTTLS.
    #[arg(
        long = "smtp-tls-key",
        env = "AKTE_SMTP_TLS_KEY",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Client addresses or networks that may send without AUTH (repeatable, or
    /// comma-separated: 10.0.0.5,192.0.2.0/24). Others authenticate with AUTH PLAIN or
    /// LOGIN, the password being an admin or archivist token.
    #[arg(long = "smtp-allow", env = "AKTE_SMTP_ALLOW", value_delimiter = ',')]
    allow: Vec<String>,
    /// Largest message in bytes (announced as SIZE).
    #[arg(long = "smtp-max-size", env = "AKTE_SMTP_MAX_SIZE", default_value_t = 50 * 1024 * 1024)]
    max_size: usize,
    /// Recipients per message.
    #[arg(
        long = "smtp-max-recipients",
        env = "AKTE_SMTP_MAX_RECIPIENTS",
        default_value_t = 1000
    )]
    max_recipients: usize,
    /// Open SMTP connections.
    #[arg(
        long = "smtp-max-connections",
        env = "AKTE_SMTP_MAX_CONNECTIONS",
        default_value_t = 64
    )]
    max_connections: usize,
    /// Commands per connection.
    #[arg(
        long = "smtp-max-commands",
        env = "AKTE_SMTP_MAX_COMMANDS",
        default_value_t = 10_000
    )]
    max_commands: usize,
    /// Seconds a connection may stay silent.
    #[arg(long = "smtp-idle", env = "AKTE_SMTP_IDLE", default_value_t = 300)]
    idle: u64,
}

impl SmtpArgs {
    fn config(&self) -> anyhow::Result<crate::smtp::Config> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some(crate::smtp::tls_config(c, k)?),
            _ => None,
        };
        Ok(crate::smtp::Config {
            tls,
            allow: self
                .allow
                .iter()
                .map(|a| crate::smtp::parse_allow(a))
                .collect::<Result<_, _>>()?,
            max_size: self.max_size.max(1),
            max_recipients: self.max_recipients.max(1),
            max_connections: self.max_connections.max(1),
            max_commands: self.max_commands.max(10),
            idle: std::time::Duration::from_secs(self.idle.max(1)),
            ..Default::default()
        })
    }
}

pub(super) async fn serve(
    archive: Archive,
    a: ServeArgs,
    index_dir: PathBuf,
    data: &Path,
    catalog: (PathBuf, usize),
) -> anyhow::Result<ExitCode> {
    let ServeArgs {
        listen,
        max_upload,
        rate,
        upload_rate,
        concurrency,
        log_format,
        index_interval_ms,
        header_timeout,
        connections_per_client,
        demo,
        anchor_to,
        anchor_interval,
        smtp,
        mail_sync,
    } = a;
    init_logging(&log_format);
    let schedule = match &mail_sync {
        Some(p) => Some(crate::ingest::imap::Schedule::load(p)?),
        None => None,
    };
    // The SMTP receiver: configured and bound before anything is served, so that a bad
    // certificate or a taken port stops the start.
    let smtp_listener = match &smtp.addr {
        Some(addr) => {
            let config = smtp.config()?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--smtp {addr}"))?;
            Some((l, config))
        }
        None => None,
    };
    let anchors = anchor_to
        .iter()
        .map(|t| crate::audit::anchor::Target::open(t))
        .collect::<Result<Vec<_>, _>>()?;
    if !anchors.is_empty() && archive.journal().signing_key().is_none() {
        anyhow::bail!("--anchor-to needs --signing-key: an anchor must be signed");
    }
    archive.journal().set_anchor_targets(anchors.clone());
    let anchoring = Anchoring {
        targets: anchors,
        every: std::time::Duration::from_secs(anchor_interval.max(1)),
    };
    let config = crate::api::ServerConfig {
        max_upload_bytes: max_upload,
        limits: crate::api::auth::LimitConfig {
            requests_per_second: rate,
            burst: rate * 2.0,
            concurrent_requests: concurrency,
            upload_bytes_per_second: upload_rate,
        },
        index_dir: Some(index_dir),
        index_interval: std::time::Duration::from_millis(index_interval_ms.max(10)),
        header_timeout: std::time::Duration::from_secs(header_timeout.max(1)),
        max_connections_per_client: connections_per_client.max(1),
        spool_dir: Some(data.join("spool")),
        state_dir: Some(data.to_path_buf()),
        catalog: Some(catalog),
        ..Default::default()
    };
    listen_and_serve(
        archive,
        config,
        &listen,
        data,
        demo,
        anchoring,
        Intakes {
            smtp: smtp_listener,
            mail_sync: schedule,
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// `akte demo`: seeds an empty store, indexes it, prints the tokens.
pub(super) async fn demo(
    archive: Archive,
    index_dir: PathBuf,
    data: &Path,
    catalog: (PathBuf, usize),
) -> anyhow::Result<ExitCode> {
    init_logging("text");
    let config = crate::api::ServerConfig {
        index_dir: Some(index_dir),
        spool_dir: Some(data.join("spool")),
        state_dir: Some(data.to_path_buf()),
        catalog: Some(catalog),
        ..Default::default()
    };
    let started = crate::api::start(archive, config, None).await?;
    let Some(admin) = started.new_admin_token else {
        anyhow::bail!(
            "{}: the store is not empty; the demo seeds only an empty data directory",
            data.display()
        );
    };
    let state = started.state;
    let tokens = seed_demo(&state, &admin, data).await?;
    if let Some(ix) = &state.search {
        ix.catch_up().await?;
    }
    state.archive.drain().await;
    state.reads.shutdown().await;
    eprintln!("akte: demo seeded in {}", data.display());
    eprintln!("akte: admin token: {admin}");
    eprint!("akte: {}", tokens.describe());
    eprintln!("akte: now run: akte --data {} serve", data.display());
    Ok(ExitCode::SUCCESS)
}

/// Seeds the demo once the catalog is built, and writes the tokens to
/// `<data>/demo-tokens.txt` (readable by this user only).
async fn seed_demo(
    state: &crate::api::AppState,
    admin: &str,
    data: &Path,
) -> anyhow::Result<super::demo::DemoTokens> {
    let _ = state.catalog_ready().await;
    let started = std::time::Instant::now();
    let today = state.archive.clock().now().date_naive();
    let tokens = super::demo::seed(state, admin, today).await?;
    let (p, r, c) = state.svc.catalog.counts().await;
    tracing::info!(
        parties = p,
        records = r,
        cases = c,
        "demo seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let path = data.join("demo-tokens.txt");
    let _ = std::fs::remove_file(&path);
    write_secret(
        &path,
        &format!("admin          admin {admin}\n{}", tokens.describe()),
    )
    .with_context(|| path.display().to_string())?;
    Ok(tokens)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AKTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Where and how often the server anchors its journal.
struct Anchoring {
    targets: Vec<crate::audit::anchor::Target>,
    every: std::time::Duration,
}

async fn listen_and_serve(
    archive: Archive,
    config: crate::api::ServerConfig,
    listen: &str,
    data: &Path,
    demo: bool,
    anchoring: Anchoring,
    intakes: Intakes,
) -> anyhow::Result<()> {
    let Intakes {
        smtp: smtp_listener,
        mail_sync: schedule,
    } = intakes;
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
    if demo {
        match &started.new_admin_token {
            Some(admin) => {
                let (st, admin, dir) = (started.state.clone(), admin.clone(), data.to_path_buf());
                tokio::spawn(async move {
                    match seed_demo(&st, &admin, &dir).await {
                        Ok(t) => eprint!("akte: demo ready; {}", t.describe()),
                        Err(e) => eprintln!("akte: seeding the demo failed: {e:#}"),
                    }
                });
            }
            None => eprintln!("akte: --demo: the store is not empty; no demo data added"),
        }
    }
    if let Some((l, config)) = smtp_listener {
        let at = l.local_addr()?;
        if config.tls.is_none() && !at.ip().is_loopback() {
            tracing::warn!("smtp on {at} without STARTTLS: AUTH and mail travel in clear");
        }
        tracing::info!("akte smtp receiver on {at}");
        eprintln!("akte: smtp receiver on {at}");
        tokio::spawn(crate::smtp::serve(l, started.state.clone(), config));
    }
    if let Some(schedule) = schedule {
        tokio::spawn(sync_mailboxes(
            started.state.clone(),
            schedule,
            data.join("mail-sync.json"),
        ));
    }
    tracing::info!(store = %store_desc, "akte listening on http://{addr}");
    eprintln!("akte: listening on http://{addr}");
    let app = crate::web::app(started.state.clone());
    let journal = started.state.archive.journal_arc();
    let anchors = anchoring.targets;
    if !anchors.is_empty() {
        let (journal, anchors) = (journal.clone(), anchors.clone());
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(anchoring.every).await;
                match journal.head_seq().await {
                    Ok(head) if head > last => {
                        match crate::audit::anchor::anchor_now(&journal, &anchors).await {
                            Ok(Some(c)) => {
                                last = c.seq;
                                tracing::info!(seq = c.seq, "anchored");
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!("anchoring failed: {e}"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("anchoring: {e}"),
                }
            }
        });
    }
    let state = started.state.clone();
    crate::api::serve_app(listener, started.state, app, shutdown_signal()).await?;
    // A checkpoint of the head at every orderly shutdown (signed with --signing-key), so
    // that the last state served is on record — and anchored, with --anchor-to.
    let done = if anchors.is_empty() {
        journal.checkpoint().await
    } else {
        crate::audit::anchor::anchor_now(&journal, &anchors).await
    };
    match done {
        Ok(Some(c)) => tracing::info!(
            seq = c.seq,
            signed = c.signature.is_some(),
            "checkpoint at shutdown"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!("no checkpoint at shutdown: {e}"),
    }
    // Last: nothing is written after this.
    if let Err(e) = state.writer.end(state.archive.store(), &journal).await {
        tracing::warn!("ending the writer session: {e}");
    }
    Ok(())
}

/// The mail intakes the server runs beside the API.
struct Intakes {
    /// The SMTP receiver's bound listener and configuration.
    smtp: Option<(tokio::net::TcpListener, crate::smtp::Config)>,
    /// Mailboxes synced over IMAP on a schedule.
    mail_sync: Option<crate::ingest::imap::Schedule>,
}

/// The server's IMAP intake: each mailbox synced every `every` seconds, one after the
/// other (they share the position file), counted on /metrics as intake `imap`.
async fn sync_mailboxes(
    state: crate::api::AppState,
    schedule: crate::ingest::imap::Schedule,
    positions: PathBuf,
) {
    struct Quiet;
    impl crate::ingest::imap::Progress for Quiet {}
    let mut due: Vec<std::time::Instant> =
        vec![std::time::Instant::now(); schedule.mailboxes.len()];
    if due.is_empty() {
        return;
    }
    loop {
        for (m, next) in schedule.mailboxes.iter().zip(due.iter_mut()) {
            if std::time::Instant::now() < *next {
                continue;
            }
            *next = std::time::Instant::now() + std::time::Duration::from_secs(m.every.max(10));
            let actor = format!("imap:{}@{}", m.user, m.imap);
            let run = match m.mailbox() {
                Ok(mb) => {
                    crate::ingest::imap::sync(
                        &state.ingest,
                        &actor,
                        &mb,
                        &m.defaults(),
                        &positions,
                        &Quiet,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match run {
                Ok(reports) => {
                    let archived: u64 = reports.iter().map(|r| r.archived).sum();
                    let duplicates: u64 = reports.iter().map(|r| r.duplicates).sum();
                    state.metrics.intake_n("imap", "accepted", archived);
                    state.metrics.intake_n("imap", "duplicate", duplicates);
                    state.metrics.add_records(archived as i64);
                    state.metrics.intake_synced("imap");
                    tracing::info!(mailbox = %m.imap, user = %m.user, archived, "mail sync done");
                }
                // Its lag on /metrics grows until a sync succeeds.
                Err(e) => {
                    tracing::warn!(mailbox = %m.imap, user = %m.user, "mail sync failed, retried next time: {e}");
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Writes a secret to a new file readable by this user only.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
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
