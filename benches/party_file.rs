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
#[path = "common/zipf.rs"]
mod zipf;

use std::sync::Arc;
use std::time::Instant;

use zipf::Zipf;

use akte::archive::{Archive, NewRecord};
use akte::catalog::{Catalog, LinkBrief, PartyFilter, RecordBrief, RetentionBrief};
use akte::clock::SystemClock;
use akte::party::{PartyData, PartyKind, RoleEntry};
use akte::record::PartyLink;
use akte::service::Services;
use akte::store::Store;
use bytes::Bytes;
use chrono::{NaiveDate, TimeZone, Utc};

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
    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, v: &'a [&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// Direct mode (AKTE_BENCH_DIRECT=1, the suite's `--scale 10m`): the read paths at a
/// scale whose store would not fit this machine (10M records are 30M objects; the disk
/// has 16M inodes). Parties are created through the library (in an in-memory store, as
/// in the default mode); the record summaries are written straight into `catalog.redb`
/// as having applied the journal's head (`Catalog::write_synthetic`), with Zipf-
/// distributed record counts per party (s = 0.8) besides the 2,000-record party. Then a
/// server's start from the files is timed and the party file, party list and resident
/// memory are measured as in the default mode. No baseline rebuild: it is the store
/// that does not fit.
async fn direct(n_parties: usize, n_records: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open("memory://")?;
    let svc = Services::new(Archive::new(store.clone(), Arc::new(SystemClock)));
    let mut rng = Rng(0xa5a5_5a5a_1234_5678);
    let t = Instant::now();
    let mut ids = Vec::with_capacity(n_parties);
    for i in 0..n_parties {
        let name = format!(
            "{}{}{} {} {i}",
            rng.pick(SYLLABLES),
            rng.pick(SYLLABLES),
            rng.pick(SYLLABLES),
            rng.pick(LEGAL)
        );
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
            roles: vec![RoleEntry {
                role: "customer".into(),
                number: Some(format!("N-{i}")),
                since: None,
                until: None,
                notes: None,
            }],
            relations: vec![],
            notes: None,
        };
        ids.push(svc.parties.create("bench", data).await?.revision.id);
    }
    let parties_s = t.elapsed().as_secs_f64();
    let head = svc.archive.journal().head_seq().await?;
    let hash = svc.archive.journal().hash_of(head).await?;
    drop(svc);

    let files = tempfile::tempdir()?;
    let cache = crate::table::knob("AKTE_BENCH_CACHE_MB", 64) << 20;
    let big = ids[0].clone();
    // The bulk load runs in a child process (this bench again, told so by the
    // environment), so that its 2 GiB page cache is not counted in the resident memory
    // of the serving process measured below.
    std::fs::write(files.path().join("parties.txt"), ids.join("\n"))?;
    std::fs::write(files.path().join("head.txt"), format!("{head}\n{hash}"))?;
    let t = Instant::now();
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .env("AKTE_BENCH_WRITE_CATALOG", files.path())
        .env("AKTE_BENCH_RECORDS", n_records.to_string())
        .status()?;
    if !child.success() {
        return Err(format!("the bulk load failed: {child}").into());
    }
    let write_s = t.elapsed().as_secs_f64();
    let counts = std::fs::read_to_string(files.path().join("sizes.txt"))?;
    let mut counts = counts
        .split_whitespace()
        .map(|v| v.parse::<usize>().unwrap_or(0));
    let (written, largest_at, largest) = (
        counts.next().unwrap_or(0) as u64,
        counts.next().unwrap_or(1),
        counts.next().unwrap_or(0),
    );
    let largest_id = ids[largest_at].clone();

    let with_files = || {
        let archive = Archive::new(store.clone(), Arc::new(SystemClock));
        archive
            .journal()
            .persist_ledger_at(files.path().join("ledger.redb"), cache);
        let svc = Services::new(archive);
        svc.catalog
            .persist_at(files.path().join("catalog.redb"), cache);
        svc
    };
    // The ledger file is built at the first start; the second is a restart.
    let first = with_files();
    first.load().await?;
    drop(first);
    let rss0 = rss();
    let fresh = with_files();
    let t = Instant::now();
    fresh.load().await?;
    let restart_s = t.elapsed().as_secs_f64();
    let (np, nr, _) = fresh.catalog.counts().await;
    assert_eq!(
        nr as u64, written,
        "the restart must keep the written summaries"
    );

    let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default();
    let time_file = |id: String, n: usize| {
        let fresh = &fresh;
        async move {
            let mut v = Vec::new();
            let mut total = 0;
            for _ in 0..n {
                let t = Instant::now();
                let f = fresh
                    .catalog
                    .file(&id, today, 1, 50)
                    .await
                    .ok_or("no file")?;
                v.push(t.elapsed().as_secs_f64() * 1000.0);
                total = f.records_total;
            }
            Ok::<_, Box<dyn std::error::Error>>((v, total))
        }
    };
    let started_mb = rss() as f64 / 1e6;
    let (big_file, big_total) = time_file(big.clone(), 300).await?;
    let mut small_file = Vec::new();
    for _ in 0..1000 {
        let id = ids[1 + (rng.next() as usize) % (ids.len() - 1)].clone();
        small_file.extend(time_file(id, 1).await?.0);
    }
    let mut lists = Vec::new();
    for _ in 0..1000 {
        let prefix: String = rng
            .pick(SYLLABLES)
            .chars()
            .take(2 + (rng.next() % 2) as usize)
            .collect();
        let t = Instant::now();
        fresh
            .catalog
            .list(&PartyFilter {
                name_prefix: Some(prefix),
                limit: 50,
                ..Default::default()
            })
            .await;
        lists.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Serving the 2,000-record party, random parties and lists; the largest party's
    // file (all its summaries at once) comes after, and is measured on its own.
    let serving_mb = rss() as f64 / 1e6;
    let (largest_file, largest_total) = time_file(largest_id.clone(), 20).await?;
    assert_eq!(
        (big_total, largest_total),
        (2000, largest),
        "the files must hold every summary written"
    );
    let largest_mb = rss() as f64 / 1e6;
    let t = Instant::now();
    let report = akte::disposal::report::build(
        &fresh.archive,
        &fresh.catalog,
        &fresh.holds,
        &fresh.disposals,
        false,
    )
    .await?;
    let report_s = t.elapsed().as_secs_f64();
    assert_eq!(report.records_total as u64, written);
    let after_report_mb = rss() as f64 / 1e6;
    println!(
        "  retention report (counts) over {} records: {report_s:.1} s; resident after it {after_report_mb:.0} MB",
        report.records_total
    );
    // The report with a row per record, streamed (JSON) as the HTTP API and the CLI do:
    // its resident memory is sampled at every chunk.
    let before_rows = rss();
    let t = Instant::now();
    let tally = akte::disposal::report::prepare(
        &fresh.archive,
        &fresh.catalog,
        &fresh.holds,
        &fresh.disposals,
        true,
    )
    .await?;
    let mut rx = akte::disposal::report::spawn_stream(
        fresh.archive.clone(),
        fresh.catalog.clone(),
        tally,
        akte::disposal::report::RowFormat::Json,
    );
    let (mut row_bytes, mut rows, mut peak_rows, mut last) = (0usize, 0usize, before_rows, 0u8);
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        row_bytes += chunk.len();
        // Chunks end between rows: each row has one "retain_until".
        rows += chunk
            .windows(14)
            .filter(|w| w == b"\"retain_until\"")
            .count();
        last = chunk.last().copied().unwrap_or(last);
        peak_rows = peak_rows.max(rss());
    }
    let rows_s = t.elapsed().as_secs_f64();
    assert_eq!(
        (rows as u64, last),
        (written, b'}'),
        "every row, then the counts"
    );
    let rows_added_mb = peak_rows.saturating_sub(before_rows) as f64 / 1e6;
    // Baseline: the same report with its rows collected before they are written (as
    // the API did before).
    let before_collected = rss();
    let t = Instant::now();
    let collected = akte::disposal::report::build(
        &fresh.archive,
        &fresh.catalog,
        &fresh.holds,
        &fresh.disposals,
        true,
    )
    .await?;
    let collected_s = t.elapsed().as_secs_f64();
    let collected_mb = rss().saturating_sub(before_collected) as f64 / 1e6;
    assert_eq!(collected.records.len(), rows);
    drop(collected);
    println!(
        "  baseline: the rows collected first: {collected_s:.1} s, +{collected_mb:.0} MB resident with them"
    );
    println!(
        "  retention report with {rows} rows streamed (JSON, {:.0} MB): {rows_s:.1} s; resident memory {:.0} MB before, at most +{rows_added_mb:.0} MB while streaming",
        row_bytes as f64 / 1e6,
        before_rows as f64 / 1e6
    );
    let size = |f: &str| {
        std::fs::metadata(files.path().join(f))
            .map(|m| m.len())
            .unwrap_or(0) as f64
            / 1e6
    };
    println!(
        "party file bench (direct): {np} parties, {nr} records (parties {parties_s:.1} s; summaries written in {write_s:.1} s; catalog.redb {:.0} MB, ledger.redb {:.0} MB)",
        size("catalog.redb"),
        size("ledger.redb")
    );
    println!(
        "  start from the files {restart_s:.2} s (resident before it {:.0} MB, after it {started_mb:.0} MB); resident while serving {serving_mb:.0} MB, after the largest party's file {largest_mb:.0} MB (page cache {} MiB per file)",
        rss0 as f64 / 1e6,
        cache >> 20
    );
    println!(
        "  file of the 2,000-record party ({big_total}): p50 {:.2} ms p99 {:.2} ms",
        pct(big_file.clone(), 0.5),
        pct(big_file.clone(), 0.99)
    );
    println!(
        "  file of the largest party ({largest_total} records): p50 {:.2} ms p99 {:.2} ms",
        pct(largest_file.clone(), 0.5),
        pct(largest_file.clone(), 0.99)
    );
    println!(
        "  file of a random party: p50 {:.2} ms p99 {:.2} ms",
        pct(small_file.clone(), 0.5),
        pct(small_file.clone(), 0.99)
    );
    println!(
        "  list by name prefix: p50 {:.2} ms p99 {:.2} ms",
        pct(lists.clone(), 0.5),
        pct(lists.clone(), 0.99)
    );
    crate::table::bench("party_file");
    crate::table::row(
        &format!("start-up, {nr} records (direct)"),
        format!("{restart_s:.2} s"),
        "—".into(),
        f64::NAN,
        "< 5 s at 10M",
    );
    crate::table::row(
        "resident memory while serving (process, incl. the in-memory store)",
        format!(
            "{serving_mb:.0} MB (before the start {:.0} MB)",
            rss0 as f64 / 1e6
        ),
        "—".into(),
        f64::NAN,
        "independent of records",
    );
    crate::table::row(
        "party file p50/p99, 2,000-record party",
        format!(
            "{:.2}/{:.2} ms",
            pct(big_file.clone(), 0.5),
            pct(big_file, 0.99)
        ),
        "—".into(),
        f64::NAN,
        "p50 < 20, p99 < 100 ms",
    );
    crate::table::row(
        &format!("party file p50/p99, largest party ({largest_total} records)"),
        format!(
            "{:.2}/{:.2} ms",
            pct(largest_file.clone(), 0.5),
            pct(largest_file, 0.99)
        ),
        "—".into(),
        f64::NAN,
        "—",
    );
    crate::table::row(
        "party file p50/p99, random party",
        format!(
            "{:.2}/{:.2} ms",
            pct(small_file.clone(), 0.5),
            pct(small_file, 0.99)
        ),
        "—".into(),
        f64::NAN,
        "—",
    );
    crate::table::row(
        "party list by name prefix p99",
        format!("{:.2} ms", pct(lists, 0.99)),
        "—".into(),
        f64::NAN,
        "p99 < 20 ms",
    );
    crate::table::row(
        &format!(
            "retention report (counts), {} records",
            report.records_total
        ),
        format!("{report_s:.1} s, {after_report_mb:.0} MB resident after"),
        "—".into(),
        f64::NAN,
        "minutes, constant memory",
    );
    crate::table::row(
        &format!("retention report with rows, streamed (JSON), {rows} records"),
        format!(
            "{rows_s:.1} s, +{rows_added_mb:.0} MB resident while streaming {:.0} MB",
            row_bytes as f64 / 1e6
        ),
        format!("{collected_s:.1} s, +{collected_mb:.0} MB (rows collected first)"),
        rows_added_mb.max(1.0) / collected_mb.max(1.0),
        "minutes, constant memory",
    );
    Ok(())
}

