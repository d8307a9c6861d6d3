//! Parties, cases and the party file (Kundenakte).

mod common;

use std::sync::Arc;

use akte::archive::{Archive, LinkChange, NewRecord};
use akte::case::{CaseChange, CaseStatus, NewCase};
use akte::catalog::PartyFilter;
use akte::clock::SystemClock;
use akte::ingest::parties as import;
use akte::ingest::{Ingest, NoteInput};
use akte::party::{PartyData, PartyKind, Relation};
use akte::record::PartyLink;
use akte::service::Services;
use akte::store::{Store, keys};
use akte::verify::{self, NoProgress};
use chrono::NaiveDate;
use common::*;

async fn services(spec: &str) -> Services {
    let s = Services::new(Archive::new(
        Store::open(spec).unwrap(),
        Arc::new(SystemClock),
    ));
    s.load().await.unwrap();
    s
}

fn org(name: &str) -> PartyData {
    PartyData {
        kind: PartyKind::Organisation,
        name: name.into(),
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
    }
}

async fn record(
    s: &Services,
    class: &str,
    title: &str,
    date: &str,
    links: &[(&str, &str)],
    cases: &[&str],
) -> String {
    let meta = NewRecord {
        class: Some(class.into()),
        title: Some(title.into()),
        document_date: Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()),
        parties: links
            .iter()
            .map(|(p, r)| PartyLink {
                party: p.to_string(),
                role: r.to_string(),
                reason: None,
            })
            .collect(),
        cases: cases.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    s.archive("t", once(title.as_bytes().to_vec()), meta)
        .await
        .unwrap()
        .id
}

