//! Operations: `/healthz` (no token), `/readyz`, `/metrics` (Prometheus text), and the
//! middleware that counts requests, latencies and bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::problem::{ApiError, ApiResult, Problem};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

/// Liveness: the process answers. The only endpoint without a token.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Status)))]
async fn healthz() -> axum::Json<Status> {
    axum::Json(Status {
        status: "ok".into(),
    })
}

/// Readiness: the store answers. No token (load balancers and Kubernetes probes ask
/// it); the answer is reused for a second, so that asking often costs the store nothing.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = Status),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn readyz(State(state): State<AppState>) -> ApiResult<axum::Json<Status>> {
    let mut last = state.readiness.lock().await;
    let fresh = last
        .as_ref()
        .is_some_and(|(at, _)| at.elapsed() < std::time::Duration::from_secs(1));
    if !fresh {
        let r = state
            .archive
            .journal()
            .head_seq()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        *last = Some((std::time::Instant::now(), r));
    }
    match last.as_ref().map(|(_, r)| r.clone()) {
        Some(Err(e)) => {
            let mut p = ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Not ready",
                format!("the store does not answer: {e}"),
            );
            p.retry_after = Some(5);
            Err(p)
        }
        _ => Ok(axum::Json(Status {
            status: "ready".into(),
        })),
    }
}

/// Prometheus metrics (admin, auditor).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
    security(("bearer" = []))
)]
async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(roles::AUDIT)?;
    let journal = state.archive.journal().head_seq().await?;
    let text = state.metrics.render(journal);
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}

const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    records: AtomicI64,
    /// Messages per intake (`smtp`, …) and outcome (`accepted`, `deferred`, `refused`).
    intake: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Message bytes received per intake.
    intake_bytes: Mutex<BTreeMap<&'static str, u64>>,
    /// When each polling intake (`imap`) last finished a whole run.
    intake_synced: Mutex<BTreeMap<&'static str, std::time::Instant>>,
}

impl Metrics {
    /// Counts `n` messages of `intake` with `outcome`.
    pub fn intake_n(&self, intake: &'static str, outcome: &'static str, n: u64) {
        if let Ok(mut m) = self.intake.lock() {
            *m.entry((intake, outcome)).or_default() += n;
        }
    }

    /// A polling intake finished a whole run now (its lag starts again from 0).
    pub fn intake_synced(&self, intake: &'static str) {
        if let Ok(mut m) = self.intake_synced.lock() {
            m.insert(intake, std::time::Instant::now());
        }
    }

    /// Counts one message of `intake` with its `outcome` and size.
    pub fn intake(&self, intake: &'static str, outcome: &'static str, bytes: u64) {
        if let Ok(mut m) = self.intake.lock() {
            *m.entry((intake, outcome)).or_default() += 1;
        }
        if let Ok(mut m) = self.intake_bytes.lock() {
            *m.entry(intake).or_default() += bytes;
        }
    }

    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_created(&self) {
        self.records.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_records(&self, n: i64) {
        self.records.fetch_add(n, Ordering::Relaxed);
    }

    fn observe(&self, method: &str, route: &str, status: u16, secs: f64, out: u64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(out, Ordering::Relaxed);
    }

    pub fn render(&self, journal_length: u64) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP akte_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(s, "# TYPE akte_http_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "akte_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP akte_http_request_duration_seconds Time to response headers."
        );
        let _ = writeln!(s, "# TYPE akte_http_request_duration_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "akte_http_request_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "akte_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "akte_http_request_duration_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "akte_http_request_duration_seconds_count {count}");
        let _ = writeln!(
            s,
            "# HELP akte_http_received_bytes_total Upload bytes received."
        );
        let _ = writeln!(s, "# TYPE akte_http_received_bytes_total counter");
        let _ = writeln!(
            s,
            "akte_http_received_bytes_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP akte_http_sent_bytes_total Response bytes sent (by Content-Length)."
        );
        let _ = writeln!(s, "# TYPE akte_http_sent_bytes_total counter");
        let _ = writeln!(
            s,
            "akte_http_sent_bytes_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP akte_records Records in the store (counted at start, plus this node's creations)."
        );
        let _ = writeln!(s, "# TYPE akte_records gauge");
        let _ = writeln!(s, "akte_records {}", self.records.load(Ordering::Relaxed));
        let _ = writeln!(
            s,
            "# HELP akte_intake_messages_total Messages per intake and outcome (accepted: archived, over SMTP answered 250; duplicate: archived before; deferred: answered 4xx, the sender retries; refused: answered 5xx)."
        );
        let _ = writeln!(s, "# TYPE akte_intake_messages_total counter");
        if let Ok(m) = self.intake.lock() {
            for ((intake, outcome), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "akte_intake_messages_total{{intake=\"{intake}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP akte_intake_bytes_total Message bytes received per intake."
        );
        let _ = writeln!(s, "# TYPE akte_intake_bytes_total counter");
        if let Ok(m) = self.intake_bytes.lock() {
            for (intake, n) in m.iter() {
                let _ = writeln!(s, "akte_intake_bytes_total{{intake=\"{intake}\"}} {n}");
            }
        }
        let _ = writeln!(
            s,
            "# HELP akte_intake_lag_seconds Seconds since a polling intake last finished a whole run."
        );
        let _ = writeln!(s, "# TYPE akte_intake_lag_seconds gauge");
        if let Ok(m) = self.intake_synced.lock() {
            for (intake, at) in m.iter() {
                let _ = writeln!(
                    s,
                    "akte_intake_lag_seconds{{intake=\"{intake}\"}} {:.0}",
                    at.elapsed().as_secs_f64()
                );
            }
        }
        let _ = writeln!(s, "# HELP akte_journal_length Entries in the journal.");
        let _ = writeln!(s, "# TYPE akte_journal_length gauge");
        let _ = writeln!(s, "akte_journal_length {journal_length}");
        s
    }
}

/// Counts every request; adds `X-Content-Type-Options: nosniff`; applies the request
/// timeout to everything but uploads (which have their own idle timeout).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Metric labels come from closed sets: a made-up method is `other`, an unknown path
    // `unmatched`.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    // Uploads are bounded by size and idle time instead of the request timeout.
    let is_upload = method == "POST"
        && matches!(
            route.as_str(),
            "/v1/records" | "/v1/records/{id}/revisions" | "/v1/imports" | "/v1/emails"
        );
    let mut resp = if is_upload {
        next.run(req).await
    } else {
        match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError::timeout().into_response(),
        }
    };
    let out = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    state.metrics.observe(
        &method,
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
        out,
    );
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}
