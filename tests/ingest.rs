//! Ingest: real emails (Python's test corpus, found at run time), duplicates, mbox,
//! Maildir and directory import.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use akte::archive::Archive;
use akte::clock::SystemClock;
use akte::ingest::Ingest;
use akte::ingest::batch::IngestDefaults;
use akte::service::Services;
use akte::store::Store;
use futures::TryStreamExt;

async fn services() -> Ingest {
    let s = Services::new(Archive::new(
        Store::open("memory://").unwrap(),
        Arc::new(SystemClock),
    ));
    s.load().await.unwrap();
    Ingest::new(s)
}

/// Python's `test/test_email/data`, or `None` (with a visible notice) where absent.
fn python_email_samples() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import test,os;print(os.path.dirname(test.__file__))"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("test_email/data");
    if dir.join("msg_01.txt").exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: Python's email test corpus is not installed (python3 test package)");
        None
    }
}

async fn content(s: &Ingest, id: &str) -> Vec<u8> {
    let (_, stream) = s.svc.archive.open_content(id, None, None).await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test]
async fn python_sample_emails_are_archived_byte_exact_with_headers_and_attachments() {
    let Some(dir) = python_email_samples() else {
        return;
    };
    let s = services().await;
    let d = IngestDefaults::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("msg_"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "{} samples", files.len());
    let mut by_name = std::collections::HashMap::new();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let o = s.archive_email("t", raw.clone().into(), &d).await.unwrap();
        assert!(!o.duplicate || raw.is_empty(), "{}", f.display());
        // The original is kept byte-exact.
        assert_eq!(content(&s, &o.id).await, raw, "{}", f.display());
        by_name.insert(f.file_name().unwrap().to_string_lossy().to_string(), o);
    }
    let o = &by_name["msg_04.txt"];
    assert_eq!(o.subject.as_deref(), Some("a simple multipart"));
    assert_eq!(
        o.message_id.as_deref(),
        Some("15261.36209.358846.118674@anthem.python.org")
    );
    let rec = s.svc.archive.latest(&o.id).await.unwrap();
    assert_eq!(rec.class, "email");
    assert_eq!(rec.content.media_type, "message/rfc822");
    assert!(rec.extra["from"].contains('@'), "{:?}", rec.extra);
    // Attachments are records of their own, pointing to the email.
    let names: Vec<String> =
        futures::future::join_all(o.attachments.iter().map(|id| s.svc.archive.latest(id)))
            .await
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.extra["parent"], o.id);
                r.content.file_name.unwrap_or_default()
            })
            .collect();
    assert!(names.contains(&"msg.txt".to_string()), "{names:?}");
    let fish = &by_name["msg_07.txt"];
    let gif = s.svc.archive.latest(&fish.attachments[0]).await.unwrap();
    assert_eq!(gif.content.file_name.as_deref(), Some("dingusfish.gif"));
    assert_eq!(gif.content.media_type, "image/gif");
    assert!(content(&s, &gif.id).await.starts_with(b"GIF8"));
    let wibble = &by_name["msg_22.txt"];
    assert!(wibble.attachments.len() >= 2);
    // Same Message-ID, different bytes: both kept and marked related.
    let first = &by_name["msg_01.txt"];
    let third = &by_name["msg_03.txt"];
    assert!(third.related.contains(&first.id), "{:?}", third.related);
    let r3 = s.svc.archive.latest(&third.id).await.unwrap();
    assert!(r3.extra["related"].contains(&first.id));
    // The same bytes again: a duplicate, nothing written.
    let head = s.svc.archive.journal().head_seq().await.unwrap();
    let raw = std::fs::read(dir.join("msg_01.txt")).unwrap();
    let again = s.archive_email("t", raw.into(), &d).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(s.svc.archive.journal().head_seq().await.unwrap(), head);
    // The index reads the message's text, not its MIME source.
    let text = akte::extract::text_of(
        "message/rfc822",
        &std::fs::read(dir.join("msg_07.txt")).unwrap(),
    );
    assert!(text.contains("dingus"), "{text}");
    assert!(text.contains("dingusfish.gif"));
}

