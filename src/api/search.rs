//! `/v1/search` and `/v1/parties/{id}/search`: full-text search over the records.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, roles};
use super::params::Params;
use super::problem::{ApiError, ApiResult, Problem};
use crate::catalog::LinkBrief;
use crate::search::{SearchRequest, Sort};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(party_search))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    pub class: String,
    /// Document date (or the archive date when the document has none).
    pub date: NaiveDate,
    pub archived_at: DateTime<Utc>,
    pub media_type: String,
    /// Relevance (0 when sorted by date).
    pub score: f32,
    pub parties: Vec<LinkBrief>,
    /// The title, HTML-escaped, matched words in `<mark>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_html: Option<String>,
    /// An excerpt of the text around the matches, HTML-escaped, matches in `<mark>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub q: String,
    /// All hits, not just this page.
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
    pub sort: Sort,
    pub hits: Vec<SearchHit>,
    /// Counts over all hits: `class`, `party`, `role`, `year`, `retention_state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<BTreeMap<String, BTreeMap<String, u64>>>,
}

/// Searches running at once (each may use every core for its segments).
static SEARCHES: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(4)));

const PARAMS: &[&str] = &[
    "q", "party", "related", "class", "role", "case", "from", "to", "sort", "page", "per_page",
    "fuzzy", "facets", "snippets",
];

