//! Replays the fuzzing corpora (`fuzz/corpus/<target>/`) and every crash the fuzzers
//! found (`fuzz/regressions/<target>/`) through the same entry points the afl.rs targets
//! call (`akte::fuzzing`): what a fuzzer once found must stay fixed. The long fuzzing
//! runs themselves happen outside CI (fuzz/README.md).

use std::path::Path;

#[test]
fn every_corpus_and_regression_input_passes_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    let mut summary = Vec::new();
    for (name, target) in akte::fuzzing::TARGETS {
        let mut n = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files.iter().filter(|f| f.is_file()) {
                let data = std::fs::read(f).unwrap();
                target(&data);
                n += 1;
            }
        }
        assert!(
            n > 0,
            "no corpus for fuzz target {name} under {}",
            root.display()
        );
        summary.push(format!("{name} {n}"));
        total += n;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "fuzz corpora replayed: {total} inputs ({})",
        summary.join(", ")
    );
}
