//! The web interface: server-rendered pages for clerks, archivists and auditors, served
//! by `akte serve` at `/` beside the API under `/v1`.
//!
//! Every page is a client of the API in this process: the session holds the person's
//! token, and a page calls `/v1` with it, so it shows and does exactly what the token
//! may — roles, party restriction, read auditing, limits — checked in one place, the
//! API. Templates are askama (compiled, escaping by default); htmx (vendored, no CDN)
//! adds progressive enhancement; pages work without JavaScript, which only adds upload
//! progress and live job views. Every response carries a Content-Security-Policy that
//! allows no inline script; archived content is served with `sandbox`.

mod audit;
mod filing;
pub mod i18n;
mod mail;
mod pages;
pub mod procedure;
mod retention;
mod session;
mod views;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::header::{
    ACCEPT, ACCEPT_LANGUAGE, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::access::{Principal, Role};
use crate::api::AppState;
use i18n::{Lang, Texts};
use session::{Session, Sessions};

/// The web interface's state: the server's, the API to call, the sessions.
#[derive(Clone)]
pub struct Web(Arc<WebInner>);

pub struct WebInner {
    pub state: AppState,
    api: Router,
    sessions: Sessions,
}

impl std::ops::Deref for Web {
    type Target = WebInner;
    fn deref(&self) -> &WebInner {
        &self.0
    }
}

/// The whole application: the API and the web interface.
pub fn app(state: AppState) -> Router {
    let web = Web(Arc::new(WebInner {
        state: state.clone(),
        api: crate::api::app(state.clone()),
        sessions: Sessions::default(),
    }));
    crate::api::app_with(state, routes(web))
}

fn routes(web: Web) -> Router {
    Router::new()
        .route("/", get(|| async { redirect("/search") }))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/lang/{lang}", get(pages::set_lang))
        .route("/search", get(pages::search))
        .route("/parties", get(pages::parties))
        .route("/parties/{id}", get(pages::party_file))
        .route("/parties/{id}/notes", post(filing::add_note))
        .route("/cases", post(filing::open_case))
        .route("/cases/{id}/close", post(filing::close_case))
        .route("/records/{id}", get(pages::record))
        .route("/records/{id}/content", get(pages::content))
        .route("/upload", get(filing::upload_form).post(filing::upload))
        .route("/imports", post(filing::start_import))
        .route("/imports/{id}", get(filing::import_job))
        .route("/retention", get(retention::dashboard))
        .route("/holds", post(retention::place_hold))
        .route("/holds/{id}/release", post(retention::release_hold))
        .route("/disposals", post(retention::request_disposal))
        .route("/disposals/{id}", get(retention::disposal))
        .route("/disposals/{id}/approve", post(retention::approve))
        .route("/disposals/{id}/certificate", get(retention::certificate))
        .route("/journal", get(audit::journal))
        .route("/verify", get(audit::verify_page).post(audit::start_verify))
        .route("/procedure", get(audit::procedure_page))
        .route("/assets/{file}", get(asset))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(web)
}

/// What every UI response carries: no inline script anywhere, no framing by others, no
/// referrer to other sites, no caching of pages with personal data.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                 frame-ancestors 'self'",
            ),
        );
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const SCRIPT: &[u8] = include_bytes!("assets/akte.js");
const STYLE: &[u8] = include_bytes!("assets/akte.css");

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, ctype) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "akte.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "akte.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (CONTENT_TYPE, ctype),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// 303 to `to` (after a form, the browser GETs the result).
pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Who is signed in, as the pages need it.
#[derive(Debug, Clone)]
pub struct User {
    pub principal: Principal,
    pub person: String,
    pub role_name: &'static str,
    pub restricted: bool,
    pub can_ingest: bool,
    pub can_note: bool,
    pub can_retention: bool,
    pub can_retention_write: bool,
    pub can_audit: bool,
}

impl User {
    fn new(principal: Principal, t: &'static Texts) -> User {
        use Role::*;
        let role = principal.role;
        let restricted = !principal.parties.is_empty();
        // A token limited to fiscal years or classes reads records and searches; the
        // API refuses it everything else, so the pages do not offer it.
        let limited = principal.years.is_some() || !principal.classes.is_empty();
        let free = !restricted && !limited;
        User {
            person: principal.person.clone(),
            role_name: match role {
                Admin => t.role_admin,
                Archivist => t.role_archivist,
                Clerk => t.role_clerk,
                Auditor => t.role_auditor,
            },
            restricted,
            can_ingest: free && matches!(role, Admin | Archivist),
            can_note: free && matches!(role, Admin | Archivist | Clerk),
            can_retention: free && matches!(role, Admin | Archivist | Auditor),
            can_retention_write: free && matches!(role, Admin | Archivist),
            can_audit: free && matches!(role, Admin | Auditor),
            principal,
        }
    }
}

