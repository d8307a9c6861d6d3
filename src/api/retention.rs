//! `/v1/holds`, `/v1/retention/eligible`, `/v1/disposals`: legal holds and four-eyes
//! disposal.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params;
use super::problem::{ApiError, ApiResult, Problem};
use super::records::RecordView;
use crate::disposal::hold::{HoldRevision, HoldScope};
use crate::disposal::report::RowFormat;
use crate::disposal::{self, DisposalRevision};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_holds, place_hold))
        .routes(routes!(release_hold))
        .routes(routes!(eligible))
        .routes(routes!(report))
        .routes(routes!(list_disposals, request_disposal))
        .routes(routes!(get_disposal))
        .routes(routes!(approve_disposal))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub id: String,
    pub rev: u32,
    pub name: String,
    pub reason: String,
    pub authority: Option<String>,
    pub scope: HoldScope,
    pub active: bool,
    pub placed_at: chrono::DateTime<chrono::Utc>,
    pub placed_by: String,
    pub released_at: Option<chrono::DateTime<chrono::Utc>>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

impl From<HoldRevision> for HoldView {
    fn from(h: HoldRevision) -> Self {
        HoldView {
            id: h.id,
            rev: h.rev,
            name: h.name,
            reason: h.reason,
            authority: h.authority,
            scope: h.scope,
            active: h.active,
            placed_at: h.placed_at,
            placed_by: h.placed_by,
            released_at: h.released_at,
            released_by: h.released_by,
            release_reason: h.release_reason,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHold {
    pub name: String,
    pub reason: String,
    pub authority: Option<String>,
    pub scope: HoldScope,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisposalRequest {
    pub records: Vec<String>,
    pub reason: String,
}

/// Every legal hold, active and released.
#[utoipa::path(get, path = "/v1/holds", tag = "retention", responses((status = 200, body = Vec<HoldView>)), security(("bearer" = [])))]
async fn list_holds(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<HoldView>>> {
    caller.require(roles::RETENTION_READ)?;
    Ok(axum::Json(
        state
            .svc
            .holds
            .all()
            .await?
            .into_iter()
            .map(HoldView::from)
            .collect(),
    ))
}

/// Place a legal hold on records, a party (covering records linked later too), a case,
/// or a class within a date range.
#[utoipa::path(
    post, path = "/v1/holds", tag = "retention",
    request_body = PlaceHold,
    responses((status = 201, body = HoldView), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
async fn place_hold(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    let p: PlaceHold = params::json_body(req, 1 << 20).await?;
    let h = state
        .svc
        .holds
        .place(&caller.actor(), &p.name, &p.reason, p.authority, p.scope)
        .await?;
    Ok(super::located(
        StatusCode::CREATED,
        &format!("/v1/holds/{}", h.id),
        HoldView::from(h.clone()),
    ))
}

/// Release a legal hold (with a reason).
#[utoipa::path(
    post, path = "/v1/holds/{id}/release", tag = "retention",
    params(("id" = String, Path, description = "Hold id")),
    request_body = Reason,
    responses((status = 201, body = HoldView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    let r: Reason = params::json_body(req, 1 << 20).await?;
    let h = state
        .svc
        .holds
        .release(&caller.actor(), &id, &r.reason)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(HoldView::from(h))).into_response())
}

/// Records past their retention and under no hold: eligible for a disposal request. A
/// page in id order: pass the last id of a full page as `after` for the next.
#[utoipa::path(
    get, path = "/v1/retention/eligible", tag = "retention",
    params(
        ("after" = Option<String>, Query, description = "Records after this id (the last of the page before)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "At most this many (default 1000)"),
    ),
    responses(
        (status = 200, body = Vec<RecordView>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn eligible(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<axum::Json<Vec<RecordView>>> {
    caller.require(roles::RETENTION_READ)?;
    let p = params::Params::parse(req.uri().query(), &["after", "limit"])?;
    let after = p.string("after");
    if let Some(a) = &after {
        crate::ids::validate_id(a).map_err(|_| ApiError::invalid("after", "a record id"))?;
    }
    let limit: usize = p.number("limit")?.unwrap_or(1000);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid("limit", "must be between 1 and 10000"));
    }
    Ok(axum::Json(
        state
            .svc
            .disposals
            .eligible(&state.svc.catalog, after.as_deref(), limit)
            .await?
            .into_iter()
            .map(RecordView::from)
            .collect(),
    ))
}

/// The format of the retention report.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only describes the `format` parameter
enum ReportFormat {
    Json,
    Csv,
    Html,
}

/// The retention audit report (`format` json, csv or html). Read-only.
#[utoipa::path(
    get, path = "/v1/retention/report", tag = "retention",
    params(
        ("format" = inline(Option<ReportFormat>), Query, description = "json (default), csv or html"),
        ("rows" = Option<bool>, Query, description = "With one row per record (default true; false: only the counts, per class and in all)"),
    ),
    responses(
        (status = 200, description = "The report in the format asked for", content(
            (crate::disposal::report::RetentionReport = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
        )),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn report(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::RETENTION_READ)?;
    let p = super::params::Params::parse(req.uri().query(), &["format", "rows"])?;
    let rows = p.number::<bool>("rows")?.unwrap_or(true);
    state.catalog_ready().await?;
    // Rows are streamed as they are counted (in one pass, memory independent of the
    // number of records); the counts follow them.
    let streamed = match p.string("format").as_deref() {
        None | Some("json") if rows => Some((RowFormat::Json, "application/json")),
        Some("csv") if rows => Some((RowFormat::Csv, "text/csv; charset=utf-8")),
        _ => None,
    };
    if let Some((format, content_type)) = streamed {
        let tally = crate::disposal::report::prepare(
            &state.archive,
            &state.svc.catalog,
            &state.svc.holds,
            &state.svc.disposals,
            true,
        )
        .await?;
        let rx = crate::disposal::report::spawn_stream(
            state.archive.clone(),
            state.svc.catalog.clone(),
            tally,
            format,
        );
        let mut resp = Response::new(super::channel_body(rx));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return Ok(resp);
    }
    let r = crate::disposal::report::build(
        &state.archive,
        &state.svc.catalog,
        &state.svc.holds,
        &state.svc.disposals,
        rows,
    )
    .await?;
    let text = |body: String, ct: &'static str| {
        let mut resp = body.into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        resp
    };
    match p.string("format").as_deref() {
        None | Some("json") => Ok(axum::Json(r).into_response()),
        // Without rows: the header line alone.
        Some("csv") => Ok(text(
            crate::disposal::report::to_csv(&r),
            "text/csv; charset=utf-8",
        )),
        Some("html") => {
            let mut resp = text(
                crate::disposal::report::to_html(&r),
                "text/html; charset=utf-8",
            );
            resp.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            Ok(resp)
        }
        Some(f) => Err(ApiError::invalid(
            "format",
            format!("{f:?}: json, csv or html"),
        )),
    }
}

/// Every disposal request, newest first, with its state and (once approved) the
/// progress of its execution.
#[utoipa::path(
    get, path = "/v1/disposals", tag = "retention",
    responses((status = 200, body = Vec<DisposalView>)),
    security(("bearer" = []))
)]
async fn list_disposals(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<DisposalView>>> {
    caller.require(roles::RETENTION_READ)?;
    let mut out = Vec::new();
    for d in state.svc.disposals.all().await? {
        out.push(view(&state, d).await?);
    }
    Ok(axum::Json(out))
}

/// Request the disposal of eligible records; another person must approve it.
#[utoipa::path(
    post, path = "/v1/disposals", tag = "retention",
    request_body = DisposalRequest,
    responses(
        (status = 201, body = DisposalRevision),
        (status = 423, description = "A record is retained, held or already disposed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn request_disposal(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    let r: DisposalRequest = params::json_body(req, 1 << 20).await?;
    let d = state
        .svc
        .disposals
        .request(&caller.actor(), &r.records, &r.reason)
        .await?;
    Ok(super::located(
        StatusCode::CREATED,
        &format!("/v1/disposals/{}", d.id),
        d.clone(),
    ))
}

/// A disposal request with how far its execution has come.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisposalView {
    #[serde(flatten)]
    pub request: DisposalRevision,
    /// For an approved request: the execution's progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Execution {
    /// Records tombstoned so far, of all.
    pub records_done: usize,
    pub records_total: usize,
    /// Whether this server is executing it now.
    pub running: bool,
    /// Why the last run stopped (it is retried by approving again, or at restart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Disposal executions of this server: which run, and the last error of each.
#[derive(Debug, Default)]
pub struct Runs {
    runs: std::sync::Mutex<std::collections::HashMap<String, RunState>>,
}

#[derive(Debug, Clone, Default)]
struct RunState {
    running: bool,
    error: Option<String>,
}

impl Runs {
    fn get(&self, id: &str) -> RunState {
        self.runs
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .unwrap_or_default()
    }

    /// Marks `id` running; false if it already is.
    fn start(&self, id: &str) -> bool {
        let Ok(mut m) = self.runs.lock() else {
            return false;
        };
        let e = m.entry(id.to_string()).or_default();
        if e.running {
            return false;
        }
        e.running = true;
        e.error = None;
        true
    }

    fn finish(&self, id: &str, error: Option<String>) {
        if let Ok(mut m) = self.runs.lock() {
            m.insert(
                id.to_string(),
                RunState {
                    running: false,
                    error,
                },
            );
        }
    }
}

/// Executes an approved request in the background (once at a time per request): after
/// an approval, and for every unfinished one when the server starts.
pub fn spawn_execution(state: &AppState, id: String) {
    if !state.disposal_runs.start(&id) {
        return;
    }
    let st = state.clone();
    state.tasks.spawn(async move {
        // One node executes a disposal; the others leave it to that node (and take it
        // over at their next start should it die).
        let lease = format!("disposal-{id}");
        let Some(r) = st
            .with_lease(&lease, st.svc.disposals.execute(&id, &disposal::NoProgress))
            .await
        else {
            st.disposal_runs.finish(
                &id,
                Some("another node is executing this disposal".to_string()),
            );
            return;
        };
        match r {
            Ok(d) => {
                for item in &d.items {
                    if let Ok(r) = st.archive.latest(&item.record).await {
                        st.svc.catalog.put_record(&r).await;
                    }
                }
                st.disposal_runs.finish(&id, None);
            }
            Err(e) => {
                tracing::error!(disposal = %id, "disposal execution stopped: {e}");
                st.disposal_runs.finish(&id, Some(e.to_string()));
            }
        }
    });
}

/// On a shared store: finishes approved disposals that a node left half-done (records
/// tombstoned, the execution not journaled) and no node is executing (its lease expired: it died).
/// One that never started, or stopped on a refusal (a hold, S3 Object Lock), waits for
/// its next approval or a node's start instead of being retried every few seconds.
pub async fn take_over(state: &AppState) -> crate::error::Result<usize> {
    let mut taken = 0;
    for d in state.svc.disposals.unfinished().await? {
        let run = state.disposal_runs.get(&d.id);
        if run.running || run.error.is_some() {
            continue;
        }
        let (done, _) = state.svc.disposals.progress(&d).await?;
        if done == 0 {
            continue;
        }
        let lease = format!("disposal-{}", d.id);
        let now = state.archive.clock().now();
        if !state
            .archive
            .store()
            .hold_lease(&lease, super::LEASE_TTL, now)
            .await?
        {
            continue;
        }
        tracing::warn!(disposal = %d.id, "taking over an approved disposal no node executes");
        spawn_execution(state, d.id);
        taken += 1;
    }
    Ok(taken)
}

async fn view(state: &AppState, d: DisposalRevision) -> ApiResult<DisposalView> {
    let execution = if d.state == disposal::DisposalState::Requested {
        None
    } else {
        let (records_done, records_total) = state.svc.disposals.progress(&d).await?;
        let run = state.disposal_runs.get(&d.id);
        Some(Execution {
            records_done,
            records_total,
            running: run.running,
            error: run.error,
        })
    };
    Ok(DisposalView {
        request: d,
        execution,
    })
}

/// A disposal request; with `Accept: text/html` its human-readable certificate.
#[utoipa::path(
    get, path = "/v1/disposals/{id}", tag = "retention",
    params(("id" = String, Path, description = "Disposal request id")),
    responses(
        (status = 200, body = DisposalView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_disposal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::RETENTION_READ)?;
    let d = state.svc.disposals.get(&id).await?;
    let html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if html {
        let mut resp = disposal::certificate_html(&d).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        return Ok(resp);
    }
    Ok(axum::Json(view(&state, d).await?).into_response())
}

/// Approve a disposal request (only someone other than the requester). The approval is
/// journaled at once; the execution (tombstones, deletion of unused content, key
/// destruction) runs in the background, survives restarts, and shows its progress at
/// `GET /v1/disposals/{id}`. Approving an approved request again resumes a stopped
/// execution.
#[utoipa::path(
    post, path = "/v1/disposals/{id}/approve", tag = "retention",
    params(("id" = String, Path, description = "Disposal request id")),
    responses(
        (status = 202, description = "Approved; executing", body = DisposalView, headers(("Location" = String, description = "The request, with its progress"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Four-eyes rule, a hold, retention or a clock behind the journal", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn approve_disposal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    let d = state
        .svc
        .disposals
        .approve_only(&caller.actor(), &id)
        .await?;
    spawn_execution(&state, d.id.clone());
    let v = view(&state, d).await?;
    Ok(super::located(
        StatusCode::ACCEPTED,
        &format!("/v1/disposals/{}", v.request.id),
        v,
    ))
}
