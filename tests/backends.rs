//! One conformance suite — archive, amend, import, hold, dispose, erase, verify, export —
//! run against every backend: `memory://`, a local directory, moto (an S3 server with
//! Object Lock, versioning, conditional PUT) and s3s-fs (an S3 server that checks
//! signatures and checksums). The S3 servers are started by `deploy/local-cluster.sh`
//! (installed by `deploy/local-cluster.sh install`, which `.ci/run` calls); where one is
//! not installed, its test says so and passes without running.
//!
//! On moto's Object Lock bucket it also shows what only S3 can: a DELETE bypassing akte
//! is refused, the objects' retention dates are the records' `retain_until`, a legal
//! hold shows on the objects, a disposal before the bucket's lock ends is refused with
//! nothing half-done and after it removes every version, and a party's key is destroyed
//! in the separate key store while the documents stay locked.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::server::*;
use reqwest::Method;
use serde_json::{Value, json};

/// An S3 server started by `deploy/local-cluster.sh s3`, stopped on drop.
struct S3Server {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl S3Server {
    /// Starts `server` (moto or s3s-fs), or says why it cannot and returns `None`.
    fn start(server: &str) -> Option<S3Server> {
        let installed = match server {
            "moto" => venv().join("bin/moto_server").exists(),
            _ => Command::new("s3s-fs").arg("--help").output().is_ok(),
        };
        if !installed {
            eprintln!(
                "SKIPPED: {server} is not installed (deploy/local-cluster.sh install{}); \
                 .ci/run installs it",
                if server == "s3s-fs" { " --s3s-fs" } else { "" }
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("deploy/local-cluster.sh"))
            .args(["s3", dir.path().to_str().unwrap(), server])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "starting {server}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.path().join("s3.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(S3Server { dir, env })
    }

    fn endpoint(&self) -> String {
        self.var("AKTE_S3_ENDPOINT")
    }

    fn var(&self, k: &str) -> String {
        self.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("deploy/local-cluster.sh"))
            .args(["down", self.dir.path().to_str().unwrap()])
            .output();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    std::env::var_os("AKTE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/akte-venv")
        })
}

/// A backend to run the suite on.
struct Backend {
    name: &'static str,
    /// Global arguments: `--store`, `--key-store`.
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The moto server, when the store is its Object Lock bucket.
    lock: Option<String>,
    /// Whether the store outlives the server process (for the export by the CLI).
    persistent: bool,
}

