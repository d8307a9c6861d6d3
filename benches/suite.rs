//! `cargo bench --bench suite -- --scale 1m`: every bench in one run, then one markdown
//! table of every figure with its same-run baseline, the ratio and the goal.
//!
//! Scales: `small` (a quick check, minutes), `100k`, `1m` (the table of issue #17), `10m`
//! (party file and start-up at 10 million records; needs hours and some 40 GB of memory
//! for the generated in-memory store). `--only a,b` runs some benches.

// Every bench also builds alone, so each declares the helper modules it uses; included
// here together they load those files more than once (each copy unused but one).
#![allow(clippy::duplicate_mod)]

#[path = "common/table.rs"]
mod table;

#[path = "backends.rs"]
mod backends;
#[path = "import.rs"]
mod import;
#[path = "load.rs"]
mod load;
#[path = "party_file.rs"]
mod party_file;
#[path = "search.rs"]
mod search;
#[path = "smtp.rs"]
mod smtp;
#[path = "upload.rs"]
mod upload;
#[path = "verify.rs"]
mod verify;
#[path = "web.rs"]
mod web;

type Run = fn() -> Result<(), Box<dyn std::error::Error>>;

fn unit(f: fn()) -> Result<(), Box<dyn std::error::Error>> {
    f();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return Ok(());
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let scale = arg("--scale").unwrap_or_else(|| "small".into());
    // (records for the party file and the search index, parties, emails imported,
    // verify MB, load seconds)
    let (records, parties, emails, mb, secs) = match scale.as_str() {
        "small" => (20_000, 1_000, 2_000, 64, 5),
        "100k" => (100_000, 5_000, 20_000, 256, 15),
        "1m" => (1_000_000, 50_000, 100_000, 512, 30),
        "10m" => (10_000_000, 200_000, 100_000, 512, 30),
        other => return Err(format!("--scale {other}: small, 100k, 1m or 10m").into()),
    };
    let only: Option<Vec<String>> =
        arg("--only").map(|s| s.split(',').map(str::to_string).collect());
    table::set_knob("AKTE_BENCH_RECORDS", records);
    table::set_knob("AKTE_BENCH_PARTIES", parties);
    table::set_knob("AKTE_BENCH_DOCS", records);
    table::set_knob("AKTE_BENCH_EMAILS", emails);
    table::set_knob("AKTE_BENCH_MB", mb);
    table::set_knob("AKTE_LOAD_SECS", secs);
    // 10M records do not fit a store on this machine: the party file bench writes the
    // catalog's summaries directly (see benches/party_file.rs).
    table::set_knob("AKTE_BENCH_DIRECT", usize::from(scale == "10m"));
    let benches: [(&str, Run); 10] = [
        ("party_file", party_file::main),
        ("search", search::main),
        ("import", || unit(import::main)),
        ("import_memory", || unit(import::main)),
        ("verify", verify::main),
        ("upload", upload::main),
        ("load", load::main),
        ("smtp", smtp::main),
        ("web", web::main),
        ("backends", || unit(backends::main)),
    ];
    let started = std::time::Instant::now();
    for (name, run) in benches {
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == name)) {
            continue;
        }
        if name == "web" {
            // The web bench seeds through the HTTP stack: its own size.
            table::set_knob("AKTE_BENCH_RECORDS", 20_000);
            table::set_knob("AKTE_BENCH_PARTIES", 500);
        }
        if name == "backends" {
            table::set_knob("AKTE_BENCH_EMAILS", 2_000);
        }
        // The import's memory row: an mbox into a store already holding the scale's
        // records (at most 1M: 10M small emails do not fit this machine's inodes either).
        table::set_knob(
            "AKTE_BENCH_PREFILL",
            if name == "import_memory" {
                records.min(1_000_000)
            } else {
                0
            },
        );
        table::set_knob("AKTE_BENCH_MBOX_MB", (records / 200).clamp(50, 5_000));
        println!("\n## {name}\n");
        let t = std::time::Instant::now();
        if let Err(e) = run() {
            println!("{name} failed: {e}");
        }
        println!("({name}: {:.0} s)", t.elapsed().as_secs_f64());
    }
    println!(
        "\n## Benchmark table (scale {scale}, {:.0} min; same machine, same run)\n",
        started.elapsed().as_secs_f64() / 60.0
    );
    print!("{}", table::markdown());
    Ok(())
}
