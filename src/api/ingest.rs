//! `/v1/emails`: archive a raw RFC 5322 message.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params::{self, Params};
use super::problem::{ApiResult, Problem};
use crate::ingest::batch::{IngestDefaults, ItemOutcome};
use crate::record::PartyLink;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_email))
}

/// Largest message accepted in one request (it is parsed in memory).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// The ingest defaults of a request's query (`class`, `party`, `role`, `case`), checked:
/// the class is valid, the parties and cases exist.
pub(super) async fn defaults(state: &AppState, query: Option<&str>) -> ApiResult<IngestDefaults> {
    let p = Params::parse(query, &["class", "party", "role", "case"])?;
    let role = p
        .shaped("role", crate::ids::shape::SLUG)?
        .unwrap_or_else(|| "subject".into());
    let d = IngestDefaults {
        class: p.string("class"),
        parties: p
            .ids("party")?
            .into_iter()
            .map(|party| PartyLink {
                party,
                role: role.clone(),
                reason: None,
            })
            .collect(),
        cases: p.ids("case")?,
        keep_copies: false,
        envelope: None,
        extra: Default::default(),
    };
    state.ingest.check_defaults(&d).await?;
    Ok(d)
}

/// Archive an email: the body is the raw message (`message/rfc822`), kept byte-exact as
/// the original. Header facts (Message-ID, Date, From, To, Cc, Subject, thread) go into
/// the record; each attachment becomes a record of its own; parties are linked by
/// sender and recipient addresses where unambiguous. The same bytes again answer 200
/// with `duplicate: true` and write nothing; a message the parser cannot read is still
/// archived, with `extraction_failed`.
#[utoipa::path(
    post, path = "/v1/emails", tag = "records",
    params(
        ("class" = Option<String>, Query, description = "Class (default email)"),
        ("party" = Option<String>, Query, description = "Link to these parties (comma-separated)"),
        ("role" = Option<String>, Query, description = "Their role (default subject)"),
        ("case" = Option<String>, Query, description = "Add to these cases (comma-separated)"),
    ),
    request_body(content = Vec<u8>, content_type = "message/rfc822"),
    responses(
        (status = 201, body = ItemOutcome),
        (status = 200, body = ItemOutcome, description = "Already archived (same bytes)"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn post_email(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let d = defaults(&state, req.uri().query()).await?;
    let limit =
        MAX_MESSAGE.min(usize::try_from(state.config.max_upload_bytes).unwrap_or(MAX_MESSAGE));
    let raw = params::body_bytes_idle(req, limit, state.config.upload_idle_timeout).await?;
    if raw.is_empty() {
        return Err(crate::error::Error::unprocessable("body", "an empty message").into());
    }
    let out = state.ingest.archive_email(&caller.actor(), raw, &d).await?;
    let status = if out.duplicate {
        StatusCode::OK
    } else {
        state.metrics.add_records(1 + out.attachments.len() as i64);
        StatusCode::CREATED
    };
    Ok((status, axum::Json(out)).into_response())
}