#[tokio::test]
async fn unparseable_messages_are_archived_with_the_reason() {
    let s = services().await;
    let raw = b"\x00\x01garbage without headers".to_vec();
    let o = s
        .archive_email("t", raw.clone().into(), &IngestDefaults::default())
        .await
        .unwrap();
    assert!(o.extraction_failed.is_some());
    assert_eq!(content(&s, &o.id).await, raw);
    let r = s.svc.archive.latest(&o.id).await.unwrap();
    assert!(
        r.extra["extraction"].starts_with("extraction failed"),
        "{:?}",
        r.extra
    );
}

fn mbox_of(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(b"From sender@example.com Thu Mar  6 10:00:00 2025\n");
        for line in m.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b"From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b"\n");
    }
    out
}

#[test]
fn import_walks_files_mbox_and_maildir_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("Mail/cur")).unwrap();
    std::fs::create_dir_all(src.join("Mail/new")).unwrap();
    let m1: &[u8] = b"From: a@example.com\nTo: b@example.com\nSubject: Angebot\nMessage-ID: <1@x>\n\nHallo,\nFrom here on we agree.\n";
    let m2: &[u8] = b"From: b@example.com\nTo: a@example.com\nSubject: Re: Angebot\nMessage-ID: <2@x>\nIn-Reply-To: <1@x>\n\nDanke.\n";
    let m3: &[u8] = b"From: c@example.com\nSubject: Rechnung\nMessage-ID: <3@x>\n\nAnbei.\n";
    std::fs::write(src.join("box.mbox"), mbox_of(&[m1, m2, m3])).unwrap();
    std::fs::write(src.join("Mail/cur/1700000000.1.host:2,S"), m1).unwrap(); // same as in the mbox
    std::fs::write(
        src.join("Mail/new/1700000001.2.host"),
        b"From: d@example.com\nSubject: Neu\n\nneu\n",
    )
    .unwrap();
    std::fs::write(src.join("brief.eml"), m3).unwrap(); // same as in the mbox
    std::fs::write(src.join("notiz.txt"), "Telefonnotiz: Rückruf erbeten").unwrap();
    std::fs::write(src.join("leer.bin"), b"").unwrap();
    std::fs::write(src.join("bad\u{7}name.txt"), "x").unwrap();

    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
            .arg("--data")
            .arg(&data)
            .arg("--json")
            .args(args)
            .env_remove("AKTE_STORE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // JSON Lines: an import writes a line per item, then its summary.
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        serde_json::from_str::<serde_json::Value>(stdout.lines().last().unwrap_or_default())
            .unwrap()
    };
    let src_s = src.to_str().unwrap();
    let dry = run(&["import", "--dry-run", src_s]);
    assert_eq!(dry["dry_run"], true);
    assert!(!data.join("journal").exists(), "a dry run writes nothing");

    let first = run(&["import", src_s]);
    // 3 mbox messages + 1 new Maildir message + notiz + leer + bad name; the Maildir copy
    // of m1 and brief.eml (= m3) are the same bytes as in the mbox.
    assert_eq!(first["archived"], 7, "{first}");
    assert_eq!(first["duplicates"], 2, "{first}");
    assert_eq!(first["failed"], 0, "{first}");
    for k in ["archived", "duplicates", "failed", "bytes", "seconds"] {
        assert!(first.get(k).is_some(), "summary lacks {k}");
    }
    // Again: nothing archived twice.
    let second = run(&["import", src_s]);
    assert_eq!(second["archived"], 0, "{second}");
    assert_eq!(second["duplicates"], 9, "{second}");

    // The mbox message kept its ">From" unquoted body line, byte-exact otherwise.
    let found = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(&data)
        .args(["--json", "search", "agree"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let id = v["hits"][0]["id"].as_str().unwrap().to_string();
    let cat = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(&data)
        .args(["cat", &id])
        .output()
        .unwrap();
    assert_eq!(cat.stdout, m1);
}

#[test]
fn a_group_commit_is_verified_revision_by_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (src, data) = (dir.path().join("src"), dir.path().join("data"));
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("{i}.txt")), format!("Notiz {i}")).unwrap();
    }
    let akte = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
            .arg("--data")
            .arg(&data)
            .arg("--json")
            .args(args)
            .env_remove("AKTE_STORE")
            .output()
            .unwrap()
    };
    let out = akte(&["import", src.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&akte(&["verify"]).stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["records"], 20, "{v}");
    assert_eq!(v["journal_entries"], 1, "one entry commits the batch: {v}");
    // Changing one revision of the batch is found, naming that revision.
    let rec = std::fs::read_dir(data.join("records"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rev = std::fs::read_dir(&rec)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&rev).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&rev, bytes).unwrap();
    let out = akte(&["verify"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = v["problems"].to_string();
    assert!(
        problems.contains(rec.file_name().unwrap().to_str().unwrap()),
        "{problems}"
    );
}

/// Ctrl-C stops an import after the batch in hand; `kill -9` leaves at most one batch
/// staged but uncommitted, which the next run records as a crash leftover by itself.
/// Either way, running the same import again finishes it without archiving anything
/// twice, and `verify` passes without a manual step.
#[test]
fn an_interrupted_import_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("big.mbox");
    let n = 6000;
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            format!(
                "From: k{i}@example.com\nSubject: Nachricht {i}\nMessage-ID: <m{i}@x>\n\n{}\n",
                "Text der Nachricht. ".repeat(40)
            )
            .into_bytes()
        })
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    std::fs::write(&mbox, mbox_of(&refs)).unwrap();
    for signal in ["-INT", "-KILL"] {
        let data = dir.path().join(format!("data{signal}"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
            .arg("--data")
            .arg(&data)
            .args(["--json", "import"])
            .arg(&mbox)
            .env_remove("AKTE_STORE")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Interrupt once the first batch is committed.
        let started = std::time::Instant::now();
        while std::fs::read_dir(data.join("journal")).map_or(0, |d| d.count()) == 0 {
            assert!(started.elapsed().as_secs() < 60, "no batch committed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::process::Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let akte = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
                .arg("--data")
                .arg(&data)
                .arg("--json")
                .args(args)
                .env_remove("AKTE_STORE")
                .output()
                .unwrap()
        };
        let first = if signal == "-INT" {
            assert_eq!(out.status.code(), Some(130), "Ctrl-C exits 130");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let v: serde_json::Value =
                serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
            assert_eq!(v["interrupted"], true, "{v}");
            v["archived"].as_u64().unwrap()
        } else {
            // A batch may have been staged and not committed: verify passes (it can
            // only warn), and the next writing command records it, with no manual step.
            let r = akte(&["verify"]);
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
            0
        };
        assert!(first < n, "interrupted before the end ({first})");
        let out = String::from_utf8(akte(&["import", mbox.to_str().unwrap()]).stdout).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap();
        let (archived, dups) = (
            v["archived"].as_u64().unwrap(),
            v["duplicates"].as_u64().unwrap(),
        );
        assert_eq!(archived + dups, n, "{signal}: {v}");
        if signal == "-INT" {
            assert_eq!(dups, first, "{v}");
        }
        let verify: serde_json::Value = serde_json::from_slice(&akte(&["verify"]).stdout).unwrap();
        assert_eq!(verify["ok"], true, "{signal}: {verify}");
        assert_eq!(
            verify["warnings"].as_array().map(Vec::len),
            Some(0),
            "{signal}: the re-run recorded every leftover: {verify}"
        );
        assert_eq!(
            verify["records"], n,
            "{signal}: each message once: {verify}"
        );
    }
}

/// Issue #19: in a party's file a conversation stays together — a reply and the message
/// it answers are next to each other, at the place of the newest, with one thread named —
/// and each message says whether it came from the party or went to it.
#[tokio::test]
async fn a_conversation_stays_together_in_the_party_file_with_directions() {
    let s = services().await;
    let party: akte::party::PartyData = serde_json::from_value(serde_json::json!({
        "kind": "organisation", "name": "Kunde AG", "emails": ["kunde@example.com"]
    }))
    .unwrap();
    let p = s.svc.parties.create("t", party).await.unwrap();
    s.svc.catalog.put_party(&p).await;
    let d = IngestDefaults::default();
    let mail = |from: &str, to: &str, subject: &str, id: &str, date: &str, reply: Option<&str>| {
        let reply = reply
            .map(|r| format!("In-Reply-To: {r}\r\nReferences: {r}\r\n"))
            .unwrap_or_default();
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {id}\r\n{reply}\
             Date: {date}\r\n\r\nText\r\n"
        )
        .into_bytes()
    };
    let ask = mail(
        "kunde@example.com",
        "vertrieb@firma.example",
        "Anfrage",
        "<a1@example.com>",
        "Thu, 01 Oct 2026 09:00:00 +0200",
        None,
    );
    let other = mail(
        "vertrieb@firma.example",
        "kunde@example.com",
        "Newsletter",
        "<n1@firma.example>",
        "Mon, 05 Oct 2026 09:00:00 +0200",
        None,
    );
    let answer = mail(
        "vertrieb@firma.example",
        "kunde@example.com",
        "Re: Anfrage",
        "<a2@firma.example>",
        "Sat, 10 Oct 2026 09:00:00 +0200",
        Some("<a1@example.com>"),
    );
    let mut ids = Vec::new();
    for raw in [ask, other, answer] {
        ids.push(s.archive_email("t", raw.into(), &d).await.unwrap().id);
    }
    let today = s.svc.archive.clock().now().date_naive();
    let f = s
        .svc
        .catalog
        .file(&p.revision.id, today, 1, 50)
        .await
        .unwrap();
    let order: Vec<&str> = f
        .communication
        .items
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        order,
        [ids[2].as_str(), ids[0].as_str(), ids[1].as_str()],
        "the answer, the question it answers, then the newsletter"
    );
    let items = &f.communication.items;
    assert!(items[0].thread.is_some() && items[0].thread == items[1].thread);
    assert!(
        items[2].thread.is_none(),
        "a message alone is no conversation"
    );
    let dirs: Vec<Option<&str>> = items.iter().map(|r| r.direction.as_deref()).collect();
    assert_eq!(dirs, [Some("out"), Some("in"), Some("out")]);
}

