//! Error answers and limits: problem+json for every error status, upload, rate and header limits.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::server::*;
use crate::common::*;
use crate::{problem, upload};

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
    // Each `verify` journals itself (after counting): one entry more, nothing else.
    assert_eq!(before["records"], after["records"], "nothing was stored");
    assert_eq!(
        before["revisions"], after["revisions"],
        "nothing was stored"
    );
    assert_eq!(
        after["journal_entries"].as_u64().unwrap(),
        before["journal_entries"].as_u64().unwrap() + 1,
        "only the first verify's own entry"
    );
    assert_eq!(after["blobs"], 0);
}

#[tokio::test]
async fn too_many_requests_get_429_with_retry_after() {
    let s = Server::start(&["--rate", "2"]);
    let c = client();
    let mut limited = None;
    for _ in 0..20 {
        let r = c
            .get(s.url("/v1/parties"))
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
