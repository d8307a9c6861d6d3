//! `/v1/imports`: an uploaded mbox or zip, imported by the server as a job with progress
//! (the engine of `akte import`, `ingest::import`).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::problem::{ApiError, ApiResult, Problem};
use crate::ingest::import::{self, Progress, Summary};
use crate::store::keys;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_import))
        .routes(routes!(get_import))
}

/// Imports running at once, per caller and in all.
const MAX_IMPORTS_PER_CALLER: usize = 2;
const MAX_IMPORTS: usize = 4;
/// Finished jobs kept for polling.
const FINISHED_KEPT: usize = 1000;

/// A server-side import.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportJob {
    pub id: String,
    /// `unpacking`, `running`, `done` (see `summary` for failures) or `error` (the upload
    /// could not be read; nothing of it was archived after the error).
    pub state: String,
    /// `mbox` or `zip`.
    pub format: String,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub upload_bytes: u64,
    /// Bytes of the messages and files to import, and how many are read so far.
    pub bytes_total: u64,
    pub bytes_done: u64,
    /// Items read so far.
    pub items: u64,
    /// Archived, duplicates and failures so far (final once `done`).
    pub summary: Summary,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    /// Shared jobs another node finished (not looked at again).
    elsewhere: Mutex<std::collections::HashSet<String>>,
}

impl Jobs {
    fn is_finished_elsewhere(&self, id: &str) -> bool {
        self.elsewhere
            .lock()
            .map(|s| s.contains(id))
            .unwrap_or(false)
    }

    fn finished_elsewhere(&self, id: &str) {
        if let Ok(mut s) = self.elsewhere.lock() {
            s.insert(id.to_string());
        }
    }

    /// Imports not yet finished: `actor`'s, and all.
    fn running(&self, actor: &str) -> (usize, usize) {
        let Ok(m) = self.jobs.lock() else {
            return (0, 0);
        };
        let views: Vec<ImportJob> = m
            .values()
            .map(|j| j.snapshot())
            .filter(|v| v.state != "done" && v.state != "error")
            .collect();
        (
            views.iter().filter(|v| v.started_by == actor).count(),
            views.len(),
        )
    }
}

#[derive(Debug)]
struct Job {
    view: Mutex<ImportJob>,
}

