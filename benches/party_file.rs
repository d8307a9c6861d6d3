//! `cargo bench --bench party_file`: the party file and party lists at scale.
//!
//! A bench helper generates AKTE_BENCH_PARTIES (default 50,000) parties and
//! AKTE_BENCH_RECORDS (default 1,000,000) records through the library into an in-memory
//! store: one "key account" party with 2,000 records, the rest spread over all parties.
//! Start-up is timed three ways on the same store: the ledger and catalog rebuilt in
//! memory by reading every journal entry and record (the baseline: how akte started
//! before the catalog and ledger files), their files built the first time, and a restart
//! from those files (what a server does; the files are `ledger.redb` and `catalog.redb`
//! under a temporary directory, with the default 64 MiB page cache each). The resident
//! memory each start adds is printed too. Then, on the restarted (file-backed) catalog:
//! opening the big party's file (1,000 times), opening random parties' files, and listing
//! parties by a random name prefix (1,000 times).
//!
//! Baselines in the same run: the in-memory rebuild for the restart; the same file query
//! answered by scanning every record summary (no per-party index); printed as ratios.

#[path = "common/table.rs"]
mod table;

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

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n_parties: usize = crate::table::knob("AKTE_BENCH_PARTIES", 50_000);
    let n_records: usize = crate::table::knob("AKTE_BENCH_RECORDS", 1_000_000);
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

        drop(svc);
        let files = tempfile::tempdir()?;
        let cache = crate::table::knob("AKTE_BENCH_CACHE_MB", 64) << 20;
        let with_files = || {
            let archive = Archive::new(store.clone(), Arc::new(SystemClock));
            archive.journal().persist_ledger_at(files.path().join("ledger.redb"), cache);
            let svc = Services::new(archive);
            svc.catalog.persist_at(files.path().join("catalog.redb"), cache);
            svc
        };
        // The files, built the first time.
        let first = with_files();
        let t = Instant::now();
        first.load().await?;
        let first_s = t.elapsed().as_secs_f64();
        drop(first);
        // A restart from the files.
        let rss0 = rss();
        let fresh = with_files();
        let t = Instant::now();
        fresh.load().await?;
        let restart_s = t.elapsed().as_secs_f64();
        let restart_mb = (rss().saturating_sub(rss0)) as f64 / 1e6;
        // Baseline: everything rebuilt in memory from the store.
        let rss1 = rss();
        let memory = Services::new(Archive::new(store.clone(), Arc::new(SystemClock)));
        let t = Instant::now();
        memory.load().await?;
        let rebuild_s = t.elapsed().as_secs_f64();
        let rebuild_mb = (rss().saturating_sub(rss1)) as f64 / 1e6;
        drop(memory);
        let size = |f: &str| std::fs::metadata(files.path().join(f)).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
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

        println!("party file bench: {np} parties, {nr} records (generated: parties {parties_s:.1} s, records {records_s:.1} s)");
        println!("  start: restart from the ledger and catalog files {restart_s:>7.2} s, +{restart_mb:.0} MB resident   (goal < 5 s at 10M)");
        println!("         baseline: rebuilt in memory from the store {rebuild_s:>7.2} s, +{rebuild_mb:.0} MB resident   restart/rebuild ratio {:.3}", restart_s / rebuild_s);
        println!("         files built the first time {first_s:.2} s: ledger.redb {:.0} MB, catalog.redb {:.0} MB, page cache {} MiB each", size("ledger.redb"), size("catalog.redb"), cache >> 20);
        println!("  file of the 2,000-record party ({total} records): p50 {:>7.2} ms  p99 {:>7.2} ms   (goal p50 < 20, p99 < 100)", pct(big_file.clone(), 0.5), pct(big_file.clone(), 0.99));
        println!("  file of a random party:                   p50 {:>7.2} ms  p99 {:>7.2} ms", pct(small_file.clone(), 0.5), pct(small_file.clone(), 0.99));
        println!("  list by name prefix (50 per page):        p50 {:>7.2} ms  p99 {:>7.2} ms   (goal p99 < 20)", pct(lists.clone(), 0.5), pct(lists.clone(), 0.99));
        let scan = pct(scans.clone(), 0.5);
        crate::table::bench("party_file");
        crate::table::row(
            &format!("start-up, {nr} records"),
            format!("{restart_s:.2} s, +{restart_mb:.0} MB"),
            format!("{rebuild_s:.2} s, +{rebuild_mb:.0} MB (rebuilt in memory)"),
            restart_s / rebuild_s,
            "< 5 s at 10M, memory independent of records",
        );
        crate::table::row(
            "party file p50/p99, 2,000-record party",
            format!("{:.2}/{:.2} ms", pct(big_file.clone(), 0.5), pct(big_file.clone(), 0.99)),
            format!("{scan:.2} ms (full scan)"),
            pct(big_file.clone(), 0.5) / scan,
            "p50 < 20, p99 < 100 ms",
        );
        crate::table::row(
            "party file p50/p99, random party",
            format!("{:.2}/{:.2} ms", pct(small_file.clone(), 0.5), pct(small_file.clone(), 0.99)),
            "—".into(),
            f64::NAN,
            "—",
        );
        crate::table::row(
            "party list by name prefix p99",
            format!("{:.2} ms", pct(lists.clone(), 0.99)),
            "—".into(),
            f64::NAN,
            "p99 < 20 ms",
        );
        println!("  baseline: same record set by full scan     p50 {scan:>7.2} ms   indexed/scan ratio {:.3}", pct(big_file, 0.5) / scan);
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
