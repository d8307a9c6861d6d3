//! The HTTP API (`/v1`, JSON, problem+json errors) and the server loop.
//!
//! Adding a resource is one file: a module with `routes() -> OpenApiRouter<AppState>`
//! whose handlers carry `#[utoipa::path]`, merged in [`api_router`]. The OpenAPI document
//! is generated from the same router, so code and `schemas/openapi.json` cannot drift
//! apart unnoticed (a test compares them).

pub mod auth;
pub mod cases;
pub mod imports;
pub mod ingest;
pub mod journal;
mod openapi;
pub mod ops;
pub mod params;
pub mod parties;
pub mod problem;
pub(crate) mod record_views;
pub mod records;
pub mod retention;
pub mod search;
mod strict;
pub mod tokens;
mod upload;

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::access::Tokens;
use crate::archive::Archive;
use crate::audit::reads::ReadLog;
use crate::error::Result;
use crate::store::keys;
use auth::{LimitConfig, Limits};
pub use openapi::openapi_json;
use problem::ApiError;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest upload, enforced while streaming (default 4 GiB).
    pub max_upload_bytes: u64,
    /// An upload that sends nothing for this long is cut.
    pub upload_idle_timeout: Duration,
    /// Time to response headers for everything but uploads.
    pub request_timeout: Duration,
    pub max_connections: usize,
    /// Largest request head (request line + headers).
    pub max_header_bytes: usize,
    /// How long a graceful shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    pub limits: LimitConfig,
    /// Directory of the search index; `None` serves without search (503 on /search).
    pub index_dir: Option<std::path::PathBuf>,
    /// How often the index follows the journal (and commits).
    pub index_interval: Duration,
    /// Time for a connection's first byte and for each request head; an HTTP/1 connection
    /// idle between requests is closed after it too.
    pub header_timeout: Duration,
    /// Open connections per client address (the total is `max_connections`).
    pub max_connections_per_client: usize,
    /// Where uploads are spooled while they are ingested (default: the system's
    /// temporary directory; `akte serve` uses `<data>/spool`).
    pub spool_dir: Option<std::path::PathBuf>,
    /// Node-local state (the Object Lock progress); default: beside the spool, else the
    /// temporary directory.
    pub state_dir: Option<std::path::PathBuf>,
    /// How often S3 Object Lock retention follows the journal.
    pub lock_interval: Duration,
    /// The catalog's file and page cache bytes (default: in memory, rebuilt at start).
    pub catalog: Option<(std::path::PathBuf, usize)>,
}

impl ServerConfig {
    /// Creates the spool directory, and removes uploads a killed server left in it (none
    /// of them was acknowledged; the temporary directory of the system is left alone).
    pub fn prepare_spool(&self) {
        let Some(dir) = &self.spool_dir else { return };
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!("spool directory {}: {e}", dir.display());
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        // Uploads and import jobs a previous process left behind (a crash, a kill).
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let removed = if name.starts_with("akte-upload-") {
                std::fs::remove_file(e.path())
            } else if name.starts_with("akte-import-") {
                std::fs::remove_dir_all(e.path())
            } else {
                continue;
            };
            match removed {
                Ok(()) => tracing::info!("removed an abandoned upload {}", e.path().display()),
                Err(err) => tracing::warn!("{}: {err}", e.path().display()),
            }
        }
    }

    /// The spool directory (made by [`ServerConfig::prepare_spool`] at start).
    pub fn spool_dir(&self) -> std::path::PathBuf {
        self.spool_dir.clone().unwrap_or_else(std::env::temp_dir)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_upload_bytes: 4 * 1024 * 1024 * 1024,
            upload_idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(60),
            limits: LimitConfig::default(),
            index_dir: None,
            index_interval: Duration::from_millis(500),
            header_timeout: Duration::from_secs(30),
            max_connections_per_client: 128,
            spool_dir: None,
            state_dir: None,
            catalog: None,
            lock_interval: Duration::from_secs(2),
        }
    }
}

