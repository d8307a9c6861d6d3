//! Several akte nodes on one bucket: `deploy/local-cluster.sh up` starts moto (Object
//! Lock bucket, separate key bucket) and three `akte serve` processes sharing it. Eight
//! writers spread over the nodes; then every record must be readable on every node at
//! once, searchable on every node within the stated staleness, the journal gap-free and
//! `verify` clean. A token created on one node works on the others, and one revoked
//! there stops working everywhere.
//!
//! `AKTE_CLUSTER_RECORDS` sets the number of records (default 600, some two minutes on
//! moto; the full run is `AKTE_CLUSTER_RECORDS=3000 cargo test --test cluster`).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::server::{bearer, client};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "akte_cluster_admin_token_0123456789abcdef0123456789";
/// Search staleness the nodes promise: the index interval (500 ms) plus a commit.
const STALENESS: Duration = Duration::from_secs(5);

struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<String>,
    env: Vec<(String, String)>,
}

impl Cluster {
    fn up(n: usize) -> Option<Cluster> {
        let venv = std::env::var_os("AKTE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/akte-venv")
            });
        if !venv.join("bin/moto_server").exists() {
            eprintln!(
                "SKIPPED: moto is not installed (deploy/local-cluster.sh install); .ci/run installs it"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("deploy/local-cluster.sh"))
            .args(["up", dir.path().to_str().unwrap(), &n.to_string()])
            .env("AKTE_BIN", env!("CARGO_BIN_EXE_akte"))
            .env("AKTE_ADMIN_TOKEN", ADMIN)
            .env("AKTE_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let nodes = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>();
        assert_eq!(nodes.len(), n);
        let env = std::fs::read_to_string(dir.path().join("s3.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Cluster { dir, nodes, env })
    }

    /// The CLI against the cluster's store.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_akte"))
            .arg("--data")
            .arg(self.dir.path().join("cli"))
            .args([
                "--store",
                "s3://akte-lock/akte",
                "--key-store",
                "s3://akte-keys/akte",
            ])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("deploy/local-cluster.sh"))
            .args(["down", self.dir.path().to_str().unwrap()])
            .output();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn call(
    base: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client()
        .request(method, format!("{base}{path}"))
        .header("authorization", bearer(token));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_eight_writers_one_bucket() {
    let Some(c) = Cluster::up(3) else {
        return;
    };
    let total: usize = std::env::var("AKTE_CLUSTER_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let word = format!("clusterprobe{}", std::process::id());

    // A token made on node 1 works on node 3.
    let (st, tok) = call(
        &c.nodes[0],
        Method::POST,
        "/v1/tokens",
        ADMIN,
        Some(json!({"role": "archivist", "name": "writer", "person": "writer"})),
    )
    .await;
    assert_eq!(st, 201, "{tok}");
    let writer = tok["token"].as_str().unwrap().to_string();
    let (st, _) = call(&c.nodes[2], Method::GET, "/v1/parties", &writer, None).await;
    assert_eq!(st, 200, "a token created on node 1 is known on node 3");

    // Eight writers, each spreading its records over the three nodes.
    let started = Instant::now();
    let writers = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let nodes = c.nodes.clone();
        let token = writer.clone();
        let word = word.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let http = client();
            for i in (w..total).step_by(writers) {
                let node = &nodes[i % nodes.len()];
                let body = format!("Lieferschein {i} {word} Position {i}");
                let r = http
                    .post(format!(
                        "{node}/v1/records?class=delivery-note&title=Lieferschein%20{i}"
                    ))
                    .header("authorization", bearer(&token))
                    .header("content-type", "text/plain")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                assert_eq!(status, 201, "{v}");
                ids.push(v["id"].as_str().unwrap().to_string());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let wrote = started.elapsed();
    assert_eq!(ids.len(), total);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), total);
    eprintln!(
        "cluster: {total} records by {writers} writers over 3 nodes in {:.1} s ({:.0}/s)",
        wrote.as_secs_f64(),
        total as f64 / wrote.as_secs_f64()
    );

    // Every record readable on every node at once (reads follow the journal on a miss).
    for (i, id) in ids.iter().enumerate().step_by(7) {
        for node in &c.nodes {
            let (st, v) = call(
                node,
                Method::GET,
                &format!("/v1/records/{id}"),
                &writer,
                None,
            )
            .await;
            assert_eq!(st, 200, "record {i} on {node}: {v}");
        }
    }

    // Searchable on every node within the stated staleness.
    let searched = Instant::now();
    let mut lag = Duration::ZERO;
    for node in &c.nodes {
        loop {
            let (st, v) = call(
                node,
                Method::GET,
                &format!("/v1/search?q={word}&per_page=1"),
                &writer,
                None,
            )
            .await;
            assert_eq!(st, 200, "{v}");
            if v["total"].as_u64() == Some(total as u64) {
                break;
            }
            assert!(
                searched.elapsed() < STALENESS + Duration::from_secs(60),
                "{node}: {} of {total} searchable after {:?}",
                v["total"],
                searched.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lag = lag.max(searched.elapsed());
    }
    eprintln!(
        "cluster: all {total} searchable on every node {:.2} s after the last write",
        lag.as_secs_f64()
    );

    // The journal is gap-free: every sequence number once, in order.
    let mut since = 0u64;
    let mut seqs = Vec::new();
    loop {
        let (st, v) = call(
            &c.nodes[1],
            Method::GET,
            &format!("/v1/journal?since={since}&limit=10000"),
            ADMIN,
            None,
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let entries = v["entries"].as_array().unwrap().clone();
        if entries.is_empty() {
            break;
        }
        for e in &entries {
            seqs.push(e["seq"].as_u64().unwrap());
        }
        since = *seqs.last().unwrap();
    }
    assert!(seqs.len() >= total, "{} entries", seqs.len());
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, i as u64 + 1, "journal gap or repeat at {i}");
    }

    // A token revoked on node 2 stops working on node 1 within a tick.
    let (st, _) = call(
        &c.nodes[1],
        Method::DELETE,
        &format!("/v1/tokens/{}", tok["id"].as_str().unwrap()),
        ADMIN,
        None,
    )
    .await;
    assert!(st == 200 || st == 204, "{st}");
    let revoked = Instant::now();
    loop {
        let (st, _) = call(&c.nodes[0], Method::GET, "/v1/parties", &writer, None).await;
        if st == 401 {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(10),
            "still accepted after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "cluster: a revocation on node 2 took effect on node 1 after {:.2} s",
        revoked.elapsed().as_secs_f64()
    );

    // Erasure on one node: no node decrypts the party afterwards.
    let canary = format!("kanarienvogel-{word}@example.com");
    let (st, p) = call(
        &c.nodes[0],
        Method::POST,
        "/v1/parties",
        ADMIN,
        Some(json!({"kind": "person", "name": "Erika Mustermann", "emails": [canary]})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let person = p["id"].as_str().unwrap().to_string();
    for node in &c.nodes {
        let (_, v) = call(
            node,
            Method::GET,
            &format!("/v1/parties/{person}"),
            ADMIN,
            None,
        )
        .await;
        assert!(
            v.to_string().contains(&canary),
            "{node} reads the party before: {v}"
        );
    }
    let (st, v) = call(
        &c.nodes[1],
        Method::POST,
        &format!("/v1/parties/{person}/erase"),
        ADMIN,
        Some(json!({"reason": "Art. 17 DSGVO"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    // Reads of the party decrypt nothing from the moment the erasure is journaled (each
    // key read checks the journal's head)...
    for node in &c.nodes {
        for path in [
            format!("/v1/parties/{person}"),
            format!("/v1/parties/{person}/revisions"),
        ] {
            let (_, v) = call(node, Method::GET, &path, ADMIN, None).await;
            assert!(!v.to_string().contains(&canary), "{node}{path}: {v}");
        }
    }
    // ...and the catalog's lists and files follow within its tick (1 s).
    let erased = Instant::now();
    for node in &c.nodes {
        for path in [
            format!("/v1/parties/{person}/file"),
            "/v1/parties?name=Erika".to_string(),
        ] {
            loop {
                let (_, v) = call(node, Method::GET, &path, ADMIN, None).await;
                if !v.to_string().contains(&canary) {
                    break;
                }
                assert!(
                    erased.elapsed() < Duration::from_secs(3),
                    "{node}{path}: {v}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    eprintln!(
        "cluster: erasure on node 2: no node decrypted the party afterwards; catalog views clean on all nodes after {:.2} s",
        erased.elapsed().as_secs_f64()
    );

    // Kill a node in the middle of an import: another node finishes it.
    let n_mails = 1200;
    let mut mbox = String::new();
    for i in 0..n_mails {
        mbox.push_str(&format!(
            "From a@example.com Mon Jan  1 00:00:00 2024\nFrom: a@example.com\n\
             Message-ID: <{i}-{word}@example.com>\nSubject: Nr. {i}\n\nimportprobe{word} {i}\n\n"
        ));
    }
    let r = client()
        .post(format!("{}/v1/imports", c.nodes[2]))
        .header("authorization", bearer(ADMIN))
        .header("content-type", "application/mbox")
        .body(mbox)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let job = job["id"].as_str().unwrap().to_string();
    // Kill it once part of the import is committed (searchable there), not all of it.
    loop {
        let (_, v) = call(
            &c.nodes[2],
            Method::GET,
            &format!("/v1/imports/{job}"),
            ADMIN,
            None,
        )
        .await;
        assert_ne!(
            v["state"], "done",
            "the import finished before the kill: {v}"
        );
        let (_, found) = call(
            &c.nodes[2],
            Method::GET,
            &format!("/v1/search?q=importprobe{word}&per_page=1"),
            ADMIN,
            None,
        )
        .await;
        if found["total"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = std::fs::read_to_string(c.dir.path().join("node3.pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let died = Instant::now();
    let done = loop {
        let (st, v) = call(
            &c.nodes[0],
            Method::GET,
            &format!("/v1/imports/{job}"),
            ADMIN,
            None,
        )
        .await;
        if st == 200 && (v["state"] == "done" || v["state"] == "error") {
            break v;
        }
        if died.elapsed() > Duration::from_secs(300) {
            for n in ["node1.log", "node2.log"] {
                let log = std::fs::read_to_string(c.dir.path().join(n)).unwrap_or_default();
                eprintln!(
                    "--- {n}\n{}",
                    log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
                );
            }
            panic!("the import was not taken over: {v}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["state"], "done", "{done}");
    let s = &done["summary"];
    assert_eq!(
        s["archived"].as_u64().unwrap() + s["duplicates"].as_u64().unwrap(),
        n_mails as u64,
        "every message archived once, by one node or the other: {done}"
    );
    eprintln!(
        "cluster: node 3 killed mid-import; the import finished on another node {:.1} s later ({} archived there, {} already archived before the kill)",
        died.elapsed().as_secs_f64(),
        s["archived"],
        s["duplicates"]
    );
    for node in &c.nodes[..2] {
        let t0 = Instant::now();
        loop {
            let (_, v) = call(
                node,
                Method::GET,
                &format!("/v1/search?q=importprobe{word}&per_page=1"),
                ADMIN,
                None,
            )
            .await;
            if v["total"].as_u64() == Some(n_mails as u64) {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "{node}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // verify, by the CLI against the bucket.
    let o = c.cli(&["verify"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("cluster: {}", String::from_utf8_lossy(&o.stdout).trim());
}
