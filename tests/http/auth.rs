//! Tokens and roles: which role may call which endpoint, revoked and expired tokens.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::server::*;
use crate::{eligible_request, new_token, post_json, problem, rand_suffix, upload};

/// Which roles each endpoint allows. Written out here, independently of the code.
const READ: &[&str] = &["admin", "archivist", "clerk", "auditor"];
const INGEST: &[&str] = &["admin", "archivist"];
const AUDIT: &[&str] = &["admin", "auditor"];
const ADMIN_ONLY: &[&str] = &["admin"];
const NOTE: &[&str] = &["admin", "archivist", "clerk"];
const RETENTION_READ: &[&str] = &["admin", "archivist", "auditor"];

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
            "/v1/disposals",
            "/v1/disposals".into(),
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

    // The matrix covers every operation the OpenAPI document lists (but the probes,
    // which need no token: tested in ops.rs).
    let doc: Value = serde_json::from_str(&akte::api::openapi_json()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if path != "/healthz" && path != "/readyz" {
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
        use akte::access::Role;
        use chrono::TimeZone;
        let tokens = crate::tokens_in_2020(&data);
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
        .get(s.url("/v1/parties"))
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
        .get(s.url("/v1/parties"))
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
            .get(s.url("/v1/parties"))
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
