//! IMAP mailbox sync (`akte mail sync`): every folder (or the chosen ones) of a mailbox,
//! archived byte-exact through the one ingest pipeline, incrementally by UIDVALIDITY and
//! UID.
//!
//! Messages are fetched with `BODY.PEEK[]` from a folder opened with `EXAMINE`: nothing on
//! the server changes, not even the `\Seen` flag. After each batch is committed the
//! folder's last archived UID is saved (`mail-sync.json`, written atomically), so a sync
//! killed midway resumes where it stopped; what it fetches twice is the same bytes, a
//! duplicate, so a second run archives nothing. A changed UIDVALIDITY (the server
//! renumbered the folder) re-scans it from the start — and archives only what is new,
//! since the content decides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Ingest;
use super::batch::{Incoming, IngestDefaults};
use crate::error::{Error, Result};

/// Messages fetched and committed at once.
const BATCH: usize = 100;

/// A mailbox to sync.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// `imaps://host[:port]/` (TLS, port 993 by default) or `imap://host[:port]/`
    /// (plain, port 143; for loopback and tests).
    pub url: String,
    pub user: String,
    pub password: String,
    /// Folders to sync; empty: every selectable folder.
    pub folders: Vec<String>,
    /// Extra certificate authorities (PEM) for a server whose certificate no system root
    /// signs.
    pub ca: Option<PathBuf>,
}

/// Mailboxes the server syncs on its own (`akte serve --mail-sync FILE`), a TOML file:
///
/// ```toml
/// [[mailbox]]
/// imap = "imaps://mail.example.com/"
/// user = "vertrieb"
/// password_file = "/etc/akte/vertrieb.pw"
/// folders = ["INBOX", "Sent"]   # optional: every folder
/// party = "…"                   # optional: link every message to this party
/// ca = "/etc/akte/mail-ca.pem"  # optional
/// every = 300                   # seconds between syncs (default 300)
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(rename = "mailbox", default)]
    pub mailboxes: Vec<Scheduled>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheduled {
    pub imap: String,
    pub user: String,
    pub password_file: PathBuf,
    #[serde(default)]
    pub folders: Vec<String>,
    #[serde(default)]
    pub party: Option<String>,
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default = "default_every")]
    pub every: u64,
}

fn default_every() -> u64 {
    300
}

impl Schedule {
    /// Reads and checks the file: every URL well-formed, every password file readable.
    pub fn load(path: &Path) -> Result<Schedule> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
        let s: Schedule = toml::from_str(&text)
            .map_err(|e| Error::invalid("mail-sync", format!("{}: {e}", path.display())))?;
        for m in &s.mailboxes {
            endpoint(&m.imap)?;
            m.password()?;
        }
        Ok(s)
    }
}

/// The password in `path`: its first line.
pub fn read_password(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

impl Scheduled {
    fn password(&self) -> Result<String> {
        read_password(&self.password_file)
    }

    /// The mailbox to sync, its password read now (it may have been rotated).
    pub fn mailbox(&self) -> Result<Mailbox> {
        Ok(Mailbox {
            url: self.imap.clone(),
            user: self.user.clone(),
            password: self.password()?,
            folders: self.folders.clone(),
            ca: self.ca.clone(),
        })
    }

    /// The ingest defaults of its messages.
    pub fn defaults(&self) -> IngestDefaults {
        IngestDefaults {
            parties: self
                .party
                .iter()
                .map(|p| crate::record::PartyLink::given(p, "subject"))
                .collect(),
            ..Default::default()
        }
    }
}

/// What a sync did in one folder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderReport {
    pub folder: String,
    pub uidvalidity: u32,
    /// The folder's UIDVALIDITY changed since the last sync: it was read from the start.
    pub rescanned: bool,
    /// Messages fetched (UIDs above the last archived one).
    pub fetched: u64,
    pub archived: u64,
    pub duplicates: u64,
    /// The highest UID archived so far.
    pub last_uid: u32,
}

/// Told about each folder as it is done.
pub trait Progress: Send + Sync {
    fn folder(&self, _r: &FolderReport) {}
}

/// Where each folder of each mailbox stands.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    /// `user@host:port` → folder → position.
    mailboxes: BTreeMap<String, BTreeMap<String, Position>>,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