/// The child of [`direct`]: writes the record summaries into `<dir>/catalog.redb` for
/// the parties in `<dir>/parties.txt` as having applied the entry in `<dir>/head.txt`,
/// and leaves in `<dir>/sizes.txt` how many it wrote and the largest party (index, size).
fn write_child(dir: &std::path::Path, n_records: usize) -> Result<(), Box<dyn std::error::Error>> {
    let ids: Vec<String> = std::fs::read_to_string(dir.join("parties.txt"))?
        .lines()
        .map(str::to_string)
        .collect();
    let head = std::fs::read_to_string(dir.join("head.txt"))?;
    let (seq, hash) = head.split_once('\n').ok_or("head.txt")?;
    let seq: u64 = seq.parse()?;
    let mut rng = Rng(0x5eed_0fca_fe00_1234);
    // Rank 0 of the Zipf draw is the largest party (ids[1]); ids[0] has exactly 2,000.
    let zipf = Zipf::new(ids.len() - 1, 0.8);
    let mut sizes = vec![0usize; ids.len()];
    let rows = (0..n_records).map(|i| {
        let p = if i < 2000 {
            0
        } else {
            1 + zipf.rank(rng.unit())
        };
        sizes[p] += 1;
        let day = NaiveDate::from_num_days_from_ce_opt(738_000 + (rng.next() % 2500) as i32)
            .unwrap_or_default();
        RecordBrief {
            id: format!("rec-{i:010}"),
            rev: 1,
            class: rng.pick(CLASSES).into(),
            title: format!("Dokument {i}"),
            date: day,
            archived_at: Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap_or_default()),
            media_type: "text/plain".into(),
            size: 14,
            parties: vec![LinkBrief {
                party: ids[p].clone(),
                role: "subject".into(),
                reason: None,
            }],
            cases: vec![],
            sha256: format!("{:064x}", i as u128 * 0x9E37_79B9_7F4A_7C15),
            message_id: None,
            parent: None,
            variant_of: None,
            direction: None,
            thread_key: None,
            thread: None,
            retention: RetentionBrief {
                retain_until: day + chrono::Days::new(3650),
                policy: "business-letter-6y".into(),
                legal_basis: "HGB §257".into(),
                catalogue: "bench".into(),
                awaiting_event: i % 50 == 0,
                disposed: false,
            },
        }
    });
    // A bulk load: a 2 GiB page cache; the serving process reads with the configured one.
    let written = Catalog::write_synthetic(&dir.join("catalog.redb"), 2 << 30, seq, hash, rows)?;
    let (largest_at, largest) = sizes
        .iter()
        .enumerate()
        .skip(1)
        .max_by_key(|(_, n)| **n)
        .map(|(i, n)| (i, *n))
        .unwrap_or((1, 0));
    std::fs::write(
        dir.join("sizes.txt"),
        format!("{written} {largest_at} {largest}"),
    )?;
    Ok(())
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
    if let Ok(dir) = std::env::var("AKTE_BENCH_WRITE_CATALOG") {
        return write_child(std::path::Path::new(&dir), n_records);
    }
    if crate::table::knob("AKTE_BENCH_DIRECT", 0) != 0 {
        return rt.block_on(direct(n_parties, n_records));
    }
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
        // The retention report's counts, from the catalog; baseline: what it did before,
        // every record's latest revision read from the store and decoded.
        let t = Instant::now();
        let report = akte::disposal::report::build(&fresh.archive, &fresh.catalog, &fresh.holds, &fresh.disposals, false).await?;
        let report_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut read = 0usize;
        for k in akte::audit::latest_keys(fresh.archive.journal(), akte::store::keys::ObjectKind::Record).await? {
            let bytes = store.get(&k).await?;
            akte::record::RecordRevision::decode(k.as_ref(), &bytes)?;
            read += 1;
        }
        // It also read the whole journal, for the last verification.
        fresh.archive.journal().entries(0, usize::MAX).await?;
        let read_s = t.elapsed().as_secs_f64();
        assert_eq!((report.records_total, read), (nr, nr));
        println!("  retention report (counts) {report_s:.2} s; baseline: every record read from the store {read_s:.2} s");
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
        crate::table::row(
            &format!("retention report (counts), {nr} records"),
            format!("{report_s:.2} s"),
            format!("{read_s:.2} s (every record and journal entry read, as before)"),
            report_s / read_s,
            "minutes at 10M, constant memory",
        );
        println!("  baseline: same record set by full scan     p50 {scan:>7.2} ms   indexed/scan ratio {:.3}", pct(big_file, 0.5) / scan);
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