/// Search all records the caller may see. Query syntax: words (all must occur), "a
/// phrase", prefix*, field:value (title, body, from, to, cc, name, class, party, role,
/// case, hold, media, lang, date, year), AND/OR/NOT, +must -mustnot, ranges such as
/// `date:[2024-01-01 TO 2024-12-31]`. German and English stemming, umlaut folding,
/// German compounds.
#[utoipa::path(
    get, path = "/v1/search", tag = "search",
    params(
        ("q" = Option<String>, Query, description = "Query text (empty: everything)"),
        ("party" = Option<String>, Query, description = "Only this party's records (with merged parties)"),
        ("related" = Option<bool>, Query, description = "With `party`: include related parties"),
        ("class" = Option<String>, Query, description = "Only this class"),
        ("role" = Option<String>, Query, description = "Only records where a (the) party has this role"),
        ("case" = Option<String>, Query, description = "Only this case"),
        ("from" = Option<String>, Query, description = "Document date from (YYYY-MM-DD)"),
        ("to" = Option<String>, Query, description = "Document date to, inclusive"),
        ("sort" = Option<Sort>, Query, description = "Order of the hits (default relevance)"),
        ("page" = Option<usize>, Query, minimum = 1, maximum = 500, description = "Page, from 1"),
        ("per_page" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Hits per page (default 20)"),
        ("fuzzy" = Option<bool>, Query, description = "Also match words one edit away"),
        ("facets" = Option<bool>, Query, description = "Count facets (default true)"),
        ("snippets" = Option<bool>, Query, description = "Highlighted snippets (default true)"),
    ),
    responses(
        (status = 200, body = SearchResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<axum::Json<SearchResponse>> {
    caller.require_scoped(roles::READ)?;
    let p = Params::parse(req.uri().query(), PARAMS)?;
    p.number::<bool>("related")?;
    let scope = match p.id("party")? {
        Some(party) => Some(party_scope(&state, &caller, &party, &p).await?),
        None => None,
    };
    run(&state, &caller, &p, scope).await
}

/// Search one party's file (the party, parties merged into it, and with `related=true`
/// its related parties). Same parameters as `/v1/search`.
#[utoipa::path(
    get, path = "/v1/parties/{id}/search", tag = "search",
    params(
        ("id" = String, Path, description = "Party id"),
        ("q" = Option<String>, Query, description = "Query text"),
        ("related" = Option<bool>, Query, description = "Include related parties"),
        ("class" = Option<String>, Query, description = "Only this class"),
        ("role" = Option<String>, Query, description = "Only records where the party has this role"),
        ("case" = Option<String>, Query, description = "Only this case"),
        ("from" = Option<String>, Query, description = "Document date from (YYYY-MM-DD)"),
        ("to" = Option<String>, Query, description = "Document date to, inclusive"),
        ("sort" = Option<Sort>, Query, description = "Order of the hits (default relevance)"),
        ("page" = Option<usize>, Query, minimum = 1, maximum = 500, description = "Page, from 1"),
        ("per_page" = Option<usize>, Query, minimum = 1, maximum = 100, description = "Hits per page (default 20)"),
        ("fuzzy" = Option<bool>, Query, description = "Also match words one edit away"),
        ("facets" = Option<bool>, Query, description = "Count facets (default true)"),
        ("snippets" = Option<bool>, Query, description = "Highlighted snippets (default true)"),
    ),
    responses(
        (status = 200, body = SearchResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
async fn party_search(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<axum::Json<SearchResponse>> {
    caller.require_scoped(roles::READ)?;
    let p = Params::parse(req.uri().query(), PARAMS)?;
    if p.string("party").is_some() {
        return Err(ApiError::invalid("party", "the party is given in the path"));
    }
    let scope = party_scope(&state, &caller, &id, &p).await?;
    run(&state, &caller, &p, Some(scope)).await
}

/// The party ids of one party's file, checked against the caller's restriction.
async fn party_scope(
    state: &AppState,
    caller: &Caller,
    party: &str,
    p: &Params,
) -> ApiResult<Vec<String>> {
    state.catalog_ready().await?;
    state.check_party_visible(caller, party).await?;
    let related = p.number::<bool>("related")?.unwrap_or(false);
    state
        .svc
        .catalog
        .scope(party, related)
        .await
        .ok_or_else(|| ApiError::not_found(format!("no party {party}")))
}

async fn run(
    state: &AppState,
    caller: &Caller,
    p: &Params,
    scope: Option<Vec<String>>,
) -> ApiResult<axum::Json<SearchResponse>> {
    let Some(indexer) = state.search.clone() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "search-disabled",
            "Search is not configured",
            "this server runs without a search index (start it with --index DIR)",
        ));
    };
    state.catalog_ready().await?;
    let page: usize = p.number("page")?.unwrap_or(1);
    if !(1..=500).contains(&page) {
        return Err(ApiError::invalid("page", "pages count from 1 to 500"));
    }
    let per_page: usize = p.number("per_page")?.unwrap_or(20);
    if per_page == 0 || per_page > 100 {
        return Err(ApiError::invalid("per_page", "between 1 and 100"));
    }
    let offset = (page - 1).saturating_mul(per_page);
    crate::search::check_window(offset, per_page)?;
    let sort: Sort = match p.string("sort") {
        Some(s) => s.parse()?,
        None => Sort::Relevance,
    };
    // A restricted caller's results are cut to its parties, whatever else was asked.
    let parties = match (scope, state.visible_parties(caller).await) {
        (Some(s), Some(v)) => Some(s.into_iter().filter(|x| v.contains(x)).collect()),
        (Some(s), None) => Some(s),
        (None, v) => v,
    };
    let class = p.string("class");
    if let Some(c) = &class {
        crate::ids::validate_class(c)?;
    }
    let q = p.string("q").unwrap_or_default();
    if q.chars().count() > crate::search::MAX_QUERY {
        return Err(ApiError::invalid(
            "q",
            format!("longer than {} characters", crate::search::MAX_QUERY),
        ));
    }
    // A token limited to fiscal years finds only records dated then.
    let (mut from, mut to) = (p.date("from")?, p.date("to")?);
    if let Some(y) = caller.years() {
        let (first, last) = y.days();
        from = Some(from.map_or(first, |f| f.max(first)));
        to = Some(to.map_or(last, |t| t.min(last)));
    }
    let r = SearchRequest {
        q: q.clone(),
        parties,
        class,
        // A token limited to classes finds only records of them.
        classes: caller.classes().map(<[String]>::to_vec),
        role: p.shaped("role", crate::ids::shape::SLUG)?,
        case: p.id("case")?,
        from,
        to,
        sort,
        offset,
        limit: per_page,
        fuzzy: p.number::<bool>("fuzzy")?.unwrap_or(false),
        facets: p.number::<bool>("facets")?.unwrap_or(true),
    };
    let today = state.archive.clock().now().date_naive();
    let index = indexer.index.clone();
    let r2 = r.clone();
    // A search that outlives its request keeps its permit until it ends: searches on the
    // blocking pool are bounded however many requests time out.
    let permit = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        SEARCHES.clone().acquire_owned(),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many searches running",
            "every search slot is taken; retry in a moment",
        )
    })?
    .map_err(|e| ApiError::from(crate::error::Error::Internal(e.to_string())))?;
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        index.search(&r2, today)
    })
    .await
    .map_err(|e| ApiError::from(crate::error::Error::Internal(e.to_string())))??;
    let snippets = p.number::<bool>("snippets")?.unwrap_or(true) && !q.trim().is_empty();
    let hits: Vec<Option<SearchHit>> = futures::stream::iter(result.hits)
        .map(|h| {
            let (state, indexer, r) = (state.clone(), indexer.clone(), &r);
            async move {
                let b = state.svc.catalog.record(&h.id).await?;
                let (mut title_html, mut snippet) = (None, None);
                if snippets && let Some((t, s)) = indexer.snippets(r, &h).await {
                    title_html = Some(t);
                    snippet = (!s.is_empty()).then_some(s);
                }
                Some(SearchHit {
                    id: b.id,
                    title: b.title,
                    class: b.class,
                    date: b.date,
                    archived_at: b.archived_at,
                    media_type: b.media_type,
                    score: h.score,
                    parties: b.parties,
                    title_html,
                    snippet,
                })
            }
        })
        .buffered(8)
        .collect()
        .await;
    Ok(axum::Json(SearchResponse {
        q,
        total: result.total,
        page,
        per_page,
        sort,
        hits: hits.into_iter().flatten().collect(),
        facets: result.facets,
    }))
}
