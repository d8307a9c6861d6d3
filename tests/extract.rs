//! Documents through `akte import` (the real binary, extraction in worker processes):
//! text of every supported kind, e-invoices, classification rules, real third-party
//! files found at run time, and hostile inputs.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use akte::archive::Archive;
use akte::clock::SystemClock;
use akte::record::RecordRevision;
use akte::service::Services;
use akte::store::Store;
use common::docs;
use futures::TryStreamExt;

fn import(data: &Path, args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_akte"));
    cmd.arg("--data")
        .arg(data)
        .arg("--json")
        .arg("import")
        .args(args)
        .env_remove("AKTE_STORE")
        .env_remove("AKTE_RULES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    // JSON Lines: a line per item, then the summary.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "no summary: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success(),
        "import failed: {v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

async fn open(data: &Path) -> Services {
    let s = Services::new(Archive::new(
        Store::open(data.to_str().unwrap()).unwrap(),
        Arc::new(SystemClock),
    ));
    s.load().await.unwrap();
    s
}

/// The record made from `bytes` (found by their SHA-256), with its content checked
/// byte-exact.
async fn record_of(s: &Services, bytes: &[u8]) -> RecordRevision {
    let sha = akte::store::codec::sha256_hex(bytes);
    let found = s.catalog.records_with_sha(&sha).await;
    assert_eq!(found.len(), 1, "one record for {sha}");
    let r = s.archive.latest(&found[0].id).await.unwrap();
    let (_, stream) = s.archive.open_content(&r.id, None, None).await.unwrap();
    let back: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(back.concat(), bytes, "archived byte-exact");
    r
}

fn text(r: &RecordRevision) -> &str {
    r.extra.get("text").map(String::as_str).unwrap_or("")
}

#[tokio::test]
async fn documents_of_every_kind_are_archived_with_text_facts_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = (dir.path().join("src"), dir.path().join("data"));
    std::fs::create_dir_all(&src).unwrap();
    let pdf = docs::pdf(
        &[
            "Sehr geehrter Herr Müller,",
            "anbei das Protokoll der Wartung.",
        ],
        None,
    );
    let docx = docs::docx(&["Angebot 2024-17", "Pumpenwartung für die Müller GmbH"]);
    let odt = docs::odt(&["Besprechung am Montag", "Straße und Größe"]);
    let rtf =
        br"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 Mahnung: Frau K\'f6nig\par bitte zahlen.}".to_vec();
    let latin1 = b"Telefonnotiz: R\xfcckruf bei Herrn Gr\xf6\xdfer erbeten".to_vec();
    let ubl = docs::ubl_invoice(
        "RE-2024-0815",
        "Lieferant AG",
        "Kunde GmbH",
        "100.00",
        "119.00",
    );
    let cii = docs::cii_invoice("ZF-4711", "Zulieferer KG", "Kunde GmbH", "200.00", "238.00");
    let zugferd = docs::pdf(&["Rechnung ZF-4711"], Some(("factur-x.xml", &cii)));
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let bin = b"\x00\x01\x02 no extractor for this".to_vec();
    for (name, bytes) in [
        ("wartung.pdf", &pdf),
        ("angebot.docx", &docx),
        ("besprechung.odt", &odt),
        ("mahnung.rtf", &rtf),
        ("notiz.txt", &latin1),
        ("xrechnung.xml", &ubl),
        ("zugferd.pdf", &zugferd),
        ("scan.png", &png),
        ("daten.bin", &bin),
    ] {
        std::fs::write(src.join(name), bytes).unwrap();
    }
    let v = import(&data, &[src.to_str().unwrap()], &[]);
    assert_eq!(v["failed"], 0, "{v}");
    // 9 files, plus the XML inside the ZUGFeRD PDF.
    assert_eq!(v["archived"], 9, "{v}");

    let s = open(&data).await;
    let r = record_of(&s, &pdf).await;
    assert!(text(&r).contains("Müller"), "PDF text: {:?}", text(&r));
    assert!(text(&r).contains("Protokoll der Wartung"));
    let r = record_of(&s, &docx).await;
    assert!(
        text(&r).contains("Pumpenwartung für die Müller GmbH"),
        "{:?}",
        text(&r)
    );
    assert_eq!(r.class, "offer", "file name rule");
    assert_eq!(r.extra["class_rule"], "offer");
    let r = record_of(&s, &odt).await;
    assert!(text(&r).contains("Straße und Größe"), "{:?}", text(&r));
    let r = record_of(&s, &rtf).await;
    assert!(text(&r).contains("Mahnung: Frau König"), "{:?}", text(&r));
    assert!(!text(&r).contains("Arial"));
    let r = record_of(&s, &latin1).await;
    let t = akte::extract::record_text(&s.archive, &r).await.unwrap();
    assert!(t.contains("Rückruf bei Herrn Größer"), "{t:?}");

    // XRechnung (UBL): the XML is the original; its facts are metadata; class invoice.
    let r = record_of(&s, &ubl).await;
    assert_eq!(r.class, "invoice");
    assert_eq!(r.extra["class_rule"], "e-invoice");
    assert_eq!(r.extra["einvoice"], "UBL");
    assert_eq!(r.extra["invoice_number"], "RE-2024-0815");
    assert_eq!(r.extra["invoice_date"], "2024-03-15");
    assert_eq!(r.extra["due_date"], "2024-04-14");
    assert_eq!(r.extra["seller"], "Lieferant AG");
    assert_eq!(r.extra["buyer"], "Kunde GmbH");
    assert_eq!(r.extra["seller_vat"], "DE123456789");
    assert_eq!(r.extra["buyer_vat"], "DE987654321");
    assert_eq!(r.extra["net_total"], "100.00");
    assert_eq!(r.extra["gross_total"], "119.00");
    assert_eq!(r.extra["currency"], "EUR");

    // ZUGFeRD: the PDF carries the facts, and its XML is kept as an original of its own.
    let r = record_of(&s, &zugferd).await;
    assert_eq!(r.class, "invoice");
    assert_eq!(r.extra["einvoice"], "CII");
    assert_eq!(r.extra["invoice_number"], "ZF-4711");
    assert_eq!(r.extra["invoice_date"], "2024-03-15");
    assert_eq!(r.extra["gross_total"], "238.00");
    let xml = record_of(&s, &cii).await;
    assert_eq!(xml.extra["parent"], r.id);
    assert_eq!(xml.extra["invoice_number"], "ZF-4711");
    assert_eq!(xml.content.file_name.as_deref(), Some("factur-x.xml"));

    // No text, but archived: a scan (only a PNG header: without tesseract "OCR
    // unavailable", with it tesseract's refusal; real scans: tests/http/pipeline.rs), a type
    // without an extractor.
    let r = record_of(&s, &png).await;
    assert!(
        r.extra["extraction"].starts_with("no text (a scan: OCR unavailable")
            || r.extra["extraction"].starts_with("extraction failed: OCR: tesseract failed"),
        "{:?}",
        r.extra
    );
    let r = record_of(&s, &bin).await;
    assert!(
        r.extra["extraction"].starts_with("no text"),
        "{:?}",
        r.extra
    );

    // Running it again archives nothing.
    let again = import(&data, &[src.to_str().unwrap()], &[]);
    assert_eq!(again["archived"], 0, "{again}");
    assert_eq!(again["duplicates"], 9, "{again}");
}

#[tokio::test]
async fn email_attachments_are_extracted_and_classified_by_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = (dir.path().join("src"), dir.path().join("data"));
    std::fs::create_dir_all(&src).unwrap();
    let ubl = docs::ubl_invoice("RE-9", "Lieferant AG", "Kunde GmbH", "10.00", "11.90");
    let b64 = docs::base64(&ubl);
    let mail = format!(
        "From: Buchhaltung <rechnung@lieferant.example>\r\nTo: einkauf@akte.example\r\n\
Subject: Ihre Bestellung vom Montag\r\nMessage-ID: <r9@lieferant.example>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nAnbei die elektronische Rechnung.\r\n--b\r\n\
Content-Type: application/xml; name=\"re9.xml\"\r\nContent-Disposition: attachment; \
filename=\"re9.xml\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    std::fs::write(src.join("r9.eml"), &mail).unwrap();
    // A company rule file: the sender's domain decides the class of the email.
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"lieferant-post\"\nsender_domain = \"lieferant.example\"\nclass = \"business-letter\"\n\n\
[[rule]]\nname = \"e-invoice\"\neinvoice = true\nclass = \"invoice\"\n",
    )
    .unwrap();
    let v = import(
        &data,
        &["--rules", rules.to_str().unwrap(), src.to_str().unwrap()],
        &[],
    );
    assert_eq!(v["archived"], 1, "{v}");
    let s = open(&data).await;
    let email = record_of(&s, mail.as_bytes()).await;
    assert_eq!(email.class, "business-letter");
    assert_eq!(email.extra["class_rule"], "lieferant-post");
    let att = record_of(&s, &ubl).await;
    assert_eq!(att.extra["parent"], email.id);
    assert_eq!(
        att.class, "invoice",
        "the attachment is classified on its own"
    );
    assert_eq!(att.extra["class_rule"], "e-invoice");
    assert_eq!(att.extra["invoice_number"], "RE-9");

    // A rule naming a class the catalogue lacks is refused with a clear message.
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"x\"\nkeywords = [\"a\"]\nclass = \"nope\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(&data)
        .args([
            "import",
            "--rules",
            rules.to_str().unwrap(),
            src.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not in the retention catalogue"), "{err}");
}

#[tokio::test]
async fn hostile_inputs_are_archived_with_a_reason_and_the_import_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = (dir.path().join("src"), dir.path().join("data"));
    std::fs::create_dir_all(&src).unwrap();
    // A zip bomb inside a DOCX: 512 MiB of text from a few hundred KiB.
    let bomb = docs::docx_bomb(512 << 20);
    assert!(bomb.len() < 4 << 20, "{} bytes", bomb.len());
    // Billion laughs.
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<lolz>&lol9;</lolz>"#
        .to_vec();
    // A PDF whose page tree points at itself (same length: the xref stays right).
    let good = docs::pdf(&["Schleife"], None);
    let at = good
        .windows(13)
        .position(|w| w == b"/Kids [3 0 R]")
        .unwrap();
    let mut looped = good.clone();
    looped[at..at + 13].copy_from_slice(b"/Kids [2 0 R]");
    assert_eq!(looped.len(), good.len());
    // Not a PDF at all, though it says so.
    let broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R".to_vec();
    let docx_garbage = b"PK\x03\x04 this is not a zip".to_vec();
    // Deeply nested MIME.
    let mut deep = String::from("From: a@b.example\r\nSubject: deep\r\n");
    for i in 0..1000 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    deep.push_str("Content-Type: text/plain\r\n\r\ninnen\r\n");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("bomb.docx", bomb.clone()),
        ("laughs.xml", laughs.clone()),
        ("loop.pdf", looped.clone()),
        ("broken.pdf", broken.clone()),
        ("garbage.docx", docx_garbage.clone()),
        ("deep.eml", deep.clone().into_bytes()),
        ("empty.pdf", vec![]),
        (
            "..\u{1}evil\u{7}name.txt",
            b"control characters in the name".to_vec(),
        ),
        (
            "after.txt",
            b"the import went on after all of them".to_vec(),
        ),
    ];
    for (name, bytes) in &files {
        std::fs::write(src.join(name), bytes).unwrap();
    }
    let v = import(
        &data,
        &[src.to_str().unwrap()],
        &[
            ("AKTE_EXTRACT_MEMORY_MB", "512"),
            ("AKTE_EXTRACT_TIMEOUT_SECS", "60"),
        ],
    );
    assert_eq!(
        v["archived"],
        files.len() as u64,
        "every file archived: {v}"
    );
    let s = open(&data).await;
    for (name, bytes) in &files {
        let r = record_of(&s, bytes).await;
        assert!(
            !r.content
                .file_name
                .as_deref()
                .unwrap_or("")
                .contains(['/', '\u{1}', '\u{7}']),
            "{name}: file name {:?}",
            r.content.file_name
        );
        eprintln!(
            "{name}: {}",
            r.extra
                .get("extraction")
                .cloned()
                .unwrap_or_else(|| format!("{} bytes of text", text(&r).len()))
        );
    }
    let r = record_of(&s, &laughs).await;
    assert!(!text(&r).contains("lollol"), "entities are never expanded");
    let r = record_of(&s, &broken).await;
    assert!(
        r.extra["extraction"].starts_with("extraction failed")
            || r.extra["extraction"].starts_with("no text"),
        "{:?}",
        r.extra
    );
    let r = record_of(&s, &docx_garbage).await;
    assert!(
        r.extra["extraction"].starts_with("extraction failed"),
        "{:?}",
        r.extra
    );
    let r = record_of(&s, &bomb).await;
    assert!(
        text(&r).len() <= akte::extract::document::MAX_TEXT,
        "bounded text from the bomb"
    );
    // Every hostile file is archived: a warning each, no failure.
    assert_eq!(v["failed"], 0, "every original was archived: {v}");
    let warnings = v["warnings"].as_array().unwrap();
    let named: Vec<&str> = warnings.iter().filter_map(|f| f["item"].as_str()).collect();
    assert!(
        named.iter().any(|n| n.ends_with("garbage.docx")),
        "{named:?}"
    );
    assert!(named.iter().any(|n| n.ends_with("bomb.docx")), "{named:?}");

    // A worker that exceeds its memory limit dies; the item says so, the original is
    // archived, and the import goes on with a fresh worker.
    let data2 = dir.path().join("data2");
    let src2 = dir.path().join("src2");
    std::fs::create_dir_all(&src2).unwrap();
    let big = docs::pdf(&["x".repeat(200).as_str(); 300], None);
    std::fs::write(src2.join("a.pdf"), &big).unwrap();
    std::fs::write(src2.join("b.txt"), b"after the dead worker").unwrap();
    let v = import(
        &data2,
        &[src2.to_str().unwrap()],
        &[("AKTE_EXTRACT_MEMORY_MB", "64")],
    );
    assert_eq!(v["archived"], 2, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    let f = &v["warnings"][0];
    assert!(
        f["reason"]
            .as_str()
            .unwrap()
            .contains("extractor process died"),
        "{v}"
    );
}

/// PDFs and OpenDocument files that installed packages ship, found at run time.
fn shipped_documents() -> Vec<(PathBuf, &'static str)> {
    let mut found = Vec::new();
    for (path, expect) in [
        (
            "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
            "MIME",
        ),
        ("/usr/share/doc/libtasn1-doc/libtasn1.pdf", "ASN.1"),
    ] {
        if Path::new(path).exists() {
            found.push((PathBuf::from(path), expect));
        }
    }
    if let Ok(out) = std::process::Command::new("python3")
        .args([
            "-c",
            "import docutils,os;print(os.path.dirname(docutils.__file__))",
        ])
        .output()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            .join("writers/odf_odt/styles.odt");
        if p.exists() {
            found.push((p, ""));
        }
    }
    found
}

