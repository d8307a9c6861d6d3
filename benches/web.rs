//! `cargo bench --bench web`: the party file page of the web interface, rendered
//! server-side, for a party with 2,000 records (AKTE_BENCH_BIG, default 2,000) among
//! AKTE_BENCH_RECORDS (default 20,000) records of AKTE_BENCH_PARTIES (default 500)
//! parties in an in-memory store. A request is the whole server path: the session
//! cookie, the page's in-process API call, the template.
//!
//! Baseline in the same run: the same party file as JSON from `/v1/parties/{id}/file`
//! (what the page is built from); printed as a ratio. Goal: page p99 < 100 ms.

#[path = "common/table.rs"]
mod table;

use std::sync::Arc;
use std::time::Instant;

use akte::archive::{Archive, NewRecord};
use akte::clock::SystemClock;
use akte::party::{PartyData, PartyKind, RoleEntry};
use akte::record::PartyLink;
use akte::service::Services;
use akte::store::Store;
use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use chrono::NaiveDate;
use http_body_util::BodyExt;
use tower::ServiceExt;

const ADMIN: &str = "akte_bench_admin_token_0123456789abcdef0123456789abcdef";
const CLASSES: &[&str] = &[
    "email",
    "invoice",
    "business-letter",
    "order",
    "credit-note",
    "phone-note",
    "contract",
    "delivery-note",
];

fn env(name: &str, default: usize) -> usize {
    crate::table::knob(name, default)
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn get(app: &axum::Router, uri: &str, header: (&str, String)) -> (u16, usize) {
    let req = Request::builder()
        .uri(uri)
        .header(header.0, header.1)
        .body(Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body.len())
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n_parties = env("AKTE_BENCH_PARTIES", 500).max(2);
    let n_records = env("AKTE_BENCH_RECORDS", 20_000);
    let n_big = env("AKTE_BENCH_BIG", 2_000).min(n_records);
    let rounds = env("AKTE_BENCH_ROUNDS", 300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = Store::open("memory://")?;
        let archive = Archive::new(store, Arc::new(SystemClock));
        let svc = Services::new(archive.clone());
        let mut ids = Vec::new();
        for i in 0..n_parties {
            let data = PartyData {
                kind: PartyKind::Organisation,
                name: format!("Firma {i} GmbH"),
                addresses: vec![],
                emails: vec![],
                phones: vec![],
                domains: vec![],
                vat_id: None,
                register_number: None,
                identifiers: Default::default(),
                roles: vec![RoleEntry { role: "customer".into(), number: Some(format!("K{i}")), since: None, until: None, notes: None }],
                relations: vec![],
                notes: None,
            };
            ids.push(svc.parties.create("bench", data).await?.revision.id);
        }
        let big = ids[0].clone();
        let t = Instant::now();
        for i in 0..n_records {
            let party = if i < n_big { big.clone() } else { ids[1 + i % (ids.len() - 1)].clone() };
            let day = NaiveDate::from_num_days_from_ce_opt(738_000 + (i * 7 % 2500) as i32).unwrap_or_default();
            let meta = NewRecord {
                class: Some(CLASSES[i % CLASSES.len()].into()),
                title: Some(format!("Dokument {i}")),
                document_date: Some(day),
                parties: vec![PartyLink { party, role: "customer".into(), reason: None }],
                ..Default::default()
            };
            let body = futures::stream::iter(vec![Ok::<_, akte::Error>(Bytes::from(format!("Inhalt {i}")))]);
            svc.archive.archive("bench", body, meta).await?;
        }
        let seeded = t.elapsed().as_secs_f64();
        let started = akte::api::start(archive, akte::api::ServerConfig::default(), Some(ADMIN.into())).await?;
        let state = started.state;
        state.catalog_ready().await.map_err(|e| format!("{e:?}"))?;
        let app = akte::web::app(state.clone());
        // Sign in once; the cookie is the session.
        let req = Request::builder()
            .method("POST")
            .uri("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={ADMIN}")))?;
        let resp = app.clone().oneshot(req).await.expect("infallible");
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .ok_or("no session cookie")?
            .to_string();
        let page_uri = format!("/parties/{big}");
        let json_uri = format!("/v1/parties/{big}/file?per_page=25&per_year=25");
        let (mut page, mut json) = (Vec::new(), Vec::new());
        let (mut page_bytes, mut json_bytes) = (0, 0);
        for _ in 0..rounds {
            let t = Instant::now();
            let (s, n) = get(&app, &page_uri, ("cookie", cookie.clone())).await;
            page.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(s, 200, "the page answers");
            page_bytes = n;
            let t = Instant::now();
            let (s, n) = get(&app, &json_uri, ("authorization", format!("Bearer {ADMIN}"))).await;
            json.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(s, 200, "the API answers");
            json_bytes = n;
        }
        println!("web bench: {n_parties} parties, {n_records} records, the big party {n_big} (seeded in {seeded:.1} s), {rounds} rounds");
        println!("  party file page (HTML, {page_bytes} bytes): p50 {:>7.2} ms  p99 {:>7.2} ms   (goal p99 < 100)", pct(page.clone(), 0.5), pct(page.clone(), 0.99));
        println!("  baseline: same file as JSON ({json_bytes} bytes): p50 {:>7.2} ms  p99 {:>7.2} ms", pct(json.clone(), 0.5), pct(json.clone(), 0.99));
        println!("  page/JSON ratio p50 {:.2}  p99 {:.2}", pct(page.clone(), 0.5) / pct(json.clone(), 0.5), pct(page.clone(), 0.99) / pct(json.clone(), 0.99));
        crate::table::bench("web");
        crate::table::row(
            &format!("party file page p99, {n_big}-record party"),
            format!("{:.1} ms", pct(page.clone(), 0.99)),
            format!("{:.1} ms (the JSON behind it)", pct(json.clone(), 0.99)),
            pct(page, 0.99) / pct(json, 0.99),
            "p99 < 100 ms",
        );
        state.reads.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
