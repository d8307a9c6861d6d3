//! Fault schedules over every write path (issue #12): a workload of uploads, emails,
//! import batches (group commit), amendments, parties, holds, disposals and erasures
//! runs against a store that injects one fault — an error, a crash, or a power loss that
//! also drops or tears the unsynced writes of a group commit — at a chosen write. Then
//! the process "restarts" on what the disk holds, and:
//!
//! - every acknowledged write reads back (bytes, titles, parties, holds) exactly;
//! - nothing that was not acknowledged is visible (records, parties);
//! - an approved disposal is finished by the restart, idempotently;
//! - `verify` passes with no warnings, without any manual step.
//!
//! `AKTE_FAULT_SCHEDULES` (default 1000) sets the number of schedules.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use akte::archive::{Amendment, Archive, NewRecord};
use akte::clock::SystemClock;
use akte::disposal::hold::HoldScope;
use akte::ingest::batch::Incoming;
use akte::ingest::batch::IngestDefaults;
use akte::party::PartyData;
use akte::service::Services;
use akte::store::keys::ObjectKind;
use akte::verify::{self, NoProgress};
use bytes::Bytes;
use chrono::NaiveDate;
use common::fault::{FaultKind, Faulty};
use common::{Rng, once, pseudo_random};

#[derive(Debug, Clone)]
struct Expect {
    /// The original's bytes, where the workload knows them.
    bytes: Option<Vec<u8>>,
    title: Option<String>,
    held: bool,
    disposed: bool,
}

impl Expect {
    /// A record whose original is `bytes` (its title not checked).
    fn original(bytes: Vec<u8>) -> Expect {
        Expect {
            bytes: Some(bytes),
            title: None,
            held: false,
            disposed: false,
        }
    }
}

/// What the workload was told succeeded.
#[derive(Debug, Default)]
struct Acked {
    records: HashMap<String, Expect>,
    parties: HashMap<String, String>,
    erased: HashSet<String>,
    /// Erasures that failed after their entry was committed (the key's deletion is
    /// what failed): committed, finished by the restart, but never acknowledged.
    maybe_erased: HashSet<String>,
    holds: Vec<String>,
    /// Approved disposals and their records: executed once the restart is done.
    disposals: Vec<(String, Vec<String>)>,
}

fn email(n: u64, with_attachment: bool) -> Vec<u8> {
    let body = if with_attachment {
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
             Content-Type: text/plain\r\n\r\nNachricht {n}\r\n--b\r\nContent-Type: \
             application/octet-stream\r\nContent-Disposition: attachment; filename=\"a{n}.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nQUJDRA==\r\n--b--\r\n"
        )
    } else {
        format!("Content-Type: text/plain\r\n\r\nNachricht {n}\r\n")
    };
    format!(
        "From: k{n}@example.com\r\nTo: einkauf@example.de\r\nSubject: Betreff {n}\r\n\
         Message-ID: <fault{n}@example.com>\r\nDate: Mon, 2 Jan 2012 10:00:00 +0000\r\n{body}"
    )
    .into_bytes()
}

fn old_record(title: &str) -> NewRecord {
    NewRecord {
        class: Some("business-letter".into()),
        title: Some(title.into()),
        document_date: NaiveDate::from_ymd_opt(2012, 1, 1),
        ..Default::default()
    }
}

fn person(name: &str) -> PartyData {
    serde_json::from_value(serde_json::json!({"kind": "person", "name": name})).unwrap()
}

fn services(f: &Arc<Faulty>) -> Services {
    Services::new(Archive::new(f.store(), Arc::new(SystemClock)))
}

