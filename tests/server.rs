//! The HTTP server, started as the real binary on 127.0.0.1:0 and spoken to over HTTP.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::server::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn new_token(s: &Server, role: &str) -> (String, String) {
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

async fn upload(s: &Server, token: &str, body: Vec<u8>, query: &str) -> reqwest::Response {
    client()
        .post(s.url(&format!("/v1/records{query}")))
        .header("authorization", bearer(token))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn problem(r: reqwest::Response, status: StatusCode) -> Value {
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

async fn download(s: &Server, token: &str, id: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
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

#[tokio::test]
async fn raw_and_multipart_uploads_download_byte_exact() {
    let s = Server::start(&[]);
    for (len, seed) in [(0usize, 1u64), (1, 2), (300_000, 3)] {
        let data = pseudo_random(len, seed);
        let r = upload(
            &s,
            ADMIN,
            data.clone(),
            "?class=invoice&date=2025-01-31&filename=RE-1.pdf",
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let v: Value = r.json().await.unwrap();
        assert_eq!(loc, format!("/v1/records/{}", v["id"].as_str().unwrap()));
        assert_eq!(v["sha256"], sha256_hex(&data));
        assert_eq!(v["retain_until"], "2033-12-31");
        let (h, back) = download(&s, ADMIN, v["id"].as_str().unwrap()).await;
        assert_eq!(sha256_hex(&back), sha256_hex(&data));
        assert_eq!(
            h["etag"].to_str().unwrap(),
            format!("\"{}\"", sha256_hex(&data))
        );
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .contains("RE-1.pdf")
        );
    }
    // Multipart: JSON metadata part, then the file.
    let data = b"%PDF-1.7 Rahmenvertrag".to_vec();
    let form = reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(
                r#"{"class":"framework-agreement","title":"Rahmenvertrag Müller"}"#,
            )
            .mime_str("application/json")
            .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(data.clone()).file_name("vertrag.pdf"),
        );
    let r = client()
        .post(s.url("/v1/records"))
        .header("authorization", bearer(ADMIN))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    let rec: Value = client()
        .get(s.url(&format!("/v1/records/{id}")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rec["title"], "Rahmenvertrag Müller");
    assert_eq!(rec["class"], "framework-agreement");
    assert_eq!(rec["content"]["media_type"], "application/pdf");
    assert_eq!(rec["content"]["file_name"], "vertrag.pdf");
    let (h, back) = download(&s, ADMIN, id).await;
    assert_eq!(back, data);
    assert_eq!(h["content-type"], "application/pdf");

    // Range and conditional requests.
    let r = client()
        .get(s.url(&format!("/v1/records/{id}/content")))
        .header("authorization", bearer(ADMIN))
        .header("range", "bytes=9-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 9-{}/{}", data.len() - 1, data.len())
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[9..]);
    let r = client()
        .get(s.url(&format!("/v1/records/{id}/content")))
        .header("authorization", bearer(ADMIN))
        .header("if-none-match", format!("\"{}\"", sha256_hex(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = client()
        .get(s.url(&format!("/v1/records/{id}/content")))
        .header("authorization", bearer(ADMIN))
        .header("range", "bytes=999-")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::RANGE_NOT_SATISFIABLE).await;

    // Amend metadata, then a new content version; both revisions stay readable.
    let r = client()
        .post(s.url(&format!("/v1/records/{id}/revisions")))
        .header("authorization", bearer(ADMIN))
        .json(&json!({"title": "Rahmenvertrag Müller GmbH", "reason": "Firmenname"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = client()
        .post(s.url(&format!(
            "/v1/records/{id}/revisions?filename=vertrag-v2.pdf"
        )))
        .header("authorization", bearer(ADMIN))
        .body(b"%PDF-1.7 Rahmenvertrag v2".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let revs: Value = client()
        .get(s.url(&format!("/v1/records/{id}/revisions")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revs.as_array().unwrap().len(), 3);
    assert_eq!(revs[2]["content"]["version"], 2);
    let old = client()
        .get(s.url(&format!("/v1/records/{id}/content?rev=1")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(old.as_ref(), &data[..]);
}

#[tokio::test]
async fn streamed_200mb_upload_round_trips_with_bounded_server_memory() {
    let s = Server::start(&[]);
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 200;
    let chunk = pseudo_random(CHUNK, 77);
    let mut whole = sha2::Sha256::default();
    for _ in 0..CHUNKS {
        sha2::Digest::update(&mut whole, &chunk);
    }
    let expected = hex::encode(sha2::Digest::finalize(whole));
    let c = chunk.clone();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(
        (0..CHUNKS).map(move |_| Ok::<_, std::io::Error>(bytes::Bytes::from(c.clone()))),
    ));
    let r = client()
        .post(s.url("/v1/records?filename=big.bin"))
        .header("authorization", bearer(ADMIN))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["size"], (CHUNK * CHUNKS) as u64);
    assert_eq!(v["sha256"], expected);
    // Stream the download and hash it.
    let mut resp = client()
        .get(s.url(&format!(
            "/v1/records/{}/content",
            v["id"].as_str().unwrap()
        )))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    let mut h = sha2::Sha256::default();
    let mut n = 0usize;
    while let Some(part) = resp.chunk().await.unwrap() {
        n += part.len();
        sha2::Digest::update(&mut h, &part);
    }
    assert_eq!(n, CHUNK * CHUNKS);
    assert_eq!(hex::encode(sha2::Digest::finalize(h)), expected);
    let rss = s.peak_rss();
    eprintln!(
        "server peak RSS after 200 MB up and down: {} MB",
        rss / 1_000_000
    );
    assert!(rss > 0 && rss < 150_000_000, "server peak RSS {rss} bytes");
}

/// Which roles each endpoint allows. Written out here, independently of the code.
const READ: &[&str] = &["admin", "archivist", "clerk", "auditor"];
const INGEST: &[&str] = &["admin", "archivist"];
const AUDIT: &[&str] = &["admin", "auditor"];
const ADMIN_ONLY: &[&str] = &["admin"];
const NOTE: &[&str] = &["admin", "archivist", "clerk"];
const RETENTION_READ: &[&str] = &["admin", "archivist", "auditor"];

/// An old business letter (eligible for disposal) and a disposal request for it, made
/// with `token`.
async fn eligible_request(s: &Server, token: &str) -> String {
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

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn post_json(s: &Server, path: &str, body: Value) -> Value {
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

#[tokio::test]
async fn every_endpoint_for_every_role() {
    let s = Server::start(&[]);
    let rec: Value = upload(&s, ADMIN, b"Lieferschein".to_vec(), "")
        .await
        .json()
        .await
        .unwrap();
    let rid = rec["id"].as_str().unwrap().to_string();
    let job: Value = client()
        .post(s.url("/v1/verify"))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = job["id"].as_str().unwrap().to_string();
    let import_job: Value = client()
        .post(s.url("/v1/imports"))
        .header("authorization", bearer(ADMIN))
        .body("From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\nSubject: Import\n\nHallo\n")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let import_job = import_job["id"].as_str().unwrap().to_string();
    let party = post_json(
        &s,
        "/v1/parties",
        json!({"kind": "organisation", "name": "Müller GmbH"}),
    )
    .await;
    let pid = party["id"].as_str().unwrap().to_string();
    let case = post_json(
        &s,
        "/v1/cases",
        json!({"kind": "complaint", "title": "Reklamation", "party": pid}),
    )
    .await;
    let cid = case["id"].as_str().unwrap().to_string();
    let disposal = eligible_request(&s, ADMIN).await;
    let old: Value = upload(
        &s,
        ADMIN,
        b"alter Brief".to_vec(),
        "?class=business-letter&date=2010-01-01",
    )
    .await
    .json()
    .await
    .unwrap();
    let old_id = old["id"].as_str().unwrap().to_string();
    let mut tokens = vec![("admin".to_string(), ADMIN.to_string())];
    for role in ["archivist", "clerk", "auditor"] {
        tokens.push((role.to_string(), new_token(&s, role).await.1));
    }

    // (method, OpenAPI path, concrete path, allowed roles)
    let matrix: Vec<(Method, &str, String, &[&str])> = vec![
        (Method::GET, "/readyz", "/readyz".into(), READ),
        (Method::GET, "/metrics", "/metrics".into(), AUDIT),
        (Method::POST, "/v1/records", "/v1/records".into(), INGEST),
        (
            Method::GET,
            "/v1/records/{id}",
            format!("/v1/records/{rid}"),
            READ,
        ),
        (
            Method::DELETE,
            "/v1/records/{id}",
            format!("/v1/records/{rid}"),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/records/{id}/revisions",
            format!("/v1/records/{rid}/revisions"),
            READ,
        ),
        (
            Method::POST,
            "/v1/records/{id}/revisions",
            format!("/v1/records/{rid}/revisions"),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/records/{id}/content",
            format!("/v1/records/{rid}/content"),
            READ,
        ),
        (Method::GET, "/v1/journal", "/v1/journal".into(), AUDIT),
        (Method::POST, "/v1/verify", "/v1/verify".into(), AUDIT),
        (
            Method::GET,
            "/v1/verify/{job}",
            format!("/v1/verify/{job}"),
            AUDIT,
        ),
        (Method::GET, "/v1/tokens", "/v1/tokens".into(), ADMIN_ONLY),
        (Method::POST, "/v1/tokens", "/v1/tokens".into(), ADMIN_ONLY),
        (
            Method::DELETE,
            "/v1/tokens/{id}",
            "/v1/tokens/{id}".into(),
            ADMIN_ONLY,
        ),
        (
            Method::POST,
            "/v1/records/{id}/links",
            format!("/v1/records/{rid}/links"),
            NOTE,
        ),
        (Method::GET, "/v1/parties", "/v1/parties".into(), READ),
        (Method::POST, "/v1/parties", "/v1/parties".into(), INGEST),
        (
            Method::GET,
            "/v1/parties/{id}",
            format!("/v1/parties/{pid}"),
            READ,
        ),
        (
            Method::GET,
            "/v1/parties/{id}/revisions",
            format!("/v1/parties/{pid}/revisions"),
            READ,
        ),
        (
            Method::POST,
            "/v1/parties/{id}/revisions",
            format!("/v1/parties/{pid}/revisions"),
            INGEST,
        ),
        (
            Method::POST,
            "/v1/parties/{id}/roles",
            format!("/v1/parties/{pid}/roles"),
            INGEST,
        ),
        (
            Method::POST,
            "/v1/parties/{id}/merge",
            "/v1/parties/{id}/merge".into(),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/parties/{id}/file",
            format!("/v1/parties/{pid}/file"),
            READ,
        ),
        (
            Method::POST,
            "/v1/parties/{id}/notes",
            format!("/v1/parties/{pid}/notes"),
            NOTE,
        ),
        (
            Method::POST,
            "/v1/parties/import",
            "/v1/parties/import".into(),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/cases",
            format!("/v1/cases?party={pid}"),
            READ,
        ),
        (Method::POST, "/v1/cases", "/v1/cases".into(), NOTE),
        (
            Method::GET,
            "/v1/cases/{id}",
            format!("/v1/cases/{cid}"),
            READ,
        ),
        (
            Method::POST,
            "/v1/cases/{id}/revisions",
            format!("/v1/cases/{cid}/revisions"),
            NOTE,
        ),
        (Method::GET, "/v1/holds", "/v1/holds".into(), RETENTION_READ),
        (Method::POST, "/v1/holds", "/v1/holds".into(), INGEST),
        (
            Method::POST,
            "/v1/holds/{id}/release",
            "/v1/holds/{id}/release".into(),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/retention/eligible",
            "/v1/retention/eligible".into(),
            RETENTION_READ,
        ),
        (
            Method::POST,
            "/v1/disposals",
            "/v1/disposals".into(),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/disposals/{id}",
            format!("/v1/disposals/{disposal}"),
            RETENTION_READ,
        ),
        (
            Method::POST,
            "/v1/disposals/{id}/approve",
            "/v1/disposals/{id}/approve".into(),
            INGEST,
        ),
        (
            Method::POST,
            "/v1/parties/{id}/erase",
            "/v1/parties/{id}/erase".into(),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/retention/report",
            "/v1/retention/report".into(),
            RETENTION_READ,
        ),
        (
            Method::GET,
            "/v1/search",
            "/v1/search?q=Lieferschein".into(),
            READ,
        ),
        (Method::POST, "/v1/emails", "/v1/emails".into(), INGEST),
        (Method::POST, "/v1/imports", "/v1/imports".into(), INGEST),
        (
            Method::GET,
            "/v1/imports/{job}",
            format!("/v1/imports/{import_job}"),
            INGEST,
        ),
        (
            Method::GET,
            "/v1/parties/{id}/search",
            format!("/v1/parties/{pid}/search?q=Brief"),
            READ,
        ),
    ];

    // The matrix covers every operation the OpenAPI document lists (but /healthz).
    let doc: Value = serde_json::from_str(&akte::api::openapi_json()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if path != "/healthz" {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let tested: BTreeSet<(String, String)> = matrix
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, tested, "role matrix must cover every endpoint");

    let c = client();
    for (method, _, path, allowed) in &matrix {
        for (role, token) in &tokens {
            let mut path = path.clone();
            if path == "/v1/tokens/{id}" {
                // Each allowed revocation revokes a fresh throwaway token.
                path = format!("/v1/tokens/{}", new_token(&s, "clerk").await.0);
            }
            if path == "/v1/parties/{id}/erase" {
                // Each allowed erasure erases a fresh person without records.
                let fresh = post_json(
                    &s,
                    "/v1/parties",
                    json!({"kind": "person", "name": format!("Löschung {role}")}),
                )
                .await;
                path = format!("/v1/parties/{}/erase", fresh["id"].as_str().unwrap());
            }
            if path == "/v1/holds/{id}/release" {
                let h = post_json(&s, "/v1/holds", json!({"name": format!("Hold {role}"), "reason": "Test", "scope": {"type": "records", "ids": [rid]}})).await;
                path = format!("/v1/holds/{}/release", h["id"].as_str().unwrap());
            }
            if path == "/v1/disposals/{id}/approve" {
                // Four eyes: the request comes from someone else than the approver.
                let other = if role == "admin" {
                    tokens[1].1.clone()
                } else {
                    ADMIN.to_string()
                };
                path = format!(
                    "/v1/disposals/{}/approve",
                    eligible_request(&s, &other).await
                );
            }
            if path == "/v1/parties/{id}/merge" {
                // Each allowed merge absorbs a fresh party.
                let fresh = post_json(
                    &s,
                    "/v1/parties",
                    json!({"kind": "organisation", "name": format!("Dublette {role}")}),
                )
                .await;
                path = format!("/v1/parties/{}/merge", fresh["id"].as_str().unwrap());
            }
            let mut req = c
                .request(method.clone(), s.url(&path))
                .header("authorization", bearer(token));
            req = match (method.as_str(), path.as_str()) {
                ("POST", "/v1/records") => req.body(format!("Brief von {role}")),
                ("POST", "/v1/tokens") => req.json(&json!({"role": "clerk", "name": format!("by-{role}")})),
                ("POST", "/v1/parties") => req.json(&json!({"kind": "person", "name": format!("Kontakt {role}")})),
                ("POST", "/v1/parties/import") => req
                    .header("content-type", "text/csv")
                    .body(format!("name,customer_number\nImport {role},K-{role}\n")),
                ("POST", "/v1/cases") => req.json(&json!({"kind": "project", "title": format!("Projekt {role}"), "party": pid})),
                ("POST", p) if p.starts_with("/v1/parties/") && p.ends_with("/revisions") => {
                    req.json(&json!({"data": {"kind": "organisation", "name": format!("Müller GmbH ({role})")}}))
                }
                ("POST", p) if p.ends_with("/roles") => req.json(&json!({"role": format!("partner-{role}")})),
                ("POST", p) if p.ends_with("/merge") => req.json(&json!({"into": pid})),
                ("POST", p) if p.ends_with("/notes") => req.json(&json!({"text": format!("Anruf von {role}")})),
                ("POST", p) if p.ends_with("/links") => req.json(&json!({"add": [{"party": pid, "role": format!("copy-{role}")}]})),
                ("POST", p) if p.ends_with("/revisions") => req.json(&json!({"title": format!("geändert von {role}")})),
                ("POST", "/v1/holds") => req.json(&json!({"name": format!("Prüfung {role}"), "reason": "Betriebsprüfung", "scope": {"type": "records", "ids": [rid]}})),
                ("POST", p) if p.ends_with("/release") => req.json(&json!({"reason": "erledigt"})),
                ("POST", p) if p.ends_with("/erase") => req.json(&json!({"reason": "Löschersuchen"})),
                ("POST", "/v1/emails") => req.header("content-type", "message/rfc822").body(format!("From: {role}@example.com\r\nSubject: Test {role}\r\nMessage-ID: <{role}-{}@example.com>\r\n\r\nHallo\r\n", rand_suffix())),
                ("POST", "/v1/imports") => req.body(format!("From {role}@example.com Mon Jan  1 00:00:00 2024\nFrom: {role}@example.com\nSubject: Import {role} {}\n\nHallo\n", rand_suffix())),
                ("POST", "/v1/disposals") => req.json(&json!({"records": [old_id], "reason": "Frist abgelaufen"})),
                _ => req,
            };
            let r = req.send().await.unwrap();
            let status = r.status();
            if allowed.contains(&role.as_str()) {
                let expected_ok = status.is_success()
                    || (method == Method::DELETE && status == StatusCode::LOCKED);
                assert!(
                    expected_ok,
                    "{method} {path} as {role}: {status} {}",
                    r.text().await.unwrap_or_default()
                );
            } else {
                let v = problem(r, StatusCode::FORBIDDEN).await;
                assert_eq!(
                    v["type"], "/problems/forbidden",
                    "{method} {path} as {role}"
                );
            }
        }
        // Without a token, or with a wrong one: 401.
        let r = c.request(method.clone(), s.url(path)).send().await.unwrap();
        problem(r, StatusCode::UNAUTHORIZED).await;
        let r = c
            .request(method.clone(), s.url(path))
            .header("authorization", "Bearer akte_not_a_real_token")
            .send()
            .await
            .unwrap();
        problem(r, StatusCode::UNAUTHORIZED).await;
    }
    // /healthz needs no token.
    assert_eq!(
        c.get(s.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoked_and_expired_tokens_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A token that expired in 2021, written with a clock standing in 2020.
    let expired = {
        use akte::access::{Role, Tokens};
        use chrono::TimeZone;
        let store = akte::store::Store::open(data.to_str().unwrap()).unwrap();
        let clock = std::sync::Arc::new(akte::clock::FixedClock::new(
            chrono::Utc.with_ymd_and_hms(2020, 6, 1, 0, 0, 0).unwrap(),
        ));
        let journal = std::sync::Arc::new(akte::audit::journal::Journal::new(
            store.clone(),
            clock.clone(),
        ));
        let tokens = Tokens::new(store, journal, clock);
        let until = chrono::Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap();
        tokens
            .create(
                "test",
                akte::access::NewToken {
                    expires_at: Some(until),
                    ..akte::access::NewToken::new(Role::Clerk, "old", "old")
                },
            )
            .await
            .unwrap()
            .1
    };
    // The store has a token, so no admin is bootstrapped: create one with the CLI.
    let out = cli(
        &data,
        &["token", "create", "--role", "admin", "--name", "ops"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let s = Server::start_on(&data, &[]);
    let c = client();
    let r = c
        .get(s.url("/readyz"))
        .header("authorization", bearer(&expired))
        .send()
        .await
        .unwrap();
    let v = problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");

    // A token created by the CLI while the server runs works at once...
    let out = cli(&data, &["--json", "token", "create", "--role", "clerk"]);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let clerk = created["token"].as_str().unwrap();
    let r = c
        .get(s.url("/readyz"))
        .header("authorization", bearer(clerk))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // ...and, revoked by the CLI, stops working within a few seconds.
    let out = cli(&data, &["token", "revoke", created["id"].as_str().unwrap()]);
    assert!(out.status.success());
    let mut refused = false;
    for _ in 0..50 {
        let r = c
            .get(s.url("/readyz"))
            .header("authorization", bearer(clerk))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::UNAUTHORIZED {
            let v: Value = r.json().await.unwrap();
            assert!(v["detail"].as_str().unwrap().contains("revoked"));
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refused, "revoked token still accepted after 10 s");
    let r = c
        .get(s.url("/v1/tokens"))
        .header("authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert!(
        list.to_string().find("akte_").is_none(),
        "secrets are never listed"
    );
}

#[tokio::test]
async fn every_error_status_is_problem_json() {
    let s = Server::start(&["--max-upload", "1000000"]);
    let c = client();
    let auth = bearer(ADMIN);
    // 400 with the offending field.
    let v = problem(
        upload(&s, ADMIN, b"x".to_vec(), "?date=2025-13-01").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v["field"], "date");
    let v = problem(
        upload(&s, ADMIN, b"x".to_vec(), "?class=Not%20A%20Class").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v["field"], "class");
    let v = problem(
        upload(&s, ADMIN, b"x".to_vec(), "?colour=red").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v["field"], "colour");
    let rec: Value = upload(&s, ADMIN, b"Angebot".to_vec(), "")
        .await
        .json()
        .await
        .unwrap();
    let id = rec["id"].as_str().unwrap();
    let r = c
        .post(s.url(&format!("/v1/records/{id}/revisions")))
        .header("authorization", &auth)
        .json(&json!({"document_date": "gestern"}))
        .send()
        .await
        .unwrap();
    let v = problem(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(v["field"], "document_date");
    // 404: unknown record, unknown id shape, unknown route.
    problem(
        c.get(s.url("/v1/records/01900000-0000-7000-8000-000000000000"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        c.get(s.url("/v1/nothing"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    // 405.
    problem(
        c.put(s.url("/v1/records"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    // 409: an amendment based on an outdated revision.
    let amend = |body: Value| {
        c.post(s.url(&format!("/v1/records/{id}/revisions")))
            .header("authorization", &auth)
            .json(&body)
            .send()
    };
    assert_eq!(
        amend(json!({"title": "Angebot 1", "base_rev": 1}))
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    let v = problem(
        amend(json!({"title": "Angebot 2", "base_rev": 1}))
            .await
            .unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(v["type"], "/problems/conflict");
    // 413 by declared length, and while streaming (no length): nothing stored.
    let v = problem(
        upload(&s, ADMIN, vec![0u8; 1_000_001], "").await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(v["type"], "/problems/too-large");
    // 415: multipart without a file part.
    let form = reqwest::multipart::Form::new().text("metadata", "{}");
    let r = c
        .post(s.url("/v1/records"))
        .header("authorization", &auth)
        .multipart(form)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // 423: deletion, and shortening retention.
    problem(
        c.delete(s.url(&format!("/v1/records/{id}")))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap(),
        StatusCode::LOCKED,
    )
    .await;
    let v = problem(
        amend(json!({"retain_until": "2027-01-01"})).await.unwrap(),
        StatusCode::LOCKED,
    )
    .await;
    assert!(v["detail"].as_str().unwrap().contains("only be extended"));
}

#[tokio::test]
async fn oversized_streamed_upload_is_refused_with_nothing_stored() {
    let s = Server::start(&["--max-upload", "3000000"]);
    let before = cli(&s.data, &["--json", "verify"]);
    let before: Value = serde_json::from_slice(&before.stdout).unwrap();
    // No Content-Length: the limit is enforced while streaming (past the 8 MiB inline
    // buffer would be staging; here 5 MB is refused mid-stream).
    let chunk = pseudo_random(1 << 20, 5);
    let body = reqwest::Body::wrap_stream(futures::stream::iter(
        (0..5).map(move |_| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk.clone()))),
    ));
    let r = client()
        .post(s.url("/v1/records"))
        .header("authorization", bearer(ADMIN))
        .body(body)
        .send()
        .await;
    match r {
        Ok(r) => {
            problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
        }
        // The server may answer 413 and close while the client is still sending; the
        // client then sees a broken pipe instead of the answer. Either way: nothing stored.
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let after = cli(&s.data, &["--json", "verify"]);
    assert!(after.status.success());
    let after: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(before["objects"], after["objects"], "nothing was stored");
    assert_eq!(after["blobs"], 0);
}

#[tokio::test]
async fn too_many_requests_get_429_with_retry_after() {
    let s = Server::start(&["--rate", "2"]);
    let c = client();
    let mut limited = None;
    for _ in 0..20 {
        let r = c
            .get(s.url("/readyz"))
            .header("authorization", bearer(ADMIN))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("no 429 after 20 requests at a limit of 2/s");
    assert!(r.headers().contains_key("retry-after"));
    problem(r, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn sigterm_during_upload_leaves_a_complete_record_or_none() {
    let mut s = Server::start(&[]);
    let data = s.data.clone();
    let chunk = pseudo_random(1 << 20, 11);
    let expected = {
        let mut h = sha2::Sha256::default();
        for _ in 0..40 {
            sha2::Digest::update(&mut h, &chunk);
        }
        hex::encode(sha2::Digest::finalize(h))
    };
    // A slow upload: 40 MiB in 1 MiB pieces, 25 ms apart.
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(0usize, move |i| {
        let chunk = chunk.clone();
        async move {
            if i == 40 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), i + 1))
        }
    }));
    let url = s.url("/v1/records");
    let upload = tokio::spawn(async move {
        client()
            .post(url)
            .header("authorization", bearer(ADMIN))
            .body(body)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.sigterm();
    let result = upload.await.unwrap();
    assert!(s.wait(), "server exits cleanly after SIGTERM");
    let journal = cli(&data, &["--json", "journal"]);
    let creates: Vec<Value> = String::from_utf8(journal.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "record.create")
        .collect();
    match result {
        Ok(r) if r.status() == StatusCode::CREATED => {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["sha256"], expected);
            assert_eq!(creates.len(), 1, "the acknowledged record is journaled");
        }
        other => {
            eprintln!("upload not acknowledged: {other:?}");
            assert!(
                creates.is_empty(),
                "an unacknowledged upload leaves no record"
            );
        }
    }
    let v = cli(&data, &["verify"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[tokio::test]
async fn reads_are_journaled_even_when_the_server_stops_right_after() {
    let mut s = Server::start(&[]);
    let (_, clerk) = new_token(&s, "clerk").await;
    let rec: Value = upload(&s, ADMIN, b"Reklamation".to_vec(), "?class=complaint")
        .await
        .json()
        .await
        .unwrap();
    let id = rec["id"].as_str().unwrap().to_string();
    let (_, body) = download(&s, &clerk, &id).await;
    assert_eq!(body, b"Reklamation");
    s.sigterm();
    assert!(s.wait());
    let out = cli(&s.data, &["--json", "journal"]);
    let reads: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "record.read")
        .collect();
    assert_eq!(reads.len(), 1, "one batched read entry");
    assert!(reads[0]["actor"].as_str().unwrap().contains("test-clerk"));
    assert_eq!(reads[0]["subjects"][0]["kind"], "content");
    assert_eq!(reads[0]["subjects"][0]["id"], id);
    assert!(cli(&s.data, &["verify"]).status.success());
}

#[tokio::test]
async fn verify_job_journal_and_metrics() {
    let s = Server::start(&[]);
    let (_, auditor) = new_token(&s, "auditor").await;
    upload(&s, ADMIN, b"Gutschrift".to_vec(), "?class=credit-note").await;
    let c = client();
    let r = c
        .post(s.url("/v1/verify"))
        .header("authorization", bearer(&auditor))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let mut state = String::new();
    for _ in 0..100 {
        let v: Value = c
            .get(s.url(&loc))
            .header("authorization", bearer(&auditor))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = v["state"].as_str().unwrap().to_string();
        if state != "running" {
            assert_eq!(v["report"]["blobs"], 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "passed");
    let page: Value = c
        .get(s.url("/v1/journal?since=0&limit=2"))
        .header("authorization", bearer(&auditor))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["entries"][1]["prev_hash"], page["entries"][0]["hash"]);
    assert_eq!(page["next_since"], 2);
    let m = c
        .get(s.url("/metrics"))
        .header("authorization", bearer(&auditor))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(
            "akte_http_requests_total{method=\"POST\",route=\"/v1/records\",status=\"201\"} 1"
        ),
        "{m}"
    );
    assert!(m.contains("akte_http_request_duration_seconds_count"));
    assert!(m.contains("akte_http_received_bytes_total 10"), "{m}");
    assert!(m.contains("akte_journal_length"));
    assert!(m.contains("akte_records 1"), "{m}");
}

#[test]
fn openapi_file_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
    let generated = akte::api::openapi_json();
    if std::env::var_os("AKTE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == generated,
        "schemas/openapi.json differs from the code; regenerate with `cargo run -- openapi > schemas/openapi.json`"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}

#[tokio::test]
async fn parties_over_http_and_the_cli() {
    let s = Server::start(&[]);
    let c = client();
    let auth = bearer(ADMIN);
    // Import a customer export over HTTP, a supplier export through the CLI.
    let r = c
        .post(s.url("/v1/parties/import"))
        .header("authorization", &auth)
        .header("content-type", "text/csv")
        .body("name,customer_number,vat_id,domain\nMüller GmbH,K-1,DE123456789,mueller-gmbh.de\n")
        .send()
        .await
        .unwrap();
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["created"].as_array().unwrap().len(), 1, "{report}");
    let pid = report["created"][0]["party"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("lieferanten.csv");
    std::fs::write(
        &csv,
        "Firma,Lieferantennr,USt-IdNr\nMueller GmbH,L-5,DE123456789\nKaputt,L-6,XX\n",
    )
    .unwrap();
    let out = cli(
        &s.data,
        &[
            "party",
            "import",
            csv.to_str().unwrap(),
            "--map",
            "Firma:name,Lieferantennr:supplier_number,USt-IdNr:vat_id",
        ],
    );
    assert!(!out.status.success(), "a bad row makes the exit non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lieferanten.csv:3:") && stderr.contains("VAT ID"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 updated"));

    // An upload from a contact's domain is linked automatically, with its reason.
    let r = c
        .post(s.url("/v1/records?class=email&from=einkauf@mueller-gmbh.de"))
        .header("authorization", &auth)
        .body("Bestellung")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["auto_links"][0]["party"], pid, "{v}");
    assert!(
        v["auto_links"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("domain mueller-gmbh.de")
    );

    // A phone note through the CLI reaches the server's file within a couple of seconds.
    let out = cli(
        &s.data,
        &[
            "note",
            "--party",
            &pid,
            "--text",
            "Rückruf wegen Lieferung",
            "--duration",
            "5m",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut file = Value::Null;
    for _ in 0..40 {
        file = c
            .get(s.url(&format!("/v1/parties/{pid}/file")))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if file["communication"]["total"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(file["communication"]["total"], 2, "{file}");
    assert_eq!(file["communication"]["items"][0]["class"], "phone-note");
    let roles: Vec<&str> = file["party"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["customer", "supplier"]);

    // The CLI shows the same file.
    let out = cli(&s.data, &["party", "show", &pid]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("role customer")
            && text.contains("role supplier")
            && text.contains("Rückruf"),
        "{text}"
    );
    // Listing by name prefix folds umlauts.
    let list: Value = c
        .get(s.url("/v1/parties?name=muell"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(cli(&s.data, &["verify"]).status.success());
}

#[tokio::test]
async fn oversized_request_headers_are_refused() {
    let s = Server::start(&[]);
    let r = client()
        .get(s.url("/healthz"))
        .header("x-padding", "a".repeat(100 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // The server is unharmed.
    assert_eq!(
        client()
            .get(s.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// Every way to remove or alter a retained or held record, through the API, for every
/// role: refused, nothing changed, and every refusal that reached the rules journaled.
#[tokio::test]
async fn attack_matrix_retained_and_held_records_stay() {
    let s = Server::start(&[]);
    let c = client();
    let mut tokens = vec![("admin".to_string(), ADMIN.to_string())];
    for role in ["archivist", "clerk", "auditor"] {
        tokens.push((role.to_string(), new_token(&s, role).await.1));
    }
    let retained: Value = upload(
        &s,
        ADMIN,
        b"Jahresabschluss 2024".to_vec(),
        "?class=annual-statement&date=2024-12-31",
    )
    .await
    .json()
    .await
    .unwrap();
    let held: Value = upload(
        &s,
        ADMIN,
        b"alter Brief unter Hold".to_vec(),
        "?class=business-letter&date=2010-01-01",
    )
    .await
    .json()
    .await
    .unwrap();
    let (rid, hid) = (
        retained["id"].as_str().unwrap().to_string(),
        held["id"].as_str().unwrap().to_string(),
    );
    post_json(&s, "/v1/holds", json!({"name": "Prüfung", "reason": "Betriebsprüfung", "scope": {"type": "records", "ids": [hid]}})).await;
    let snapshot = |id: String| {
        let c = c.clone();
        let url = s.url(&format!("/v1/records/{id}/revisions"));
        async move {
            c.get(url)
                .header("authorization", bearer(ADMIN))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let (before_r, before_h) = (snapshot(rid.clone()).await, snapshot(hid.clone()).await);
    let journal_refusals = || async {
        let page: Value = c
            .get(s.url("/v1/journal?limit=10000"))
            .header("authorization", bearer(ADMIN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "retention.refused")
            .count()
    };
    let refusals_before = journal_refusals().await;
    let mut reached_rules = 0;
    for (role, token) in &tokens {
        let auth = bearer(token);
        for id in [&rid, &hid] {
            let attempts = vec![
                (
                    "delete",
                    c.delete(s.url(&format!("/v1/records/{id}")))
                        .header("authorization", &auth),
                ),
                (
                    "shorten",
                    c.post(s.url(&format!("/v1/records/{id}/revisions")))
                        .header("authorization", &auth)
                        .json(&json!({"retain_until": "2000-01-01"})),
                ),
                (
                    "dispose",
                    c.post(s.url("/v1/disposals"))
                        .header("authorization", &auth)
                        .json(&json!({"records": [id], "reason": "weg damit"})),
                ),
            ];
            for (what, req) in attempts {
                let r = req.send().await.unwrap();
                let status = r.status();
                assert!(
                    status == StatusCode::FORBIDDEN || status == StatusCode::LOCKED,
                    "{what} {id} as {role}: {status}"
                );
                if status == StatusCode::LOCKED {
                    reached_rules += 1;
                }
                problem(r, status).await;
            }
        }
    }
    // Self-approval of a (legitimate) request is refused too.
    let own = eligible_request(&s, ADMIN).await;
    let r = c
        .post(s.url(&format!("/v1/disposals/{own}/approve")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    let v = problem(r, StatusCode::LOCKED).await;
    assert!(v["detail"].as_str().unwrap().contains("four-eyes"), "{v}");
    reached_rules += 1;
    // Erasing a party whose record is retained is refused.
    let p = post_json(
        &s,
        "/v1/parties",
        json!({"kind": "person", "name": "Max Beispiel"}),
    )
    .await;
    let pid = p["id"].as_str().unwrap();
    c.post(s.url(&format!("/v1/records/{rid}/links")))
        .header("authorization", bearer(ADMIN))
        .json(&json!({"add": [{"party": pid, "role": "signatory"}]}))
        .send()
        .await
        .unwrap();
    let r = c
        .post(s.url(&format!("/v1/parties/{pid}/erase")))
        .header("authorization", bearer(ADMIN))
        .json(&json!({"reason": "Löschersuchen"}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::LOCKED).await;

    // Nothing changed (the retained record gained only the link revision above).
    assert_eq!(snapshot(hid.clone()).await, before_h);
    let after_r: Value = serde_json::from_str(&snapshot(rid.clone()).await).unwrap();
    let before_r: Value = serde_json::from_str(&before_r).unwrap();
    assert_eq!(after_r[0], before_r[0]);
    assert_eq!(after_r.as_array().unwrap().len(), 2);
    for id in [&rid, &hid] {
        let r = c
            .get(s.url(&format!("/v1/records/{id}/content")))
            .header("authorization", bearer(ADMIN))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Each attempt that reached the retention rules is in the journal.
    assert_eq!(journal_refusals().await - refusals_before, reached_rules);
    assert!(cli(&s.data, &["verify"]).status.success());
}