async fn verify_ok(s: &Services) {
    let r = verify::verify(
        s.archive.store(),
        &verify::Options::default(),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    assert!(r.ok(), "{:?}", r.problems);
}

const CUSTOMERS: &str = "kind,name,role,customer_number,supplier_number,vat_id,email,phone,domain,street,postcode,city,country
organisation,Müller GmbH,customer,K-1001,,DE123456789,einkauf@mueller-gmbh.de,+49 89 1234,mueller-gmbh.de,Hauptstr. 1,80331,München,DE
organisation,Schmidt AG,customer,K-1002,,DE987654321,,,schmidt.de,,,,
";

const SUPPLIERS: &str = "kind,name,role,customer_number,supplier_number,vat_id,email,phone,domain,street,postcode,city,country
organisation,Mueller GmbH,supplier,,L-77,DE 123 456 789,vertrieb@mueller-gmbh.de,,,,,,
organisation,Weber KG,supplier,,L-78,,,,weber.de,,,,
";

async fn import_csv(s: &Services, csv: &str) -> import::ImportReport {
    let (rows, errors) = import::parse_csv(csv.as_bytes(), &Default::default());
    import::import_rows(&s.parties, &s.catalog, "import", rows, errors).await
}

#[tokio::test]
async fn customer_and_supplier_exports_make_one_party_with_two_roles() {
    let s = services("memory://").await;
    let a = import_csv(&s, CUSTOMERS).await;
    assert_eq!((a.created.len(), a.errors.len()), (2, 0), "{:?}", a.errors);
    let b = import_csv(&s, SUPPLIERS).await;
    assert_eq!(b.created.len(), 1, "Weber is new");
    assert_eq!(b.updated.len(), 1, "Müller is matched, not duplicated");
    assert!(
        b.updated[0].detail.contains("matched by vat:DE123456789"),
        "{:?}",
        b.updated
    );
    let mueller = s.catalog.find("vat:DE123456789").await;
    assert_eq!(mueller.len(), 1);
    let p = s.parties.get(&mueller[0]).await.unwrap();
    let roles: Vec<(&str, Option<&str>)> = p
        .data
        .roles
        .iter()
        .map(|r| (r.role.as_str(), r.number.as_deref()))
        .collect();
    assert_eq!(
        roles,
        vec![("customer", Some("K-1001")), ("supplier", Some("L-77"))]
    );
    assert_eq!(
        p.data.emails,
        vec!["einkauf@mueller-gmbh.de", "vertrieb@mueller-gmbh.de"]
    );
    assert_eq!(
        s.catalog
            .list(&PartyFilter {
                role: Some("supplier".into()),
                ..Default::default()
            })
            .await
            .len(),
        2
    );
    verify_ok(&s).await;
}

#[tokio::test]
async fn reimporting_the_same_file_changes_nothing() {
    let s = services("memory://").await;
    import_csv(&s, CUSTOMERS).await;
    import_csv(&s, SUPPLIERS).await;
    let head = s.archive.journal().head_seq().await.unwrap();
    let again = import_csv(&s, CUSTOMERS).await;
    let again2 = import_csv(&s, SUPPLIERS).await;
    assert_eq!(again.unchanged.len() + again2.unchanged.len(), 4);
    assert!(again.created.is_empty() && again.updated.is_empty() && again2.updated.is_empty());
    assert_eq!(
        s.archive.journal().head_seq().await.unwrap(),
        head,
        "journal unchanged"
    );
}

#[tokio::test]
async fn bad_rows_are_reported_by_line_and_the_rest_imports() {
    let s = services("memory://").await;
    let csv = "name,customer_number,vat_id,colour
Gut GmbH,K-1,DE111111111,rot
Doppelt GmbH,K-1,,blau
Falsch GmbH,K-3,DE12,grün
\"Kaputt GmbH,K-4
";
    let r = import_csv(&s, csv).await;
    assert_eq!(r.created.len(), 1, "{r:?}");
    let lines: Vec<(usize, &str)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.reason.as_str()))
        .collect();
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == 1 && m.contains("unknown column \"colour\"")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == 3 && m.contains("duplicate identifier customer:K-1")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|(l, m)| *l == 4 && m.contains("VAT ID")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == 5 && m.contains("malformed")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn merge_keeps_links_and_history_and_the_absorbed_id_resolves() {
    let s = services("memory://").await;
    let a = s
        .parties
        .create(
            "t",
            PartyData {
                vat_id: Some("DE123456789".into()),
                ..org("Müller GmbH")
            },
        )
        .await
        .unwrap();
    let b = s
        .parties
        .create(
            "t",
            PartyData {
                domains: vec!["mueller.de".into()],
                ..org("Mueller GmbH & Co")
            },
        )
        .await
        .unwrap();
    for p in [&a, &b] {
        s.catalog.put_party(p).await;
    }
    let (aid, bid) = (a.revision.id.clone(), b.revision.id.clone());
    let r1 = record(
        &s,
        "invoice",
        "RE 1",
        "2025-01-10",
        &[(&aid, "invoice-issuer")],
        &[],
    )
    .await;
    let r2 = record(&s, "email", "Mail", "2025-02-10", &[(&bid, "sender")], &[]).await;
    let survivor = s
        .parties
        .merge("t", &bid, &aid, Some("Dublette".into()))
        .await
        .unwrap();
    s.catalog.put_party(&survivor).await;
    s.catalog
        .put_party(&s.parties.get(&bid).await.unwrap())
        .await;
    assert_eq!(survivor.data.domains, vec!["mueller.de"]);

    let file = s
        .catalog
        .file(&aid, NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(), 1, 50)
        .await
        .unwrap();
    assert_eq!(file.records_total, 2);
    assert_eq!(file.merged_from, vec![bid.clone()]);
    let via_absorbed = s
        .catalog
        .file(&bid, NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(), 1, 50)
        .await
        .unwrap();
    assert_eq!(
        via_absorbed.party.id, aid,
        "the absorbed id resolves to the survivor"
    );
    assert_eq!(s.parties.resolve(&bid).await.unwrap().revision.id, aid);
    let hist = s.parties.history(&bid).await.unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[1].revision.merged_into.as_deref(), Some(aid.as_str()));
    // The links on the records themselves are untouched.
    assert_eq!(s.archive.latest(&r2).await.unwrap().parties[0].party, bid);
    assert_eq!(s.archive.latest(&r1).await.unwrap().parties[0].party, aid);
    // A fresh catalog built from the store alone sees the same.
    let fresh = services_from(&s).await;
    let again = fresh
        .catalog
        .file(&bid, NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(), 1, 50)
        .await
        .unwrap();
    assert_eq!(again.records_total, 2);
    verify_ok(&s).await;
}