/// Items whose twin is in the batch before — planned while that batch is still being
/// written — are duplicates of it, and a Message-ID seen there makes them related.
#[tokio::test]
async fn copies_across_batches_written_at_once_are_duplicates_and_related() {
    use akte::ingest::import::{Imported, Progress, run};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Items(Mutex<Vec<Imported>>);
    impl Progress for Items {
        fn item(&self, i: &Imported) {
            self.0.lock().unwrap().push(i.clone());
        }
    }

    let s = services().await;
    // 600 messages: three batches of at most 256. Message 300 is message 5 again (the
    // batch before), message 310 has message 6's Message-ID with other bytes, message
    // 560 is message 300's twin (message 5: two batches before).
    let message = |i: usize, id: usize, body: &str| {
        format!(
            "From: k{i}@example.com\nTo: a@example.com\nSubject: Nachricht {i}\n\
             Message-ID: <m{id}@x>\n\n{body}\n"
        )
        .into_bytes()
    };
    let mut messages: Vec<Vec<u8>> = (0..600).map(|i| message(i, i, "Hallo")).collect();
    messages[300] = messages[5].clone();
    messages[310] = message(310, 6, "Anders");
    messages[560] = messages[5].clone();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("box.mbox"), mbox_of(&refs)).unwrap();

    let items = Items::default();
    let summary = run(
        &s,
        "tester",
        &[dir.path().join("box.mbox")],
        &IngestDefaults::default(),
        false,
        &items,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert_eq!(summary.archived, 598, "{summary:?}");
    assert_eq!(summary.duplicates, 2, "{summary:?}");
    let items = items.0.into_inner().unwrap();
    assert_eq!(items.len(), 600);
    let at = |n: usize| {
        items
            .iter()
            .find(|i| i.item.ends_with(&format!("#{}", n + 1)))
            .unwrap_or_else(|| panic!("item {n}"))
    };
    for copy in [300, 560] {
        assert!(at(copy).duplicate, "{:?}", at(copy));
        assert_eq!(at(copy).id, at(5).id);
    }
    assert!(!at(310).duplicate);
    assert_eq!(at(310).related, vec![at(6).id.clone()]);
    // The bytes of message 5 are archived once.
    assert_eq!(
        s.svc
            .catalog
            .records_with_sha(&sha_of(&messages[5]))
            .await
            .len(),
        1
    );
}

