//! `/v1/records`: upload, metadata, revisions, content download, amendment, deletion.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params::{self, Params};
use super::problem::{ApiError, ApiResult, Problem};
use crate::archive::{Amendment, NewContent, NewRecord};
use crate::audit::reads::ReadEvent;
use crate::error::Error;
use crate::ingest::batch::{Given, IngestDefaults, ItemOutcome};
use crate::record::RecordRevision;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_record))
        .routes(routes!(get_record, delete_record))
        .routes(routes!(list_revisions, amend_record))
        .routes(routes!(get_content))
}

/// A record revision as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub id: String,
    pub rev: u32,
    pub class: String,
    pub title: String,
    pub document_date: Option<NaiveDate>,
    pub archived_at: DateTime<Utc>,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    pub reason: Option<String>,
    pub prev_hash: Option<String>,
    pub content: ContentView,
    pub parties: Vec<PartyLinkView>,
    pub retention: RetentionView,
    pub holds: Vec<String>,
    /// What ingest found and kept (mail headers, e-invoice facts such as
    /// `invoice_number` and `seller_vat`, `class_rule`, `extraction` when there is no
    /// text, `parent` of an attachment); the extracted text itself is not repeated here.
    pub extra: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContentView {
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub file_name: Option<String>,
    pub version: u32,
    /// Where to download this revision's content.
    pub href: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyLinkView {
    pub party: String,
    pub role: String,
    /// Why ingest linked it (an address, an identifier, a rule); absent when a person did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionView {
    pub policy: String,
    pub legal_basis: String,
    pub catalogue: String,
    pub period_years: u32,
    pub start: NaiveDate,
    pub retain_until: NaiveDate,
}

impl From<crate::archive::Archived> for Archived {
    fn from(a: crate::archive::Archived) -> Self {
        Archived {
            id: a.id,
            rev: a.rev,
            sha256: a.sha256,
            size: a.size,
            new_blob: a.new_blob,
            retain_until: a.retain_until,
            journal_seq: a.journal_seq,
            auto_links: vec![],
            ambiguous: vec![],
            class: a.revision.class,
            extraction: None,
        }
    }
}

impl From<RecordRevision> for RecordView {
    fn from(r: RecordRevision) -> Self {
        RecordView {
            content: ContentView {
                href: format!("/v1/records/{}/content?rev={}", r.id, r.rev),
                sha256: r.content.sha256,
                size: r.content.size,
                media_type: r.content.media_type,
                file_name: r.content.file_name,
                version: r.content.version,
            },
            parties: r
                .parties
                .into_iter()
                .map(|p| PartyLinkView {
                    party: p.party,
                    role: p.role,
                    reason: p.reason,
                })
                .collect(),
            retention: RetentionView {
                policy: r.retention.policy,
                legal_basis: r.retention.legal_basis,
                catalogue: r.retention.catalogue,
                period_years: r.retention.period_years,
                start: r.retention.start,
                retain_until: r.retention.retain_until,
            },
            id: r.id,
            rev: r.rev,
            class: r.class,
            title: r.title,
            document_date: r.document_date,
            archived_at: r.archived_at,
            revised_at: r.revised_at,
            actor: r.actor,
            change: r.change,
            reason: r.reason,
            prev_hash: r.prev_hash,
            extra: r.extra.into_iter().filter(|(k, _)| k != "text").collect(),
            holds: r.holds,
        }
    }
}

/// What an upload acknowledges: durable blob, revision and journal entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Archived {
    pub id: String,
    pub rev: u32,
    pub sha256: String,
    pub size: u64,
    /// False when identical content was already stored.
    pub new_blob: bool,
    pub retain_until: NaiveDate,
    pub journal_seq: u64,
    /// Links made automatically from evidence (sender/recipient addresses), with reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auto_links: Vec<crate::catalog::LinkBrief>,
    /// Evidence that points to more than one party: not linked, left for a human.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ambiguous: Vec<crate::catalog::Match>,
    /// The class the record got (given, by a rule, or the default).
    pub class: String,
    /// Archived, but its text could not be read: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extraction: Option<String>,
}