#[derive(Debug)]
pub struct Inner {
    pub archive: Archive,
    /// Records, parties, cases and the catalog joining them.
    pub svc: crate::service::Services,
    /// The one ingest pipeline over `svc` (extraction workers, classification rules).
    pub ingest: crate::ingest::Ingest,
    pub tokens: Arc<Tokens>,
    pub reads: ReadLog,
    pub limits: Limits,
    pub metrics: ops::Metrics,
    pub jobs: journal::Jobs,
    /// Server-side imports (`/v1/imports`).
    pub imports: imports::Jobs,
    /// Disposal executions running in the background.
    pub disposal_runs: retention::Runs,
    pub config: ServerConfig,
    /// Background work (verify jobs).
    pub tasks: TaskTracker,
    /// Full-text search, when an index directory is configured.
    pub search: Option<crate::search::indexer::Indexer>,
    last_token_refresh: tokio::sync::Mutex<Option<Instant>>,
    /// The last readiness answer and when it was found (`/readyz`).
    pub readiness: tokio::sync::Mutex<Option<(Instant, std::result::Result<(), String>)>>,
    /// This server's writer lock, held for its lifetime (see `audit::recovery`).
    pub writer: crate::audit::recovery::WriterSession,
}

/// Shared server state, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// For requests that need the catalog: waits for its first build (up to 10 s), then
    /// refuses with 503 and `Retry-After`.
    pub async fn catalog_ready(&self) -> problem::ApiResult<()> {
        if self.svc.catalog.wait_ready(Duration::from_secs(10)).await {
            Ok(())
        } else {
            let mut e = ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "catalog-loading",
                "Catalog is being built",
                "the party catalog is still being built from the store; retry shortly",
            );
            e.retry_after = Some(5);
            Err(e)
        }
    }

    /// The party ids a restricted caller may see (each allowed party with everything
    /// merged into it); `None` for an unrestricted caller.
    pub async fn visible_parties(&self, caller: &auth::Caller) -> Option<Vec<String>> {
        let allowed = caller.restriction()?;
        let mut out = Vec::new();
        for p in allowed {
            match self.svc.catalog.scope(p, false).await {
                Some(ids) => out.extend(ids),
                None => out.push(p.clone()),
            }
        }
        out.sort();
        out.dedup();
        Some(out)
    }

    /// Refuses (as 404, revealing nothing) a record a restricted caller may not open.
    pub async fn check_record_visible(
        &self,
        caller: &auth::Caller,
        r: &crate::record::RecordRevision,
    ) -> problem::ApiResult<()> {
        if let Some(y) = caller.years()
            && !y.contains(r.document_date.unwrap_or(r.archived_at.date_naive()))
        {
            return Err(crate::error::Error::RecordNotFound { id: r.id.clone() }.into());
        }
        if let Some(cs) = caller.classes()
            && !cs.contains(&r.class)
        {
            return Err(crate::error::Error::RecordNotFound { id: r.id.clone() }.into());
        }
        if caller.restriction().is_none() {
            return Ok(());
        }
        self.catalog_ready().await?;
        let visible = self.visible_parties(caller).await.unwrap_or_default();
        if r.parties.iter().any(|l| visible.contains(&l.party)) {
            Ok(())
        } else {
            Err(crate::error::Error::RecordNotFound { id: r.id.clone() }.into())
        }
    }

    /// Refuses (as 404) a party a restricted caller may not open.
    pub async fn check_party_visible(
        &self,
        caller: &auth::Caller,
        id: &str,
    ) -> problem::ApiResult<()> {
        if caller.restriction().is_none() {
            return Ok(());
        }
        self.catalog_ready().await?;
        let visible = self.visible_parties(caller).await.unwrap_or_default();
        let sid = self.svc.catalog.resolve(id).await;
        if visible.contains(&sid) || visible.iter().any(|v| v == id) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("no party {id}")))
        }
    }

    /// Runs `work` while this node holds the lease `name` (renewed in the background),
    /// or returns `None` at once when another node holds it. On a store only this
    /// process writes, every lease is this process's.
    pub async fn with_lease<F: std::future::Future>(
        &self,
        name: &str,
        work: F,
    ) -> Option<F::Output> {
        let held = self.take_lease(name).await?;
        let out = work.await;
        drop(held);
        Some(out)
    }

    /// Takes the lease `name` and renews it in the background until the returned guard
    /// is dropped, or returns `None` when another node holds it. Renewal starts at
    /// once, so that the work a node prepares before it runs (catching up, downloading
    /// an upload) cannot outlast the lease and let a second node take the job too.
    pub async fn take_lease(&self, name: &str) -> Option<HeldLease> {
        let store = self.archive.store().clone();
        let now = self.archive.clock().now();
        match store.hold_lease(name, LEASE_TTL, now).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!("lease {name}: {e}");
                return None;
            }
        }
        let renew = {
            let (store, clock, name) = (
                store.clone(),
                self.archive.clock().clone(),
                name.to_string(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_TTL / 3).await;
                    match store.hold_lease(&name, LEASE_TTL, clock.now()).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("lease {name} was taken over by another node");
                            return;
                        }
                        Err(e) => tracing::warn!("renewing lease {name}: {e}"),
                    }
                }
            })
        };
        Some(HeldLease {
            name: name.to_string(),
            store,
            renew,
        })
    }

    /// On an unknown token: follows the journal and reloads the token table if a token
    /// changed (one created on another node), unless a reload finished after `arrived`
    /// already. Single flight: concurrent callers wait for the one running instead of
    /// being refused meanwhile, and garbage tokens cannot make reloads pile up.
    pub async fn refresh_tokens_since(&self, arrived: Instant) {
        let mut last = self.last_token_refresh.lock().await;
        if last.is_some_and(|t| t >= arrived) {
            return;
        }
        let r = match self.archive.journal().sync_ledger().await {
            Ok(_) => self.tokens.follow().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            tracing::warn!("token refresh failed: {e}");
        }
        *last = Some(Instant::now());
    }
}

