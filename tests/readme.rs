//! README.md's examples, re-run so that they cannot drift from the code: the step-by-step
//! block runs as it stands, and every other `akte …` line must be a command the binary
//! accepts (its subcommands, flags and value formats).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The `sh` blocks of the README, each with the heading it stands under.
fn sh_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match &mut block {
            Some(b) if line.starts_with("```") => {
                out.push((heading.clone(), std::mem::take(b)));
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None if line.starts_with("```sh") => block = Some(String::new()),
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().into(),
            None => {}
        }
    }
    out
}

const WALKTHROUGH: &str = "A first Kundenakte, step by step";

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_akte"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn clean_env(c: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("AKTE_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn the_step_by_step_example_runs_as_written() {
    let blocks = sh_blocks(&readme());
    let (_, script) = blocks
        .iter()
        .find(|(h, _)| h == WALKTHROUGH)
        .expect("the README's step-by-step block");
    if Command::new("jq").arg("--version").output().is_err() {
        // .ci/deps installs jq; the other test still checks every line of this block.
        eprintln!("SKIPPED: the step-by-step block needs jq, which is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    clean_env(&mut c)
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir.path())
        .env("PATH", path)
        .stdin(Stdio::null());
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README's block failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    // What the block's comments promise.
    for want in [
        "Müller GmbH",
        "complaint",
        "domain mueller.de",
        "transactions",
        "OK: ",
    ] {
        assert!(
            stdout.to_lowercase().contains(&want.to_lowercase())
                || stderr.to_lowercase().contains(&want.to_lowercase()),
            "{want:?} in\n{stdout}\n{stderr}"
        );
    }
    assert!(stderr.contains("did you mean \"invoice\""), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "akte: archive {}",
            std::fs::canonicalize(dir.path().join("akte-data"))
                .unwrap()
                .display()
        )),
        "names the archive it wrote to: {stderr}"
    );
}

/// Splits a shell line into words: quotes group, a `#` after a blank starts a comment,
/// and a pipe or redirection ends the command. Placeholders stay as they are written.
fn words(line: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    quoted = true;
                    in_word = true;
                }
                ' ' | '\t' => {
                    if in_word {
                        out.push((std::mem::take(&mut cur), quoted));
                    }
                    in_word = false;
                    quoted = false;
                    if chars.peek() == Some(&'#') {
                        break;
                    }
                }
                '|' | '>' | '<' | ';' | '&' if !in_word || cur.is_empty() => break,
                _ => {
                    cur.push(c);
                    in_word = true;
                }
            },
        }
    }
    if in_word {
        out.push((cur, quoted));
    }
    out
}

/// A README placeholder made into a value the argument parser accepts: dates for `D`
/// and `YYYY-MM-DD`, numbers for `N` and `SEQ`, the first of `a|b`, optional `[…]`
/// parts written out, `FILE…` as one file.
fn concrete(words: Vec<(String, bool)>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (w, quoted) in words {
        let w = if quoted {
            w
        } else {
            let w = w.replace(['[', ']'], "").replace('…', "");
            let w = w.split('|').next().unwrap_or_default().to_string();
            match w.as_str() {
                "YYYY-MM-DD" => "2025-01-01".into(),
                "D" => "2025-01-01".into(),
                "N" | "SEQ" => "1".into(),
                _ => w,
            }
        };
        if !w.is_empty() {
            out.push(w);
        }
    }
    out
}

#[test]
fn every_akte_line_in_the_readme_is_a_command_the_binary_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut checked = 0;
    for (heading, block) in sh_blocks(&readme()) {
        for line in block.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("akte ") else {
                continue;
            };
            let args = concrete(words(rest));
            // The server runs until stopped; the demo seeds an archive of its own.
            if args.iter().any(|a| a == "serve" || a == "demo") {
                continue;
            }
            let args: Vec<String> = args
                .into_iter()
                .map(|a| {
                    // The step-by-step block's shell variables.
                    if a.starts_with('$') { "X".into() } else { a }
                })
                .collect();
            let mut c = Command::new(env!("CARGO_BIN_EXE_akte"));
            clean_env(&mut c)
                .args(&args)
                .env("AKTE_DATA", &data)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            let started = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    let _ = child.kill();
                    panic!("README ({heading}): `akte {rest}` did not end within 60 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            // The argument parser's own refusals: exit 2 and a usage message. Anything
            // else (no such record, nothing to import) is the command running.
            assert!(
                status.code() != Some(2)
                    && !err.contains("unexpected argument")
                    && !err.contains("unrecognized subcommand")
                    && !err.contains("invalid value"),
                "README ({heading}): `akte {rest}` (run as {args:?}) is not accepted:\n{err}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 40,
        "only {checked} akte lines found in README.md"
    );
    eprintln!("{checked} akte command lines of README.md accepted");
}

#[test]
fn the_line_reader_splits_as_a_shell_does() {
    let w = |s: &str| concrete(words(s));
    assert_eq!(
        w(r#"search 'class:invoice date:[2024-01-01 TO 2024-12-31]' --sort date-desc"#),
        [
            "search",
            "class:invoice date:[2024-01-01 TO 2024-12-31]",
            "--sort",
            "date-desc"
        ]
    );
    assert_eq!(
        w("amend ID [--date D] [--rev N]   # a comment"),
        ["amend", "ID", "--date", "2025-01-01", "--rev", "1"]
    );
    assert_eq!(
        w("token create --role admin|archivist --person alice"),
        ["token", "create", "--role", "admin", "--person", "alice"]
    );
    assert_eq!(
        w("docs procedure --html > out.html"),
        ["docs", "procedure", "--html"]
    );
    assert_eq!(
        w("archive FILE… --class C"),
        ["archive", "FILE", "--class", "C"]
    );
}
