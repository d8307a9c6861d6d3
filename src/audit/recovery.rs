//! Automatic crash recovery (DESIGN §2.6): at every start of a writer (the server, and
//! every CLI command but `verify`), revisions that were written but never committed by a
//! journal entry are recorded in one `store.recover` entry — key, digest, "never
//! acknowledged" — and from then on set aside by every reader and by `verify`.
//!
//! Nothing is turned into a record, nothing is deleted: on a store under Object Lock a
//! leftover could not be deleted anyway, and its bytes are evidence. A leftover that
//! cannot even be decoded (a write torn by a power loss) is recorded the same way; it
//! never blocks a start.
//!
//! A revision without an entry is a crash leftover only if its writer is gone. On the
//! local store every writer holds a shared lock on `<data>/.writers.lock` for its
//! lifetime: a writer that gets the lock exclusively at start knows it is alone and
//! recovers everything. Otherwise (another process writing, or a shared S3 bucket) only
//! leftovers older than a grace period are recorded; younger ones may be in flight and
//! stay invisible until their entry arrives or a later recovery records them.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use serde::Serialize;

use super::journal::{Draft, Journal, JournalEntry, Subject};
use super::ledger::RECOVERY_ACTION;
use crate::clock::Clock;
use crate::error::Result;
use crate::store::keys::{self, KeyKind, ObjectKind};
use crate::store::{Store, WriterLock, codec};

/// How old an uncommitted revision must be before a writer that is not alone records it
/// as a leftover. Far above the seconds between a revision's write and its entry.
pub const GRACE: Duration = Duration::from_secs(15 * 60);

/// The actor of recovery entries.
pub const ACTOR: &str = "akte:recovery";

/// Subjects per recovery entry (a crash can leave a whole batch behind).
const SUBJECTS_PER_ENTRY: usize = 4096;

/// One revision written before a crash and never committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftover {
    /// Journal subject kind (`record`, `party`, `token`, …).
    pub kind: String,
    pub id: String,
    pub rev: u32,
    pub key: String,
    /// SHA-256 of the bytes found (whatever they are).
    pub digest: String,
    /// Whether the bytes decode as a revision (a torn write does not).
    pub decodable: bool,
}

/// What one recovery did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovery {
    /// Leftovers recorded now.
    pub recorded: Vec<Leftover>,
    /// Torn blobs named by those leftovers, recorded with them.
    pub torn_blobs: Vec<String>,
    /// Torn key files of objects never committed (by key id), recorded with them.
    pub torn_keys: Vec<String>,
    /// Data keys whose journaled destruction a crash interrupted, destroyed now.
    pub keys_destroyed: Vec<String>,
    /// Uncommitted revisions too young to decide (another writer may be committing them).
    pub undecided: usize,
    /// The entries written (none when there was nothing to record).
    pub entries: Vec<u64>,
    /// The last writer ended cleanly at the journal's head and none started since: the
    /// store was not listed (see `store::WriterLock`).
    pub clean_start: bool,
}

