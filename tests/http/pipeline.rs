//! The one ingest pipeline, through every entry point: a PDF whose first page holds a
//! known sentence is found by a word of it through `GET /v1/search`, whichever way it
//! came in; an e-invoice uploaded raw gets its facts, the `invoice` class and a link to
//! its seller; a large PDF is extracted without the server holding it in memory.

use crate::common;

use std::time::{Duration, Instant};

use common::docs;
use common::server::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

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

/// POSTs `body` as the admin, with `content_type` when given.
async fn post_body(
    s: &Server,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut r = client()
        .post(s.url(path))
        .header("authorization", bearer(ADMIN));
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    r.body(body).send().await.unwrap()
}

async fn get(s: &Server, path: &str) -> Value {
    let r = client()
        .get(s.url(path))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// The ids a search finds, waiting for the index to catch up (it follows the journal in
/// the background; records written by another process reach it too).
async fn found(s: &Server, word: &str, want: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let v = get(s, &format!("/v1/search?q={word}")).await;
        let ids: Vec<String> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        if ids.iter().any(|i| i == want) {
            return ids;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{word}: record {want} not found ({v})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sentence(word: &str) -> String {
    format!("Sehr geehrte Damen und Herren, die {word} wurde heute geliefert.")
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A MIME message carrying `pdf` as an attachment.
fn email_with(pdf: &[u8], message_id: &str) -> Vec<u8> {
    format!(
        "From: einkauf@lieferant.example\r\nTo: lager@firma.example\r\n\
Subject: Lieferschein\r\nMessage-ID: <{message_id}>\r\nDate: Mon, 4 Mar 2024 10:00:00 +0100\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei der Lieferschein.\r\n\
--b1\r\nContent-Type: application/pdf; name=\"lieferschein.pdf\"\r\n\
Content-Disposition: attachment; filename=\"lieferschein.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        docs::base64(pdf)
    )
    .into_bytes()
}

#[tokio::test]
async fn a_pdf_is_searchable_whichever_way_it_came_in() {
    let s = Server::start(&[]);

    // Raw upload: the body is the PDF.
    let pdf = docs::pdf(&[&sentence("Zahnradlieferung")], None);
    let r = post_body(
        &s,
        "/v1/records?filename=rechnung.pdf",
        Some("application/pdf"),
        pdf,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let raw = id_of(&r.json().await.unwrap());

    // Multipart: metadata, then the file.
    let pdf = docs::pdf(&[&sentence("Kugellagerlieferung")], None);
    let form = reqwest::multipart::Form::new()
        .text("metadata", json!({"title": "Lieferschein"}).to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(pdf)
                .file_name("lieferschein.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let r = client()
        .post(s.url("/v1/records"))
        .header("authorization", bearer(ADMIN))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let multipart = id_of(&r.json().await.unwrap());

    // A new content version of a text record: the new PDF's words are found.
    let r = post_body(&s, "/v1/records?media_type=text/plain", None, "Entwurf").await;
    let revised = id_of(&r.json().await.unwrap());
    let pdf = docs::pdf(&[&sentence("Kettenradlieferung")], None);
    let r = client()
        .post(s.url(&format!(
            "/v1/records/{revised}/revisions?filename=final.pdf&reason=final"
        )))
        .header("authorization", bearer(ADMIN))
        .header("content-type", "application/pdf")
        .body(pdf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // An empty body is no content version (as no upload is a record): refused, and the
    // record stays at the PDF.
    let r = client()
        .post(s.url(&format!("/v1/records/{revised}/revisions")))
        .header("authorization", bearer(ADMIN))
        .header("content-type", "application/octet-stream")
        .body(Vec::<u8>::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["field"], "body", "{problem}");
    let r = client()
        .get(s.url(&format!("/v1/records/{revised}")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown["rev"], 2, "{shown}");

    // An email's attachment.
    let pdf = docs::pdf(&[&sentence("Dichtringlieferung")], None);
    let r = post_body(
        &s,
        "/v1/emails",
        None,
        email_with(&pdf, "p1@lieferant.example"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mail: Value = r.json().await.unwrap();
    let attachment = mail["attachments"][0].as_str().unwrap().to_string();

    // An import (a zip through the API).
    let pdf = docs::pdf(&[&sentence("Hydraulikpumpenlieferung")], None);
    let r = post_body(
        &s,
        "/v1/imports",
        None,
        docs::zip(&[("scans/pumpe.pdf", pdf.clone())]),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job = r.headers()["location"].to_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let v = get(&s, &job).await;
        if v["state"] == "done" {
            assert_eq!(v["summary"]["archived"], 1, "{v}");
            assert_eq!(v["summary"]["warnings"], json!([]), "{v}");
            break;
        }
        assert!(v["state"] != "error", "{v}");
        assert!(started.elapsed() < Duration::from_secs(30), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let imported = common::sha256_hex(&pdf);

    // `akte archive`, a process of its own beside the server.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("angebot.pdf");
    std::fs::write(&file, docs::pdf(&[&sentence("Förderbandlieferung")], None)).unwrap();
    let out = cli(&s.data, &["--json", "archive", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let cli_id = id_of(&serde_json::from_slice(&out.stdout).unwrap());

    assert_eq!(found(&s, "Zahnradlieferung", &raw).await, vec![raw.clone()]);
    assert_eq!(
        found(&s, "Kugellagerlieferung", &multipart).await,
        vec![multipart.clone()]
    );
    found(&s, "Kettenradlieferung", &revised).await;
    found(&s, "Dichtringlieferung", &attachment).await;
    found(&s, "F%C3%B6rderbandlieferung", &cli_id).await;
    // The imported record, found by its words (its id is only known by its hash).
    let started = Instant::now();
    loop {
        let v = get(&s, "/v1/search?q=Hydraulikpumpenlieferung").await;
        if let Some(h) = v["hits"].as_array().unwrap().first() {
            let r = get(&s, &format!("/v1/records/{}", h["id"].as_str().unwrap())).await;
            assert_eq!(r["content"]["sha256"], imported.as_str());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old version's words are gone with it: the record shows the new text.
    let r = get(&s, &format!("/v1/records/{revised}")).await;
    assert_eq!(r["content"]["version"], 2);
    assert_eq!(r["content"]["media_type"], "application/pdf");
}

#[tokio::test]
async fn an_e_invoice_uploaded_raw_gets_its_facts_class_and_seller() {
    let s = Server::start(&[]);
    let seller = post_json(
        &s,
        "/v1/parties",
        json!({"kind": "organisation", "name": "Zulieferer KG", "vat_id": "DE123456789",
               "roles": [{"role": "supplier", "number": "L-7001"}]}),
    )
    .await;
    let seller = id_of(&seller);
    let xml = docs::ubl_invoice(
        "RE-2024-0815",
        "Zulieferer KG",
        "Kunde GmbH",
        "100.00",
        "119.00",
    );
    let r = post_body(
        &s,
        "/v1/records?filename=RE-2024-0815.xml",
        Some("application/xml"),
        xml,
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["class"], "invoice", "{a}");
    assert!(
        a["auto_links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["party"] == seller.as_str() && l["role"] == "sender"),
        "{a}"
    );
    let r = get(&s, &format!("/v1/records/{}", id_of(&a))).await;
    assert_eq!(r["extra"]["einvoice"], "UBL", "{r}");
    assert_eq!(r["extra"]["invoice_number"], "RE-2024-0815", "{r}");
    assert_eq!(r["extra"]["gross_total"], "119.00", "{r}");
    assert_eq!(r["document_date"], "2024-03-15", "{r}");
    // Invoices are kept eight years (§ 147 AO since BEG IV) from the end of the
    // invoice's year: the date came from the invoice.
    assert_eq!(r["retention"]["retain_until"], "2032-12-31", "{r}");
    let link = r["parties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["party"] == seller.as_str())
        .cloned()
        .unwrap();
    assert!(
        link["reason"]
            .as_str()
            .unwrap()
            .contains("seller VAT ID DE123456789"),
        "{link}"
    );
    assert_eq!(
        r["parties"].as_array().unwrap().len(),
        1,
        "the seller once, as sender: {r}"
    );
    // An explicit class still wins over the rules.
    let xml = docs::ubl_invoice(
        "RE-2024-0816",
        "Zulieferer KG",
        "Kunde GmbH",
        "1.00",
        "1.19",
    );
    let r = post_body(
        &s,
        "/v1/records?class=business-letter",
        Some("application/xml"),
        xml,
    )
    .await;
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["class"], "business-letter", "{a}");
}

#[tokio::test]
async fn the_same_upload_twice_is_two_records_and_a_note_is_searchable() {
    let s = Server::start(&[]);
    let pdf = docs::pdf(&[&sentence("Zwillingslieferung")], None);
    let mut ids = vec![];
    for _ in 0..2 {
        let r = post_body(&s, "/v1/records", Some("application/pdf"), pdf.clone()).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        ids.push((id_of(&v), v["new_blob"].as_bool().unwrap()));
    }
    assert_ne!(ids[0].0, ids[1].0, "each upload is an act of its own");
    assert_eq!((ids[0].1, ids[1].1), (true, false), "one blob shared");

    let p = post_json(
        &s,
        "/v1/parties",
        json!({"kind": "person", "name": "Erika Muster"}),
    )
    .await;
    let note = post_json(
        &s,
        &format!("/v1/parties/{}/notes", id_of(&p)),
        json!({"text": "Rückruf wegen Ersatzteilbestellung vereinbart", "duration": "5m"}),
    )
    .await;
    let note = id_of(&note);
    found(&s, "Ersatzteilbestellung", &note).await;
    let r = get(&s, &format!("/v1/records/{note}")).await;
    assert_eq!(r["class"], "phone-note");
    assert_eq!(r["extra"]["duration"], "5m");
}

/// A 200 MB PDF through `POST /v1/records`: archived, its first page's text extracted
/// and found, and the server's peak memory stays far below the file's size (the upload
/// is spooled to disk and streamed to the blob and to the extraction worker).
#[tokio::test]
async fn a_200_mb_pdf_is_archived_and_extracted_in_bounded_memory() {
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gross.pdf");
    let pdf = docs::pdf_padded(&[&sentence("Großauftragsbestätigung")], None, 200_000_000);
    let size = pdf.len() as u64;
    std::fs::write(&path, &pdf).unwrap();
    drop(pdf);
    let before = s.peak_rss();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let started = Instant::now();
    let r = client()
        .post(s.url("/v1/records?filename=gross.pdf"))
        .header("authorization", bearer(ADMIN))
        .header("content-type", "application/pdf")
        .header("content-length", size)
        .body(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::new(file),
        ))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::CREATED);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["size"], size);
    assert!(a.get("extraction").is_none(), "{a}");
    let id = id_of(&a);
    found(&s, "Gro%C3%9Fauftragsbest%C3%A4tigung", &id).await;
    let peak = s.peak_rss();
    common::report(&format!(
        "200 MB PDF upload: {size} bytes archived and extracted in {:.1} s; server peak RSS \
         {} MB (before the upload {} MB)",
        took.as_secs_f64(),
        peak >> 20,
        before >> 20
    ));
    assert!(peak > 0, "the server's VmHWM was read");
    assert!(peak < 300 << 20, "peak RSS {} MB", peak >> 20);
}

/// Whether OCR can run here (`.ci/deps` installs it); says why not when it cannot.
fn ocr_tools() -> bool {
    let has = |tool: &str, arg: &str| {
        std::process::Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
    };
    let ok = has("tesseract", "--version") && has("pdftoppm", "-v");
    if !ok {
        common::report(
            "skipped scans_are_read_by_ocr: tesseract or pdftoppm missing (`.ci/deps` installs \
             them); without_tesseract_a_scan_is_archived_and_says_why still runs",
        );
    }
    ok
}

/// Without tesseract (a PATH without it), a scan is archived all the same, and says
/// why it has no text.
#[tokio::test]
async fn without_tesseract_a_scan_is_archived_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_env(&dir.path().join("data"), &[], &[("PATH", "/nonexistent")]);
    // The smallest PNG header: an image only OCR could read.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let r = post_body(&s, "/v1/records?filename=scan.png", Some("image/png"), png).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let a: Value = r.json().await.unwrap();
    let v = get(&s, &format!("/v1/records/{}", id_of(&a))).await;
    assert!(
        v["extra"]["extraction"]
            .as_str()
            .unwrap()
            .contains("OCR unavailable"),
        "{v}"
    );
}

/// A scan (an image, and a PDF that is only an image) is read by OCR when tesseract is
/// installed (`.ci/deps`). The page is rendered here from a PDF with a known German
/// sentence (pdftoppm), so nothing is committed.
#[tokio::test]
async fn scans_are_read_by_ocr() {
    if !ocr_tools() {
        return;
    }
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.pdf");
    std::fs::write(
        &page,
        docs::pdf(
            &[
                "Sehr geehrte Frau Schneider,",
                "die Ersatzteillieferung erfolgt am Montag.",
            ],
            None,
        ),
    )
    .unwrap();
    let render = |format: &str| {
        let out = dir.path().join(format!("scan-{format}"));
        let st = std::process::Command::new("pdftoppm")
            .args(["-r", "200", "-gray", "-singlefile", &format!("-{format}")])
            .arg(&page)
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        let ext = if format == "jpeg" { "jpg" } else { format };
        std::fs::read(out.with_extension(ext)).unwrap()
    };
    let png = render("png");
    let scanned_pdf = docs::pdf_of_jpeg(&render("jpeg"));
    let mut ids = vec![];
    let started = Instant::now();
    for (name, media, bytes) in [
        ("scan.png", "image/png", png),
        ("scan.pdf", "application/pdf", scanned_pdf),
    ] {
        let r = post_body(
            &s,
            &format!("/v1/records?filename={name}"),
            Some(media),
            bytes,
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let a: Value = r.json().await.unwrap();
        assert!(a.get("extraction").is_none(), "{name}: {a}");
        let v = get(&s, &format!("/v1/records/{}", id_of(&a))).await;
        assert!(v["extra"].get("extraction").is_none(), "{name}: {v}");
        ids.push(id_of(&a));
    }
    common::report(&format!(
        "OCR: a PNG scan and a scanned PDF archived with their text in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    // Both scans are found by words OCR read.
    for id in &ids {
        found(&s, "Ersatzteillieferung", id).await;
        found(&s, "Schneider", id).await;
    }
}

/// OCR runs under the extraction limits: a tesseract that hangs is killed at the
/// deadline (the tool's own process, not only a wrapper), and it ran with the memory cap.
/// A stand-in `tesseract` on the PATH becomes `sleep 600.<its RLIMIT_AS in KiB>` (it
/// may write nothing outside its working directory: Landlock), which the test finds in
/// /proc while the upload runs.
#[tokio::test]
async fn a_hanging_ocr_is_killed_at_its_deadline_and_ran_under_the_memory_cap() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("tesseract");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'tesseract 5 (stand-in)'; exit 0; }\n\
         exec sleep \"600.$(ulimit -v)\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let s = Server::start_with_env(
        &dir.path().join("data"),
        &[],
        &[
            ("PATH", path.as_str()),
            ("AKTE_EXTRACT_TIMEOUT_SECS", "1"),
            ("AKTE_EXTRACT_MEMORY_MB", "512"),
        ],
    );
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let started = Instant::now();
    let watch = tokio::spawn(async {
        for _ in 0..400 {
            if let Some(found) = standin() {
                return Some(found);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    });
    let r = post_body(&s, "/v1/records?filename=scan.png", Some("image/png"), png).await;
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::CREATED, "archived all the same");
    let a: Value = r.json().await.unwrap();
    assert!(
        a["extraction"].as_str().unwrap().contains("timed out"),
        "{a}"
    );
    // The deadline of an item's OCR is four times the extraction timeout.
    assert!(took < Duration::from_secs(30), "{took:?}");
    let (pid, limit) = watch.await.unwrap().expect("the stand-in tesseract ran");
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "the hanging tesseract ({pid}) was killed");
    assert_eq!(limit, (512 * 1024).to_string(), "RLIMIT_AS in KiB");
}

/// The stand-in tesseract's pid and the limit in its command line, if it runs now.
fn standin() -> Option<(u32, String)> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("sleep"))
            && let Some(limit) = args.get(1).and_then(|a| a.strip_prefix("600."))
        {
            return Some((pid, limit.to_string()));
        }
    }
    None
}

/// What a killed server left in its spool (a half-received upload, an import job's
/// files) is removed at the next start; nothing else there is touched.
#[tokio::test]
async fn the_next_start_removes_abandoned_uploads_and_import_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let spool = data.join("spool");
    std::fs::create_dir_all(spool.join("akte-import-abc123")).unwrap();
    std::fs::write(spool.join("akte-import-abc123/upload.mbox"), b"From x\n").unwrap();
    std::fs::write(spool.join("akte-upload-def456"), b"half an upload").unwrap();
    std::fs::write(spool.join("keep.txt"), b"not ours").unwrap();
    let s = Server::start_with_env(&data, &[], &[]);
    let r = client().get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!spool.join("akte-import-abc123").exists());
    assert!(!spool.join("akte-upload-def456").exists());
    assert!(spool.join("keep.txt").exists());
}