/// A lease this node holds, renewed in the background; dropping it stops the renewal
/// and releases the lease.
pub struct HeldLease {
    name: String,
    store: crate::store::Store,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renew.abort();
        self.store.release_lease(&self.name);
    }
}

/// How long a node's lease on a background job lasts without renewal: after a node
/// dies, another takes its jobs over within this time.
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// What `start` hands back: the state, and the admin token if one was just created.
pub struct Started {
    pub state: AppState,
    pub new_admin_token: Option<String>,
}

/// Prepares a server over `archive`: loads tokens (creating the first admin token on an
/// empty store, from `admin_token` if given), starts the read log and background refresh.
pub async fn start(
    archive: Archive,
    config: ServerConfig,
    admin_token: Option<String>,
) -> Result<Started> {
    // Crash leftovers are recorded before anything is read or served (DESIGN §2.6).
    let writer = archive.start_writer().await?;
    config.prepare_spool();
    let tokens = Arc::new(Tokens::new(
        archive.store().clone(),
        archive.journal_arc(),
        archive.clock().clone(),
    ));
    let new_admin_token = tokens.bootstrap(admin_token).await?;
    let svc = crate::service::Services::new(archive.clone());
    if let Some((path, cache)) = &config.catalog {
        svc.catalog.persist_at(path.clone(), *cache);
    }
    let mut ingest = crate::ingest::Ingest::new(svc.clone())
        .with_extractor(crate::extract::sandbox::Extractor::for_this_binary());
    if let Some(path) = std::env::var_os("AKTE_RULES") {
        let cat = archive.catalogue().clone();
        let rules = crate::ingest::rules::Rules::load(std::path::Path::new(&path), &|c| {
            cat.classes.contains_key(c)
        })?;
        ingest = ingest.with_rules(rules);
    }
    let search = match &config.index_dir {
        Some(dir) => {
            let index = crate::search::SearchIndex::open(dir, false)?;
            index.warm_in_background();
            Some(crate::search::indexer::Indexer::new(
                Arc::new(index),
                svc.clone(),
            ))
        }
        None => None,
    };
    let reads = ReadLog::start(archive.journal_arc());
    let state = AppState(Arc::new(Inner {
        limits: Limits::new(config.limits.clone()),
        archive,
        svc,
        ingest,
        tokens,
        reads,
        metrics: ops::Metrics::default(),
        jobs: journal::Jobs::default(),
        imports: imports::Jobs::default(),
        disposal_runs: retention::Runs::default(),
        config,
        tasks: TaskTracker::new(),
        search,
        last_token_refresh: tokio::sync::Mutex::new(None),
        readiness: tokio::sync::Mutex::new(None),
        writer,
    }));
    // Leftovers of writers that died while this server ran (another process, another
    // node) are recorded once they are older than the grace period.
    let st = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::audit::recovery::GRACE / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            let a = &st.archive;
            if let Err(e) = crate::audit::recovery::recover(
                a.store(),
                a.journal(),
                a.clock(),
                crate::audit::recovery::ACTOR,
                false,
            )
            .await
            {
                tracing::warn!("periodic recovery failed: {e}");
            }
        }
    });
    // Tokens created or revoked by another process show up within two seconds.
    let st = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if let Err(e) = st.tokens.refresh().await {
                tracing::warn!("token refresh failed: {e}");
            }
        }
    });
    // The catalog is built in the background (the server answers at once; requests that
    // need it wait for it), then follows what other processes commit, within a second.
    let st = state.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            match st.svc.load().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!("building the catalog failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
        // Approved disposals whose execution a crash or an error cut short resume.
        match st.svc.disposals.unfinished().await {
            Ok(ds) => {
                for d in ds {
                    tracing::info!(disposal = %d.id, "resuming an approved disposal");
                    retention::spawn_execution(&st, d.id);
                }
            }
            Err(e) => tracing::warn!("listing unfinished disposals failed: {e}"),
        }
        let (p, r, c) = st.svc.catalog.counts().await;
        tracing::info!(
            parties = p,
            records = r,
            cases = c,
            "catalog ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = st.svc.catalog.catch_up(st.archive.journal()).await {
                tracing::warn!("catalog catch-up failed: {e}");
            }
            // Tokens created or revoked on another node of the same store take effect
            // here within this tick.
            match st.archive.journal().sync_ledger().await {
                Ok(_) => match st.tokens.follow().await {
                    Ok(true) => tracing::debug!("token table reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("token table reload failed: {e}"),
                },
                Err(e) => tracing::warn!("journal follow failed: {e}"),
            }
        }
    });
    // The search index follows the journal once the catalog (party names) is ready: it
    // first indexes whatever the journal holds beyond its last commit, then keeps up.
    if let Some(indexer) = state.search.clone() {
        let st = state.clone();
        tokio::spawn(async move {
            while !st.svc.catalog.wait_ready(Duration::from_secs(60)).await {}
            let mut tick = tokio::time::interval(st.config.index_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match indexer.catch_up().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(records = n, "search index updated"),
                    Err(e) => tracing::warn!("search index catch-up failed: {e}"),
                }
            }
        });
    }
    // On a bucket with Object Lock, retention and legal holds follow the journal.
    let state_dir = state
        .config
        .state_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    if let Some(locker) = crate::worm::Locker::new(state.svc.clone(), &state_dir) {
        let st = state.clone();
        tracing::info!(
            store = %st.archive.store().describe(),
            "S3 Object Lock: every object is locked by the bucket; retention follows the journal"
        );
        tokio::spawn(async move {
            while !st.svc.catalog.wait_ready(Duration::from_secs(60)).await {}
            let mut tick = tokio::time::interval(st.config.lock_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // One node applies the locks; another takes over if it dies.
                let now = st.archive.clock().now();
                match st
                    .archive
                    .store()
                    .hold_lease("object-lock", LEASE_TTL, now)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!("object lock lease: {e}");
                        continue;
                    }
                }
                match locker.catch_up().await {
                    Ok(r) if r.entries == 0 => {}
                    Ok(r) => tracing::debug!(
                        entries = r.entries,
                        extended = r.extended,
                        holds = r.holds_changed,
                        "object lock applied"
                    ),
                    Err(e) => tracing::warn!("object lock catch-up failed: {e}"),
                }
            }
        });
    }
    // On a shared store (several nodes), imports of a node that died are taken over.
    if state.archive.store().shared() {
        let st = state.clone();
        tokio::spawn(async move {
            while !st.svc.catalog.wait_ready(Duration::from_secs(60)).await {}
            let mut tick = tokio::time::interval(LEASE_TTL / 3);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = imports::take_over(&st).await {
                    tracing::warn!("looking for orphaned imports failed: {e}");
                }
                // An approved disposal whose node died is finished here.
                if let Err(e) = retention::take_over(&st).await {
                    tracing::warn!("looking for orphaned disposals failed: {e}");
                }
            }
        });
    }
    // Count records once, in the background (a list of the records/ prefix).
    let st = state.clone();
    tokio::spawn(async move {
        match st
            .archive
            .store()
            .count_children(&keys::records_prefix())
            .await
        {
            Ok(n) => st.metrics.add_records(i64::try_from(n).unwrap_or(i64::MAX)),
            Err(e) => tracing::warn!("counting records failed: {e}"),
        }
    });
    Ok(Started {
        state,
        new_admin_token,
    })
}