struct Position {
    uidvalidity: u32,
    last_uid: u32,
}

impl State {
    fn load(path: &Path) -> Result<State> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::invalid(
                    "mail-sync state",
                    format!(
                        "{}: {e} (delete it to sync from the start; nothing is archived twice)",
                        path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                version: 1,
                ..Default::default()
            }),
            Err(e) => Err(Error::io(path.display(), e)),
        }
    }

    /// Writes the state: a temporary file, synced, renamed over the old one.
    fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        }
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(tmp.display(), e))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(tmp.display(), e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path.display(), e))
    }
}

/// Host, port and whether TLS is used, from the mailbox URL.
fn endpoint(url: &str) -> Result<(String, u16, bool)> {
    let u = url::Url::parse(url).map_err(|e| Error::invalid("imap", e.to_string()))?;
    let tls = match u.scheme() {
        "imaps" => true,
        "imap" => false,
        _ => return Err(Error::invalid("imap", "give imaps://host/ or imap://host/")),
    };
    let host = u
        .host_str()
        .ok_or_else(|| Error::invalid("imap", "the URL names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, u.port().unwrap_or(if tls { 993 } else { 143 }), tls))
}

fn imap_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("IMAP {what}: {e}"))
}

/// Syncs every chosen folder of `mb` into the archive as `actor`; `state` is the file
/// that remembers where each folder stands.
pub async fn sync(
    ingest: &Ingest,
    actor: &str,
    mb: &Mailbox,
    d: &IngestDefaults,
    state: &Path,
    progress: &dyn Progress,
) -> Result<Vec<FolderReport>> {
    let (host, port, tls) = endpoint(&mb.url)?;
    let job = Job {
        ingest,
        actor,
        mb,
        server: format!("{host}:{port}"),
        d,
        state_path: state,
        progress,
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| imap_err(&format!("connect to {host}:{port}"), e))?;
    if tls {
        let connector = tls_connector(mb.ca.as_deref())?;
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| Error::invalid("imap", e.to_string()))?;
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| imap_err("TLS", e))?;
        job.run(stream).await
    } else {
        job.run(tcp).await
    }
}

