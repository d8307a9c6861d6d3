//! The `akte` binary: byte-exact round trips, JSON output, clear errors, verify exit codes.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

fn akte(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("AKTE_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure, got success");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn archive_json(data: &Path, file: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json", "archive", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = ok(&akte(data, &args));
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn archive_then_cat_is_byte_exact_for_empty_small_and_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (name, len) in [
        ("empty", 0usize),
        ("small.txt", 1234),
        ("large.bin", 100 * 1024 * 1024 + 17),
    ] {
        let src = dir.path().join(name);
        let bytes = pseudo_random(len, len as u64 + 5);
        std::fs::write(&src, &bytes).unwrap();
        let v = archive_json(
            &data,
            &src,
            &["--class", "annual-statement", "--date", "2024-05-01"],
        );
        assert_eq!(v["sha256"], sha256_hex(&bytes));
        assert_eq!(v["size"], len as u64);
        assert_eq!(v["retain_until"], "2034-12-31");
        let id = v["id"].as_str().unwrap();
        let out_path = dir.path().join(format!("{name}.out"));
        let out_file = std::fs::File::create(&out_path).unwrap();
        let status = Command::new(env!("CARGO_BIN_EXE_akte"))
            .arg("--data")
            .arg(&data)
            .args(["cat", id])
            .stdout(out_file)
            .status()
            .unwrap();
        assert!(status.success());
        let back = std::fs::read(&out_path).unwrap();
        assert_eq!(sha256_hex(&back), sha256_hex(&bytes), "{name}");
    }
    let out = ok(&akte(&data, &["--json", "verify"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["blobs"], 3);
}

#[test]
fn show_history_amend_and_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let src = dir.path().join("Rechnung-4711.txt");
    std::fs::write(&src, "Rechnung 4711").unwrap();
    let v = archive_json(&data, &src, &["--class", "invoice", "--date", "2025-02-03"]);
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["retain_until"], "2033-12-31");

    let out = ok(&akte(&data, &["show", &id]));
    assert!(out.contains("class:         invoice"), "{out}");
    assert!(out.contains("Rechnung-4711.txt"));

    ok(&akte(
        &data,
        &[
            "amend",
            &id,
            "--title",
            "Rechnung 4711 (Kopie)",
            "--reason",
            "typo",
        ],
    ));
    let v2 = dir.path().join("v2.txt");
    std::fs::write(&v2, "Rechnung 4711 korrigiert").unwrap();
    ok(&akte(
        &data,
        &["amend", &id, "--content", v2.to_str().unwrap()],
    ));

    // A list is JSON Lines: one revision per line.
    let revs: Vec<serde_json::Value> = ok(&akte(&data, &["--json", "history", &id]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(revs.len(), 3);
    assert_eq!(revs[1]["title"], "Rechnung 4711 (Kopie)");
    assert_eq!(revs[2]["content"]["version"], 2);

    let old = ok(&akte(&data, &["cat", &id, "--rev", "1"]));
    assert_eq!(old, "Rechnung 4711");
    let new = ok(&akte(&data, &["cat", &id]));
    assert_eq!(new, "Rechnung 4711 korrigiert");

    let j = ok(&akte(&data, &["--json", "journal", "--since", "1"]));
    let entries: Vec<serde_json::Value> = j
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["action"], "record.amend");
    assert_eq!(entries[1]["action"], "record.content");

    let err = fails(&akte(
        &data,
        &["amend", &id, "--retain-until", "2030-01-01"],
    ));
    assert!(err.contains("only be extended"), "{err}");
}

#[test]
fn errors_are_one_line_with_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let err = fails(&akte(&data, &["archive", "/nonexistent/file.pdf"]));
    assert!(err.contains("/nonexistent/file.pdf"), "{err}");
    let err = fails(&akte(
        &data,
        &["show", "01900000-0000-7000-8000-000000000000"],
    ));
    assert!(err.contains("unknown record"), "{err}");
    let err = fails(&akte(&data, &["show", "not-an-id"]));
    assert!(err.contains("not an object id"), "{err}");
    let err = fails(&akte(
        &data,
        &["archive", "--class", "Bad Class", "/etc/hostname"],
    ));
    assert!(err.contains("class"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_akte"))
        .args(["--store", "ftp://nowhere", "journal"])
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("cannot open store"), "{err}");
    // A data directory that is a file cannot be opened.
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    fails(&akte(&file, &["journal"]));
}

#[test]
fn corrupt_objects_are_named_by_show_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let src = dir.path().join("a.txt");
    std::fs::write(&src, "Vertrag").unwrap();
    let v = archive_json(&data, &src, &[]);
    let id = v["id"].as_str().unwrap();
    let rev = data.join("records").join(id).join("00000001.mpk");
    // A damaged (truncated) revision: reads refuse it, verify names it. (A flip that
    // still decodes is caught by verify against the journal digest; see tests/tamper.rs.)
    let bytes = std::fs::read(&rev).unwrap();
    std::fs::write(&rev, &bytes[..bytes.len() - 5]).unwrap();

    let err = fails(&akte(&data, &["show", id]));
    assert!(err.contains(&format!("records/{id}/00000001.mpk")), "{err}");

    let out = akte(&data, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("BROKEN records/{id}/00000001.mpk")),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED"), "{stdout}");
}

fn rezip_with(src: &Path, dst: &Path, change: &str) {
    use std::io::{Read, Write};
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        if name.starts_with(change) {
            bytes.push(b'!');
        }
        zout.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zout.write_all(&bytes).unwrap();
    }
    zout.finish().unwrap();
}