/// Every route of the API with its OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(records::routes())
        .merge(parties::routes())
        .merge(cases::routes())
        .merge(search::routes())
        .merge(ingest::routes())
        .merge(imports::routes())
        .merge(retention::routes())
        .merge(journal::routes())
        .merge(tokens::routes())
        .merge(ops::routes())
}

/// A response with `status`, a JSON body and a `Location` header.
pub(crate) fn located(
    status: axum::http::StatusCode,
    location: &str,
    body: impl serde::Serialize,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut resp = (status, axum::Json(body)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn no_method() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not support the method",
    )
}

/// The complete API: routes, fallbacks and middleware.
/// A response body of the chunks sent into a channel (an error ends it short).
pub(crate) fn channel_body(
    rx: tokio::sync::mpsc::Receiver<std::result::Result<bytes::Bytes, std::io::Error>>,
) -> axum::body::Body {
    axum::body::Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The API with `extra` routes beside it (the web interface), under the same fallbacks
/// and middleware.
pub fn app_with(state: AppState, extra: Router) -> Router {
    let (router, _) = api_router().split_for_parts();
    router
        .route("/v1/openapi.json", axum::routing::get(openapi::document))
        .merge(openapi::reference())
        .with_state(state.clone())
        .merge(extra)
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::track))
        .layer(DefaultBodyLimit::disable())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Open connections per client address, bounded.
