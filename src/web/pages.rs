//! Reading pages: sign-in, search, parties, the party file, a record and its content.

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::body::Body;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::i18n::{Lang, Texts};
use super::views::{self, PartyFile, RecordView, SearchAnswer};
use super::{Ctx, Page, UiError, User, Web, query, redirect, render, session, with_cookie};

type Ui = Result<Response, Response>;

/// The label of a class in the reader's language (the catalogue's, else the id).
pub(crate) fn class_label(web: &Web, lang: Lang, class: &str) -> String {
    let cat = web.state.archive.catalogue();
    let e = cat.classes.get(class);
    let label = match lang {
        Lang::De => e.and_then(|e| e.label_de.clone()),
        Lang::En => e.and_then(|e| e.label_en.clone()),
    };
    label.unwrap_or_else(|| class.to_string())
}

/// A party role's name in the reader's language.
pub(crate) fn role_label(t: &'static Texts, role: &str) -> String {
    match role {
        "customer" => t.partyrole_customer,
        "supplier" => t.partyrole_supplier,
        "prospect" => t.partyrole_prospect,
        "partner" => t.partyrole_partner,
        "contact" => t.partyrole_contact,
        "sender" => t.partyrole_sender,
        "recipient" => t.partyrole_recipient,
        "mentioned" => t.partyrole_mentioned,
        "subject" => t.partyrole_subject,
        other => return other.to_string(),
    }
    .to_string()
}

fn state_label(t: &'static Texts, s: &str) -> String {
    match s {
        "retained" => t.state_retained,
        "eligible" => t.state_eligible,
        "held" => t.state_held,
        "disposed" => t.state_disposed,
        "awaiting-event" => t.state_awaiting,
        other => return other.to_string(),
    }
    .to_string()
}

/// The parties a restricted person may see (with what is merged into them); `None`
/// when unrestricted.
pub(crate) async fn visible(web: &Web, u: &User) -> Option<HashSet<String>> {
    if !u.restricted {
        return None;
    }
    let mut out = HashSet::new();
    for p in &u.principal.parties {
        match web.state.svc.catalog.scope(p, false).await {
            Some(ids) => out.extend(ids),
            None => {
                out.insert(p.clone());
            }
        }
    }
    Some(out)
}

/// A party's name, when the reader may see it.
pub(crate) async fn party_name(
    web: &Web,
    t: &'static Texts,
    vis: &Option<HashSet<String>>,
    id: &str,
) -> Option<String> {
    if let Some(v) = vis
        && !v.contains(id)
    {
        return None;
    }
    Some(
        web.state
            .svc
            .catalog
            .party(id)
            .await
            .map(|p| p.data.name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| t.unnamed.to_string()),
    )
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: Page,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct NextParam {
    #[serde(default)]
    next: String,
}

/// Only a local path may be where sign-in leads (no open redirect).
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/search".into()
    }
}

