//! The HTTP server, started as the real binary on 127.0.0.1:0 and spoken to over HTTP.
//!
//! One test binary, split by area; the helpers below are shared by the areas.

#[path = "../common/mod.rs"]
mod common;

mod attack;
mod auth;
mod errors;
mod matrix;
mod ops;
mod parties;
mod pipeline;
mod records;
mod retention;
mod search_server;

use common::server::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) async fn new_token(s: &Server, role: &str) -> (String, String) {
    let r = client()
        .post(s.url("/v1/tokens"))
        .header("authorization", bearer(ADMIN))
        .json(&json!({"role": role, "name": format!("test-{role}"), "person": format!("person-{role}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (
        v["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

pub(crate) async fn upload(
    s: &Server,
    token: &str,
    body: Vec<u8>,
    query: &str,
) -> reqwest::Response {
    client()
        .post(s.url(&format!("/v1/records{query}")))
        .header("authorization", bearer(token))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn problem(r: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], status.as_u16());
    assert!(v["type"].as_str().unwrap().starts_with("/problems/"), "{v}");
    assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    v
}

pub(crate) async fn download(
    s: &Server,
    token: &str,
    id: &str,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let r = client()
        .get(s.url(&format!("/v1/records/{id}/content")))
        .header("authorization", bearer(token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    (h, r.bytes().await.unwrap().to_vec())
}

/// An old business letter (eligible for disposal) and a disposal request for it, made
/// with `token`.
pub(crate) async fn eligible_request(s: &Server, token: &str) -> String {
    let r: Value = upload(
        s,
        ADMIN,
        format!("alt {}", rand_suffix()).into_bytes(),
        "?class=business-letter&date=2010-01-01",
    )
    .await
    .json()
    .await
    .unwrap();
    let d = client()
        .post(s.url("/v1/disposals"))
        .header("authorization", bearer(token))
        .json(&json!({"records": [r["id"]], "reason": "Frist abgelaufen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), StatusCode::CREATED);
    let v: Value = d.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// The token table of the store at `data`, with a clock standing on 2020-06-01: for
/// tokens whose validity has ended by the time a test's server runs.
pub(crate) fn tokens_in_2020(data: &std::path::Path) -> akte::access::Tokens {
    use chrono::TimeZone;
    let store = akte::store::Store::open(data.to_str().unwrap()).unwrap();
    let clock = std::sync::Arc::new(akte::clock::FixedClock::new(
        chrono::Utc.with_ymd_and_hms(2020, 6, 1, 0, 0, 0).unwrap(),
    ));
    let journal = std::sync::Arc::new(akte::audit::journal::Journal::new(
        store.clone(),
        clock.clone(),
    ));
    akte::access::Tokens::new(store, journal, clock)
}

pub(crate) fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub(crate) async fn post_json(s: &Server, path: &str, body: Value) -> Value {
    let r = client()
        .post(s.url(path))
        .header("authorization", bearer(ADMIN))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}
