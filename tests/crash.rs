//! Crash loop (issue #12): the real server binary is killed with SIGKILL at random
//! moments while clients upload and amend over HTTP. Afterwards every acknowledged write
//! reads back byte-exact, nothing that was not committed is visible, and `verify` passes
//! with no manual step: each restart records the leftovers of the kill by itself.
//!
//! `AKTE_CRASH_ROUNDS` (default 22) sets the number of kills, `AKTE_CRASH_SEED` the seed.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::Rng;
use common::server::{ADMIN, Server, bearer, cli, client};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// What the clients were told: created records with the SHA-256 of their bytes, and per
/// record the highest amendment number acknowledged.
#[derive(Default)]
struct Acked {
    records: HashMap<String, (String, Vec<u8>)>,
    amended: HashMap<String, u64>,
    /// Requests that were in flight when the server died (answer lost).
    lost_answers: u64,
    /// Old records uploaded for disposal, with their bytes.
    old: HashMap<String, Vec<u8>>,
    /// Approved disposals (202 received) and their records.
    disposals: Vec<(String, Vec<String>)>,
    /// Records of a disposal whose approval was sent but not answered.
    maybe_disposed: std::collections::HashSet<String>,
}

/// Uploads old records, requests their disposal and has `approver` approve it, while
/// the server may be killed at any moment.
async fn disposal_round(base: String, approver: String, mut rng: Rng, acked: Arc<Mutex<Acked>>) {
    let c = client();
    let mut ids = Vec::new();
    for _ in 0..(3 + rng.below(8)) {
        let len = 1 + rng.below(4096) as usize;
        let body = rng.bytes(len);
        let url = format!("{base}/v1/records?class=business-letter&date=2012-01-01");
        let Some(v) = upload(&c, url, body.clone()).await else {
            return;
        };
        let id = v["id"].as_str().unwrap_or_default().to_string();
        acked.lock().await.old.insert(id.clone(), body);
        ids.push(id);
    }
    let Ok(r) = c
        .post(format!("{base}/v1/disposals"))
        .header("authorization", bearer(ADMIN))
        .json(&json!({"records": ids, "reason": "Frist abgelaufen"}))
        .send()
        .await
    else {
        return;
    };
    let Ok(v) = r.json::<Value>().await else {
        return;
    };
    let Some(d) = v["id"].as_str().map(str::to_string) else {
        eprintln!("disposal request refused: {v}");
        return;
    };
    acked
        .lock()
        .await
        .maybe_disposed
        .extend(ids.iter().cloned());
    let r = c
        .post(format!("{base}/v1/disposals/{d}/approve"))
        .header("authorization", bearer(&approver))
        .send()
        .await;
    if matches!(&r, Ok(r) if r.status() == 202) {
        acked.lock().await.disposals.push((d, ids));
    }
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Uploads `body` as a record; its JSON answer when it was archived (201), `None` when
/// the server did not acknowledge it (it died, or was going down).
async fn upload(c: &reqwest::Client, url: String, body: Vec<u8>) -> Option<Value> {
    let r = c
        .post(url)
        .header("authorization", bearer(ADMIN))
        .body(body)
        .send()
        .await
        .ok()?;
    if r.status() != 201 {
        return None;
    }
    r.json().await.ok()
}

async fn client_loop(base: String, mut rng: Rng, acked: Arc<Mutex<Acked>>, stop: Arc<AtomicBool>) {
    let c = client();
    let mut mine: Vec<String> = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let amend = !mine.is_empty() && rng.below(3) == 0;
        let acknowledged = if amend {
            let id = mine[rng.below(mine.len() as u64) as usize].clone();
            let r = c
                .post(format!("{base}/v1/records/{id}/revisions"))
                .header("authorization", bearer(ADMIN))
                .json(&json!({"title": format!("amendment {n}")}))
                .send()
                .await;
            let ok = matches!(&r, Ok(r) if r.status() == 201);
            if ok {
                let mut a = acked.lock().await;
                let e = a.amended.entry(id).or_default();
                *e = (*e).max(n);
            }
            ok
        } else {
            // Mostly small files; now and then one over the 8 MiB inline limit.
            let size = if rng.below(40) == 0 {
                9 * 1024 * 1024 + rng.below(4096) as usize
            } else {
                1 + rng.below(64 * 1024) as usize
            };
            let body = rng.bytes(size);
            let url = format!("{base}/v1/records?class=business-letter&filename=f{n}.bin");
            match upload(&c, url, body.clone()).await {
                Some(v) => {
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    assert_eq!(v["sha256"], sha_hex(&body), "the acknowledged hash");
                    mine.push(id.clone());
                    acked
                        .lock()
                        .await
                        .records
                        .insert(id, (sha_hex(&body), body));
                    true
                }
                None => false,
            }
        };
        if !acknowledged {
            // The server died under us (or answered 409/503 while it was going down):
            // this request's fate is unknown, and we stop until the next round.
            acked.lock().await.lost_answers += 1;
            break;
        }
    }
}

