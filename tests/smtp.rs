//! Issue #19, the SMTP journaling receiver, driven by a real client: Python's `smtplib`
//! (installed with python3 by `.ci/deps`) against `akte serve --smtp`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::server::*;
use reqwest::StatusCode;
use serde_json::Value;

/// A self-signed certificate for 127.0.0.1 and its key, made by openssl.
fn certificate(dir: &Path) -> (String, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .output()
        .expect("openssl runs (installed by .ci/deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        dir.join("cert.pem").display().to_string(),
        dir.join("key.pem").display().to_string(),
    )
}

/// Runs a Python script with `args`; returns its stdout lines as JSON.
fn python(script: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (installed by .ci/deps)");
    assert!(
        out.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Every scenario of one session each; prints one JSON object per scenario.
const SCENARIOS: &str = r#"
import json, smtplib, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
cafile, archivist, clerk = sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)

def msg(subject, body, to="kunde@example.com"):
    return ("From: einkauf@firma.example\r\nTo: " + to + "\r\nSubject: " + subject +
            "\r\nMessage-ID: <" + subject.replace(" ", "-") + "@firma.example>\r\n"
            "Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n\r\n" + body + "\r\n").encode()

def out(name, **kw):
    kw["scenario"] = name
    print(json.dumps(kw), flush=True)

# 1. Not allow-listed, not authenticated: refused at MAIL.
s = smtplib.SMTP(host, port); s.ehlo()
code, text = s.mail("einkauf@firma.example")
out("unauthenticated", code=code, features=sorted(s.esmtp_features.keys()))
s.quit()

# 2. AUTH before STARTTLS is not offered (a certificate is configured).
s = smtplib.SMTP(host, port); s.ehlo()
code, text = s.docmd("AUTH", "PLAIN " + __import__("base64").b64encode(b"\0x\0" + archivist.encode()).decode())
out("auth_in_clear", code=code)
s.quit()

# 3. STARTTLS, AUTH PLAIN with an archivist token; the Bcc recipient is only in the
#    envelope; a body line starting with a dot is dot-stuffed on the wire.
s = smtplib.SMTP(host, port); s.ehlo(); s.starttls(context=ctx); s.ehlo()
s.login("journal", archivist)
raw = msg("Journal eins", "Guten Tag,\r\n.Punkt am Anfang\r\nGruss")
refused = s.sendmail("einkauf@firma.example", ["kunde@example.com", "geheim@bcc.example"], raw)
code, text = s.noop()
out("tls_auth_plain", features=sorted(s.esmtp_features.keys()), refused=refused, raw=raw.decode())
s.quit()

# 4. The same over AUTH LOGIN, reading the 250 text (the record id).
s = smtplib.SMTP(host, port); s.ehlo(); s.starttls(context=ctx); s.ehlo()
s.user, s.password = "journal", archivist
s.auth("LOGIN", s.auth_login, initial_response_ok=False)
s.mail("einkauf@firma.example"); s.rcpt("kunde@example.com")
code, text = s.data(msg("Journal zwei", "Zweite Nachricht"))
out("tls_auth_login", code=code, text=text.decode())
s.quit()

# 5. A message over the size limit: refused (SIZE at MAIL, and without SIZE after DATA).
s = smtplib.SMTP(host, port); s.ehlo(); s.starttls(context=ctx); s.ehlo(); s.login("j", archivist)
big = msg("Zu gross", "x" * 300000)
try:
    s.sendmail("einkauf@firma.example", ["kunde@example.com"], big)
    out("too_big_size", code=250)
except smtplib.SMTPSenderRefused as e:
    out("too_big_size", code=e.smtp_code)
s.rset()
s.putcmd("MAIL", "FROM:<einkauf@firma.example>"); c1, _ = s.getreply()
s.rcpt("kunde@example.com")
code, text = s.data(big)
out("too_big_data", mail=c1, code=code)
s.quit()

# 6. A wrong token and a clerk's token are refused.
for name, tok in [("wrong_token", "akte_nonsense"), ("clerk_token", clerk)]:
    s = smtplib.SMTP(host, port); s.ehlo(); s.starttls(context=ctx); s.ehlo()
    try:
        s.login("j", tok); out(name, code=235)
    except smtplib.SMTPAuthenticationError as e:
        out(name, code=e.smtp_code)
    s.quit()

# 7. From an allow-listed address (127.0.0.2), no AUTH needed.
s = smtplib.SMTP(host, port, source_address=("127.0.0.2", 0)); s.ehlo()
s.mail("ausgang@firma.example"); s.rcpt("lieferant@example.org")
code, text = s.data(msg("Journal drei", "Vom erlaubten Server", to="lieferant@example.org"))
out("allow_listed", code=code, text=text.decode())
s.quit()
"#;

#[tokio::test]
async fn journaled_mail_is_archived_with_its_envelope_over_starttls_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let data = dir.path().join("data");
    let s = Server::start_on(
        &data,
        &[
            "--smtp",
            "127.0.0.1:0",
            "--smtp-tls-cert",
            &cert,
            "--smtp-tls-key",
            &key,
            "--smtp-allow",
            "127.0.0.2",
            "--smtp-max-size",
            "200000",
        ],
    );
    let smtp = s.smtp.clone().expect("the server names its SMTP address");
    let token = |role: &str| {
        let out = cli(&data, &["--json", "token", "create", "--role", role]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["token"].as_str().unwrap().to_string()
    };
    let (archivist, clerk) = (token("archivist"), token("clerk"));
    let results = python(SCENARIOS, &[&smtp, &cert, &archivist, &clerk]);
    let get = |name: &str| {
        results
            .iter()
            .find(|r| r["scenario"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {results:?}"))
            .clone()
    };
    let r = get("unauthenticated");
    assert_eq!(r["code"], 530, "{r}");
    let features = r["features"].to_string();
    for f in ["size", "8bitmime", "pipelining", "starttls"] {
        assert!(features.contains(f), "{f} in {features}");
    }
    assert!(
        !features.contains("auth"),
        "no AUTH before STARTTLS: {features}"
    );
    assert_eq!(get("auth_in_clear")["code"], 538);
    let r = get("tls_auth_plain");
    assert_eq!(r["refused"], serde_json::json!({}), "{r}");
    assert!(r["features"].to_string().contains("auth"), "{r}");
    let login = get("tls_auth_login");
    assert_eq!(login["code"], 250, "{login}");
    assert!(
        login["text"].as_str().unwrap().contains("archived as"),
        "{login}"
    );
    assert_eq!(get("too_big_size")["code"], 552);
    let big = get("too_big_data");
    assert_eq!(big["mail"], 250);
    assert_eq!(big["code"], 552, "{big}");
    assert_eq!(get("wrong_token")["code"], 535);
    assert_eq!(get("clerk_token")["code"], 535);
    let allowed = get("allow_listed");
    assert_eq!(allowed["code"], 250, "{allowed}");

    // The first message: byte-exact, with the Bcc recipient from the envelope.
    let c = client();
    let search = |q: &'static str| {
        let c = c.clone();
        let url = s.url(&format!("/v1/search?q={q}"));
        async move {
            for _ in 0..100 {
                let v: Value = c
                    .get(&url)
                    .header("authorization", bearer(ADMIN))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if v["total"].as_u64() == Some(1) {
                    return v["hits"][0]["id"].as_str().unwrap().to_string();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{q} not found");
        }
    };
    let id = search("Punkt").await;
    let rec: Value = c
        .get(s.url(&format!("/v1/records/{id}")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let extra = &rec["extra"];
    assert_eq!(extra["envelope_from"], "einkauf@firma.example", "{rec}");
    assert_eq!(
        extra["envelope_to"], "kunde@example.com, geheim@bcc.example",
        "{rec}"
    );
    assert!(
        !extra["bcc"].as_str().unwrap_or("").contains("geheim"),
        "the Bcc recipient is in no header: {rec}"
    );
    assert!(
        rec["actor"]
            .as_str()
            .unwrap_or("")
            .contains("(smtp 127.0.0.1)")
            || rec.to_string().contains("smtp 127.0.0.1"),
        "{rec}"
    );
    let content = c
        .get(s.url(&format!("/v1/records/{id}/content")))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(content.status(), StatusCode::OK);
    let sent = get("tls_auth_plain")["raw"].as_str().unwrap().to_string();
    assert_eq!(
        content.bytes().await.unwrap().as_ref(),
        sent.as_bytes(),
        "archived byte-exact, dot-stuffing undone"
    );
    let from_allowed = search("erlaubten").await;
    assert!(!from_allowed.is_empty());

    // Each outcome is on /metrics.
    let m = c
        .get(s.url("/metrics"))
        .header("authorization", bearer(ADMIN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "akte_intake_messages_total{intake=\"smtp\",outcome=\"accepted\"} 3",
        "akte_intake_messages_total{intake=\"smtp\",outcome=\"refused\"} 2",
    ] {
        assert!(m.contains(line), "{line} in\n{m}");
    }
}

/// A kill of the server while messages are in flight: every message answered 250 is in
/// the archive after the restart; the client sends the others again, and then every one
/// is archived exactly once.
#[test]
fn every_message_answered_250_survives_a_kill_and_the_rest_arrive_on_retry() {
    const SENDER: &str = r#"
import json, smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
todo = [int(i) for i in sys.argv[2].split(",")]
for i in todo:
    raw = ("From: a@firma.example\r\nTo: b@example.com\r\nSubject: Kill " + str(i) +
           "\r\nMessage-ID: <kill-" + str(i) + "@firma.example>\r\n\r\nNachricht " + str(i) + "\r\n").encode()
    try:
        s = smtplib.SMTP(host, int(port), timeout=10)
        s.ehlo(); s.mail("a@firma.example"); s.rcpt("b@example.com")
        code, text = s.data(raw)
        s.quit()
        print(json.dumps({"i": i, "code": code, "text": text.decode()}), flush=True)
    except Exception as e:
        print(json.dumps({"i": i, "code": 0, "error": str(e)}), flush=True)
"#;
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let all: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    let mut s = Server::start_on(
        &data,
        &["--smtp", "127.0.0.1:0", "--smtp-allow", "127.0.0.1"],
    );
    let smtp = s.smtp.clone().unwrap();
    let mut sender = Command::new("python3")
        .arg("-c")
        .arg(SENDER)
        .arg(&smtp)
        .arg(all.join(","))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut acked: Vec<(usize, String)> = Vec::new();
    let mut failed: Vec<usize> = Vec::new();
    let lines = BufReader::new(sender.stdout.take().unwrap()).lines();
    let mut killed = false;
    for line in lines {
        let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let i = v["i"].as_u64().unwrap() as usize;
        if v["code"] == 250 {
            let text = v["text"].as_str().unwrap();
            acked.push((i, text.rsplit(' ').next().unwrap().to_string()));
        } else {
            failed.push(i);
        }
        if !killed && acked.len() >= 10 {
            // SIGKILL: no orderly shutdown, messages in flight are cut off.
            s.child.kill().unwrap();
            s.child.wait().unwrap();
            killed = true;
        }
    }
    sender.wait().unwrap();
    assert!(killed, "the server was killed mid-stream");
    assert!(
        !failed.is_empty(),
        "the kill cut some messages off: acked {}",
        acked.len()
    );
    drop(s);

    let s = Server::start_on(
        &data,
        &["--smtp", "127.0.0.1:0", "--smtp-allow", "127.0.0.1"],
    );
    let smtp = s.smtp.clone().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let title = |id: &str| {
        rt.block_on(async {
            let r = client()
                .get(s.url(&format!("/v1/records/{id}")))
                .header("authorization", bearer(ADMIN))
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::OK,
                "record {id} answered 250 is lost"
            );
            let v: Value = r.json().await.unwrap();
            v["title"].as_str().unwrap().to_string()
        })
    };
    for (i, id) in &acked {
        assert_eq!(title(id), format!("Kill {i}"));
    }
    // The client retries what was not answered 250.
    let retry: Vec<String> = failed.iter().map(|i| i.to_string()).collect();
    let again = python(SENDER, &[&smtp, &retry.join(",")]);
    let mut ids: std::collections::BTreeMap<usize, String> = acked.into_iter().collect();
    for v in &again {
        assert_eq!(v["code"], 250, "{v}");
        let i = v["i"].as_u64().unwrap() as usize;
        ids.insert(
            i,
            v["text"]
                .as_str()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(ids.len(), N);
    let distinct: std::collections::BTreeSet<&String> = ids.values().collect();
    assert_eq!(distinct.len(), N, "each message is one record");
    for (i, id) in &ids {
        assert_eq!(title(id), format!("Kill {i}"));
    }
    let _ = std::io::stdout().flush();
}
