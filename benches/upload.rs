//! `cargo bench --bench upload`: the latency of one upload through the one ingest
//! pipeline, against the path uploads took before it, measured in the same run.
//!
//! Setup: a local store (fsync on) in a temporary directory, the `akte` binary's
//! extraction workers. Each round archives one document both ways, alternating so that
//! both see the same disk and cache state:
//! - **baseline** (`before`): the bytes streamed straight into a record with the given
//!   metadata (`Services::archive`: blob, revision, journal entry; nothing read) — what
//!   `POST /v1/records` did before the pipeline;
//! - **pipeline** (`after`): spooled to a file, hashed, extracted in a worker, classified,
//!   linked, staged and group-committed (`Services::archive_document`), as
//!   `POST /v1/records` does now.
//!
//! Printed per document kind (a 2 KB text, a one-page PDF): median and p90 latency of
//! both, and the ratio after/before. AKTE_BENCH_ROUNDS (default 100) rounds per kind.

#[path = "common/table.rs"]
mod table;

#[path = "../tests/common/docs.rs"]
mod docs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use akte::archive::{Archive, NewRecord};
use akte::clock::SystemClock;
use akte::extract::sandbox::{Extractor, Limits};
use akte::ingest::Ingest;
use akte::ingest::batch::{Given, IngestDefaults};
use akte::service::Services;
use akte::store::Store;
use akte::store::content;
use bytes::Bytes;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rounds: usize = crate::table::knob("AKTE_BENCH_ROUNDS", 100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool)?;
    let store = Store::open(&dir.path().join("data").display().to_string())?;
    let archive = Archive::new(store, Arc::new(SystemClock));
    let workers = Extractor::workers(env!("CARGO_BIN_EXE_akte").into(), 2, Limits::default());
    let svc = Services::new(archive);
    let ingest = Ingest::new(svc.clone()).with_extractor(workers);
    let text = "Sehr geehrte Damen und Herren, anbei unser Angebot. ".repeat(40);
    let pdf = docs::pdf(
        &[
            "Rechnung Nr. 2024-0815",
            "Sehr geehrte Damen und Herren, wir berechnen Ihnen die Lieferung.",
        ],
        None,
    );
    let kinds: [(&str, Bytes, &str); 2] = [
        ("text 2 KB", Bytes::from(text), "text/plain"),
        ("PDF 1 page", Bytes::from(pdf), "application/pdf"),
    ];
    rt.block_on(async {
        svc.load().await?;
        for (name, bytes, media) in kinds {
            let (mut before, mut after) = (Vec::new(), Vec::new());
            for round in 0..rounds + 5 {
                // Each round's bytes differ, so that neither path deduplicates.
                let mut b = bytes.to_vec();
                b.extend_from_slice(format!("\n% {round}\n").as_bytes());
                let b = Bytes::from(b);

                let t = Instant::now();
                let meta = NewRecord {
                    media_type: Some(media.into()),
                    file_name: Some("a".into()),
                    ..Default::default()
                };
                let once = futures::stream::iter(vec![Ok::<_, akte::Error>(b.clone())]);
                svc.archive("bench", once, meta).await?;
                let took_before = t.elapsed();

                let t = Instant::now();
                let once = futures::stream::iter(vec![Ok::<_, akte::Error>(b)]);
                let c = content::spool(&spool, once).await?;
                let given = Given {
                    media_type: Some(media.into()),
                    ..Default::default()
                };
                ingest.archive_document("bench", c, Some("a".into()), given, IngestDefaults::default())
                    .await?;
                let took_after = t.elapsed();
                // The first rounds start the workers and warm the caches.
                if round >= 5 {
                    before.push(took_before);
                    after.push(took_after);
                }
            }
            let (b50, b90) = (percentile(&mut before, 0.5), percentile(&mut before, 0.9));
            let (a50, a90) = (percentile(&mut after, 0.5), percentile(&mut after, 0.9));
            println!(
                "{name}: before median {:.2} ms p90 {:.2} ms; pipeline median {:.2} ms p90 {:.2} ms; \
                 ratio (median) {:.2}",
                b50.as_secs_f64() * 1e3,
                b90.as_secs_f64() * 1e3,
                a50.as_secs_f64() * 1e3,
                a90.as_secs_f64() * 1e3,
                a50.as_secs_f64() / b50.as_secs_f64()
            );
            crate::table::bench("upload");
            crate::table::row(
                &format!("upload through the pipeline ({name}), median"),
                format!("{:.2} ms", a50.as_secs_f64() * 1e3),
                format!("{:.2} ms (archived directly)", b50.as_secs_f64() * 1e3),
                a50.as_secs_f64() / b50.as_secs_f64(),
                "—",
            );
        }
        Ok::<_, akte::Error>(())
    })?;
    Ok(())
}
