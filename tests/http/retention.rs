//! Retention and legal holds: retained and held records cannot be removed or altered.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::server::*;
use crate::{eligible_request, new_token, post_json, problem, upload};

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

/// `GET /v1/retention/eligible` pages by `after` and `limit`, and refuses bad values with
/// a problem.
#[tokio::test]
async fn the_eligible_list_pages_and_refuses_bad_parameters() {
    let s = Server::start(&[]);
    let c = client();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            archived(
                &s,
                format!("Brief {i} aus 2010"),
                "?class=business-letter&date=2010-01-01",
            )
            .await,
        );
    }
    ids.sort();
    let get = |query: String| {
        c.get(s.url(&format!("/v1/retention/eligible{query}")))
            .header("authorization", bearer(ADMIN))
            .send()
    };
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_string();
    loop {
        let page: Vec<Value> = get(query.clone()).await.unwrap().json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        match page.last() {
            Some(last) if page.len() == 2 => {
                query = format!("?limit=2&after={}", last["id"].as_str().unwrap());
            }
            _ => break,
        }
    }
    assert_eq!(seen, ids);
    for bad in [
        "?limit=0",
        "?limit=10001",
        "?limit=x",
        "?after=..%2Fkeys",
        "?page=2",
    ] {
        let v = problem(get(bad.to_string()).await.unwrap(), StatusCode::BAD_REQUEST).await;
        assert!(v["detail"].is_string(), "{bad}: {v}");
    }
}

/// The report's rows are streamed as they are counted (JSON: the rows first, then the
/// counts; CSV: a line per record): the same report as without rows, row for row the
/// records archived, over more rows than one chunk of the stream holds.
#[tokio::test]
async fn the_streamed_report_has_every_row_and_the_same_counts() {
    let s = Server::start(&[]);
    let c = client();
    let mut ids = Vec::new();
    for i in 0..600 {
        let (class, year) = match i % 3 {
            0 => ("business-letter", 2010),
            1 => ("business-letter", 2024),
            _ => ("invoice", 2012),
        };
        ids.push(
            archived(
                &s,
                format!("Schreiben {i}"),
                &format!("?class={class}&date={year}-01-01"),
            )
            .await,
        );
    }
    ids.sort();
    let get = |query: &str| {
        c.get(s.url(&format!("/v1/retention/report{query}")))
            .header("authorization", bearer(ADMIN))
            .send()
    };
    let counts: Value = get("?rows=false").await.unwrap().json().await.unwrap();
    let r = get("").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let mut full: Value = r.json().await.unwrap();
    let rows = full["records"].as_array().cloned().unwrap();
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, ids);
    let eligible = rows.iter().filter(|r| r["state"] == "eligible").count();
    assert_eq!(eligible, 400, "the 2010 letters and the 2012 invoices");
    full["records"] = Value::Array(vec![]);
    assert_eq!(
        full, counts,
        "the counts after the rows are those of the report"
    );
    assert_eq!(counts["records_total"], 600);
    assert_eq!(counts["eligible_now"], 400);

    let r = get("?format=csv").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,class,policy,retain_until,state,holds")
    );
    let mut from_csv: Vec<(String, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[4].to_string())
        })
        .collect();
    from_csv.sort();
    let mut from_json: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    from_json.sort();
    assert_eq!(from_csv, from_json);
    let header = get("?format=csv&rows=false")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(header, "id,class,policy,retain_until,state,holds\n");
    problem(get("?format=xml").await.unwrap(), StatusCode::BAD_REQUEST).await;
}

/// Uploads `text` as the admin; the new record's id.
async fn archived(s: &Server, text: String, query: &str) -> String {
    let r: Value = upload(s, ADMIN, text.into_bytes(), query)
        .await
        .json()
        .await
        .unwrap();
    r["id"].as_str().unwrap().to_string()
}