#[test]
fn party_and_tax_exports_verify_offline_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = ok(&akte(
        &data,
        &[
            "--json",
            "party",
            "create",
            "--name",
            "Müller GmbH",
            "--role",
            "customer:K-1",
            "--domain",
            "mueller.de",
        ],
    ));
    let party: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let pid = party["id"].as_str().unwrap();
    for (name, class, date) in [
        ("RE-1.pdf", "invoice", "2024-03-01"),
        ("Brief.txt", "business-letter", "2024-05-02"),
        ("Angebot.txt", "offer", "2023-01-02"),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, format!("Inhalt von {name}")).unwrap();
        let v = archive_json(&data, &f, &["--class", class, "--date", date]);
        ok(&akte(
            &data,
            &[
                "link",
                v["id"].as_str().unwrap(),
                "--party",
                pid,
                "--role",
                "recipient",
            ],
        ));
    }
    // Not about the party (and before its last entry): not in the person's export.
    ok(&akte(
        &data,
        &["token", "create", "--name", "someone", "--role", "clerk"],
    ));
    let unrelated = dir.path().join("fremd.txt");
    std::fs::write(&unrelated, "ein anderer Kunde").unwrap();
    archive_json(&data, &unrelated, &["--class", "business-letter"]);
    ok(&akte(&data, &["note", "--party", pid, "--text", "Rückruf"]));
    let zip_path = dir.path().join("party.zip");
    ok(&akte(
        &data,
        &["export", "party", pid, "--out", zip_path.to_str().unwrap()],
    ));
    let out = ok(&akte(&data, &["verify-export", zip_path.to_str().unwrap()]));
    assert!(out.starts_with("OK: "), "{out}");
    assert!(out.contains("4 originals"), "{out}");
    // Readable for the person: a README, CSVs, JSON beside each stored revision, the
    // originals by name with an extension, and only the journal entries about them.
    {
        let mut z = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        let names: Vec<String> = z.file_names().map(String::from).collect();
        for want in [
            "README.txt",
            "records.csv",
            "journal.csv",
            "journal/chain.csv",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        let originals: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with("originals/"))
            .collect();
        assert_eq!(originals.len(), 4, "{originals:?}");
        assert!(
            originals
                .iter()
                .all(|n| n.ends_with(".pdf") || n.ends_with(".txt")),
            "every original has its name and an extension: {originals:?}"
        );
        let json_revs = names
            .iter()
            .filter(|n| n.starts_with("records/") && n.ends_with(".json"))
            .count();
        assert_eq!(
            json_revs,
            names
                .iter()
                .filter(|n| n.starts_with("records/") && n.ends_with(".mpk"))
                .count()
        );
        let mut read = |name: &str| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut z.by_name(name).unwrap(), &mut s).unwrap();
            s
        };
        let records = read("records.csv");
        assert_eq!(
            records.lines().count(),
            5,
            "a header and four records: {records}"
        );
        assert!(records.contains("RE-1.pdf") && records.contains("Brief.txt"));
        assert!(!records.contains("fremd.txt"), "{records}");
        let journal = read("journal.csv");
        assert!(journal.starts_with("seq;time;actor;action;subjects;detail"));
        assert!(journal.contains("party.create"), "{journal}");
        assert!(
            !journal.contains("token.") && !journal.contains("fremd"),
            "only the party's own entries: {journal}"
        );
        let manifest: serde_json::Value = serde_json::from_str(&read("manifest.json")).unwrap();
        let chain = read("journal/chain.csv");
        let from = manifest["journal_from"].as_u64().unwrap();
        let to = manifest["journal_to"].as_u64().unwrap();
        assert_eq!(chain.lines().count() as u64, to - from + 2, "{chain}");
        assert!(
            (names.iter().filter(|n| n.starts_with("journal/0")).count() as u64) < to - from + 1,
            "entries about others are left out: {names:?}"
        );
    }

    let tax = dir.path().join("tax-2024.zip");
    ok(&akte(
        &data,
        &[
            "export",
            "tax",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--out",
            tax.to_str().unwrap(),
        ],
    ));
    let out = ok(&akte(&data, &["verify-export", tax.to_str().unwrap()]));
    assert!(out.contains("2 originals"), "{out}");
    let mut z = zip::ZipArchive::new(std::fs::File::open(&tax).unwrap()).unwrap();
    let mut index = String::new();
    std::io::Read::read_to_string(&mut z.by_name("index.xml").unwrap(), &mut index).unwrap();
    assert!(index.contains("<URL>belege.csv</URL>") && index.contains("<From>01.01.2024</From>"));
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut z.by_name("belege.csv").unwrap(), &mut csv).unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two documents: {csv}");
    assert!(csv.starts_with("Beleg_ID;Klasse;Titel;Belegdatum"), "{csv}");
    assert!(
        csv.contains("Müller GmbH (customer K-1)"),
        "partners by name and number: {csv}"
    );
    assert!(
        index.contains("<Range><From>2</From></Range>"),
        "index.xml skips the header"
    );
    assert!(csv.contains("invoice;") && csv.contains(";01.03.2024;"));

    // Any changed original, revision or journal entry is caught.
    for part in ["originals/", "records/", "journal/", "journal/chain.csv"] {
        let bad = dir.path().join("bad.zip");
        rezip_with(&zip_path, &bad, part);
        let out = akte(&data, &["verify-export", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{part}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("BROKEN"),
            "{part}"
        );
    }
}

