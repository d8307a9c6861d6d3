//! Parties and their file over HTTP and through the CLI against the same store.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::server::*;

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
