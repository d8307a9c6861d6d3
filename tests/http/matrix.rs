//! The attack matrix: every record operation × every role × every state a record can be
//! in, as the running server answers it. The table in `tests/attack-matrix.md` is
//! written from what this test observes (`AKTE_BLESS=1 cargo test --test http matrix`)
//! and compared with it on every run, so it cannot drift from the code. The test also
//! asserts the rules the table shows: a restricted token sees nothing outside its
//! parties (404 before any other check), writes need their role (403), a disposed record
//! answers 410 to changes, a retained or held one 423 to deletion and disposal.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::server::*;
use crate::{post_json, upload};

async fn call(
    s: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> u16 {
    let mut r = client().request(method, s.url(path));
    if let Some(t) = token {
        r = r.header("authorization", bearer(t));
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    if status >= 400 {
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{path}"
        );
    }
    status
}

async fn record(s: &Server, party: &str, date: &str) -> String {
    let query = format!("?class=business-letter&date={date}&party={party}&role=recipient");
    let r = upload(s, ADMIN, b"Brief".to_vec(), &query).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// State → (role, status) in the order of the roles.
type ByState<'a> = BTreeMap<&'a str, Vec<(String, u16)>>;

fn cells_of(by_state: &ByState, state: &str, role: &str) -> u16 {
    by_state[state]
        .iter()
        .find(|(r, _)| r == role)
        .map(|(_, s)| *s)
        .unwrap_or_default()
}

#[tokio::test]
async fn attack_matrix_by_operation_role_and_record_state() {
    let s = Server::start(&[]);
    let a = post_json(
        &s,
        "/v1/parties",
        json!({"kind": "organisation", "name": "A GmbH"}),
    )
    .await;
    let b = post_json(
        &s,
        "/v1/parties",
        json!({"kind": "organisation", "name": "B GmbH"}),
    )
    .await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );

    // The states: retained, held, disposed (a tombstone), and linked to another party.
    let retained = record(&s, &a, "2025-01-10").await;
    let held = record(&s, &a, "2025-01-11").await;
    post_json(&s, "/v1/holds", json!({"name": "Prüfung", "reason": "Betriebsprüfung", "scope": {"type": "records", "ids": [held]}}),
    )
    .await;
    let disposed = record(&s, &a, "2010-01-01").await;
    let request = post_json(
        &s,
        "/v1/disposals",
        json!({"records": [disposed], "reason": "Frist"}),
    )
    .await;
    let second = post_json(
        &s,
        "/v1/tokens",
        json!({"role": "admin", "name": "second", "person": "zweite-person"}),
    )
    .await;
    let request = request["id"].as_str().unwrap();
    let approved = call(
        &s,
        Method::POST,
        &format!("/v1/disposals/{request}/approve"),
        second["token"].as_str(),
        None,
    )
    .await;
    assert_eq!(approved, 202);
    for _ in 0..200 {
        let r = client()
            .get(s.url(&format!("/v1/disposals/{request}")))
            .header("authorization", bearer(ADMIN))
            .send()
            .await
            .unwrap();
        if r.json::<Value>().await.unwrap()["state"] == "executed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let other = record(&s, &b, "2025-01-12").await;

    let mut roles: Vec<(String, Option<String>)> = vec![("admin".into(), Some(ADMIN.to_string()))];
    for role in ["archivist", "clerk", "auditor"] {
        let t = post_json(
            &s,
            "/v1/tokens",
            json!({"role": role, "name": format!("m-{role}"), "person": format!("m-{role}")}),
        )
        .await;
        roles.push((role.into(), t["token"].as_str().map(str::to_string)));
    }
    let restricted = post_json(
        &s,
        "/v1/tokens",
        json!({"role": "clerk", "name": "m-restricted", "person": "m-restricted", "parties": [a]}),
    )
    .await;
    roles.push((
        "clerk of A".into(),
        restricted["token"].as_str().map(str::to_string),
    ));
    roles.push(("no token".into(), None));

    let nonexistent = "01900000-0000-7000-8000-000000000000".to_string();
    let states = [
        ("retained", &retained),
        ("held", &held),
        ("disposed", &disposed),
        ("of party B", &other),
        ("nonexistent", &nonexistent),
    ];
    type Op = (
        &'static str,
        Method,
        fn(&str, &str, &str) -> (String, Option<Value>),
    );
    let ops: Vec<Op> = vec![
        ("GET /v1/records/{id}", Method::GET, |id, _, _| {
            (format!("/v1/records/{id}"), None)
        }),
        ("GET /v1/records/{id}/revisions", Method::GET, |id, _, _| {
            (format!("/v1/records/{id}/revisions"), None)
        }),
        ("GET /v1/records/{id}/content", Method::GET, |id, _, _| {
            (format!("/v1/records/{id}/content"), None)
        }),
        (
            "POST /v1/records/{id}/revisions",
            Method::POST,
            |id, role, _| {
                (
                    format!("/v1/records/{id}/revisions"),
                    Some(json!({"title": format!("geändert von {role}")})),
                )
            },
        ),
        (
            "POST /v1/records/{id}/links",
            Method::POST,
            |id, role, party| {
                let role = role.replace(' ', "-").to_lowercase();
                (
                    format!("/v1/records/{id}/links"),
                    Some(json!({"add": [{"party": party, "role": format!("copy-{role}")}]})),
                )
            },
        ),
        ("DELETE /v1/records/{id}", Method::DELETE, |id, _, _| {
            (format!("/v1/records/{id}"), None)
        }),
        ("POST /v1/disposals", Method::POST, |id, role, _| {
            (
                "/v1/disposals".to_string(),
                Some(json!({"records": [id], "reason": format!("Antrag {role}")})),
            )
        }),
    ];

    // operation → state → role → status
    let mut seen: BTreeMap<&str, ByState> = BTreeMap::new();
    for (name, method, make) in &ops {
        for (state, id) in &states {
            for (role, token) in &roles {
                let (path, body) = make(id, role, &a);
                let status = call(&s, method.clone(), &path, token.as_deref(), body).await;
                seen.entry(name)
                    .or_default()
                    .entry(state)
                    .or_default()
                    .push((role.clone(), status));
            }
        }
    }

    // The rules the table shows.
    for (op, by_state) in &seen {
        for (state, cells) in by_state {
            for (role, status) in cells {
                let status = *status;
                if role == "no token" {
                    assert_eq!(status, 401, "{op} {state} {role}");
                } else if role == "clerk of A" && *state == "of party B" {
                    // Nothing outside its parties is visible or inferable: the answer is
                    // the one for a record that does not exist.
                    let none = cells_of(by_state, "nonexistent", role);
                    assert_eq!(
                        status, none,
                        "{op} {state}: differs from a nonexistent record"
                    );
                    if op.starts_with("GET") {
                        assert_eq!(status, 404, "{op} {state}");
                    }
                } else if op.starts_with("GET") && *state != "disposed" && *state != "nonexistent" {
                    assert_eq!(status, 200, "{op} {state} {role}");
                }
                if op.starts_with("DELETE")
                    && role == "admin"
                    && *state != "disposed"
                    && *state != "nonexistent"
                {
                    assert_eq!(
                        status, 423,
                        "{op} {state}: retained records are not deleted"
                    );
                }
                if op.starts_with("POST /v1/disposals")
                    && role == "admin"
                    && (*state == "retained" || *state == "held")
                {
                    assert!(status == 423 || status == 410, "{op} {state}: {status}");
                }
                if *state == "disposed"
                    && role == "admin"
                    && op.contains("revisions")
                    && op.starts_with("POST")
                {
                    assert_eq!(status, 410, "{op}: a tombstone is final");
                }
                if role == "auditor" && !op.starts_with("GET") {
                    assert_eq!(status, 403, "{op} {state}: an auditor changes nothing");
                }
            }
        }
    }

    let mut table = String::from(
        "# Attack matrix (generated)\n\n\
         Written by `tests/http/matrix.rs` from what the running server answered \
         (`AKTE_BLESS=1 cargo test --test http matrix` rewrites it; every test run compares \
         it). Rows: an operation on a record in a state; columns: who calls. \
         *retained*: within its retention period; *held*: under a legal hold; *disposed*: \
         a tombstone after four-eyes disposal; *of party B*: linked to another party than \
         the restricted token's. *clerk of A*: a clerk token restricted to party A.\n\n",
    );
    table.push_str("| operation | record |");
    for (role, _) in &roles {
        table.push_str(&format!(" {role} |"));
    }
    table.push_str("\n|---|---|");
    for _ in &roles {
        table.push_str("---|");
    }
    table.push('\n');
    for (name, _, _) in &ops {
        for (state, _) in &states {
            table.push_str(&format!("| `{name}` | {state} |"));
            for (_, status) in &seen[name][state] {
                table.push_str(&format!(" {status} |"));
            }
            table.push('\n');
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attack-matrix.md");
    if std::env::var_os("AKTE_BLESS").is_some() {
        std::fs::write(&path, &table).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == table,
        "tests/attack-matrix.md differs from what the server answered; if the change is \
         intended, rewrite it with AKTE_BLESS=1 cargo test --test http matrix\n{table}"
    );
}
