//! `/v1/parties`: business partners, their file (Kundenakte), roles, merge, notes, import.

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params::{self, Params};
use super::problem::{ApiError, ApiResult, Problem};
use crate::archive::LinkChange;
use crate::catalog::{PartyBrief, PartyFile, PartyFilter};
use crate::ingest::NoteInput;
use crate::ingest::parties::{self as import, ImportReport};
use crate::party::{Party, PartyData, RoleEntry};
use crate::record::PartyLink;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_parties, create_party))
        .routes(routes!(get_party))
        .routes(routes!(party_revisions, amend_party))
        .routes(routes!(add_role))
        .routes(routes!(merge_party))
        .routes(routes!(erase_party))
        .routes(routes!(party_file))
        .routes(routes!(add_note))
        .routes(routes!(import_parties))
        .routes(routes!(link_record))
}

/// A party revision as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartyView {
    pub id: String,
    pub rev: u32,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    pub reason: Option<String>,
    pub merged_into: Option<String>,
    /// Personal data were erased (the party's key is gone).
    pub erased: bool,
    #[serde(flatten)]
    pub data: PartyData,
}

impl From<Party> for PartyView {
    fn from(p: Party) -> Self {
        PartyView {
            id: p.revision.id,
            rev: p.revision.rev,
            revised_at: p.revision.revised_at,
            actor: p.revision.actor,
            change: p.revision.change,
            reason: p.revision.reason,
            merged_into: p.revision.merged_into,
            erased: p.erased,
            data: p.data,
        }
    }
}

/// List parties: by role, name prefix (umlaut-folded) or identifier
/// (`vat:DE…`, `customer:4711`, `email:…`, or a bare value).
#[utoipa::path(
    get, path = "/v1/parties", tag = "parties",
    params(
        ("role" = Option<String>, Query, description = "Only parties with this role"),
        ("name" = Option<String>, Query, description = "Name prefix"),
        ("identifier" = Option<String>, Query, description = "An identifier, e.g. customer:4711 or DE123456789"),
        ("merged" = Option<bool>, Query, description = "Include merged (absorbed) parties"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)"),
    ),
    responses((status = 200, body = Vec<PartyBrief>)),
    security(("bearer" = []))
)]
async fn list_parties(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<axum::Json<Vec<PartyBrief>>> {
    caller.require(roles::READ)?;
    state.catalog_ready().await?;
    let p = Params::parse(
        req.uri().query(),
        &["role", "name", "identifier", "merged", "limit"],
    )?;
    let limit: usize = p.number("limit")?.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::invalid("limit", "between 1 and 1000"));
    }
    let f = PartyFilter {
        role: p.shaped("role", crate::ids::shape::SLUG)?,
        name_prefix: p.string("name"),
        identifier: p.string("identifier"),
        include_merged: p.number::<bool>("merged")?.unwrap_or(false),
        limit,
    };
    Ok(axum::Json(state.svc.catalog.list(&f).await))
}