#[test]
fn procedure_documentation_reflects_the_live_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&akte(
        &data,
        &["token", "create", "--role", "auditor", "--name", "pruefer"],
    ));
    let company = dir.path().join("acme.toml");
    std::fs::write(&company, "version = \"acme-2\"\n[[class]]\nid = \"quality-record\"\nyears = 15\nbasis = \"ISO 9001 Handbuch\"\n").unwrap();
    let out = ok(&akte(
        &data,
        &[
            "--catalogue",
            company.to_str().unwrap(),
            "docs",
            "procedure",
        ],
    ));
    assert!(out.contains("de-2025.1+acme-2"), "{out}");
    assert!(out.contains("| quality-record () | 15 |"), "{out}");
    assert!(out.contains("| pruefer | auditor |"), "{out}");
    assert!(out.contains("Entries: 1;"), "{out}");
    assert!(out.contains("Local file system"));
    let html = ok(&akte(&data, &["docs", "procedure", "--html"]));
    assert!(html.starts_with("<!doctype html>"));
}

#[test]
fn a_disposal_approved_on_the_command_line_is_executed_and_shows_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let f = dir.path().join("brief.txt");
    std::fs::write(&f, "Brief von 2012").unwrap();
    let a = archive_json(
        &data,
        &f,
        &["--class", "business-letter", "--date", "2012-03-01"],
    );
    let id = a["id"].as_str().unwrap();
    let req: serde_json::Value = serde_json::from_str(
        ok(&akte(
            &data,
            &[
                "--json", "--actor", "alice", "dispose", "request", id, "--reason", "Frist",
            ],
        ))
        .trim(),
    )
    .unwrap();
    let rid = req["id"].as_str().unwrap();
    assert_eq!(req["records_done"], 0);
    // The requester cannot approve; another person can, and it is executed at once.
    fails(&akte(
        &data,
        &["--actor", "alice", "dispose", "approve", rid],
    ));
    let done: serde_json::Value = serde_json::from_str(
        ok(&akte(
            &data,
            &["--json", "--actor", "bob", "dispose", "approve", rid],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(done["state"], "executed", "{done}");
    assert_eq!(done["records_done"], 1);
    let shown = ok(&akte(&data, &["dispose", "show", rid]));
    assert!(
        shown.contains("Executed") && shown.contains("disposed"),
        "{shown}"
    );
    let v: serde_json::Value =
        serde_json::from_str(ok(&akte(&data, &["--json", "verify"])).trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

/// Issue #20 on the command line: German role names are the usual roles, `mull` finds
/// Müller, the party file shows phone, legal holds and each transaction, an empty file
/// says so, a dry run says it wrote nothing, disposals can be listed, a verification is
/// journaled, and output into a closed pipe ends quietly.
#[test]
fn the_command_line_shows_the_whole_file_and_says_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = ok(&akte(
        &data,
        &[
            "--json",
            "party",
            "create",
            "--name",
            "Müller Metall GmbH",
            "--role",
            "Kunde:K-7",
            "--phone",
            "+49 40 123456",
        ],
    ));
    let party: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let pid = party["id"].as_str().unwrap().to_string();
    assert_eq!(party["roles"][0]["role"], "customer", "{party}");
    let empty = ok(&akte(&data, &["party", "show", &pid]));
    assert!(empty.contains("Records: none"), "{empty}");
    assert!(empty.contains("phone +49 40 123456"), "{empty}");
    let listed = ok(&akte(&data, &["party", "list", "--name", "mull"]));
    assert!(listed.contains("Müller Metall GmbH"), "{listed}");
    let listed = ok(&akte(&data, &["party", "list", "--name", "muell"]));
    assert_eq!(listed.matches("Müller Metall GmbH").count(), 1, "{listed}");
    let file = dir.path().join("RE-7.txt");
    std::fs::write(&file, "Rechnung RE-7").unwrap();
    ok(&akte(
        &data,
        &[
            "archive",
            "--class",
            "invoice",
            "--date",
            "2025-02-03",
            "--party",
            &pid,
            "--role",
            "customer",
            file.to_str().unwrap(),
        ],
    ));
    ok(&akte(
        &data,
        &[
            "hold",
            "place",
            "--name",
            "Prüfung 2025",
            "--reason",
            "Betriebsprüfung",
            "--party",
            &pid,
        ],
    ));
    let shown = ok(&akte(&data, &["party", "show", &pid]));
    assert!(shown.contains("LEGAL HOLD Prüfung 2025"), "{shown}");
    assert!(
        shown.contains("2025: 1 document") && shown.contains("RE-7.txt"),
        "{shown}"
    );
    // A dry run says that it wrote nothing.
    let src = dir.path().join("in");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("Zahlungserinnerung Rechnung 4711.txt"),
        "Bitte zahlen",
    )
    .unwrap();
    let dry = ok(&akte(
        &data,
        &["import", "--dry-run", src.to_str().unwrap()],
    ));
    assert!(
        dry.contains("nothing written") && dry.contains("would be archived"),
        "{dry}"
    );
    // A payment reminder is a letter about an invoice, not an invoice.
    let out = ok(&akte(&data, &["--json", "import", src.to_str().unwrap()]));
    assert!(out.contains("\"archived\":1"), "{out}");
    let journal = ok(&akte(&data, &["--json", "journal"]));
    let last: serde_json::Value =
        serde_json::from_str(journal.lines().last().unwrap_or("{}")).unwrap();
    let id = last["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["kind"] == "record")
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("the import's entry names its record: {last}"))
        .to_string();
    let shown: serde_json::Value =
        serde_json::from_str(ok(&akte(&data, &["--json", "show", &id])).trim()).unwrap();
    assert_eq!(shown["class"], "business-letter", "{shown}");
    // Disposals can be listed (none yet), a verification is journaled.
    let none = ok(&akte(&data, &["dispose", "list"]));
    assert!(none.trim().is_empty(), "{none}");
    ok(&akte(&data, &["verify"]));
    let journal = ok(&akte(&data, &["journal"]));
    assert!(journal.contains("audit.verify"), "{journal}");
    // An empty file is archived as asked, with a warning.
    let empty = dir.path().join("leer.txt");
    std::fs::write(&empty, b"").unwrap();
    let out = akte(
        &data,
        &["archive", "--class", "memo", empty.to_str().unwrap()],
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty (0 bytes)"));
    // A tax export of a year without documents says so.
    let empty_zip = dir.path().join("tax-1990.zip");
    let out = akte(
        &data,
        &[
            "export",
            "tax",
            "--from",
            "1990-01-01",
            "--to",
            "1990-12-31",
            "--out",
            empty_zip.to_str().unwrap(),
        ],
    );
    ok(&out);
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("no document is dated"), "{warned}");
    // Run where there is no archive, a command says so instead of creating one.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_akte"))
        .current_dir(elsewhere.path())
        .args(["party", "list"])
        .env_remove("AKTE_DATA")
        .env_remove("AKTE_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no archive in ./akte-data"));
    assert!(
        !elsewhere.path().join("akte-data").exists(),
        "nothing created"
    );
    // Output into a pipe the reader closed: a quiet end, no panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(&data)
        .args(["journal"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}

/// `--json` is JSON Lines everywhere (README "Scripting"): a list command writes one object
/// per thing and nothing else, a command about one thing writes exactly one line; an
/// import names each item with its record id, attachments and links, reports a domain
/// shared by two parties instead of guessing, and the party file pages from 1.
#[test]
fn every_json_output_is_one_object_per_line_and_imports_name_what_they_did() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = ok(&akte(&data, &all));
        out.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("akte {args:?}: not one JSON value per line ({e}): {out}")
                });
                assert!(v.is_object(), "akte {args:?}: {l}");
                v
            })
            .collect()
    };
    let party = |name: &str, domain: &str, role: &str| -> String {
        lines(&[
            "party", "create", "--name", name, "--domain", domain, "--role", role,
        ])[0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let alpha = party("Alpha GmbH", "shared.de", "customer:1");
    let beta = party("Beta GmbH", "shared.de", "supplier:2");
    let gamma = party("Gamma AG", "gamma.de", "customer:3");

    // An import: one line per item as it commits, then the summary.
    let mails = dir.path().join("mails");
    std::fs::create_dir(&mails).unwrap();
    std::fs::write(
        mails.join("a.eml"),
        "From: x@shared.de\r\nTo: me@us.de\r\nSubject: Hallo\r\nMessage-ID: <a1@shared.de>\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n\r\nText\r\n",
    )
    .unwrap();
    let g = "From: y@gamma.de\r\nTo: me@us.de\r\nSubject: Lieferschein 9\r\nMessage-ID: <g1@gamma.de>\r\n\
             Date: Mon, 2 Mar 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
             siehe Anhang\r\n--XX\r\nContent-Type: text/plain; name=ls.txt\r\n\
             Content-Disposition: attachment; filename=ls.txt\r\n\r\nLieferschein\r\n--XX--\r\n";
    std::fs::write(mails.join("g.eml"), g).unwrap();
    let out = lines(&["import", mails.to_str().unwrap()]);
    assert_eq!(out.len(), 3, "two items and the summary: {out:?}");
    let (a, gi, summary) = (&out[0], &out[1], &out[2]);
    assert!(a["item"].as_str().unwrap().ends_with("a.eml") && a["id"].is_string());
    assert_eq!(a["linked"].as_array().unwrap().len(), 0, "{a}");
    assert_eq!(
        a["ambiguous"][0]["parties"].as_array().unwrap().len(),
        2,
        "{a}"
    );
    assert_eq!(gi["attachments"].as_array().unwrap().len(), 1, "{gi}");
    assert_eq!(gi["linked"][0]["party"], gamma.as_str(), "{gi}");
    assert_eq!(summary["archived"], 2);
    assert_eq!(summary["attachments"], 1);
    assert_eq!(summary["linked"], 1);
    let amb = summary["ambiguous"].as_array().unwrap();
    assert_eq!(amb.len(), 1, "{summary}");
    let reason = amb[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Alpha GmbH") && reason.contains("Beta GmbH"),
        "names both parties: {reason}"
    );
    let text = ok(&akte(&data, &["import", mails.to_str().unwrap()]));
    assert!(text.contains("duplicate"), "{text}");
    assert!(
        text.contains(a["id"].as_str().unwrap()),
        "record ids: {text}"
    );

    // The same message with other bytes: kept, and the file says which it repeats.
    std::fs::write(
        mails.join("g2.eml"),
        format!("Received: from relay2\r\n{g}"),
    )
    .unwrap();
    let again = lines(&["import", mails.join("g2.eml").to_str().unwrap()]);
    assert_eq!(again[0]["related"][0], gi["id"], "{again:?}");
    let file = ok(&akte(&data, &["party", "show", &gamma]));
    assert!(
        file.contains(&format!(
            "same Message-ID as {}",
            gi["id"].as_str().unwrap()
        )),
        "{file}"
    );

    // Lists: one line per thing.
    let id = gi["id"].as_str().unwrap();
    ok(&akte(
        &data,
        &["amend", id, "--title", "Lieferschein 9 (Kunde)"],
    ));
    ok(&akte(
        &data,
        &[
            "hold", "place", "--name", "H", "--reason", "R", "--party", &alpha,
        ],
    ));
    ok(&akte(
        &data,
        &["token", "create", "--name", "t", "--role", "clerk"],
    ));
    let old = dir.path().join("alt.txt");
    std::fs::write(&old, "Brief von 2010").unwrap();
    let letter = lines(&[
        "archive",
        old.to_str().unwrap(),
        "--class",
        "business-letter",
        "--date",
        "2010-05-01",
    ]);
    let letter_id = letter[0]["id"].as_str().unwrap().to_string();
    lines(&["dispose", "request", &letter_id, "--reason", "abgelaufen"]);
    ok(&akte(
        &data,
        &[
            "case",
            "create",
            "--party",
            &beta,
            "--kind",
            "complaint",
            "--title",
            "Reklamation",
        ],
    ));
    for (args, n) in [
        (vec!["party", "list"], 3),
        (vec!["party", "history", &alpha], 1),
        (vec!["history", id], 2),
        (vec!["hold", "list"], 1),
        (vec!["token", "list"], 1),
        (vec!["retention", "eligible"], 1),
        (vec!["dispose", "list"], 1),
    ] {
        assert_eq!(lines(&args).len(), n, "akte --json {args:?}");
    }
    let journal = lines(&["journal"]);
    assert!(journal.len() > 10 && journal.iter().all(|e| e["seq"].is_u64()));
    // One thing: one line.
    for args in [
        vec!["show", id],
        vec!["party", "show", &gamma],
        vec!["search", "Lieferschein"],
        vec!["retention", "report"],
        vec!["retention", "catalogue"],
    ] {
        assert_eq!(lines(&args).len(), 1, "akte --json {args:?}");
    }
    // The report's rows are printed as they are counted, the counts after them.
    let r = &lines(&["retention", "report"])[0];
    let rows = r["records"].as_array().map(Vec::len);
    assert!(rows.is_some_and(|n| n > 0), "{r}");
    assert_eq!(rows, r["records_total"].as_u64().map(|n| n as usize), "{r}");
    let s = &lines(&["search", "Lieferschein"])[0];
    assert_eq!(s["page"], 1, "{s}");
    let f = &lines(&["party", "show", &gamma])[0];
    assert_eq!(f["communication"]["page"], 1, "pages count from 1: {f}");
    let refused = akte(&data, &["party", "show", &gamma, "--page", "0"]);
    assert!(!refused.status.success());
}

/// Removes journal entries `seq` and after, as someone with the store's files could.
fn cut_journal_back(data: &Path, seq: u64) {
    let head: u64 = std::fs::read_dir(data.join("journal"))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_suffix(".mpk")?
                .parse()
                .ok()
        })
        .max()
        .unwrap();
    for s in seq..=head {
        std::fs::remove_file(data.join(format!("journal/{s:020}.mpk"))).unwrap();
    }
}