pub async fn login_form(ctx: Ctx, Query(p): Query<NextParam>) -> Response {
    if ctx.user.is_some() {
        return redirect(&safe_next(&p.next));
    }
    render(&LoginPage {
        page: ctx.page("login"),
        next: safe_next(&p.next),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

pub async fn login(State(web): State<Web>, ctx: Ctx, Form(f): Form<LoginForm>) -> Response {
    let token = f.token.trim().to_string();
    let failed = |ctx: &Ctx| {
        let mut r = render(&LoginPage {
            page: ctx.page("login"),
            next: safe_next(&f.next),
            error: Some(ctx.t.bad_token),
        });
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        r
    };
    if ctx.cross_origin {
        return failed(&ctx);
    }
    let arrived = std::time::Instant::now();
    let ok = match web.state.tokens.authenticate(&token).await {
        Ok(_) => true,
        Err(crate::access::AuthFailure::Invalid) => {
            // Perhaps created on another node since the last reload.
            web.state.refresh_tokens_since(arrived).await;
            web.state.tokens.authenticate(&token).await.is_ok()
        }
        Err(_) => false,
    };
    if !ok {
        return failed(&ctx);
    }
    // A new session id at every sign-in (no fixation); the old one ends.
    if let Some(old) = &ctx.session_id {
        web.sessions.remove(old);
    }
    let Some(id) = web.sessions.create(token) else {
        return ctx.fail(UiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "",
            "no random numbers for a session id",
        ));
    };
    with_cookie(
        redirect(&safe_next(&f.next)),
        &session::cookie(&id, ctx.secure()),
    )
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(State(web): State<Web>, ctx: Ctx, Form(f): Form<CsrfForm>) -> Ui {
    ctx.signed_form(&f.csrf)?;
    if let Some(id) = &ctx.session_id {
        web.sessions.remove(id);
    }
    Ok(with_cookie(
        redirect("/login?done=signed-out"),
        &session::clear_cookie(ctx.secure()),
    ))
}

#[derive(Deserialize)]
pub struct BackParam {
    #[serde(default)]
    back: String,
}

pub async fn set_lang(ctx: Ctx, Path(lang): Path<String>, Query(b): Query<BackParam>) -> Response {
    let lang = Lang::parse(&lang).unwrap_or(ctx.lang);
    with_cookie(
        redirect(&safe_next(&b.back)),
        &format!(
            "akte_lang={}; Path=/; SameSite=Lax; Max-Age=31536000{}",
            lang.code(),
            if ctx.secure() { "; Secure" } else { "" }
        ),
    )
}

// ---------------------------------------------------------------- search

#[derive(Debug, Default, Deserialize, Clone)]
pub struct SearchForm {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub party: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub year: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub case: String,
    #[serde(default)]
    pub page: String,
}

impl SearchForm {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", self.q.clone()),
            ("party", self.party.clone()),
            ("class", self.class.clone()),
            ("role", self.role.clone()),
            ("year", self.year.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("sort", self.sort.clone()),
            ("case", self.case.clone()),
        ]
    }

    /// The link to this search with `key` set to `value` (or removed when empty), from
    /// the first page.
    fn with(&self, key: &str, value: &str) -> String {
        let pairs: Vec<(&str, String)> = self
            .pairs()
            .into_iter()
            .map(|(k, v)| {
                if k == key {
                    (k, value.to_string())
                } else {
                    (k, v)
                }
            })
            .collect();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        format!("/search?{}", query(&refs))
    }

    fn page_link(&self, page: u64) -> String {
        let mut pairs = self.pairs();
        pairs.push(("page", page.to_string()));
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        format!("/search?{}", query(&refs))
    }
}

pub struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
    pub current: u64,
    pub last: u64,
}

impl Pager {
    pub fn new(current: u64, last: u64, link: impl Fn(u64) -> String) -> Pager {
        Pager {
            prev: (current > 1).then(|| link(current - 1)),
            next: (current < last).then(|| link(current + 1)),
            current,
            last,
        }
    }
}

pub struct FacetItem {
    label: String,
    count: u64,
    href: Option<String>,
    active: bool,
}

pub struct FacetGroup {
    label: &'static str,
    items: Vec<FacetItem>,
}

pub struct Chip {
    label: String,
    href: String,
}

pub struct PartyRef {
    pub id: String,
    pub name: String,
    pub role: String,
}

pub struct HitRow {
    id: String,
    title_html: String,
    class_label: String,
    date: NaiveDate,
    media: String,
    snippet: Option<String>,
    parties: Vec<PartyRef>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    page: Page,
    f: SearchForm,
    scope_name: Option<String>,
    active: Vec<Chip>,
    facets: Vec<FacetGroup>,
    hits: Vec<HitRow>,
    total: u64,
    error: Option<String>,
    pager: Pager,
}

const PER_PAGE: u64 = 20;

pub async fn search(State(web): State<Web>, ctx: Ctx, Query(mut f): Query<SearchForm>) -> Ui {
    let (u, s) = ctx.signed()?;
    let t = ctx.t;
    let page_no: u64 = f.page.parse().unwrap_or(1).clamp(1, 500);
    if let Ok(y) = f.year.parse::<i32>()
        && f.from.is_empty()
        && f.to.is_empty()
    {
        f.from = format!("{y:04}-01-01");
        f.to = format!("{y:04}-12-31");
    }
    let sort = if f.sort.is_empty() && f.q.trim().is_empty() {
        "date-desc".to_string()
    } else {
        f.sort.clone()
    };
    let page_s = page_no.to_string();
    let per_page = PER_PAGE.to_string();
    let api = format!(
        "/v1/search?{}",
        query(&[
            ("q", f.q.as_str()),
            ("party", f.party.as_str()),
            ("class", f.class.as_str()),
            ("role", f.role.as_str()),
            ("case", f.case.as_str()),
            ("from", f.from.as_str()),
            ("to", f.to.as_str()),
            ("sort", sort.as_str()),
            ("page", page_s.as_str()),
            ("per_page", per_page.as_str()),
        ])
    );
    let vis = visible(&web, u).await;
    let mut page = ctx.page("search");
    page.q = f.q.clone();
    let (answer, error) = match web.get::<SearchAnswer>(s, &api).await {
        Ok(a) => (Some(a), None),
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
            (None, Some(format!("{} {}", t.search_unavailable, e.detail)))
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            (None, Some(format!("{}: {}", e.title, e.detail)))
        }
        Err(e) => return Err(ctx.fail(e)),
    };
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    let mut name_of = async |id: &str| -> Option<String> {
        if let Some(n) = names.get(id) {
            return n.clone();
        }
        let n = party_name(&web, t, &vis, id).await;
        names.insert(id.to_string(), n.clone());
        n
    };
    let mut hits = Vec::new();
    let mut facets = Vec::new();
    let mut total = 0;
    if let Some(a) = answer {
        total = a.total;
        for h in a.hits {
            let mut parties = Vec::new();
            for l in &h.parties {
                if let Some(name) = name_of(&l.party).await {
                    parties.push(PartyRef {
                        id: l.party.clone(),
                        name,
                        role: role_label(t, &l.role),
                    });
                }
            }
            hits.push(HitRow {
                // The API escapes the title and marks matches with <mark>.
                title_html: h
                    .title_html
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| crate::search::escape_html(&h.title)),
                class_label: class_label(&web, ctx.lang, &h.class),
                date: h.date,
                media: h.media_type.clone(),
                snippet: h.snippet.clone(),
                parties,
                id: h.id,
            });
        }
        if let Some(fs) = a.facets {
            for (key, label) in [
                ("class", t.facet_class),
                ("party", t.facet_party),
                ("role", t.facet_role),
                ("year", t.facet_year),
                ("retention_state", t.facet_state),
            ] {
                let Some(values) = fs.get(key) else { continue };
                let mut items = Vec::new();
                let mut sorted: Vec<(&String, &u64)> = values.iter().collect();
                if key == "year" {
                    sorted.sort_by(|a, b| b.0.cmp(a.0));
                } else {
                    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                }
                for (v, n) in sorted.into_iter().take(12) {
                    let (label, param) = match key {
                        "class" => (class_label(&web, ctx.lang, v), Some("class")),
                        "party" => match name_of(v).await {
                            Some(n) => (n, Some("party")),
                            None => continue,
                        },
                        "role" => (role_label(t, v), Some("role")),
                        "year" => (v.clone(), Some("year")),
                        _ => (state_label(t, v), None),
                    };
                    let current = match param {
                        Some("class") => &f.class,
                        Some("party") => &f.party,
                        Some("role") => &f.role,
                        Some("year") => &f.year,
                        _ => &String::new(),
                    };
                    let active = current == v;
                    let href = param.map(|p| {
                        if p == "year" {
                            // A year replaces any date range.
                            let mut g = f.clone();
                            g.from.clear();
                            g.to.clear();
                            g.with("year", if active { "" } else { v })
                        } else {
                            f.with(p, if active { "" } else { v })
                        }
                    });
                    items.push(FacetItem {
                        label,
                        count: *n,
                        href,
                        active,
                    });
                }
                if !items.is_empty() {
                    facets.push(FacetGroup { label, items });
                }
            }
        }
    }
    let mut active = Vec::new();
    if !f.class.is_empty() {
        active.push(Chip {
            label: class_label(&web, ctx.lang, &f.class),
            href: f.with("class", ""),
        });
    }
    if !f.party.is_empty() {
        active.push(Chip {
            label: name_of(&f.party).await.unwrap_or_else(|| f.party.clone()),
            href: f.with("party", ""),
        });
    }
    if !f.role.is_empty() {
        active.push(Chip {
            label: role_label(t, &f.role),
            href: f.with("role", ""),
        });
    }
    if !f.year.is_empty() {
        let mut g = f.clone();
        g.from.clear();
        g.to.clear();
        active.push(Chip {
            label: f.year.clone(),
            href: g.with("year", ""),
        });
    }
    if !f.case.is_empty() {
        active.push(Chip {
            label: t.case.to_string(),
            href: f.with("case", ""),
        });
    }
    let scope_name = if f.party.is_empty() {
        None
    } else {
        name_of(&f.party).await
    };
    let last = total.div_ceil(PER_PAGE).min(500);
    let pager = Pager::new(page_no, last, |p| f.page_link(p));
    let f = SearchForm { sort, ..f };
    Ok(render(&SearchPage {
        page,
        f,
        scope_name,
        active,
        facets,
        hits,
        total,
        error,
        pager,
    }))
}

