//! `cargo bench --bench search`: the search index at scale, against bare tantivy.
//!
//! Generates AKTE_BENCH_DOCS (default 1,000,000) synthetic records of ~2 KB: 70 % German,
//! 30 % English, words drawn Zipf-distributed (s = 1.07) from a business vocabulary,
//! with German compounds, 20,000 parties (also Zipf: a few parties own many records),
//! classes, roles and dates from 2015 to 2026.
//!
//! The same documents are indexed twice in one run:
//! - **akte**: `SearchIndex` (language detection, German/English analysis with folding,
//!   compound splitting, stemming, stop words; party/role/class/date/retention fields);
//! - **bare**: tantivy with a default schema (`TEXT` title and body with the default
//!   tokenizer, `STRING|FAST` party and class, a fast date), default writer settings.
//!
//! Printed: build rate (docs/s, MB/s of raw text), index size as a share of the raw text,
//! and p50/p99 latency of 1,000 mixed queries (terms, phrases, party-scoped, faceted,
//! date-sorted) on both, with the ratio akte/bare. The bare index answers each query
//! with the nearest plain equivalent (same words, same party filter, same sort; its
//! "faceted" queries count hits only), so the ratio is the cost of what akte adds.

#[path = "common/table.rs"]
mod table;
#[path = "common/zipf.rs"]
mod zipf;

use std::path::Path;
use std::time::{Duration, Instant};

use akte::search::{IndexDoc, SearchIndex, SearchRequest, Sort};
use chrono::{NaiveDate, TimeZone, Utc};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{FAST, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT};
use tantivy::{Index, Order, TantivyDocument, Term};
use zipf::Zipf;

const DE: &str = "Rechnung Vertrag Lieferung Angebot Auftrag Bestellung Zahlung Kunde Lieferant \
Preis Betrag Summe Frist Termin Mahnung Gutschrift Reklamation Mangel Ware Artikel Menge Stück \
Datum Nummer Konto Bank Überweisung Steuer Umsatzsteuer Netto Brutto Rabatt Skonto Versand \
Anschrift Straße Firma Geschäftsführer Ansprechpartner Abteilung Einkauf Verkauf Buchhaltung \
Vereinbarung Kündigung Verlängerung Laufzeit Wartung Service Leistung Abnahme Prüfung Bericht \
Protokoll Besprechung Anfrage Antwort Bestätigung Rückfrage Unterlagen Anlage Anhang Dokument \
Schreiben Brief Nachricht Hinweis Bitte Dank Gruß Herr Frau Damen Herren geehrte freundlichen \
Grüßen anbei beiliegend gemäß bezüglich hiermit wir Sie Ihre unsere bitten erhalten senden \
liefern zahlen prüfen bestätigen vereinbart vereinbarten fällig offen erledigt neu alt groß \
klein schnell pünktlich verspätet beschädigt vollständig teilweise monatlich jährlich sofort \
Montag Dienstag Mittwoch Donnerstag Freitag Januar Februar März April Mai Juni Juli August \
September Oktober November Dezember Schrauben Muttern Stahl Kabel Pumpe Motor Ersatzteil \
Maschine Anlage Werkzeug Material Palette Lager Spedition Zoll Versicherung Schaden Haftung \
Gewährleistung Garantie Reparatur Austausch Rücksendung Erstattung Forderung Verzug Zinsen \
Gebühr Kosten Aufwand Stunde Tag Woche Monat Jahr Quartal Budget Projekt Ziel Ergebnis Qualität \
Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Köln München Hamburg \
Berlin Stuttgart Düsseldorf Leipzig Dresden Hannover Nürnberg Rahmenvertrag Kaufvertrag \
Wartungsvertrag Lieferschein Auftragsbestätigung Rechnungsnummer Kundennummer Zahlungsziel \
Lieferbedingungen Preisliste Mängelrüge Bestellnummer Vertragsverlängerung Sonderkonditionen \
die der und in zu den das nicht von mit sich des auf für ist im dem ein eine als auch es an";

const EN: &str = "invoice contract delivery offer order purchase payment customer supplier price \
amount total deadline appointment reminder credit note complaint defect goods item quantity \
piece date number account bank transfer tax VAT net gross discount shipping address street \
company director contact department sales accounting agreement termination renewal term \
maintenance service performance acceptance inspection report minutes meeting request answer \
confirmation question documents attachment document letter message notice please thanks \
regards dear sir madam sincerely enclosed according regarding hereby we you your our ask \
receive send deliver pay check confirm agreed due open settled new old large small fast on \
time delayed damaged complete partial monthly yearly immediately Monday Tuesday Wednesday \
Thursday Friday January February March April May June July August September October \
November December screws nuts steel cable pump motor spare part machine plant tool material \
pallet warehouse carrier customs insurance damage liability warranty guarantee repair \
replacement return refund claim delay interest fee cost effort hour day week month year \
quarter budget project goal result quality London Manchester Boston Chicago the of and to a \
in is that for it as was with be by on not he this are or his from at which";