/// A request's context: language, the signed-in person (if any), where it came from.
pub struct Ctx {
    pub lang: Lang,
    pub t: &'static Texts,
    pub user: Option<User>,
    session_id: Option<String>,
    session: Option<Session>,
    /// Served behind TLS (a proxy says so with `X-Forwarded-Proto: https`).
    secure: bool,
    /// Path and query of this request (the language switch comes back here).
    pub here: String,
    /// A form's `Origin` names another site.
    cross_origin: bool,
    flash: Option<&'static str>,
}

impl FromRequestParts<Web> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let cookies = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join("; ");
        let lang = session::read_cookie(&cookies, "akte_lang")
            .and_then(Lang::parse)
            .unwrap_or_else(|| {
                Lang::negotiate(
                    parts
                        .headers
                        .get(ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok()),
                )
            });
        let t = lang.texts();
        let secure = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let cross_origin = match (parts.headers.get(ORIGIN), parts.headers.get(HOST)) {
            (Some(o), Some(h)) => {
                let o = o.to_str().unwrap_or("");
                let host = h.to_str().unwrap_or("");
                let o_host = o.split_once("://").map(|(_, r)| r).unwrap_or(o);
                o == "null" || !o_host.eq_ignore_ascii_case(host)
            }
            (Some(_), None) => true,
            _ => false,
        };
        let flash = parts.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "done")
                .and_then(|(_, v)| flash_text(t, &v))
        });
        let mut ctx = Ctx {
            lang,
            t,
            user: None,
            session_id: None,
            session: None,
            secure,
            here,
            cross_origin,
            flash,
        };
        if let Some(id) = session::read_cookie(&cookies, session::COOKIE)
            && let Some(s) = web.sessions.get(id)
        {
            // The token is checked at every request: a revoked one ends the session.
            match web.state.tokens.authenticate(&s.token).await {
                Ok(p) => {
                    ctx.user = Some(User::new(p, t));
                    ctx.session_id = Some(id.to_string());
                    ctx.session = Some(s);
                }
                Err(_) => web.sessions.remove(id),
            }
        }
        Ok(ctx)
    }
}

fn flash_text(t: &'static Texts, key: &str) -> Option<&'static str> {
    Some(match key {
        "note" => t.note_saved,
        "case-opened" => t.case_opened,
        "case-closed" => t.case_closed,
        "hold-placed" => t.hold_placed,
        "hold-released" => t.hold_released,
        "disposal-requested" => t.disposal_requested,
        "disposal-approved" => t.disposal_approved,
        "signed-out" => t.signed_out,
        _ => return None,
    })
}

/// What a page could not do, shown to the person in their language.
#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
}

impl UiError {
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        UiError {
            status,
            title: title.into(),
            detail: detail.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Page,
    title: String,
    detail: String,
}

impl Ctx {
    /// The signed-in person's session, or a redirect to the sign-in page. (The error is
    /// the response to send, as axum handlers return it.)
    #[allow(clippy::result_large_err)]
    pub fn signed(&self) -> Result<(&User, &Session), Response> {
        match (&self.user, &self.session) {
            (Some(u), Some(s)) => Ok((u, s)),
            _ => {
                let next: String = form_urlencoded::byte_serialize(self.here.as_bytes()).collect();
                Err(redirect(&format!("/login?next={next}")))
            }
        }
    }

    /// Like [`Ctx::signed`], for a form: also checks its CSRF token and origin.
    #[allow(clippy::result_large_err)]
    pub fn signed_form(&self, csrf: &str) -> Result<(&User, &Session), Response> {
        let (u, s) = self.signed()?;
        if self.cross_origin || !s.csrf_ok(csrf) {
            return Err(self.fail(UiError::new(
                StatusCode::FORBIDDEN,
                self.t.not_allowed,
                self.t.csrf_failed,
            )));
        }
        Ok((u, s))
    }

