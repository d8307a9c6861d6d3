//! `cargo bench --bench party_file`: the party file and party lists at scale.
//!
//! A bench helper generates AKTE_BENCH_PARTIES (default 50,000) parties and
//! AKTE_BENCH_RECORDS (default 1,000,000) records through the library into an in-memory
//! store: one "key account" party with 2,000 records, the rest spread over all parties.
//! The catalog is then rebuilt from the store alone (as at server start), and timed:
//! opening the big party's file (1,000 times), opening random parties' files, and
//! listing parties by a random name prefix (1,000 times).
//!
//! Baseline in the same run: the same file query answered by scanning every record
//! summary (no per-party index); printed as a ratio.

use std::sync::Arc;
use std::time::Instant;

use akte::archive::{Archive, NewRecord};
use akte::catalog::PartyFilter;
use akte::clock::SystemClock;
use akte::party::{PartyData, PartyKind, RoleEntry};
use akte::record::PartyLink;
use akte::service::Services;
use akte::store::Store;
use bytes::Bytes;
use chrono::NaiveDate;

const SYLLABLES: &[&str] = &[
    "Mü", "ller", "Schmidt", "Wa", "gner", "Be", "cker", "Hoff", "mann", "Schu", "lz", "Kra",
    "use", "Wolf", "Neu", "Zim", "mer", "Kö", "nig", "Lang",
];
const LEGAL: &[&str] = &["GmbH", "AG", "KG", "GmbH & Co. KG", "e.K.", "SE"];
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

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &'a [&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n_parties: usize = std::env::var("AKTE_BENCH_PARTIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let n_records: usize = std::env::var("AKTE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let store = Store::open("memory://")?;
        let svc = Services::new(Archive::new(store.clone(), Arc::new(SystemClock)));
        let mut rng = Rng(0xa5a5_5a5a_1234_5678);
        let t = Instant::now();
        let mut ids = Vec::with_capacity(n_parties);
        for i in 0..n_parties {
            let name = format!("{}{}{} {} {i}", rng.pick(SYLLABLES), rng.pick(SYLLABLES), rng.pick(SYLLABLES), rng.pick(LEGAL));
            let data = PartyData {
                kind: PartyKind::Organisation,
                name,
                addresses: vec![],
                emails: vec![],
                phones: vec![],
                domains: vec![format!("firma{i}.de")],
                vat_id: None,
                register_number: None,
                identifiers: Default::default(),
                roles: vec![RoleEntry { role: if i % 3 == 0 { "supplier" } else { "customer" }.into(), number: Some(format!("N-{i}")), since: None, until: None, notes: None }],
                relations: vec![],
                notes: None,
            };
            ids.push(svc.parties.create("bench", data).await?.revision.id);
        }
        let parties_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let big = ids[0].clone();
        for i in 0..n_records {
            let party = if i < 2000 { big.clone() } else { ids[1 + (rng.next() as usize) % (ids.len() - 1)].clone() };
            let day = NaiveDate::from_num_days_from_ce_opt(738_000 + (rng.next() % 2500) as i32).unwrap_or_default();
            let meta = NewRecord {
                class: Some(rng.pick(CLASSES).into()),
                title: Some(format!("Dokument {i}")),
                document_date: Some(day),
                parties: vec![PartyLink { party, role: "subject".into(), reason: None }],
                ..Default::default()
            };
            let body = futures::stream::iter(vec![Ok::<_, akte::Error>(Bytes::from(format!("Inhalt {i}")))]);
            svc.archive.archive("bench", body, meta).await?;
        }
        let records_s = t.elapsed().as_secs_f64();

        // The catalog, rebuilt from the store alone.
        let fresh = Services::new(Archive::new(store, Arc::new(SystemClock)));
        let t = Instant::now();
        fresh.load().await?;
        let rebuild_s = t.elapsed().as_secs_f64();
        let (np, nr, _) = fresh.catalog.counts().await;

        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default();
        let mut big_file = Vec::new();
        let mut total = 0;
        for _ in 0..1000 {
            let t = Instant::now();
            let f = fresh.catalog.file(&big, today, 1, 50).await.ok_or("no file")?;
            big_file.push(t.elapsed().as_secs_f64() * 1000.0);
            total = f.records_total;
        }
        let mut small_file = Vec::new();
        for _ in 0..1000 {
            let id = &ids[1 + (rng.next() as usize) % (ids.len() - 1)];
            let t = Instant::now();
            fresh.catalog.file(id, today, 1, 50).await.ok_or("no file")?;
            small_file.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut lists = Vec::new();
        for _ in 0..1000 {
            let prefix: String = rng.pick(SYLLABLES).chars().take(2 + (rng.next() % 2) as usize).collect();
            let t = Instant::now();
            fresh.catalog.list(&PartyFilter { name_prefix: Some(prefix), limit: 50, ..Default::default() }).await;
            lists.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        // Baseline: the file's record set by a scan over all record summaries.
        let mut scans = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let n = fresh.catalog.scan_count_for_party(&big).await;
            scans.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(n, 2000);
        }

        println!("party file bench: {np} parties, {nr} records (generated: parties {parties_s:.1} s, records {records_s:.1} s; catalog rebuilt from the store in {rebuild_s:.1} s)");
        println!("  file of the 2,000-record party ({total} records): p50 {:>7.2} ms  p99 {:>7.2} ms   (goal p50 < 20, p99 < 100)", pct(big_file.clone(), 0.5), pct(big_file.clone(), 0.99));
        println!("  file of a random party:                   p50 {:>7.2} ms  p99 {:>7.2} ms", pct(small_file.clone(), 0.5), pct(small_file, 0.99));
        println!("  list by name prefix (50 per page):        p50 {:>7.2} ms  p99 {:>7.2} ms   (goal p99 < 20)", pct(lists.clone(), 0.5), pct(lists, 0.99));
        let scan = pct(scans, 0.5);
        println!("  baseline: same record set by full scan     p50 {scan:>7.2} ms   indexed/scan ratio {:.3}", pct(big_file, 0.5) / scan);
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
