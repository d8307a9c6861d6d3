//! Retention pages: the dashboard per class, legal holds, disposal requests and their
//! approval by a second person, certificates.

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use super::pages::{class_label, percent};
use super::views::{self, DisposalView, HoldView, RecordView, Report};
use super::{Ctx, Page, UiError, Web, redirect, render};

type Ui = Result<Response, Response>;

pub struct ClassRow {
    label: String,
    basis: String,
    count: u64,
    expiring: u64,
    eligible: u64,
    held: u64,
}

pub struct HoldRow {
    id: String,
    name: String,
    reason: String,
    scope: String,
    placed_at: DateTime<Utc>,
    placed_by: String,
    active: bool,
}

pub struct EligibleRow {
    id: String,
    title: String,
    class_label: String,
    retain_until: NaiveDate,
}

#[derive(Template)]
#[template(path = "retention.html")]
struct Dashboard {
    page: Page,
    total: u64,
    expiring_90: u64,
    eligible: u64,
    on_hold: u64,
    disposed: u64,
    last_verify: Option<String>,
    classes: Vec<ClassRow>,
    holds: Vec<HoldRow>,
    disposals: Vec<views::DisposalRow>,
    eligible_rows: Vec<EligibleRow>,
    can_write: bool,
    hold_target: String,
}

#[derive(Deserialize)]
pub struct DashParams {
    #[serde(default)]
    hold: String,
}

/// Eligible records offered for a disposal request at once.
const ELIGIBLE_SHOWN: usize = 200;

fn scope_text(v: &serde_json::Value) -> String {
    let kind = v.get("type").and_then(|x| x.as_str()).unwrap_or("");
    match kind {
        "records" => format!(
            "records: {}",
            v.get("ids")
                .and_then(|x| x.as_array())
                .map(|a| a.len())
                .unwrap_or(0)
        ),
        "party" | "case" => format!(
            "{kind} {}",
            v.get("id").and_then(|x| x.as_str()).unwrap_or("")
        ),
        "class" => format!(
            "class {}",
            v.get("class").and_then(|x| x.as_str()).unwrap_or("")
        ),
        _ => v.to_string(),
    }
}

pub async fn dashboard(State(web): State<Web>, ctx: Ctx, Query(p): Query<DashParams>) -> Ui {
    let (u, s) = ctx.signed()?;
    let report: Report = web
        .get(s, "/v1/retention/report?format=json&rows=false")
        .await
        .map_err(|e| ctx.fail(e))?;
    let holds: Vec<HoldView> = web.get(s, "/v1/holds").await.map_err(|e| ctx.fail(e))?;
    let eligible: Vec<RecordView> = web
        .get(s, "/v1/retention/eligible")
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut classes: Vec<ClassRow> = report
        .by_policy
        .iter()
        .filter(|pr| pr.records > pr.disposed)
        .map(|pr| ClassRow {
            label: class_label(&web, ctx.lang, &pr.class),
            basis: pr.legal_basis.clone(),
            count: pr.records - pr.disposed,
            expiring: pr.expiring_90_days,
            eligible: pr.eligible,
            held: pr.on_hold,
        })
        .collect();
    classes.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
    let eligible_rows = eligible
        .into_iter()
        .take(ELIGIBLE_SHOWN)
        .map(|r| EligibleRow {
            class_label: class_label(&web, ctx.lang, &r.class),
            retain_until: r.retention.retain_until,
            title: r.title,
            id: r.id,
        })
        .collect();
    let mut holds: Vec<HoldRow> = holds
        .into_iter()
        .map(|h| HoldRow {
            scope: scope_text(&h.scope),
            id: h.id,
            name: h.name,
            reason: h.reason,
            placed_at: h.placed_at,
            placed_by: h.placed_by,
            active: h.active,
        })
        .collect();
    holds.sort_by(|a, b| b.active.cmp(&a.active).then(b.placed_at.cmp(&a.placed_at)));
    Ok(render(&Dashboard {
        page: ctx.page("retention"),
        total: report.records_total,
        expiring_90: report.expiring_90_days,
        eligible: report.eligible_now,
        on_hold: report.on_hold,
        disposed: report.disposed,
        last_verify: report.last_verify,
        classes,
        holds,
        disposals: report.disposals,
        eligible_rows,
        can_write: u.can_retention_write,
        hold_target: p.hold,
    }))
}

#[derive(Deserialize)]
pub struct HoldForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    authority: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    target: String,
}

pub async fn place_hold(
    State(web): State<Web>,
    ctx: Ctx,
    axum::extract::Form(f): axum::extract::Form<HoldForm>,
) -> Ui {
    let (_, s) = ctx.signed_form(&f.csrf)?;
    let target = f.target.trim();
    let scope = match f.scope.as_str() {
        "party" => json!({"type": "party", "id": target}),
        "case" => json!({"type": "case", "id": target}),
        "class" => json!({"type": "class", "class": target}),
        "records" => json!({
            "type": "records",
            "ids": target
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
        }),
        other => {
            return Err(ctx.fail(UiError::new(
                StatusCode::BAD_REQUEST,
                "",
                format!("unknown scope {other:?}"),
            )));
        }
    };
    let authority = f.authority.trim();
    let body = json!({
        "name": f.name,
        "reason": f.reason,
        "authority": (!authority.is_empty()).then_some(authority),
        "scope": scope,
    });
    let _: serde_json::Value = web
        .post(s, "/v1/holds", body)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect("/retention?done=hold-placed"))
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn release_hold(
    State(web): State<Web>,
    ctx: Ctx,
    Path(id): Path<String>,
    axum::extract::Form(f): axum::extract::Form<ReleaseForm>,
) -> Ui {
    let (_, s) = ctx.signed_form(&f.csrf)?;
    let _: serde_json::Value = web
        .post(
            s,
            &format!("/v1/holds/{}/release", percent(&id)),
            json!({"reason": f.reason}),
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect("/retention?done=hold-released"))
}

