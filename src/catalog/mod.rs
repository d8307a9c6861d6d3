//! The catalog: derived indexes of parties, cases and record summaries that serve the
//! party file, party lists and contact matching without scanning the store.
//!
//! Derived state (DESIGN §2.7): built from the store, kept current by applying every
//! revision this process commits and by tailing the journal for what other processes
//! commit. Deleting it loses nothing. Record summaries — the part that grows with the
//! archive — live in [`disk`]: a redb file beside the search index (the server's), which
//! a start catches up from the journal entry it last applied, or in memory (one-shot
//! commands, tests). Parties and cases are held in memory, rebuilt from the store at
//! every start: their personal data enter only in clear form decrypted with keys that
//! still exist, are never written anywhere in clear, and an erased party is rebuilt
//! without them.

mod disk;
mod queries;
mod state;
mod views;

pub use state::fold;
pub use views::*;

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::RwLock;

use crate::audit::journal::{Journal, JournalEntry};
use crate::case::CaseRevision;
use crate::error::{Error, Result};
use crate::party::{Parties, Party};
use crate::record::RecordRevision;
use crate::store::Store;
use crate::store::keys::{self, ObjectKind};

use state::{Loaded, State, apply};

use disk::{Applied, Disk, Opened};

/// Journal entries applied per write transaction when catching up.
const BATCH_ENTRIES: usize = 1000;
/// Records loaded per write transaction when the record summaries are rebuilt.
const BATCH_RECORDS: usize = 2000;

#[derive(Debug)]
pub struct Catalog {
    store: Store,
    archive: crate::archive::Archive,
    parties: Parties,
    state: RwLock<State>,
    /// The record summaries; `None` until first used.
    disk: std::sync::RwLock<Option<Arc<Disk>>>,
    /// Where the record summaries persist (file, page cache bytes); `None`: in memory.
    file: std::sync::Mutex<Option<(PathBuf, usize)>>,
    /// False until the first rebuild has finished.
    ready: tokio::sync::watch::Sender<bool>,
}

/// A committed revision the catalog cannot read is corruption for `verify` to report; it
/// must not keep every other object from being served.
fn skipped(kind: ObjectKind, e: &Error) {
    tracing::error!("catalog: a committed {} was skipped: {e}", kind.subject());
}