/// Metadata of a new record (multipart `metadata` part, or query parameters).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordMeta {
    pub class: Option<String>,
    pub title: Option<String>,
    /// `YYYY-MM-DD`
    pub document_date: Option<NaiveDate>,
    pub file_name: Option<String>,
    pub media_type: Option<String>,
    /// Parties to link, with their role in this record.
    #[serde(default)]
    pub parties: Vec<super::parties::LinkItem>,
    /// Cases this record belongs to.
    #[serde(default)]
    pub cases: Vec<String>,
    /// Sender address(es): linked to the party whose contact it is, when unambiguous.
    #[serde(default)]
    pub from: Vec<String>,
    /// Recipient address(es), likewise.
    #[serde(default)]
    pub to: Vec<String>,
}

/// A metadata amendment; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    pub title: Option<String>,
    pub class: Option<String>,
    pub document_date: Option<NaiveDate>,
    /// Extends retention; an earlier date is refused with 423.
    pub retain_until: Option<NaiveDate>,
    pub reason: Option<String>,
    /// The revision the change was made against: 409 if a newer one exists.
    pub base_rev: Option<u32>,
}

/// Largest `metadata` part of a multipart upload.
const MAX_METADATA: usize = 1 << 20;

const META_PARAMS: &[&str] = &[
    "class",
    "title",
    "date",
    "filename",
    "media_type",
    "party",
    "role",
    "case",
    "from",
    "to",
];

