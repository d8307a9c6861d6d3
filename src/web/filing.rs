//! Writing pages: phone notes, cases, uploads (several files, streamed to the API one by
//! one), imports of an mbox or zip with a live job view.

use askama::Template;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::pages::{class_label, percent, role_label};
use super::views::{self, Archived, ImportJob};
use super::{Ctx, Page, UiError, Web, query, read_json, redirect, render};

type Ui = Result<Response, Response>;

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    case: String,
}

fn some(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

pub async fn add_note(
    State(web): State<Web>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Ui {
    let (_, s) = ctx.signed_form(&f.csrf)?;
    let body = json!({
        "kind": "phone-note",
        "text": f.text,
        "title": some(&f.title),
        "duration": some(&f.duration),
        "case": some(&f.case),
    });
    let _: serde_json::Value = web
        .post(s, &format!("/v1/parties/{}/notes", percent(&id)), body)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect(&format!("/parties/{}?done=note", percent(&id))))
}

#[derive(Deserialize)]
pub struct CaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    party: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    valid_until: String,
}

pub async fn open_case(State(web): State<Web>, ctx: Ctx, Form(f): Form<CaseForm>) -> Ui {
    let (_, s) = ctx.signed_form(&f.csrf)?;
    let body = json!({
        "party": f.party,
        "kind": f.kind,
        "title": f.title,
        "valid_until": some(&f.valid_until),
    });
    let _: serde_json::Value = web
        .post(s, "/v1/cases", body)
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect(&format!(
        "/parties/{}?done=case-opened",
        percent(&f.party)
    )))
}

#[derive(Deserialize)]
pub struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    party: String,
}

pub async fn close_case(
    State(web): State<Web>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<CloseForm>,
) -> Ui {
    let (_, s) = ctx.signed_form(&f.csrf)?;
    let _: serde_json::Value = web
        .post(
            s,
            &format!("/v1/cases/{}/revisions", percent(&id)),
            json!({"status": "closed", "reason": "closed in the web interface"}),
        )
        .await
        .map_err(|e| ctx.fail(e))?;
    Ok(redirect(&format!(
        "/parties/{}?done=case-closed",
        percent(&f.party)
    )))
}

// ---------------------------------------------------------------- upload

pub struct Done {
    name: String,
    id: Option<String>,
    detail: String,
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    page: Page,
    parties: Vec<(String, String)>,
    party: String,
    roles: Vec<(String, String)>,
    classes: Vec<(String, String)>,
    cases: Vec<(String, String)>,
    done: Vec<Done>,
}

#[derive(Deserialize)]
pub struct UploadParams {
    #[serde(default)]
    party: String,
}

/// Parties offered in the picker (by name); a larger archive files from the party file.
const PICKER: usize = 500;

async fn upload_page(web: &Web, ctx: &Ctx, party: String, done: Vec<Done>) -> Response {
    let t = ctx.t;
    let mut parties: Vec<(String, String)> = web
        .state
        .svc
        .catalog
        .list(&crate::catalog::PartyFilter {
            limit: PICKER,
            ..Default::default()
        })
        .await
        .into_iter()
        .map(|p| (p.id, p.data.name))
        .collect();
    if !party.is_empty() && !parties.iter().any(|(id, _)| *id == party) {
        let name = web
            .state
            .svc
            .catalog
            .party(&party)
            .await
            .map(|p| p.data.name)
            .unwrap_or_else(|| party.clone());
        parties.insert(0, (party.clone(), name));
    }
    let cases = if party.is_empty() {
        Vec::new()
    } else {
        web.state
            .svc
            .catalog
            .cases_of(&party, false)
            .await
            .into_iter()
            .map(|c| (c.id, c.title))
            .collect()
    };
    let mut classes: Vec<(String, String)> = web
        .state
        .archive
        .catalogue()
        .classes
        .keys()
        .map(|c| (c.clone(), class_label(web, ctx.lang, c)))
        .collect();
    classes.sort_by(|a, b| a.1.cmp(&b.1));
    let roles = ["customer", "supplier", "partner", "prospect"]
        .iter()
        .map(|r| (r.to_string(), role_label(t, r)))
        .collect();
    render(&UploadPage {
        page: ctx.page("upload"),
        parties,
        party,
        roles,
        classes,
        cases,
        done,
    })
}

pub async fn upload_form(State(web): State<Web>, ctx: Ctx, Query(p): Query<UploadParams>) -> Ui {
    let (u, _) = ctx.signed()?;
    if !u.can_ingest {
        return Err(ctx.fail(UiError::new(
            StatusCode::FORBIDDEN,
            ctx.t.not_allowed,
            format!("{}: {}", ctx.t.role, u.role_name),
        )));
    }
    Ok(upload_page(&web, &ctx, p.party, Vec::new()).await)
}

fn multipart_error(ctx: &Ctx, e: impl std::fmt::Display) -> Response {
    ctx.fail(UiError::new(StatusCode::BAD_REQUEST, "", e.to_string()))
}

/// Streams one form field's bytes into an API request body.
async fn pump(
    mut field: axum::extract::multipart::Field<'_>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    loop {
        match field.chunk().await {
            Ok(Some(c)) => {
                if tx.send(Ok(c)).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
        }
    }
}

