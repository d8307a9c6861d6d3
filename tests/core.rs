//! The archive core through the library: round trips, dedup, revisions, concurrency,
//! crash between revision and journal entry.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use akte::ErrorKind;
use akte::archive::{Amendment, Archive, NewRecord};
use akte::clock::SystemClock;
use akte::store::{Store, keys};
use akte::verify::{self, NoProgress};
use common::*;
use futures::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;

fn memory_archive() -> Archive {
    Archive::new(Store::open("memory://").unwrap(), Arc::new(SystemClock))
}

async fn verify_store(store: &Store) -> verify::Report {
    verify::verify(store, &verify::Options::default(), Arc::new(NoProgress))
        .await
        .unwrap()
}

async fn read_all(archive: &Archive, id: &str, rev: Option<u32>) -> Vec<u8> {
    let (_, s) = archive.open_content(id, rev, None).await.unwrap();
    let chunks: Vec<bytes::Bytes> = s.try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test]
async fn content_round_trips_byte_exact_for_empty_small_and_multi_part_inputs() {
    let archive = memory_archive();
    for (len, seed) in [(0usize, 1u64), (1, 2), (4096, 3), (20 * 1024 * 1024 + 3, 4)] {
        let data = pseudo_random(len, seed);
        let a = archive
            .archive("test", once(data.clone()), NewRecord::default())
            .await
            .unwrap();
        assert_eq!(a.sha256, sha256_hex(&data));
        assert_eq!(a.size, len as u64);
        let back = read_all(&archive, &a.id, None).await;
        assert_eq!(sha256_hex(&back), sha256_hex(&data), "len {len}");
    }
    assert!(verify_store(archive.store()).await.ok());
}

#[tokio::test]
async fn same_content_twice_is_two_records_sharing_one_blob() {
    let archive = memory_archive();
    let data = b"Rechnung 2025-001".to_vec();
    let a = archive
        .archive("t", once(data.clone()), NewRecord::default())
        .await
        .unwrap();
    let b = archive
        .archive("t", once(data), NewRecord::default())
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert!(a.new_blob);
    assert!(!b.new_blob);
    let blobs: Vec<_> = archive
        .store()
        .list_sorted(&keys::blobs_prefix())
        .await
        .unwrap();
    assert_eq!(blobs.len(), 1);
    assert_eq!(archive.journal().head_seq().await.unwrap(), 2);
}