fn sha_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// The two steps of a batch, in the order the import overlaps them: a batch planned
/// while the one before is unwritten finds its copies there; if that batch is never
/// committed, those copies fail (to be imported again) rather than point to nothing.
#[tokio::test]
async fn a_batch_planned_while_the_one_before_is_written_sees_its_records() {
    use akte::ingest::batch::{Incoming, Writing};
    let s = services().await;
    let d = IngestDefaults::default();
    let mail = |n: usize| {
        Incoming::Email(
            format!("From: a@example.com\nSubject: S{n}\nMessage-ID: <p{n}@x>\n\nText {n}\n")
                .into_bytes()
                .into(),
        )
    };
    let first = s
        .plan_batch(vec![mail(1), mail(2)], &d, &Writing::default())
        .await;
    let second = s
        .plan_batch(vec![mail(2), mail(3)], &d, &first.writing())
        .await;
    // Nothing of the first batch is written yet: the catalog does not know mail 2.
    let two = sha_of(b"From: a@example.com\nSubject: S2\nMessage-ID: <p2@x>\n\nText 2\n");
    assert!(s.svc.catalog.records_with_sha(&two).await.is_empty());
    // Left unwritten (a failed commit): the copy fails, the new item is archived.
    let unwritten = s
        .plan_batch(vec![mail(2), mail(4)], &d, &first.writing())
        .await;
    let mut unwritten = s.stage_batch("tester", unwritten).await;
    unwritten.earlier_written(&Default::default());
    let done = s.commit_batch("tester", unwritten).await;
    assert!(
        done[0]
            .as_ref()
            .is_err_and(|e| e.to_string().contains("import it again"))
    );
    assert!(done[1].as_ref().is_ok_and(|o| !o.duplicate));

    let written = s.write_batch("tester", first).await;
    let ids: std::collections::HashSet<String> = written
        .iter()
        .map(|r| r.as_ref().unwrap().id.clone())
        .collect();
    let mut second = s.stage_batch("tester", second).await;
    second.earlier_written(&ids);
    let done = s.commit_batch("tester", second).await;
    let copy = done[0].as_ref().unwrap();
    assert!(copy.duplicate);
    assert_eq!(copy.id, written[1].as_ref().unwrap().id);
    assert!(!done[1].as_ref().unwrap().duplicate);
    assert_eq!(s.svc.catalog.records_with_sha(&two).await.len(), 1);
}

