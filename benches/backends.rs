//! `cargo bench --bench backends`: the same import into the local store and into S3
//! (moto, Object Lock bucket and key bucket, started by `deploy/local-cluster.sh s3`),
//! one after the other in one run; prints both rates and their ratio. The local store is
//! the baseline. AKTE_BENCH_EMAILS sets the corpus size (default 2,000).
//!
//! moto is a Python server on the same two cores: the ratio bounds what S3 costs akte
//! in requests, not what a real S3 endpoint (parallel, remote) would give.

#[path = "common/table.rs"]
mod table;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn import(data: &Path, global: &[&str], env: &[(String, String)], input: &Path) -> (u64, f64) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(data)
        .args(global)
        .args(["--json", "import"])
        .arg(input)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AKTE_LOG", "warn")
        .output()
        .expect("akte import");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One JSON line per item, then the summary.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(summary).expect("summary json");
    (v["archived"].as_u64().unwrap_or(0), secs)
}

pub fn main() {
    let n: usize = crate::table::knob("AKTE_BENCH_EMAILS", 2_000);
    let root = tempfile::tempdir().expect("bench dir");
    let mbox_path = root.path().join("corpus.mbox");
    let mut mbox = std::io::BufWriter::new(std::fs::File::create(&mbox_path).expect("mbox"));
    for i in 0..n {
        write!(
            mbox,
            "From bench@akte.example Tue Oct  1 10:00:00 2024\nFrom: Kunde {k} <kunde{k}@firma.example>\n\
             To: einkauf@akte.example\nSubject: Bestellung {i}\nMessage-ID: <s3-bench-{i}@firma.example>\n\n\
             Sehr geehrte Damen und Herren, anbei die Bestellung {i} über {q} Stück.\n\n",
            k = i % 97,
            q = i % 13 + 1
        )
        .expect("write");
    }
    mbox.flush().expect("flush");
    drop(mbox);

    let s3dir = root.path().join("s3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/local-cluster.sh");
    let started = Command::new(&script)
        .args(["s3", s3dir.to_str().expect("utf-8 path"), "moto"])
        .output()
        .expect("local-cluster.sh");
    if !started.status.success() {
        println!(
            "SKIPPED: no S3 server ({}); run deploy/local-cluster.sh install",
            String::from_utf8_lossy(&started.stderr).trim()
        );
        return;
    }
    let env: Vec<(String, String)> = std::fs::read_to_string(s3dir.join("s3.env"))
        .expect("s3.env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    let (local_n, local_s) = import(&root.path().join("local"), &[], &[], &mbox_path);
    let (s3_n, s3_s) = import(
        &root.path().join("s3data"),
        &[
            "--store",
            "s3://akte-lock/bench",
            "--key-store",
            "s3://akte-keys/bench",
            "--object-lock",
            "compliance",
        ],
        &env,
        &mbox_path,
    );
    let (plain_n, plain_s) = import(
        &root.path().join("plaindata"),
        &["--store", "s3://akte-plain/bench"],
        &env,
        &mbox_path,
    );
    let _ = Command::new(&script)
        .args(["down", s3dir.to_str().expect("utf-8 path")])
        .output();
    assert_eq!(local_n, n as u64);
    assert_eq!(s3_n, n as u64);
    assert_eq!(plain_n, n as u64);
    let local_rate = local_n as f64 / local_s;
    let s3_rate = s3_n as f64 / s3_s;
    println!("| store | emails | seconds | emails/s |");
    println!("|---|---|---|---|");
    println!("| local disk (baseline) | {local_n} | {local_s:.2} | {local_rate:.0} |");
    println!(
        "| moto, Object Lock (retention applied before exit) | {s3_n} | {s3_s:.2} | {s3_rate:.0} |"
    );
    let plain_rate = plain_n as f64 / plain_s;
    println!("| moto, no Object Lock | {plain_n} | {plain_s:.2} | {plain_rate:.0} |");
    println!(
        "ratio moto (Object Lock) / local: {:.3} (S3 takes {:.1}× as long); \
         moto without Object Lock / local: {:.3}",
        s3_rate / local_rate,
        local_rate / s3_rate,
        plain_rate / local_rate
    );
    crate::table::bench("backends");
    crate::table::row(
        &format!("import of {n} emails into S3 (moto, Object Lock)"),
        format!("{s3_rate:.0} emails/s"),
        format!("{local_rate:.0} emails/s (local disk)"),
        s3_rate / local_rate,
        "—",
    );
}
