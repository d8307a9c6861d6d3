//! The deployment files that cannot run here (no container engine, no cluster) are at
//! least parsed, and they speak akte's language: every `AKTE_*` variable they set is one
//! `akte serve --help` names, the compose topology is the one `local-cluster.sh` runs,
//! and the Kubernetes nodes are probed on `/healthz` and `/readyz`.
//! `deploy/local-cluster.sh` itself runs in `tests/cluster.rs` and `tests/backends.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn deploy(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml_docs(text: &str) -> Vec<serde_norway::Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| serde_norway::Value::deserialize(d).unwrap())
        .collect()
}

fn serve_help() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every `AKTE_…` name in `text`.
fn akte_vars(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("AKTE_") {
        let start = i + at;
        let mut end = start + 5;
        while end < b.len()
            && (b[end].is_ascii_uppercase() || b[end].is_ascii_digit() || b[end] == b'_')
        {
            end += 1;
        }
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn every_akte_variable_in_deploy_files_is_one_akte_serve_knows() {
    let help = serve_help();
    let mut checked = 0;
    for f in [
        "Dockerfile",
        "compose.yaml",
        "k8s/akte.yaml",
        "local-cluster.sh",
        "akte.service",
        "README.md",
    ] {
        for v in akte_vars(&deploy(f)) {
            // Test-only knobs of the scripts themselves.
            if matches!(v.as_str(), "AKTE_BIN" | "AKTE_VENV" | "AKTE_S3_SERVER") {
                continue;
            }
            assert!(
                help.contains(&format!("{v}=")) || help.contains(&format!("{v} ")),
                "{f} uses {v}, which `akte serve --help` does not name"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}

#[test]
fn compose_file_parses_and_runs_three_nodes_an_s3_server_and_prometheus() {
    let docs = yaml_docs(&deploy("compose.yaml"));
    assert_eq!(docs.len(), 1);
    let services = docs[0]["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    for want in ["s3", "buckets", "akte1", "akte2", "akte3", "prometheus"] {
        assert!(names.contains(want), "{names:?}");
    }
    // The nodes share one store with Object Lock and a separate key store (the anchor
    // `x-akte` is merged into each).
    let anchor = &docs[0]["x-akte"]["environment"];
    assert_eq!(anchor["AKTE_OBJECT_LOCK"], "compliance");
    assert!(anchor["AKTE_STORE"].as_str().unwrap().starts_with("s3://"));
    assert_ne!(
        anchor["AKTE_STORE"].as_str().unwrap().split('/').nth(2),
        anchor["AKTE_KEY_STORE"].as_str().unwrap().split('/').nth(2),
        "keys in another bucket"
    );
    let prom = yaml_docs(&deploy("prometheus.yml"));
    let job = &prom[0]["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    assert_eq!(
        job["static_configs"][0]["targets"]
            .as_sequence()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn kubernetes_manifests_parse_with_probes_secret_and_index_volume() {
    let docs = yaml_docs(&deploy("k8s/akte.yaml"));
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for want in [
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    ] {
        assert!(kinds.contains(&want), "{kinds:?}");
    }
    let dep = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(dep["spec"]["replicas"].as_u64().unwrap() >= 2);
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert!(
        cm["data"]["AKTE_STORE"]
            .as_str()
            .unwrap()
            .starts_with("s3://")
    );
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    assert!(secret["stringData"]["AWS_SECRET_ACCESS_KEY"].is_string());
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_optional_ocr() {
    let d = deploy("Dockerfile");
    assert_eq!(d.lines().filter(|l| l.starts_with("FROM ")).count(), 2);
    assert!(d.contains("ARG WITH_OCR=false") && d.contains("tesseract-ocr-deu"));
    let user = d.lines().rfind(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains(" 0") && !user.contains("root"), "{user}");
    // The binary it builds is this crate's, with the toolchain Cargo.toml pins.
    let cargo =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .unwrap();
    let rust = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        d.contains(&format!("FROM rust:{rust}")),
        "builder is rust:{rust}"
    );
}

#[test]
fn local_cluster_script_is_valid_shell() {
    let out = std::process::Command::new("bash")
        .args(["-n"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/local-cluster.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
