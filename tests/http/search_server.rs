//! Search over HTTP and the CLI: party scope, restricted tokens, freshness, crash
//! recovery and `akte reindex`.

use crate::common;

use std::time::{Duration, Instant};

use common::server::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(s: &Server, token: &str, path: &str, body: Value) -> Value {
    let r = client()
        .post(s.url(path))
        .header("authorization", bearer(token))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn upload(s: &Server, text: &str, query: &str) -> String {
    let r = client()
        .post(s.url(&format!("/v1/records?media_type=text/plain&{query}")))
        .header("authorization", bearer(ADMIN))
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn get(s: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    let r = client()
        .get(s.url(path))
        .header("authorization", bearer(token))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn hit_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Polls a search until it returns `want` hits (the index commits in the background).
async fn wait_for(s: &Server, path: &str, want: usize) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let (status, v) = get(s, ADMIN, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        if v["total"].as_u64() == Some(want as u64) {
            return (v, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path}: still {} hits, want {want}",
            v["total"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn party_scoped_search_and_restricted_tokens() {
    let s = Server::start(&[]);
    let a = post(
        &s,
        ADMIN,
        "/v1/parties",
        json!({"kind": "organisation", "name": "Müller GmbH", "vat_id": "DE811234567"}),
    )
    .await;
    let b = post(
        &s,
        ADMIN,
        "/v1/parties",
        json!({"kind": "organisation", "name": "Schmidt AG"}),
    )
    .await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let ra = upload(
        &s,
        "Rahmenvertrag über die Lieferung von Schrauben",
        &format!("party={a}&role=customer&class=contract&title=Rahmenvertrag"),
    )
    .await;
    let rb = upload(
        &s,
        "Lieferung von Muttern, Rechnung folgt",
        &format!("party={b}&role=supplier&class=business-letter&title=Lieferavis"),
    )
    .await;

    // Everything, then one party's file: B's record never shows in A's search.
    let (all, took) = wait_for(&s, "/v1/search?q=Lieferung", 2).await;
    eprintln!(
        "two records searchable {} ms after their upload was acknowledged",
        took.as_millis()
    );
    let mut both = vec![ra.clone(), rb.clone()];
    both.sort();
    assert_eq!(hit_ids(&all), both);
    let (_, scoped) = get(&s, ADMIN, &format!("/v1/parties/{a}/search?q=Lieferung")).await;
    assert_eq!(hit_ids(&scoped), vec![ra.clone()]);
    let (_, scoped) = get(&s, ADMIN, &format!("/v1/search?q=Lieferung&party={b}")).await;
    assert_eq!(hit_ids(&scoped), vec![rb.clone()]);
    // Party names, German analysis, highlighting and facets over HTTP.
    let (_, v) = get(&s, ADMIN, "/v1/search?q=Mueller%20Vertrag").await;
    assert_eq!(hit_ids(&v), vec![ra.clone()]);
    let hit = &v["hits"][0];
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>Rahmenvertrag</mark>"),
        "{hit}"
    );
    assert_eq!(v["facets"]["class"]["contract"], 1);
    // A contract's retention waits for its end: the state facet says so.
    assert_eq!(
        v["facets"]["retention_state"]["awaiting-event"], 1,
        "{}",
        v["facets"]
    );
    // Bad input is a problem document naming the parameter.
    let r = client()
        .get(s.url("/v1/search?q=nosuch:x"))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    // The text is a string as documented; the query language refuses it: 422.
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let (status, _) = get(&s, ADMIN, "/v1/search?q=x&per_page=1000").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Paging is bounded: a page beyond 500 (or one whose offset overflows) is a
    // 400 naming `page`, and the server lives on (it used to abort in tantivy).
    for page in ["1000000000000000", "18446744073709551615", "501"] {
        let r = client()
            .get(s.url(&format!("/v1/search?q=Rechnung&page={page}")))
            .header("authorization", bearer(ADMIN))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "page={page}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["field"], "page", "{body}");
    }
    // Raw regular expressions are refused, under any field name.
    for q in ["body:/.*e.*/", "body_de:/.*e.*/", "/.*/"] {
        let (status, v) = get(
            &s,
            ADMIN,
            &format!(
                "/v1/search?q={}",
                percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC)
            ),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {v}");
    }
    let (status, _) = get(&s, ADMIN, "/v1/search?q=Rechnung&page=500").await;
    assert_eq!(status, StatusCode::OK, "the last page within the window");
    let health = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // A clerk restricted to party A.
    let t = post(
        &s,
        ADMIN,
        "/v1/tokens",
        json!({"role": "clerk", "name": "clerk-a", "parties": [a]}),
    )
    .await;
    let ta = t["token"].as_str().unwrap();
    let (status, v) = get(&s, ta, "/v1/search?q=Lieferung").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        hit_ids(&v),
        vec![ra.clone()],
        "a restricted user sees only its party"
    );
    assert_eq!(v["facets"]["party"].as_object().unwrap().len(), 1);
    let (_, v) = get(&s, ta, &format!("/v1/search?q=Lieferung&party={b}")).await;
    assert!(v["hits"].as_array().is_none_or(|h| h.is_empty()), "{v}");
    assert_eq!(
        get(&s, ta, &format!("/v1/parties/{b}/search?q=Lieferung"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s, ta, &format!("/v1/parties/{a}/search?q=Lieferung"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, ta, &format!("/v1/records/{rb}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s, ta, &format!("/v1/records/{rb}/content")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s, ta, &format!("/v1/records/{ra}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, ta, &format!("/v1/parties/{b}/file")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s, ta, &format!("/v1/parties/{a}/file")).await.0,
        StatusCode::OK
    );
    // Endpoints that are not party-aware refuse a restricted token outright.
    assert_eq!(get(&s, ta, "/v1/journal").await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(&s, ta, "/v1/parties").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_record_acknowledged_before_a_crash_is_found_after_restart_and_reindex_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The first server never commits its index (interval of an hour) and is killed.
    let mut s = Server::start_on(&data, &["--index-interval-ms", "3600000"]);
    let id = upload(
        &s,
        "Mängelrüge zur Lieferung vom Montag",
        "class=complaint&title=Reklamation",
    )
    .await;
    let (_, v) = get(&s, ADMIN, "/v1/search?q=Mängelrüge").await;
    assert_eq!(
        v["total"], 0,
        "not indexed yet: the crash must happen before the commit"
    );
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    drop(s);

    let s = Server::start_on(&data, &[]);
    let (v, _) = wait_for(&s, "/v1/search?q=Mangelruge", 1).await;
    assert_eq!(hit_ids(&v), vec![id.clone()]);
    for i in 0..5 {
        upload(
            &s,
            &format!("Angebot Nummer {i} für Wartungsvertrag"),
            "class=offer&title=Angebot",
        )
        .await;
    }
    wait_for(&s, "/v1/search?q=Wartung", 5).await;
    // The CLI sees that a server holds the index, and says so.
    let out = cli(&data, &["search", "Wartung"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    let out = cli(&data, &["reindex"]);
    assert!(
        !out.status.success(),
        "reindex must refuse while the server runs"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop the server"));
    let queries = [
        "Wartung",
        "Angebot",
        "Lieferung",
        "class:offer",
        "Nummer AND 3",
    ];
    let mut before = Vec::new();
    for q in queries {
        let (_, v) = get(
            &s,
            ADMIN,
            &format!("/v1/search?q={}&per_page=100", q.replace(' ', "%20")),
        )
        .await;
        before.push(hit_ids(&v));
    }
    s.sigterm();
    drop(s);

    // Delete the index; rebuild it from the store alone; the same answers.
    std::fs::remove_dir_all(data.join("index")).unwrap();
    let out = cli(&data, &["--json", "reindex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["records"], 6);
    for (q, want) in queries.iter().zip(&before) {
        let out = cli(&data, &["--json", "search", "--limit", "100", q]);
        assert!(
            out.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(&hit_ids(&v), want, "{q}");
    }
    let out = cli(&data, &["search", "nosuchfield:x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
}

/// Issue #18, Z1: a tax auditor's token limited to the fiscal year 2024 reads a 2024
/// invoice, gets 404 for a 2025 one (as for a record that does not exist), finds only
/// 2024 in search (facets too), and is refused every endpoint that would show more: the
/// party file, the journal, the party list. Its reads are journaled (`record.read`).
#[tokio::test]
async fn an_auditor_limited_to_2024_reads_2024_and_nothing_else() {
    let s = Server::start(&[]);
    let r24 = upload(
        &s,
        "Rechnung 2024-17 Schrauben",
        "class=invoice&date=2024-05-02",
    )
    .await;
    let r25 = upload(
        &s,
        "Rechnung 2025-03 Schrauben",
        "class=invoice&date=2025-02-11",
    )
    .await;
    wait_for(&s, "/v1/search?q=Schrauben", 2).await;
    let bad = client()
        .post(s.url("/v1/tokens"))
        .header("authorization", bearer(ADMIN))
        .json(&json!({"role": "auditor", "name": "bp", "years": {"from": 2025, "to": 2024}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the first year after the last"
    );
    let t = post(
        &s,
        ADMIN,
        "/v1/tokens",
        json!({"role": "auditor", "name": "betriebspruefung", "person": "pruefer", "years": {"from": 2024.0, "to": 2024}}),
    )
    .await;
    assert_eq!(t["years"], json!({"from": 2024, "to": 2024}), "{t}");
    let tz = t["token"].as_str().unwrap();
    assert_eq!(
        get(&s, tz, &format!("/v1/records/{r24}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, tz, &format!("/v1/records/{r24}/content")).await.0,
        StatusCode::OK
    );
    for path in [
        format!("/v1/records/{r25}"),
        format!("/v1/records/{r25}/content"),
        format!("/v1/records/{r25}/revisions"),
    ] {
        assert_eq!(get(&s, tz, &path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, v) = get(&s, tz, "/v1/search?q=Schrauben").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hit_ids(&v), vec![r24.clone()], "{v}");
    let (_, v) = get(&s, tz, "/v1/search?q=Schrauben&from=2025-01-01").await;
    assert!(v["hits"].as_array().is_none_or(|h| h.is_empty()), "{v}");
    assert_eq!(v["total"], 0, "{v}");
    for path in ["/v1/journal", "/v1/parties", "/v1/retention/report"] {
        assert_eq!(get(&s, tz, path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    // Unlimited, the same role sees both years.
    let (_, all) = new_token_auditor(&s).await;
    assert_eq!(
        get(&s, &all, &format!("/v1/records/{r25}")).await.0,
        StatusCode::OK
    );
    // Its reads are journaled, by the limited token, and name only the 2024 record.
    let (_, j) = get(&s, ADMIN, "/v1/journal?since=1&limit=1000").await;
    let reads: Vec<&Value> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["actor"]
                .as_str()
                .unwrap_or("")
                .contains("betriebspruefung")
                && e["action"] == "record.read"
        })
        .collect();
    assert!(!reads.is_empty(), "{j}");
    assert!(
        reads.iter().all(|e| {
            let subjects = e["subjects"].to_string();
            subjects.contains(&r24) && !subjects.contains(&r25)
        }),
        "only the 2024 record was read: {reads:?}"
    );
}

/// Issue #18, auditor access limited in time and in classes: a token limited to the
/// class `invoice` reads and finds invoices only (a letter of the same year is 404 and
/// not found), is refused the party list, and an unknown class is refused when the token
/// is made; a Z1 token whose validity has ended gets 401 on the record it could read
/// before.
#[tokio::test]
async fn an_auditor_limited_to_invoices_and_a_validity_period_reads_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Tokens made while a clock stood in 2020: the admin, and a Z1 token for 2024 valid
    // through 2020-12-31.
    let expired = {
        use akte::access::{NewToken, Role};
        use chrono::TimeZone;
        let tokens = crate::tokens_in_2020(&data);
        tokens
            .create(
                "test",
                NewToken {
                    secret: Some(ADMIN.into()),
                    ..NewToken::new(Role::Admin, "ops", "ops")
                },
            )
            .await
            .unwrap();
        tokens
            .create(
                "test",
                NewToken {
                    expires_at: Some(chrono::Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap()),
                    years: Some(akte::access::FiscalYears {
                        from: 2024,
                        to: 2024,
                    }),
                    ..NewToken::new(Role::Auditor, "bp-2020", "pruefer")
                },
            )
            .await
            .unwrap()
            .1
    };
    let s = Server::start_on(&data, &[]);
    let invoice = upload(
        &s,
        "Rechnung 2024-17 Schrauben",
        "class=invoice&date=2024-05-02",
    )
    .await;
    let letter = upload(
        &s,
        "Brief Schrauben Lieferung",
        "class=business-letter&date=2024-05-03",
    )
    .await;
    wait_for(&s, "/v1/search?q=Schrauben", 2).await;

    let (status, v) = get(&s, &expired, &format!("/v1/records/{invoice}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "validity ended: {v}");
    assert!(
        v["detail"].as_str().unwrap_or("").contains("expired"),
        "{v}"
    );

    for class in ["invioce", ""] {
        let bad = client()
            .post(s.url("/v1/tokens"))
            .header("authorization", bearer(ADMIN))
            .json(&json!({"role": "auditor", "name": "bp", "classes": [class]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            bad.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "a misspelt or empty class: {class:?}"
        );
    }
    let t = post(
        &s,
        ADMIN,
        "/v1/tokens",
        json!({"role": "auditor", "name": "bp-invoices", "person": "pruefer",
               "classes": ["invoice"], "expires": "2099-12-31"}),
    )
    .await;
    assert_eq!(t["classes"], json!(["invoice"]), "{t}");
    let tc = t["token"].as_str().unwrap();
    assert_eq!(
        get(&s, tc, &format!("/v1/records/{invoice}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, tc, &format!("/v1/records/{letter}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&s, tc, &format!("/v1/records/{letter}/content"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, v) = get(&s, tc, "/v1/search?q=Schrauben").await;
    assert_eq!(hit_ids(&v), vec![invoice.clone()], "{v}");
    let (_, v) = get(&s, tc, "/v1/search?q=Schrauben&class=business-letter").await;
    assert_eq!(v["total"], 0, "{v}");
    let (_, all) = get(&s, ADMIN, "/v1/search?q=Schrauben").await;
    assert_eq!(hit_ids(&all).len(), 2, "{all}");
    for path in ["/v1/parties", "/v1/journal"] {
        assert_eq!(get(&s, tc, path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn new_token_auditor(s: &Server) -> (String, String) {
    let v = post(
        s,
        ADMIN,
        "/v1/tokens",
        json!({"role": "auditor", "name": "auditor-all", "person": "pruefer2"}),
    )
    .await;
    (
        v["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}
