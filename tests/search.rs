//! Full-text search: analysis, scoping, facets, highlighting, recovery, compaction.

mod common;

use std::sync::Arc;

use akte::archive::{Amendment, Archive, NewRecord};
use akte::clock::SystemClock;
use akte::party::{PartyData, PartyKind};
use akte::record::PartyLink;
use akte::search::indexer::Indexer;
use akte::search::{SearchIndex, SearchRequest, Sort};
use akte::service::Services;
use akte::store::Store;
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

fn org(name: &str, vat: Option<&str>) -> PartyData {
    PartyData {
        kind: PartyKind::Organisation,
        name: name.into(),
        addresses: vec![],
        emails: vec![],
        phones: vec![],
        domains: vec![],
        vat_id: vat.map(str::to_string),
        register_number: None,
        identifiers: Default::default(),
        roles: vec![],
        relations: vec![],
        notes: None,
    }
}

async fn doc(
    s: &Services,
    class: &str,
    title: &str,
    text: &str,
    date: &str,
    party: Option<(&str, &str)>,
) -> String {
    let meta = NewRecord {
        class: Some(class.into()),
        title: Some(title.into()),
        document_date: Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()),
        media_type: Some("text/plain".into()),
        parties: party
            .map(|(p, r)| {
                vec![PartyLink {
                    party: p.into(),
                    role: r.into(),
                    reason: None,
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    s.archive("t", once(text.as_bytes().to_vec()), meta)
        .await
        .unwrap()
        .id
}

fn q(text: &str) -> SearchRequest {
    SearchRequest {
        q: text.into(),
        limit: 50,
        facets: true,
        ..Default::default()
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

fn ids(ix: &SearchIndex, r: &SearchRequest) -> Vec<String> {
    let mut r = r.clone();
    r.limit = 1000;
    let r = &r;
    let mut v: Vec<String> = ix
        .search(r, today())
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    v.sort();
    v
}

struct Fixture {
    svc: Services,
    indexer: Indexer,
    mueller: String,
    acme: String,
    rahmen: String,
    liefer: String,
    english: String,
    phrase: String,
    words: String,
    strasse: String,
}

async fn fixture() -> Fixture {
    let svc = services("memory://").await;
    let mueller = svc
        .parties
        .create("t", org("Müller GmbH", Some("DE811234567")))
        .await
        .unwrap();
    let acme = svc
        .parties
        .create("t", org("ACME Ltd", None))
        .await
        .unwrap();
    svc.catalog.put_party(&mueller).await;
    svc.catalog.put_party(&acme).await;
    let (m, a) = (mueller.revision.id.clone(), acme.revision.id.clone());
    let rahmen = doc(
        &svc,
        "contract",
        "Rahmenvertrag 2024",
        "Hiermit schließen die Parteien einen Rahmenvertrag über die Lieferung von Schrauben.",
        "2024-02-01",
        Some((&m, "customer")),
    )
    .await;
    let liefer = doc(
        &svc,
        "business-letter",
        "Ihre Verträge",
        "Sehr geehrte Damen und Herren, anbei die Verträge zur Unterschrift.",
        "2025-03-10",
        Some((&m, "customer")),
    )
    .await;
    let english = doc(
        &svc,
        "invoice",
        "Invoice 4711",
        "Dear customer, please find the invoices for the delivered goods attached.",
        "2025-05-05",
        Some((&a, "supplier")),
    )
    .await;
    let phrase = doc(
        &svc,
        "business-letter",
        "Termin",
        "Die Lieferung erfolgt am Montag pünktlich.",
        "2023-01-01",
        Some((&a, "supplier")),
    )
    .await;
    let words = doc(
        &svc,
        "business-letter",
        "Notiz",
        "Montag ist keine Lieferung möglich, erfolgt später.",
        "2023-06-01",
        Some((&m, "supplier")),
    )
    .await;
    let strasse = doc(
        &svc,
        "business-letter",
        "Adresse",
        "Neue Anschrift: Hauptstraße 5, bei Herrn Schroeder.",
        "2022-01-01",
        None,
    )
    .await;
    let indexer = Indexer::new(Arc::new(SearchIndex::in_memory().unwrap()), svc.clone());
    indexer.catch_up().await.unwrap();
    Fixture {
        svc,
        indexer,
        mueller: m,
        acme: a,
        rahmen,
        liefer,
        english,
        phrase,
        words,
        strasse,
    }
}

#[tokio::test]
async fn german_queries_fold_stem_and_split() {
    let f = fixture().await;
    let ix = &f.indexer.index;
    // Stemming: Verträge → Vertrag, and the compound Rahmenvertrag has Vertrag inside.
    let v = ids(ix, &q("Vertrag"));
    assert!(v.contains(&f.rahmen), "compound found by its part: {v:?}");
    assert!(v.contains(&f.liefer), "plural found by singular: {v:?}");
    assert_eq!(ids(ix, &q("Verträge")), v);
    // Umlaut and ß folding, both ways.
    for spelling in ["Schroeder", "Schroder", "Schröder"] {
        assert_eq!(ids(ix, &q(spelling)), vec![f.strasse.clone()], "{spelling}");
    }
    assert_eq!(ids(ix, &q("Hauptstrasse")), vec![f.strasse.clone()]);
    assert_eq!(ids(ix, &q("hauptstraße")), vec![f.strasse.clone()]);
    // The compound itself stays one term.
    assert_eq!(ids(ix, &q("Rahmenvertrag")), vec![f.rahmen.clone()]);
    // Prefix, also on a word longer than its stem, and in a field.
    assert_eq!(ids(ix, &q("Rahmenv*")), vec![f.rahmen.clone()]);
    assert!(ids(ix, &q("Lieferung*")).contains(&f.rahmen));
    assert_eq!(ids(ix, &q("title:Rahmen*")), vec![f.rahmen.clone()]);
    // Stop words do not become required terms.
    assert!(ids(ix, &q("die Verträge")).contains(&f.liefer));
}

#[tokio::test]
async fn english_stemming_phrases_and_operators() {
    let f = fixture().await;
    let ix = &f.indexer.index;
    assert_eq!(ids(ix, &q("invoice deliver")), vec![f.english.clone()]);
    // Words match anywhere; a phrase only in order.
    let mut both = vec![f.phrase.clone(), f.words.clone()];
    both.sort();
    assert_eq!(ids(ix, &q("Lieferung erfolgt")), both);
    assert_eq!(ids(ix, &q("\"Lieferung erfolgt\"")), vec![f.phrase.clone()]);
    let mut without = vec![f.rahmen.clone(), f.words.clone()];
    without.sort();
    assert_eq!(ids(ix, &q("Lieferung AND NOT pünktlich")), without);
    assert_eq!(ids(ix, &q("Lieferung -pünktlich")), without);
    assert_eq!(ids(ix, &q("invoice OR Rahmenvertrag")).len(), 2);
    // Fuzzy on request only.
    assert!(ids(ix, &q("Schrauhen")).is_empty());
    let mut fz = q("Schrauhen");
    fz.fuzzy = true;
    assert_eq!(ids(ix, &fz), vec![f.rahmen.clone()]);
    // Fields.
    assert_eq!(ids(ix, &q("title:invoice")), vec![f.english.clone()]);
    assert_eq!(ids(ix, &q("class:contract")), vec![f.rahmen.clone()]);
    assert_eq!(
        ids(ix, &q("date:[2024-01-01 TO 2024-12-31]")),
        vec![f.rahmen.clone()]
    );
    let err = f
        .indexer
        .index
        .search(&q("nosuchfield:x"), today())
        .unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[tokio::test]
async fn party_names_and_vat_ids_are_searchable_and_scope_is_strict() {
    let f = fixture().await;
    let ix = &f.indexer.index;
    let mut of_mueller = vec![f.rahmen.clone(), f.liefer.clone(), f.words.clone()];
    of_mueller.sort();
    assert_eq!(ids(ix, &q("\"Müller GmbH\"")), of_mueller);
    assert_eq!(ids(ix, &q("DE811234567")), of_mueller);
    // "Lieferung" occurs in ACME's and Müller's records; scoped to ACME only its own.
    let mut r = q("Lieferung");
    r.parties = Some(vec![f.acme.clone()]);
    assert_eq!(ids(ix, &r), vec![f.phrase.clone()]);
    r.parties = Some(vec![f.mueller.clone()]);
    let mut m = vec![f.rahmen.clone(), f.words.clone()];
    m.sort();
    assert_eq!(ids(ix, &r), m);
    // Role within the party's records.
    r.role = Some("supplier".into());
    assert_eq!(ids(ix, &r), vec![f.words.clone()]);
    // An empty scope sees nothing.
    let mut none = q("*");
    none.parties = Some(vec![]);
    assert!(ids(ix, &none).is_empty());
}

#[tokio::test]
async fn facets_add_up_and_snippets_mark_matches() {
    let f = fixture().await;
    let ix = &f.indexer.index;
    let res = ix.search(&q("*"), today()).unwrap();
    assert_eq!(res.total, 6);
    let facets = res.facets.unwrap();
    for name in ["class", "year", "retention_state"] {
        let sum: u64 = facets[name].values().sum();
        assert_eq!(sum, res.total as u64, "{name}: {:?}", facets[name]);
    }
    assert_eq!(facets["class"]["business-letter"], 4);
    assert_eq!(facets["party"][&f.mueller], 3);
    assert_eq!(facets["role"]["supplier"], 3);
    // Sorting by date.
    let mut r = q("*");
    r.sort = Sort::DateDesc;
    let hits = ix.search(&r, today()).unwrap().hits;
    assert_eq!(hits.first().unwrap().id, f.english);
    assert_eq!(hits.last().unwrap().id, f.strasse);
    // Paging.
    r.limit = 2;
    r.offset = 2;
    let page = ix.search(&r, today()).unwrap();
    assert_eq!(page.total, 6);
    assert_eq!(page.hits.len(), 2);
    // Highlighting.
    let req = q("Verträge");
    let h = ix.search(&req, today()).unwrap().hits;
    let hit = h.iter().find(|h| h.id == f.liefer).unwrap();
    let (title, snippet) = ix
        .snippet(
            &req,
            hit.lang,
            "Ihre Verträge",
            "Sehr geehrte Damen und Herren, anbei die Verträge zur Unterschrift.",
        )
        .unwrap();
    assert!(title.contains("<mark>Verträge</mark>"), "{title}");
    assert!(snippet.contains("<mark>Verträge</mark>"), "{snippet}");
    assert!(!snippet.contains("<mark>Damen"), "{snippet}");
}

#[tokio::test]
async fn amendments_replace_documents() {
    let f = fixture().await;
    let ix = &f.indexer.index;
    f.svc
        .archive
        .amend(
            "t",
            &f.english,
            Amendment {
                title: Some("Credit note 99".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    f.indexer.catch_up().await.unwrap();
    assert!(ids(ix, &q("title:invoice")).is_empty());
    assert_eq!(ids(ix, &q("credit")), vec![f.english.clone()]);
    assert_eq!(ix.num_docs(), 6, "the old document is replaced, not added");
}

#[tokio::test]
async fn reindex_gives_the_same_results_and_keeps_the_index_compact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let svc = services(data.to_str().unwrap()).await;
    let p = svc
        .parties
        .create("t", org("Kunde AG", None))
        .await
        .unwrap();
    svc.catalog.put_party(&p).await;
    let mut all = Vec::new();
    for i in 0..60 {
        let text = format!(
            "Rechnung {i} über Wartungsvertrag Nummer {i}, Lieferung an Kunde AG. invoice number {i}"
        );
        all.push(
            doc(
                &svc,
                "invoice",
                &format!("Rechnung {i}"),
                &text,
                "2024-01-15",
                Some((&p.revision.id, "customer")),
            )
            .await,
        );
    }
    let index_dir = dir.path().join("index");
    let queries = [
        "Vertrag",
        "Rechnung",
        "\"Kunde AG\"",
        "invoice",
        "Wartung*",
        "Nummer AND Lieferung",
    ];
    let before: Vec<Vec<String>> = {
        let ix = Indexer::new(
            Arc::new(SearchIndex::open(&index_dir, false).unwrap()),
            svc.clone(),
        );
        ix.catch_up().await.unwrap();
        queries.iter().map(|t| ids(&ix.index, &q(t))).collect()
    };
    assert_eq!(before[0].len(), all.len());
    // Heavy amendment: every record three more times.
    {
        let ix = Indexer::new(
            Arc::new(SearchIndex::open(&index_dir, false).unwrap()),
            svc.clone(),
        );
        let fresh = ix.index.size_on_disk();
        for round in 0..3 {
            for id in &all {
                svc.archive
                    .amend(
                        "t",
                        id,
                        Amendment {
                            reason: Some(format!("round {round}")),
                            title: Some(format!("Rechnung überarbeitet {round}")),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
            }
            ix.catch_up().await.unwrap();
        }
        ix.index.optimize().unwrap();
        assert_eq!(ix.index.num_docs(), 60);
        let after = ix.index.size_on_disk();
        assert!(
            after < fresh * 2,
            "index grew from {fresh} to {after} bytes for the same 60 records"
        );
    }
    // Delete the index, rebuild from the store alone: same answers to the same queries.
    std::fs::remove_dir_all(&index_dir).unwrap();
    let ix = Indexer::new(
        Arc::new(SearchIndex::open(&index_dir, false).unwrap()),
        svc.clone(),
    );
    assert_eq!(ix.rebuild(&|_, _| {}).await.unwrap(), 60);
    let again: Vec<Vec<String>> = queries.iter().map(|t| ids(&ix.index, &q(t))).collect();
    assert_eq!(again, before);
    assert_eq!(
        ix.index.committed_seq().unwrap(),
        svc.archive.journal().head_seq().await.unwrap()
    );
}

#[tokio::test]
async fn a_second_writer_is_refused_and_a_reader_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let _held = SearchIndex::open(dir.path(), false).unwrap();
    let err = SearchIndex::open(dir.path(), false).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    let ro = SearchIndex::open(dir.path(), true).unwrap();
    assert_eq!(ro.num_docs(), 0);
}

#[tokio::test]
async fn holds_show_in_the_state_facet_and_disposed_records_leave_the_index() {
    use akte::disposal::hold::HoldScope;
    let svc = services("memory://").await;
    let old = doc(
        &svc,
        "business-letter",
        "Alter Brief",
        "Angebot für Schrauben aus dem Jahr 2010",
        "2010-03-01",
        None,
    )
    .await;
    let indexer = Indexer::new(Arc::new(SearchIndex::in_memory().unwrap()), svc.clone());
    indexer.catch_up().await.unwrap();
    let state = |ix: &SearchIndex| {
        ix.search(&q("Schrauben"), today()).unwrap().facets.unwrap()["retention_state"].clone()
    };
    assert_eq!(state(&indexer.index).get("eligible"), Some(&1));
    // A hold on the class re-evaluates the records it covers.
    let h = svc
        .holds
        .place(
            "t",
            "Prüfung",
            "Betriebsprüfung",
            None,
            HoldScope::Class {
                class: "business-letter".into(),
                from: None,
                to: None,
            },
        )
        .await
        .unwrap();
    indexer.catch_up().await.unwrap();
    assert_eq!(state(&indexer.index).get("held"), Some(&1));
    assert_eq!(ids(&indexer.index, &q("hold:Prüfung")), vec![old.clone()]);
    svc.holds.release("t", &h.id, "erledigt").await.unwrap();
    indexer.catch_up().await.unwrap();
    assert_eq!(state(&indexer.index).get("eligible"), Some(&1));
    // Disposal (four eyes) removes it from the index.
    let req = svc
        .disposals
        .request("alice", std::slice::from_ref(&old), "Frist abgelaufen")
        .await
        .unwrap();
    svc.disposals.approve("bob", &req.id).await.unwrap();
    indexer.catch_up().await.unwrap();
    assert!(ids(&indexer.index, &q("Schrauben")).is_empty());
    assert_eq!(indexer.index.num_docs(), 0);
}
