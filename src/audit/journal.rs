//! The append-only, hash-chained journal (DESIGN §2.2).
//!
//! Entry `n` lives at `journal/<n>.mpk` and is written with a conditional create: whoever
//! creates the key first owns sequence number `n`, so the create is both the commit point
//! and the lock. A writer that loses the race reads the winner's entry, links to it, and
//! tries `n + 1`. Several processes (or server nodes) can therefore share one store.
//!
//! `hash = sha256(prev_hash ‖ body)`, where `body` is the canonical MessagePack encoding of
//! every field except `hash` itself (see `schemas/journal-entry.md`).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::codec::{self, ZERO_HASH};
use crate::store::{Created, Store, keys};

use super::ledger::Ledger;

/// Current format version of [`JournalEntry`].
pub const FORMAT: u32 = 1;

/// What an entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `record`, `party`, `token`, …
    pub kind: String,
    pub id: String,
    /// The revision the entry made or touched, where there is one.
    pub rev: Option<u32>,
    /// SHA-256 (hex) of that revision's bytes, in an entry that wrote several revisions
    /// at once (a group commit). Absent otherwise, and then not encoded at all, so that
    /// entries written before the field existed keep their bytes and hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Subject {
    pub fn record(id: &str, rev: u32) -> Subject {
        Subject {
            kind: "record".into(),
            id: id.to_string(),
            rev: Some(rev),
            digest: None,
        }
    }

    /// A subject without a revision (reads, refusals, acts on a whole object).
    pub fn about(kind: &str, id: &str) -> Subject {
        Subject {
            kind: kind.to_string(),
            id: id.to_string(),
            rev: None,
            digest: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub format: u32,
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub actor: String,
    /// Dotted action name: `record.create`, `record.amend`, `record.recover`, …
    pub action: String,
    pub subjects: Vec<Subject>,
    /// SHA-256 (hex) of the object the action wrote (e.g. the revision's bytes).
    pub payload_digest: Option<String>,
    /// Short human-readable detail.
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Every field of an entry but `hash`, in the same order: the bytes the hash covers.
#[derive(Serialize)]
struct EntryBody<'a> {
    format: u32,
    seq: u64,
    time: &'a DateTime<Utc>,
    actor: &'a str,
    action: &'a str,
    subjects: &'a [Subject],
    payload_digest: &'a Option<String>,
    detail: &'a Option<String>,
    prev_hash: &'a str,
}

impl JournalEntry {
    fn body_bytes(&self) -> Result<Vec<u8>> {
        codec::encode(&EntryBody {
            format: self.format,
            seq: self.seq,
            time: &self.time,
            actor: &self.actor,
            action: &self.action,
            subjects: &self.subjects,
            payload_digest: &self.payload_digest,
            detail: &self.detail,
            prev_hash: &self.prev_hash,
        })
    }

    /// The hash this entry should carry, recomputed from its content.
    pub fn compute_hash(&self) -> Result<String> {
        if !codec::is_sha256_hex(&self.prev_hash) {
            return Err(Error::CorruptObject {
                key: keys::journal(self.seq).to_string(),
                reason: "prev_hash is not a SHA-256 hex string".into(),
            });
        }
        codec::chain_hash(&self.prev_hash, &self.body_bytes()?)
    }

    /// The revisions this entry wrote, each with the SHA-256 of its bytes: the one subject
    /// of an entry with a `payload_digest`, or every subject carrying a `digest` (a group
    /// commit). Reads, refusals and other acts wrote none.
    ///
    /// A recovery entry wrote nothing: its subjects are leftovers it set aside.
    pub fn written(&self) -> Vec<(&Subject, u32, &str)> {
        if self.action == super::ledger::RECOVERY_ACTION {
            return vec![];
        }
        match (self.subjects.as_slice(), &self.payload_digest) {
            ([s], Some(d)) => s.rev.map(|r| vec![(s, r, d.as_str())]).unwrap_or_default(),
            _ => self
                .subjects
                .iter()
                .filter_map(|s| Some((s, s.rev?, s.digest.as_deref()?)))
                .collect(),
        }
    }

    /// What a recovery entry set aside (nothing for any other entry).
    pub fn set_aside(&self) -> Vec<SetAside<'_>> {
        if self.action != super::ledger::RECOVERY_ACTION {
            return vec![];
        }
        self.subjects
            .iter()
            .filter_map(|s| match (keys::ObjectKind::from_subject(&s.kind), s.rev) {
                (Some(kind), Some(rev)) => Some(SetAside::Revision(kind, &s.id, rev)),
                _ if s.kind == "blob" => Some(SetAside::Blob(&s.id)),
                _ if s.kind == "key" => Some(SetAside::Key(&s.id)),
                _ => None,
            })
            .collect()
    }

    pub fn decode(key: &str, bytes: &[u8]) -> Result<JournalEntry> {
        let e: JournalEntry = codec::decode(key, bytes)?;
        if e.format != FORMAT {
            return Err(Error::CorruptObject {
                key: key.to_string(),
                reason: format!("unsupported journal format {}", e.format),
            });
        }
        Ok(e)
    }
}