/// An mbox of `n` messages, each carrying a word found nowhere else.
fn mbox(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(
            format!(
                "From sender@example.com Mon Jan  1 00:00:00 2024\nFrom: k{i}@example.com\n\
                 Subject: Nachricht {i}\nMessage-ID: <crash{i}@example.com>\n\n\
                 Kistenzaehler {i}. {}\n\n",
                "Text der Nachricht. ".repeat(10)
            )
            .as_bytes(),
        );
    }
    out
}

/// Posts the mbox to `/v1/imports`; with `wait`, polls the job until it ends and returns it.
async fn import(base: &str, body: Vec<u8>, wait: bool) -> Option<Value> {
    let c = client();
    let r = c
        .post(format!("{base}/v1/imports"))
        .header("authorization", bearer(ADMIN))
        .header("content-type", "application/mbox")
        .body(body)
        .send()
        .await
        .ok()?;
    if r.status() != 202 {
        return None;
    }
    let job: Value = r.json().await.ok()?;
    let id = job["id"].as_str()?.to_string();
    if !wait {
        return Some(job);
    }
    loop {
        let v: Value = c
            .get(format!("{base}/v1/imports/{id}"))
            .header("authorization", bearer(ADMIN))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if v["state"] == "done" || v["state"] == "error" {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const MBOX_MESSAGES: usize = 3000;

#[test]
fn sigkill_during_uploads_loses_nothing_acknowledged_and_shows_nothing_uncommitted() {
    let rounds: u64 = std::env::var("AKTE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(22);
    let seed: u64 = std::env::var("AKTE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0ff_ee01);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    if std::env::var_os("AKTE_CRASH_KEEP").is_some() {
        eprintln!("data kept in {}", dir.keep().display());
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut approver = String::new();
    for round in 0..rounds {
        let mut server = Server::start_on(&data, &[]);
        if approver.is_empty() {
            // A second person for the four-eyes rule (tokens survive the kills).
            let v: Value = rt.block_on(async {
                client()
                    .post(server.url("/v1/tokens"))
                    .header("authorization", bearer(ADMIN))
                    .json(&json!({"role": "archivist", "name": "approver", "person": "bob"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap()
            });
            approver = v["token"].as_str().unwrap().to_string();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..4u64)
            .map(|i| {
                rt.spawn(client_loop(
                    server.base.clone(),
                    Rng(rng.next() | 1 | (i << 1)),
                    acked.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        // Every third round a disposal is approved and executed beside the uploads.
        if round % 3 == 1 {
            rt.spawn(disposal_round(
                server.base.clone(),
                approver.clone(),
                Rng(rng.next() | 1),
                acked.clone(),
            ));
        }
        // Every third round, a server-side import runs beside the uploads.
        let imports = round % 3 == 0;
        if imports {
            let base = server.base.clone();
            rt.spawn(async move { import(&base, mbox(MBOX_MESSAGES), false).await });
            std::thread::sleep(Duration::from_millis(300));
        }
        let extra = if round % 3 == 1 { 400 } else { 0 };
        std::thread::sleep(Duration::from_millis(150 + extra + rng.below(500)));
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            rt.block_on(t).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "crash loop took too long (round {round})"
        );
    }

    // Right after the last kill, before any writer started: verify passes; leftovers
    // of that kill can only be warnings.
    let out = cli(&data, &["--json", "verify"]);
    let before: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{before}");

    // A restart records them; every acknowledged write reads back byte-exact.
    let server = Server::start_on(&data, &[]);
    let a = rt.block_on(acked.lock()).records.len();
    let (wrong, lost) = rt.block_on(async {
        let acked = acked.lock().await;
        let c = client();
        let (mut wrong, mut lost) = (0, 0);
        for (id, (sha, bytes)) in &acked.records {
            let r = c
                .get(server.url(&format!("/v1/records/{id}/content")))
                .header("authorization", bearer(ADMIN))
                .send()
                .await
                .unwrap();
            if r.status() != 200 {
                lost += 1;
                continue;
            }
            let got = r.bytes().await.unwrap();
            if got.as_ref() != bytes.as_slice() || sha_hex(&got) != *sha {
                wrong += 1;
            }
        }
        for (id, n) in &acked.amended {
            let v: Value = c
                .get(server.url(&format!("/v1/records/{id}")))
                .header("authorization", bearer(ADMIN))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let title = v["title"].as_str().unwrap_or_default();
            let seen: u64 = title
                .strip_prefix("amendment ")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            // The record shows the acknowledged amendment or a later one whose answer
            // was lost in the kill, never an older one.
            if seen < *n {
                lost += 1;
            }
        }
        // Approved disposals finish after the restarts; records of an approval whose
        // answer was lost are either disposed or whole, never half.
        let t = Instant::now();
        for (d, _) in &acked.disposals {
            loop {
                let v: Value = c
                    .get(server.url(&format!("/v1/disposals/{d}")))
                    .header("authorization", bearer(ADMIN))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if v["state"] == "executed" {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "disposal {d} not finished: {v}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let disposed: std::collections::HashSet<&String> =
            acked.disposals.iter().flat_map(|(_, r)| r).collect();
        for (id, bytes) in &acked.old {
            let r = c
                .get(server.url(&format!("/v1/records/{id}/content")))
                .header("authorization", bearer(ADMIN))
                .send()
                .await
                .unwrap();
            match r.status().as_u16() {
                410 if disposed.contains(id) || acked.maybe_disposed.contains(id) => {}
                200 if !disposed.contains(id) => {
                    if r.bytes().await.unwrap().as_ref() != bytes.as_slice() {
                        wrong += 1;
                    }
                }
                _ => lost += 1,
            }
        }
        (wrong, lost)
    });
    // The import, run once more to its end, leaves every message archived exactly once.
    let (job, found) = rt.block_on(async {
        let job = import(&server.base, mbox(MBOX_MESSAGES), true)
            .await
            .unwrap();
        let c = client();
        let mut found = 0;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(90) {
            let v: Value = c
                .get(
                    server.url("/v1/search?q=Kistenzaehler&facets=false&snippets=false&per_page=1"),
                )
                .header("authorization", bearer(ADMIN))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            found = v["total"].as_u64().unwrap_or(0);
            if found >= MBOX_MESSAGES as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (job, found)
    });
    assert_eq!(job["state"], "done", "{job}");
    let s = &job["summary"];
    assert_eq!(
        s["archived"].as_u64().unwrap() + s["duplicates"].as_u64().unwrap(),
        MBOX_MESSAGES as u64,
        "{job}"
    );
    assert_eq!(found, MBOX_MESSAGES as u64, "each message archived once");
    drop(server);
    let out = cli(&data, &["--json", "verify"]);
    let after: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acked = rt.block_on(acked.lock());
    let committed = after["records"].as_u64().unwrap();
    let unacked_visible = committed
        .saturating_sub(acked.records.len() as u64 + acked.old.len() as u64 + MBOX_MESSAGES as u64);
    common::report(&format!(
        "crash loop: {rounds} SIGKILLs in {:.1} s; acknowledged: {} uploads, {} amended records, {MBOX_MESSAGES} emails by /v1/imports (final run: {} archived, {} duplicates), {} disposals approved ({} records) and finished; \
         acknowledged lost: {lost}; wrong bytes: {wrong}; committed but answer lost in a kill: \
         {unacked_visible} (of {} requests cut off); leftovers recorded by recovery: {}; \
         verify before restart: ok={} warnings={}; after: ok={} warnings={}",
        started.elapsed().as_secs_f64(),
        a,
        acked.amended.len(),
        s["archived"],
        s["duplicates"],
        acked.disposals.len(),
        acked.disposals.iter().map(|(_, r)| r.len()).sum::<usize>(),
        acked.lost_answers,
        after["leftovers_recovered"],
        before["ok"],
        before["warnings"].as_array().map_or(0, Vec::len),
        after["ok"],
        after["warnings"].as_array().map_or(0, Vec::len),
    ));
    assert!(rounds >= 1 && a > 0, "nothing was acknowledged");
    assert_eq!(lost, 0, "acknowledged writes lost");
    assert_eq!(wrong, 0, "acknowledged writes with wrong bytes");
    assert!(out.status.success(), "verify after the crash loop: {after}");
    assert_eq!(after["ok"], true);
    assert_eq!(
        after["warnings"].as_array().map(Vec::len),
        Some(0),
        "the restart recorded every leftover: {after}"
    );
    // Visible records beyond the acknowledged ones can only be commits whose answer was
    // cut off by a kill: at most one per request in flight.
    assert!(
        unacked_visible <= acked.lost_answers,
        "{unacked_visible} committed records nobody was told about, but only {} requests were cut off",
        acked.lost_answers
    );
}

/// Uploads cut off by the client — a body shorter than its `Content-Length`, a chunked
/// body without its last chunk, a multipart body without its closing boundary — are
/// refused with nothing journaled.
#[test]
fn uploads_cut_off_by_the_client_commit_nothing() {
    use std::io::Write;
    let server = Server::start(&[]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let head = |extra: &str| {
        format!(
            "POST /v1/records?class=business-letter HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {ADMIN}\r\n{extra}\r\n"
        )
    };
    let payload = vec![b'x'; 50_000];
    let boundary = "cutcutcut";
    let multipart_start = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("short body", {
            let mut b = head("Content-Length: 100000\r\n").into_bytes();
            b.extend_from_slice(&payload);
            b
        }),
        ("chunked without its last chunk", {
            let mut b = head("Transfer-Encoding: chunked\r\n").into_bytes();
            b.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
            b.extend_from_slice(&payload);
            b.extend_from_slice(b"\r\n");
            b
        }),
        ("multipart without its closing boundary", {
            let mut body = multipart_start.into_bytes();
            body.extend_from_slice(&payload);
            let mut b = head(&format!(
                "Content-Type: multipart/form-data; boundary={boundary}\r\n\
                 Transfer-Encoding: chunked\r\n"
            ))
            .into_bytes();
            b.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            b.extend_from_slice(&body);
            b.extend_from_slice(b"\r\n");
            b
        }),
    ];
    for (what, bytes) in &cases {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // The client goes away mid-upload.
        s.shutdown(std::net::Shutdown::Both).unwrap();
        drop(s);
        std::thread::sleep(Duration::from_millis(300));
        let out = cli(&server.data, &["--json", "verify"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], true, "{what}: {v}");
        assert_eq!(v["records"], 0, "{what}: nothing committed: {v}");
    }
    // The server is still there and takes a whole upload.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        client()
            .post(server.url("/v1/records?class=business-letter"))
            .header("authorization", bearer(ADMIN))
            .body(payload.clone())
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 201);
}

/// Uploads `n` small records linked to `party`, 8 at a time.
async fn upload_linked(base: &str, party: &str, from: usize, n: usize) {
    let c = client();
    let urls: Vec<(String, Vec<u8>)> = (from..from + n)
        .map(|i| {
            (
                format!(
                    "{base}/v1/records?class=business-letter&date=2024-02-03&party={party}\
                     &role=customer&title=Brief-{i:05}"
                ),
                format!("Brief Nummer {i}").into_bytes(),
            )
        })
        .collect();
    futures::stream::iter(urls)
        .for_each_concurrent(8, |(url, body)| {
            let c = c.clone();
            async move {
                assert!(upload(&c, url, body).await.is_some(), "not archived");
            }
        })
        .await;
}

async fn new_party(base: &str) -> String {
    let v: Value = client()
        .post(format!("{base}/v1/parties"))
        .header("authorization", bearer(ADMIN))
        .json(&json!({"kind": "organisation", "name": "Katalog GmbH", "roles": [{"role": "customer"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// The party file as the server shows it (page 1, 500 lines).
async fn party_file(s: &Server, party: &str) -> Value {
    let r = client()
        .get(s.url(&format!("/v1/parties/{party}/file?per_page=500")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Fails with what differs (the files are too long to print whole).
fn same_file(got: &Value, expected: &Value) {
    if got == expected {
        return;
    }
    let ids = |v: &Value| -> Vec<String> {
        v["communication"]["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{} {}", r["id"], r["title"]))
            .collect()
    };
    let (g, e) = (ids(got), ids(expected));
    let missing: Vec<&String> = e.iter().filter(|x| !g.contains(x)).take(5).collect();
    let extra: Vec<&String> = g.iter().filter(|x| !e.contains(x)).take(5).collect();
    panic!(
        "the party file differs: {} records instead of {}; missing on page 1: {missing:?}; \
         not expected: {extra:?}",
        got["records_total"], expected["records_total"]
    );
}

/// Waits for a stderr line containing any of `wanted`; returns it.
fn wait_line(s: &Server, wanted: &[&str]) -> String {
    if let Some(line) = s
        .early
        .iter()
        .find(|l| wanted.iter().any(|w| l.contains(w)))
    {
        return line.clone();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(line) = s.log.recv_timeout(Duration::from_millis(100))
            && wanted.iter().any(|w| line.contains(w))
        {
            return line;
        }
    }
    panic!("no line with {wanted:?} within 120 s");
}

/// Issue #17: the catalog file is derived state. A start catches up from the entry it
/// last applied; a SIGKILL in the middle of that catch-up, a deleted file, a file whose
/// bytes were overwritten and a file of another store all end in the same party file as
/// the server showed before.
#[test]
fn the_catalog_is_correct_after_a_crash_in_catch_up_and_when_deleted_or_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = data.join("catalog.redb");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let info = [("AKTE_LOG", "info")];

    let mut s = Server::start_on(&data, &[]);
    let party: String = rt.block_on(async {
        let id = new_party(&s.base).await;
        upload_linked(&s.base, &id, 0, 20).await;
        id
    });
    s.sigterm();
    assert!(s.wait());
    // The catalog as of 20 records: stale once more are written.
    let stale = dir.path().join("stale.redb");
    std::fs::copy(&file, &stale).unwrap();

    let mut s = Server::start_on(&data, &[]);
    let expected = rt.block_on(async {
        upload_linked(&s.base, &party, 20, 1600).await;
        party_file(&s, &party).await
    });
    assert_eq!(expected["records_total"], 1620);
    s.sigterm();
    assert!(s.wait());

    // 1. Stale file; killed after the first batch of the catch-up was committed.
    std::fs::copy(&stale, &file).unwrap();
    let s = Server::start_with_env(&data, &[], &info);
    let line = wait_line(
        &s,
        &["catalog: applied entries up to", "catalog: caught up"],
    );
    assert!(
        line.contains("applied entries up to"),
        "the catch-up ended before the kill: {line}"
    );
    drop(s); // SIGKILL
    let s = Server::start_with_env(&data, &[], &info);
    let resumed = wait_line(
        &s,
        &["catalog: catching up from entry", "rebuilt from the store"],
    );
    eprintln!("after the kill: {resumed}");
    assert!(
        resumed.contains("catching up from entry") && !resumed.contains("from entry 0 "),
        "the catch-up did not resume from what it had committed: {resumed}"
    );
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
    drop(s);

    // 2. Deleted.
    std::fs::remove_file(&file).unwrap();
    let s = Server::start_on(&data, &[]);
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
    drop(s);

    // 3. Overwritten: the header, then (separately) one record title inside a row.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..512].fill(0xa5);
    std::fs::write(&file, &bytes).unwrap();
    let s = Server::start_on(&data, &[]);
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
    let mut s = s;
    s.sigterm();
    assert!(s.wait());
    let mut bytes = std::fs::read(&file).unwrap();
    let mut changed = 0;
    while let Some(at) = bytes.windows(11).position(|w| w == b"Brief-00007") {
        bytes[at..at + 11].copy_from_slice(b"Brief-99999");
        changed += 1;
    }
    assert!(changed > 0, "the title is in the file");
    std::fs::write(&file, &bytes).unwrap();
    let s = Server::start_with_env(&data, &[], &info);
    // The damaged row is found when read, and the summaries are rebuilt.
    rt.block_on(party_file(&s, &party));
    wait_line(
        &s,
        &["record summary was damaged; every summary was written again"],
    );
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
    drop(s);

    // 4. A catalog of another store.
    let other = dir.path().join("other");
    let mut o = Server::start_on(&other, &[]);
    rt.block_on(async {
        let p = new_party(&o.base).await;
        upload_linked(&o.base, &p, 0, 3).await
    });
    o.sigterm();
    assert!(o.wait());
    std::fs::copy(other.join("catalog.redb"), &file).unwrap();
    let mut s = Server::start_on(&data, &[]);
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
    s.sigterm();
    assert!(s.wait());

    // 5. The ledger file: a restart reads the journal only after the entry it applied;
    // an overwritten file and another store's are rebuilt from the journal.
    let ledger = data.join("ledger.redb");
    let s = Server::start_with_env(&data, &[], &info);
    let line = wait_line(&s, &["ledger: read from", "ledger file is rebuilt"]);
    let applied: u64 = line
        .split("up to entry ")
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the ledger was not read from its file: {line}"));
    assert!(applied > 1620, "{line}");
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
    drop(s);
    let mut bytes = std::fs::read(&ledger).unwrap();
    bytes[..512].fill(0x5a);
    std::fs::write(&ledger, &bytes).unwrap();
    let s = Server::start_with_env(&data, &[], &info);
    wait_line(&s, &["the ledger file is rebuilt from the journal"]);
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
    let mut s = s;
    s.sigterm();
    assert!(s.wait());
    std::fs::copy(other.join("ledger.redb"), &ledger).unwrap();
    let s = Server::start_with_env(&data, &[], &info);
    wait_line(&s, &["is of another journal; rebuilt from the journal"]);
    same_file(&rt.block_on(party_file(&s, &party)), &expected);
}

/// A writer that ends cleanly — alone, everything it wrote committed — spares the next
/// start its look at every object; a failed commit, a writer that dies beside another,
/// or a write after the end make the next start look again, and find what was left.
#[tokio::test]
async fn a_clean_end_spares_the_next_start_its_scan_and_nothing_else_does() {
    use akte::archive::Archive;
    use akte::audit::{commit_revision, stage_revision};
    use akte::clock::SystemClock;
    use akte::store::Store;
    use akte::store::keys::ObjectKind;

    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Archive::new(
            Store::open(dir.path().to_str().unwrap()).unwrap(),
            Arc::new(SystemClock),
        )
    };
    let mark = dir.path().join(".clean");
    let sessions = || {
        std::fs::read_dir(dir.path().join(".sessions"))
            .unwrap()
            .count()
    };
    let commit = |a: &Archive| {
        let (store, journal, id) = (a.store().clone(), a.journal_arc(), a.new_id());
        async move {
            commit_revision(
                &store,
                &journal,
                ObjectKind::Record,
                &id,
                1,
                b"r".to_vec(),
                "t",
                "record.create",
                None,
            )
            .await
            .unwrap();
        }
    };
    let stage = |a: &Archive| {
        let (store, id) = (a.store().clone(), a.new_id());
        async move {
            stage_revision(&store, ObjectKind::Record, &id, 1, b"s".to_vec())
                .await
                .unwrap();
        }
    };

    // The first start looks (there is no mark); a clean end leaves one.
    let a = open();
    let w = a.start_writer().await.unwrap();
    assert!(!w.recovery.clean_start);
    assert_eq!(sessions(), 1);
    commit(&a).await;
    assert!(w.end(a.store(), a.journal()).await.unwrap());
    assert!(mark.exists());
    assert_eq!(sessions(), 0);
    drop((w, a));

    // The next start does not look, and takes the mark away before it writes.
    let a = open();
    let w = a.start_writer().await.unwrap();
    assert!(w.recovery.clean_start);
    assert!(!mark.exists());
    // A revision without its entry (a commit that failed): no mark at the end…
    stage(&a).await;
    assert!(!w.end(a.store(), a.journal()).await.unwrap());
    assert!(!mark.exists());
    drop((w, a));
    // …so the next start looks, and records it.
    let a = open();
    let w = a.start_writer().await.unwrap();
    assert!(!w.recovery.clean_start);
    assert_eq!(w.recovery.recorded.len(), 1);
    assert!(w.end(a.store(), a.journal()).await.unwrap());
    drop((w, a));

    // A second writer beside the first dies with a revision uncommitted: the first,
    // ending last, leaves no mark (the dead one's session file is there).
    let a = open();
    let w = a.start_writer().await.unwrap();
    assert!(w.recovery.clean_start);
    let b = open();
    let dying = b.start_writer().await.unwrap();
    assert!(!dying.recovery.clean_start, "not alone: it cannot know");
    assert_eq!(sessions(), 2);
    stage(&b).await;
    drop((dying, b));
    commit(&a).await;
    assert!(!w.end(a.store(), a.journal()).await.unwrap());
    assert!(!mark.exists());
    drop((w, a));
    // The next start, alone, looks, records it and clears the dead session.
    let a = open();
    let w = a.start_writer().await.unwrap();
    assert!(!w.recovery.clean_start);
    assert_eq!(w.recovery.recorded.len(), 1);
    assert_eq!(sessions(), 1);
    assert!(w.end(a.store(), a.journal()).await.unwrap());

    // A revision written after the end takes the mark away first.
    assert!(mark.exists());
    stage(&a).await;
    assert!(!mark.exists());
    drop((w, a));
    let a = open();
    let w = a.start_writer().await.unwrap();
    assert!(!w.recovery.clean_start);
    assert_eq!(w.recovery.recorded.len(), 1);

    // An entry appended after the mark (by a writer of another version, say) makes it
    // stale: the start looks.
    assert!(w.end(a.store(), a.journal()).await.unwrap());
    let at_end = std::fs::read(&mark).unwrap();
    commit(&a).await;
    drop((w, a));
    std::fs::write(&mark, at_end).unwrap();
    let a = open();
    let w = a.start_writer().await.unwrap();
    assert!(!w.recovery.clean_start);
}