fn tls_connector(ca: Option<&Path>) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(c);
    }
    if let Some(p) = ca {
        for c in crate::audit::timestamp::load_certs(p)? {
            roots
                .add(c)
                .map_err(|e| Error::invalid("imap-ca", format!("{}: {e}", p.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// One sync of one mailbox, over whichever stream the URL asked for.
struct Job<'a> {
    ingest: &'a Ingest,
    actor: &'a str,
    mb: &'a Mailbox,
    /// `host:port`, part of the key of the saved positions.
    server: String,
    d: &'a IngestDefaults,
    state_path: &'a Path,
    progress: &'a dyn Progress,
}

impl Job<'_> {
    async fn run<T>(&self, stream: T) -> Result<Vec<FolderReport>>
    where
        T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        let &Job {
            ingest,
            actor,
            mb,
            ref server,
            d,
            state_path,
            progress,
        } = self;
        let mut client = async_imap::Client::new(stream);
        client
            .read_response()
            .await
            .map_err(|e| imap_err("greeting", e))?
            .ok_or_else(|| imap_err("greeting", "the server closed the connection"))?;
        let mut session = client
            .login(&mb.user, &mb.password)
            .await
            .map_err(|(e, _)| {
                Error::invalid("imap", format!("login as {} refused: {e}", mb.user))
            })?;
        let folders = if mb.folders.is_empty() {
            let names: Vec<async_imap::types::Name> = session
                .list(Some(""), Some("*"))
                .await
                .map_err(|e| imap_err("LIST", e))?
                .try_collect()
                .await
                .map_err(|e| imap_err("LIST", e))?;
            let mut out: Vec<String> = names
                .iter()
                .filter(|n| {
                    !n.attributes()
                        .iter()
                        .any(|a| matches!(a, async_imap::types::NameAttribute::NoSelect))
                })
                .map(|n| n.name().to_string())
                .collect();
            out.sort();
            out
        } else {
            mb.folders.clone()
        };
        let key = format!("{}@{server}", mb.user);
        let mut state = State::load(state_path)?;
        let mut reports = Vec::new();
        for folder in folders {
            let opened = session
                .examine(&folder)
                .await
                .map_err(|e| imap_err(&format!("EXAMINE {folder}"), e))?;
            let uidvalidity = opened.uid_validity.unwrap_or(0);
            let known = state
                .mailboxes
                .get(&key)
                .and_then(|m| m.get(&folder))
                .copied()
                .unwrap_or_default();
            let mut r = FolderReport {
                folder: folder.clone(),
                uidvalidity,
                ..Default::default()
            };
            let mut last = if known.uidvalidity == uidvalidity {
                known.last_uid
            } else {
                r.rescanned = known.uidvalidity != 0;
                0
            };
            let mut uids: Vec<u32> = if opened.exists == 0 {
                Vec::new()
            } else {
                session
                    .uid_search(format!("UID {}:*", last.saturating_add(1)))
                    .await
                    .map_err(|e| imap_err(&format!("UID SEARCH in {folder}"), e))?
                    .into_iter()
                    .filter(|u| *u > last)
                    .collect()
            };
            uids.sort_unstable();
            let mut defaults = d.clone();
            defaults.extra.insert("folder".into(), folder.clone());
            for chunk in uids.chunks(BATCH) {
                let set = chunk
                    .iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                let fetched: Vec<async_imap::types::Fetch> = session
                    .uid_fetch(&set, "(UID BODY.PEEK[])")
                    .await
                    .map_err(|e| imap_err(&format!("UID FETCH in {folder}"), e))?
                    .try_collect()
                    .await
                    .map_err(|e| imap_err(&format!("UID FETCH in {folder}"), e))?;
                let mut msgs: Vec<(u32, bytes::Bytes)> = fetched
                    .iter()
                    .filter_map(|f| Some((f.uid?, bytes::Bytes::copy_from_slice(f.body()?))))
                    .filter(|(u, _)| chunk.contains(u))
                    .collect();
                msgs.sort_by_key(|(u, _)| *u);
                msgs.dedup_by_key(|(u, _)| *u);
                r.fetched += msgs.len() as u64;
                let items = msgs
                    .iter()
                    .map(|(_, b)| Incoming::Email(b.clone()))
                    .collect();
                let outcomes = ingest.ingest(actor, items, &defaults).await;
                for ((uid, _), o) in msgs.iter().zip(outcomes) {
                    match o {
                        Ok(o) if o.duplicate => r.duplicates += 1,
                        Ok(_) => r.archived += 1,
                        Err(e) => {
                            // Not archived: the position stays before it, and the next
                            // sync fetches it again.
                            save(&mut state, &key, &folder, uidvalidity, last, state_path)?;
                            return Err(Error::Unavailable(format!(
                                "{folder}: message UID {uid} not archived ({e}); synced up to UID {last}"
                            )));
                        }
                    }
                    last = *uid;
                }
                // Messages the server no longer has (expunged meanwhile) are passed over.
                last = last.max(chunk.last().copied().unwrap_or(last));
                save(&mut state, &key, &folder, uidvalidity, last, state_path)?;
            }
            if uids.is_empty() {
                save(&mut state, &key, &folder, uidvalidity, last, state_path)?;
            }
            r.last_uid = last;
            progress.folder(&r);
            reports.push(r);
        }
        let _ = session.logout().await;
        Ok(reports)
    }
}

fn save(
    state: &mut State,
    key: &str,
    folder: &str,
    uidvalidity: u32,
    last_uid: u32,
    path: &Path,
) -> Result<()> {
    state.version = 1;
    state.mailboxes.entry(key.to_string()).or_default().insert(
        folder.to_string(),
        Position {
            uidvalidity,
            last_uid,
        },
    );
    state.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_port_and_tls() {
        assert_eq!(
            endpoint("imaps://mail.example.com/").unwrap(),
            ("mail.example.com".into(), 993, true)
        );
        assert_eq!(
            endpoint("imap://127.0.0.1:1143").unwrap(),
            ("127.0.0.1".into(), 1143, false)
        );
        assert!(endpoint("http://mail.example.com/").is_err());
    }
}