/// Issue #18, first part: with a signing key outside the store every checkpoint is
/// signed; `akte anchor` keeps a signed head elsewhere, and `verify --anchor` finds the
/// journal cut back before it — together with the records written since, a cut that the
/// store alone cannot show. A checkpoint signed by a key that is not trusted, and an
/// altered anchor, are named.
#[test]
fn a_journal_cut_back_is_found_by_its_anchor_and_foreign_signatures_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("keys").join("checkpoint.p8");
    let key_s = key.to_str().unwrap();
    let signed = |args: &[&str]| {
        let mut all = vec!["--signing-key", key_s];
        all.extend_from_slice(args);
        akte(&data, &all)
    };
    let mut archived = Vec::new();
    for (name, text) in [("a.txt", "Brief A"), ("b.txt", "Brief B")] {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        let out = signed(&[
            "--json",
            "archive",
            f.to_str().unwrap(),
            "--class",
            "business-letter",
        ]);
        archived.push(serde_json::from_str::<serde_json::Value>(ok(&out).trim()).unwrap());
        if name == "a.txt" {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("created the checkpoint signing key"),
                "the key is created on first use and said so"
            );
        }
    }
    let anchor = dir.path().join("anchor.json");
    let out = ok(&signed(&["anchor", "--out", anchor.to_str().unwrap()]));
    assert!(out.contains("anchored entry"), "{out}");
    let a: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&anchor).unwrap().trim()).unwrap();
    let seq = a["seq"].as_u64().unwrap();
    assert_eq!(seq, archived[1]["journal_seq"].as_u64().unwrap(), "{a}");
    assert_eq!(a["signature"]["key"].as_str().unwrap().len(), 64, "{a}");
    let out = ok(&signed(&["verify", "--anchor", anchor.to_str().unwrap()]));
    assert!(
        out.contains("1 signed checkpoints and 1 anchors checked"),
        "{out}"
    );
    // Without the key: unsigned anchors are refused.
    assert!(!akte(&data, &["anchor"]).status.success());

    // An export carries the archive's signed checkpoint of its journal segment.
    let zip = dir.path().join("tax.zip");
    ok(&signed(&[
        "export",
        "tax",
        "--from",
        "2000-01-01",
        "--to",
        "2030-12-31",
        "--out",
        zip.to_str().unwrap(),
    ]));
    let out = ok(&akte(&data, &["verify-export", zip.to_str().unwrap()]));
    assert!(
        out.contains(&format!(
            "signed by the archive's key {}",
            a["signature"]["key"].as_str().unwrap()
        )),
        "{out}"
    );
    let docs = ok(&signed(&["docs", "procedure"]));
    assert!(
        docs.contains(a["signature"]["key"].as_str().unwrap()),
        "{docs}"
    );

    // More is archived; then someone with the store's keys cuts the journal back to before
    // the anchored entry, with the records, blobs and checkpoint written since.
    let c = dir.path().join("c.txt");
    std::fs::write(&c, "Brief C").unwrap();
    archived.push(archive_json(&data, &c, &["--class", "business-letter"]));
    cut_journal_back(&data, seq);
    let _ = std::fs::remove_file(data.join(format!("checkpoints/{seq:020}.mpk")));
    for r in &archived[1..] {
        let id = r["id"].as_str().unwrap();
        let sha = r["sha256"].as_str().unwrap();
        std::fs::remove_dir_all(data.join("records").join(id)).unwrap();
        std::fs::remove_file(data.join("blobs/sha256").join(&sha[..2]).join(sha)).unwrap();
    }
    let out = akte(&data, &["verify", "--anchor", anchor.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("BROKEN") && text.contains("cut back") && text.contains("anchor.json"),
        "{text}"
    );
    let plain = akte(&data, &["verify"]);
    assert!(
        plain.status.success(),
        "the store alone agrees with itself after the cut: {}",
        String::from_utf8_lossy(&plain.stdout)
    );
    // Writing on after the cut (each verify journals itself) rewrites the anchored entry.
    let out = akte(&data, &["verify", "--anchor", anchor.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("differs from the checkpoint anchored in"),
        "{text}"
    );

    // An anchor altered after signing.
    let mut forged = a.clone();
    forged["seq"] = serde_json::json!(1);
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let out = akte(
        &data,
        &["verify", "--anchor", forged_path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A checkpoint signed by another key than the trusted one.
    let other = dir.path().join("other.p8");
    ok(&akte(
        &data,
        &["--signing-key", other.to_str().unwrap(), "checkpoint"],
    ));
    let out = signed(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not a trusted checkpoint key"), "{text}");
    let bad_key = akte(&data, &["verify", "--trusted-key", "zz"]);
    assert!(String::from_utf8_lossy(&bad_key.stderr).contains("not an Ed25519 public key"));
}

/// Issue #18, trusted timestamps: with --tsa every checkpoint gets an RFC 3161 token from
/// a time-stamping authority (here `openssl ts` on loopback), stored beside it, carried
/// in anchors and exports, and checked by `verify`, `verify-export` and, independently,
/// `openssl ts -verify`. A journal cut back after a timestamped anchor is named; a token
/// from an untrusted TSA or an altered one is refused.
#[test]
fn checkpoints_are_timestamped_by_a_tsa_and_openssl_accepts_the_token() {
    let tsa = common::tsa::LocalTsa::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("checkpoint.p8");
    let ca = tsa.ca.to_str().unwrap().to_string();
    let stamped = |args: &[&str]| {
        let mut all = vec![
            "--signing-key",
            key.to_str().unwrap(),
            "--tsa",
            &tsa.url,
            "--tsa-ca",
            &ca,
        ];
        all.extend_from_slice(args);
        akte(&data, &all)
    };
    for (name, text) in [("a.txt", "Rechnung A"), ("b.txt", "Rechnung B")] {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        ok(&stamped(&[
            "archive",
            f.to_str().unwrap(),
            "--class",
            "invoice",
        ]));
    }
    let out = ok(&stamped(&["checkpoint"]));
    assert!(out.contains("timestamped by CN=akte test TSA"), "{out}");
    let tokens: Vec<_> = std::fs::read_dir(data.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tst"))
        .collect();
    assert_eq!(tokens.len(), 1, "the token is stored beside its checkpoint");

    // verify checks the stored token: against the TSA's CA, and refuses another CA.
    let out = ok(&stamped(&["verify"]));
    assert!(
        out.contains("1 RFC 3161 timestamps checked against the TSA certificates"),
        "{out}"
    );
    let other = tempfile::tempdir().unwrap();
    common::tsa::make_pki(other.path(), "another root");
    let out = akte(
        &data,
        &[
            "verify",
            "--tsa-ca",
            other.path().join("ca.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("timestamp of checkpoint") && text.contains("not trusted"),
        "{text}"
    );

    // A timestamped anchor; then the journal is cut back to before it.
    let anchor = dir.path().join("anchor.json");
    ok(&stamped(&["anchor", "--out", anchor.to_str().unwrap()]));
    let a: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&anchor).unwrap().trim()).unwrap();
    assert!(
        a["timestamp"].as_str().is_some_and(|t| t.len() > 100),
        "{a}"
    );
    // The procedure documentation names the TSA, the anchoring target and its last anchor.
    let elsewhere = dir.path().join("elsewhere");
    ok(&stamped(&["anchor", "--to", elsewhere.to_str().unwrap()]));
    let docs = ok(&stamped(&[
        "docs",
        "procedure",
        "--anchor-to",
        elsewhere.to_str().unwrap(),
    ]));
    assert!(
        docs.contains(&format!("time-stamping authority `{}`", tsa.url))
            && docs.contains("CN=akte test TSA root")
            && docs.contains(&format!(
                "Anchoring target `{}`: last anchor: entry #",
                elsewhere.display()
            ))
            && docs.contains("timestamped."),
        "{docs}"
    );

    // The tax export carries the signed, timestamped checkpoint; verify-export checks
    // it, and so does openssl with only the export's files and the TSA's CA.
    let zip = dir.path().join("tax.zip");
    ok(&stamped(&[
        "export",
        "tax",
        "--from",
        "2000-01-01",
        "--to",
        "2030-12-31",
        "--out",
        zip.to_str().unwrap(),
    ]));
    let out = ok(&akte(
        &data,
        &["verify-export", zip.to_str().unwrap(), "--tsa-ca", &ca],
    ));
    assert!(
        out.contains("timestamped by CN=akte test TSA") && out.contains("trusted by --tsa-ca"),
        "{out}"
    );
    let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let unpacked = dir.path().join("unpacked");
    z.extract(&unpacked).unwrap();
    let verify_with_openssl = |token: &Path, data: &Path| {
        Command::new("openssl")
            .args(["ts", "-verify", "-token_in", "-in"])
            .arg(token)
            .arg("-data")
            .arg(data)
            .arg("-CAfile")
            .arg(&tsa.ca)
            .output()
            .unwrap()
    };
    let token = unpacked.join("journal/checkpoint.tst");
    let statement = unpacked.join("journal/checkpoint.txt");
    let out = verify_with_openssl(&token, &statement);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verification: OK"),
        "openssl ts -verify: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // openssl, too, refuses the token for other data.
    let altered = dir.path().join("altered.txt");
    let mut text = std::fs::read(&statement).unwrap();
    text[20] ^= 1;
    std::fs::write(&altered, &text).unwrap();
    assert!(!verify_with_openssl(&token, &altered).status.success());

    // An altered stored token is named.
    let mut bytes = std::fs::read(&tokens[0]).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&tokens[0], &bytes).unwrap();
    let out = akte(&data, &["verify", "--tsa-ca", &ca]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("timestamp of checkpoint"), "{text}");
    std::fs::remove_file(&tokens[0]).unwrap();

    // Cut the journal back to before the anchored entry: the anchor, timestamped by the
    // TSA when that head existed, names the cut.
    let seq = a["seq"].as_u64().unwrap();
    cut_journal_back(&data, seq);
    for f in std::fs::read_dir(data.join("checkpoints")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let out = akte(
        &data,
        &[
            "verify",
            "--anchor",
            anchor.to_str().unwrap(),
            "--tsa-ca",
            &ca,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cut back") && text.contains("1 RFC 3161 timestamps checked"),
        "{text}"
    );

    // A TSA that does not answer: the checkpoint is written, the command fails and says
    // why.
    let out = akte(
        &data,
        &[
            "--signing-key",
            key.to_str().unwrap(),
            "--tsa",
            "http://127.0.0.1:9/",
            "--tsa-ca",
            &ca,
            "checkpoint",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TSA http://127.0.0.1:9/"));
    assert!(tsa.answered.load(std::sync::atomic::Ordering::SeqCst) >= 3);
}

/// Issue #18, key rotation: `rotate-signing-key` journals the hand-over signed by the old
/// key; `verify --trusted-key OLD` then trusts the new key's checkpoints. A key nobody
/// handed over to stays untrusted, and a rotation entry not signed by its old key is
/// named.
#[test]
fn a_rotated_signing_key_is_trusted_through_the_old_one_and_a_forged_rotation_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let old = dir.path().join("old.p8");
    let new = dir.path().join("new.p8");
    let f = dir.path().join("a.txt");
    std::fs::write(&f, "Brief").unwrap();
    let with = |key: &Path, args: &[&str]| {
        let mut all = vec!["--signing-key", key.to_str().unwrap()];
        all.extend_from_slice(args);
        akte(&data, &all)
    };
    ok(&with(&old, &["archive", f.to_str().unwrap()]));
    let first: serde_json::Value =
        serde_json::from_str(ok(&with(&old, &["--json", "checkpoint"])).trim()).unwrap();
    let old_key = first["signature"]["key"].as_str().unwrap().to_string();
    assert!(
        !akte(
            &data,
            &["rotate-signing-key", "--new-key", new.to_str().unwrap()]
        )
        .status
        .success(),
        "a rotation needs the current key"
    );
    let out = ok(&with(
        &old,
        &[
            "--json",
            "rotate-signing-key",
            "--new-key",
            new.to_str().unwrap(),
        ],
    ));
    let rotated: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(rotated["old"], old_key.as_str(), "{rotated}");
    let new_key = rotated["new"].as_str().unwrap().to_string();
    let second: serde_json::Value =
        serde_json::from_str(ok(&with(&new, &["--json", "checkpoint"])).trim()).unwrap();
    assert_eq!(second["signature"]["key"], new_key.as_str());
    // The auditor knows only the old key: the new one's checkpoints pass; run with the
    // new key, the old one's checkpoints pass.
    let out = ok(&akte(&data, &["verify", "--trusted-key", &old_key]));
    assert!(out.contains("2 signed checkpoints"), "{out}");
    let out = ok(&with(&new, &["verify"]));
    assert!(out.contains("2 signed checkpoints"), "{out}");

    // A key nobody handed over to is not trusted; a rotation to it signed by itself is
    // named.
    let rogue = dir.path().join("rogue.p8");
    ok(&with(&rogue, &["checkpoint"]));
    let out = akte(&data, &["verify", "--trusted-key", &old_key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not a trusted checkpoint key"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let other = dir.path().join("other.p8");
    ok(&with(
        &rogue,
        &["rotate-signing-key", "--new-key", other.to_str().unwrap()],
    ));
    // Rewrite that rotation's detail to claim the old key handed over (the entry is then
    // re-chained as someone with the store and the code would: journal.append with it).
    let out = akte(&data, &["--json", "journal"]);
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let genuine = entries
        .iter()
        .rev()
        .find(|e| e["action"] == "signing.rotate")
        .unwrap();
    let mut claim: serde_json::Value =
        serde_json::from_str(genuine["detail"].as_str().unwrap()).unwrap();
    claim["old"] = serde_json::json!(old_key);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = akte::store::Store::open(data.to_str().unwrap()).unwrap();
        let journal = akte::audit::journal::Journal::new(
            store,
            std::sync::Arc::new(akte::clock::SystemClock),
        );
        journal
            .append(akte::audit::journal::Draft {
                actor: "operator".into(),
                action: "signing.rotate".into(),
                subjects: vec![],
                payload_digest: None,
                detail: Some(claim.to_string()),
            })
            .await
            .unwrap();
    });
    let out = akte(&data, &["verify", "--trusted-key", &old_key]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a signing key rotation not signed by both keys it names"),
        "{text}"
    );
}

/// The server anchors on its own: with --anchor-to it writes a signed head to another
/// place every --anchor-interval while the journal grows, and at shutdown; `verify
/// --anchor DIR` reads every anchor there. `akte anchor --to` writes to the same layout.
#[test]
fn the_server_anchors_its_journal_elsewhere_and_verify_reads_the_directory() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("checkpoint.p8");
    let elsewhere = dir.path().join("elsewhere");
    let refused = akte(
        &data,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--anchor-to",
            elsewhere.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("needs --signing-key"),
        "an unsigned anchor proves nothing: refused before serving"
    );
    // With a TSA, every anchor the server writes is timestamped.
    let tsa = common::tsa::LocalTsa::start();
    let mut server = Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(&data)
        .arg("--signing-key")
        .arg(&key)
        .args(["--tsa", &tsa.url, "--tsa-ca"])
        .arg(&tsa.ca)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--anchor-interval",
            "1",
            "--anchor-to",
        ])
        .arg(&elsewhere)
        .env_remove("AKTE_STORE")
        .env("AKTE_ADMIN_TOKEN", "akte_test_admin_token_0123456789abcdef")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    // The command line writes beside the server; the server anchors what it finds.
    let f = dir.path().join("brief.txt");
    std::fs::write(&f, "Brief").unwrap();
    archive_json(&data, &f, &["--class", "business-letter"]);
    let anchors = elsewhere.join("anchors");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&anchors).map_or(0, |d| d.count()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no anchor within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    let out = ok(&akte(
        &data,
        &[
            "--signing-key",
            key.to_str().unwrap(),
            "verify",
            "--anchor",
            elsewhere.to_str().unwrap(),
        ],
    ));
    assert!(out.starts_with("OK"), "{out}");
    assert!(out.contains("anchors checked"), "{out}");
    for a in std::fs::read_dir(&anchors).unwrap() {
        let a: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(a.unwrap().path()).unwrap().trim())
                .unwrap();
        assert!(
            a["timestamp"].is_string(),
            "the server's anchors are timestamped: {a}"
        );
    }
    // By hand, to the same place.
    ok(&akte(
        &data,
        &[
            "--signing-key",
            key.to_str().unwrap(),
            "anchor",
            "--to",
            elsewhere.to_str().unwrap(),
        ],
    ));
    let n = std::fs::read_dir(&anchors).unwrap().count();
    assert!(n >= 2, "{n} anchors");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = akte(&data, &["verify", "--anchor", empty.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no anchors"));
}