/// A never-committed object a recovery entry recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAside<'a> {
    Revision(keys::ObjectKind, &'a str, u32),
    /// A torn blob, by SHA-256.
    Blob(&'a str),
    /// A torn data key file, by key id.
    Key(&'a str),
}

/// Every this many entries the journal writes a checkpoint of its head.
pub const CHECKPOINT_EVERY: u64 = 1000;

/// A checkpoint (format 1): the hash of entry `seq`, which by the chain commits to every
/// entry before it. Verification finds a journal cut short or rewritten before the latest
/// checkpoint. With a signing key (`--signing-key`) every checkpoint is signed
/// ([`super::signing`]); anchored outside the store (`akte anchor`), a signed checkpoint
/// also finds a journal cut back by someone who controls the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub format: u32,
    pub seq: u64,
    pub hash: String,
    pub time: DateTime<Utc>,
    /// Absent on an unsigned checkpoint (and then not encoded at all, so that checkpoints
    /// written before signing existed keep their bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<super::signing::CheckpointSignature>,
    /// An RFC 3161 timestamp token (DER, base64) over [`Checkpoint::message`], when a
    /// TSA is configured (`--tsa`). Stored beside the checkpoint
    /// (`checkpoints/<seq>.tst`), never inside it; carried in anchors and exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

impl Checkpoint {
    /// The bytes its signature covers.
    pub fn message(&self) -> Vec<u8> {
        super::signing::message(self.seq, &self.hash, self.time)
    }

    /// The timestamp token's bytes, if any (`Err` when it is not base64).
    pub fn timestamp_der(&self) -> Option<std::result::Result<Vec<u8>, String>> {
        use base64::Engine;
        self.timestamp.as_ref().map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|e| format!("timestamp token not base64 ({e})"))
        })
    }

    /// Checks a timestamp token (DER) against this checkpoint's statement and the
    /// `trusted` TSA certificates.
    pub fn check_token(
        &self,
        der: &[u8],
        trusted: &[rustls_pki_types::CertificateDer<'_>],
    ) -> std::result::Result<super::timestamp::Stamp, String> {
        super::timestamp::check(der, &super::timestamp::imprint(&self.message()), trusted)
    }

    /// [`Checkpoint::check_token`] for the token it carries; `None` without one.
    pub fn stamp_check(
        &self,
        trusted: &[rustls_pki_types::CertificateDer<'_>],
    ) -> Option<std::result::Result<super::timestamp::Stamp, String>> {
        Some(
            self.timestamp_der()?
                .and_then(|d| self.check_token(&d, trusted)),
        )
    }

    /// `Some(true)` for a valid signature, `Some(false)` for a bad one, `None` unsigned.
    pub fn signature_valid(&self) -> Option<bool> {
        self.signature
            .as_ref()
            .map(|s| super::signing::valid(&self.message(), s))
    }
}

/// An entry to append; the journal fills in sequence, time and the chain.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub actor: String,
    pub action: String,
    pub subjects: Vec<Subject>,
    pub payload_digest: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
struct Head {
    seq: u64,
    hash: String,
    time: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub struct Journal {
    store: Store,
    clock: Arc<dyn Clock>,
    head: Mutex<Option<Head>>,
    /// What the journal committed, for readers (derived; see [`Ledger`]).
    ledger: Ledger,
    /// Serialises ledger syncs; holds when the last completed one started.
    ledger_sync: Mutex<Option<std::time::Instant>>,
    /// The highest head seen (own appends, other processes' found by probes): the next
    /// head search starts from it, so that following a growing journal costs one probe
    /// instead of O(log n), also with several nodes appending.
    known: std::sync::Mutex<Option<Head>>,
    /// The most recent entries read (by sequence number; the lowest go first).
    recent: std::sync::Mutex<std::collections::BTreeMap<u64, JournalEntry>>,
    /// Signs checkpoints, once set.
    signer: std::sync::OnceLock<Arc<super::signing::Signer>>,
    /// Timestamps checkpoints, once set.
    tsa: std::sync::OnceLock<Arc<super::timestamp::Tsa>>,
    /// Where the head is anchored (the server's `--anchor-to`), for the procedure
    /// documentation.
    anchor_targets: std::sync::OnceLock<Vec<super::anchor::Target>>,
}

fn base64_der(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Gives `cp` its timestamp token: the one stored beside it, else a new one from `tsa`,
/// stored create-only (a token another writer stored first is the one kept).
async fn stamp(store: &Store, tsa: &super::timestamp::Tsa, cp: &mut Checkpoint) -> Result<()> {
    let key = keys::checkpoint_stamp(cp.seq);
    if let Some(old) = store.get_opt(&key).await? {
        cp.timestamp = Some(base64_der(&old));
        return Ok(());
    }
    let (token, _) = tsa.stamp(&cp.message()).await?;
    let token = match store.put_new(&key, Bytes::from(token.clone())).await? {
        Created::New => token,
        Created::Existed => store.get(&key).await?.to_vec(),
    };
    cp.timestamp = Some(base64_der(&token));
    Ok(())
}

/// Entries kept in the read cache: the followers read new entries within seconds of
/// each other, and a group commit's entry (256 subjects) is some 30 KB.
const RECENT_ENTRIES: usize = 512;

/// A miss (an object the ledger does not know) syncs the ledger at most this often, so
/// that requests for made-up ids cannot turn into a stream of journal probes.
const MISS_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// The key store asks the journal which keys a journaled erasure or disposal destroyed.
impl crate::store::crypt::Destroyed for Journal {
    fn is_destroyed<'a>(
        &'a self,
        id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + Send + 'a>> {
        Box::pin(async move {
            // Several nodes: a party's erasure on another node counts from the moment it
            // is journaled, not from this node's next look — one probe, shared by the
            // reads that arrive while it runs. (Records' metadata keys, destroyed by a
            // disposal, follow with the ledger: within a second.)
            if self.store.shared() && !id.starts_with("record-") {
                self.sync_ledger_since(std::time::Instant::now()).await?;
            }
            Ok(self.ledger_synced().await?.is_key_destroyed(id))
        })
    }
}

impl Journal {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Journal {
        Journal {
            store,
            clock,
            head: Mutex::new(None),
            ledger: Ledger::default(),
            ledger_sync: Mutex::new(None),
            known: std::sync::Mutex::new(None),
            recent: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            signer: std::sync::OnceLock::new(),
            tsa: std::sync::OnceLock::new(),
            anchor_targets: std::sync::OnceLock::new(),
        }
    }

    /// Keeps the ledger in the redb file `path` (page cache `cache` bytes) from the first
    /// sync on: a start then reads only the entries after the one the file applied.
    /// (Derived state: a file of another journal, or one that cannot be read, is
    /// replaced; one another process holds leaves this one reading into memory.)
    pub fn persist_ledger_at(&self, path: std::path::PathBuf, cache: usize) {
        *self.ledger.file.lock().unwrap_or_else(|e| e.into_inner()) = Some((path, cache));
    }

    /// Makes what the ledger applied durable (at shutdown).
    pub fn flush_ledger(&self) -> Result<()> {
        self.ledger.write().flush()
    }

    /// Before the first sync: opens the ledger's file, if one is set, and takes what it
    /// applied when that is a prefix of this journal (checked by the hash of the entry
    /// it applied last).
    async fn open_ledger(&self, head: u64) -> Result<()> {
        if self.ledger.read().loaded {
            return Ok(());
        }
        let Some((path, cache)) = self
            .ledger
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return Ok(());
        };
        let p = path.clone();
        let opened = tokio::task::spawn_blocking(move || super::ledger::open_file(&p, cache))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .unwrap_or_else(|e| {
                tracing::warn!("{e}; this process keeps the ledger in memory");
                None
            });
        let Some(opened) = opened else {
            tracing::info!(
                "ledger: {} is held by another process; this one reads the journal into \
                 memory",
                path.display()
            );
            return Ok(());
        };
        let prefix = match &opened.applied {
            Some((seq, hash)) => self.holds_prefix(*seq, hash, head).await?,
            None => false,
        };
        if prefix {
            self.ledger.adopt(opened.db, true)?;
            tracing::info!(
                "ledger: read from {} up to entry {}",
                path.display(),
                self.ledger.read().seq
            );
        } else {
            if opened.applied.is_some() {
                tracing::warn!(
                    "ledger: {} is of another journal; rebuilt from the journal",
                    path.display()
                );
            }
            self.ledger.adopt_empty(opened.db, true)?;
        }
        Ok(())
    }

    /// Whether this journal, whose head is `head`, has entry `seq` with hash `hash` (0:
    /// the empty prefix): what a derived file that applied up to there can trust.
    pub async fn holds_prefix(&self, seq: u64, hash: &str, head: u64) -> Result<bool> {
        if seq > head {
            return Ok(false);
        }
        Ok(seq == 0 || self.read(seq).await?.is_some_and(|e| e.hash == hash))
    }

    /// The hash of entry `seq` (empty for 0, or for an entry that does not exist).
    pub async fn hash_of(&self, seq: u64) -> Result<String> {
        if seq == 0 {
            return Ok(String::new());
        }
        Ok(self.read(seq).await?.map(|e| e.hash).unwrap_or_default())
    }

    /// The ledger as it stands; call [`Journal::ledger_synced`] first for one that has
    /// read the journal at least once.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The ledger, loaded from the journal if this is the first use.
    pub async fn ledger_synced(&self) -> Result<&Ledger> {
        if !self.ledger.read().loaded {
            self.sync_ledger().await?;
        }
        Ok(&self.ledger)
    }

    /// Brings the ledger up to the journal's head (entries of every process). Returns
    /// the sequence number it reached.
    pub async fn sync_ledger(&self) -> Result<u64> {
        let mut last = self.ledger_sync.lock().await;
        let started = std::time::Instant::now();
        let head = self.find_head().await?.seq;
        self.open_ledger(head).await?;
        let reached = self.apply_up_to(head).await?;
        self.ledger.write().loaded = true;
        *last = Some(started);
        Ok(reached)
    }

    /// Syncs the ledger unless a sync that started at or after `arrived` has finished
    /// (single flight: callers that wait for a running sync then reuse the next one).
    /// After it, the ledger holds every entry appended before `arrived`, by any node.
    pub async fn sync_ledger_since(&self, arrived: std::time::Instant) -> Result<()> {
        let mut last = self.ledger_sync.lock().await;
        if last.is_some_and(|t| t >= arrived) && self.ledger.read().loaded {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let head = self.find_head().await?.seq;
        self.open_ledger(head).await?;
        self.apply_up_to(head).await?;
        self.ledger.write().loaded = true;
        *last = Some(started);
        Ok(())
    }

    /// Syncs the ledger after a miss, unless it was synced a moment ago.
    pub async fn sync_ledger_on_miss(&self) -> Result<()> {
        let recent = self
            .ledger_sync
            .lock()
            .await
            .is_some_and(|t| t.elapsed() < MISS_SYNC_INTERVAL);
        if !recent || !self.ledger.read().loaded {
            self.sync_ledger().await?;
        }
        Ok(())
    }

    /// Committed revisions of one object, ascending (after a sync when the ledger does
    /// not know it yet); `None` when no journal entry committed any.
    pub async fn committed(&self, kind: keys::ObjectKind, id: &str) -> Result<Option<Vec<u32>>> {
        let ledger = self.ledger_synced().await?;
        if let Some(r) = ledger.revisions(kind, id) {
            return Ok(Some(r));
        }
        self.sync_ledger_on_miss().await?;
        Ok(self.ledger.revisions(kind, id))
    }

    /// The newest `audit.verify` entry, if any (kept by the ledger: no journal scan).
    pub async fn last_verify(&self) -> Result<Option<JournalEntry>> {
        match self.ledger_synced().await?.last_verify() {
            0 => Ok(None),
            seq => self.read(seq).await,
        }
    }

    /// The id of every committed object of `kind`, in id order.
    pub async fn committed_ids(&self, kind: keys::ObjectKind) -> Result<Vec<String>> {
        Ok(self
            .ledger_synced()
            .await?
            .latest_of_kind(kind)
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Reads and applies entries after the ledger's sequence up to `target`.
    async fn apply_up_to(&self, target: u64) -> Result<u64> {
        loop {
            let seq = self.ledger.read().seq;
            if seq >= target {
                return Ok(seq);
            }
            // `target` is a known head: no probe for it per batch.
            let batch = self.range(seq, target.min(seq + 1000)).await?;
            if batch.is_empty() {
                return Ok(seq);
            }
            self.ledger.write().apply_all(&batch)?;
        }
    }

    /// Applies an entry this process just appended (read-your-writes). When other
    /// processes appended in between, their entries are read first.
    async fn apply_own(&self, e: &JournalEntry) {
        if !self.ledger.read().loaded {
            return; // the first sync reads it with everything else
        }
        let _serial = self.ledger_sync.lock().await;
        if let Err(err) = self.apply_up_to(e.seq - 1).await {
            tracing::warn!("ledger behind the journal ({err}); the next sync catches up");
            return;
        }
        let mut st = self.ledger.write();
        if st.seq + 1 == e.seq
            && let Err(err) = st.apply(e)
        {
            tracing::warn!("ledger: {err}; the next sync catches up");
        }
    }

    /// Reads entry `seq`, or `None` when there is none. Recent entries come from a
    /// small cache (entries never change): the catalog, the indexer, the ledger and the
    /// Object Lock follower all read each new entry.
    pub async fn read(&self, seq: u64) -> Result<Option<JournalEntry>> {
        if let Some(e) = self
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&seq)
        {
            return Ok(Some(e.clone()));
        }
        let key = keys::journal(seq);
        match self.store.get_opt(&key).await? {
            Some(bytes) => {
                let e = JournalEntry::decode(key.as_ref(), &bytes)?;
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                recent.insert(seq, e.clone());
                while recent.len() > RECENT_ENTRIES {
                    recent.pop_first();
                }
                Ok(Some(e))
            }
            None => Ok(None),
        }
    }

    /// Appends an entry and returns it once it is durable.
    pub async fn append(&self, draft: Draft) -> Result<JournalEntry> {
        if draft.actor.is_empty() || draft.action.is_empty() {
            return Err(Error::invalid(
                "journal entry",
                "actor and action are required",
            ));
        }
        let mut guard = self.head.lock().await;
        // The freshest head known: our last append, or one the followers found since
        // (other nodes' entries) — fewer lost races on a shared store.
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut head = match (guard.take(), known) {
            (Some(h), Some(k)) if k.seq > h.seq => k,
            (Some(h), _) => h,
            (None, _) => self.find_head().await?,
        };
        loop {
            let now = self.clock.now();
            // Journal time never runs backwards, even across nodes with skewed clocks.
            let time = match head.time {
                Some(t) if t > now => t,
                _ => now,
            };
            let mut entry = JournalEntry {
                format: FORMAT,
                seq: head.seq + 1,
                time,
                actor: draft.actor.clone(),
                action: draft.action.clone(),
                subjects: draft.subjects.clone(),
                payload_digest: draft.payload_digest.clone(),
                detail: draft.detail.clone(),
                prev_hash: head.hash.clone(),
                hash: String::new(),
            };
            entry.hash = entry.compute_hash()?;
            let bytes = codec::encode(&entry)?;
            match self
                .store
                .put_new(&keys::journal(entry.seq), Bytes::from(bytes))
                .await
            {
                Ok(Created::New) => {
                    let mine = Head {
                        seq: entry.seq,
                        hash: entry.hash.clone(),
                        time: Some(entry.time),
                    };
                    self.remember(&mine);
                    *guard = Some(mine);
                    self.apply_own(&entry).await;
                    if entry.seq.is_multiple_of(CHECKPOINT_EVERY) {
                        match self.write_checkpoint(&entry).await {
                            Err(e) => {
                                tracing::warn!("checkpoint at {} not written: {e}", entry.seq)
                            }
                            // Timestamped in the background: a slow TSA must not hold
                            // up the writer.
                            Ok(mut cp) => {
                                if let Some(tsa) = self.tsa.get().cloned() {
                                    let store = self.store.clone();
                                    tokio::spawn(async move {
                                        if let Err(e) = stamp(&store, &tsa, &mut cp).await {
                                            tracing::warn!(
                                                "checkpoint at {} not timestamped: {e}",
                                                cp.seq
                                            );
                                        }
                                    });
                                }
                            }
                        }
                    }
                    return Ok(entry);
                }
                Ok(Created::Existed) => {
                    // Another writer took this number: link to the head it (and maybe
                    // more writers) reached, and try the number after it.
                    let theirs = self.read(entry.seq).await?.ok_or_else(|| {
                        Error::Internal(format!("journal entry {} vanished", entry.seq))
                    })?;
                    head = self
                        .find_head_from(Some(Head {
                            seq: theirs.seq,
                            hash: theirs.hash,
                            time: Some(theirs.time),
                        }))
                        .await?;
                    self.remember(&head);
                }
                Err(e) => {
                    // Leave the head unknown so that the next append re-reads it.
                    return Err(e);
                }
            }
        }
    }

    /// A signed checkpoint of `e`, not stored (an export carries it), timestamped when a
    /// TSA is configured; `None` without a signing key. A TSA that fails leaves it
    /// without a timestamp (logged): an export does not wait for a third party.
    pub async fn attest(&self, e: &JournalEntry) -> Option<Checkpoint> {
        self.signer.get()?;
        let mut cp = self.checkpoint_of(e);
        if let Some(tsa) = self.tsa.get() {
            match tsa.stamp(&cp.message()).await {
                Ok((token, _)) => cp.timestamp = Some(base64_der(&token)),
                Err(e) => tracing::warn!("checkpoint of entry {} not timestamped: {e}", cp.seq),
            }
        }
        Some(cp)
    }

    /// Timestamps every checkpoint from now on by `tsa`.
    pub fn set_tsa(&self, tsa: Arc<super::timestamp::Tsa>) {
        let _ = self.tsa.set(tsa);
    }

    /// Records where the head is anchored (for the procedure documentation).
    pub fn set_anchor_targets(&self, targets: Vec<super::anchor::Target>) {
        let _ = self.anchor_targets.set(targets);
    }

    /// Where the head is anchored, as configured.
    pub fn anchor_targets(&self) -> &[super::anchor::Target] {
        self.anchor_targets.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The TSA checkpoints are timestamped by, if any.
    pub fn tsa(&self) -> Option<&super::timestamp::Tsa> {
        self.tsa.get().map(|t| t.as_ref())
    }

    /// The checkpoint of `e`, signed when there is a signer.
    fn checkpoint_of(&self, e: &JournalEntry) -> Checkpoint {
        let mut c = Checkpoint {
            format: 1,
            seq: e.seq,
            hash: e.hash.clone(),
            time: e.time,
            signature: None,
            timestamp: None,
        };
        if let Some(s) = self.signer.get() {
            c.signature = Some(s.sign(&c.message()));
        }
        c
    }

    /// Signs every checkpoint written from now on with `signer`'s key.
    pub fn set_signer(&self, signer: Arc<super::signing::Signer>) {
        let _ = self.signer.set(signer);
    }

    /// The key checkpoints are signed with, if any.
    pub fn signer(&self) -> Option<Arc<super::signing::Signer>> {
        self.signer.get().cloned()
    }

    /// The public key checkpoints are signed with (hex), if any.
    pub fn signing_key(&self) -> Option<String> {
        self.signer.get().map(|s| s.public_hex().to_string())
    }

    /// Writes the checkpoint of `e`, signed when there is a signer. A checkpoint already
    /// there (create-only) is read back instead: what the store holds is the checkpoint.
    async fn write_checkpoint(&self, e: &JournalEntry) -> Result<Checkpoint> {
        let c = self.checkpoint_of(e);
        let key = keys::checkpoint(e.seq);
        match self
            .store
            .put_new(&key, Bytes::from(codec::encode(&c)?))
            .await?
        {
            Created::New => Ok(c),
            Created::Existed => {
                let stored: Checkpoint = codec::decode(key.as_ref(), &self.store.get(&key).await?)?;
                // An unsigned checkpoint of this entry is there already (written before
                // the key was configured): the signed statement stands on its own.
                Ok(if stored.signature.is_none() {
                    c
                } else {
                    stored
                })
            }
        }
    }

    /// Writes a checkpoint of the current head now (`akte checkpoint`, `akte anchor`),
    /// timestamped when a TSA is configured; `None` when the journal is empty. A TSA that
    /// fails is an error after the checkpoint is written.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>> {
        let head = self.find_head().await?;
        let Some(e) = self.read(head.seq).await? else {
            return Ok(None);
        };
        let mut cp = self.write_checkpoint(&e).await?;
        if let Some(tsa) = self.tsa.get() {
            stamp(&self.store, tsa, &mut cp).await?;
        }
        Ok(Some(cp))
    }

    /// Time of the last entry, if any.
    pub async fn last_time(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self.find_head().await?.time)
    }

    /// Sequence number of the last entry (0 for an empty journal).
    pub async fn head_seq(&self) -> Result<u64> {
        Ok(self.find_head().await?.seq)
    }

    /// Finds the last entry: from the highest head seen, one probe when nothing was
    /// appended since, else galloping and bisection (sequence numbers are gap-free, so
    /// existence is monotone); from scratch O(log n) probes.
    async fn find_head(&self) -> Result<Head> {
        let hint = self.known.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let head = self.find_head_from(hint).await?;
        self.remember(&head);
        Ok(head)
    }

    fn remember(&self, h: &Head) {
        let mut k = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if k.as_ref().is_none_or(|o| o.seq < h.seq) {
            *k = Some(h.clone());
        }
    }

    async fn find_head_from(&self, hint: Option<Head>) -> Result<Head> {
        let exists = |seq: u64| {
            let store = self.store.clone();
            async move { store.exists(&keys::journal(seq)).await }
        };
        // (Entries are never deleted: a hint stays an entry. A journal cut short behind
        // a running process's back shows as a gap to its readers and to `verify`.)
        let hint = hint.filter(|h| h.seq > 0);
        let lo = match &hint {
            Some(h) => h.seq,
            None if exists(1).await? => 1,
            None => {
                return Ok(Head {
                    seq: 0,
                    hash: ZERO_HASH.to_string(),
                    time: None,
                });
            }
        };
        if let Some(h) = &hint
            && !exists(h.seq + 1).await?
        {
            return Ok(h.clone());
        }
        let (mut lo, mut step) = (lo, 1u64);
        let mut hi = lo.saturating_add(step);
        while exists(hi).await? {
            lo = hi;
            step = step.saturating_mul(2);
            hi = lo.saturating_add(step);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if exists(mid).await? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if let Some(h) = hint.filter(|h| h.seq == lo) {
            return Ok(h);
        }
        let last = self
            .read(lo)
            .await?
            .ok_or_else(|| Error::Internal(format!("journal entry {lo} vanished")))?;
        Ok(Head {
            seq: last.seq,
            hash: last.hash,
            time: Some(last.time),
        })
    }

    /// Entries after `since`, at most `limit`, in order.
    ///
    /// Whoever has read an entry finds what it committed: the ledger is brought up to
    /// the last entry returned (another node's entry read here is not "unknown" to the
    /// readers of this process a moment later).
    pub async fn entries(&self, since: u64, limit: usize) -> Result<Vec<JournalEntry>> {
        let head = self.find_head().await?.seq;
        let out = self
            .range(since, head.min(since.saturating_add(limit as u64)))
            .await?;
        if let Some(last) = out.last()
            && self.ledger.read().loaded
            && self.ledger.read().seq < last.seq
        {
            let _serial = self.ledger_sync.lock().await;
            self.ledger.write().apply_all(&out)?;
            self.apply_up_to(last.seq).await?;
        }
        Ok(out)
    }

    /// Entries `since + 1 ..= end`, which must exist (gap-free up to a known head).
    async fn range(&self, since: u64, end: u64) -> Result<Vec<JournalEntry>> {
        use futures::StreamExt;
        let reads = futures::stream::iter((since + 1)..=end)
            .map(|seq| async move { (seq, self.read(seq).await) })
            .buffered(16);
        let mut out = Vec::new();
        futures::pin_mut!(reads);
        while let Some((seq, r)) = reads.next().await {
            match r? {
                Some(e) => out.push(e),
                None => {
                    return Err(Error::CorruptObject {
                        key: keys::journal(seq).to_string(),
                        reason: "journal entry missing (gap)".into(),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn draft(n: usize) -> Draft {
        Draft {
            actor: "test".into(),
            action: "test.act".into(),
            subjects: vec![],
            payload_digest: None,
            detail: Some(format!("n={n}")),
        }
    }

    #[tokio::test]
    async fn appends_form_a_chain() {
        let store = Store::open("memory://").unwrap();
        let j = Journal::new(store, Arc::new(SystemClock));
        let a = j.append(draft(1)).await.unwrap();
        let b = j.append(draft(2)).await.unwrap();
        assert_eq!(a.seq, 1);
        assert_eq!(a.prev_hash, ZERO_HASH);
        assert_eq!(b.seq, 2);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.compute_hash().unwrap(), b.hash);
    }

    #[tokio::test]
    async fn two_writers_on_one_store_interleave_without_gaps() {
        let store = Store::open("memory://").unwrap();
        let j1 = Journal::new(store.clone(), Arc::new(SystemClock));
        let j2 = Journal::new(store.clone(), Arc::new(SystemClock));
        for i in 0..20 {
            if i % 3 == 0 {
                j2.append(draft(i)).await.unwrap();
            } else {
                j1.append(draft(i)).await.unwrap();
            }
        }
        let j3 = Journal::new(store, Arc::new(SystemClock));
        assert_eq!(j3.head_seq().await.unwrap(), 20);
        let all = j3.entries(0, 100).await.unwrap();
        for w in all.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
            assert!(w[1].time >= w[0].time);
        }
    }

    #[tokio::test]
    async fn head_is_found_for_many_sizes() {
        let store = Store::open("memory://").unwrap();
        let j = Journal::new(store.clone(), Arc::new(SystemClock));
        for n in 1..=70u64 {
            j.append(draft(n as usize)).await.unwrap();
            let fresh = Journal::new(store.clone(), Arc::new(SystemClock));
            assert_eq!(fresh.head_seq().await.unwrap(), n);
        }
    }
}
