//! The attack surface (issue #13): what a caller controls is bounded, and no request or
//! connection takes the server down.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::server::{ADMIN, Server};

/// Reads until the server closes the connection (or `limit` passes); returns how long
/// that took and what arrived.
fn until_closed(s: &mut TcpStream, limit: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if started.elapsed() > limit {
            break;
        }
    }
    (started.elapsed(), got)
}

#[test]
fn silent_and_idle_connections_are_closed_and_a_client_cannot_take_every_slot() {
    let server = Server::start(&["--header-timeout", "1", "--connections-per-client", "8"]);
    let addr = server.base.trim_start_matches("http://").to_string();

    // A connection that sends nothing is closed after the header timeout.
    let mut silent = TcpStream::connect(&addr).unwrap();
    let (took, _) = until_closed(&mut silent, Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(5),
        "a silent connection was kept for {took:?}"
    );

    // A request head that never ends is cut too (slowloris).
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (took, _) = until_closed(&mut slow, Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(5),
        "a slow head was kept for {took:?}"
    );

    // A keep-alive connection idle after its request is closed as well.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (took, got) = until_closed(&mut idle, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(
        took < Duration::from_secs(5),
        "an idle connection was kept for {took:?}"
    );

    // One client address holds at most 8 connections; the 9th is refused, and the
    // server keeps answering.
    let held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut ninth = TcpStream::connect(&addr).unwrap();
    let _ = ninth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let (_, got) = until_closed(&mut ninth, Duration::from_secs(3));
    assert!(got.is_empty(), "the 9th connection was served");
    drop(held);
    std::thread::sleep(Duration::from_millis(1500));
    let mut after = TcpStream::connect(&addr).unwrap();
    after
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (_, got) = until_closed(&mut after, Duration::from_secs(5));
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "served again once the slots were given back"
    );
}

async fn json_req(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = common::server::client()
        .request(method, url)
        .header("authorization", common::server::bearer(token));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let v = r.json().await.unwrap_or(serde_json::Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{v}");
    }
    (status, v)
}

#[tokio::test]
async fn four_eyes_are_two_persons_and_the_last_admin_token_stays() {
    use reqwest::Method;
    let s = Server::start(&[]);
    // The admin makes a second token for themself (no person named: their own).
    let (status, second) = json_req(
        Method::POST,
        s.url("/v1/tokens"),
        ADMIN,
        Some(serde_json::json!({"role": "archivist", "name": "my-second"})),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["person"], "admin");
    let second = second["token"].as_str().unwrap().to_string();
    // An old record, and a disposal request by the admin.
    let (status, rec) = {
        let r = common::server::client()
            .post(s.url("/v1/records?class=business-letter&date=2012-01-01"))
            .header("authorization", common::server::bearer(ADMIN))
            .body("alter Brief")
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 201);
    let (status, req) = json_req(
        Method::POST,
        s.url("/v1/disposals"),
        ADMIN,
        Some(serde_json::json!({"records": [rec["id"]], "reason": "Frist"})),
    )
    .await;
    assert_eq!(status, 201, "{req}");
    let approve = s.url(&format!(
        "/v1/disposals/{}/approve",
        req["id"].as_str().unwrap()
    ));
    // The same person with another token: refused.
    let (status, v) = json_req(Method::POST, approve.clone(), &second, None).await;
    assert_eq!(status, 423, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("four-eyes"), "{v}");
    // Another person: approved.
    let (_, bob) = json_req(
        Method::POST,
        s.url("/v1/tokens"),
        ADMIN,
        Some(serde_json::json!({"role": "archivist", "name": "bob", "person": "bob"})),
    )
    .await;
    let (status, v) = json_req(Method::POST, approve, bob["token"].as_str().unwrap(), None).await;
    assert_eq!(status, 202, "{v}");

    // The admin token cannot revoke itself while it is the last admin token.
    let (_, list) = json_req(Method::GET, s.url("/v1/tokens"), ADMIN, None).await;
    let admin_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = json_req(
        Method::DELETE,
        s.url(&format!("/v1/tokens/{admin_id}")),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 409, "{v}");
    let (status, _) = json_req(Method::GET, s.url("/v1/tokens"), ADMIN, None).await;
    assert_eq!(status, 200, "the admin still works");
    // With a second admin (another person) it can go.
    let (_, other) = json_req(
        Method::POST,
        s.url("/v1/tokens"),
        ADMIN,
        Some(serde_json::json!({"role": "admin", "name": "carol", "person": "carol"})),
    )
    .await;
    let (status, v) = json_req(
        Method::DELETE,
        s.url(&format!("/v1/tokens/{admin_id}")),
        other["token"].as_str().unwrap(),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {v}");
}

/// Every process below `pid` (children, their children, …).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

#[tokio::test]
async fn extraction_workers_see_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_env(
        &dir.path().join("data"),
        &[],
        &[
            ("AWS_SECRET_ACCESS_KEY", "canary-aws-secret"),
            ("AKTE_CANARY", "canary-akte"),
        ],
    );
    // An email is parsed in a worker process.
    let r = common::server::client()
        .post(s.url("/v1/emails"))
        .header("authorization", common::server::bearer(ADMIN))
        .header("content-type", "message/rfc822")
        .body("From: a@example.com\r\nSubject: Hallo\r\nMessage-ID: <w@x>\r\n\r\nText\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let workers: Vec<u32> = descendants(s.pid())
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("extract-worker"))
        })
        .collect();
    assert!(!workers.is_empty(), "a worker was started");
    for w in workers {
        let env = std::fs::read(format!("/proc/{w}/environ")).unwrap();
        let env = String::from_utf8_lossy(&env);
        for var in env.split('\0').filter(|v| !v.is_empty()) {
            assert!(
                !var.starts_with("AKTE_") && !var.starts_with("AWS_"),
                "worker {w} sees {var}"
            );
        }
        let cwd = std::fs::read_link(format!("/proc/{w}/cwd")).unwrap();
        assert!(
            !cwd.starts_with(dir.path()),
            "worker runs in {}",
            cwd.display()
        );
    }
}