/// Runs the workload of `seed`; stops at the first failure after a crash.
async fn workload(f: &Arc<Faulty>, seed: u64) -> Acked {
    let svc = services(f);
    let mut acked = Acked::default();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let d = IngestDefaults::default();
    if svc.load().await.is_err() {
        return acked;
    }
    let ops = 6 + rng.index(5);
    for step in 0..ops {
        if f.crashed() {
            break;
        }
        let n = seed * 100 + step as u64;
        let live: Vec<String> = acked
            .records
            .iter()
            .filter(|(_, e)| !e.disposed)
            .map(|(id, _)| id.clone())
            .collect();
        match rng.index(10) {
            0 | 1 => {
                // Now and then one over the inline limit: the multipart path through
                // `staging/` and a copy-if-not-exists.
                let len = if rng.index(12) == 0 {
                    akte::store::blob::INLINE_LIMIT + 1 + rng.index(1000)
                } else {
                    1 + rng.index(3000)
                };
                let bytes = pseudo_random(len, n);
                let title = format!("Brief {n}");
                if let Ok(a) = svc
                    .archive("t", once(bytes.clone()), old_record(&title))
                    .await
                {
                    acked.records.insert(
                        a.id,
                        Expect {
                            title: Some(title),
                            ..Expect::original(bytes)
                        },
                    );
                }
            }
            2 => {
                let raw = email(n, rng.index(2) == 0);
                if let Ok(o) = akte::ingest::Ingest::new(svc.clone())
                    .archive_email("t", Bytes::from(raw.clone()), &d)
                    .await
                {
                    acked.records.insert(o.id, Expect::original(raw));
                    for a in o.attachments {
                        acked.records.insert(a, Expect::original(b"ABCD".to_vec()));
                    }
                }
            }
            3 => {
                // An import batch: emails and documents, one group commit.
                let mut items = Vec::new();
                let mut expected = Vec::new();
                for k in 0..(2 + rng.index(4)) as u64 {
                    let m = n * 10 + k;
                    if k % 2 == 0 {
                        let raw = email(m, false);
                        expected.push(raw.clone());
                        items.push(Incoming::Email(Bytes::from(raw)));
                    } else {
                        let b = pseudo_random(10 + rng.index(2000), m);
                        expected.push(b.clone());
                        items.push(Incoming::document(
                            akte::store::content::Content::Memory(Bytes::from(b)),
                            Some(format!("d{m}.bin")),
                        ));
                    }
                }
                for (o, raw) in akte::ingest::Ingest::new(svc.clone())
                    .ingest("t", items, &d)
                    .await
                    .into_iter()
                    .zip(expected)
                {
                    if let Ok(o) = o
                        && !o.duplicate
                    {
                        acked.records.insert(o.id, Expect::original(raw));
                    }
                }
            }
            4 if !live.is_empty() => {
                let id = live[rng.index(live.len())].clone();
                let title = format!("geändert {n}");
                let a = Amendment {
                    title: Some(title.clone()),
                    ..Default::default()
                };
                if svc.archive.amend("t", &id, a).await.is_ok()
                    && let Some(e) = acked.records.get_mut(&id)
                {
                    e.title = Some(title);
                }
            }
            5 => {
                let name = format!("Erika {n}");
                if let Ok(p) = svc.parties.create("t", person(&name)).await {
                    acked.parties.insert(p.revision.id, name);
                }
            }
            6 if !live.is_empty() => {
                let id = live[rng.index(live.len())].clone();
                let scope = HoldScope::Records {
                    ids: vec![id.clone()],
                };
                if let Ok(h) = svc
                    .holds
                    .place("t", &format!("Prüfung {n}"), "Betriebsprüfung", None, scope)
                    .await
                {
                    acked.holds.push(h.id);
                    if let Some(e) = acked.records.get_mut(&id) {
                        e.held = true;
                    }
                }
            }
            7 => {
                let free: Vec<String> = acked
                    .records
                    .iter()
                    .filter(|(_, e)| !e.disposed && !e.held && e.title.is_some())
                    .map(|(id, _)| id.clone())
                    .take(2)
                    .collect();
                if free.is_empty() {
                    continue;
                }
                let Ok(req) = svc
                    .disposals
                    .request("alice", &free, "Frist abgelaufen")
                    .await
                else {
                    continue;
                };
                if svc.disposals.approve_only("bob", &req.id).await.is_err() {
                    continue;
                }
                // From here the decision stands: executed now, or by the restart.
                for id in &free {
                    if let Some(e) = acked.records.get_mut(id) {
                        e.disposed = true;
                    }
                }
                acked.disposals.push((req.id.clone(), free));
                let _ = svc
                    .disposals
                    .execute(&req.id, &akte::disposal::NoProgress)
                    .await;
            }
            8 => {
                // A party import (CSV upsert), row by row.
                let csv = format!("name,customer_number\nFirma {n} A,K{n}A\nFirma {n} B,K{n}B\n");
                let (rows, errors) =
                    akte::ingest::parties::parse_csv(csv.as_bytes(), &Default::default());
                let report = akte::ingest::parties::import_rows(
                    &svc.parties,
                    &svc.catalog,
                    "t",
                    rows,
                    errors,
                )
                .await;
                for c in report.created {
                    let name = if c.line == 2 { "A" } else { "B" };
                    acked.parties.insert(c.party, format!("Firma {n} {name}"));
                }
            }
            _ => {
                // An erasure of a party without records.
                let name = format!("Max {n}");
                if let Ok(p) = svc.parties.create("t", person(&name)).await {
                    let id = p.revision.id.clone();
                    acked.parties.insert(id.clone(), name);
                    if svc.erase_party("t", &id, "Löschersuchen").await.is_ok() {
                        acked.erased.insert(id);
                    } else {
                        acked.maybe_erased.insert(id);
                    }
                }
            }
        }
    }
    acked
}