async fn call(
    s: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client()
        .request(method, s.url(path))
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

async fn upload(s: &Server, body: &[u8], query: &str) -> String {
    let r = client()
        .post(s.url(&format!("/v1/records?{query}")))
        .header("authorization", bearer(ADMIN))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn poll(s: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let (_, v) = call(s, Method::GET, path, ADMIN, None).await;
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} did not finish");
}

fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A request to moto bypassing akte: moto wants an Authorization header but does not
/// check its signature.
fn raw(method: Method, url: String) -> reqwest::RequestBuilder {
    client().request(method, url).header(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=0",
    )
}

/// Direct S3 calls to moto, bypassing akte (moto does not check signatures).
struct Moto {
    endpoint: String,
    bucket: String,
    prefix: String,
}

impl Moto {
    fn url(&self, key: &str, query: &str) -> String {
        format!(
            "{}/{}/{}/{key}{query}",
            self.endpoint, self.bucket, self.prefix
        )
    }

    async fn head(&self, key: &str) -> reqwest::header::HeaderMap {
        let r = raw(Method::HEAD, self.url(key, "")).send().await.unwrap();
        assert!(r.status().is_success(), "HEAD {key}: {}", r.status());
        r.headers().clone()
    }

    async fn retain_until(&self, key: &str) -> String {
        let h = self.head(key).await;
        h.get("x-amz-object-lock-retain-until-date")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    async fn legal_hold(&self, key: &str) -> bool {
        let h = self.head(key).await;
        h.get("x-amz-object-lock-legal-hold")
            .is_some_and(|v| v == "ON")
    }

    async fn versions(&self, key: &str) -> Vec<(String, bool)> {
        let full = format!("{}/{key}", self.prefix);
        let url = format!("{}/{}?versions&prefix={full}", self.endpoint, self.bucket);
        let text = raw(Method::GET, url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut out = Vec::new();
        for (tag, marker) in [("<Version>", false), ("<DeleteMarker>", true)] {
            for block in text.split(tag).skip(1) {
                let k = between(block, "<Key>", "</Key>");
                if k == full {
                    out.push((between(block, "<VersionId>", "</VersionId>"), marker));
                }
            }
        }
        out
    }

    /// Moto lets a compliance retention be shortened (real S3 does not): the suite
    /// uses that to stand in for the day passing.
    async fn expire(&self, key: &str) {
        let body = "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>GOVERNANCE</Mode>\
                    <RetainUntilDate>2000-01-01T00:00:00Z</RetainUntilDate></Retention>";
        let r = raw(Method::PUT, self.url(key, "?retention"))
            .header("x-amz-bypass-governance-retention", "true")
            .header("content-md5", "x")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

fn between(s: &str, a: &str, b: &str) -> String {
    s.split(a)
        .nth(1)
        .and_then(|r| r.split(b).next())
        .unwrap_or_default()
        .to_string()
}

fn blob_key(sha: &str) -> String {
    format!("blobs/sha256/{}/{sha}", &sha[..2])
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn cli(data: &Path, b: &Backend, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(data)
        .args(&b.args)
        .args(args)
        .envs(b.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("AKTE_STORE")
        .output()
        .unwrap()
}

/// The suite. Every step checks its result through the API (and, on the Object Lock
/// bucket, on the objects themselves).
async fn suite(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut extra: Vec<&str> = vec!["--rate", "10000"];
    extra.extend(b.args.iter().map(String::as_str));
    let env: Vec<(&str, &str)> = b
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let s = Server::start_with_env(&data, &extra, &env);
    let moto = b.lock.as_ref().map(|endpoint| Moto {
        endpoint: endpoint.clone(),
        bucket: "akte-lock".into(),
        prefix: b.name.to_string(),
    });

    // Parties: an organisation with records, a person who will be erased.
    let (st, org) = call(
        &s,
        Method::POST,
        "/v1/parties",
        ADMIN,
        Some(json!({"kind": "organisation", "name": "Müller GmbH"})),
    )
    .await;
    assert_eq!(st, 201, "{org}");
    let org = org["id"].as_str().unwrap().to_string();
    let canary = format!("kanarienvogel-{}@example.com", rand_suffix());
    let (st, person) = call(
        &s,
        Method::POST,
        "/v1/parties",
        ADMIN,
        Some(json!({"kind": "person", "name": "Erika Mustermann", "emails": [canary]})),
    )
    .await;
    assert_eq!(st, 201, "{person}");
    let person = person["id"].as_str().unwrap().to_string();

    // Archive: a letter of 2010 (retention over), a contract of this year (retained).
    let old_body = format!("Brief 2010 {}", rand_suffix());
    let old = upload(
        &s,
        old_body.as_bytes(),
        &format!("class=business-letter&date=2010-03-01&party={org}&role=recipient"),
    )
    .await;
    let young_body = format!("Vertrag {}", rand_suffix());
    let young = upload(
        &s,
        young_body.as_bytes(),
        &format!("class=contract&party={org}&role=contractor"),
    )
    .await;
    let (st, rec) = call(
        &s,
        Method::GET,
        &format!("/v1/records/{young}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let retain_until = rec["retention"]["retain_until"]
        .as_str()
        .unwrap()
        .to_string();

    // Amend.
    let (st, v) = call(
        &s,
        Method::POST,
        &format!("/v1/records/{young}/revisions"),
        ADMIN,
        Some(json!({"title": "Rahmenvertrag Müller"})),
    )
    .await;
    assert!(st == 200 || st == 201, "{v}");
    assert_eq!(v["rev"], 2, "{v}");

    // Import: a zip of three documents, one group commit.
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                format!("rechnung-{i}.txt"),
                format!("Rechnung {i} {}", rand_suffix()).into_bytes(),
            )
        })
        .collect();
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let r = client()
        .post(s.url("/v1/imports"))
        .header("authorization", bearer(ADMIN))
        .header("content-type", "application/zip")
        .body(zip(&entries))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let job = poll(
        &s,
        &format!("/v1/imports/{}", job["id"].as_str().unwrap()),
        |v| v["state"] == "done" || v["state"] == "error",
    )
    .await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["summary"]["archived"], 3, "{job}");

    // Content reads back byte-exact.
    let got = client()
        .get(s.url(&format!("/v1/records/{young}/content")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), young_body.as_bytes());

    if let Some(m) = &moto {
        // Retention follows the journal (within the lock interval).
        let young_blob = blob_key(&sha256(young_body.as_bytes()));
        let want = format!("{retain_until}T23:59:59");
        let mut got = String::new();
        for _ in 0..100 {
            got = m.retain_until(&young_blob).await;
            if got.starts_with(&want) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            got.starts_with(&want),
            "blob locked until {got}, record until {retain_until}"
        );
        for rev in [1, 2] {
            let key = format!("records/{young}/{rev:08}.mpk");
            assert!(m.retain_until(&key).await.starts_with(&want), "{key}");
        }
        assert_eq!(
            m.head(&young_blob)
                .await
                .get("x-amz-object-lock-mode")
                .unwrap(),
            "COMPLIANCE"
        );
        // A DELETE of a version, bypassing akte, is refused by the server.
        let versions = m.versions(&young_blob).await;
        assert_eq!(versions.len(), 1, "{versions:?}");
        let r = raw(
            Method::DELETE,
            m.url(&young_blob, &format!("?versionId={}", versions[0].0)),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 403, "S3 refuses to delete a locked version");
        // A plain DELETE only hides it behind a delete marker; verify says so.
        let r = raw(Method::DELETE, m.url(&young_blob, ""))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let (_, job) = call(&s, Method::POST, "/v1/verify", ADMIN, None).await;
        let v = poll(
            &s,
            &format!("/v1/verify/{}", job["id"].as_str().unwrap()),
            |v| v["state"] != "running",
        )
        .await;
        let problems = v["report"]["problems"].to_string();
        assert!(problems.contains("hidden by a delete marker"), "{v}");
        // Removing the marker restores it.
        let marker = m
            .versions(&young_blob)
            .await
            .into_iter()
            .find(|(_, dm)| *dm)
            .unwrap();
        let r = raw(
            Method::DELETE,
            m.url(&young_blob, &format!("?versionId={}", marker.0)),
        )
        .send()
        .await
        .unwrap();
        assert!(r.status().is_success());
    }

    // Hold: placed on the contract (and, on S3, on its objects), then released.
    let (st, hold) = call(
        &s,
        Method::POST,
        "/v1/holds",
        ADMIN,
        Some(json!({"name": "Prüfung 2026", "reason": "Betriebsprüfung",
                    "scope": {"type": "records", "ids": [young]}})),
    )
    .await;
    assert_eq!(st, 201, "{hold}");
    let hold = hold["id"].as_str().unwrap().to_string();
    if let Some(m) = &moto {
        let key = blob_key(&sha256(young_body.as_bytes()));
        let mut on = false;
        for _ in 0..100 {
            on = m.legal_hold(&key).await;
            if on {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(on, "the legal hold shows on the blob");
        assert!(m.legal_hold(&format!("records/{young}/00000001.mpk")).await);
    }
    let (st, v) = call(
        &s,
        Method::POST,
        &format!("/v1/holds/{hold}/release"),
        ADMIN,
        Some(json!({"reason": "Prüfung abgeschlossen"})),
    )
    .await;
    assert!(st == 200 || st == 201, "{v}");
    if let Some(m) = &moto {
        let key = blob_key(&sha256(young_body.as_bytes()));
        let mut on = true;
        for _ in 0..100 {
            on = m.legal_hold(&key).await;
            if !on {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!on, "the release lifts the S3 legal hold");
    }

    // Dispose the 2010 letter: four eyes (an archivist approves).
    let (st, bob) = call(
        &s,
        Method::POST,
        "/v1/tokens",
        ADMIN,
        Some(json!({"role": "archivist", "name": "bob", "person": "bob"})),
    )
    .await;
    assert_eq!(st, 201, "{bob}");
    let bob = bob["token"].as_str().unwrap().to_string();
    let (st, req) = call(
        &s,
        Method::POST,
        "/v1/disposals",
        ADMIN,
        Some(json!({"records": [old], "reason": "Frist abgelaufen"})),
    )
    .await;
    assert_eq!(st, 201, "{req}");
    let req = req["id"].as_str().unwrap().to_string();
    let old_blob = blob_key(&sha256(old_body.as_bytes()));
    if let Some(m) = &moto {
        // The record's retention ended in 2016, but the bucket locked its objects from
        // their first byte for a day: S3 would refuse, so akte refuses first, whole.
        let (st, _) = call(
            &s,
            Method::POST,
            &format!("/v1/disposals/{req}/approve"),
            &bob,
            None,
        )
        .await;
        assert_eq!(st, 202);
        let v = poll(&s, &format!("/v1/disposals/{req}"), |v| {
            v["execution"]["running"] == false
        })
        .await;
        let error = v["execution"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("Object Lock"), "{v}");
        assert_eq!(v["execution"]["records_done"], 0, "nothing half-done: {v}");
        assert_eq!(m.versions(&old_blob).await.len(), 1);
        let (st, r) = call(&s, Method::GET, &format!("/v1/records/{old}"), ADMIN, None).await;
        assert_eq!(st, 200);
        assert!(r["tombstone"].is_null(), "{r}");
        // The day passes (moto lets the test shorten the lock).
        m.expire(&old_blob).await;
    }
    let (st, _) = call(
        &s,
        Method::POST,
        &format!("/v1/disposals/{req}/approve"),
        &bob,
        None,
    )
    .await;
    assert!(st == 202 || st == 200, "{st}");
    let v = poll(&s, &format!("/v1/disposals/{req}"), |v| {
        v["state"] == "executed"
    })
    .await;
    assert_eq!(v["state"], "executed", "{v}");
    let r = client()
        .get(s.url(&format!("/v1/records/{old}/content")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    if let Some(m) = &moto {
        assert!(
            m.versions(&old_blob).await.is_empty(),
            "every version is gone"
        );
    }

    // Erase the person: the key goes from the key store, the documents stay.
    if let Some(m) = &moto {
        let keys_url = format!(
            "{}/akte-keys?versions&prefix={}/keys/{person}",
            m.endpoint, b.name
        );
        let text = raw(Method::GET, keys_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("<Version>"),
            "the key lives in the key store: {text}"
        );
    }
    let (st, v) = call(
        &s,
        Method::POST,
        &format!("/v1/parties/{person}/erase"),
        ADMIN,
        Some(json!({"reason": "Art. 17 DSGVO"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, p) = call(
        &s,
        Method::GET,
        &format!("/v1/parties/{person}"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(!p.to_string().contains(&canary), "{p}");
    assert_eq!(p["erased"], true, "{p}");

    // Verify: the whole store is intact.
    let (st, job) = call(&s, Method::POST, "/v1/verify", ADMIN, None).await;
    assert_eq!(st, 202);
    let v = poll(
        &s,
        &format!("/v1/verify/{}", job["id"].as_str().unwrap()),
        |v| v["state"] != "running",
    )
    .await;
    assert_eq!(v["state"], "passed", "{v}");
    assert_eq!(v["report"]["problems"], json!([]), "{v}");
    assert!(v["report"]["records"].as_u64().unwrap() >= 5, "{v}");
    drop(s);

    // Export the organisation's file with the CLI, then check it offline.
    if b.persistent {
        let out_file = dir.path().join("akte.zip");
        let o = cli(
            &data,
            &b,
            &["export", "party", &org, "--out", out_file.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = cli(&data, &b, &["verify-export", out_file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        let o = cli(&data, &b, &["verify"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    } else {
        eprintln!(
            "{}: export is checked on the persistent backends (a memory store ends with its server)",
            b.name
        );
    }
    if let Some(m) = &moto {
        // The person's key is gone, every version of it; the documents stay locked.
        let keys_url = format!(
            "{}/akte-keys?versions&prefix={}/keys/{person}",
            m.endpoint, b.name
        );
        let text = raw(Method::GET, keys_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !text.contains("<Version>") && !text.contains("<DeleteMarker>"),
            "{text}"
        );
        let young_blob = blob_key(&sha256(young_body.as_bytes()));
        assert!(m.retain_until(&young_blob).await.starts_with(&retain_until));
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

#[tokio::test]
async fn suite_on_memory() {
    suite(Backend {
        name: "memory",
        args: vec!["--store".into(), "memory://".into()],
        env: vec![],
        lock: None,
        persistent: false,
    })
    .await;
}

#[tokio::test]
async fn suite_on_local_disk() {
    suite(Backend {
        name: "local",
        args: vec![],
        env: vec![],
        lock: None,
        persistent: true,
    })
    .await;
}

#[tokio::test]
async fn suite_on_moto_with_object_lock() {
    let Some(s3) = S3Server::start("moto") else {
        return;
    };
    let name = "lock";
    suite(Backend {
        name,
        args: vec![
            "--store".into(),
            format!("s3://akte-lock/{name}"),
            "--key-store".into(),
            format!("s3://akte-keys/{name}"),
            "--object-lock".into(),
            "compliance".into(),
        ],
        env: s3.env.clone(),
        lock: Some(s3.endpoint()),
        persistent: true,
    })
    .await;
    assert_eq!(s3.var("AKTE_S3_SERVER"), "moto");
}

#[tokio::test]
async fn suite_on_s3s_fs() {
    let Some(s3) = S3Server::start("s3s-fs") else {
        return;
    };
    suite(Backend {
        name: "s3s",
        args: vec![
            "--store".into(),
            "s3://akte-plain/s3s".into(),
            "--key-store".into(),
            "s3://akte-keys/s3s".into(),
        ],
        env: s3.env.clone(),
        lock: None,
        persistent: true,
    })
    .await;
}