/// Records every never-committed revision as a leftover. `sole_writer`: no other
/// process can be writing (see the module comment); otherwise only leftovers older than
/// [`GRACE`] are recorded.
pub async fn recover(
    store: &Store,
    journal: &Journal,
    clock: &Arc<dyn Clock>,
    actor: &str,
    sole_writer: bool,
) -> Result<Recovery> {
    journal.sync_ledger().await?;
    let now = clock.now();
    let grace = chrono::Duration::from_std(GRACE).unwrap_or(chrono::Duration::MAX);
    let mut out = Recovery::default();
    let mut found = Vec::new();
    for kind in ObjectKind::ALL {
        let mut list = store.list(&keys::kind_prefix(kind));
        while let Some(meta) = list.try_next().await? {
            let KeyKind::Revision { id, rev, .. } = keys::classify(&meta.location) else {
                continue;
            };
            let ledger = journal.ledger();
            if ledger.is_committed(kind, &id, rev) || ledger.is_recovered(kind, &id, rev) {
                continue;
            }
            if !sole_writer && now - meta.last_modified < grace {
                out.undecided += 1;
                continue;
            }
            found.push((kind, id, rev, meta.location));
        }
    }
    // Key files torn by a crash (group commit writes them without an fsync each) whose
    // owner was never committed.
    let mut torn_keys = Vec::new();
    let mut list = store.list(&keys::keys_prefix());
    while let Some(meta) = list.try_next().await? {
        let KeyKind::PartyKey { party: owner } = keys::classify(&meta.location) else {
            continue;
        };
        if journal.ledger().is_key_destroyed(&owner) {
            // An erasure or disposal was journaled, and a crash kept its key file: finish
            // the destruction (durably) now.
            store.destroy_key(&owner).await?;
            out.keys_destroyed.push(owner);
            continue;
        }
        let (kind, id) = keys::key_owner(&owner);
        let id = id.to_string();
        if journal.ledger().revisions(kind, &id).is_some()
            || journal.ledger().is_recovered_key(&owner)
            || (!sole_writer && now - meta.last_modified < grace)
        {
            continue;
        }
        let Some(bytes) = store.get_opt(&meta.location).await? else {
            continue;
        };
        if crate::store::crypt::parse_key_file(meta.location.as_ref(), &bytes).is_err() {
            torn_keys.push((owner, kind, id, codec::sha256_hex(&bytes)));
        }
    }
    // Blobs written since shortly before the last entry: a power loss can leave one of
    // them short (its batch never committed). Older blobs were synced long ago.
    let horizon = journal
        .last_time()
        .await?
        .map(|t| t - chrono::Duration::minutes(10));
    let mut torn_blobs = Vec::new();
    let mut list = store.list(&keys::blobs_prefix());
    while let Some(meta) = list.try_next().await? {
        let KeyKind::Blob { sha256 } = keys::classify(&meta.location) else {
            continue;
        };
        if horizon.is_some_and(|h| meta.last_modified < h)
            || journal.ledger().is_recovered_blob(&sha256)
            || (!sole_writer && now - meta.last_modified < grace)
        {
            continue;
        }
        if let Some(t) = torn_blob(store, &sha256).await? {
            torn_blobs.push(t);
        }
    }
    if found.is_empty() && torn_keys.is_empty() && torn_blobs.is_empty() {
        return Ok(out);
    }
    // A writer that was not alone may have committed some of them meanwhile.
    journal.sync_ledger().await?;
    let mut subjects = Vec::new();
    for (kind, id, rev, key) in found {
        if journal.ledger().is_committed(kind, &id, rev) {
            continue;
        }
        let Some(bytes) = store.get_opt(&key).await? else {
            continue;
        };
        let digest = codec::sha256_hex(&bytes);
        let decoded = decode_content(kind, &id, rev, &bytes);
        subjects.push(Subject {
            kind: kind.subject().to_string(),
            id: id.clone(),
            rev: Some(rev),
            digest: Some(digest.clone()),
        });
        out.recorded.push(Leftover {
            kind: kind.subject().to_string(),
            id,
            rev,
            key: key.to_string(),
            digest,
            decodable: decoded.is_some(),
        });
    }
    for sha in torn_blobs {
        subjects.push(Subject::about("blob", &sha));
        out.torn_blobs.push(sha);
    }
    for (owner, kind, id, digest) in torn_keys {
        if journal.ledger().revisions(kind, &id).is_some() {
            continue;
        }
        subjects.push(Subject {
            kind: "key".into(),
            id: owner.clone(),
            rev: None,
            digest: Some(digest),
        });
        out.torn_keys.push(owner);
    }
    if subjects.is_empty() {
        return Ok(out);
    }
    for chunk in subjects.chunks(SUBJECTS_PER_ENTRY) {
        let n = chunk.iter().filter(|s| s.rev.is_some()).count();
        let e: JournalEntry = journal
            .append(Draft {
                actor: actor.to_string(),
                action: RECOVERY_ACTION.into(),
                subjects: chunk.to_vec(),
                payload_digest: None,
                detail: Some(format!(
                    "{n} revision(s) written before a crash and never committed: never \
                     acknowledged, set aside, not part of the archive"
                )),
            })
            .await?;
        out.entries.push(e.seq);
    }
    if !out.recorded.is_empty() {
        tracing::warn!(
            leftovers = out.recorded.len(),
            torn_blobs = out.torn_blobs.len(),
            "crash recovery: never-committed writes recorded and set aside"
        );
    }
    Ok(out)
}

