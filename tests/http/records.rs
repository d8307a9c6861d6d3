//! Records over HTTP: raw and multipart uploads, byte-exact and streamed downloads, ranges, conditional requests and revisions.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::server::*;
use crate::common::*;
use crate::{download, problem, upload};

#[tokio::test]
async fn raw_and_multipart_uploads_download_byte_exact() {
    let s = Server::start(&[]);
    // An empty upload is refused (issue #20: archived, a mistake would stay for years).
    let r = upload(&s, ADMIN, Vec::new(), "?class=invoice&filename=RE-0.pdf").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for (len, seed) in [(1usize, 2u64), (300_000, 3)] {
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
