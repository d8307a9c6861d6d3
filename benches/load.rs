//! `cargo bench --bench load`: 32 concurrent clients against a real `akte serve` for
//! AKTE_LOAD_SECS (default 30) seconds, a realistic mix: 70 % reads (metadata and
//! content of 1–200 KB records), 30 % uploads of 10–500 KB. Prints requests/s,
//! p50/p99 latency per kind, errors (must be 0) and the server's peak RSS.
//!
//! Baseline in the same run: the same 32 clients calling `/healthz` (the HTTP stack
//! with no work) for 5 s; the mix's request rate is printed as a ratio to it.

#[path = "common/table.rs"]
mod table;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

const CLIENTS: usize = 32;
const TOKEN: &str = "akte_bench_admin_token_0123456789abcdef0123456789abcdef";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() as usize) % (hi - lo)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

#[derive(Default)]
struct Stats {
    lat: Mutex<Vec<(u8, f64)>>,
    errors: AtomicU64,
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let secs: u64 = crate::table::knob("AKTE_LOAD_SECS", 30) as u64;
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate",
            "1000000",
            "--concurrency",
            "1024",
        ])
        .env("AKTE_ADMIN_TOKEN", TOKEN)
        .env("AKTE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines.next().ok_or("server exited")??;
        if let Some(a) = line.split("listening on ").nth(1) {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run(base, secs, pid));
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn run(base: String, secs: u64, pid: u32) -> Result<(), Box<dyn std::error::Error>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let auth = format!("Bearer {TOKEN}");

    // Seed 200 records of 1–200 KB.
    let mut rng = Rng(0x5eed);
    let mut ids = Vec::new();
    for _ in 0..200 {
        let n = rng.range(1024, 200 * 1024);
        let r = client
            .post(format!("{base}/v1/records?class=business-letter"))
            .header("authorization", &auth)
            .body(rng.bytes(n))
            .send()
            .await?;
        let v: Value = r.json().await?;
        ids.push(v["id"].as_str().ok_or("no id")?.to_string());
    }
    let ids = Arc::new(ids);

    // Baseline: /healthz for 5 s.
    let base_count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (c, b, n) = (client.clone(), base.clone(), base_count.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if c.get(format!("{b}/healthz")).send().await.is_ok() {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let baseline_rps = base_count.load(Ordering::Relaxed) as f64 / 5.0;

    // The mix.
    let stats = Arc::new(Stats::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..CLIENTS {
        let (c, b, a, ids, stats) = (
            client.clone(),
            base.clone(),
            auth.clone(),
            ids.clone(),
            stats.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e3779b97f4a7c15 ^ (w as u64 + 1));
            let mut local = Vec::new();
            while Instant::now() < deadline {
                let roll = rng.range(0, 100);
                let id = &ids[rng.range(0, ids.len())];
                let t = Instant::now();
                let (kind, ok) = if roll < 35 {
                    let r = c
                        .get(format!("{b}/v1/records/{id}"))
                        .header("authorization", &a)
                        .send()
                        .await;
                    let ok = match r {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    (0u8, ok)
                } else if roll < 70 {
                    let r = c
                        .get(format!("{b}/v1/records/{id}/content"))
                        .header("authorization", &a)
                        .send()
                        .await;
                    let ok = match r {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    (1u8, ok)
                } else {
                    let n = rng.range(10 * 1024, 500 * 1024);
                    let body = rng.bytes(n);
                    let r = c
                        .post(format!("{b}/v1/records?class=email"))
                        .header("authorization", &a)
                        .body(body)
                        .send()
                        .await;
                    (
                        2u8,
                        matches!(r, Ok(r) if r.status() == reqwest::StatusCode::CREATED),
                    )
                };
                if ok {
                    local.push((kind, t.elapsed().as_secs_f64()));
                } else {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            stats.lat.lock().await.extend(local);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let lat = stats.lat.lock().await;
    let total = lat.len();
    let rps = total as f64 / elapsed;
    println!(
        "load bench: {CLIENTS} clients, {elapsed:.1} s, 70% reads (1-200 KB) / 30% uploads (10-500 KB)"
    );
    println!(
        "  requests: {total}  ({rps:.0} req/s)   errors: {}",
        stats.errors.load(Ordering::Relaxed)
    );
    for (k, name) in [
        (0u8, "metadata"),
        (1, "content"),
        (2, "upload"),
        (255, "all"),
    ] {
        let mut v: Vec<f64> = lat
            .iter()
            .filter(|(kk, _)| k == 255 || *kk == k)
            .map(|(_, l)| *l * 1000.0)
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "  {name:<9} n={:<7} p50 {:>7.2} ms   p99 {:>7.2} ms",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99)
        );
    }
    println!(
        "  baseline /healthz: {baseline_rps:.0} req/s   mix/baseline ratio {:.3}",
        rps / baseline_rps
    );
    println!("  server peak RSS: {} MB", peak_rss(pid) / 1_000_000);
    crate::table::bench("load");
    crate::table::row(
        &format!("{CLIENTS} clients, mixed reads and uploads"),
        format!("{rps:.0} req/s"),
        format!("{baseline_rps:.0} req/s (/healthz)"),
        rps / baseline_rps,
        "—",
    );
    Ok(())
}
