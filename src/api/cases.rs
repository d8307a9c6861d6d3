//! `/v1/cases`: business events (Vorgänge) of a party.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params::{self, Params};
use super::problem::{ApiError, ApiResult, Problem};
use crate::case::{CaseChange, NewCase};
use crate::catalog::CaseBrief;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_cases, create_case))
        .routes(routes!(get_case))
        .routes(routes!(change_case))
}

/// Cases of a party (open ones unless `all`).
#[utoipa::path(
    get, path = "/v1/cases", tag = "cases",
    params(
        ("party" = String, Query, description = "Party id"),
        ("all" = Option<bool>, Query, description = "Closed cases too"),
    ),
    responses(
        (status = 200, body = Vec<CaseBrief>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn list_cases(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<axum::Json<Vec<CaseBrief>>> {
    caller.require(roles::READ)?;
    state.catalog_ready().await?;
    let p = Params::parse(req.uri().query(), &["party", "all"])?;
    let party = p
        .id("party")?
        .ok_or_else(|| ApiError::invalid("party", "required"))?;
    let all = p.number::<bool>("all")?.unwrap_or(false);
    Ok(axum::Json(state.svc.catalog.cases_of(&party, all).await))
}

/// Open a case for a party (clerk, archivist, admin).
#[utoipa::path(
    post, path = "/v1/cases", tag = "cases",
    request_body = NewCase,
    responses(
        (status = 201, body = CaseBrief),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn create_case(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::NOTE)?;
    state.catalog_ready().await?;
    let mut n: NewCase = params::json_body(req, 64 * 1024).await?;
    n.party = state.svc.parties.resolve(&n.party).await?.revision.id;
    let c = state.svc.cases.create(&caller.actor(), n).await?;
    state.svc.catalog.put_case(&c).await;
    let brief = state
        .svc
        .catalog
        .case(&c.id)
        .await
        .ok_or_else(|| ApiError::not_found("case vanished"))?;
    Ok(super::located(
        StatusCode::CREATED,
        &format!("/v1/cases/{}", c.id),
        brief,
    ))
}

/// A case.
#[utoipa::path(
    get, path = "/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = CaseBrief),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_case(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<CaseBrief>> {
    caller.require(roles::READ)?;
    state.catalog_ready().await?;
    state
        .svc
        .catalog
        .case(&id)
        .await
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("no case {id}")))
}

/// Change a case: close or reopen it, change title or validity (journaled).
#[utoipa::path(
    post, path = "/v1/cases/{id}/revisions", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    request_body = CaseChange,
    responses(
        (status = 201, body = CaseBrief),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn change_case(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::NOTE)?;
    state.catalog_ready().await?;
    let ch: CaseChange = params::json_body(req, 64 * 1024).await?;
    let c = state.svc.change_case(&caller.actor(), &id, ch).await?;
    let brief = state
        .svc
        .catalog
        .case(&c.id)
        .await
        .ok_or_else(|| ApiError::not_found("case vanished"))?;
    Ok((StatusCode::CREATED, axum::Json(brief)).into_response())
}
