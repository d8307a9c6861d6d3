//! Uploads of record content: bounded streaming bodies (size, idle time, upload rate),
//! the multipart channel that only an explicit end completes, the metadata a caller
//! gives, and the hand-over to the ingest pipeline through a spool file.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use super::AppState;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use crate::archive::NewRecord;
use crate::error::Error;
use crate::ingest::batch::{Given, IngestDefaults, ItemOutcome};

use super::records::*;

/// Largest `metadata` part of a multipart upload.
pub(super) const MAX_METADATA: usize = 1 << 20;

pub(super) const META_PARAMS: &[&str] = &[
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

/// Comma-separated email addresses as a list.
fn addresses(p: &Params, name: &str) -> ApiResult<Vec<String>> {
    Ok(p.shaped(name, crate::ids::shape::EMAILS)?
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default())
}

pub(super) fn meta_from_query(p: &Params) -> ApiResult<RecordMeta> {
    let role = p
        .shaped("role", crate::ids::shape::SLUG)?
        .unwrap_or_else(|| "subject".into());
    Ok(RecordMeta {
        class: p.string("class"),
        title: p.string("title"),
        document_date: p.date("date")?,
        file_name: p.string("filename"),
        media_type: p.string("media_type"),
        parties: p
            .ids("party")?
            .into_iter()
            .map(|party| super::parties::LinkItem {
                party,
                role: role.clone(),
            })
            .collect(),
        cases: p.ids("case")?,
        from: addresses(p, "from")?,
        to: addresses(p, "to")?,
    })
}

/// What the caller said of a new record, as ingest takes it: defaults (class, parties,
/// cases) and what is given of the document itself.
pub(super) fn ingest_input(m: RecordMeta) -> (IngestDefaults, Given) {
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
        envelope: None,
        extra: Default::default(),
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
pub(super) async fn check_input(state: &AppState, d: &IngestDefaults, g: &Given) -> ApiResult<()> {
    for (field, address) in g
        .from
        .iter()
        .map(|a| ("from", a))
        .chain(g.to.iter().map(|a| ("to", a)))
    {
        if !crate::ids::shape::matches(crate::ids::shape::EMAIL, address) {
            return Err(ApiError::invalid(
                field,
                format!("{address:?} is not an email address"),
            ));
        }
    }
    state.ingest.check_defaults(d).await?;
    if let Some(d) = g.document_date {
        state.archive.check_document_date(d)?;
    }
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
pub(super) async fn ingest_upload(
    state: &AppState,
    actor: String,
    body: impl Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static,
    file_name: Option<String>,
    d: IngestDefaults,
    given: Given,
) -> ApiResult<(crate::archive::Archived, ItemOutcome)> {
    let dir = state.config.spool_dir();
    let content = crate::store::content::spool(&dir, body).await?;
    archive_spooled(state, actor, content, file_name, d, given).await
}

/// Archives spooled content through the ingest pipeline, in a task of its own.
pub(super) async fn archive_spooled(
    state: &AppState,
    actor: String,
    content: crate::store::content::Content,
    file_name: Option<String>,
    d: IngestDefaults,
    given: Given,
) -> ApiResult<(crate::archive::Archived, ItemOutcome)> {
    // An empty upload is almost always a mistake (a file not yet written, a client that
    // sent no body); archived, it would stay for years under whatever class it got.
    if content.is_empty() {
        return Err(ApiError::from(Error::unprocessable(
            "body",
            "the upload is empty (0 bytes): there is nothing to archive",
        )));
    }
    let svc = state.ingest.clone();
    let task = tokio::spawn(async move {
        svc.archive_document(&actor, content, file_name, given, d)
            .await
    });
    Ok(task
        .await
        .map_err(|e| ApiError::from(Error::Internal(format!("ingest task: {e}"))))??)
}

pub(super) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
}

pub(super) fn essence(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

/// The media type a raw upload declares, if it says anything: `application/octet-stream`
/// and the form type that `curl --data-binary` sends by default say nothing.
pub(super) fn declared_media_type(ct: &str) -> Option<String> {
    match essence(ct) {
        "" | "application/octet-stream" | "application/x-www-form-urlencoded" => None,
        m => Some(m.to_string()),
    }
}

/// The body as a stream of bytes, refused past `limit`, paced by the token's upload rate,
/// and cut when the client stalls.
pub(super) fn limited_body(
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

pub(super) fn check_declared_length(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
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

pub(super) fn body_stream(
    body: Body,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + Unpin + 'static {
    body.into_data_stream()
        .map_err(|e| Error::invalid("body", format!("reading the upload failed: {e}")))
}

/// What flows from a request's multipart field to the ingest task.
pub(super) enum Piece {
    Chunk(Result<Bytes, Error>),
    /// The field ended as the client sent it.
    End,
}

/// The ingest side of the channel: ends only at an explicit [`Piece::End`]; a channel
/// closed without one (the request was dropped mid-upload) is an error, so that a cut-off
/// prefix is never committed.
pub(super) fn tokio_stream_from(
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
