//! Audit pages: the journal with filters, verification runs, the procedure
//! documentation (Verfahrensdokumentation).

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::filing::job_label;
use super::pages::{Pager, percent};
use super::views::{JournalPage, VerifyJob, VerifyReport};
use super::{Ctx, Page, UiError, Web, query, redirect, render};

type Ui = Result<Response, Response>;

pub struct EntryRow {
    seq: u64,
    time: DateTime<Utc>,
    action: String,
    actor: String,
    subjects: String,
    detail: Option<String>,
    hash: String,
}

#[derive(Template)]
#[template(path = "journal.html")]
struct Journal {
    page: Page,
    action: String,
    actor: String,
    since: String,
    head: u64,
    entries: Vec<EntryRow>,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct JournalParams {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    since: Option<u64>,
}

/// Entries on one page; entries read to fill it at most.
const SHOWN: usize = 100;
const SCANNED: u64 = 2000;

pub async fn journal(State(web): State<Web>, ctx: Ctx, Query(p): Query<JournalParams>) -> Ui {
    let (_, s) = ctx.signed()?;
    let probe: JournalPage = web
        .get(s, "/v1/journal?since=0&limit=1")
        .await
        .map_err(|e| ctx.fail(e))?;
    let head = probe.head;
    let filtered = !p.action.is_empty() || !p.actor.is_empty();
    // Without a start: the newest entries (a filter looks further back).
    let window = if filtered { SCANNED } else { SHOWN as u64 };
    let since = p.since.unwrap_or(head.saturating_sub(window)).min(head);
    let limit = if filtered { SCANNED } else { SHOWN as u64 };
    let page: JournalPage = web
        .get(s, &format!("/v1/journal?since={since}&limit={limit}"))
        .await
        .map_err(|e| ctx.fail(e))?;
    let mut entries: Vec<EntryRow> = page
        .entries
        .into_iter()
        .filter(|e| p.action.is_empty() || e.action.contains(p.action.as_str()))
        .filter(|e| p.actor.is_empty() || e.actor.contains(p.actor.as_str()))
        .map(|e| EntryRow {
            seq: e.seq,
            time: e.time,
            subjects: e
                .subjects
                .iter()
                .take(5)
                .map(|x| format!("{} {}", x.kind, x.id))
                .collect::<Vec<_>>()
                .join(", ")
                + if e.subjects.len() > 5 { ", …" } else { "" },
            action: e.action,
            actor: e.actor,
            detail: e.detail,
            hash: e.hash,
        })
        .collect();
    entries.reverse();
    entries.truncate(SHOWN);
    let link = |since: u64| {
        let since = since.to_string();
        format!(
            "/journal?{}",
            query(&[
                ("action", p.action.as_str()),
                ("actor", p.actor.as_str()),
                ("since", since.as_str()),
            ])
        )
    };
    // Pages go by position in the journal: 1 is the oldest window.
    let current = since / window + 1;
    let last = head.div_ceil(window).max(1);
    let pager = Pager {
        prev: (since > 0).then(|| link(since.saturating_sub(window))),
        next: (page.next_since < head).then(|| link(page.next_since)),
        current,
        last,
    };
    Ok(render(&Journal {
        page: ctx.page("audit"),
        action: p.action,
        actor: p.actor,
        since: since.to_string(),
        head,
        entries,
        pager,
    }))
}

pub struct JobView {
    id: String,
    state_label: String,
    started_at: DateTime<Utc>,
    started_by: String,
    bytes_done: u64,
    bytes_total: u64,
    report: Option<ReportView>,
    error: Option<String>,
}

pub struct ReportView {
    objects: u64,
    records: u64,
    journal_entries: u64,
    problems: Vec<String>,
}

impl From<VerifyReport> for ReportView {
    fn from(r: VerifyReport) -> Self {
        ReportView {
            objects: r.objects,
            records: r.records,
            journal_entries: r.journal_entries,
            problems: r.problems.iter().take(200).map(super::value_line).collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    page: Page,
    job: Option<JobView>,
    running: bool,
}

#[derive(Deserialize)]
pub struct JobParam {
    #[serde(default)]
    job: String,
}

pub async fn verify_page(State(web): State<Web>, ctx: Ctx, Query(p): Query<JobParam>) -> Ui {
    let (u, s) = ctx.signed()?;
    if !u.can_audit {
        return Err(ctx.fail(UiError::new(
            StatusCode::FORBIDDEN,
            ctx.t.not_allowed,
            format!("{}: {}", ctx.t.role, u.role_name),
        )));
    }
    let mut running = false;
    let job = if p.job.is_empty() {
        None
    } else {
        let j: VerifyJob = web
            .get(s, &format!("/v1/verify/{}", percent(&p.job)))
            .await
            .map_err(|e| ctx.fail(e))?;
        running = j.state == "running";
        Some(JobView {
            state_label: job_label(ctx.t, &j.state),
            id: j.id,
            started_at: j.started_at,
            started_by: j.started_by,
            bytes_done: j.bytes_done,
            bytes_total: j.bytes_total.max(1),
            report: j.report.map(ReportView::from),
            error: j.error,
        })
    };
    Ok(render(&VerifyPage {
        page: ctx.page("audit"),
        job,
        running,
    }))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn start_verify(State(web): State<Web>, ctx: Ctx, Form(f): Form<CsrfOnly>) -> Ui {
    let (_, s) = ctx.signed_form(&f.csrf)?;
    let j: VerifyJob = web
        .post(s, "/v1/verify", json!({}))
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect(&format!("/verify?job={}", percent(&j.id))))
}

#[derive(Template)]
#[template(path = "procedure.html")]
struct Procedure {
    page: Page,
    text: String,
    audit_tabs: bool,
}

/// The Verfahrensdokumentation's facts, generated from the live configuration (every
/// signed-in person may read how the archive works).
pub async fn procedure_page(State(web): State<Web>, ctx: Ctx) -> Ui {
    let (u, _) = ctx.signed()?;
    let audit_tabs = u.can_audit;
    let text = super::procedure::procedure(&web.state.svc, false)
        .await
        .map(|md| super::procedure::markdown_html(&md))
        .map_err(|e| {
            ctx.fail(UiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "",
                e.to_string(),
            ))
        })?;
    Ok(render(&Procedure {
        page: ctx.page("audit"),
        text,
        audit_tabs,
    }))
}