#[tokio::test]
async fn real_documents_from_installed_packages() {
    let files = shipped_documents();
    if files.is_empty() {
        eprintln!("SKIPPED: no PDF or ODT shipped by installed packages was found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = (dir.path().join("src"), dir.path().join("data"));
    std::fs::create_dir_all(&src).unwrap();
    for (i, (p, _)) in files.iter().enumerate() {
        std::fs::copy(
            p,
            src.join(format!("{i}-{}", p.file_name().unwrap().to_string_lossy())),
        )
        .unwrap();
    }
    let v = import(&data, &[src.to_str().unwrap()], &[]);
    assert_eq!(v["archived"], files.len() as u64, "{v}");
    let s = open(&data).await;
    for (p, expect) in &files {
        let bytes = std::fs::read(p).unwrap();
        let r = record_of(&s, &bytes).await;
        eprintln!(
            "{}: {} bytes of text, {:?}",
            p.display(),
            text(&r).len(),
            r.extra.get("extraction")
        );
        if !expect.is_empty() {
            assert!(
                text(&r).contains(expect),
                "{}: {:?}",
                p.display(),
                &text(&r)[..text(&r).len().min(300)]
            );
        }
    }
}

/// Polls an import job until it is `done` or `error` (20 s at most).
async fn finished_job(s: &common::server::Server, loc: &str) -> serde_json::Value {
    use common::server::{ADMIN, bearer, client};
    for _ in 0..200 {
        let job: serde_json::Value = client()
            .get(s.url(loc))
            .header("authorization", bearer(ADMIN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["state"] == "done" || job["state"] == "error" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("import job {loc} did not finish");
}

#[tokio::test]
async fn the_server_imports_an_uploaded_zip_as_a_job() {
    use common::server::{ADMIN, Server, bearer, client};
    let s = Server::start(&[]);
    let eml = b"From: kunde@example.com\r\nSubject: Reklamation Pumpe\r\nMessage-ID: <z1@example.com>\r\n\r\nDie Pumpe ist defekt.\r\n".to_vec();
    let pdf = docs::pdf(&["Lieferschein 77"], None);
    let zip = docs::zip(&[
        ("Mail/cur/1.host:2,S", eml.clone()),
        ("docs/lieferschein.pdf", pdf.clone()),
        ("../../escape.txt", b"stays inside".to_vec()),
    ]);
    let r = client()
        .post(s.url("/v1/imports"))
        .header("authorization", bearer(ADMIN))
        .body(zip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let job = finished_job(&s, &loc).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["format"], "zip");
    assert_eq!(job["summary"]["archived"], 3, "{job}");
    assert_eq!(job["summary"]["failed"], 0, "{job}");
    assert_eq!(job["items"], 3, "{job}");

    // Neither an mbox nor a zip: 422 (the body is not what an import takes), problem+json.
    let r = client()
        .post(s.url("/v1/imports"))
        .header("authorization", bearer(ADMIN))
        .body("just text")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    // A zip bomb ends the job with an error; nothing of it is archived.
    let bomb = docs::zip(&[("big.txt", vec![b'0'; 8 << 20])]);
    let r = client()
        .post(s.url("/v1/imports"))
        .header("authorization", bearer(ADMIN))
        .body(bomb)
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let job = finished_job(&s, &loc).await;
    assert_eq!(job["state"], "error", "{job}");
    assert!(job["error"].as_str().unwrap().contains("zip bomb"), "{job}");
    assert_eq!(job["summary"]["archived"], 0);
}

/// A file over 8 MiB (the size held in memory) is extracted on the import path too: it
/// stays on disk and is streamed to the worker.
#[tokio::test]
async fn a_large_file_is_extracted_on_import() {
    let dir = tempfile::tempdir().unwrap();
    let (data, src) = (dir.path().join("data"), dir.path().join("src"));
    std::fs::create_dir_all(&src).unwrap();
    let big = docs::pdf_padded(&["Jahresabschluss der Großbaustelle Nord"], None, 12 << 20);
    assert!(big.len() > akte::store::blob::INLINE_LIMIT);
    std::fs::write(src.join("abschluss.pdf"), &big).unwrap();
    let v = import(&data, &[src.to_str().unwrap()], &[]);
    assert_eq!(
        (v["archived"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
    let s = open(&data).await;
    let r = record_of(&s, &big).await;
    assert!(text(&r).contains("Großbaustelle"), "{:?}", r.extra);
}

/// A zip of a hundred thousand and one empty entries is refused before anything is
/// unpacked: the cap counts entries, not only bytes (inodes and memory).
#[test]
fn a_zip_with_more_entries_than_the_cap_is_refused_before_unpacking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..=akte::ingest::zip::MAX_ENTRIES {
        z.start_file(format!("{i}.txt"), opts).unwrap();
    }
    z.finish().unwrap();
    let target = dir.path().join("out");
    std::fs::create_dir(&target).unwrap();
    let e = akte::ingest::zip::unzip(&path, &target, 1 << 30).unwrap_err();
    assert!(e.to_string().contains("entries"), "{e}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}