#[test]
fn the_bootstrap_token_goes_to_an_owner_only_file_not_to_a_log() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("AKTE_ADMIN_TOKEN")
        .env_remove("AKTE_STORE")
        .env("AKTE_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = Vec::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("listening on");
        log.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = log.join("\n");
    let path = data.join("admin-token");
    let token = std::fs::read_to_string(&path).unwrap();
    let token = token.trim();
    assert!(token.starts_with("akte_"), "{token}");
    assert!(!log.contains(token), "the token is not in the log: {log}");
    assert!(log.contains("admin-token"), "the log says where: {log}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
    // The data directory and the key files are owner-only too.
    let f = dir.path().join("brief.txt");
    std::fs::write(&f, "Brief").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(&data)
        .arg("archive")
        .arg(&f)
        .env_remove("AKTE_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in [data.clone(), data.join("keys")] {
        let m = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(m & 0o077, 0, "{}: {m:o}", p.display());
    }
    for k in std::fs::read_dir(data.join("keys")).unwrap() {
        let k = k.unwrap().path();
        let m = std::fs::metadata(&k).unwrap().permissions().mode();
        assert_eq!(m & 0o077, 0, "{}: {m:o}", k.display());
    }
}

#[tokio::test]
async fn a_restricted_token_learns_nothing_about_records_outside_its_parties() {
    use reqwest::Method;
    use serde_json::json;
    let s = Server::start(&[]);
    let post = |path: &str, body: serde_json::Value| {
        let url = s.url(path);
        async move { json_req(Method::POST, url, ADMIN, Some(body)).await }
    };
    let (_, a) = post(
        "/v1/parties",
        json!({"kind": "organisation", "name": "A GmbH"}),
    )
    .await;
    let (_, b) = post(
        "/v1/parties",
        json!({"kind": "organisation", "name": "B GmbH"}),
    )
    .await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let upload = |party: &str| {
        let url = s.url(&format!(
            "/v1/records?class=business-letter&date=2012-01-01&party={party}&role=recipient"
        ));
        async move {
            let r = common::server::client()
                .post(url)
                .header("authorization", common::server::bearer(ADMIN))
                .body("Brief")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let ra = upload(a).await;
    let rb = upload(b).await;
    let rb_live = upload(b).await;
    // A framework agreement of A in force, whose case also holds a document of B only.
    let (status, case) = post(
        "/v1/cases",
        json!({"kind": "framework-agreement", "title": "Rahmenvertrag", "party": a,
               "valid_from": "2020-01-01", "valid_until": "2099-12-31"}),
    )
    .await;
    assert_eq!(status, 201, "{case}");
    let case = case["id"].as_str().unwrap();
    for r in [&ra, &rb_live] {
        let (status, v) = post(
            &format!("/v1/records/{r}/links"),
            json!({"add_cases": [case]}),
        )
        .await;
        assert!(status == 200 || status == 201, "{v}");
    }
    // RB is disposed (two persons).
    let (_, req) = post("/v1/disposals", json!({"records": [rb], "reason": "Frist"})).await;
    let (_, bob) = post(
        "/v1/tokens",
        json!({"role": "archivist", "name": "bob", "person": "bob"}),
    )
    .await;
    let (status, _) = json_req(
        Method::POST,
        s.url(&format!(
            "/v1/disposals/{}/approve",
            req["id"].as_str().unwrap()
        )),
        bob["token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(status, 202);
    for _ in 0..100 {
        let (_, d) = json_req(
            Method::GET,
            s.url(&format!("/v1/disposals/{}", req["id"].as_str().unwrap())),
            ADMIN,
            None,
        )
        .await;
        if d["state"] == "executed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A tombstone takes no new links.
    let (status, v) = post(
        &format!("/v1/records/{rb}/links"),
        json!({"add": [{"party": a, "role": "recipient"}]}),
    )
    .await;
    assert_eq!(status, 410, "{v}");

    let (_, clerk) = post(
        "/v1/tokens",
        json!({"role": "clerk", "name": "clerk-a", "person": "carla", "parties": [a]}),
    )
    .await;
    let clerk = clerk["token"].as_str().unwrap();
    // Outside its parties: 404 everywhere, disposed or not, whatever revision is asked.
    for r in [&rb, &rb_live] {
        for path in [
            format!("/v1/records/{r}"),
            format!("/v1/records/{r}/revisions"),
            format!("/v1/records/{r}/content"),
            format!("/v1/records/{r}/content?rev=99"),
        ] {
            let (status, v) = json_req(Method::GET, s.url(&path), clerk, None).await;
            assert_eq!(status, 404, "{path}: {v}");
        }
    }
    for path in [format!("/v1/parties/{b}"), format!("/v1/parties/{b}/file")] {
        let (status, _) = json_req(Method::GET, s.url(&path), clerk, None).await;
        assert_eq!(status, 404, "{path}");
    }
    // The admin sees that RB was disposed.
    let (status, _) = json_req(
        Method::GET,
        s.url(&format!("/v1/records/{rb}/content")),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 410);
    // A's file: the agreement's key documents are A's only.
    let (status, file) = json_req(
        Method::GET,
        s.url(&format!("/v1/parties/{a}/file")),
        clerk,
        None,
    )
    .await;
    assert_eq!(status, 200, "{file}");
    let text = file.to_string();
    assert!(text.contains(&ra), "A's own document is shown");
    assert!(!text.contains(&rb_live), "B's document is not: {file}");
}

#[tokio::test]
async fn journal_paging_refuses_numbers_beyond_the_documented_range() {
    let s = Server::start(&[]);
    for q in [
        "since=9223372036854775808",
        "since=-1",
        "limit=0",
        "limit=10001",
    ] {
        let (status, v) = json_req(
            reqwest::Method::GET,
            s.url(&format!("/v1/journal?{q}")),
            ADMIN,
            None,
        )
        .await;
        assert_eq!(status, 400, "{q}: {v}");
    }
    let (status, _) = json_req(
        reqwest::Method::GET,
        s.url("/v1/journal?since=9223372036854775807"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_openapi_document_is_served_and_equals_the_file() {
    let s = Server::start(&[]);
    let r = common::server::client()
        .get(s.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served = r.text().await.unwrap();
    let file = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json"),
    )
    .unwrap();
    assert_eq!(served, file);

    // The browsable reference: its page and scripts come from the binary (no CDN) and
    // read the served document.
    let c = common::server::client();
    let page = c.get(s.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no external assets: {html}");
    let init = c
        .get(s.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/v1/openapi.json"));
    let bundle = c
        .get(s.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series_and_metadata_parts_are_bounded() {
    let s = Server::start(&[]);
    let c = common::server::client();
    for m in ["FROBNICATE", "BREW", "XYZZY"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let _ = c
            .request(method, s.url("/v1/records"))
            .send()
            .await
            .unwrap();
    }
    let metrics = c
        .get(s.url("/metrics"))
        .header("authorization", common::server::bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in ["FROBNICATE", "BREW", "XYZZY"] {
        assert!(!metrics.contains(m), "{m} became a label");
    }
    assert!(metrics.contains("method=\"other\""), "{metrics}");

    // A multipart `metadata` part over 1 MiB is refused, naming the part.
    let big = format!("{{\"title\": \"{}\"}}", "x".repeat(2 << 20));
    let form = reqwest::multipart::Form::new()
        .part("metadata", reqwest::multipart::Part::text(big))
        .part("file", reqwest::multipart::Part::bytes(b"Brief".to_vec()));
    let r = c
        .post(s.url("/v1/records"))
        .header("authorization", common::server::bearer(ADMIN))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["field"], "metadata", "{v}");
}

/// Background work is bounded: a third import of one caller while two run answers 429
/// with `Retry-After`; a second verification while one runs joins it (the same job).
#[tokio::test]
async fn imports_and_verifications_are_bounded_per_caller() {
    let s = Server::start(&[]);
    let mut mbox = String::new();
    for i in 0..4000 {
        mbox.push_str(&format!(
            "From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\n\
             Message-ID: <{i}-{}@example.com>\nSubject: Nr. {i}\n\nHallo {i}\n\n",
            crate::rand_suffix()
        ));
    }
    let c = common::server::client();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let r = c
            .post(s.url("/v1/imports"))
            .header("authorization", common::server::bearer(ADMIN))
            .header("content-type", "application/mbox")
            .body(mbox.clone())
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert_eq!(
        statuses,
        [202, 202, 429],
        "two imports per caller at a time"
    );
    assert!(retry_after.is_some(), "429 says when to retry");

    let first = json_req(reqwest::Method::POST, s.url("/v1/verify"), ADMIN, None).await;
    let second = json_req(reqwest::Method::POST, s.url("/v1/verify"), ADMIN, None).await;
    assert_eq!(first.0, 202);
    assert_eq!(second.0, 202);
    // A second job only when the first is no longer running.
    if first.1["id"] != second.1["id"] {
        let id = first.1["id"].as_str().unwrap();
        let (_, v) = json_req(
            reqwest::Method::GET,
            s.url(&format!("/v1/verify/{id}")),
            ADMIN,
            None,
        )
        .await;
        assert_ne!(v["state"], "running", "two verifications ran at once: {v}");
    }
}