/// What recovery reads of a leftover revision, whatever its kind: the head every
/// revision format has (`format`, `id`, `rev`) and a record's content blob. (Recovery
/// sits below the kinds' own types; `verify` decodes each kind in full.)
#[derive(serde::Deserialize)]
struct Head {
    #[allow(dead_code)]
    format: u32,
    id: String,
    rev: u32,
    #[serde(default)]
    content: Option<HeadContent>,
}

#[derive(serde::Deserialize)]
struct HeadContent {
    sha256: String,
}

/// `None`: the bytes are not a whole revision of `id`/`rev` (a torn write); `Some(sha)`:
/// they are, and a record names its content blob.
fn decode_content(kind: ObjectKind, id: &str, rev: u32, bytes: &[u8]) -> Option<Option<String>> {
    let h: Head = rmp_serde::from_slice(bytes).ok()?;
    if h.id != id || h.rev != rev {
        return None;
    }
    Some(match kind {
        ObjectKind::Record => h.content.map(|c| c.sha256),
        _ => None,
    })
}

/// The blob `sha` if it exists and its bytes do not hash to its name.
async fn torn_blob(store: &Store, sha: &str) -> Result<Option<String>> {
    let key = keys::blob(sha);
    if !store.exists(&key).await? {
        return Ok(None);
    }
    match store.sha256_of(&key).await {
        Ok((found, _)) if found == sha => Ok(None),
        _ => Ok(Some(sha.to_string())),
    }
}

/// A writer's session: its lock, held until the session ends (or the process does).
#[derive(Debug)]
pub struct WriterSession {
    pub recovery: Recovery,
    lock: std::sync::Mutex<Option<WriterLock>>,
}

impl WriterSession {
    /// Ends the session cleanly (an orderly shutdown, a command that ran to its end),
    /// once nothing is written any more: when every revision this process wrote is
    /// committed and no other writer is alive, the next writer to start need not look
    /// for leftovers (see `store::WriterLock`). Returns whether that mark was left.
    pub async fn end(&self, store: &Store, journal: &Journal) -> Result<bool> {
        let seq = journal.head_seq().await?;
        let head = (seq, journal.hash_of(seq).await?);
        let lock = self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut lock) = lock else {
            return Ok(false);
        };
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            store.end_writing(|unsettled| {
                if unsettled > 0 {
                    tracing::warn!(
                        revisions = unsettled,
                        "revisions written without an entry, or key destructions not finished: the next start looks for them"
                    );
                }
                lock.end((unsettled == 0).then_some(head))
            })
        })
        .await
        .map_err(|e| crate::error::Error::Internal(format!("lock task: {e}")))?
    }
}

/// Starts a writer: takes the writer lock, records crash leftovers (unless the last
/// writer ended cleanly at the journal's head, alone: then there are none), keeps the
/// lock.
pub async fn start_writer(
    store: &Store,
    journal: &Journal,
    clock: &Arc<dyn Clock>,
    actor: &str,
) -> Result<WriterSession> {
    let lock = store.writer_lock().await?;
    let clean = match lock.clean_end() {
        Some((seq, hash)) => {
            seq == journal.head_seq().await? && journal.hash_of(seq).await? == hash
        }
        None => false,
    };
    let recovery = if clean {
        journal.sync_ledger().await?;
        tracing::debug!("the last writer ended cleanly at the journal's head: no leftovers");
        Recovery {
            clean_start: true,
            ..Recovery::default()
        }
    } else {
        recover(store, journal, clock, actor, lock.sole()).await?
    };
    Ok(WriterSession {
        recovery,
        lock: std::sync::Mutex::new(Some(lock.begin().await?)),
    })
}
