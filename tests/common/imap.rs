//! A Dovecot IMAP server on loopback for the tests (Debian's `dovecot-imapd`, installed
//! by `.ci/deps`): Maildir under a temporary directory, one user with a plain password.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct LocalImap {
    pub port: u16,
    pub user: String,
    pub password_file: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    serial: u64,
}

/// Why Dovecot cannot be used here, if it cannot.
pub fn unavailable() -> Option<String> {
    if Command::new("dovecot").arg("--version").output().is_err() {
        return Some("dovecot is not installed (apt-get install dovecot-imapd)".into());
    }
    if !rustix::process::geteuid().is_root() {
        return Some("dovecot needs root to switch to its mail user".into());
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl LocalImap {
    /// Starts Dovecot with the folders `INBOX` and `folders` (created empty).
    pub fn start(folders: &[&str]) -> LocalImap {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let user = "akte".to_string();
        for sub in ["run", "state", "home", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("passwd"), format!("{user}:{{PLAIN}}geheim\n")).unwrap();
        let password_file = d.join("password");
        std::fs::write(&password_file, "geheim\n").unwrap();
        std::fs::write(
            d.join("dovecot.conf"),
            format!(
                r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
mail_location = maildir:{d}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"#,
                d = d.display()
            ),
        )
        .unwrap();
        let mut s = LocalImap {
            port,
            user,
            password_file,
            dir,
            child: None,
            serial: 0,
        };
        s.maildir("INBOX");
        for f in folders {
            s.maildir(f);
        }
        s.run();
        s
    }

    fn maildir(&self, folder: &str) -> PathBuf {
        let base = self.dir.path().join("mail").join(&self.user);
        let path = if folder == "INBOX" {
            base
        } else {
            base.join(format!(".{}", folder.replace('/', ".")))
        };
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(path.join(sub)).unwrap();
        }
        path
    }

    fn run(&mut self) {
        let d = self.dir.path();
        // The mail user must reach its mail.
        let _ = std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        let ok = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(d.join("mail"))
            .arg(d.join("home"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown");
        let child = Command::new("dovecot")
            .args(["-F", "-c"])
            .arg(d.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dovecot starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "dovecot did not listen: {}",
            std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
        // Wait until the port is free again.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}/", self.port)
    }

    /// Delivers `raw` into `folder` (unread: no flags). Returns its file.
    pub fn deliver(&mut self, folder: &str, raw: &[u8]) -> PathBuf {
        self.serial += 1;
        let dir = self.maildir(folder);
        let path = dir.join("cur").join(format!(
            "{}.M{}P1.akte-test:2,",
            1_700_000_000 + self.serial,
            self.serial
        ));
        std::fs::write(&path, raw).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(&dir)
            .status();
        path
    }

    /// Every message file of `folder` and its flags (the part after `:2,`).
    pub fn flags(&self, folder: &str) -> Vec<String> {
        let dir = self.maildir(folder).join("cur");
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().to_string();
                name.split(":2,").nth(1).unwrap_or("").to_string()
            })
            .collect()
    }

    /// Makes the server renumber `folder` (a new UIDVALIDITY), as after a restore.
    pub fn renumber(&mut self, folder: &str) {
        self.stop();
        let dir = self.maildir(folder);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("dovecot-uidlist") || name.starts_with("dovecot.index") {
                std::fs::remove_file(p).unwrap();
            }
        }
        // UIDVALIDITY is a time in seconds: let it change.
        std::thread::sleep(Duration::from_millis(1100));
        self.run();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for LocalImap {
    fn drop(&mut self) {
        self.stop();
    }
}