const CLASSES: &[&str] = &[
    "email",
    "invoice",
    "business-letter",
    "order",
    "credit-note",
    "phone-note",
    "contract",
    "delivery-note",
];
const ROLES: &[&str] = &["customer", "supplier", "sender", "recipient"];
const PARTIES: u64 = 20_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Generator {
    rng: Rng,
    de: Vec<&'static str>,
    en: Vec<&'static str>,
    zde: Zipf,
    zen: Zipf,
    zparty: Zipf,
}

/// Vocabulary ordered so that Zipf's most frequent ranks are the function words.
fn vocab(text: &'static str) -> Vec<&'static str> {
    let mut v: Vec<&str> = text.split_whitespace().collect();
    let short: Vec<&str> = v.iter().copied().filter(|w| w.len() <= 3).collect();
    v.retain(|w| w.len() > 3);
    let mut out = short;
    out.extend(v);
    out
}

impl Generator {
    fn new(seed: u64) -> Generator {
        let (de, en) = (vocab(DE), vocab(EN));
        Generator {
            rng: Rng(seed),
            zde: Zipf::new(de.len(), 1.07),
            zen: Zipf::new(en.len(), 1.07),
            zparty: Zipf::new(PARTIES as usize, 1.0),
            de,
            en,
        }
    }

    fn words(&mut self, german: bool, n: usize, out: &mut String) {
        for i in 0..n {
            if i > 0 {
                out.push(if i.is_multiple_of(12) { '.' } else { ' ' });
                if i.is_multiple_of(12) {
                    out.push(' ');
                }
            }
            let w = if german {
                self.de[self.zde.rank(self.rng.unit())]
            } else {
                self.en[self.zen.rank(self.rng.unit())]
            };
            out.push_str(w);
            if self.rng.next().is_multiple_of(40) {
                out.push_str(&format!(" {}", self.rng.next() % 100_000));
            }
        }
    }

    fn doc(&mut self, i: u64) -> IndexDoc {
        let german = self.rng.next() % 10 < 7;
        let mut title = String::new();
        let n = 3 + (self.rng.next() % 4) as usize;
        self.words(german, n, &mut title);
        let mut body = String::with_capacity(2200);
        while body.len() < 1900 {
            self.words(german, 24, &mut body);
            body.push_str(".\n");
        }
        let n_parties = 1 + (self.rng.next() % 2) as usize;
        let parties = (0..n_parties)
            .map(|_| {
                (
                    party_id(self.zparty.rank(self.rng.unit()) as u64),
                    ROLES[(self.rng.next() % ROLES.len() as u64) as usize].to_string(),
                )
            })
            .collect();
        let day = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap()
            + chrono::Days::new(self.rng.next() % (12 * 365));
        IndexDoc {
            id: format!("rec-{i:09}"),
            title,
            body,
            lang: None,
            class: CLASSES[(self.rng.next() % CLASSES.len() as u64) as usize].into(),
            parties,
            party_names: String::new(),
            media_type: "text/plain".into(),
            document_date: Some(day),
            archived_at: Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap()),
            retain_until: Some(day + chrono::Days::new(3650)),
            ..Default::default()
        }
    }
}

fn party_id(n: u64) -> String {
    format!("party-{n:06}")
}