/// Files from a form (one or several); each is archived by the API as it streams in.
/// The form's fields come first (the page orders them so); the CSRF token is checked
/// before any file is read.
pub async fn upload(State(web): State<Web>, ctx: Ctx, headers: HeaderMap, mut mp: Multipart) -> Ui {
    let (_, s) = ctx.signed()?;
    let s = s.clone();
    let (mut csrf, mut party, mut role, mut class, mut case) = (
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    );
    let mut done = Vec::new();
    let mut checked = false;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(&ctx, e))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name != "file" {
            let v = field.text().await.map_err(|e| multipart_error(&ctx, e))?;
            match name.as_str() {
                "csrf" => csrf = v,
                "party" => party = v,
                "role" => role = v,
                "class" => class = v,
                "case" => case = v,
                _ => {}
            }
            continue;
        }
        if !checked {
            ctx.signed_form(&csrf)?;
            checked = true;
        }
        let file_name = field.file_name().unwrap_or("").to_string();
        if file_name.is_empty() {
            // An empty file input: nothing chosen.
            continue;
        }
        let media = field.content_type().unwrap_or("").to_string();
        let role = if party.is_empty() { "" } else { role.as_str() };
        let uri = format!(
            "/v1/records?{}",
            query(&[
                ("filename", file_name.as_str()),
                ("party", party.as_str()),
                ("role", role),
                ("class", class.as_str()),
                ("case", case.as_str()),
            ])
        );
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let ctype = if media.is_empty() || media == "application/octet-stream" {
            None
        } else {
            Some(media.as_str())
        };
        let (_, resp) = tokio::join!(
            pump(field, tx),
            web.call(
                &s,
                Method::POST,
                &uri,
                crate::api::channel_body(rx),
                ctype,
                None
            )
        );
        match read_json::<Archived>(resp).await {
            Ok(a) => done.push(Done {
                detail: format!(
                    "{}{}{}",
                    class_label(&web, ctx.lang, &a.class),
                    if a.duplicate {
                        format!(" · {}", ctx.t.uploaded_dup)
                    } else {
                        String::new()
                    },
                    a.extraction
                        .as_deref()
                        .map(|x| format!(" · {x}"))
                        .unwrap_or_default()
                ),
                id: Some(a.id),
                name: file_name,
            }),
            Err(e) => done.push(Done {
                name: file_name,
                id: None,
                detail: format!("{} {}", e.title, e.detail),
            }),
        }
    }
    if !checked {
        ctx.signed_form(&csrf)?;
    }
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if wants_json {
        let items: Vec<serde_json::Value> = done
            .iter()
            .map(|d| json!({"name": d.name, "id": d.id, "detail": d.detail}))
            .collect();
        let status = if done.iter().all(|d| d.id.is_some()) {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return Ok((status, axum::Json(items)).into_response());
    }
    Ok(upload_page(&web, &ctx, party, done).await)
}

// ---------------------------------------------------------------- imports

pub async fn start_import(State(web): State<Web>, ctx: Ctx, mut mp: Multipart) -> Ui {
    let (_, s) = ctx.signed()?;
    let s = s.clone();
    let mut csrf = String::new();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(&ctx, e))?
    {
        match field.name().unwrap_or("") {
            "csrf" => csrf = field.text().await.map_err(|e| multipart_error(&ctx, e))?,
            "file" => {
                ctx.signed_form(&csrf)?;
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let (_, resp) = tokio::join!(
                    pump(field, tx),
                    web.call(
                        &s,
                        Method::POST,
                        "/v1/imports",
                        crate::api::channel_body(rx),
                        Some("application/octet-stream"),
                        None
                    )
                );
                let job: ImportJob = read_json(resp).await.map_err(|e| ctx.fail(e))?;
                return Ok(redirect(&format!("/imports/{}", percent(&job.id))));
            }
            _ => {}
        }
    }
    Err(multipart_error(&ctx, "no file"))
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    page: Page,
    id: String,
    running: bool,
    state: String,
    state_label: String,
    items: u64,
    bytes_done: u64,
    bytes_total: u64,
    percent: u64,
    summary: Option<views::ImportSummary>,
    failures: Vec<String>,
    error: Option<String>,
}

pub(crate) fn job_label(t: &'static super::i18n::Texts, state: &str) -> String {
    match state {
        "running" => t.job_running,
        "unpacking" => t.job_unpacking,
        "done" => t.job_done,
        "error" => t.job_error,
        "passed" => t.job_passed,
        "failed" => t.job_failed,
        other => return other.to_string(),
    }
    .to_string()
}

pub async fn import_job(State(web): State<Web>, ctx: Ctx, Path(id): Path<String>) -> Ui {
    let (_, s) = ctx.signed()?;
    let job: ImportJob = web
        .get(s, &format!("/v1/imports/{}", percent(&id)))
        .await
        .map_err(|e| ctx.fail(e))?;
    let running = matches!(job.state.as_str(), "running" | "unpacking");
    let percent = job
        .bytes_done
        .saturating_mul(100)
        .checked_div(job.bytes_total)
        .map(|p| p.min(100))
        .unwrap_or(if running { 0 } else { 100 });
    let failures = job
        .summary
        .as_ref()
        .map(|s| s.failures.iter().take(100).map(super::value_line).collect())
        .unwrap_or_default();
    Ok(render(&ImportPage {
        page: ctx.page("upload"),
        state_label: job_label(ctx.t, &job.state),
        id: job.id,
        running,
        state: job.state,
        items: job.items,
        bytes_done: job.bytes_done,
        bytes_total: job.bytes_total.max(1),
        percent,
        summary: job.summary,
        failures,
        error: job.error,
    }))
}
