//! `cargo bench --bench verify`: verify throughput as a ratio to raw SHA-256 throughput
//! over the same bytes, measured in the same run.
//!
//! Setup: a local store (fsync on) in a temporary directory holding AKTE_BENCH_MB
//! (default 512) MB of pseudo-random content in blobs of 1–16 MB, archived through the
//! library. Baseline: SHA-256 of the same bytes from memory on one core, the speed limit
//! of hashing on this machine. Measured: `verify` over the whole store (blobs re-hashed
//! from the page cache, revisions and journal checked). Goal: ratio ≥ 0.8.

#[path = "common/table.rs"]
mod table;

use std::sync::Arc;
use std::time::Instant;

use akte::archive::{Archive, NewRecord};
use akte::clock::SystemClock;
use akte::store::Store;
use akte::verify::{self, NoProgress};
use bytes::Bytes;
use sha2::{Digest, Sha256};

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let total_mb: usize = crate::table::knob("AKTE_BENCH_MB", 512);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().display().to_string())?;
    let archive = Archive::new(store.clone(), Arc::new(SystemClock));

    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    let mut seed = 1u64;
    while total < total_mb * 1024 * 1024 {
        let size = (1 + (seed as usize * 7) % 16) * 1024 * 1024;
        blobs.push(pseudo_random(size, seed));
        total += size;
        seed += 1;
    }
    rt.block_on(async {
        for b in &blobs {
            let s = futures::stream::iter(vec![Ok::<_, akte::Error>(Bytes::from(b.clone()))]);
            archive.archive("bench", s, NewRecord::default()).await?;
        }
        Ok::<_, akte::Error>(())
    })?;

    // Baseline: raw SHA-256 of the same bytes, one core, from memory.
    let mut raw_best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        for b in &blobs {
            std::hint::black_box(Sha256::digest(b));
        }
        raw_best = raw_best.min(t.elapsed().as_secs_f64());
    }
    let raw_mbs = total as f64 / 1e6 / raw_best;

    // Verify, best of three (the first run also warms the page cache).
    let mut best: Option<verify::Report> = None;
    for _ in 0..3 {
        let r = rt.block_on(verify::verify(
            &store,
            &verify::Options::default(),
            Arc::new(NoProgress),
        ))?;
        assert!(r.ok(), "verify found problems: {:?}", r.problems);
        if best.as_ref().is_none_or(|b| r.seconds < b.seconds) {
            best = Some(r);
        }
    }
    let best = best.ok_or("no run")?;
    let verify_mbs = best.mb_per_s();
    let one = rt.block_on(verify::verify(
        &store,
        &verify::Options {
            parallelism: 1,
            ..Default::default()
        },
        Arc::new(NoProgress),
    ))?;

    println!(
        "verify bench: {} blobs, {:.0} MB, {} objects",
        blobs.len(),
        total as f64 / 1e6,
        best.objects
    );
    println!("  raw sha256 (1 core, memory):      {raw_mbs:>8.0} MB/s");
    println!(
        "  akte verify (parallel, {} tasks):  {verify_mbs:>8.0} MB/s   ratio {:.2}",
        verify::Options::default().parallelism,
        verify_mbs / raw_mbs
    );
    println!(
        "  akte verify (1 task):             {:>8.0} MB/s   ratio {:.2}",
        one.mb_per_s(),
        one.mb_per_s() / raw_mbs
    );
    crate::table::bench("verify");
    crate::table::row(
        &format!("akte verify, {:.0} MB", total as f64 / 1e6),
        format!("{verify_mbs:.0} MB/s"),
        format!("{raw_mbs:.0} MB/s (raw SHA-256)"),
        verify_mbs / raw_mbs,
        "≥ 0.8×",
    );
    println!(
        "  goal: ratio >= 0.80 -> {}",
        if verify_mbs / raw_mbs >= 0.8 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