/// Restarts on what the disk holds and checks everything the workload was told.
async fn check(f: &Arc<Faulty>, acked: &Acked, label: &str) {
    let svc = services(f);
    let a = &svc.archive;
    let w = akte::audit::recovery::start_writer(a.store(), a.journal(), a.clock(), "restart")
        .await
        .unwrap_or_else(|e| panic!("{label}: recovery failed: {e}"));
    svc.load().await.unwrap();
    for d in svc.disposals.unfinished().await.unwrap() {
        svc.disposals
            .execute(&d.id, &akte::disposal::NoProgress)
            .await
            .unwrap_or_else(|e| panic!("{label}: resuming disposal {}: {e}", d.id));
    }
    drop(w);

    // Every acknowledged write reads back.
    for (id, e) in &acked.records {
        let r = a
            .latest(id)
            .await
            .unwrap_or_else(|err| panic!("{label}: acknowledged record {id} lost: {err}"));
        if e.disposed {
            assert!(r.tombstone.is_some(), "{label}: {id} should be disposed");
            continue;
        }
        assert!(r.tombstone.is_none(), "{label}: {id} disposed unasked");
        if let Some(t) = &e.title {
            assert_eq!(&r.title, t, "{label}: title of {id}");
        }
        if let Some(bytes) = &e.bytes {
            use futures::TryStreamExt;
            let (_, stream) = a.open_content(id, None, None).await.unwrap();
            let got: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
            assert_eq!(&got.concat(), bytes, "{label}: bytes of {id}");
        }
    }
    for (id, name) in &acked.parties {
        let p = svc
            .parties
            .get(id)
            .await
            .unwrap_or_else(|err| panic!("{label}: acknowledged party {id} lost: {err}"));
        if acked.erased.contains(id) {
            assert_eq!(p.data.name, "(erased)", "{label}: {id} erased");
        } else if acked.maybe_erased.contains(id) {
            assert!(
                p.data.name == *name || p.data.name == "(erased)",
                "{label}: party {id}"
            );
        } else {
            assert_eq!(&p.data.name, name, "{label}: party {id}");
        }
    }
    let holds = svc.holds.all().await.unwrap();
    for h in &acked.holds {
        assert!(
            holds.iter().any(|x| x.id == *h && x.active),
            "{label}: hold {h} lost"
        );
    }
    for (d, records) in &acked.disposals {
        let d = svc.disposals.get(d).await.unwrap();
        assert_eq!(
            d.state,
            akte::disposal::DisposalState::Executed,
            "{label}: disposal {} finished",
            d.id
        );
        let mut want = records.clone();
        want.sort();
        assert_eq!(d.records, want);
    }
    // Nothing that was not acknowledged is visible.
    let ledger = a.journal().ledger_synced().await.unwrap();
    for (id, _) in ledger.latest_of_kind(ObjectKind::Record) {
        assert!(
            acked.records.contains_key(&id),
            "{label}: record {id} is visible but was never acknowledged"
        );
    }
    for (id, _) in ledger.latest_of_kind(ObjectKind::Party) {
        assert!(
            acked.parties.contains_key(&id),
            "{label}: party {id} is visible but was never acknowledged"
        );
    }
    let r = verify::verify(a.store(), &verify::Options::default(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(r.ok(), "{label}: verify: {:?}", r.problems);
    assert!(r.warnings.is_empty(), "{label}: verify: {:?}", r.warnings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_schedule_keeps_what_was_acknowledged_and_nothing_else() {
    let schedules: u64 = std::env::var("AKTE_FAULT_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    const WORKLOADS: u64 = 40;
    // Writes of each workload without a fault: where faults can be placed.
    let mut writes = Vec::new();
    for seed in 0..WORKLOADS.min(schedules) {
        let f = Faulty::new();
        f.arm(u64::MAX, FaultKind::Error);
        let acked = workload(&f, seed).await;
        writes.push(f.writes());
        check(&f, &acked, &format!("workload {seed} without faults")).await;
    }
    let mut kinds: HashMap<&str, u64> = HashMap::new();
    let mut rng = Rng(0x00fa_0170_0001);
    let mut acked_total = 0usize;
    for s in 0..schedules {
        let seed = s % WORKLOADS.min(schedules);
        let at = rng.next() % writes[seed as usize].max(1);
        let kind = match s % 3 {
            0 => FaultKind::Error,
            1 => FaultKind::Crash,
            _ => FaultKind::PowerLoss,
        };
        *kinds.entry(format!("{kind:?}").leak()).or_default() += 1;
        let f = Faulty::new();
        f.arm(at, kind);
        let acked = workload(&f, seed).await;
        acked_total += acked.records.len();
        f.restart(s).await;
        check(
            &f,
            &acked,
            &format!("schedule {s} (workload {seed}, {kind:?} at write {at})"),
        )
        .await;
    }
    common::report(&format!(
        "fault schedules: {schedules} passed ({kinds:?}); workloads of {}..{} writes; {acked_total} acknowledged records checked",
        writes.iter().min().unwrap_or(&0),
        writes.iter().max().unwrap_or(&0),
    ));
}

/// A power loss during an import batch: the group commit's unsynced writes are dropped
/// or torn. The server then starts on what the disk holds, serves what was acknowledged,
/// and `verify` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_power_loss_during_an_import_the_server_starts_and_serves() {
    let f = Faulty::new();
    let svc = services(&f);
    svc.load().await.unwrap();
    let d = IngestDefaults::default();
    // One batch committed, then a power loss during the next one, before its sync.
    let first: Vec<Vec<u8>> = (0..8).map(|i| email(900_000 + i, i % 2 == 0)).collect();
    let outcomes = akte::ingest::Ingest::new(svc.clone())
        .ingest(
            "t",
            first
                .iter()
                .map(|b| Incoming::Email(Bytes::from(b.clone())))
                .collect(),
            &d,
        )
        .await;
    let acked: Vec<(String, Vec<u8>)> = outcomes
        .into_iter()
        .zip(first)
        .map(|(o, b)| (o.unwrap().id, b))
        .collect();
    let before = f.writes();
    let second: Vec<Incoming> = (0..8)
        .map(|i| Incoming::Email(Bytes::from(email(910_000 + i, true))))
        .collect();
    // Count the writes of such a batch, then cut power just before its sync.
    let probe = Faulty::new();
    let probe_svc = services(&probe);
    probe_svc.load().await.unwrap();
    probe.arm(u64::MAX, FaultKind::Error);
    let _ = akte::ingest::Ingest::new(probe_svc.clone())
        .ingest("t", second.clone(), &d)
        .await;
    let batch_writes = probe.writes();
    f.arm(batch_writes.saturating_sub(2), FaultKind::PowerLoss);
    let lost = akte::ingest::Ingest::new(svc.clone())
        .ingest("t", second, &d)
        .await;
    assert!(
        lost.iter().all(|o| o.is_err()),
        "nothing of the cut batch acknowledged"
    );
    assert!(f.crashed(), "the power went ({} writes before)", before);
    f.restart(7).await;

    let archive = Archive::new(f.store(), Arc::new(SystemClock));
    let started = akte::api::start(archive, akte::api::ServerConfig::default(), None)
        .await
        .unwrap();
    let state = started.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(akte::api::serve(listener, state, async {
        let _ = rx.await;
    }));
    let token = started
        .new_admin_token
        .expect("an admin token on first start");
    let c = reqwest::Client::new();
    for (id, bytes) in &acked {
        let r = c
            .get(format!("http://{addr}/v1/records/{id}/content"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    let _ = tx.send(());
    let _ = server.await;
    let r = verify::verify(
        &f.store(),
        &verify::Options::default(),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(
        r.leftovers_recovered > 0,
        "the cut batch was recorded as leftovers"
    );
    common::report(&format!(
        "power loss during an import: {} acknowledged emails served after restart; {} leftovers recorded",
        acked.len(),
        r.leftovers_recovered
    ));
}

/// A bulk import stages a batch while the one before is committed. When that commit
/// fails, a copy of one of its records in the next batch is not reported a duplicate of
/// a record that does not exist: it fails, and importing again archives everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_the_copies_in_the_batch_staged_after_it() {
    struct Quiet;
    impl akte::ingest::import::Progress for Quiet {}
    let f = Faulty::new();
    let svc = services(&f);
    svc.load().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 300 messages: the first batch holds 256 of them; the second holds a copy of the 6th.
    for i in 0..300u64 {
        let raw = email(if i == 280 { 5 } else { i }, false);
        std::fs::write(dir.path().join(format!("{i:03}.eml")), raw).unwrap();
    }
    let ingest = akte::ingest::Ingest::new(svc.clone());
    let paths = [dir.path().to_path_buf()];
    let d = IngestDefaults::default();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let import = || akte::ingest::import::run(&ingest, "t", &paths, &d, false, &Quiet, &stop);
    f.fail_next_sync();
    let s = import().await.unwrap();
    assert_eq!(
        (s.archived, s.duplicates, s.failed),
        (43, 0, 257),
        "last failure: {:?}",
        s.failures.last()
    );
    let copy = s.failures.iter().find(|p| p.item.ends_with("280.eml"));
    assert!(
        copy.is_some_and(|p| p.reason.contains("did not commit")),
        "{copy:?}"
    );
    let again = import().await.unwrap();
    assert_eq!(
        (again.archived, again.duplicates, again.failed),
        (256, 44, 0),
        "first failure: {:?}",
        again.failures.first()
    );
}

/// A batch is planned while the two before it are planned, staged or committed: copies
/// of their records count by what those batches write. A copy two batches after its
/// record is a duplicate when that batch committed, and fails when its commit failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_two_batches_later_is_a_duplicate_only_if_its_batch_committed() {
    struct Quiet;
    impl akte::ingest::import::Progress for Quiet {}
    // 560 messages: batches of 256, 256 and 48; the third holds a copy of the 6th (first
    // batch) and one of the 301st (second batch).
    let files = |dir: &std::path::Path| {
        for i in 0..560u64 {
            let n = match i {
                530 => 5,
                540 => 300,
                i => i,
            };
            std::fs::write(dir.join(format!("{i:03}.eml")), email(n, false)).unwrap();
        }
    };
    for fail_first in [false, true] {
        let f = Faulty::new();
        let svc = services(&f);
        svc.load().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        files(dir.path());
        let ingest = akte::ingest::Ingest::new(svc.clone());
        let paths = [dir.path().to_path_buf()];
        let d = IngestDefaults::default();
        let stop = std::sync::atomic::AtomicBool::new(false);
        if fail_first {
            f.fail_next_sync();
        }
        let s = akte::ingest::import::run(&ingest, "t", &paths, &d, false, &Quiet, &stop)
            .await
            .unwrap();
        let counts = (s.archived, s.duplicates, s.failed);
        if fail_first {
            // The first batch and the copy of its record fail; the other copy is one.
            assert_eq!(counts, (302, 1, 257), "{:?}", s.failures.last());
            let copy = s.failures.iter().find(|p| p.item.ends_with("530.eml"));
            assert!(
                copy.is_some_and(|p| p.reason.contains("did not commit")),
                "{copy:?}"
            );
        } else {
            assert_eq!(counts, (558, 2, 0), "{:?}", s.failures.first());
        }
    }
}