    /// The frame every page shares.
    pub fn page(&self, section: &'static str) -> Page {
        Page {
            lang: self.lang,
            t: self.t,
            user: self.user.clone(),
            csrf: self
                .session
                .as_ref()
                .map(|s| s.csrf.clone())
                .unwrap_or_default(),
            q: String::new(),
            section,
            back: self.here.clone(),
            flash: self.flash,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// An error page.
    pub fn fail(&self, e: UiError) -> Response {
        let status = e.status;
        let title = if e.title.is_empty() {
            self.t.failed_title.to_string()
        } else {
            e.title
        };
        let mut r = render(&ErrorPage {
            page: self.page(""),
            title,
            detail: e.detail,
        });
        *r.status_mut() = status;
        r
    }

    pub fn secure(&self) -> bool {
        self.secure
    }
}

/// The frame of every page: language, texts, the person, the CSRF token.
pub struct Page {
    pub lang: Lang,
    pub t: &'static Texts,
    pub user: Option<User>,
    pub csrf: String,
    /// The search box's text.
    pub q: String,
    /// Which navigation entry is current.
    pub section: &'static str,
    pub back: String,
    pub flash: Option<&'static str>,
    pub version: &'static str,
}

/// A count, whatever integer type the API used.
pub trait Count {
    fn count(&self) -> u64;
}

macro_rules! count {
    ($($t:ty),*) => {$(
        impl Count for $t {
            fn count(&self) -> u64 {
                u64::try_from(*self).unwrap_or(0)
            }
        }
    )*};
}
count!(u64, usize, u32, i64);

impl<T: Count> Count for &T {
    fn count(&self) -> u64 {
        (*self).count()
    }
}

/// A value that is (a reference to) a `T`, however deep: what a template passes.
pub trait Is<T: Copy> {
    fn get(&self) -> T;
}

impl Is<NaiveDate> for NaiveDate {
    fn get(&self) -> NaiveDate {
        *self
    }
}

impl Is<DateTime<Utc>> for DateTime<Utc> {
    fn get(&self) -> DateTime<Utc> {
        *self
    }
}

impl<T: Copy, U: Is<T>> Is<T> for &U {
    fn get(&self) -> T {
        (*self).get()
    }
}

impl Page {
    pub fn date(&self, d: impl Is<NaiveDate>) -> String {
        self.lang.date(&d.get())
    }
    pub fn datetime(&self, t: impl Is<DateTime<Utc>>) -> String {
        self.lang.datetime(&t.get())
    }
    pub fn num(&self, n: impl Count) -> String {
        self.lang.num(n.count())
    }
    pub fn bytes(&self, n: impl Count) -> String {
        self.lang.bytes(n.count())
    }
}

/// Renders a template as an HTML response.
pub(crate) fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => ([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(e) => {
            tracing::error!("rendering a page failed: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// The largest API answer a page reads (the retention report of a large archive).
const MAX_ANSWER: usize = 256 * 1024 * 1024;

impl Web {
    /// Calls the API as the session's person.
    pub(crate) async fn call(
        &self,
        s: &Session,
        method: Method,
        uri: &str,
        body: Body,
        content_type: Option<&str>,
        accept: Option<&str>,
    ) -> Response {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, format!("Bearer {}", s.token));
        if let Some(c) = content_type {
            b = b.header(CONTENT_TYPE, c);
        }
        if let Some(a) = accept {
            b = b.header(ACCEPT, a);
        }
        let req = match b.body(body) {
            Ok(r) => r,
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("bad request: {e}")).into_response();
            }
        };
        match self.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// Calls the API and reads its JSON answer (or its problem).
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        s: &Session,
        method: Method,
        uri: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, UiError> {
        let (body, ctype) = match body {
            Some(v) => (Body::from(v.to_string()), Some("application/json")),
            None => (Body::empty(), None),
        };
        let resp = self.call(s, method, uri, body, ctype, None).await;
        read_json(resp).await
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        s: &Session,
        uri: &str,
    ) -> Result<T, UiError> {
        self.json(s, Method::GET, uri, None).await
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        s: &Session,
        uri: &str,
        body: serde_json::Value,
    ) -> Result<T, UiError> {
        self.json(s, Method::POST, uri, Some(body)).await
    }
}

/// An API answer as JSON, or its problem as a [`UiError`].
pub(crate) async fn read_json<T: DeserializeOwned>(resp: Response) -> Result<T, UiError> {
    let status = resp.status();
    let bytes = match http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Err(UiError::new(
                StatusCode::BAD_GATEWAY,
                "",
                format!("reading the answer failed: {e}"),
            ));
        }
    };
    if !status.is_success() {
        #[derive(serde::Deserialize)]
        struct Problem {
            #[serde(default)]
            title: String,
            #[serde(default)]
            detail: String,
        }
        let p: Problem = serde_json::from_slice(&bytes).unwrap_or(Problem {
            title: status.canonical_reason().unwrap_or("").to_string(),
            detail: String::from_utf8_lossy(&bytes).into_owned(),
        });
        return Err(UiError::new(status, p.title, p.detail));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        UiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
            format!("unexpected answer of the API: {e}"),
        )
    })
}

/// An item of a list the API reports (an import failure, a verify problem) as one
/// line: the string values of an object joined, anything else as JSON.
pub(crate) fn value_line(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(o) => o
            .values()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(": "),
        other => other.to_string(),
    }
}

/// A query string from pairs, percent-encoded; empty values are left out.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// Sets a cookie on a response.
pub(crate) fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}