async fn services_from(s: &Services) -> Services {
    let fresh = Services::new(Archive::new(
        s.archive.store().clone(),
        Arc::new(SystemClock),
    ));
    fresh.load().await.unwrap();
    fresh
}

#[tokio::test]
async fn the_party_file_shows_roles_agreements_cases_timeline_and_transactions() {
    let s = services("memory://").await;
    let mut data = org("Lieferant & Kunde GmbH");
    data.roles = vec![
        akte::party::RoleEntry {
            role: "supplier".into(),
            number: Some("L-1".into()),
            since: None,
            until: None,
            notes: None,
        },
        akte::party::RoleEntry {
            role: "customer".into(),
            number: Some("K-9".into()),
            since: None,
            until: None,
            notes: None,
        },
    ];
    let p = s.parties.create("t", data).await.unwrap();
    s.catalog.put_party(&p).await;
    let pid = p.revision.id.clone();
    let other = s.parties.create("t", org("Andere AG")).await.unwrap();
    s.catalog.put_party(&other).await;
    let oid = other.revision.id.clone();
    let contact = s
        .parties
        .create(
            "t",
            PartyData {
                kind: PartyKind::Person,
                relations: vec![Relation {
                    kind: "works-for".into(),
                    party: pid.clone(),
                }],
                ..org("Erika Mustermann")
            },
        )
        .await
        .unwrap();
    s.catalog.put_party(&contact).await;

    let today = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let mk = |kind: &str, title: &str, from: Option<&str>, until: Option<&str>| NewCase {
        kind: kind.into(),
        title: title.into(),
        party: pid.clone(),
        valid_from: from.map(d),
        valid_until: until.map(d),
        reference: None,
    };
    let in_force = s
        .cases
        .create(
            "t",
            mk(
                "special-agreement",
                "Sonderkondition 3 %",
                Some("2026-01-01"),
                Some("2026-12-31"),
            ),
        )
        .await
        .unwrap();
    let expired = s
        .cases
        .create(
            "t",
            mk(
                "price-agreement",
                "Preisabsprache 2025",
                Some("2025-01-01"),
                Some("2026-03-14"),
            ),
        )
        .await
        .unwrap();
    let project = s
        .cases
        .create("t", mk("project", "Kundenprojekt Umbau", None, None))
        .await
        .unwrap();
    let closed = s
        .cases
        .create("t", mk("complaint", "Reklamation Lieferung", None, None))
        .await
        .unwrap();
    let closed = s
        .cases
        .change(
            "t",
            &closed.id,
            CaseChange {
                status: Some(CaseStatus::Closed),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for c in [&in_force, &expired, &project, &closed] {
        s.catalog.put_case(c).await;
    }
    record(
        &s,
        "special-agreement",
        "Vereinbarung Sonderkondition",
        "2026-01-02",
        &[(&pid, "contract-party")],
        &[&in_force.id],
    )
    .await;
    record(
        &s,
        "email",
        "Frage zur Lieferung",
        "2026-03-01",
        &[(&pid, "sender")],
        &[],
    )
    .await;
    record(
        &s,
        "phone-note",
        "Rückruf",
        "2026-03-10",
        &[(&pid, "subject")],
        &[],
    )
    .await;
    record(
        &s,
        "invoice",
        "RE 2025-1",
        "2025-11-30",
        &[(&pid, "invoice-issuer")],
        &[],
    )
    .await;
    record(
        &s,
        "invoice",
        "RE 2026-1",
        "2026-02-28",
        &[(&pid, "invoice-issuer")],
        &[],
    )
    .await;
    // One record linked to two parties appears in both files.
    record(
        &s,
        "business-letter",
        "Rundschreiben",
        "2026-02-01",
        &[(&pid, "recipient"), (&oid, "recipient")],
        &[],
    )
    .await;

    let f = s.catalog.file(&pid, today, 1, 50).await.unwrap();
    let roles: Vec<&str> = f.party.data.roles.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(roles, vec!["supplier", "customer"]);
    assert_eq!(
        f.agreements_in_force.len(),
        1,
        "the price agreement ended yesterday"
    );
    assert_eq!(f.agreements_in_force[0].case.id, in_force.id);
    assert_eq!(
        f.agreements_in_force[0].key_documents[0].title,
        "Vereinbarung Sonderkondition"
    );
    let open: Vec<&str> = f.open_cases.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        open,
        vec!["Kundenprojekt Umbau"],
        "the closed complaint is not open"
    );
    let timeline: Vec<&str> = f
        .communication
        .items
        .iter()
        .map(|r| r.title.as_str())
        .collect();
    assert_eq!(
        timeline,
        vec!["Rückruf", "Frage zur Lieferung", "Rundschreiben"],
        "newest first"
    );
    assert_eq!(f.transactions_by_year[&2025].len(), 1);
    assert_eq!(f.transactions_by_year[&2026].len(), 1);
    assert_eq!(f.counts_by_class["invoice"], 2);
    assert_eq!(f.records_total, 6);
    assert_eq!(f.related.len(), 1);
    assert_eq!(f.related[0].relation, "has-contact");
    assert_eq!(f.related[0].name, "Erika Mustermann");
    let other_file = s.catalog.file(&oid, today, 1, 50).await.unwrap();
    assert_eq!(other_file.records_total, 1);
    assert_eq!(other_file.communication.items[0].title, "Rundschreiben");
    // Paging the timeline, from 1.
    let page1 = s.catalog.file(&pid, today, 1, 2).await.unwrap();
    assert_eq!(page1.communication.items.len(), 2);
    assert_eq!(page1.communication.page, 1);
    let page2 = s.catalog.file(&pid, today, 2, 2).await.unwrap();
    assert_eq!(page2.communication.items.len(), 1);
    assert_eq!(page1.communication.total, 3);
}

#[tokio::test]
async fn personal_data_are_sealed_and_gone_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().display().to_string();
    let s = services(&spec).await;
    let person = PartyData {
        kind: PartyKind::Person,
        emails: vec!["erika.mustermann@example.org".into()],
        phones: vec!["+49 30 555 0199".into()],
        notes: Some("bevorzugt Anrufe vormittags".into()),
        ..org("Erika Mustermann")
    };
    let p = s.parties.create("t", person).await.unwrap();
    let id = p.revision.id.clone();
    let stored = std::fs::read(dir.path().join(format!("parties/{id}/00000001.mpk"))).unwrap();
    for secret in ["Erika", "mustermann", "555 0199", "vormittags"] {
        assert!(
            !String::from_utf8_lossy(&stored).contains(secret),
            "{secret} stored in clear"
        );
    }
    let journal = std::fs::read(dir.path().join("journal/00000000000000000001.mpk")).unwrap();
    assert!(
        !String::from_utf8_lossy(&journal).contains("Erika"),
        "no personal data in the journal"
    );
    assert_eq!(
        s.parties.get(&id).await.unwrap().data.name,
        "Erika Mustermann"
    );
    verify_ok(&s).await;

    // Destroying the key (what a journaled erasure will do) makes every revision's
    // personal data unreadable; the revisions themselves stay and still hash-verify.
    std::fs::remove_file(dir.path().join(keys::party_key(&id).as_ref())).unwrap();
    let fresh = services(&spec).await;
    let gone = fresh.parties.get(&id).await.unwrap();
    assert!(gone.erased);
    assert_eq!(gone.data.name, "(erased)");
    assert!(gone.data.emails.is_empty() && gone.data.notes.is_none());
    assert_eq!(
        fresh.catalog.party(&id).await.unwrap().data.name,
        "(erased)",
        "the catalog is rebuilt without them"
    );
    let r = verify::verify(
        fresh.archive.store(),
        &verify::Options::default(),
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    let problems: Vec<&str> = r.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        problems,
        vec![format!("keys/{id}")],
        "only the (unjournaled) key loss is reported"
    );
}

