//! Holds, four-eyes disposal, tombstones, clock safety.

mod common;

use std::sync::Arc;

use akte::ErrorKind;
use akte::archive::{Amendment, Archive, NewRecord};
use akte::clock::{Clock, FixedClock};
use akte::disposal::hold::HoldScope;
use akte::record::PartyLink;
use akte::service::Services;
use akte::store::{Store, keys};
use akte::verify::{self, NoProgress};
use chrono::{NaiveDate, TimeZone, Utc};
use common::*;

fn at(y: i32, m: u32, d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

async fn setup() -> (Services, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at(2026, 11, 26)));
    let s = Services::new(Archive::new(
        Store::open("memory://").unwrap(),
        clock.clone(),
    ));
    s.load().await.unwrap();
    (s, clock)
}

async fn archive(s: &Services, body: &[u8], class: &str, date: &str) -> String {
    let meta = NewRecord {
        class: Some(class.into()),
        title: Some("Brief an Erika Mustermann".into()),
        document_date: Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()),
        ..Default::default()
    };
    s.archive("alice", once(body.to_vec()), meta)
        .await
        .unwrap()
        .id
}

async fn verify_report(s: &Services) -> verify::Report {
    verify::verify(
        s.archive.store(),
        &verify::Options::default(),
        Arc::new(NoProgress),
    )
    .await
    .unwrap()
}

async fn refusals(s: &Services) -> usize {
    s.archive
        .journal()
        .entries(0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "retention.refused")
        .count()
}

#[tokio::test]
async fn disposal_end_to_end_with_four_eyes_tombstone_and_shared_blob() {
    let (s, _) = setup().await;
    // Business letters from 2015: six years from end of 2015 → eligible since 2022.
    let old = archive(&s, b"Brief 2015", "business-letter", "2015-03-01").await;
    let shared_old = archive(&s, b"gemeinsamer Inhalt", "business-letter", "2015-04-01").await;
    let shared_live = archive(&s, b"gemeinsamer Inhalt", "contract", "2025-04-01").await;
    let young = archive(&s, b"Brief 2025", "business-letter", "2025-03-01").await;

    let eligible: Vec<String> = s
        .disposals
        .eligible(&s.catalog, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(eligible.contains(&old) && eligible.contains(&shared_old));
    assert!(!eligible.contains(&young) && !eligible.contains(&shared_live));

    // An unexpired record cannot even be requested.
    let e = s
        .disposals
        .request("alice", std::slice::from_ref(&young), "Aufräumen")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Locked);
    assert!(e.to_string().contains("retained until 2031-12-31"), "{e}");

    let req = s
        .disposals
        .request(
            "alice",
            &[old.clone(), shared_old.clone()],
            "Aufbewahrungsfrist abgelaufen",
        )
        .await
        .unwrap();
    // The requester cannot approve.
    let e = s.disposals.approve("alice", &req.id).await.unwrap_err();
    assert!(matches!(e, akte::Error::FourEyes { .. }));
    let done = s.disposals.approve("bob", &req.id).await.unwrap();
    assert_eq!(done.approved_by.as_deref(), Some("bob"));
    assert_eq!(done.items.len(), 2);

    let sha_old = sha256_hex(b"Brief 2015");
    let sha_shared = sha256_hex(b"gemeinsamer Inhalt");
    assert!(
        !s.archive
            .store()
            .exists(&keys::blob(&sha_old))
            .await
            .unwrap(),
        "the blob is gone"
    );
    assert!(
        s.archive
            .store()
            .exists(&keys::blob(&sha_shared))
            .await
            .unwrap(),
        "a live record still uses the shared blob"
    );
    let t = s.archive.latest(&old).await.unwrap();
    let tomb = t.tombstone.as_ref().unwrap();
    assert_eq!(
        (tomb.requested_by.as_str(), tomb.approved_by.as_str()),
        ("alice", "bob")
    );
    assert_eq!(tomb.contents[0].0, sha_old);
    assert_eq!(tomb.legal_basis, t.retention.legal_basis);
    assert!(
        t.title.is_empty() && t.content.file_name.is_none(),
        "no personal data in the tombstone"
    );
    // The disposed record cannot be read, changed or disposed again; its history stays.
    assert_eq!(
        s.archive
            .open_content(&old, None, None)
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::Locked)
    );
    assert!(
        s.archive
            .amend(
                "x",
                &old,
                Amendment {
                    title: Some("neu".into()),
                    ..Default::default()
                }
            )
            .await
            .is_err()
    );
    assert_eq!(s.archive.history(&old).await.unwrap().len(), 2);
    // The live record sharing the blob is intact.
    let (_, stream) = s
        .archive
        .open_content(&shared_live, None, None)
        .await
        .unwrap();
    let bytes: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(stream).await.unwrap();
    assert_eq!(bytes.concat(), b"gemeinsamer Inhalt");
    // Verify: tombstoned content is legitimately absent.
    let r = verify_report(&s).await;
    assert!(r.ok(), "{:?}", r.problems);
    let cert = akte::disposal::certificate_html(&s.disposals.get(&req.id).await.unwrap());
    assert!(cert.contains(&sha_old) && cert.contains("bob") && cert.contains("Löschprotokoll"));
    assert!(
        !cert.contains("Mustermann"),
        "no personal data in the certificate"
    );
}