struct PerClient {
    max: usize,
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One open connection of a client; gives its place back when dropped.
struct ClientSlot {
    owner: Arc<PerClient>,
    ip: std::net::IpAddr,
}

impl PerClient {
    fn new(max: usize) -> PerClient {
        PerClient {
            max,
            open: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn acquire(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            owner: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops accepting, lets
/// requests in flight finish (up to the grace period), waits for commits in flight and
/// journals every queued read.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let app = app(state.clone());
    serve_app(listener, state, app, shutdown).await
}

/// Like [`serve`], with the application given (the API with the web interface).
pub async fn serve_app(
    listener: TcpListener,
    state: AppState,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(state.config.max_header_bytes.max(8192))
        .header_read_timeout(state.config.header_timeout)
        .timer(TokioTimer::new());
    // HTTP/2: pings find dead peers; a bounded number of streams per connection.
    builder
        .http2()
        .max_header_list_size(u32::try_from(state.config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(100)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20))
        .timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(state.config.max_connections));
    let per_client = Arc::new(PerClient::new(state.config.max_connections_per_client));
    let first_byte = state.config.header_timeout;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing");
            continue;
        };
        let Some(client_slot) = per_client.acquire(peer.ip()) else {
            tracing::warn!(%peer, "connection limit per client reached; refusing");
            continue;
        };
        let svc = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _client_slot = client_slot;
            // A connection that sends nothing holds no slot for long.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(first_byte, stream.peek(&mut first)).await,
                Ok(Ok(1..))
            ) {
                tracing::debug!(%peer, "closed: nothing sent");
                drop(slot);
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for requests in flight");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(state.config.shutdown_grace) => {
            tracing::warn!("grace period over; unfinished uploads leave no record");
        }
    }
    state.archive.drain().await;
    state.reads.shutdown().await;
    // What the catalog applied is kept: the next start catches up from here.
    if state.svc.catalog.is_ready()
        && let Err(e) = state.svc.catalog.catch_up(state.archive.journal()).await
    {
        tracing::warn!("catalog: {e}");
    }
    if let Err(e) = state.svc.catalog.flush().await {
        tracing::warn!("catalog: {e}");
    }
    if let Err(e) = state.archive.journal().flush_ledger() {
        tracing::warn!("{e}");
    }
    tracing::info!("stopped");
    Ok(())
}