#[tokio::test]
async fn a_group_commit_counts_as_applied_unless_another_entry_came_between() {
    use akte::ingest::batch::Incoming;
    let s = services().await;
    let d = IngestDefaults::default();
    let mail = |n: usize| {
        format!("From: a@example.com\nSubject: S{n}\nMessage-ID: <g{n}@x>\n\nText {n}\n")
    };
    let head = || async { s.svc.archive.journal().head_seq().await.unwrap() };
    let done = s
        .ingest(
            "tester",
            vec![
                Incoming::Email(mail(1).into_bytes().into()),
                Incoming::Email(mail(2).into_bytes().into()),
            ],
            &d,
        )
        .await;
    assert!(
        done.iter()
            .all(|r| r.as_ref().is_ok_and(|o| o.archived.is_some()))
    );
    // The catalog entered the batch's records and counts its entry as applied: a start
    // after it reads none of them back.
    assert_eq!(s.svc.catalog.journal_seq().await, head().await);

    // Another process (a second node on the same store) journals a record of its own.
    let other = Services::new(Archive::new(
        s.svc.archive.store().clone(),
        Arc::new(SystemClock),
    ));
    other.load().await.unwrap();
    let theirs = Ingest::new(other)
        .ingest(
            "other",
            vec![Incoming::Email(mail(3).into_bytes().into())],
            &d,
        )
        .await;
    assert!(theirs[0].as_ref().is_ok_and(|o| o.archived.is_some()));
    let before = s.svc.catalog.journal_seq().await;
    s.ingest(
        "tester",
        vec![Incoming::Email(mail(4).into_bytes().into())],
        &d,
    )
    .await[0]
        .as_ref()
        .unwrap();
    // Its entry is not counted: the one between has not been applied here.
    let catalog = &s.svc.catalog;
    let copies = |n: usize| {
        let sha = sha_of(mail(n).as_bytes());
        async move { catalog.records_with_sha(&sha).await.len() }
    };
    assert_eq!(s.svc.catalog.journal_seq().await, before);
    assert_eq!((copies(3).await, copies(4).await), (0, 1));
    s.svc
        .catalog
        .catch_up(s.svc.archive.journal())
        .await
        .unwrap();
    assert_eq!(s.svc.catalog.journal_seq().await, head().await);
    assert_eq!(copies(3).await, 1);
}