/// A disposal request form: `record` repeats, so it is read as pairs.
pub async fn request_disposal(State(web): State<Web>, ctx: Ctx, body: String) -> Ui {
    let mut csrf = String::new();
    let mut reason = String::new();
    let mut records = Vec::new();
    for (k, v) in form_urlencoded::parse(body.as_bytes()) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "reason" => reason = v.into_owned(),
            "record" => records.push(v.into_owned()),
            _ => {}
        }
    }
    let (_, s) = ctx.signed_form(&csrf)?;
    let d: DisposalView = web
        .post(
            s,
            "/v1/disposals",
            json!({"records": records, "reason": reason}),
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect(&format!(
        "/disposals/{}?done=disposal-requested",
        percent(&d.id)
    )))
}

pub struct Check {
    id: String,
    title: String,
    class_label: String,
    retain_until: NaiveDate,
    holds: String,
    ok: bool,
    verdict: String,
}

#[derive(Template)]
#[template(path = "disposal.html")]
struct DisposalPage {
    page: Page,
    id: String,
    running: bool,
    state_label: String,
    reason: String,
    requested_by: String,
    requested_at: DateTime<Utc>,
    approved_by: Option<String>,
    progress: Option<String>,
    exec_error: Option<String>,
    checks: Vec<Check>,
    can_approve: bool,
    own_request: bool,
    executed: bool,
}

/// Records whose current state is shown per disposal (the rest are counted).
const CHECKS_SHOWN: usize = 200;

pub async fn disposal(State(web): State<Web>, ctx: Ctx, Path(id): Path<String>) -> Ui {
    let (u, s) = ctx.signed()?;
    let t = ctx.t;
    let d: DisposalView = web
        .get(s, &format!("/v1/disposals/{}", percent(&id)))
        .await
        .map_err(|e| ctx.fail(e))?;
    let today = web.state.archive.clock().now().date_naive();
    let mut checks = Vec::new();
    for rid in d.records.iter().take(CHECKS_SHOWN) {
        match web
            .get::<RecordView>(s, &format!("/v1/records/{}", percent(rid)))
            .await
        {
            Ok(r) => {
                let gone =
                    d.state == "executed" || r.change == "tombstone" || r.content.sha256.is_empty();
                let (ok, verdict) = if gone {
                    (true, t.check_gone)
                } else if !r.holds.is_empty() {
                    (false, t.check_held)
                } else if r.retention.retain_until >= today {
                    (false, t.check_retained)
                } else {
                    (true, t.check_ok)
                };
                checks.push(Check {
                    class_label: class_label(&web, ctx.lang, &r.class),
                    retain_until: r.retention.retain_until,
                    holds: r.holds.join(", "),
                    ok,
                    verdict: verdict.to_string(),
                    title: if r.title.is_empty() {
                        r.id.clone()
                    } else {
                        r.title
                    },
                    id: r.id,
                });
            }
            Err(e) => checks.push(Check {
                id: rid.clone(),
                title: rid.clone(),
                class_label: String::new(),
                retain_until: today,
                holds: String::new(),
                ok: false,
                verdict: e.detail,
            }),
        }
    }
    let state_label = match d.state.as_str() {
        "requested" => t.disp_requested,
        "approved" => t.disp_approved,
        "executed" => t.disp_executed,
        other => other,
    }
    .to_string();
    let running = d.state == "approved" && d.execution.as_ref().is_some_and(|e| e.running);
    let progress = d.execution.as_ref().map(|e| {
        format!(
            "{} / {}",
            ctx.lang.num(e.records_done),
            ctx.lang.num(e.records_total)
        )
    });
    let own_request = d.requested_by == u.principal.actor() || d.requested_by == u.person;
    Ok(render(&DisposalPage {
        page: ctx.page("retention"),
        running,
        state_label,
        reason: d.reason,
        requested_at: d.requested_at,
        approved_by: d.approved_by,
        progress,
        exec_error: d.execution.and_then(|e| e.error),
        checks,
        can_approve: u.can_retention_write && d.state == "requested" && !own_request,
        own_request: own_request && d.state == "requested",
        executed: d.state == "executed",
        requested_by: d.requested_by,
        id: d.id,
    }))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn approve(
    State(web): State<Web>,
    ctx: Ctx,
    Path(id): Path<String>,
    axum::extract::Form(f): axum::extract::Form<CsrfOnly>,
) -> Ui {
    let (_, s) = ctx.signed_form(&f.csrf)?;
    let _: serde_json::Value = web
        .json(
            s,
            Method::POST,
            &format!("/v1/disposals/{}/approve", percent(&id)),
            None,
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect(&format!(
        "/disposals/{}?done=disposal-approved",
        percent(&id)
    )))
}

/// The disposal certificate (the API's HTML), in a sandbox.
pub async fn certificate(State(web): State<Web>, ctx: Ctx, Path(id): Path<String>) -> Ui {
    let (_, s) = ctx.signed()?;
    let mut resp = web
        .call(
            s,
            Method::GET,
            &format!("/v1/disposals/{}", percent(&id)),
            Body::empty(),
            None,
            Some("text/html"),
        )
        .await;
    if !resp.status().is_success() {
        let e = super::read_json::<serde_json::Value>(resp)
            .await
            .err()
            .unwrap_or_else(|| UiError::new(StatusCode::BAD_GATEWAY, "", ""));
        return Err(ctx.fail(e));
    }
    resp.headers_mut().insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(
            "sandbox; default-src 'none'; style-src 'unsafe-inline'",
        ),
    );
    Ok(resp)
}
