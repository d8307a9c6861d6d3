//! `/v1/tokens`: API tokens (admin only). A token is shown once, at creation.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params;
use super::problem::{ApiError, ApiResult, Problem};
use crate::access::{Role, TokenRevision};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub role: Role,
    pub name: String,
    /// Last day the token is valid (`YYYY-MM-DD`, through the end of that day, UTC).
    pub expires: Option<NaiveDate>,
    /// Restrict the token to these parties: it then sees only their files and records
    /// (and searches only them), and every other endpoint refuses it.
    #[serde(default)]
    pub parties: Vec<String>,
    /// The person the token belongs to (default: the person creating it). Four-eyes rules
    /// compare persons: two tokens of one person are one pair of eyes.
    #[serde(default)]
    pub person: Option<String>,
    /// Limit the token to records dated in these fiscal years (a tax auditor's Z1
    /// access): it reads and searches only them, and every other endpoint refuses it.
    #[serde(default)]
    pub years: Option<crate::access::FiscalYears>,
    /// Limit the token to records of these retention classes (e.g. `invoice`): it reads
    /// and searches only them, and every other endpoint refuses it.
    #[serde(default)]
    pub classes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The parties the token is restricted to (absent: unrestricted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<String>,
    /// The person it belongs to.
    pub person: String,
    /// The fiscal years it is limited to (absent: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub years: Option<crate::access::FiscalYears>,
    /// The retention classes it is limited to (absent: unlimited).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenView,
    /// The token. Shown only now; the server keeps only its hash.
    pub token: String,
}

impl From<TokenRevision> for TokenView {
    fn from(t: TokenRevision) -> Self {
        let person = t.person();
        TokenView {
            id: t.id,
            name: t.name,
            role: t.role,
            created_at: t.created_at,
            created_by: t.created_by,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            person,
            parties: t.parties,
            years: t.years,
            classes: t.classes,
        }
    }
}

/// End of a given day, UTC: a token "expiring 2026-12-31" works through that day.
pub fn end_of_day(d: NaiveDate) -> Option<DateTime<Utc>> {
    d.succ_opt()
        .and_then(|n| n.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Create a token (admin).
#[utoipa::path(
    post, path = "/v1/tokens", tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, body = CreatedToken),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::ADMIN)?;
    let c: CreateToken = params::json_body(req, 64 * 1024).await?;
    let expires = c.expires.and_then(end_of_day);
    crate::access::check_classes(&c.classes, state.archive.catalogue())?;
    let (t, secret) = state
        .tokens
        .create(
            &caller.actor(),
            crate::access::NewToken {
                role: c.role,
                name: c.name,
                person: c.person.unwrap_or_else(|| caller.principal.person.clone()),
                expires_at: expires,
                secret: None,
                parties: c.parties,
                years: c.years,
                classes: c.classes,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            info: t.into(),
            token: secret,
        }),
    )
        .into_response())
}

/// List tokens (admin); secrets are never shown.
#[utoipa::path(
    get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>)),
    security(("bearer" = []))
)]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    caller.require(roles::ADMIN)?;
    state.tokens.refresh().await?;
    Ok(axum::Json(
        state
            .tokens
            .list()
            .await
            .into_iter()
            .map(TokenView::from)
            .collect(),
    ))
}

/// Revoke a token (admin).
#[utoipa::path(
    delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 200, body = TokenView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active admin token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TokenView>> {
    caller.require(roles::ADMIN)?;
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::not_found(format!("no token {id}")));
    }
    let t = state.tokens.revoke(&caller.actor(), &id).await?;
    Ok(axum::Json(t.into()))
}