#[tokio::test]
async fn amendments_add_revisions_and_keep_old_ones_readable() {
    let archive = memory_archive();
    let v1 = pseudo_random(1000, 9);
    let a = archive
        .archive(
            "alice",
            once(v1.clone()),
            NewRecord {
                class: Some("contract".into()),
                title: Some("Rahmenvertrag".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r2 = archive
        .amend(
            "bob",
            &a.id,
            Amendment {
                title: Some("Rahmenvertrag 2025".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r2.rev, 2);
    let v2 = pseudo_random(2000, 10);
    let r3 = archive
        .amend_content("bob", &a.id, once(v2.clone()), Default::default())
        .await
        .unwrap();
    assert_eq!(r3.rev, 3);
    assert_eq!(r3.content.version, 2);
    let hist = archive.history(&a.id).await.unwrap();
    assert_eq!(
        hist.iter().map(|r| r.rev).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(hist[0].title, "Rahmenvertrag");
    assert_eq!(read_all(&archive, &a.id, Some(1)).await, v1);
    assert_eq!(read_all(&archive, &a.id, None).await, v2);
    assert!(verify_store(archive.store()).await.ok());
}

#[tokio::test]
async fn retention_can_be_extended_but_never_shortened() {
    let archive = memory_archive();
    let a = archive
        .archive("t", once(vec![1]), NewRecord::default())
        .await
        .unwrap();
    let shorter = a.retain_until - chrono::Days::new(1);
    let err = archive
        .amend(
            "t",
            &a.id,
            Amendment {
                retain_until: Some(shorter),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    // A class change that would compute a shorter period keeps the longer one.
    let r = archive
        .amend(
            "t",
            &a.id,
            Amendment {
                class: Some("email".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.retention.retain_until, a.retain_until);
    let longer = a.retain_until + chrono::Days::new(365);
    let r = archive
        .amend(
            "t",
            &a.id,
            Amendment {
                retain_until: Some(longer),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.retention.retain_until, longer);
    assert_eq!(
        archive.delete("t", &a.id).await.unwrap_err().kind(),
        ErrorKind::Locked
    );
}

#[tokio::test]
async fn unknown_ids_and_bad_metadata_are_clear_errors() {
    let archive = memory_archive();
    let unknown = "01900000-0000-7000-8000-000000000000";
    assert_eq!(
        archive.latest(unknown).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        archive.latest("../etc").await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
    let bad = NewRecord {
        class: Some("Not A Class".into()),
        ..Default::default()
    };
    let err = archive.archive("t", once(vec![1]), bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(err.to_string().contains("class"));
    // Nothing was written for the refused record.
    assert_eq!(archive.journal().head_seq().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_archive_1000_records_into_a_gap_free_journal() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().display().to_string();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        // Each task has its own Archive (its own journal head), like separate nodes.
        let archive = Archive::new(Store::open(&spec).unwrap(), Arc::new(SystemClock));
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..125u64 {
                let data = pseudo_random(64 + (i as usize % 7) * 100, t * 1000 + i + 1);
                ids.push(
                    archive
                        .archive("w", once(data), NewRecord::default())
                        .await
                        .unwrap()
                        .journal_seq,
                );
            }
            ids
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=1000).collect::<Vec<u64>>(),
        "every record got its own sequence number"
    );
    let store = Store::open(&spec).unwrap();
    let report = verify_store(&store).await;
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.journal_entries, 1000);
    assert_eq!(report.records, 1000);
}

#[tokio::test]
async fn crash_before_journal_entry_is_invisible_and_set_aside_by_recovery() {
    let mem: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let fault = Arc::new(FaultStore::new(mem));
    let store = Store::from_object_store(fault.clone(), "fault");
    let archive = Archive::new(store.clone(), Arc::new(SystemClock));
    let kept = archive
        .archive("t", once(vec![1, 2, 3]), NewRecord::default())
        .await
        .unwrap();

    fault.fail_journal.store(true, Ordering::SeqCst);
    let err = archive
        .archive("t", once(vec![4, 5, 6]), NewRecord::default())
        .await;
    assert!(
        err.is_err(),
        "an ingest whose journal entry failed is not acknowledged"
    );
    // An amendment whose entry fails leaves revision 2 behind.
    let amend = archive
        .amend(
            "t",
            &kept.id,
            Amendment {
                title: Some("never committed".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(amend.is_err());
    fault.fail_journal.store(false, Ordering::SeqCst);

    // Before recovery: leftovers are warnings, not problems, and no reader sees them.
    let report = verify_store(&store).await;
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.unjournaled.len(), 2, "{:?}", report.warnings);
    let fresh = Archive::new(store.clone(), Arc::new(SystemClock));
    let leftover = &report
        .unjournaled
        .iter()
        .find(|u| u.id != kept.id)
        .unwrap()
        .id;
    assert_eq!(
        fresh.latest(leftover).await.unwrap_err().kind(),
        ErrorKind::NotFound,
        "a revision no journal entry names does not exist"
    );
    let latest = fresh.latest(&kept.id).await.unwrap();
    assert_eq!((latest.rev, latest.title.as_str()), (1, ""));

    // A writer's start records them in one entry; verify is then clean.
    let w =
        akte::audit::recovery::start_writer(fresh.store(), fresh.journal(), fresh.clock(), "test")
            .await
            .unwrap();
    assert_eq!(w.recovery.recorded.len(), 2);
    assert_eq!(w.recovery.entries.len(), 1);
    let e = fresh
        .journal()
        .read(w.recovery.entries[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.action, "store.recover");
    assert!(e.written().is_empty(), "recovery commits nothing");
    let after = verify_store(&store).await;
    assert!(after.ok(), "{:?}", after.problems);
    assert!(after.warnings.is_empty(), "{:?}", after.warnings);
    assert_eq!(after.leftovers_recovered, 2);
    assert_eq!(after.records, 1);
    // A second recovery finds nothing new.
    let again =
        akte::audit::recovery::recover(fresh.store(), fresh.journal(), fresh.clock(), "test", true)
            .await
            .unwrap();
    assert!(again.recorded.is_empty() && again.entries.is_empty());

    // The record whose revision 2 was left behind can still be amended: past it.
    let next = fresh
        .amend(
            "t",
            &kept.id,
            Amendment {
                title: Some("committed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(next.rev, 3);
    let history = fresh.history(&kept.id).await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.rev).collect::<Vec<_>>(),
        vec![1, 3]
    );
    let after = verify_store(&store).await;
    assert!(after.ok(), "{:?}", after.problems);
}

#[tokio::test]
async fn journal_lists_entries_since_a_sequence_number() {
    let archive = memory_archive();
    for i in 0..5u8 {
        archive
            .archive("t", once(vec![i]), NewRecord::default())
            .await
            .unwrap();
    }
    let e = archive.journal().entries(2, 100).await.unwrap();
    assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
    let stream_len = futures::stream::iter(e).count().await;
    assert_eq!(stream_len, 3);
}

#[tokio::test]
async fn a_read_is_journaled_before_it_returns_and_fails_when_it_cannot_be() {
    use akte::audit::reads::{ReadEvent, ReadLog};
    let mem: Arc<dyn object_store::ObjectStore> = Arc::new(InMemory::new());
    let fault = Arc::new(FaultStore::new(mem));
    let store = Store::from_object_store(fault.clone(), "fault");
    let archive = Archive::new(store, Arc::new(SystemClock));
    let log = ReadLog::start(archive.journal_arc());
    let ev = |what| ReadEvent {
        actor: "alice via token:a:1".into(),
        record_id: "01a23300-0000-7000-8000-000000000001".into(),
        rev: 1,
        what,
    };
    log.record(ev("content")).await.unwrap();
    let entries = archive.journal().entries(0, 10).await.unwrap();
    assert_eq!(entries.len(), 1, "durable when record() returns");
    assert_eq!(entries[0].action, "record.read");
    log.record(ev("party")).await.unwrap();
    let entries = archive.journal().entries(0, 10).await.unwrap();
    assert_eq!(entries[1].action, "party.read");
    assert_eq!(entries[1].subjects[0].kind, "party");
    // The journal cannot be written: the read fails instead of being dropped.
    fault.fail_journal.store(true, Ordering::SeqCst);
    assert!(log.record(ev("content")).await.is_err());
    fault.fail_journal.store(false, Ordering::SeqCst);
    log.shutdown().await;
    assert!(
        log.record(ev("content")).await.is_err(),
        "closed after shutdown"
    );
}