/// A comma-separated query parameter as a list.
pub(crate) fn list(p: &Params, name: &str) -> Vec<String> {
    p.string(name)
        .map(|v| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn meta_from_query(p: &Params) -> ApiResult<RecordMeta> {
    let role = p.string("role").unwrap_or_else(|| "subject".into());
    Ok(RecordMeta {
        class: p.string("class"),
        title: p.string("title"),
        document_date: p.date("date")?,
        file_name: p.string("filename"),
        media_type: p.string("media_type"),
        parties: list(p, "party")
            .into_iter()
            .map(|party| super::parties::LinkItem {
                party,
                role: role.clone(),
            })
            .collect(),
        cases: list(p, "case"),
        from: list(p, "from"),
        to: list(p, "to"),
    })
}

/// What the caller said of a new record, as ingest takes it: defaults (class, parties,
/// cases) and what is given of the document itself.
fn ingest_input(m: RecordMeta) -> (IngestDefaults, Given) {
    let d = IngestDefaults {
        class: m.class,
        parties: m
            .parties
            .into_iter()
            .map(|l| crate::record::PartyLink {
                party: l.party,
                role: l.role,
                reason: None,
            })
            .collect(),
        cases: m.cases,
        keep_copies: true,
    };
    let given = Given {
        title: m.title,
        document_date: m.document_date,
        media_type: m.media_type,
        from: m.from,
        to: m.to,
        extra: Default::default(),
    };
    (d, given)
}

/// Checks what a caller said before a byte of the upload is read: the class is valid,
/// parties and cases exist, title and media type are acceptable.
async fn check_input(state: &AppState, d: &IngestDefaults, g: &Given) -> ApiResult<()> {
    state.ingest.check_defaults(d).await?;
    crate::archive::check_new(&NewRecord {
        class: d.class.clone(),
        title: g.title.clone(),
        media_type: g.media_type.clone(),
        ..Default::default()
    })?;
    Ok(())
}

/// Spools an upload to disk (bounded in size and idle time by `limited_body`), then
/// archives it through the one ingest pipeline (extraction, rules, e-invoice facts,
/// auto-links) in a task of its own: a client that hangs up after the last byte does
/// not cut the commit short.
async fn ingest_upload(
    state: &AppState,
    actor: String,
    body: impl Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static,
    file_name: Option<String>,
    d: IngestDefaults,
    given: Given,
) -> ApiResult<(crate::archive::Archived, ItemOutcome)> {
    let dir = state.config.spool_dir();
    let content = crate::store::content::spool(&dir, body).await?;
    let svc = state.ingest.clone();
    let task = tokio::spawn(async move {
        svc.archive_document(&actor, content, file_name, given, d)
            .await
    });
    Ok(task
        .await
        .map_err(|e| ApiError::from(Error::Internal(format!("ingest task: {e}"))))??)
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
}

fn essence(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

/// The media type a raw upload declares, if it says anything: `application/octet-stream`
/// and the form type that `curl --data-binary` sends by default say nothing.
fn declared_media_type(ct: &str) -> Option<String> {
    match essence(ct) {
        "" | "application/octet-stream" | "application/x-www-form-urlencoded" => None,
        m => Some(m.to_string()),
    }
}

/// The body as a stream of bytes, refused past `limit`, paced by the token's upload rate,
/// and cut when the client stalls.
fn limited_body(
    state: &AppState,
    token: String,
    stream: impl Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static {
    let limit = state.config.max_upload_bytes;
    let idle = state.config.upload_idle_timeout;
    let st = state.clone();
    Box::pin(futures::stream::try_unfold(
        (stream, 0u64),
        move |(mut stream, seen)| {
            let st = st.clone();
            let token = token.clone();
            async move {
                let next = tokio::time::timeout(idle, stream.next())
                    .await
                    .map_err(|_| Error::invalid("body", "the upload stalled"))?;
                let Some(chunk) = next else { return Ok(None) };
                let chunk = chunk?;
                let seen = seen + chunk.len() as u64;
                if seen > limit {
                    return Err(Error::TooLarge { limit });
                }
                st.metrics.add_bytes_in(chunk.len() as u64);
                let pause = st.limits.upload_pause(&token, chunk.len());
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                Ok(Some((chunk, (stream, seen))))
            }
        },
    ))
}

fn check_declared_length(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > state.config.max_upload_bytes
    {
        return Err(ApiError::too_large(state.config.max_upload_bytes));
    }
    Ok(())
}

fn body_stream(body: Body) -> impl Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static {
    body.into_data_stream()
        .map_err(|e| Error::invalid("body", format!("reading the upload failed: {e}")))
}

/// Archive a new record.
///
/// Either the raw content as the body (metadata in query parameters; `Content-Type` is
/// the media type), or `multipart/form-data` with a JSON part `metadata` followed by a
/// part `file`. Acknowledged (201) only when content, revision and journal entry are durable.
#[utoipa::path(
    post, path = "/v1/records", tag = "records",
    params(
        ("class" = Option<String>, Query, description = "Record class, e.g. invoice, contract, business-letter"),
        ("title" = Option<String>, Query, description = "Title (default: the file name)"),
        ("date" = Option<String>, Query, description = "Document date, YYYY-MM-DD"),
        ("filename" = Option<String>, Query, description = "Original file name"),
        ("media_type" = Option<String>, Query, description = "Media type, if not the Content-Type"),
    ),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (RecordMeta = "multipart/form-data"),
    ), description = "Raw content, or multipart with parts `metadata` (JSON) and `file`"),
    responses(
        (status = 201, description = "Archived", body = Archived, headers(("Location" = String, description = "The new record"))),
        (status = 400, description = "Bad metadata", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over the upload limit; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Multipart without a file part", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn create_record(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let params = Params::parse(req.uri().query(), META_PARAMS)?;
    check_declared_length(&state, req.headers())?;
    let ct = content_type(req.headers()).unwrap_or_default();
    let actor = caller.actor();
    let token = caller.principal.token_id.clone();

    let (archived, outcome) = if essence(&ct) == "multipart/form-data" {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        let mut meta: Option<RecordMeta> = None;
        let mut result = None;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?
        {
            match field.name() {
                Some("metadata") => {
                    // Read with a bound: the part is metadata, not content.
                    let mut field = field;
                    let mut bytes = Vec::new();
                    while let Some(chunk) =
                        tokio::time::timeout(state.config.upload_idle_timeout, field.chunk())
                            .await
                            .map_err(|_| ApiError::invalid("metadata", "the upload stalled"))?
                            .map_err(|e| ApiError::invalid("metadata", e.body_text()))?
                    {
                        if bytes.len() + chunk.len() > MAX_METADATA {
                            return Err(ApiError::invalid(
                                "metadata",
                                format!("longer than {MAX_METADATA} bytes"),
                            ));
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    meta = Some(params::json(&bytes).map_err(|mut e| {
                        e.field = e.field.map(|f| format!("metadata.{f}"));
                        e
                    })?);
                }
                Some("file") => {
                    let mut m = meta.take().unwrap_or_default();
                    let file_name = m
                        .file_name
                        .take()
                        .or_else(|| field.file_name().map(str::to_string));
                    if m.media_type.is_none() {
                        m.media_type = field
                            .content_type()
                            .filter(|c| *c != "application/octet-stream")
                            .map(str::to_string);
                    }
                    let (d, given) = ingest_input(m);
                    check_input(&state, &d, &given).await?;
                    // The field borrows the multipart reader; stream it through a channel
                    // so that the limited body is 'static.
                    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(4);
                    let body = limited_body(&state, token.clone(), tokio_stream_from(rx));
                    let st = state.clone();
                    let actor = actor.clone();
                    let ingest = tokio::spawn(async move {
                        ingest_upload(&st, actor, body, file_name, d, given).await
                    });
                    let mut stream = field.map_err(|e| Error::invalid("file", e.body_text()));
                    let mut complete = true;
                    while let Some(chunk) = stream.next().await {
                        let failed = chunk.is_err();
                        if tx.send(Piece::Chunk(chunk)).await.is_err() || failed {
                            complete = false;
                            break;
                        }
                    }
                    // Only an explicit end lets the ingest commit: a sender dropped
                    // mid-stream (the request cancelled by a client reset) is an error.
                    if complete {
                        let _ = tx.send(Piece::End).await;
                    }
                    drop(tx);
                    result = Some(ingest.await.map_err(|e| {
                        ApiError::from(Error::Internal(format!("ingest task: {e}")))
                    })?);
                    break;
                }
                Some(other) => {
                    return Err(ApiError::invalid(
                        other,
                        "unknown part (expected `metadata`, then `file`)",
                    ));
                }
                None => return Err(ApiError::invalid("body", "a part without a name")),
            }
        }
        match result {
            Some(r) => r?,
            None => {
                return Err(ApiError::unsupported_media_type(
                    "multipart upload without a `file` part",
                ));
            }
        }
    } else {
        let mut m = meta_from_query(&params)?;
        if m.media_type.is_none() {
            m.media_type = declared_media_type(&ct);
        }
        let file_name = m.file_name.take();
        let (d, given) = ingest_input(m);
        check_input(&state, &d, &given).await?;
        let body = limited_body(&state, token, body_stream(req.into_body()));
        ingest_upload(&state, actor, body, file_name, d, given).await?
    };
    state
        .metrics
        .add_records(1 + outcome.attachments.len() as i64);
    let location = format!("/v1/records/{}", archived.id);
    let mut body = Archived::from(archived);
    body.auto_links = outcome.auto_links;
    body.ambiguous = outcome.ambiguous;
    body.extraction = outcome.extraction_failed;
    Ok(super::located(StatusCode::CREATED, &location, body))
}

/// What flows from a request's multipart field to the ingest task.
enum Piece {
    Chunk(Result<Bytes, Error>),
    /// The field ended as the client sent it.
    End,
}

/// The ingest side of the channel: ends only at an explicit [`Piece::End`]; a channel
/// closed without one (the request was dropped mid-upload) is an error, so that a cut-off
/// prefix is never committed.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Piece>,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static {
    let mut ended = false;
    Box::pin(futures::stream::poll_fn(move |cx| {
        if ended {
            return std::task::Poll::Ready(None);
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(Some(Piece::Chunk(c))) => std::task::Poll::Ready(Some(c)),
            std::task::Poll::Ready(Some(Piece::End)) => {
                ended = true;
                std::task::Poll::Ready(None)
            }
            std::task::Poll::Ready(None) => {
                ended = true;
                std::task::Poll::Ready(Some(Err(Error::invalid(
                    "file",
                    "the upload was cut off before its end; nothing was stored",
                ))))
            }
        }
    }))
}

/// Queues the journaling of a read (batched; see `audit::reads`).
async fn audit_read(
    state: &AppState,
    caller: &Caller,
    r: &RecordRevision,
    what: &'static str,
) -> ApiResult<()> {
    state
        .reads
        .record(ReadEvent {
            actor: caller.actor(),
            record_id: r.id.clone(),
            rev: r.rev,
            what,
        })
        .await
        .map_err(|e| {
            tracing::error!("a read was refused: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Read not journaled",
                "the read could not be journaled, so it is not served; retry later",
            )
        })
}

/// The latest revision of a record.
#[utoipa::path(
    get, path = "/v1/records/{id}", tag = "records",
    params(("id" = String, Path, description = "Record id")),
    responses(
        (status = 200, body = RecordView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RecordView>> {
    caller.require_scoped(roles::READ)?;
    let r = state.archive.latest(&id).await?;
    state.check_record_visible(&caller, &r).await?;
    audit_read(&state, &caller, &r, "metadata").await?;
    Ok(axum::Json(r.into()))
}

/// Every revision of a record, oldest first.
#[utoipa::path(
    get, path = "/v1/records/{id}/revisions", tag = "records",
    params(("id" = String, Path, description = "Record id")),
    responses(
        (status = 200, body = Vec<RecordView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_revisions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<RecordView>>> {
    caller.require_scoped(roles::READ)?;
    let revs = state.archive.history(&id).await?;
    if let Some(last) = revs.last() {
        state.check_record_visible(&caller, last).await?;
        audit_read(&state, &caller, last, "metadata").await?;
    }
    Ok(axum::Json(revs.into_iter().map(RecordView::from).collect()))
}

/// Amend a record: a JSON body amends metadata; any other body is a new content version.
#[utoipa::path(
    post, path = "/v1/records/{id}/revisions", tag = "records",
    params(
        ("id" = String, Path, description = "Record id"),
        ("filename" = Option<String>, Query, description = "File name of a new content version"),
        ("reason" = Option<String>, Query, description = "Reason for a new content version"),
    ),
    request_body(content(
        (AmendRequest = "application/json"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses(
        (status = 201, description = "The new revision", body = RecordView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another revision was written first", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "Retention may only be extended", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn amend_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    let ct = content_type(req.headers()).unwrap_or_default();
    state.catalog_ready().await?;
    let revision = if essence(&ct) == "application/json" {
        Params::parse(req.uri().query(), &[])?;
        let idle = state.config.upload_idle_timeout;
        let a: AmendRequest = params::json(&params::body_bytes_idle(req, 1 << 20, idle).await?)?;
        state
            .archive
            .amend(
                &caller.actor(),
                &id,
                Amendment {
                    title: a.title,
                    class: a.class,
                    document_date: a.document_date,
                    retain_until: a.retain_until,
                    reason: a.reason,
                    base_rev: a.base_rev,
                },
            )
            .await?
    } else if essence(&ct) == "multipart/form-data" {
        return Err(ApiError::unsupported_media_type(
            "send a new content version as the raw body, metadata amendments as application/json",
        ));
    } else {
        let p = Params::parse(req.uri().query(), &["filename", "reason"])?;
        check_declared_length(&state, req.headers())?;
        let media_type = declared_media_type(&ct);
        // Refused before a byte is read when the record is not there or disposed.
        let prev = state.archive.latest(&id).await?;
        if prev.tombstone.is_some() {
            return Err(Error::Disposed { id }.into());
        }
        let body = limited_body(
            &state,
            caller.principal.token_id.clone(),
            body_stream(req.into_body()),
        );
        let content = crate::store::content::spool(&state.config.spool_dir(), body).await?;
        let meta = NewContent {
            media_type,
            file_name: p.string("filename"),
            reason: p.string("reason"),
            facts: None,
        };
        let (svc, actor) = (state.ingest.clone(), caller.actor());
        let task = tokio::spawn(async move { svc.new_content(&actor, &id, content, meta).await });
        task.await
            .map_err(|e| ApiError::from(Error::Internal(format!("ingest task: {e}"))))??
    };
    state.svc.catalog.put_record(&revision).await;
    Ok((StatusCode::CREATED, axum::Json(RecordView::from(revision))).into_response())
}

/// Delete a record: refused while it is retained (always, until disposal exists).
#[utoipa::path(
    delete, path = "/v1/records/{id}", tag = "records",
    params(("id" = String, Path, description = "Record id")),
    responses(
        (status = 423, description = "Retained; nothing is deleted", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn delete_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(roles::INGEST)?;
    state.archive.delete(&caller.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Parses a single `bytes=` range against `size`.
pub(crate) fn parse_range(
    h: &str,
    size: u64,
) -> Option<std::result::Result<std::ops::Range<u64>, ()>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: serve the whole content
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            if n == 0 {
                return Some(Err(()));
            }
            size.saturating_sub(n)..size
        }
        (start, "") => start.parse().ok()?..size,
        (start, end) => {
            let s: u64 = start.parse().ok()?;
            let e: u64 = end.parse().ok()?;
            if e < s {
                return None;
            }
            s..(e + 1).min(size)
        }
    };
    if r.start >= size || r.start >= r.end {
        return Some(Err(()));
    }
    Some(Ok(r))
}

fn content_disposition(name: Option<&str>) -> String {
    let Some(name) = name else {
        return "attachment".into();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Download the original content, byte-exact, streamed. `ETag` is the SHA-256;
/// a single `Range` is honoured.
#[utoipa::path(
    get, path = "/v1/records/{id}/content", tag = "records",
    params(
        ("id" = String, Path, description = "Record id"),
        ("rev" = Option<u32>, Query, description = "Revision (default: latest)"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "Part of the content", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Unchanged (If-None-Match)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 416, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_content(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require_scoped(roles::READ)?;
    let p = Params::parse(req.uri().query(), &["rev"])?;
    let rev: Option<u32> = p.number("rev")?;
    // Visibility first (it follows the latest links, whichever revision's content is
    // asked for): a restricted caller learns nothing — not even that a record was
    // disposed or has no such revision — about a record it may not see.
    state
        .check_record_visible(&caller, &state.archive.latest(&id).await?)
        .await?;
    let r = state.archive.content_revision(&id, rev).await?;
    let etag = format!("\"{}\"", r.content.sha256);
    if let Some(inm) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && inm.split(',').any(|t| t.trim() == etag || t.trim() == "*")
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    let size = r.content.size;
    let range = match req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => match parse_range(h, size) {
            Some(Ok(r)) => Some(r),
            Some(Err(())) => return Err(ApiError::range_not_satisfiable(size)),
            None => None,
        },
        None => None,
    };
    let stream = state.archive.content_stream(&r, range.clone()).await?;
    // Journaled before a byte is served.
    audit_read(&state, &caller, &r, "content").await?;
    let (status, len) = match &range {
        Some(rg) => (StatusCode::PARTIAL_CONTENT, rg.end - rg.start),
        None => (StatusCode::OK, size),
    };
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, r.content.media_type.clone());
    set(header::CONTENT_LENGTH, len.to_string());
    set(header::ETAG, etag);
    set(header::ACCEPT_RANGES, "bytes".into());
    set(
        header::CONTENT_DISPOSITION,
        content_disposition(r.content.file_name.as_deref()),
    );
    set(header::CACHE_CONTROL, "private, no-cache".into());
    if let Some(rg) = &range {
        set(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{}", rg.start, rg.end - 1, size),
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok(0..10)));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok(90..100)));
        assert_eq!(parse_range("bytes=-5", 100), Some(Ok(95..100)));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok(50..100)));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn content_disposition_keeps_unicode_names() {
        let d = content_disposition(Some("Rechnung Müller.pdf"));
        assert!(d.contains("filename=\"Rechnung M_ller.pdf\""));
        assert!(d.contains("filename*=UTF-8''Rechnung%20M%C3%BCller%2Epdf"));
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[tokio::test]
    async fn a_field_stream_cut_off_without_its_end_is_an_error() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(4);
        let mut s = tokio_stream_from(rx);
        tx.send(Piece::Chunk(Ok(Bytes::from_static(b"abc"))))
            .await
            .unwrap();
        drop(tx); // the request was dropped mid-upload
        assert_eq!(s.next().await.unwrap().unwrap().as_ref(), b"abc");
        assert!(s.next().await.unwrap().is_err(), "no silent end");
        assert!(s.next().await.is_none());

        let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(4);
        let mut s = tokio_stream_from(rx);
        tx.send(Piece::Chunk(Ok(Bytes::from_static(b"abc"))))
            .await
            .unwrap();
        tx.send(Piece::End).await.unwrap();
        drop(tx);
        assert_eq!(s.next().await.unwrap().unwrap().as_ref(), b"abc");
        assert!(s.next().await.is_none(), "an explicit end ends it");
    }
}