/// Builds both indexes of `n` records (akte's in `akte_dir`, bare tantivy's in
/// `bare_dir`) and reports the builds.
fn build(n: u64, akte_dir: &Path, bare_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let batch = 10_000u64;
    // 0. Generation alone (both builds include it; subtract it to see indexing only).
    let t = Instant::now();
    let mut g = Generator::new(42);
    let mut raw = 0u64;
    for i in 0..n {
        let d = g.doc(i);
        raw += (d.title.len() + d.body.len()) as u64;
    }
    let gen_secs = t.elapsed().as_secs_f64();
    println!(
        "generate     {:>8.1} s  ({:.0} MB of raw text)",
        gen_secs,
        raw as f64 / 1e6
    );

    // 1. akte's index.
    let ours = SearchIndex::open(akte_dir, false)?;
    let t = Instant::now();
    let mut g = Generator::new(42);
    let mut i = 0;
    while i < n {
        let docs: Vec<IndexDoc> = (i..(i + batch).min(n)).map(|k| g.doc(k)).collect();
        ours.add_new(docs)?;
        i += batch;
    }
    ours.commit(1)?;
    let ours_secs = t.elapsed().as_secs_f64();
    drop(ours);
    let ours_size = dir_size(akte_dir);

    // 2. Bare tantivy with a default schema.
    std::fs::create_dir_all(bare_dir)?;
    let mut sb = Schema::builder();
    let id_f = sb.add_text_field("id", STRING | STORED);
    let title = sb.add_text_field("title", TEXT);
    let body = sb.add_text_field("body", TEXT);
    let party = sb.add_text_field("party", STRING | FAST);
    let class = sb.add_text_field("class", STRING | FAST);
    let date = sb.add_date_field("date", INDEXED | FAST);
    let index = Index::create_in_dir(bare_dir, sb.build())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut w: tantivy::IndexWriter = index.writer_with_num_threads(threads, 96 << 20)?;
    let t = Instant::now();
    let mut g = Generator::new(42);
    for k in 0..n {
        let d = g.doc(k);
        let mut doc = TantivyDocument::default();
        doc.add_text(id_f, &d.id);
        doc.add_text(title, &d.title);
        doc.add_text(body, &d.body);
        for (p, _) in &d.parties {
            doc.add_text(party, p);
        }
        doc.add_text(class, &d.class);
        doc.add_date(
            date,
            tantivy::DateTime::from_timestamp_secs(d.archived_at.timestamp()),
        );
        w.add_document(doc)?;
    }
    w.commit()?;
    drop(w);
    let bare_secs = t.elapsed().as_secs_f64();
    let bare_size = dir_size(bare_dir);

    let mb = raw as f64 / 1e6;
    let raw = raw as f64;
    println!(
        "build akte   {:>8.1} s  {:>8.0} docs/s {:>6.1} MB/s   index {:>7.0} MB = {:>4.1}% of raw text",
        ours_secs,
        n as f64 / ours_secs,
        mb / ours_secs,
        ours_size as f64 / 1e6,
        100.0 * ours_size as f64 / raw
    );
    println!(
        "build bare   {:>8.1} s  {:>8.0} docs/s {:>6.1} MB/s   index {:>7.0} MB = {:>4.1}% of raw text",
        bare_secs,
        n as f64 / bare_secs,
        mb / bare_secs,
        bare_size as f64 / 1e6,
        100.0 * bare_size as f64 / raw
    );
    println!(
        "build ratio  akte/bare time {:.2}, without generation {:.2}; size {:.2}",
        ours_secs / bare_secs,
        (ours_secs - gen_secs).max(0.0) / (bare_secs - gen_secs).max(1e-9),
        ours_size as f64 / bare_size as f64
    );

    crate::table::row(
        &format!("index build, {n} records"),
        format!("{:.0} docs/s", n as f64 / ours_secs),
        format!("{:.0} docs/s (bare tantivy)", n as f64 / bare_secs),
        bare_secs / ours_secs,
        "≥ 0.7×",
    );
    Ok(())
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

struct Bare {
    index: Index,
    title: tantivy::schema::Field,
    body: tantivy::schema::Field,
    party: tantivy::schema::Field,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Terms,
    Phrase,
    Party,
    Faceted,
    DateSorted,
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = crate::table::knob("AKTE_BENCH_DOCS", 1_000_000) as u64;
    let tmp = tempfile::tempdir()?;
    // AKTE_BENCH_SEARCH_DIR keeps both indexes there; a later run with the same number of
    // records queries them again without building (to profile or compare queries).
    let keep = std::env::var_os("AKTE_BENCH_SEARCH_DIR").map(std::path::PathBuf::from);
    let root = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let marker = root.join(format!("built-{n}"));
    let reuse = keep.is_some() && marker.exists();
    println!("search bench: {n} synthetic records (~2 KB, 70% German, 30% English)");

    let (akte_dir, bare_dir) = (root.join("akte"), root.join("bare"));
    crate::table::bench("search");
    if reuse {
        println!(
            "build        skipped: the indexes in {} were built before",
            root.display()
        );
    } else {
        build(n, &akte_dir, &bare_dir)?;
        std::fs::write(&marker, b"")?;
    }
    let ours = SearchIndex::open(&akte_dir, false)?;
    let index = Index::open_in_dir(&bare_dir)?;
    let field = |name: &str| index.schema().get_field(name);
    let bare = Bare {
        title: field("title")?,
        body: field("body")?,
        party: field("party")?,
        index,
    };

    // 3. 1,000 mixed queries.
    let mut rng = Rng(7);
    let gq = Generator::new(99);
    let content_words: Vec<&str> = gq
        .de
        .iter()
        .chain(gq.en.iter())
        .copied()
        .filter(|w| w.len() > 4)
        .collect();
    let zq = Zipf::new(content_words.len(), 0.8);
    let mut queries = Vec::new();
    for k in 0..1000u32 {
        let kind = match k % 20 {
            0..=7 => Kind::Terms,
            8..=10 => Kind::Phrase,
            11..=14 => Kind::Party,
            15..=17 => Kind::Faceted,
            _ => Kind::DateSorted,
        };
        let w1 = content_words[zq.rank(rng.unit())];
        let w2 = content_words[zq.rank(rng.unit())];
        let text = match kind {
            Kind::Terms if k.is_multiple_of(2) => w1.to_string(),
            Kind::Terms => format!("{w1} {w2}"),
            Kind::Phrase => format!("\"{w1} {w2}\""),
            _ => w1.to_string(),
        };
        let party = (kind == Kind::Party).then(|| party_id(gq.zparty.rank(rng.unit()) as u64));
        queries.push((kind, text, party));
    }
    let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let reader = bare.index.reader()?;
    let searcher = reader.searcher();
    let mut parser = QueryParser::for_index(&bare.index, vec![bare.title, bare.body]);
    parser.set_conjunction_by_default();
    let kinds = [
        Kind::Terms,
        Kind::Phrase,
        Kind::Party,
        Kind::Faceted,
        Kind::DateSorted,
    ];
    let mut ours_t: Vec<(Kind, Duration)> = Vec::new();
    let mut bare_t: Vec<(Kind, Duration)> = Vec::new();
    let mut hits_ours = 0usize;
    let mut hits_bare = 0usize;
    for (kind, text, party) in &queries {
        let r = SearchRequest {
            q: text.clone(),
            parties: party.clone().map(|p| vec![p]),
            sort: if *kind == Kind::DateSorted {
                Sort::DateDesc
            } else {
                Sort::Relevance
            },
            limit: 20,
            facets: *kind == Kind::Faceted,
            ..Default::default()
        };
        let t = Instant::now();
        let res = ours.search(&r, today)?;
        ours_t.push((*kind, t.elapsed()));
        hits_ours += res.total;

        let t = Instant::now();
        let mut q: Box<dyn Query> = parser.parse_query(text)?;
        if let Some(p) = party {
            q = Box::new(BooleanQuery::new(vec![
                (Occur::Must, q),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(bare.party, p),
                        IndexRecordOption::Basic,
                    )),
                ),
            ]));
        }
        let n = if *kind == Kind::DateSorted {
            let (_, n) = searcher.search(
                &q,
                &(
                    TopDocs::with_limit(20)
                        .order_by_fast_field::<tantivy::DateTime>("date", Order::Desc),
                    Count,
                ),
            )?;
            n
        } else {
            let (_, n) = searcher.search(&q, &(TopDocs::with_limit(20).order_by_score(), Count))?;
            n
        };
        bare_t.push((*kind, t.elapsed()));
        hits_bare += n;
    }
    println!(
        "queries      1000 mixed; total hits akte {hits_ours}, bare {hits_bare} (akte also matches stems, folded spellings and compound parts)"
    );
    println!(
        "facets       {:.0} MB of decoded facet columns (akte; --facet-cache-mb bounds it)",
        ours.facet_table_bytes() as f64 / 1e6
    );
    println!(
        "{:<12} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "kind", "akte p50", "akte p99", "bare p50", "bare p99", "p50 ratio"
    );
    for kind in kinds.iter().copied().map(Some).chain([None]) {
        let mut a: Vec<Duration> = ours_t
            .iter()
            .filter(|(k, _)| kind.is_none_or(|x| x == *k))
            .map(|(_, d)| *d)
            .collect();
        let mut b: Vec<Duration> = bare_t
            .iter()
            .filter(|(k, _)| kind.is_none_or(|x| x == *k))
            .map(|(_, d)| *d)
            .collect();
        let (a50, a99, b50, b99) = (
            pct(&mut a, 0.5),
            pct(&mut a, 0.99),
            pct(&mut b, 0.5),
            pct(&mut b, 0.99),
        );
        let label = kind.map_or("all".to_string(), |k| format!("{k:?}").to_lowercase());
        crate::table::row(
            &format!("query p50/p99 ({label}), {n} records"),
            format!("{a50:.2}/{a99:.2} ms"),
            format!("{b50:.2}/{b99:.2} ms (bare tantivy)"),
            a50 / b50.max(1e-6),
            if label == "faceted" { "≤ 2×" } else { "—" },
        );
        println!(
            "{:<12} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>10.2}",
            kind.map_or("all".to_string(), |k| format!("{k:?}").to_lowercase()),
            a50,
            a99,
            b50,
            b99,
            a50 / b50.max(1e-6)
        );
    }
    Ok(())
}
