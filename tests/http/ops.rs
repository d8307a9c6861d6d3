//! Operations: shutdown during uploads and reads, the verify job, journal paging, metrics, the OpenAPI document.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::server::*;
use crate::common::*;
use crate::{download, new_token, upload};

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

/// Load balancers and Kubernetes probe `/healthz` and `/readyz` without a token.
#[tokio::test]
async fn probes_answer_without_a_token() {
    let s = Server::start(&[]);
    for path in ["/healthz", "/readyz"] {
        let r = client().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["status"] == "ok" || v["status"] == "ready", "{v}");
    }
    // Asked often, /readyz costs the store one look a second.
    for _ in 0..50 {
        let r = client().get(s.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}