#[tokio::test]
async fn contact_addresses_link_records_unless_ambiguous() {
    let s = services("memory://").await;
    let a = s
        .parties
        .create(
            "t",
            PartyData {
                emails: vec!["info@alpha.de".into()],
                domains: vec!["alpha.de".into()],
                ..org("Alpha")
            },
        )
        .await
        .unwrap();
    let b = s
        .parties
        .create(
            "t",
            PartyData {
                domains: vec!["shared.de".into()],
                ..org("Beta")
            },
        )
        .await
        .unwrap();
    let c = s
        .parties
        .create(
            "t",
            PartyData {
                domains: vec!["shared.de".into()],
                ..org("Gamma")
            },
        )
        .await
        .unwrap();
    for p in [&a, &b, &c] {
        s.catalog.put_party(p).await;
    }
    let m = s
        .catalog
        .match_emails(&[
            "Info@Alpha.de".into(),
            "jemand@alpha.de".into(),
            "x@shared.de".into(),
            "y@unknown.de".into(),
        ])
        .await;
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].parties, vec![a.revision.id.clone()]);
    assert!(m[0].reason.contains("email address info@alpha.de"));
    assert!(m[1].reason.contains("domain alpha.de"));
    assert_eq!(
        m[2].parties.len(),
        2,
        "ambiguous: two parties share the domain"
    );
}