#[tokio::test]
async fn holds_block_disposal_and_a_party_hold_covers_later_links() {
    let (s, _) = setup().await;
    let party = s
        .parties
        .create(
            "alice",
            akte::party::PartyData {
                kind: akte::party::PartyKind::Organisation,
                name: "Streitfall GmbH".into(),
                addresses: vec![],
                emails: vec![],
                phones: vec![],
                domains: vec![],
                vat_id: None,
                register_number: None,
                identifiers: Default::default(),
                roles: vec![],
                relations: vec![],
                notes: None,
            },
        )
        .await
        .unwrap();
    let pid = party.revision.id.clone();
    let hold = s
        .holds
        .place(
            "alice",
            "Rechtsstreit 2026",
            "Klage LG München",
            Some("Rechtsabteilung".into()),
            HoldScope::Party { id: pid.clone() },
        )
        .await
        .unwrap();
    // A record linked to the party *after* the hold was placed is covered.
    let meta = NewRecord {
        class: Some("business-letter".into()),
        document_date: Some(NaiveDate::from_ymd_opt(2015, 1, 1).unwrap()),
        parties: vec![PartyLink {
            party: pid.clone(),
            role: "recipient".into(),
            reason: None,
        }],
        ..Default::default()
    };
    let linked = s
        .archive("alice", once(b"Schriftsatz".to_vec()), meta)
        .await
        .unwrap()
        .id;
    let class_hold = s
        .holds
        .place(
            "alice",
            "Betriebsprüfung",
            "Prüfung 2014-2016",
            None,
            HoldScope::Class {
                class: "invoice".into(),
                from: NaiveDate::from_ymd_opt(2014, 1, 1),
                to: NaiveDate::from_ymd_opt(2016, 12, 31),
            },
        )
        .await
        .unwrap();
    let invoice = archive(&s, b"RE 2015", "invoice", "2015-06-30").await;
    let before = refusals(&s).await;
    for id in [&linked, &invoice] {
        let e = s
            .disposals
            .request("alice", std::slice::from_ref(id), "alt")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("on legal hold"), "{e}");
    }
    assert_eq!(
        refusals(&s).await,
        before + 2,
        "refused attempts are journaled"
    );
    // The report (from the catalog's summaries) names the same holds, also for a record
    // of a party merged into the held one after the hold was placed.
    let other = s
        .parties
        .create(
            "alice",
            akte::party::PartyData {
                kind: akte::party::PartyKind::Organisation,
                name: "Dublette GmbH".into(),
                addresses: vec![],
                emails: vec![],
                phones: vec![],
                domains: vec![],
                vat_id: None,
                register_number: None,
                identifiers: Default::default(),
                roles: vec![],
                relations: vec![],
                notes: None,
            },
        )
        .await
        .unwrap()
        .revision
        .id;
    let of_other = s
        .archive(
            "alice",
            once(b"Altes Schreiben".to_vec()),
            NewRecord {
                class: Some("business-letter".into()),
                document_date: Some(NaiveDate::from_ymd_opt(2015, 2, 1).unwrap()),
                parties: vec![PartyLink {
                    party: other.clone(),
                    role: "sender".into(),
                    reason: None,
                }],
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let report = |s: &Services| {
        let s = s.clone();
        async move {
            akte::disposal::report::build(&s.archive, &s.catalog, &s.holds, &s.disposals, true)
                .await
                .unwrap()
        }
    };
    let state = |r: &akte::disposal::report::RetentionReport, id: &str| {
        let row = r.records.iter().find(|x| x.id == id).unwrap();
        (row.state.clone(), row.holds.clone())
    };
    let r = report(&s).await;
    assert_eq!(
        state(&r, &linked),
        ("held".into(), vec!["Rechtsstreit 2026".to_string()])
    );
    assert_eq!(
        state(&r, &invoice),
        ("held".into(), vec!["Betriebsprüfung".to_string()])
    );
    assert_eq!(state(&r, &of_other), ("eligible".into(), vec![]));
    let survivor = s
        .parties
        .merge("alice", &other, &pid, Some("Dublette".into()))
        .await
        .unwrap();
    s.catalog.put_party(&survivor).await;
    s.catalog
        .put_party(&s.parties.get(&other).await.unwrap())
        .await;
    let r = report(&s).await;
    assert_eq!(
        state(&r, &of_other),
        ("held".into(), vec!["Rechtsstreit 2026".to_string()])
    );
    assert_eq!(r.holds.iter().find(|h| h.id == hold.id).unwrap().records, 2);
    assert!(
        s.disposals
            .request("alice", std::slice::from_ref(&of_other), "alt")
            .await
            .is_err(),
        "the report and the disposal check agree"
    );
    // Released holds stop blocking.
    s.holds
        .release("bob", &hold.id, "Verfahren beendet")
        .await
        .unwrap();
    s.holds
        .release("bob", &class_hold.id, "Prüfung abgeschlossen")
        .await
        .unwrap();
    let req = s
        .disposals
        .request(
            "alice",
            &[linked.clone(), invoice.clone()],
            "Frist abgelaufen",
        )
        .await
        .unwrap();
    // A hold placed between request and approval blocks the approval.
    let late = s
        .holds
        .place(
            "carol",
            "Neue Anfrage",
            "Auskunftsersuchen",
            None,
            HoldScope::Records {
                ids: vec![invoice.clone()],
            },
        )
        .await
        .unwrap();
    let e = s.disposals.approve("bob", &req.id).await.unwrap_err();
    assert!(e.to_string().contains("Neue Anfrage"), "{e}");
    assert!(
        s.archive
            .latest(&invoice)
            .await
            .unwrap()
            .tombstone
            .is_none(),
        "nothing was disposed"
    );
    s.holds
        .release("carol", &late.id, "erledigt")
        .await
        .unwrap();
    s.disposals.approve("bob", &req.id).await.unwrap();
    assert!(verify_report(&s).await.ok());
}

#[tokio::test]
async fn a_clock_moved_back_refuses_retention_decisions() {
    let (s, clock) = setup().await;
    let id = archive(&s, b"alt", "business-letter", "2015-03-01").await;
    clock.set(at(2026, 11, 1));
    let e = s
        .disposals
        .request("alice", std::slice::from_ref(&id), "alt")
        .await
        .unwrap_err();
    assert!(matches!(e, akte::Error::ClockBehind { .. }), "{e}");
    clock.set(at(2026, 11, 27));
    let req = s
        .disposals
        .request("alice", std::slice::from_ref(&id), "alt")
        .await
        .unwrap();
    clock.set(at(2026, 11, 20));
    assert!(matches!(
        s.disposals.approve("bob", &req.id).await.unwrap_err(),
        akte::Error::ClockBehind { .. }
    ));
    assert!(s.archive.latest(&id).await.unwrap().tombstone.is_none());
    assert_eq!(clock.now(), at(2026, 11, 20));
}

#[tokio::test]
async fn deleting_a_blob_without_disposal_is_reported() {
    let mem: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let store = Store::from_object_store(mem.clone(), "mem");
    let clock = Arc::new(FixedClock::new(at(2026, 11, 26)));
    let s = Services::new(Archive::new(store, clock));
    archive(&s, b"weg", "business-letter", "2015-03-01").await;
    let sha = sha256_hex(b"weg");
    object_store::ObjectStoreExt::delete(&*mem, &keys::blob(&sha))
        .await
        .unwrap();
    let r = verify_report(&s).await;
    assert!(
        r.problems
            .iter()
            .any(|p| p.key == keys::blob(&sha).as_ref()),
        "{:?}",
        r.problems
    );
}

#[tokio::test]
async fn events_and_catalogue_changes_only_extend_and_are_journaled() {
    let (s, clock) = setup().await;
    let contract = archive(&s, b"Rahmenvertrag", "contract", "2020-03-01").await;
    let r = s.archive.latest(&contract).await.unwrap();
    assert_eq!(
        r.retention.retain_until,
        NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
    );
    assert_eq!(r.retention.awaiting_event.as_deref(), Some("contract end"));
    let ended = s
        .archive
        .record_event(
            "alice",
            &contract,
            NaiveDate::from_ymd_opt(2029, 6, 30).unwrap(),
            Some("gekündigt".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        ended.retention.retain_until,
        NaiveDate::from_ymd_opt(2035, 12, 31).unwrap()
    );
    assert!(ended.retention.awaiting_event.is_none());
    // A company catalogue keeps emails ten years: recomputation extends, once.
    let mail = archive(&s, b"Mail", "email", "2024-02-01").await;
    let company = akte::retention::catalogue::Catalogue::parse("version = \"acme-1\"\n[[class]]\nid = \"email\"\nyears = 10\nbasis = \"Konzernrichtlinie 7.3\"\n").unwrap();
    let archive2 = Archive::new(s.archive.store().clone(), clock.clone())
        .with_catalogue(akte::retention::catalogue::Catalogue::shipped().with_company(company));
    let r = archive2
        .recompute_retention("alice", &mail)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.retention.retain_until,
        NaiveDate::from_ymd_opt(2034, 12, 31).unwrap()
    );
    assert_eq!(r.retention.catalogue, "de-2025.1+acme-1");
    assert!(
        archive2
            .recompute_retention("alice", &mail)
            .await
            .unwrap()
            .is_none()
    );
    // Back to the shipped catalogue: nothing shortens.
    assert!(
        s.archive
            .recompute_retention("alice", &mail)
            .await
            .unwrap()
            .is_none()
    );
    let actions: Vec<String> = s
        .archive
        .journal()
        .entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "record.retention").count(),
        2
    );
    assert!(verify_report(&s).await.ok());
}

