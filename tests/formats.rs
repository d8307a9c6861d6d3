//! Golden fixtures of the persisted formats decode, and keep decoding.
//!
//! Regenerate (only when a format deliberately changes, with a new version):
//! `AKTE_BLESS=1 cargo test --test formats`.

use std::path::PathBuf;

use akte::audit::journal::{JournalEntry, Subject};
use akte::record::{ContentRef, PartyLink, RecordRevision};
use akte::retention;
use akte::store::codec;
use chrono::{NaiveDate, TimeZone, Utc};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/fixtures")
        .join(name)
}

fn sample_revision() -> RecordRevision {
    let at = Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap();
    let date = NaiveDate::from_ymd_opt(2025, 3, 12).unwrap();
    RecordRevision {
        format: 1,
        id: "01959a3c-4e00-7000-8000-000000000001".into(),
        rev: 2,
        prev_hash: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        class: "invoice".into(),
        title: "Rechnung 2025-0042 Müller GmbH".into(),
        document_date: Some(date),
        archived_at: at,
        revised_at: at,
        actor: "cli:archivist".into(),
        change: "title".into(),
        reason: Some("Tippfehler".into()),
        content: ContentRef {
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            size: 0,
            media_type: "application/pdf".into(),
            file_name: Some("RE-2025-0042.pdf".into()),
            version: 1,
        },
        parties: vec![PartyLink {
            party: "01959a3c-4e00-7000-8000-0000000000aa".into(),
            role: "invoice-issuer".into(),
            reason: None,
        }],
        // Historical data: the retention block as the first catalogue wrote it.
        retention: retention::Retention {
            policy: "booking-voucher-8y".into(),
            legal_basis: "§ 147 (3) AO, § 257 (4) HGB, § 14b UStG (as amended by BEG IV)".into(),
            catalogue: "builtin-2025.1".into(),
            period_years: 8,
            start: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
            retain_until: NaiveDate::from_ymd_opt(2033, 12, 31).unwrap(),
            awaiting_event: None,
        },
        holds: vec![],
        cases: vec![],
        extra: Default::default(),
        tombstone: None,
        sealed: None,
    }
}

fn sample_entry() -> JournalEntry {
    let mut e = JournalEntry {
        format: 1,
        seq: 42,
        time: Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap(),
        actor: "cli:archivist".into(),
        action: "record.amend".into(),
        subjects: vec![Subject::record("01959a3c-4e00-7000-8000-000000000001", 2)],
        payload_digest: Some(
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".into(),
        ),
        detail: Some("title".into()),
        prev_hash: "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9".into(),
        hash: String::new(),
    };
    e.hash = e.compute_hash().unwrap();
    e
}

fn golden(name: &str, bytes: Vec<u8>) -> Vec<u8> {
    let path = fixture(name);
    if std::env::var_os("AKTE_BLESS").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn record_revision_v1_fixture_decodes() {
    let stored = golden(
        "record-revision.v1.mpk",
        codec::encode(&sample_revision()).unwrap(),
    );
    let r = RecordRevision::decode("fixture", &stored).unwrap();
    assert_eq!(r, sample_revision());
    assert_eq!(
        r.retention.retain_until,
        NaiveDate::from_ymd_opt(2033, 12, 31).unwrap()
    );
}

#[test]
fn journal_entry_v1_fixture_decodes_and_its_hash_holds() {
    let stored = golden(
        "journal-entry.v1.mpk",
        codec::encode(&sample_entry()).unwrap(),
    );
    let e = JournalEntry::decode("fixture", &stored).unwrap();
    assert_eq!(e, sample_entry());
    assert_eq!(e.compute_hash().unwrap(), e.hash);
    // The hash is sha256(prev_hash bytes ‖ canonical body); pin it so that an accidental
    // change of the canonical encoding fails here.
    let pinned = std::fs::read_to_string(fixture("journal-entry.v1.hash")).unwrap_or_default();
    if std::env::var_os("AKTE_BLESS").is_some() {
        std::fs::write(fixture("journal-entry.v1.hash"), format!("{}\n", e.hash)).unwrap();
    } else {
        assert_eq!(pinned.trim(), e.hash);
    }
}

#[test]
fn party_revision_v1_fixture_decodes() {
    use akte::party::{PartyKind, PartyRevision, RoleEntry};
    use akte::store::crypt::Sealed;
    let sample = PartyRevision {
        format: 1,
        id: "01959a3c-4e00-7000-8000-0000000000aa".into(),
        rev: 1,
        prev_hash: None,
        revised_at: Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap(),
        actor: "import".into(),
        change: "created".into(),
        reason: None,
        kind: PartyKind::Organisation,
        name: Some("Müller GmbH".into()),
        addresses: vec![],
        domains: vec!["mueller-gmbh.de".into()],
        vat_id: Some("DE123456789".into()),
        register_number: None,
        identifiers: Default::default(),
        roles: vec![RoleEntry {
            role: "customer".into(),
            number: Some("K-1001".into()),
            since: None,
            until: None,
            notes: None,
        }],
        relations: vec![],
        merged_into: None,
        personal: Some(Sealed {
            alg: "aes-256-gcm".into(),
            nonce: "00".repeat(12),
            data: "ab".repeat(40),
        }),
        erased_at: None,
    };
    let stored = golden("party-revision.v1.mpk", codec::encode(&sample).unwrap());
    assert_eq!(PartyRevision::decode("fixture", &stored).unwrap(), sample);
}

#[test]
fn case_revision_v1_fixture_decodes() {
    use akte::case::{CaseRevision, CaseStatus};
    let t = Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap();
    let sample = CaseRevision {
        format: 1,
        id: "01959a3c-4e00-7000-8000-0000000000cc".into(),
        rev: 2,
        prev_hash: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        revised_at: t,
        actor: "clerk".into(),
        change: "closed".into(),
        reason: Some("erledigt".into()),
        kind: "complaint".into(),
        title: "Reklamation Lieferung 4711".into(),
        party: "01959a3c-4e00-7000-8000-0000000000aa".into(),
        status: CaseStatus::Closed,
        status_changed_at: t,
        status_changed_by: "clerk".into(),
        valid_from: None,
        valid_until: None,
        reference: Some("RMA-4711".into()),
    };
    let stored = golden("case-revision.v1.mpk", codec::encode(&sample).unwrap());
    assert_eq!(CaseRevision::decode("fixture", &stored).unwrap(), sample);
}