// ---------------------------------------------------------------- parties

pub struct PartyRow {
    id: String,
    name: String,
    person: bool,
    roles: Vec<(String, String)>,
    place: String,
    vat: String,
}

#[derive(Template)]
#[template(path = "parties.html")]
struct PartiesPage {
    page: Page,
    name: String,
    role: String,
    roles: Vec<(String, String)>,
    parties: Vec<PartyRow>,
    truncated: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct PartyFilter {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

const PARTY_LIST: usize = 200;

fn party_row(t: &'static Texts, p: views::PartyBrief) -> PartyRow {
    let d = p.data;
    PartyRow {
        person: matches!(d.kind, crate::party::PartyKind::Person),
        roles: d
            .roles
            .iter()
            .map(|r| (r.role.clone(), role_label(t, &r.role)))
            .collect(),
        place: d
            .addresses
            .first()
            .map(|a| {
                [a.postcode.as_deref(), a.city.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        vat: d.vat_id.unwrap_or_default(),
        name: if d.name.is_empty() {
            t.unnamed.to_string()
        } else {
            d.name
        },
        id: p.id,
    }
}

pub async fn parties(State(web): State<Web>, ctx: Ctx, Query(f): Query<PartyFilter>) -> Ui {
    let (u, s) = ctx.signed()?;
    let t = ctx.t;
    let mut rows = Vec::new();
    let mut error = None;
    let mut truncated = false;
    if u.restricted {
        // A restricted person sees exactly the parties of the token.
        for id in &u.principal.parties {
            match web
                .get::<views::PartyBrief>(s, &format!("/v1/parties/{id}"))
                .await
            {
                Ok(p) => rows.push(party_row(t, p)),
                Err(e) => error = Some(e.detail),
            }
        }
    } else {
        let limit = (PARTY_LIST + 1).to_string();
        let uri = format!(
            "/v1/parties?{}",
            query(&[
                ("name", f.name.as_str()),
                ("role", f.role.as_str()),
                ("limit", limit.as_str()),
            ])
        );
        match web.get::<Vec<views::PartyBrief>>(s, &uri).await {
            Ok(ps) => {
                truncated = ps.len() > PARTY_LIST;
                rows.extend(ps.into_iter().take(PARTY_LIST).map(|p| party_row(t, p)));
            }
            Err(e) if e.status.is_client_error() => error = Some(e.detail),
            Err(e) => return Err(ctx.fail(e)),
        }
    }
    let roles = ["customer", "supplier", "prospect", "partner", "contact"]
        .iter()
        .map(|r| (r.to_string(), role_label(t, r)))
        .collect();
    Ok(render(&PartiesPage {
        page: ctx.page("parties"),
        name: f.name,
        role: f.role,
        roles,
        parties: rows,
        truncated,
        error,
    }))
}

// ---------------------------------------------------------------- the party file

pub struct RoleView {
    role: String,
    label: String,
    number: Option<String>,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
}

pub struct PartyHead {
    id: String,
    name: String,
    person: bool,
    roles: Vec<RoleView>,
    merged_into: Option<String>,
    addresses: Vec<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    domains: Vec<String>,
    vat_id: Option<String>,
    register: Option<String>,
    identifiers: Vec<(String, String)>,
    notes: Option<String>,
}

pub struct Named {
    id: String,
    name: String,
    relation: String,
}

pub struct DocRow {
    id: String,
    title: String,
    date: NaiveDate,
    class_label: String,
    /// The first record of the same Message-ID (this one has other bytes).
    variant_of: Option<String>,
    /// "received from the party" / "sent to the party", when the links say.
    direction: Option<&'static str>,
}

pub struct AgreementRow {
    title: String,
    kind: String,
    valid_until: Option<NaiveDate>,
    docs: Vec<DocRow>,
}

pub struct CaseRow {
    id: String,
    title: String,
    kind: String,
    records: u64,
}

pub struct YearRow {
    year: i32,
    total: usize,
    items: Vec<DocRow>,
}

#[derive(Template)]
#[template(path = "party.html")]
struct PartyPage {
    page: Page,
    p: PartyHead,
    records_total: u64,
    related: Vec<Named>,
    merged_from: Vec<Named>,
    agreements: Vec<AgreementRow>,
    cases: Vec<CaseRow>,
    timeline: Vec<DocRow>,
    pager: Pager,
    years: Vec<YearRow>,
    by_class: Vec<(String, String, u64)>,
    others: Vec<DocRow>,
    others_total: u64,
    others_more: bool,
    holds: Vec<(String, String)>,
    can_note: bool,
    can_ingest: bool,
    note_open: bool,
}

#[derive(Deserialize)]
pub struct FileParams {
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    note: Option<String>,
}

/// Transactions shown per year; the rest are one search away.
const PER_YEAR: usize = 25;
const TIMELINE: u64 = 25;

fn relation_label(t: &'static Texts, r: &str) -> String {
    match r {
        "works-for" => t.works_for,
        "subsidiary-of" => t.subsidiary_of,
        "has-contact" => t.has_contact,
        "parent-of" => t.parent_of,
        other => return other.to_string(),
    }
    .to_string()
}

pub async fn party_file(
    State(web): State<Web>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(fp): Query<FileParams>,
) -> Ui {
    let (u, s) = ctx.signed()?;
    let t = ctx.t;
    let page_no = fp.page.unwrap_or(1).clamp(1, 100_000);
    let uri = format!(
        "/v1/parties/{}/file?page={}&per_page={TIMELINE}&per_year={PER_YEAR}",
        percent(&id),
        page_no
    );
    let file: PartyFile = web.get(s, &uri).await.map_err(|e| ctx.fail(e))?;
    let vis = visible(&web, u).await;
    let doc = |r: views::RecordBrief| DocRow {
        class_label: class_label(&web, ctx.lang, &r.class),
        id: r.id,
        title: r.title,
        date: r.date,
        variant_of: r.variant_of,
        direction: match r.direction.as_deref() {
            Some("in") => Some(ctx.t.direction_in),
            Some("out") => Some(ctx.t.direction_out),
            _ => None,
        },
    };
    let d = file.party.data;
    let p = PartyHead {
        id: file.party.id.clone(),
        name: d.name.clone(),
        person: matches!(d.kind, crate::party::PartyKind::Person),
        roles: d
            .roles
            .iter()
            .map(|r| RoleView {
                role: r.role.clone(),
                label: role_label(t, &r.role),
                number: r.number.clone(),
                since: r.since,
                until: r.until,
            })
            .collect(),
        merged_into: file.party.merged_into,
        addresses: d.addresses.iter().map(|a| a.one_line()).collect(),
        emails: d.emails,
        phones: d.phones,
        domains: d.domains,
        vat_id: d.vat_id,
        register: d.register_number,
        identifiers: d.identifiers.into_iter().collect(),
        notes: d.notes,
    };
    let mut related = Vec::new();
    for r in file.related {
        if vis.as_ref().is_some_and(|v| !v.contains(&r.id)) {
            continue;
        }
        related.push(Named {
            relation: relation_label(t, &r.relation),
            id: r.id,
            name: r.name,
        });
    }
    let mut merged_from = Vec::new();
    for m in file.merged_from {
        let name = party_name(&web, t, &None, &m).await.unwrap_or_default();
        merged_from.push(Named {
            id: m,
            name,
            relation: String::new(),
        });
    }
    let agreements = file
        .agreements_in_force
        .into_iter()
        .map(|a| AgreementRow {
            title: a.case.title,
            kind: class_label(&web, ctx.lang, &a.case.kind),
            valid_until: a.case.valid_until,
            docs: a.key_documents.into_iter().map(doc).collect(),
        })
        .collect();
    let cases = file
        .open_cases
        .into_iter()
        .map(|c| CaseRow {
            id: c.id,
            title: c.title,
            kind: class_label(&web, ctx.lang, &c.kind),
            records: c.records,
        })
        .collect();
    let (others, others_total) = match file.other_documents {
        Some(t) => (t.items.into_iter().map(doc).collect(), t.total),
        None => (Vec::new(), 0),
    };
    let holds = file.holds.into_iter().map(|h| (h.name, h.reason)).collect();
    let tl = file.communication;
    let last = tl.total.div_ceil(tl.per_page.max(1));
    let pid = percent(&p.id);
    let pager = Pager::new(tl.page, last, |n| format!("/parties/{pid}?page={n}"));
    let timeline = tl.items.into_iter().map(doc).collect();
    let years = file
        .transactions_by_year
        .into_iter()
        .rev()
        .map(|(year, items)| YearRow {
            year,
            total: file
                .transactions_per_year
                .get(&year)
                .copied()
                .unwrap_or(items.len()),
            items: items.into_iter().take(PER_YEAR).map(doc).collect(),
        })
        .collect();
    let mut by_class: Vec<(String, String, u64)> = file
        .counts_by_class
        .into_iter()
        .map(|(c, n)| (c.clone(), class_label(&web, ctx.lang, &c), n))
        .collect();
    by_class.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
    Ok(render(&PartyPage {
        page: ctx.page("parties"),
        p,
        records_total: file.records_total,
        related,
        merged_from,
        agreements,
        cases,
        timeline,
        pager,
        years,
        by_class,
        others_more: others_total > others.len() as u64,
        others,
        others_total,
        holds,
        can_note: u.can_note,
        can_ingest: u.can_ingest,
        note_open: fp.note.is_some(),
    }))
}

/// A path segment, percent-encoded.
pub(crate) fn percent(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

// ---------------------------------------------------------------- a record

pub enum ContentKind {
    Pdf,
    Image,
    Email(super::mail::MailView),
    Text(String),
    None,
}

pub struct RevisionRow {
    rev: u32,
    at: DateTime<Utc>,
    actor: String,
    change: String,
    reason: Option<String>,
}

pub struct RecordHead {
    id: String,
    title: String,
    class_label: String,
    tombstone: bool,
    holds: Vec<String>,
    document_date: Option<NaiveDate>,
    archived_at: DateTime<Utc>,
    media: String,
    file_name: String,
    size: u64,
    sha256: String,
    extra: Vec<(String, String)>,
    parties: Vec<LinkRow>,
    cases: Vec<String>,
    legal_basis: String,
    period_years: u32,
    retention_start: NaiveDate,
    retain_until: NaiveDate,
}

pub struct LinkRow {
    id: String,
    name: String,
    role: String,
    reason: Option<String>,
}

pub struct Attachment {
    id: String,
    title: String,
    media: String,
    size: u64,
}

#[derive(Template)]
#[template(path = "record.html")]
struct RecordPage {
    page: Page,
    r: RecordHead,
    view: ContentKind,
    truncated: bool,
    extracted: Option<String>,
    attachments: Vec<Attachment>,
    parent: Option<String>,
    revisions: Vec<RevisionRow>,
}

/// Text shown on a page at most (the original is a download away).
const TEXT_SHOWN: u64 = 256 * 1024;
/// Emails larger than this are shown by their extracted text.
const MAIL_RENDERED: u64 = 16 * 1024 * 1024;

/// Facts worth a line in the metadata (the extracted text is shown on its own).
fn shown_extra(k: &str) -> bool {
    !matches!(k, "text" | "parent" | "embedded_in")
}

pub async fn record(State(web): State<Web>, ctx: Ctx, Path(id): Path<String>) -> Ui {
    let (u, s) = ctx.signed()?;
    let t = ctx.t;
    let pid = percent(&id);
    let r: RecordView = web
        .get(s, &format!("/v1/records/{pid}"))
        .await
        .map_err(|e| ctx.fail(e))?;
    let revs: Vec<RecordView> = web
        .get(s, &format!("/v1/records/{pid}/revisions"))
        .await
        .map_err(|e| ctx.fail(e))?;
    let vis = visible(&web, u).await;
    let tombstone = r.change == "tombstone" || r.content.sha256.is_empty();
    let media = r.content.media_type.to_ascii_lowercase();
    let mut truncated = false;
    let mut extracted = None;
    let full = web.state.archive.latest(&r.id).await.ok();
    let view = if tombstone {
        ContentKind::None
    } else if media == "application/pdf" {
        ContentKind::Pdf
    } else if is_inline_image(&media) {
        ContentKind::Image
    } else if media == "message/rfc822" && r.content.size <= MAIL_RENDERED {
        // Read through the API: the content read is journaled like a download.
        let resp = web
            .call(
                s,
                Method::GET,
                &format!("/v1/records/{pid}/content"),
                Body::empty(),
                None,
                None,
            )
            .await;
        match read_bytes(resp, MAIL_RENDERED as usize).await {
            Some(raw) => ContentKind::Email(super::mail::render(&raw)),
            None => ContentKind::None,
        }
    } else if crate::extract::is_text_like(&media) {
        match &full {
            Some(rev) => {
                let text = crate::extract::record_text_upto(&web.state.archive, rev, TEXT_SHOWN)
                    .await
                    .unwrap_or_default();
                truncated = r.content.size > TEXT_SHOWN;
                ContentKind::Text(text)
            }
            None => ContentKind::None,
        }
    } else {
        ContentKind::None
    };
    // The text found at ingest (PDF, Office, OCR), as a fallback and for copying.
    if !tombstone
        && let Some(rev) = &full
        && let Some(text) = rev.extra.get("text")
        && !matches!(view, ContentKind::Text(_))
    {
        let mut text = text.clone();
        if text.len() > TEXT_SHOWN as usize {
            let mut cut = TEXT_SHOWN as usize;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        extracted = Some(text);
    }
    let mut parties = Vec::new();
    for l in &r.parties {
        if let Some(name) = party_name(&web, t, &vis, &l.party).await {
            parties.push(LinkRow {
                id: l.party.clone(),
                name,
                role: role_label(t, &l.role),
                reason: l.reason.clone(),
            });
        }
    }
    let mut cases = Vec::new();
    if let Some(b) = web.state.svc.catalog.record(&r.id).await {
        for c in b.cases {
            let title = web
                .state
                .svc
                .catalog
                .case(&c)
                .await
                .map(|c| c.title)
                .unwrap_or(c);
            cases.push(title);
        }
    }
    let mut attachments = Vec::new();
    for c in web.state.svc.catalog.children(&r.id).await {
        if let Some(v) = &vis
            && !c.parties.iter().any(|l| v.contains(&l.party))
        {
            continue;
        }
        attachments.push(Attachment {
            id: c.id,
            title: c.title,
            media: c.media_type,
            size: c.size,
        });
    }
    let parent = r.extra.get("parent").cloned();
    let mut extra: Vec<(String, String)> = r
        .extra
        .iter()
        .filter(|(k, _)| shown_extra(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // An e-invoice's total in the reader's format.
    if let (Some(total), Some(cur)) = (r.extra.get("total"), r.extra.get("currency"))
        && let Some(a) = ctx.lang.amount(total, cur)
    {
        extra.retain(|(k, _)| k != "total");
        extra.push(("total".into(), a));
    }
    let revisions = revs
        .into_iter()
        .map(|v| RevisionRow {
            rev: v.rev,
            at: v.revised_at,
            actor: v.actor,
            change: v.change,
            reason: v.reason,
        })
        .collect();
    let head = RecordHead {
        class_label: class_label(&web, ctx.lang, &r.class),
        tombstone,
        holds: r.holds,
        document_date: r.document_date,
        archived_at: r.archived_at,
        media: r.content.media_type,
        file_name: r.content.file_name.unwrap_or_default(),
        size: r.content.size,
        sha256: r.content.sha256,
        extra,
        parties,
        cases,
        legal_basis: r.retention.legal_basis,
        period_years: r.retention.period_years,
        retention_start: r.retention.start,
        retain_until: r.retention.retain_until,
        title: r.title,
        id: r.id,
    };
    Ok(render(&RecordPage {
        page: ctx.page("search"),
        r: head,
        view,
        truncated,
        extracted,
        attachments,
        parent,
        revisions,
    }))
}

fn is_inline_image(media: &str) -> bool {
    // SVG may carry script: never inline.
    matches!(
        media,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp"
    )
}

async fn read_bytes(resp: Response, max: usize) -> Option<Vec<u8>> {
    use http_body_util::BodyExt;
    if !resp.status().is_success() {
        return None;
    }
    http_body_util::Limited::new(resp.into_body(), max)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes().to_vec())
}

#[derive(Deserialize)]
pub struct ContentParams {
    #[serde(default)]
    inline: Option<String>,
}

/// The original, through the API (streamed, read journaled). Shown inline only for PDF,
/// raster images and plain text, with a policy that runs no script; everything else is
/// a download.
pub async fn content(
    State(web): State<Web>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(p): Query<ContentParams>,
) -> Ui {
    let (_, s) = ctx.signed()?;
    let resp = web
        .call(
            s,
            Method::GET,
            &format!("/v1/records/{}/content", percent(&id)),
            Body::empty(),
            None,
            None,
        )
        .await;
    if !resp.status().is_success() {
        let e = super::read_json::<serde_json::Value>(resp)
            .await
            .err()
            .unwrap_or_else(|| UiError::new(StatusCode::BAD_GATEWAY, "", ""));
        return Err(ctx.fail(e));
    }
    let (mut parts, body) = resp.into_parts();
    let media = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let inline = p.inline.is_some()
        && (media == "application/pdf" || is_inline_image(&media) || media == "text/plain");
    let h = &mut parts.headers;
    if inline {
        h.insert(CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    } else if !h.contains_key(CONTENT_DISPOSITION) {
        h.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    if !inline
        && h.get(CONTENT_DISPOSITION)
            .is_some_and(|v| v.as_bytes().starts_with(b"inline"))
    {
        h.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    // A PDF viewer is not a sandboxable document; everything else is sandboxed.
    let csp = if media == "application/pdf" {
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; object-src 'self'; frame-ancestors 'self'"
    } else {
        "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
    };
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(Response::from_parts(parts, body).into_response())
}
