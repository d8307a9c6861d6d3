//! `/v1/records`: upload, metadata, revisions, content download, amendment, deletion.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params::{self, Params};
use super::problem::{ApiError, ApiResult, Problem};
pub use super::record_views::*;
use super::upload::*;
use crate::archive::{Amendment, NewContent};
use crate::audit::reads::ReadEvent;
use crate::error::Error;
use crate::record::RecordRevision;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_record))
        .routes(routes!(get_record, delete_record))
        .routes(routes!(list_revisions, amend_record))
        .routes(routes!(get_content))
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
        ("party" = Option<String>, Query, description = "Link to these parties (comma-separated ids)"),
        ("role" = Option<String>, Query, description = "Their role in the record (default subject)"),
        ("case" = Option<String>, Query, description = "Add to these cases (comma-separated ids)"),
        ("from" = Option<String>, Query, description = "Sender addresses (comma-separated); linked to the party whose contact each is"),
        ("to" = Option<String>, Query, description = "Recipient addresses (comma-separated), likewise"),
    ),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (RecordUpload = "multipart/form-data"),
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
        // A `file` part before `metadata` is spooled first and archived at the end.
        let mut early: Option<(
            crate::store::content::Content,
            Option<String>,
            Option<String>,
        )> = None;
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
                    // `null` says as much as no metadata part.
                    let given: Option<RecordMeta> = params::json(&bytes).map_err(|mut e| {
                        e.field = e.field.map(|f| format!("metadata.{f}"));
                        e
                    })?;
                    meta = Some(given.unwrap_or_default());
                }
                Some("file") if meta.is_none() && early.is_none() => {
                    let file_name = field.file_name().map(str::to_string);
                    let media = field
                        .content_type()
                        .filter(|c| *c != "application/octet-stream")
                        .map(str::to_string);
                    let stream = field.map_err(|e| Error::invalid("file", e.body_text()));
                    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(4);
                    let body = limited_body(&state, token.clone(), tokio_stream_from(rx));
                    let dir = state.config.spool_dir();
                    let spooling =
                        tokio::spawn(async move { crate::store::content::spool(&dir, body).await });
                    forward(stream, &tx).await;
                    drop(tx);
                    let content = spooling.await.map_err(|e| {
                        ApiError::from(Error::Internal(format!("spool task: {e}")))
                    })??;
                    early = Some((content, file_name, media));
                }
                Some("file") if early.is_some() => {
                    return Err(ApiError::invalid("file", "given twice"));
                }
                Some("file") => {
                    let mut m = meta
                        .take()
                        .unwrap_or_default()
                        .or(meta_from_query(&params)?);
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
                    let stream = field.map_err(|e| Error::invalid("file", e.body_text()));
                    forward(stream, &tx).await;
                    drop(tx);
                    result = Some(ingest.await.map_err(|e| {
                        ApiError::from(Error::Internal(format!("ingest task: {e}")))
                    })?);
                    break;
                }
                Some(other) => {
                    return Err(ApiError::invalid(
                        other,
                        "unknown part (expected `metadata` and `file`)",
                    ));
                }
                None => return Err(ApiError::invalid("body", "a part without a name")),
            }
        }
        if let Some((content, part_name, part_media)) = early {
            let mut m = meta
                .take()
                .unwrap_or_default()
                .or(meta_from_query(&params)?);
            let file_name = m.file_name.take().or(part_name);
            if m.media_type.is_none() {
                m.media_type = part_media;
            }
            let (d, given) = ingest_input(m);
            check_input(&state, &d, &given).await?;
            result = Some(archive_spooled(&state, actor, content, file_name, d, given).await);
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

/// Forwards a multipart part to a limited body. Only an explicit end lets the ingest
/// commit: a sender dropped mid-stream (the request cancelled by a client reset) is an
/// error.
async fn forward(
    mut stream: impl futures::Stream<Item = Result<bytes::Bytes, Error>> + Unpin,
    tx: &tokio::sync::mpsc::Sender<Piece>,
) {
    while let Some(chunk) = stream.next().await {
        let failed = chunk.is_err();
        if tx.send(Piece::Chunk(chunk)).await.is_err() || failed {
            return;
        }
    }
    let _ = tx.send(Piece::End).await;
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
    let holds = state.svc.holds_in_force(&r).await?;
    let mut view = RecordView::from(r);
    view.holds = holds;
    Ok(axum::Json(view))
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
    let mut held = None;
    if let Some(last) = revs.last() {
        state.check_record_visible(&caller, last).await?;
        audit_read(&state, &caller, last, "metadata").await?;
        held = Some(state.svc.holds_in_force(last).await?);
    }
    let mut views: Vec<RecordView> = revs.into_iter().map(RecordView::from).collect();
    // The holds in force now belong to the latest revision.
    if let (Some(last), Some(h)) = (views.last_mut(), held) {
        last.holds = h;
    }
    Ok(axum::Json(views))
}

/// Amend a record: a JSON body amends metadata; any other body is a new content version.
#[utoipa::path(
    post, path = "/v1/records/{id}/revisions", tag = "records",
    params(
        ("id" = String, Path, description = "Record id"),
        ("filename" = Option<String>, Query, description = "File name of a new content version"),
        ("reason" = Option<String>, Query, description = "Reason for the change (a JSON body's own `reason` wins)"),
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
    // No body and no type says nothing: refused rather than read as an empty file.
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let ct = match content_type(req.headers()) {
        Some(ct) => ct,
        None if length.unwrap_or(0) == 0 && !chunked => {
            return Err(ApiError::unsupported_media_type(
                "no body: send application/json to amend metadata, or the new content version",
            ));
        }
        None => String::new(),
    };
    state.catalog_ready().await?;
    let revision = if essence(&ct) == "application/json" {
        let p = Params::parse(req.uri().query(), &["filename", "reason"])?;
        if p.string("filename").is_some() {
            return Err(Error::unprocessable(
                "filename",
                "a file name belongs to a new content version, not to a metadata amendment",
            )
            .into());
        }
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
                    reason: a.reason.or(p.string("reason")),
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
        // As for an upload: an empty body is a mistake (a client that sent none), and as
        // the latest version it would stand for the record's content in every view.
        if content.is_empty() {
            return Err(Error::unprocessable(
                "body",
                "the new content is empty (0 bytes): a content version needs bytes",
            )
            .into());
        }
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
        ("rev" = Option<u32>, Query, minimum = 1, description = "Revision (default: latest)"),
    ),
    responses(
        (status = 200, description = "The content, with the record's own media type", content_type = "*/*", body = Vec<u8>),
        (status = 206, description = "Part of the content", content_type = "*/*", body = Vec<u8>),
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
