//! `cargo bench --bench smtp`: SMTP journaling throughput against `POST /v1/emails`, the
//! same server, the same kind of messages, in the same run.
//!
//! Setup: `akte serve --smtp` on a local store (fsync on) in a temporary directory.
//! 8 concurrent senders each deliver AKTE_BENCH_MESSAGES (default 250) distinct 2 KB
//! messages over one SMTP connection (PIPELINING: MAIL, RCPT and DATA sent together; each
//! message answered 250 only once archived); then 8 concurrent HTTP clients post as many
//! (other) messages to `/v1/emails`. Printed: messages per second of both and the ratio
//! SMTP / HTTP.

#[path = "common/table.rs"]
mod table;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ADMIN: &str = "akte_bench_admin_token_0123456789abcdef0123456789abcdef";
const SENDERS: usize = 8;

fn message(kind: &str, sender: usize, i: usize) -> String {
    format!(
        "From: einkauf{sender}@firma.example\r\nTo: kunde@example.com\r\nSubject: {kind} {sender}-{i}\r\n\
         Message-ID: <{kind}-{sender}-{i}@firma.example>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\n\r\n{}\r\n",
        "Sehr geehrte Damen und Herren, anbei die Unterlagen zur Bestellung. ".repeat(28)
    )
}

async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            panic!("smtp connection closed");
        }
        // The last line of a reply has a space after the code.
        if line.as_bytes().get(3) == Some(&b' ') {
            return line;
        }
    }
}

async fn smtp_sender(addr: String, sender: usize, n: usize) {
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // As a mail server's client: no Nagle delay between commands.
    stream.set_nodelay(true).unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    reply(&mut r).await;
    w.write_all(b"EHLO bench\r\n").await.unwrap();
    reply(&mut r).await;
    for i in 0..n {
        w.write_all(
            b"MAIL FROM:<einkauf@firma.example>\r\nRCPT TO:<kunde@example.com>\r\nDATA\r\n",
        )
        .await
        .unwrap();
        for want in ["250", "250", "354"] {
            let got = reply(&mut r).await;
            assert!(got.starts_with(want), "{got}");
        }
        // The message and its terminating dot in one write, as MTAs buffer them.
        let mut data = message("smtp", sender, i);
        data.push_str(".\r\n");
        w.write_all(data.as_bytes()).await.unwrap();
        let got = reply(&mut r).await;
        assert!(got.starts_with("250"), "{got}");
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
}

async fn http_sender(base: String, sender: usize, n: usize) {
    let c = reqwest::Client::new();
    for i in 0..n {
        let r = c
            .post(format!("{base}/v1/emails"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "message/rfc822")
            .body(message("http", sender, i))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n: usize = crate::table::knob("AKTE_BENCH_MESSAGES", 250);
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--smtp",
            "127.0.0.1:0",
            "--smtp-allow",
            "127.0.0.1",
            "--rate",
            "100000",
        ])
        .env("AKTE_ADMIN_TOKEN", ADMIN)
        .env("AKTE_LOG", "warn")
        .env_remove("AKTE_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stderr.take().ok_or("stderr")?).lines();
    let (mut smtp, mut http) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line?;
        if let Some(a) = line.split("smtp receiver on ").nth(1) {
            smtp = a.trim().to_string();
        }
        if let Some(a) = line.split("listening on ").nth(1) {
            http = a.trim().to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let total = (SENDERS * n) as f64;
    let (smtp_rate, http_rate) = rt.block_on(async {
        // Warm-up: the catalog and the extraction workers.
        http_sender(http.clone(), 99, 5).await;
        let t = Instant::now();
        let tasks: Vec<_> = (0..SENDERS)
            .map(|s| tokio::spawn(http_sender(http.clone(), s, n)))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let http_rate = total / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let tasks: Vec<_> = (0..SENDERS)
            .map(|s| tokio::spawn(smtp_sender(smtp.clone(), s, n)))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        (total / t.elapsed().as_secs_f64(), http_rate)
    });
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "| path | senders | messages | messages/s |\n|---|---|---|---|\n| POST /v1/emails (baseline) | {SENDERS} | {} | {http_rate:.0} |\n| SMTP journaling | {SENDERS} | {} | {smtp_rate:.0} |\n\nratio SMTP / HTTP: {:.2}",
        SENDERS * n,
        SENDERS * n,
        smtp_rate / http_rate
    );
    crate::table::bench("smtp");
    crate::table::row(
        &format!("SMTP journaling, {SENDERS} senders"),
        format!("{smtp_rate:.0} msg/s"),
        format!("{http_rate:.0} msg/s (POST /v1/emails)"),
        smtp_rate / http_rate,
        "≈ 1×",
    );
    Ok(())
}
