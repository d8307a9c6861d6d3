//! The layers of ARCHITECTURE.md, held: every top-level module of `src/` belongs to one
//! layer, imports only from its own layer or those below, and the modules import each
//! other without a cycle. Also: `anyhow` only at the edges (`cli`, `main.rs`).
//!
//! Read from the source (`crate::x` paths in non-test code, comments skipped), so a new
//! module or a new upward import fails here until ARCHITECTURE.md and this table agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. A module may use modules of its own layer (without a cycle) and of the
/// layers below.
const LAYERS: &[(&str, &[&str])] = &[
    ("leaves", &["error", "clock", "ids"]),
    ("store", &["store"]),
    ("audit", &["audit"]),
    (
        "domain",
        &[
            "retention",
            "record",
            "archive",
            "party",
            "case",
            "access",
            "extract",
            "catalog",
            "disposal",
        ],
    ),
    (
        "application",
        &["service", "ingest", "export", "search", "verify", "worm"],
    ),
    ("edges", &["api", "cli", "fuzzing", "smtp", "web"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without comments and without its test modules
/// (`#[cfg(test)] mod … { … }`, skipped by brace depth).
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    // Brace depth inside a skipped test module.
    let mut skipping: Option<i64> = None;
    while let Some(l) = lines.next() {
        let t = l.trim_start();
        if let Some(depth) = skipping.as_mut() {
            let l = without_trailing_comment(l);
            *depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
            if *depth <= 0 {
                skipping = None;
            }
            continue;
        }
        if t.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            let header = lines.next().unwrap_or_default();
            let depth = header.matches('{').count() as i64 - header.matches('}').count() as i64;
            if depth > 0 {
                skipping = Some(depth);
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(without_trailing_comment(l));
        out.push('\n');
    }
    out
}

/// `line` up to a `//` that is not inside a string literal.
fn without_trailing_comment(line: &str) -> &str {
    let b = line.as_bytes();
    let (mut quoted, mut i) = (false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'/' if !quoted && b.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

/// The top-level modules `code` names as `crate::x` (and `crate::{x, y}`).
fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Module → (module it uses → files that use it).
fn graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        let entry = g.entry(module.clone()).or_default();
        for used in uses(&code(&text)) {
            if used != module {
                entry.entry(used).or_default().insert(rel.clone());
            }
        }
    }
    g
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[test]
fn every_module_imports_only_from_its_layer_or_below() {
    let g = graph();
    let mut wrong = Vec::new();
    for (module, used) in &g {
        let Some(own) = layer_of(module) else {
            wrong.push(format!(
                "module `{module}` is in no layer: place it in tests/layers.rs and \
                 ARCHITECTURE.md"
            ));
            continue;
        };
        for (target, files) in used {
            match layer_of(target) {
                Some(l) if l <= own => {}
                Some(l) => wrong.push(format!(
                    "`{module}` ({}) uses `{target}` ({}), a layer above: {files:?}",
                    LAYERS[own].0, LAYERS[l].0
                )),
                None => {} // not a module of ours (e.g. `crate::Error` re-exports)
            }
        }
    }
    let mut listing = String::new();
    for (m, used) in &g {
        let names: Vec<&str> = used.keys().map(String::as_str).collect();
        listing.push_str(&format!("  {m} -> {}\n", names.join(" ")));
    }
    eprintln!("import graph (non-test code):\n{listing}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let g = graph();
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for next in g
            .get(m)
            .map(|u| u.keys().cloned().collect::<Vec<String>>())
            .unwrap_or_default()
        {
            if !g.contains_key(&next) {
                continue;
            }
            match state.get(&next) {
                Some(1) => {
                    let start = path.iter().position(|p| *p == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(&next, g, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if state.contains_key(m) {
            continue;
        }
        if let Some(cycle) = visit(m, &g, &mut state, &mut Vec::new()) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} -> {} ({:?})", w[0], w[1], g[&w[0]][&w[1]]))
                .collect();
            panic!("import cycle:\n  {}", steps.join("\n  "));
        }
    }
}

#[test]
fn anyhow_only_at_the_edges() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("cli/") || rel == "main.rs" {
            continue;
        }
        if code(&std::fs::read_to_string(&f).unwrap()).contains("anyhow") {
            found.push(rel);
        }
    }
    assert!(
        found.is_empty(),
        "anyhow outside cli/ and main.rs: {found:?}"
    );
}

#[test]
fn the_checker_sees_what_it_must() {
    // The parser itself: grouped imports, comments and test modules.
    let text = "use crate::{store, audit::journal};\n// crate::api in a comment\n\
                fn f() { crate::ids::validate_id(\"x\"); } // crate::cli\n\
                #[cfg(test)]\nmod tests {\n    fn g() { use crate::api; }\n}\n\
                fn after() { crate::store::x(); }\n";
    let used = uses(&code(text));
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec!["audit", "ids", "store"]
    );
    assert_eq!(layer_of("store"), Some(1));
    assert_eq!(layer_of("nosuch"), None);
}
