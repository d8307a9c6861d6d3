//! `/v1/journal` and `/v1/verify`: the audit trail and store verification.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params::Params;
use super::problem::{ApiError, ApiResult, Problem};
use crate::audit::journal::{Draft, JournalEntry, Subject};
use crate::verify::{self, Progress};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_journal))
        .routes(routes!(start_verify))
        .routes(routes!(get_verify))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subjects: Vec<SubjectView>,
    pub payload_digest: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectView {
    pub kind: String,
    pub id: String,
    pub rev: Option<u32>,
    /// SHA-256 of the revision written, when one entry committed several (an import's
    /// group commit); otherwise the entry's `payload_digest` covers its one subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl From<JournalEntry> for EntryView {
    fn from(e: JournalEntry) -> Self {
        EntryView {
            seq: e.seq,
            time: e.time,
            actor: e.actor,
            action: e.action,
            subjects: e
                .subjects
                .into_iter()
                .map(|s| SubjectView {
                    kind: s.kind,
                    id: s.id,
                    rev: s.rev,
                    digest: s.digest,
                })
                .collect(),
            payload_digest: e.payload_digest,
            detail: e.detail,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JournalPage {
    pub entries: Vec<EntryView>,
    /// Pass as `since` to get the next page.
    pub next_since: u64,
    /// Sequence number of the last entry in the journal.
    pub head: u64,
}

/// Journal entries after `since` (auditor, admin).
#[utoipa::path(
    get, path = "/v1/journal", tag = "audit",
    params(
        ("since" = Option<i64>, Query, minimum = 0, description = "Entries after this sequence number (default 0)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "At most this many (default 1000)"),
    ),
    responses(
        (status = 200, body = JournalPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_journal(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<axum::Json<JournalPage>> {
    caller.require(roles::AUDIT)?;
    let p = Params::parse(req.uri().query(), &["since", "limit"])?;
    // Sequence numbers are signed 64-bit in the API (as the OpenAPI document says).
    let since: i64 = p.number("since")?.unwrap_or(0);
    let since = u64::try_from(since)
        .map_err(|_| ApiError::invalid("since", "a sequence number, 0 or more"))?;
    let limit: usize = p.number("limit")?.unwrap_or(1000);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid("limit", "must be between 1 and 10000"));
    }
    let journal = state.archive.journal();
    let head = journal.head_seq().await?;
    let entries = journal.entries(since, limit).await?;
    let next_since = entries.last().map(|e| e.seq).unwrap_or(since);
    Ok(axum::Json(JournalPage {
        entries: entries.into_iter().map(EntryView::from).collect(),
        next_since,
        head,
    }))
}

/// A verification run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyJob {
    pub id: String,
    /// `running`, `passed`, `failed` (problems found) or `error` (could not complete).
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub report: Option<VerifyReport>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyReport {
    pub objects: u64,
    pub blobs: u64,
    pub records: u64,
    pub revisions: u64,
    pub journal_entries: u64,
    pub bytes_hashed: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub problems: Vec<ProblemView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemView {
    pub key: String,
    pub what: String,
    pub expected: Option<String>,
    pub found: Option<String>,
}

#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

#[derive(Debug)]
struct Job {
    view: Mutex<VerifyJob>,
    total: AtomicU64,
    done: AtomicU64,
}

impl Progress for Job {
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Job {
    fn snapshot(&self) -> VerifyJob {
        let mut v = match self.view.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        v.bytes_total = self.total.load(Ordering::Relaxed);
        v.bytes_done = self.done.load(Ordering::Relaxed);
        v
    }
}

impl Jobs {
    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok().and_then(|m| m.get(id).cloned())
    }
}

/// Start verifying the whole store (auditor, admin). Returns a job to poll.
#[utoipa::path(
    post, path = "/v1/verify", tag = "audit",
    responses((status = 202, description = "Started, or the verification already running", body = VerifyJob, headers(("Location" = String, description = "The job")))),
    security(("bearer" = []))
)]
async fn start_verify(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(roles::AUDIT)?;
    // One full verification at a time: asking again while one runs gets that one.
    let running = state.jobs.jobs.lock().ok().and_then(|m| {
        m.values()
            .map(|j| j.snapshot())
            .find(|v| v.state == "running")
    });
    if let Some(v) = running {
        return Ok(super::located(
            StatusCode::ACCEPTED,
            &format!("/v1/verify/{}", v.id),
            v,
        ));
    }
    let id = state.archive.clock().new_id().to_string();
    let job = Arc::new(Job {
        view: Mutex::new(VerifyJob {
            id: id.clone(),
            state: "running".into(),
            started_at: state.archive.clock().now(),
            started_by: caller.actor(),
            bytes_total: 0,
            bytes_done: 0,
            report: None,
            error: None,
        }),
        total: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });
    if let Ok(mut m) = state.jobs.jobs.lock() {
        m.insert(id.clone(), job.clone());
    }
    let st = state.clone();
    let actor = caller.actor();
    let runner = job.clone();
    state.tasks.spawn(async move {
        let result = verify::verify(
            st.archive.store(),
            &verify::Options::default(),
            runner.clone(),
        )
        .await;
        let (state_s, report, error) = match result {
            Ok(r) => {
                let view = VerifyReport {
                    objects: r.objects,
                    blobs: r.blobs,
                    records: r.records,
                    revisions: r.revisions,
                    journal_entries: r.journal_entries,
                    bytes_hashed: r.bytes_hashed,
                    seconds: r.seconds,
                    mb_per_s: r.mb_per_s(),
                    problems: r
                        .problems
                        .iter()
                        .map(|p| ProblemView {
                            key: p.key.clone(),
                            what: p.what.clone(),
                            expected: p.expected.clone(),
                            found: p.found.clone(),
                        })
                        .collect(),
                };
                (if r.ok() { "passed" } else { "failed" }, Some(view), None)
            }
            Err(e) => ("error", None, Some(e.to_string())),
        };
        // The run itself is an audit event.
        let detail = match &report {
            Some(r) => format!(
                "{state_s}: {} objects, {} problems",
                r.objects,
                r.problems.len()
            ),
            None => format!("{state_s}: {}", error.clone().unwrap_or_default()),
        };
        let _ = st
            .archive
            .journal()
            .append(Draft {
                actor,
                action: "audit.verify".into(),
                subjects: vec![Subject {
                    kind: "verify-job".into(),
                    id: runner.snapshot().id,
                    rev: None,
                    digest: None,
                }],
                payload_digest: None,
                detail: Some(detail),
            })
            .await;
        if let Ok(mut v) = runner.view.lock() {
            v.state = state_s.into();
            v.report = report;
            v.error = error;
        }
    });
    Ok(super::located(
        StatusCode::ACCEPTED,
        &format!("/v1/verify/{id}"),
        job.snapshot(),
    ))
}

/// State and, when done, the report of a verification run.
#[utoipa::path(
    get, path = "/v1/verify/{job}", tag = "audit",
    params(("job" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = VerifyJob),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_verify(
    State(state): State<AppState>,
    caller: Caller,
    Path(job): Path<String>,
) -> ApiResult<axum::Json<VerifyJob>> {
    caller.require(roles::AUDIT)?;
    let j = state
        .jobs
        .get(&job)
        .ok_or_else(|| ApiError::not_found(format!("no verify job {job}")))?;
    Ok(axum::Json(j.snapshot()))
}