impl Job {
    fn update(&self, f: impl FnOnce(&mut ImportJob)) {
        match self.view.lock() {
            Ok(mut v) => f(&mut v),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    fn snapshot(&self) -> ImportJob {
        match self.view.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl Progress for Job {
    fn total(&self, bytes: u64) {
        self.update(|v| v.bytes_total = bytes);
    }
    fn advance(&self, bytes: u64, items: u64) {
        self.update(|v| {
            v.bytes_done += bytes;
            v.items = items;
        });
    }
    fn summary(&self, s: &Summary) {
        self.update(|v| v.summary = s.clone());
    }
}

/// Import an mbox or a zip of files (emails, Maildir folders, documents): the upload is
/// stored, then imported in the background exactly as `akte import` does (duplicates
/// skipped, extraction with limits, group commits). Poll the job for progress.
#[utoipa::path(
    post, path = "/v1/imports", tag = "records",
    params(
        ("class" = Option<String>, Query, description = "Class for everything imported (default by rules)"),
        ("party" = Option<String>, Query, description = "Link everything to these parties (comma-separated)"),
        ("role" = Option<String>, Query, description = "Their role (default subject)"),
        ("case" = Option<String>, Query, description = "Add everything to these cases (comma-separated)"),
    ),
    request_body(content = Vec<u8>, content_type = "application/mbox"),
    responses(
        (status = 202, description = "Started", body = ImportJob, headers(("Location" = String, description = "The job"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many imports running", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn start_import(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let d = super::ingest::defaults(&state, req.uri().query()).await?;
    // Imports are heavy: a few at a time per caller, and in all.
    let (mine, all) = state.imports.running(&caller.actor());
    if mine >= MAX_IMPORTS_PER_CALLER || all >= MAX_IMPORTS {
        return Err(ApiError::rate_limited(
            30,
            format!(
                "{mine} of your imports and {all} in all are running (at most \
                 {MAX_IMPORTS_PER_CALLER} per caller, {MAX_IMPORTS} in all); retry when one is done"
            ),
        ));
    }

    // The upload, to a temporary file (never held in memory).
    // In the spool directory, which the next start cleans if this process dies.
    let dir = tempfile::Builder::new()
        .prefix("akte-import-")
        .tempdir_in(state.config.spool_dir())
        .map_err(|e| ApiError::from(crate::error::Error::io("temporary directory", e)))?;
    let upload = dir.path().join("upload");
    let limit = state.config.max_upload_bytes;
    let mut file = tokio::fs::File::create(&upload)
        .await
        .map_err(|e| ApiError::from(crate::error::Error::io(upload.display(), e)))?;
    let mut body = req.into_body().into_data_stream();
    let mut size = 0u64;
    let mut head = Vec::new();
    let idle = state.config.upload_idle_timeout;
    while let Some(chunk) = tokio::time::timeout(idle, body.try_next())
        .await
        .map_err(|_| ApiError::invalid("body", "the upload stalled"))?
        .map_err(|e| ApiError::invalid("body", format!("upload interrupted: {e}")))?
    {
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::too_large(limit));
        }
        if head.len() < 5 {
            head.extend_from_slice(&chunk[..chunk.len().min(5 - head.len())]);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::from(crate::error::Error::io(upload.display(), e)))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::from(crate::error::Error::io(upload.display(), e)))?;
    drop(file);
    let format = if head.starts_with(b"PK\x03\x04") {
        "zip"
    } else if head.starts_with(b"From ") {
        "mbox"
    } else {
        return Err(crate::error::Error::unprocessable(
            "body",
            "expected an mbox (starting with a \"From \" line) or a zip",
        )
        .into());
    };

    let id = state.archive.clock().new_id().to_string();
    let view = ImportJob {
        id: id.clone(),
        state: if format == "zip" {
            "unpacking"
        } else {
            "running"
        }
        .into(),
        format: format.into(),
        started_at: state.archive.clock().now(),
        started_by: caller.actor(),
        upload_bytes: size,
        bytes_total: 0,
        bytes_done: 0,
        items: 0,
        summary: Summary::default(),
        error: None,
    };
    let store = state.archive.store();
    // The lease is renewed from here on, so that a long upload to a shared store cannot
    // outlast it and let another node take the job over while it is still running here.
    let lease = format!("import-{id}");
    let Some(held) = state.take_lease(&lease).await else {
        return Err(crate::error::Error::Internal(format!("lease {lease} is taken")).into());
    };
    if store.shared() {
        // Other nodes share the store: the job goes there too, under this node's lease,
        // so that another node finishes it should this one die.
        let shared = SharedJob {
            view: view.clone(),
            class: d.class.clone(),
            parties: d.parties.clone(),
            cases: d.cases.clone(),
        };
        store
            .put_file(&keys::import_job(&id, "upload"), &upload)
            .await?;
        store
            .put_new(
                &keys::import_job(&id, "job.json"),
                bytes::Bytes::from(
                    serde_json::to_vec(&shared)
                        .map_err(|e| crate::error::Error::Internal(e.to_string()))?,
                ),
            )
            .await?;
    }
    let job = register(&state, view);
    let st = state.clone();
    let runner = job.clone();
    state.tasks.spawn(async move {
        run_job(&st, &runner, &dir, upload, format, size, d).await;
        drop(held);
        drop(dir);
    });
    Ok(super::located(
        StatusCode::ACCEPTED,
        &format!("/v1/imports/{id}"),
        job.snapshot(),
    ))
}

/// What a node needs to run an import another node started: its view and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SharedJob {
    view: ImportJob,
    class: Option<String>,
    parties: Vec<crate::record::PartyLink>,
    cases: Vec<String>,
}

/// Enters a job into this node's table (forgetting the oldest finished beyond a bound).
fn register(state: &AppState, view: ImportJob) -> Arc<Job> {
    let id = view.id.clone();
    let job = Arc::new(Job {
        view: Mutex::new(view),
    });
    if let Ok(mut m) = state.imports.jobs.lock() {
        let mut done: Vec<(chrono::DateTime<chrono::Utc>, String)> = m
            .iter()
            .map(|(k, j)| (j.snapshot(), k))
            .filter(|(v, _)| v.state == "done" || v.state == "error")
            .map(|(v, k)| (v.started_at, k.clone()))
            .collect();
        if done.len() > FINISHED_KEPT {
            done.sort();
            for (_, k) in &done[..done.len() - FINISHED_KEPT] {
                m.remove(k);
            }
        }
        m.insert(id, job.clone());
    }
    job
}

/// Runs an import from its upload in `dir`, and records how it ended (in the store
/// too, when it is shared).
async fn run_job(
    st: &AppState,
    runner: &Arc<Job>,
    dir: &tempfile::TempDir,
    upload: std::path::PathBuf,
    format: &str,
    size: u64,
    d: crate::ingest::batch::IngestDefaults,
) {
    let actor = runner.snapshot().started_by;
    let result = async {
        let input = if format == "zip" {
            let target = dir.path().join("files");
            let from = upload.clone();
            let cap = size.saturating_mul(crate::ingest::zip::RATIO);
            tokio::task::spawn_blocking(move || crate::ingest::zip::unzip(&from, &target, cap))
                .await
                .map_err(|e| crate::error::Error::Internal(format!("unzip task: {e}")))??;
            runner.update(|v| v.state = "running".into());
            dir.path().join("files")
        } else {
            // An mbox is recognised by its content, whatever the upload's name.
            let mbox = dir.path().join("upload.mbox");
            std::fs::rename(&upload, &mbox)
                .map_err(|e| crate::error::Error::io(mbox.display(), e))?;
            mbox
        };
        let never = AtomicBool::new(false);
        import::run(&st.ingest, &actor, &[input], &d, false, &**runner, &never).await
    }
    .await;
    let detail = match &result {
        Ok(s) => format!(
            "import job {}: {} archived, {} duplicates, {} failed",
            runner.snapshot().id,
            s.archived,
            s.duplicates,
            s.failed
        ),
        Err(e) => format!("import job {}: error: {e}", runner.snapshot().id),
    };
    tracing::info!("{detail}");
    runner.update(|v| match result {
        Ok(s) => {
            v.state = "done".into();
            v.summary = s;
        }
        Err(e) => {
            v.state = "error".into();
            v.error = Some(e.to_string());
        }
    });
    let store = st.archive.store();
    if store.shared() {
        let view = runner.snapshot();
        let done = async {
            let bytes = serde_json::to_vec(&view)
                .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
            store
                .put_new(
                    &keys::import_job(&view.id, "done.json"),
                    bytes::Bytes::from(bytes),
                )
                .await?;
            store
                .delete_job_object(&keys::import_job(&view.id, "upload"))
                .await
        }
        .await;
        if let Err(e) = done {
            tracing::warn!("import job {}: recording its end failed: {e}", view.id);
        }
    }
}

/// Takes over the shared imports whose node stopped renewing its lease (it died): each
/// runs here from its upload in the store; what the dead node archived already counts
/// as duplicates. Called every few seconds on every node of a shared store.
pub async fn take_over(state: &AppState) -> crate::error::Result<usize> {
    let store = state.archive.store();
    let mut taken = 0;
    for id in store.children(&keys::import_jobs_prefix()).await? {
        let known = state
            .imports
            .jobs
            .lock()
            .map(|m| m.contains_key(&id))
            .unwrap_or(true);
        if known || state.imports.is_finished_elsewhere(&id) {
            continue;
        }
        if store.exists(&keys::import_job(&id, "done.json")).await? {
            state.imports.finished_elsewhere(&id);
            continue;
        }
        let Some(job) = store.get_opt(&keys::import_job(&id, "job.json")).await? else {
            continue;
        };
        let lease = format!("import-{id}");
        // Held (and renewed) from here: catching up and downloading the upload may take
        // longer than the lease lasts.
        let Some(held) = state.take_lease(&lease).await else {
            continue;
        };
        // What the dead node archived counts as duplicates only if the catalog knows
        // it: bring it up to the journal's head first (the dead node appends nothing).
        state.svc.catalog.catch_up(state.archive.journal()).await?;
        let shared: SharedJob = serde_json::from_slice(&job)
            .map_err(|e| crate::error::Error::Internal(format!("import job {id}: {e}")))?;
        let dir = tempfile::Builder::new()
            .prefix("akte-import-")
            .tempdir_in(state.config.spool_dir())
            .map_err(|e| crate::error::Error::io("temporary directory", e))?;
        let upload = dir.path().join("upload");
        store
            .get_file(&keys::import_job(&id, "upload"), &upload)
            .await?;
        tracing::warn!(job = %id, "taking over an import whose node stopped (lease expired)");
        let mut view = shared.view.clone();
        view.state = "running".into();
        view.bytes_done = 0;
        let (format, size) = (view.format.clone(), view.upload_bytes);
        let job = register(state, view);
        let d = crate::ingest::batch::IngestDefaults {
            class: shared.class,
            parties: shared.parties,
            cases: shared.cases,
            keep_copies: false,
            envelope: None,
            extra: Default::default(),
        };
        let st = state.clone();
        state.tasks.spawn(async move {
            run_job(&st, &job, &dir, upload, &format, size, d).await;
            drop(held);
            drop(dir);
        });
        taken += 1;
    }
    Ok(taken)
}

/// Progress and, once done, the summary of an import job.
#[utoipa::path(
    get, path = "/v1/imports/{job}", tag = "records",
    params(("job" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = ImportJob),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(job): Path<String>,
) -> ApiResult<axum::Json<ImportJob>> {
    caller.require(roles::INGEST)?;
    let local = state
        .imports
        .jobs
        .lock()
        .ok()
        .and_then(|m| m.get(&job).cloned());
    if let Some(j) = local {
        return Ok(axum::Json(j.snapshot()));
    }
    // A job of another node of the shared store: its end, or that it runs there.
    let store = state.archive.store();
    if store.shared() && crate::ids::validate_id(&job).is_ok() {
        if let Some(b) = store.get_opt(&keys::import_job(&job, "done.json")).await? {
            let v: ImportJob = serde_json::from_slice(&b)
                .map_err(|e| crate::error::Error::Internal(format!("import job {job}: {e}")))?;
            return Ok(axum::Json(v));
        }
        if let Some(b) = store.get_opt(&keys::import_job(&job, "job.json")).await? {
            let s: SharedJob = serde_json::from_slice(&b)
                .map_err(|e| crate::error::Error::Internal(format!("import job {job}: {e}")))?;
            return Ok(axum::Json(s.view));
        }
    }
    Err(ApiError::not_found(format!("no import job {job}")))
}