/// Create a party (archivist, admin).
#[utoipa::path(
    post, path = "/v1/parties", tag = "parties",
    request_body = PartyData,
    responses(
        (status = 201, body = PartyView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn create_party(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let d: PartyData = params::json_body(req, 1 << 20).await?;
    let p = state.svc.parties.create(&caller.actor(), d).await?;
    state.svc.catalog.put_party(&p).await;
    Ok(super::located(
        StatusCode::CREATED,
        &format!("/v1/parties/{}", p.revision.id),
        PartyView::from(p),
    ))
}

/// The latest revision of a party (also of a merged one: see `merged_into`).
#[utoipa::path(
    get, path = "/v1/parties/{id}", tag = "parties",
    params(("id" = String, Path, description = "Party id")),
    responses(
        (status = 200, body = PartyView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn get_party(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<PartyView>> {
    caller.require_scoped(roles::READ)?;
    state.check_party_visible(&caller, &id).await?;
    let p = state.svc.parties.get(&id).await?;
    audit_party_read(&state, &caller, &p.revision.id, p.revision.rev).await?;
    Ok(axum::Json(p.into()))
}

/// Queues the journaling of a read of a party's (personal) data.
async fn audit_party_read(state: &AppState, caller: &Caller, id: &str, rev: u32) -> ApiResult<()> {
    state
        .reads
        .record(crate::audit::reads::ReadEvent {
            actor: caller.actor(),
            record_id: id.to_string(),
            rev,
            what: "party",
        })
        .await
        .map_err(|e| {
            tracing::error!("a party read was refused: {e}");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Read not journaled",
                "the read could not be journaled, so it is not served; retry later",
            )
        })
}

/// Every revision of a party, oldest first.
#[utoipa::path(
    get, path = "/v1/parties/{id}/revisions", tag = "parties",
    params(("id" = String, Path, description = "Party id")),
    responses(
        (status = 200, body = Vec<PartyView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn party_revisions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<PartyView>>> {
    caller.require(roles::READ)?;
    let h = state.svc.parties.history(&id).await?;
    if let Some(last) = h.last() {
        audit_party_read(&state, &caller, &last.revision.id, last.revision.rev).await?;
    }
    Ok(axum::Json(h.into_iter().map(PartyView::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendParty {
    /// The complete new master data.
    pub data: PartyData,
    pub reason: Option<String>,
    /// The revision the change was made against: 409 if a newer one exists.
    #[serde(default, deserialize_with = "crate::api::params::whole_number")]
    #[schema(minimum = 1)]
    pub base_rev: Option<u32>,
}

/// Change master data: a new revision with the complete new data (archivist, admin).
#[utoipa::path(
    post, path = "/v1/parties/{id}/revisions", tag = "parties",
    params(("id" = String, Path, description = "Party id")),
    request_body = AmendParty,
    responses(
        (status = 201, body = PartyView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn amend_party(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let a: AmendParty = params::json_body(req, 1 << 20).await?;
    let p = state
        .svc
        .parties
        .update(&caller.actor(), &id, a.data, a.reason, a.base_rev)
        .await?;
    state.svc.catalog.put_party(&p).await;
    Ok((StatusCode::CREATED, axum::Json(PartyView::from(p))).into_response())
}

/// Add a role (or replace the role of that name): customer, supplier, prospect, …
#[utoipa::path(
    post, path = "/v1/parties/{id}/roles", tag = "parties",
    params(("id" = String, Path, description = "Party id")),
    request_body = RoleEntry,
    responses(
        (status = 201, body = PartyView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn add_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let r: RoleEntry = params::json_body(req, 64 * 1024).await?;
    let current = state.svc.parties.get(&id).await?;
    let mut data = current.data.clone();
    data.roles
        .retain(|x| x.role != r.role.trim().to_ascii_lowercase());
    data.roles.push(r);
    let p = state
        .svc
        .parties
        .update(
            &caller.actor(),
            &id,
            data,
            Some("role".into()),
            Some(current.revision.rev),
        )
        .await?;
    state.svc.catalog.put_party(&p).await;
    Ok((StatusCode::CREATED, axum::Json(PartyView::from(p))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The surviving party.
    pub into: String,
    pub reason: Option<String>,
}

/// Merge this party into another (archivist, admin). The absorbed id keeps resolving.
#[utoipa::path(
    post, path = "/v1/parties/{id}/merge", tag = "parties",
    params(("id" = String, Path, description = "The party to absorb")),
    request_body = MergeRequest,
    responses(
        (status = 201, description = "The surviving party", body = PartyView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn merge_party(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let m: MergeRequest = params::json_body(req, 64 * 1024).await?;
    let survivor = state
        .svc
        .parties
        .merge(&caller.actor(), &id, &m.into, m.reason)
        .await?;
    let absorbed = state.svc.parties.get(&id).await?;
    state.svc.catalog.put_party(&survivor).await;
    state.svc.catalog.put_party(&absorbed).await;
    Ok((StatusCode::CREATED, axum::Json(PartyView::from(survivor))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    pub reason: String,
}

/// Erase a party's personal data (GDPR Art. 17) once none of its records is retained or
/// held any more: a last revision keeps only non-personal facts and the party's key is
/// destroyed, so no earlier revision's personal fields can be read again.
#[utoipa::path(
    post, path = "/v1/parties/{id}/erase", tag = "parties",
    params(("id" = String, Path, description = "Party id")),
    request_body = EraseRequest,
    responses(
        (status = 201, body = PartyView),
        (status = 423, description = "A record is still retained or held", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn erase_party(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let e: EraseRequest = params::json_body(req, 64 * 1024).await?;
    if !crate::ids::shape::matches(crate::ids::shape::TEXT, &e.reason) {
        return Err(ApiError::invalid("reason", "an erasure needs a reason"));
    }
    let p = state
        .svc
        .erase_party(&caller.actor(), &id, &e.reason)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(PartyView::from(p))).into_response())
}

/// The party file: master data and roles, agreements in force, open cases, the
/// communication timeline (paged), transaction documents by year, counts, related parties.
#[utoipa::path(
    get, path = "/v1/parties/{id}/file", tag = "parties",
    params(
        ("id" = String, Path, description = "Party id (a merged id resolves to the survivor)"),
        ("page" = Option<usize>, Query, minimum = 1, maximum = 100000, description = "Timeline page, from 1 (as in search)"),
        ("per_page" = Option<usize>, Query, minimum = 1, maximum = 500, description = "Timeline page size (default 50)"),
        ("date" = Option<String>, Query, description = "The day for 'in force' (default today)"),
        ("per_year" = Option<usize>, Query, minimum = 0, maximum = 100000, description = "At most this many transaction documents per year, newest first (default: all; `transactions_per_year` counts all)"),
    ),
    responses(
        (status = 200, body = PartyFile),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn party_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<axum::Json<PartyFile>> {
    caller.require_scoped(roles::READ)?;
    // The file lists every year: a token limited to fiscal years searches instead.
    caller.refuse_limited()?;
    state.catalog_ready().await?;
    state.check_party_visible(&caller, &id).await?;
    let p = Params::parse(req.uri().query(), &["page", "per_page", "date", "per_year"])?;
    let per_year: Option<usize> = p.number("per_year")?;
    if per_year.is_some_and(|n| n > 100_000) {
        return Err(ApiError::invalid("per_year", "at most 100000"));
    }
    let today = p
        .date("date")?
        .unwrap_or(state.archive.clock().now().date_naive());
    let page: usize = p.number("page")?.unwrap_or(1);
    if !(1..=100_000).contains(&page) {
        return Err(ApiError::invalid("page", "between 1 and 100000"));
    }
    let per_page: usize = p.number("per_page")?.unwrap_or(50);
    if !(1..=500).contains(&per_page) {
        return Err(ApiError::invalid("per_page", "between 1 and 500"));
    }
    let mut file = state
        .svc
        .catalog
        .file(&id, today, page, per_page)
        .await
        .ok_or_else(|| ApiError::not_found(format!("no party {id}")))?;
    if let Some(n) = per_year {
        for v in file.transactions_by_year.values_mut() {
            v.truncate(n);
        }
    }
    file.holds = state.svc.party_holds(&file.party.id).await?;
    audit_party_read(&state, &caller, &file.party.id, file.party.rev).await?;
    Ok(axum::Json(file))
}

/// Record a phone note or memo about the party (clerk, archivist, admin).
#[utoipa::path(
    post, path = "/v1/parties/{id}/notes", tag = "parties",
    params(("id" = String, Path, description = "Party id")),
    request_body = NoteInput,
    responses(
        (status = 201, body = super::records::Archived),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::NOTE)?;
    state.catalog_ready().await?;
    let n: NoteInput = params::json_body(req, 256 * 1024).await?;
    let party = state.svc.catalog.resolve(&id).await;
    let a = state.ingest.note(&caller.actor(), &party, n).await?;
    Ok(super::located(
        StatusCode::CREATED,
        &format!("/v1/records/{}", a.id),
        super::records::Archived::from(a),
    ))
}

/// Import parties from an ERP/CRM export: CSV (`text/csv`, header
/// `kind,name,role,customer_number,supplier_number,vat_id,email,phone,domain,street,postcode,city,country`)
/// or a JSON array of objects with those keys. Upsert; per-row errors; re-import is a no-op.
#[utoipa::path(
    post, path = "/v1/parties/import", tag = "parties",
    params(("map" = Option<String>, Query, description = "Column mapping for CSV: `Kundennummer:customer_number,Firma:name`")),
    request_body(content((Vec<u8> = "text/csv"), (Vec<serde_json::Value> = "application/json"))),
    responses(
        (status = 200, body = ImportReport),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn import_parties(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<axum::Json<ImportReport>> {
    caller.require(roles::INGEST)?;
    state.catalog_ready().await?;
    let p = Params::parse(req.uri().query(), &["map"])?;
    let mapping = import::parse_mapping(p.string("map").as_deref())?;
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let bytes = params::body_bytes(req, 64 << 20).await?;
    let (rows, errors) = match ct.as_str() {
        "text/csv" => import::parse_csv(&bytes, &mapping),
        "application/json" => import::parse_json(&bytes)?,
        _ => {
            return Err(ApiError::unsupported_media_type(
                "send text/csv or application/json",
            ));
        }
    };
    let report = import::import_rows(
        &state.svc.parties,
        &state.svc.catalog,
        &caller.actor(),
        rows,
        errors,
    )
    .await;
    Ok(axum::Json(report))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    #[serde(default)]
    pub add: Vec<LinkItem>,
    #[serde(default)]
    pub remove: Vec<LinkItem>,
    #[serde(default)]
    pub add_cases: Vec<String>,
    #[serde(default)]
    pub remove_cases: Vec<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkItem {
    pub party: String,
    /// The party's role in the record: sender, recipient, contract-party, …
    /// (`*` in `remove`: every role).
    pub role: String,
}

/// Link a record to parties and cases, or unlink it (clerk, archivist, admin).
#[utoipa::path(
    post, path = "/v1/records/{id}/links", tag = "records",
    params(("id" = String, Path, description = "Record id")),
    request_body = LinkRequest,
    responses(
        (status = 201, description = "The new revision", body = super::records::RecordView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn link_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    caller.require(roles::NOTE)?;
    state.catalog_ready().await?;
    let l: LinkRequest = params::json_body(req, 256 * 1024).await?;
    let ch = LinkChange {
        add_parties: l
            .add
            .into_iter()
            .map(|i| PartyLink {
                party: i.party,
                role: i.role,
                reason: None,
            })
            .collect(),
        remove_parties: l.remove.into_iter().map(|i| (i.party, i.role)).collect(),
        add_cases: l.add_cases,
        remove_cases: l.remove_cases,
        reason: l.reason,
    };
    let r = state.svc.link(&caller.actor(), &id, ch).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(super::records::RecordView::from(r)),
    )
        .into_response())
}