#[tokio::test]
async fn notes_and_links_are_revisions_with_who_and_why() {
    let s = services("memory://").await;
    let p = s.parties.create("t", org("Kunde GmbH")).await.unwrap();
    s.catalog.put_party(&p).await;
    let pid = p.revision.id.clone();
    let q = s.parties.create("t", org("Zweiter GmbH")).await.unwrap();
    s.catalog.put_party(&q).await;
    let note = Ingest::new(s.clone())
        .note(
            "clerk:anna",
            &pid,
            NoteInput {
                text: "Kunde ruft wegen Lieferverzug an.\nRückruf zugesagt.".into(),
                duration: Some("7m".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = s.archive.latest(&note.id).await.unwrap();
    assert_eq!(r.class, "phone-note");
    assert_eq!(r.title, "Kunde ruft wegen Lieferverzug an.");
    assert_eq!(r.extra["duration"], "7m");
    assert_eq!(r.parties[0].party, pid);
    let linked = s
        .link(
            "clerk:anna",
            &note.id,
            LinkChange {
                add_parties: vec![PartyLink {
                    party: q.revision.id.clone(),
                    role: "cc".into(),
                    reason: None,
                }],
                reason: Some("betrifft auch".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(linked.rev, 2);
    assert_eq!(linked.reason.as_deref(), Some("betrifft auch"));
    assert_eq!(
        s.catalog
            .file(
                &q.revision.id,
                NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
                1,
                10
            )
            .await
            .unwrap()
            .records_total,
        1
    );
    let unlinked = s
        .link(
            "clerk:anna",
            &note.id,
            LinkChange {
                remove_parties: vec![(q.revision.id.clone(), "*".into())],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unlinked.parties.len(), 1);
    assert_eq!(
        s.catalog
            .file(
                &q.revision.id,
                NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
                1,
                10
            )
            .await
            .unwrap()
            .records_total,
        0
    );
    verify_ok(&s).await;
}

#[tokio::test]
async fn identifiers_in_metadata_point_to_their_party() {
    let s = services("memory://").await;
    import_csv(&s, CUSTOMERS).await;
    let mueller = s.catalog.find("vat:DE123456789").await[0].clone();
    let m = s
        .catalog
        .match_identifiers(
            "Rechnung 2025-17 an Kd.-Nr. K-1001 (USt-IdNr. de123456789).pdf",
            false,
        )
        .await;
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(m.iter().all(|x| x.parties == vec![mueller.clone()]));
    assert!(m[0].reason.contains("customer number K-1001"), "{m:?}");
    assert!(
        s.catalog
            .match_identifiers("Rechnung 2025-17", false)
            .await
            .is_empty()
    );
    // In running text a number counts only after a label that says what it is; a VAT ID
    // always does.
    let labelled = s
        .catalog
        .match_identifiers("Ihre Kundennummer: K-1001, Artikel 4711", true)
        .await;
    assert_eq!(labelled.len(), 1, "{labelled:?}");
    assert!(labelled[0].reason.contains("found in the record's text"));
    // A label in any case counts for the three words after it, not for the fourth.
    for (text, found) in [
        ("KUNDEN-NR. bitte angeben: K-1001", 1),
        ("Lieferanten-Nr.: 7001 oder K-1001", 1),
        ("Kd.-Nr bitte immer angeben K-1001", 0),
    ] {
        let m = s.catalog.match_identifiers(text, true).await;
        assert_eq!(m.len(), found, "{text}: {m:?}");
    }
    assert!(
        s.catalog
            .match_identifiers("Artikel K-1001 zu 12,50 EUR", true)
            .await
            .is_empty()
    );
    assert_eq!(
        s.catalog
            .match_identifiers("USt-IdNr. DE123456789", true)
            .await
            .len(),
        1
    );
}

/// An ERP export as German Excel writes it: `;`-separated, Windows-1252, German headers
/// mapped to ours, a quoted address with a line break and a `;` in it, CRLF lines.
#[tokio::test]
async fn a_german_excel_csv_imports_into_the_right_parties() {
    let s = services("memory://").await;
    let text = "Kundennummer;Firma;Straße;PLZ;Ort;USt-IdNr.;E-Mail\r\n\
K-2001;Müller Maschinenbau GmbH;\"Hauptstraße 5\r\nHinterhaus; 2. OG\";80331;München;DE111222333;info@mueller-mb.de\r\n\
K-2002;Bäckerei Weiß;Große Straße 1;50667;Köln;;\r\n";
    let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    let mapping = import::parse_mapping(Some(
        "Kundennummer:customer_number,Firma:name,Straße:street,PLZ:postcode,Ort:city,\
         USt-IdNr.:vat_id,E-Mail:email",
    ))
    .unwrap();
    for bytes in [
        cp1252.to_vec(),
        text.as_bytes().to_vec(),
        [b"\xef\xbb\xbf".as_slice(), text.as_bytes()].concat(),
    ] {
        let (rows, errors) = import::parse_csv(&bytes, &mapping);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1["name"], "Müller Maschinenbau GmbH");
        assert_eq!(rows[0].1["street"], "Hauptstraße 5\r\nHinterhaus; 2. OG");
        assert_eq!(rows[1].1["city"], "Köln");
    }
    let (rows, errors) = import::parse_csv(&cp1252, &mapping);
    let report = import::import_rows(&s.parties, &s.catalog, "t", rows, errors).await;
    assert_eq!(report.created.len(), 2, "{:?}", report.errors);
    let m = s.catalog.find("vat:DE111222333").await;
    assert_eq!(m.len(), 1);
    let p = s.parties.get(&m[0]).await.unwrap();
    assert_eq!(p.data.name, "Müller Maschinenbau GmbH");
    assert_eq!(p.data.addresses[0].city.as_deref(), Some("München"));
    let weiss = s.catalog.find("customer:K-2002").await;
    let p = s.parties.get(&weiss[0]).await.unwrap();
    assert_eq!(p.data.name, "Bäckerei Weiß");
    // Found by a name prefix, typed with the umlaut or without.
    for prefix in ["Bäck", "baeck"] {
        assert!(
            s.catalog
                .list(&akte::catalog::PartyFilter {
                    name_prefix: Some(prefix.into()),
                    ..Default::default()
                })
                .await
                .iter()
                .any(|b| b.id == weiss[0]),
            "{prefix}"
        );
    }
}
