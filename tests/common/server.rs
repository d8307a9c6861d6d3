//! Starts the real `akte serve` binary on 127.0.0.1:0 and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ADMIN: &str = "akte_test_admin_token_0123456789abcdef0123456789abcdef";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    /// stderr lines after "listening".
    pub log: mpsc::Receiver<String>,
    /// stderr lines up to "listening".
    pub early: Vec<String>,
    /// The SMTP receiver's address, when started with --smtp.
    pub smtp: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = Server::start_on(&data, extra);
        s._dir = Some(dir);
        s
    }

    pub fn start_on(data: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data, extra, &[])
    }

    /// Starts on `data` with extra environment variables.
    pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_akte"))
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("AKTE_LOG", "warn")
            .envs(env.iter().copied())
            .env("AKTE_ADMIN_TOKEN", ADMIN)
            .env_remove("AKTE_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut smtp = None;
        let mut early = Vec::new();
        let base = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("server did not report its address");
            early.push(line.clone());
            if let Some(addr) = line.split("smtp receiver on ").nth(1) {
                smtp = Some(addr.trim().to_string());
            }
            // (With AKTE_LOG=info the log line says it too, with more fields after.)
            if let Some(addr) = line.split("listening on ").nth(1) {
                break addr
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        };
        Server {
            child,
            base,
            data: data.to_path_buf(),
            log: rx,
            early,
            smtp,
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size of the server process, in bytes (VmHWM).
    pub fn peak_rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the process to exit and returns whether it exited cleanly.
    pub fn wait(&mut self) -> bool {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not stop within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Runs the CLI against a data directory (the server's store).
pub fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("AKTE_STORE")
        .output()
        .unwrap()
}