impl Catalog {
    pub fn new(archive: crate::archive::Archive, parties: Parties) -> Catalog {
        Catalog {
            store: archive.store().clone(),
            archive,
            parties,
            state: RwLock::new(State::default()),
            disk: std::sync::RwLock::new(None),
            file: std::sync::Mutex::new(None),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Keeps the record summaries in the redb file `path` with a page cache of `cache`
    /// bytes (from the next rebuild on). Without this they are held in memory.
    pub fn persist_at(&self, path: PathBuf, cache: usize) {
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = Some((path, cache));
    }

    /// Writes record summaries straight into a catalog file at `path`, as having applied
    /// the journal up to entry `seq` (whose hash is `hash`). For read-path benchmarks at
    /// scales whose store would not fit the machine (`benches/party_file.rs`): the file
    /// then holds summaries of records the store does not have, so it is never for a
    /// real data directory. Returns how many rows were written.
    #[doc(hidden)]
    pub fn write_synthetic(
        path: &std::path::Path,
        cache: usize,
        seq: u64,
        hash: &str,
        rows: impl IntoIterator<Item = views::RecordBrief>,
    ) -> Result<u64> {
        let (disk, _) = Disk::open(path, cache)?;
        disk.reset()?;
        let mut n = 0u64;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut b = disk.batch()?;
            for r in rows.by_ref().take(10_000) {
                b.put(&r)?;
                n += 1;
            }
            b.commit(false)?;
        }
        let mut b = disk.batch()?;
        b.applied(&disk::Applied {
            seq,
            hash: hash.to_string(),
        })?;
        b.commit(true)?;
        Ok(n)
    }

    fn current(&self) -> Option<Arc<Disk>> {
        self.disk.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The record summaries, in memory if nothing was opened yet.
    fn disk(&self) -> Result<Arc<Disk>> {
        if let Some(d) = self.current() {
            return Ok(d);
        }
        let mut slot = self.disk.write().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = &*slot {
            return Ok(d.clone());
        }
        let d = Arc::new(Disk::memory()?);
        *slot = Some(d.clone());
        Ok(d)
    }

    /// A read of the record summaries: an error is logged and reads as nothing, like a
    /// record the catalog does not hold (a damaged row has the summaries rewritten at the
    /// next catch-up).
    fn read<T: Default>(&self, f: impl FnOnce(&Disk) -> Result<T>) -> T {
        self.disk().and_then(|d| f(&d)).unwrap_or_else(|e| {
            tracing::error!("catalog: {e}");
            T::default()
        })
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first rebuild is done, at most `timeout`; says whether it is.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let mut rx = self.ready.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| *r)).await,
            Ok(Ok(_))
        )
    }

    /// Builds the catalog: parties and cases from the store; record summaries from their
    /// file where it holds a prefix of this journal (then only the entries beyond are
    /// applied), else from the store. Then applies what the journal holds beyond.
    pub async fn rebuild(&self, journal: &Journal) -> Result<()> {
        // Built from what the journal committed, never from a store listing: a revision
        // no entry names does not exist (DESIGN §2.6).
        let head = journal.sync_ledger().await?;
        let mut state = State {
            seq: head,
            ..Default::default()
        };
        for kind in [ObjectKind::Party, ObjectKind::Case] {
            let latest = journal.ledger().latest_of_kind(kind);
            let mut loaded = futures::stream::iter(latest)
                .map(|(id, rev)| self.load(kind, id, rev))
                .buffered(32);
            while let Some(l) = loaded.next().await {
                match l {
                    Ok(l) => apply(&mut state, l),
                    Err(e @ Error::Store { .. }) => return Err(e),
                    Err(e) => skipped(kind, &e),
                }
            }
        }
        *self.state.write().await = state;
        let disk = self.open_disk(journal, head).await?;
        *self.disk.write().unwrap_or_else(|e| e.into_inner()) = Some(disk);
        self.catch_up(journal).await?;
        self.ready.send_replace(true);
        Ok(())
    }

    /// Opens the record summaries and brings them to `head`: from their file when it
    /// has applied a prefix of this journal, else rebuilt from the store.
    async fn open_disk(&self, journal: &Journal, head: u64) -> Result<Arc<Disk>> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (disk, opened) = match file {
            None => (
                Disk::memory()?,
                Opened::Empty("the catalog is held in memory"),
            ),
            Some((path, cache)) => {
                let p = path.clone();
                let opened = tokio::task::spawn_blocking(move || Disk::open(&p, cache)).await;
                match opened.map_err(|e| Error::Catalog(e.to_string()))? {
                    Ok(d) => d,
                    Err(e) => {
                        // Another process (a running server) holds the file: this one
                        // works from memory.
                        tracing::warn!("catalog: {e}; working from memory");
                        (Disk::memory()?, Opened::Empty("the file is in use"))
                    }
                }
            }
        };
        let disk = Arc::new(disk);
        let from = match opened {
            Opened::At(a) if journal.holds_prefix(a.seq, &a.hash, head).await? => Some(a.seq),
            Opened::At(a) => {
                tracing::warn!(
                    "catalog: the file applied entry {} of another journal (this one's \
                     head is {head}); rebuilt from the journal",
                    a.seq
                );
                disk.reset()?;
                None
            }
            Opened::Empty(why) => {
                if disk.path().is_some() {
                    tracing::info!("catalog: record summaries rebuilt from the store ({why})");
                }
                None
            }
        };
        let started = std::time::Instant::now();
        match from {
            Some(seq) => {
                if disk.path().is_some() {
                    tracing::info!("catalog: catching up from entry {seq} to {head}");
                }
                self.apply_entries(journal, &disk, seq, head, false).await?
            }
            None => self.load_records(journal, &disk, head).await?,
        }
        if disk.path().is_some() {
            tracing::info!(
                "catalog: caught up to entry {head} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(disk)
    }

    /// Loads the latest revision of every committed record into `disk`, as of journal
    /// entry `head` (and clears a mark of damage).
    async fn load_records(&self, journal: &Journal, disk: &Arc<Disk>, head: u64) -> Result<()> {
        let latest = journal.ledger().latest_of_kind(ObjectKind::Record);
        let mut loaded = futures::stream::iter(latest)
            .map(|(id, rev)| self.load(ObjectKind::Record, id, rev))
            .buffered(32);
        // Loaded first, written after: a write transaction is never held across an await
        // (another task's write would block its thread waiting for it).
        let mut briefs = Vec::with_capacity(BATCH_RECORDS);
        while let Some(l) = loaded.next().await {
            match l {
                Ok(Loaded::Record(r)) => briefs.push(*r),
                Ok(_) => {}
                Err(e @ Error::Store { .. }) => return Err(e),
                Err(e) => skipped(ObjectKind::Record, &e),
            }
            if briefs.len() == BATCH_RECORDS {
                let mut batch = disk.batch()?;
                for r in briefs.drain(..) {
                    batch.put(&r)?;
                }
                batch.commit(false)?;
            }
        }
        let applied = Applied {
            seq: head,
            hash: journal.hash_of(head).await?,
        };
        let mut batch = disk.batch()?;
        for r in briefs {
            batch.put(&r)?;
        }
        batch.applied(&applied)?;
        batch.repaired()?;
        commit(batch, true).await
    }

    /// Applies the records written by entries `since+1..=until` to `disk` (and, with
    /// `state`, parties and cases to the state), recording how far it got.
    async fn apply_entries(
        &self,
        journal: &Journal,
        disk: &Arc<Disk>,
        since: u64,
        until: u64,
        state: bool,
    ) -> Result<()> {
        let mut seq = since;
        while seq < until {
            let entries = journal.entries(seq, BATCH_ENTRIES).await?;
            let Some(last) = entries.last() else { break };
            let (last_seq, last_hash) = (last.seq, last.hash.clone());
            let mut briefs = Vec::new();
            for e in entries {
                for (s, rev, _) in e.written() {
                    let Some(kind) = ObjectKind::from_subject(&s.kind) else {
                        continue;
                    };
                    if kind != ObjectKind::Record && !state {
                        continue;
                    }
                    match self.load(kind, s.id.clone(), rev).await {
                        Ok(Loaded::Record(r)) => briefs.push(*r),
                        Ok(l) => apply(&mut *self.state.write().await, l),
                        Err(e @ Error::Store { .. }) => return Err(e),
                        Err(e) => skipped(kind, &e),
                    }
                }
            }
            let mut batch = disk.batch()?;
            for r in &briefs {
                batch.put(r)?;
            }
            batch.applied(&Applied {
                seq: last_seq,
                hash: last_hash,
            })?;
            commit(batch, disk.path().is_some()).await?;
            if !state && disk.path().is_some() {
                tracing::info!("catalog: applied entries up to {last_seq}");
            }
            seq = last_seq;
            if state {
                self.state.write().await.seq = seq;
            }
        }
        Ok(())
    }

    async fn load(&self, kind: ObjectKind, id: String, rev: u32) -> Result<Loaded> {
        if !matches!(
            kind,
            ObjectKind::Record | ObjectKind::Party | ObjectKind::Case
        ) {
            return Ok(Loaded::Nothing);
        }
        let key = keys::revision(kind, &id, rev);
        let bytes = self.store.get(&key).await?;
        Ok(match kind {
            ObjectKind::Record => Loaded::Record(Box::new(RecordBrief::from(
                &self
                    .archive
                    .open_meta(RecordRevision::decode(key.as_ref(), &bytes)?)
                    .await?,
            ))),
            ObjectKind::Party => {
                let r = crate::party::PartyRevision::decode(key.as_ref(), &bytes)?;
                Loaded::Party(Box::new(self.parties.open(&r).await?))
            }
            ObjectKind::Case => Loaded::Case(Box::new(CaseRevision::decode(key.as_ref(), &bytes)?)),
            ObjectKind::Token | ObjectKind::Hold | ObjectKind::Disposal => Loaded::Nothing,
        })
    }

    /// Applies journal entries written since the last look (by any process).
    pub async fn catch_up(&self, journal: &Journal) -> Result<()> {
        if self.current().is_some_and(|d| d.take_damaged()) {
            // Every summary is written again over the damaged ones (readers keep being
            // served meanwhile).
            let disk = self.disk()?;
            let head = journal.sync_ledger().await?;
            self.load_records(journal, &disk, head).await?;
            tracing::warn!(
                "catalog: a record summary was damaged; every summary was written again \
                 from the store"
            );
        }
        let since = self.state.read().await.seq;
        let head = journal.head_seq().await?;
        if head <= since {
            return Ok(());
        }
        let disk = self.disk()?;
        self.apply_entries(journal, &disk, since, head, true).await
    }

    /// Enters a revision this process committed (its entry is applied again when the
    /// journal is caught up: a summary never replaces a later revision's).
    pub async fn put_record(&self, r: &RecordRevision) {
        let put = self.disk().and_then(|d| {
            let mut b = d.batch()?;
            b.put(&RecordBrief::from(r))?;
            b.commit(false)
        });
        if let Err(e) = put {
            tracing::error!("catalog: record {} not entered: {e}", r.id);
        }
    }

    /// Enters the records of a group commit (`Archive::commit_staged`) in one write, the
    /// revisions `entry` journaled and nothing else. When the catalog had applied every
    /// entry before it, the entry counts as applied too, so that the next start does not
    /// read these revisions again (a bulk import would otherwise have all of its records
    /// read back at the next start). Otherwise (another process's entries in between)
    /// the entry is applied again when the journal is caught up.
    pub async fn put_committed(&self, entry: &JournalEntry, revisions: &[&RecordRevision]) {
        let exactly = entry.subjects.len() == revisions.len()
            && entry
                .subjects
                .iter()
                .zip(revisions)
                .all(|(s, r)| s.kind == "record" && s.id == r.id && s.rev == Some(r.rev));
        let mut state = self.state.write().await;
        let advance = exactly && state.seq + 1 == entry.seq;
        let put = self.disk().and_then(|d| {
            let mut b = d.batch()?;
            for r in revisions {
                b.put(&RecordBrief::from(*r))?;
            }
            if advance {
                b.applied(&Applied {
                    seq: entry.seq,
                    hash: entry.hash.clone(),
                })?;
            }
            b.commit(false)
        });
        match put {
            Ok(()) if advance => state.seq = entry.seq,
            Ok(()) => {}
            Err(e) => tracing::error!(
                "catalog: the records of entry {} not entered: {e}",
                entry.seq
            ),
        }
    }

    /// Makes what was applied durable (at shutdown; a crash before only means more to
    /// catch up at the next start).
    pub async fn flush(&self) -> Result<()> {
        let Some(d) = self.current() else {
            return Ok(());
        };
        if d.path().is_none() {
            return Ok(());
        }
        commit(d.batch()?, true).await
    }

    pub async fn put_party(&self, p: &Party) {
        self.state.write().await.put_party(PartyBrief::from(p));
    }

    pub async fn put_case(&self, c: &CaseRevision) {
        self.state.write().await.put_case(c.clone());
    }
}

/// Commits `batch`; a durable commit waits for the disk off the async workers.
async fn commit(batch: disk::Batch, durable: bool) -> Result<()> {
    if !durable {
        return batch.commit(false);
    }
    tokio::task::spawn_blocking(move || batch.commit(true))
        .await
        .map_err(|e| Error::Catalog(e.to_string()))?
}