fn person(name: &str, email: &str, notes: &str) -> akte::party::PartyData {
    akte::party::PartyData {
        kind: akte::party::PartyKind::Person,
        name: name.into(),
        addresses: vec![akte::party::Address {
            street: Some(format!("{name}weg 1")),
            postcode: None,
            city: Some("Köln".into()),
            country: None,
        }],
        emails: vec![email.into()],
        phones: vec!["+49 221 4711".into()],
        domains: vec![],
        vat_id: None,
        register_number: None,
        identifiers: Default::default(),
        roles: vec![akte::party::RoleEntry {
            role: "customer".into(),
            number: Some("K-77".into()),
            since: None,
            until: None,
            notes: None,
        }],
        relations: vec![],
        notes: Some(notes.into()),
    }
}

fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn erasure_waits_for_retention_then_leaves_no_trace_of_the_canary() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(at(2026, 11, 26)));
    let s = Services::new(Archive::new(
        Store::open(dir.path().to_str().unwrap()).unwrap(),
        clock.clone(),
    ));
    s.load().await.unwrap();
    let canary = "Xylophonquetzal";
    let p = s
        .parties
        .create(
            "alice",
            person(
                &format!("Erika {canary}"),
                "xylophonquetzal@example.org",
                &format!("mag {canary}-Tee"),
            ),
        )
        .await
        .unwrap();
    s.catalog.put_party(&p).await;
    let pid = p.revision.id.clone();
    let link = |d: &str, class: &str, title: String| NewRecord {
        class: Some(class.into()),
        title: Some(title),
        file_name: Some(format!("{}.txt", d)),
        document_date: Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()),
        parties: vec![PartyLink {
            party: pid.clone(),
            role: "recipient".into(),
            reason: None,
        }],
        ..Default::default()
    };
    let old = s
        .archive(
            "alice",
            once(b"Brief 2015".to_vec()),
            link(
                "2015-01-10",
                "business-letter",
                format!("Brief an Erika {canary}"),
            ),
        )
        .await
        .unwrap()
        .id;
    assert_eq!(
        s.archive.latest(&old).await.unwrap().title,
        format!("Brief an Erika {canary}")
    );
    let young = s
        .archive(
            "alice",
            once(b"Brief 2025".to_vec()),
            link("2025-01-10", "business-letter", "Rundschreiben".into()),
        )
        .await
        .unwrap()
        .id;

    // While a record is retained, the duty to keep it comes first (Art. 17 (3) (b)).
    let e = s
        .erase_party("alice", &pid, "Löschersuchen")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("record {young} is retained until 2031-12-31")),
        "{e}"
    );
    // Unlink the young record (a mistaken link) and dispose of the old one.
    s.link(
        "alice",
        &young,
        akte::archive::LinkChange {
            remove_parties: vec![(pid.clone(), "*".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let req = s
        .disposals
        .request("alice", std::slice::from_ref(&old), "Frist abgelaufen")
        .await
        .unwrap();
    s.disposals.approve("bob", &req.id).await.unwrap();
    let before = files_containing(dir.path(), canary.as_bytes());
    assert!(
        before.is_empty(),
        "personal data are never stored in clear: {before:?}"
    );

    // Another process has the party's key in its cache.
    let other = Services::new(Archive::new(
        Store::open(dir.path().to_str().unwrap()).unwrap(),
        clock.clone(),
    ));
    other.load().await.unwrap();
    assert_ne!(other.parties.get(&pid).await.unwrap().data.name, "(erased)");
    let erased = s
        .erase_party("alice", &pid, "Löschersuchen nach Ablauf der Fristen")
        .await
        .unwrap();
    // Once it sees the journal entry, it drops the key: no stale decryption.
    other.archive.journal().sync_ledger().await.unwrap();
    assert_eq!(
        other.parties.get(&pid).await.unwrap().data.name,
        "(erased)",
        "a destroyed key leaves every process's cache"
    );
    assert!(erased.erased);
    assert_eq!(erased.data.name, "(erased)");
    assert!(
        erased.data.emails.is_empty()
            && erased.data.notes.is_none()
            && erased.data.addresses.is_empty()
    );
    assert_eq!(
        erased.data.roles[0].number.as_deref(),
        Some("K-77"),
        "non-personal facts stay"
    );
    assert!(
        !dir.path().join(keys::party_key(&pid).as_ref()).exists(),
        "the key is destroyed"
    );
    // Every earlier revision is now unreadable: no revision yields the canary any more.
    for rev in s.parties.history(&pid).await.unwrap() {
        assert!(!format!("{:?}", rev.data).contains(canary));
    }
    for rev in s.archive.history(&old).await.unwrap() {
        assert!(
            !rev.title.contains(canary),
            "record revision {} still readable",
            rev.rev
        );
    }
    // Nowhere in the store, and not in a catalog rebuilt from it.
    assert!(files_containing(dir.path(), canary.as_bytes()).is_empty());
    let fresh = Services::new(Archive::new(
        Store::open(dir.path().to_str().unwrap()).unwrap(),
        clock.clone(),
    ));
    fresh.load().await.unwrap();
    let view = serde_json::to_string(
        &fresh
            .catalog
            .file(&pid, NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(), 1, 50)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!view.contains(canary) && !view.to_lowercase().contains(&canary.to_lowercase()));
    // The store still verifies: the key's absence is covered by the journaled erasure.
    let r = verify::verify(
        fresh.archive.store(),
        &verify::Options::default(),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    // An erased party cannot be erased again.
    assert!(s.erase_party("alice", &pid, "nochmal").await.is_err());
}

#[tokio::test]
async fn the_retention_report_counts_what_the_auditor_asks_for() {
    let (s, _) = setup().await;
    let old = archive(&s, b"alt", "business-letter", "2015-03-01").await;
    let held = archive(&s, b"gehalten", "business-letter", "2015-03-02").await;
    let soon = archive(&s, b"bald", "business-letter", "2020-06-01").await; // until 2026-12-31
    archive(&s, b"neu", "invoice", "2025-06-01").await;
    archive(&s, b"vertrag", "contract", "2025-01-01").await;
    archive(&s, b"was auch immer", "widget-spec", "2025-01-01").await;
    let gone = archive(&s, b"weg", "business-letter", "2015-03-03").await;
    s.holds
        .place(
            "alice",
            "Prüfung",
            "Betriebsprüfung",
            None,
            HoldScope::Records {
                ids: vec![held.clone()],
            },
        )
        .await
        .unwrap();
    let req = s
        .disposals
        .request("alice", std::slice::from_ref(&gone), "Frist")
        .await
        .unwrap();
    s.disposals.approve("bob", &req.id).await.unwrap();
    let r = akte::disposal::report::build(&s.archive, &s.catalog, &s.holds, &s.disposals, true)
        .await
        .unwrap();
    assert_eq!(r.records_total, 7);
    assert_eq!(r.eligible_now, 1, "{:?}", r.records);
    assert_eq!(r.on_hold, 1);
    assert_eq!(r.disposed, 1);
    assert_eq!(r.awaiting_event, 1);
    assert_eq!(r.without_policy, 1);
    assert_eq!((r.expiring_30_days, r.expiring_90_days), (0, 1));
    assert_eq!(r.holds[0].records, 1);
    assert_eq!(r.disposals[0].approved_by.as_deref(), Some("bob"));
    // The last verification is named from the ledger, with entries after it.
    assert_eq!(r.last_verify, None);
    for detail in ["1 problem", "0 problems"] {
        s.archive
            .journal()
            .append(akte::audit::journal::Draft {
                actor: "carol".into(),
                action: "audit.verify".into(),
                subjects: vec![],
                payload_digest: None,
                detail: Some(detail.into()),
            })
            .await
            .unwrap();
    }
    archive(&s, b"danach", "invoice", "2025-07-01").await;
    let again =
        akte::disposal::report::build(&s.archive, &s.catalog, &s.holds, &s.disposals, false)
            .await
            .unwrap();
    let last = again.last_verify.unwrap_or_default();
    assert!(last.contains("by carol: 0 problems"), "{last}");
    assert!(again.records.is_empty(), "no rows asked for");
    assert_eq!(again.records_total, 8);
    let state = |id: &str| r.records.iter().find(|x| x.id == id).unwrap().state.clone();
    assert_eq!(
        (state(&old), state(&held), state(&soon), state(&gone)),
        (
            "eligible".into(),
            "held".into(),
            "retained".into(),
            "disposed".into()
        )
    );
    let csv = akte::disposal::report::to_csv(&r);
    assert_eq!(csv.lines().count(), 8);
    assert!(akte::disposal::report::to_html(&r).contains("Prüfung"));
}

#[tokio::test]
async fn closing_a_case_starts_the_period_of_its_service_reports() {
    let (s, clock) = setup().await;
    let p = s
        .parties
        .create(
            "alice",
            akte::party::PartyData {
                kind: akte::party::PartyKind::Organisation,
                name: "Kunde".into(),
                addresses: vec![],
                emails: vec![],
                phones: vec![],
                domains: vec![],
                vat_id: None,
                register_number: None,
                identifiers: Default::default(),
                roles: vec![],
                relations: vec![],
                notes: None,
            },
        )
        .await
        .unwrap();
    s.catalog.put_party(&p).await;
    let case = s
        .cases
        .create(
            "alice",
            akte::case::NewCase {
                kind: "service-case".into(),
                title: "Wartung".into(),
                party: p.revision.id.clone(),
                valid_from: None,
                valid_until: None,
                reference: None,
            },
        )
        .await
        .unwrap();
    s.catalog.put_case(&case).await;
    let meta = NewRecord {
        class: Some("service-report".into()),
        document_date: Some(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()),
        cases: vec![case.id.clone()],
        ..Default::default()
    };
    let id = s
        .archive("alice", once(b"Bericht".to_vec()), meta)
        .await
        .unwrap()
        .id;
    assert_eq!(
        s.archive.latest(&id).await.unwrap().retention.retain_until,
        NaiveDate::from_ymd_opt(2030, 12, 31).unwrap()
    );
    clock.set(at(2028, 2, 1));
    s.change_case(
        "bob",
        &case.id,
        akte::case::CaseChange {
            status: Some(akte::case::CaseStatus::Closed),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = s.archive.latest(&id).await.unwrap();
    assert_eq!(
        r.retention.retain_until,
        NaiveDate::from_ymd_opt(2034, 12, 31).unwrap(),
        "six years from the end of 2028"
    );
    assert!(r.retention.awaiting_event.is_none());
}

/// Writes revision `rev + 1` of `id` as someone with the store's keys and the code would:
/// well-formed, chained, journaled. Returns its key.
async fn forge<T: serde::Serialize>(
    s: &Services,
    kind: akte::store::keys::ObjectKind,
    id: &str,
    decode: fn(&str, &[u8]) -> akte::Result<T>,
    change: impl FnOnce(&mut T, String) -> u32,
) -> String {
    let (mut r, hash) =
        akte::audit::latest_revision(s.archive.store(), s.archive.journal(), kind, id, decode)
            .await
            .unwrap();
    let rev = change(&mut r, hash);
    akte::audit::commit_revision(
        s.archive.store(),
        s.archive.journal(),
        kind,
        id,
        rev,
        akte::store::codec::encode(&r).unwrap(),
        "operator",
        "record.amend",
        None,
    )
    .await
    .unwrap();
    keys::revision(kind, id, rev).to_string()
}

/// Forges the next revision of record `id`, changed by `change`. Returns its key.
async fn forge_record(
    s: &Services,
    id: &str,
    change: impl FnOnce(&mut akte::record::RecordRevision),
) -> String {
    use akte::record::RecordRevision;
    forge(
        s,
        keys::ObjectKind::Record,
        id,
        RecordRevision::decode,
        |r: &mut RecordRevision, h| {
            r.rev += 1;
            r.prev_hash = Some(h);
            change(r);
            r.rev
        },
    )
    .await
}

/// Forges the approval of disposal request `id` by `by` at `at`.
async fn forge_approval(s: &Services, id: &str, by: &str, at: chrono::DateTime<Utc>) {
    use akte::disposal::{DisposalRevision, DisposalState};
    forge(
        s,
        keys::ObjectKind::Disposal,
        id,
        DisposalRevision::decode,
        |d: &mut DisposalRevision, h| {
            d.rev += 1;
            d.prev_hash = Some(h);
            d.state = DisposalState::Approved;
            d.approved_by = Some(by.into());
            d.approved_at = Some(at);
            d.rev
        },
    )
    .await;
}

/// A tombstone of `r` naming `disposal`, approved by `by`.
fn forged_tombstone(
    r: &akte::record::RecordRevision,
    disposal: &str,
    by: &str,
    at: chrono::DateTime<Utc>,
) -> akte::record::Tombstone {
    akte::record::Tombstone {
        disposal: disposal.into(),
        disposed_at: at,
        requested_by: "alice".into(),
        approved_by: by.into(),
        reason: "weg".into(),
        class: r.class.clone(),
        policy: r.retention.policy.clone(),
        legal_basis: r.retention.legal_basis.clone(),
        retain_until: r.retention.retain_until,
        contents: vec![],
        blobs_deleted: vec![],
    }
}

/// Issue #18: the rules `verify` checks. Someone who controls the store and runs the code
/// can append well-formed, journaled revisions; the hash chain holds, but a retention
/// shortened, a tombstone without a disposal, a disposal approved by its requester and a
/// disposal of a held record are each named with the revision that breaks the rule.
#[tokio::test]
async fn verify_names_journaled_revisions_that_break_the_archives_rules() {
    let (s, clock) = setup().await;
    // A disposal by the rules passes.
    let fine = archive(&s, b"Brief 2015", "business-letter", "2015-03-01").await;
    let req = s
        .disposals
        .request("alice", std::slice::from_ref(&fine), "abgelaufen")
        .await
        .unwrap();
    s.disposals.approve("bob", &req.id).await.unwrap();
    let r = verify_report(&s).await;
    assert!(r.problems.is_empty(), "{:?}", r.problems);

    // 1. A contract's retention cut to a date long past.
    let contract = archive(&s, b"Vertrag 2025", "contract", "2025-03-01").await;
    let shortened = forge_record(&s, &contract, |r| {
        r.retention.retain_until = NaiveDate::from_ymd_opt(2020, 12, 31).unwrap();
    })
    .await;

    // 2. A tombstone that names no disposal.
    let letter = archive(&s, b"Brief 2014", "business-letter", "2014-03-01").await;
    let fabricated = forge_record(&s, &letter, |r| {
        let fake = "01900000-0000-7000-8000-000000000000";
        r.tombstone = Some(forged_tombstone(r, fake, "bob", clock.now()));
    })
    .await;

    // 3. A request approved by its own requester (another token of the same person).
    let own = archive(&s, b"Brief 2013", "business-letter", "2013-03-01").await;
    let own_req = s
        .disposals
        .request("carol", std::slice::from_ref(&own), "abgelaufen")
        .await
        .unwrap();
    let other_token = format!("carol{}2", akte::access::PERSON_SEP);
    forge_approval(&s, &own_req.id, &other_token, clock.now()).await;
    let self_approved = forge_record(&s, &own, |r| {
        r.tombstone = Some(forged_tombstone(r, &own_req.id, "carol", clock.now()));
    })
    .await;

    // 4. A record disposed while a hold covered it.
    let held = archive(&s, b"Brief 2012", "business-letter", "2012-03-01").await;
    let held_req = s
        .disposals
        .request("alice", std::slice::from_ref(&held), "abgelaufen")
        .await
        .unwrap();
    let hold = s
        .holds
        .place(
            "bob",
            "Prüfung",
            "Betriebsprüfung",
            None,
            HoldScope::Records {
                ids: vec![held.clone()],
            },
        )
        .await
        .unwrap();
    clock.set(at(2026, 11, 27));
    forge_approval(&s, &held_req.id, "bob", clock.now()).await;
    let under_hold = forge_record(&s, &held, |r| {
        r.tombstone = Some(forged_tombstone(r, &held_req.id, "bob", clock.now()));
    })
    .await;

    let r = verify_report(&s).await;
    let named = |key: &str, what: &str| {
        assert!(
            r.problems
                .iter()
                .any(|p| p.key == key && p.what.contains(what)),
            "{key}: {what} in {:#?}",
            r.problems
        );
    };
    named(&shortened, "retention shortened");
    named(&fabricated, "does not hold (a fabricated tombstone?)");
    named(
        &self_approved,
        "requested and approved by the same person (carol)",
    );
    named(
        &under_hold,
        &format!("while hold {} (Prüfung) covered it", hold.id),
    );
    assert_eq!(r.problems.len(), 4, "nothing else: {:#?}", r.problems);
}

/// Issue #18, the remaining rules: every entry's actor existed then (a token created
/// before it, acting for its own person, not after it was revoked); an entry journaled as
/// refused commits nothing; an erased party has no readable key. Each is named.
#[tokio::test]
async fn verify_names_actors_that_did_not_exist_refusals_that_wrote_and_restored_keys() {
    use akte::access::{NewToken, PERSON_SEP, Role, Tokens};
    use akte::audit::journal::{Draft, Subject};
    let (s, clock) = setup().await;
    let journal = s.archive.journal_arc();
    let tokens = Tokens::new(s.archive.store().clone(), journal.clone(), clock.clone());
    let (t, _) = tokens
        .create("admin", NewToken::new(Role::Clerk, "desk", "erika"))
        .await
        .unwrap();
    let act = |actor: String| {
        let journal = journal.clone();
        async move {
            journal
                .append(Draft {
                    actor,
                    action: "record.read".into(),
                    subjects: vec![Subject {
                        kind: "record".into(),
                        id: "01900000-0000-7000-8000-000000000001".into(),
                        rev: Some(1),
                        digest: None,
                    }],
                    payload_digest: None,
                    detail: None,
                })
                .await
                .unwrap()
                .seq
        }
    };
    // Used by its own person while valid: fine.
    act(format!("erika{PERSON_SEP}desk:{}", t.id)).await;
    let r = verify_report(&s).await;
    assert!(r.problems.is_empty(), "{:#?}", r.problems);

    // 1. A token no entry created.
    let ghost = "01900000-0000-7000-8000-00000000dead";
    let ghost_seq = act(format!("mallory{PERSON_SEP}x:{ghost}")).await;
    // 2. The token acting for another person.
    act(format!("mallory{PERSON_SEP}desk:{}", t.id)).await;
    // 3. The token acting a day after it was revoked.
    tokens.revoke("admin", &t.id).await.unwrap();
    clock.set(at(2026, 11, 28));
    let late_seq = act(format!("erika{PERSON_SEP}desk:{}", t.id)).await;

    // 4. An entry journaled as refused that commits a revision.
    let letter = archive(&s, b"Brief 2016", "business-letter", "2016-03-01").await;
    let (mut rec, hash) = akte::audit::latest_revision(
        s.archive.store(),
        s.archive.journal(),
        keys::ObjectKind::Record,
        &letter,
        akte::record::RecordRevision::decode,
    )
    .await
    .unwrap();
    rec.rev += 1;
    rec.prev_hash = Some(hash);
    rec.title = "anders".into();
    let refused = akte::audit::commit_revision(
        s.archive.store(),
        s.archive.journal(),
        keys::ObjectKind::Record,
        &letter,
        rec.rev,
        akte::store::codec::encode(&rec).unwrap(),
        "operator",
        "retention.refused",
        None,
    )
    .await
    .unwrap();

    // 5. An erased party whose data key was put back.
    let p = s
        .parties
        .create(
            "alice",
            serde_json::from_value(serde_json::json!({"kind": "person", "name": "Max Muster"}))
                .unwrap(),
        )
        .await
        .unwrap();
    let key_path = keys::party_key(&p.revision.id);
    let key_bytes = s.archive.store().get(&key_path).await.unwrap();
    s.erase_party("alice", &p.revision.id, "Löschersuchen")
        .await
        .unwrap();
    assert!(
        s.archive
            .store()
            .get_opt(&key_path)
            .await
            .unwrap()
            .is_none()
    );
    s.archive
        .store()
        .put_new(&key_path, key_bytes)
        .await
        .unwrap();

    let r = verify_report(&s).await;
    let named = |key: &str, what: &str| {
        assert!(
            r.problems
                .iter()
                .any(|p| p.key == key && p.what.contains(what)),
            "{key}: {what} in {:#?}",
            r.problems
        );
    };
    named(
        keys::journal(ghost_seq).as_ref(),
        &format!("by token {ghost}, which no earlier entry created"),
    );
    named(
        keys::revision(keys::ObjectKind::Token, &t.id, 2).as_ref(),
        "of erika appears in the journal acting for mallory",
    );
    named(
        keys::journal(late_seq).as_ref(),
        &format!("is by token {}, which ended at", t.id),
    );
    named(
        keys::journal(refused.seq).as_ref(),
        "journaled as refused (retention.refused), but commits revisions",
    );
    named(
        key_path.as_ref(),
        "party erased by a journaled erasure, but its data key is still in the store",
    );
    assert_eq!(r.problems.len(), 5, "nothing else: {:#?}", r.problems);
}

/// The eligible list is paged in id order from the catalog: pages join up to exactly
/// the eligible records, and a page is filled even when the first candidates the catalog
/// offers (more than one pass holds) are all on hold.
#[tokio::test]
async fn eligible_records_come_in_pages_past_held_candidates() {
    let (s, clock) = setup().await;
    let mut letters = Vec::new();
    for i in 0..140 {
        letters.push(
            archive(
                &s,
                format!("Brief {i}").as_bytes(),
                "business-letter",
                "2015-03-01",
            )
            .await,
        );
    }
    // Ids are time-ordered: every invoice's is above every letter's.
    clock.set(clock.now() + chrono::Duration::seconds(1));
    let mut invoices = Vec::new();
    for i in 0..20 {
        invoices.push(
            archive(
                &s,
                format!("Rechnung {i}").as_bytes(),
                "invoice",
                "2015-05-01",
            )
            .await,
        );
    }
    archive(&s, b"Brief 2025", "business-letter", "2025-03-01").await;
    invoices.sort();
    let page = |after: Option<String>, limit: usize| {
        let s = &s;
        async move {
            s.disposals
                .eligible(&s.catalog, after.as_deref(), limit)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let p = page(after.clone(), 7).await;
        assert!(p.len() <= 7);
        all.extend(p.iter().cloned());
        if p.len() < 7 {
            break;
        }
        after = p.last().cloned();
    }
    let mut expected: Vec<String> = letters.iter().chain(&invoices).cloned().collect();
    expected.sort();
    assert_eq!(all, expected, "every eligible record once, in id order");

    // The letters (the smallest ids) go on hold. A page of 10 needs a
    // second pass over the catalog (a pass offers at most 128 candidates).
    s.holds
        .place(
            "alice",
            "Prüfung",
            "Briefe 2015",
            None,
            HoldScope::Class {
                class: "business-letter".into(),
                from: None,
                to: None,
            },
        )
        .await
        .unwrap();
    let first = page(None, 10).await;
    assert_eq!(first, invoices[..10].to_vec());
    let rest = page(first.last().cloned(), 10).await;
    assert_eq!(rest, invoices[10..].to_vec());
    assert!(page(rest.last().cloned(), 10).await.is_empty());
}
