//! The catalog's record summaries and their indexes, kept on disk in a `redb` file (or in
//! memory, for one-shot tools and tests): the part of the catalog that grows with the
//! number of records. Memory is redb's page cache, bounded by the configured size.
//!
//! Derived state (DESIGN §2.7): the file says which journal entry it has applied up to
//! (sequence number and that entry's hash), so that a start catches up from there only;
//! a file of another format, of another journal (the hash at its sequence differs), or
//! that redb cannot open is rebuilt from the journal. Every row carries a checksum; a row
//! that fails it marks the file for a rebuild at the next start.
//!
//! Record titles and message ids are kept here in clear, as in the search index (the
//! other derived state that holds record text): disposal replaces a record's row with its
//! tombstone's, which has neither.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::views::{LinkBrief, RecordBrief, RetentionBrief};
use crate::error::{Error, Result};

/// The layout of the file; another value is rebuilt. 2: rows by party (`party_rows`)
/// instead of a party → id index. 3: rows carry the record's retention.
pub(super) const FORMAT: u64 = 3;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// (party, record id) → the record's row, a copy of the one in `records`: a party's
/// summaries lie side by side, so its file is one range read, not a lookup per record.
const PARTY_ROWS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("party_rows");
const BY_CASE: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("by_case");
const BY_SHA: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("by_sha");
const BY_MESSAGE_ID: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("by_message_id");
const BY_PARENT: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("by_parent");

/// The secondary indexes a record id is found by.
#[derive(Debug, Clone, Copy)]
pub(super) enum By {
    Party,
    Case,
    Sha,
    MessageId,
    Parent,
}

/// The indexes kept as id multimaps (a party's ids are the keys of `party_rows`).
const MULTI: [MultimapTableDefinition<&str, &str>; 4] = [BY_CASE, BY_SHA, BY_MESSAGE_ID, BY_PARENT];

impl By {
    /// The id multimap of this index; `None` for parties (the keys of `party_rows`).
    fn table(self) -> Option<MultimapTableDefinition<'static, &'static str, &'static str>> {
        match self {
            By::Party => None,
            By::Case => Some(BY_CASE),
            By::Sha => Some(BY_SHA),
            By::MessageId => Some(BY_MESSAGE_ID),
            By::Parent => Some(BY_PARENT),
        }
    }
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Catalog(e.to_string())
}

/// What the file has applied: entries 1..=seq of the journal whose entry `seq` has `hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Applied {
    pub seq: u64,
    pub hash: String,
}

/// A record summary as stored: every field of [`RecordBrief`] the catalog keeps.
#[derive(Serialize, Deserialize)]
struct Row {
    id: String,
    rev: u32,
    class: String,
    title: String,
    date: NaiveDate,
    archived_at: DateTime<Utc>,
    media_type: String,
    size: u64,
    parties: Vec<(String, String, Option<String>)>,
    cases: Vec<String>,
    sha256: String,
    message_id: Option<String>,
    parent: Option<String>,
    thread_key: Option<u64>,
    retention: RetentionBrief,
}

/// Bytes of a row: 8 bytes of SHA-256 over the MessagePack that follows.
fn encode(r: &RecordBrief) -> Result<Vec<u8>> {
    let row = Row {
        id: r.id.clone(),
        rev: r.rev,
        class: r.class.clone(),
        title: r.title.clone(),
        date: r.date,
        archived_at: r.archived_at,
        media_type: r.media_type.clone(),
        size: r.size,
        parties: r
            .parties
            .iter()
            .map(|l| (l.party.clone(), l.role.clone(), l.reason.clone()))
            .collect(),
        cases: r.cases.clone(),
        sha256: r.sha256.clone(),
        message_id: r.message_id.clone(),
        parent: r.parent.clone(),
        thread_key: r.thread_key,
        retention: r.retention.clone(),
    };
    let body = rmp_serde::to_vec(&row).map_err(err)?;
    let mut out = sha2::Sha256::digest(&body)[..8].to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode(id: &str, bytes: &[u8]) -> Result<RecordBrief> {
    let damaged = || Error::Catalog(format!("the summary of record {id} fails its checksum"));
    if bytes.len() < 8 || sha2::Sha256::digest(&bytes[8..])[..8] != bytes[..8] {
        return Err(damaged());
    }
    let row: Row = rmp_serde::from_slice(&bytes[8..]).map_err(|_| damaged())?;
    Ok(RecordBrief {
        id: row.id,
        rev: row.rev,
        class: row.class,
        title: row.title,
        date: row.date,
        archived_at: row.archived_at,
        media_type: row.media_type,
        size: row.size,
        parties: row
            .parties
            .into_iter()
            .map(|(party, role, reason)| LinkBrief {
                party,
                role,
                reason,
            })
            .collect(),
        cases: row.cases,
        sha256: row.sha256,
        message_id: row.message_id,
        parent: row.parent,
        variant_of: None,
        direction: None,
        thread_key: row.thread_key,
        thread: None,
        retention: row.retention,
    })
}

/// The multimap keys of a record summary (its parties are in `party_rows`).
fn index_keys(r: &RecordBrief) -> Vec<(By, &str)> {
    let mut v: Vec<(By, &str)> = r.cases.iter().map(|c| (By::Case, &**c)).collect();
    if !r.sha256.is_empty() {
        v.push((By::Sha, &r.sha256));
    }
    if let Some(m) = &r.message_id {
        v.push((By::MessageId, m));
    }
    if let Some(p) = &r.parent {
        v.push((By::Parent, p));
    }
    v
}

#[derive(Debug)]
pub(super) struct Disk {
    db: Database,
    /// The file, `None` in memory.
    path: Option<PathBuf>,
    /// A row read since the last [`Disk::take_damaged`] failed its checksum.
    damaged: AtomicBool,
}

/// How an opened file stands.
#[derive(Debug)]
pub(super) enum Opened {
    /// Applied up to here: catch up from this entry on (after checking its hash).
    At(Applied),
    /// New, or of another format, or damaged: rebuild.
    Empty(&'static str),
}

impl Disk {
    /// An in-memory catalog (rebuilt at every start).
    pub(super) fn memory() -> Result<Disk> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(err)?;
        let d = Disk {
            db,
            path: None,
            damaged: AtomicBool::new(false),
        };
        d.reset()?;
        Ok(d)
    }

    /// Opens (or creates) the file at `path` with a page cache of `cache` bytes. A file
    /// redb cannot open is set aside (`<path>.damaged`) and started afresh; a file another
    /// process holds is an error (the caller falls back to memory).
    pub(super) fn open(path: &Path, cache: usize) -> Result<(Disk, Opened)> {
        use crate::store::derived::{self, Opened as File};
        let (db, fresh) = match derived::open(path, cache)? {
            File::Found(db) => (db, None),
            File::Replaced(db, why) => {
                tracing::warn!("catalog: {}: {why}; set aside", path.display());
                (db, Some("the file was damaged"))
            }
            File::Held => {
                return Err(Error::Catalog(format!(
                    "{} is in use by another process",
                    path.display()
                )));
            }
        };
        let d = Disk {
            db,
            path: Some(path.to_path_buf()),
            damaged: AtomicBool::new(false),
        };
        if let Some(why) = fresh {
            d.reset()?;
            return Ok((d, Opened::Empty(why)));
        }
        let state = match d.meta() {
            Ok(Some((format, applied, damaged))) if format == FORMAT && !damaged => {
                Opened::At(applied)
            }
            Ok(Some((format, _, _))) if format != FORMAT => {
                Opened::Empty("the file has another format")
            }
            Ok(Some(_)) => Opened::Empty("a summary failed its checksum"),
            Ok(None) => Opened::Empty("the file is new"),
            Err(_) => Opened::Empty("the file's meta data are unreadable"),
        };
        if matches!(state, Opened::Empty(_)) {
            d.reset()?;
        }
        Ok((d, state))
    }

    pub(super) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// (format, applied, damaged) as stored; `None` for a file never written.
    fn meta(&self) -> Result<Option<(u64, Applied, bool)>> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let get = |k: &str| -> Result<Option<Vec<u8>>> {
            Ok(t.get(k).map_err(err)?.map(|v| v.value().to_vec()))
        };
        let Some(format) = get("format")? else {
            return Ok(None);
        };
        let format = u64::from_be_bytes(format.try_into().map_err(|_| err("format"))?);
        let applied: Applied = match get("applied")? {
            Some(b) => rmp_serde::from_slice(&b).map_err(err)?,
            None => Applied::default(),
        };
        Ok(Some((format, applied, get("damaged")?.is_some())))
    }

    /// Empties every table and writes the format: a rebuild starts from here.
    pub(super) fn reset(&self) -> Result<()> {
        let tx = self.db.begin_write().map_err(err)?;
        tx.delete_table(RECORDS).map_err(err)?;
        tx.delete_table(PARTY_ROWS).map_err(err)?;
        // The party index of format 1.
        tx.delete_multimap_table(MultimapTableDefinition::<&str, &str>::new("by_party"))
            .map_err(err)?;
        for b in MULTI {
            tx.delete_multimap_table(b).map_err(err)?;
        }
        tx.delete_table(META).map_err(err)?;
        {
            let mut m = tx.open_table(META).map_err(err)?;
            m.insert("format", &FORMAT.to_be_bytes()[..]).map_err(err)?;
            tx.open_table(RECORDS).map_err(err)?;
            tx.open_table(PARTY_ROWS).map_err(err)?;
            for b in MULTI {
                tx.open_multimap_table(b).map_err(err)?;
            }
            let a = rmp_serde::to_vec(&Applied::default()).map_err(err)?;
            m.insert("applied", &a[..]).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// A row as read: a row failing its checksum is an error, and marks the file for a
    /// rebuild (now: see [`Disk::take_damaged`]; at the next start: in the file).
    fn row(&self, id: &str, bytes: &[u8]) -> Result<RecordBrief> {
        decode(id, bytes).inspect_err(|_| {
            self.damaged.store(true, Ordering::SeqCst);
            self.mark_damaged();
        })
    }

    /// Whether a row failed its checksum since the last call.
    pub(super) fn take_damaged(&self) -> bool {
        self.damaged.swap(false, Ordering::SeqCst)
    }

    /// Marks the file for a rebuild at the next start (a row failed its checksum).
    pub(super) fn mark_damaged(&self) {
        let r = (|| -> Result<()> {
            let tx = self.db.begin_write().map_err(err)?;
            tx.open_table(META)
                .map_err(err)?
                .insert("damaged", &[1u8][..])
                .map_err(err)?;
            tx.commit().map_err(err)
        })();
        if let Err(e) = r {
            tracing::error!("catalog: cannot mark the file for a rebuild: {e}");
        }
    }

    /// A write: summaries put, then `commit`.
    pub(super) fn batch(&self) -> Result<Batch> {
        let tx = self.db.begin_write().map_err(err)?;
        Ok(Batch { tx })
    }

    pub(super) fn record(&self, id: &str) -> Result<Option<RecordBrief>> {
        Ok(self.records(&[id])?.pop())
    }

    /// The summaries of `ids` that exist (in the order given), in one read transaction.
    pub(super) fn records(&self, ids: &[&str]) -> Result<Vec<RecordBrief>> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(RECORDS).map_err(err)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = t.get(*id).map_err(err)? {
                out.push(self.row(id, v.value())?);
            }
        }
        Ok(out)
    }

    /// Calls `f` with each (record id, row bytes) under `party` in `party_rows`, in id
    /// order, in one range read.
    fn party_rows(&self, party: &str, mut f: impl FnMut(&str, &[u8]) -> Result<()>) -> Result<()> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(PARTY_ROWS).map_err(err)?;
        for row in t.range((party, "")..).map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let (p, id) = k.value();
            if p != party {
                break;
            }
            f(id, v.value())?;
        }
        Ok(())
    }

    /// The summaries of the records linked to `party`, in id order, in one range read.
    pub(super) fn party_records(&self, party: &str) -> Result<Vec<RecordBrief>> {
        let mut out = Vec::new();
        self.party_rows(party, |id, bytes| {
            out.push(self.row(id, bytes)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Record ids under `key` of index `by`, ascending.
    pub(super) fn ids(&self, by: By, key: &str) -> Result<Vec<String>> {
        let Some(table) = by.table() else {
            let mut out = Vec::new();
            self.party_rows(key, |id, _| {
                out.push(id.to_string());
                Ok(())
            })?;
            return Ok(out);
        };
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_multimap_table(table).map_err(err)?;
        let mut out = Vec::new();
        for v in t.get(key).map_err(err)? {
            out.push(v.map_err(err)?.value().to_string());
        }
        Ok(out)
    }

    pub(super) fn len(&self) -> Result<u64> {
        let tx = self.db.begin_read().map_err(err)?;
        tx.open_table(RECORDS).map_err(err)?.len().map_err(err)
    }

    /// Calls `f` with every summary, in id order (one read transaction: a consistent
    /// view, memory bounded by the page cache).
    pub(super) fn each(&self, mut f: impl FnMut(RecordBrief)) -> Result<()> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(RECORDS).map_err(err)?;
        for row in t.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            f(self.row(k.value(), v.value())?);
        }
        Ok(())
    }

    /// Record ids after `after` (exclusive), ascending, at most `limit`.
    pub(super) fn ids_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let tx = self.db.begin_read().map_err(err)?;
        let t = tx.open_table(RECORDS).map_err(err)?;
        let range = match after {
            Some(a) => t.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => t.range::<&str>(..),
        }
        .map_err(err)?;
        let mut out = Vec::new();
        for row in range.take(limit) {
            out.push(row.map_err(err)?.0.value().to_string());
        }
        Ok(out)
    }

    /// What the file has applied.
    #[cfg(test)]
    pub(super) fn applied(&self) -> Result<Applied> {
        Ok(self.meta()?.map(|(_, a, _)| a).unwrap_or_default())
    }
}

/// One write transaction of the catalog.
pub(super) struct Batch {
    tx: WriteTransaction,
}

impl Batch {
    /// Puts a summary unless a later revision of the record is there already.
    pub(super) fn put(&mut self, r: &RecordBrief) -> Result<()> {
        let old = {
            let t = self.tx.open_table(RECORDS).map_err(err)?;
            let v = t.get(r.id.as_str()).map_err(err)?;
            match v.map(|v| decode(&r.id, v.value())) {
                Some(Ok(old)) => Some(old),
                // A damaged row is replaced; its index entries are found by the rebuild
                // the damage asks for.
                Some(Err(_)) | None => None,
            }
        };
        if let Some(old) = &old {
            if old.rev > r.rev {
                return Ok(());
            }
            for (by, key) in index_keys(old) {
                let Some(table) = by.table() else { continue };
                let mut t = self.tx.open_multimap_table(table).map_err(err)?;
                t.remove(key, old.id.as_str()).map_err(err)?;
            }
            let mut t = self.tx.open_table(PARTY_ROWS).map_err(err)?;
            for l in &old.parties {
                t.remove((l.party.as_str(), old.id.as_str())).map_err(err)?;
            }
        }
        for (by, key) in index_keys(r) {
            let Some(table) = by.table() else { continue };
            let mut t = self.tx.open_multimap_table(table).map_err(err)?;
            t.insert(key, r.id.as_str()).map_err(err)?;
        }
        let bytes = encode(r)?;
        {
            let mut t = self.tx.open_table(PARTY_ROWS).map_err(err)?;
            for l in &r.parties {
                t.insert((l.party.as_str(), r.id.as_str()), &bytes[..])
                    .map_err(err)?;
            }
        }
        self.tx
            .open_table(RECORDS)
            .map_err(err)?
            .insert(r.id.as_str(), &bytes[..])
            .map_err(err)?;
        Ok(())
    }

    /// Records that entries up to `applied` are in.
    pub(super) fn applied(&mut self, applied: &Applied) -> Result<()> {
        let a = rmp_serde::to_vec(applied).map_err(err)?;
        self.tx
            .open_table(META)
            .map_err(err)?
            .insert("applied", &a[..])
            .map_err(err)?;
        Ok(())
    }

    /// Clears the mark of damage (after every summary was written again).
    pub(super) fn repaired(&mut self) -> Result<()> {
        self.tx
            .open_table(META)
            .map_err(err)?
            .remove("damaged")
            .map_err(err)?;
        Ok(())
    }

    /// Commits; `durable` waits for the disk (else a crash may lose this and later
    /// non-durable commits, never half of one: the next start catches up again).
    pub(super) fn commit(mut self, durable: bool) -> Result<()> {
        if !durable {
            self.tx
                .set_durability(redb::Durability::None)
                .map_err(err)?;
        }
        self.tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(id: &str, rev: u32, party: &str, sha: &str) -> RecordBrief {
        RecordBrief {
            id: id.into(),
            rev,
            class: "invoice".into(),
            title: format!("t{rev}"),
            date: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            archived_at: DateTime::UNIX_EPOCH,
            media_type: "application/pdf".into(),
            size: 3,
            parties: vec![LinkBrief {
                party: party.into(),
                role: "customer".into(),
                reason: None,
            }],
            cases: vec![],
            sha256: sha.into(),
            message_id: Some("<m@x>".into()),
            parent: None,
            variant_of: None,
            direction: None,
            thread_key: Some(7),
            thread: None,
            retention: Default::default(),
        }
    }

    #[test]
    fn a_later_revision_moves_the_indexes_and_an_earlier_one_is_ignored() {
        let d = Disk::memory().unwrap();
        let mut b = d.batch().unwrap();
        b.put(&brief("r1", 1, "p1", "aa")).unwrap();
        b.commit(false).unwrap();
        let mut b = d.batch().unwrap();
        b.put(&brief("r1", 2, "p2", "")).unwrap();
        b.put(&brief("r1", 1, "p1", "aa")).unwrap();
        b.commit(true).unwrap();
        assert_eq!(d.ids(By::Party, "p1").unwrap(), Vec::<String>::new());
        assert_eq!(d.ids(By::Party, "p2").unwrap(), vec!["r1".to_string()]);
        assert!(d.party_records("p1").unwrap().is_empty());
        let rows = d.party_records("p2").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].rev, rows[0].title.as_str()), (2, "t2"));
        // A party whose id is a prefix of another's sees only its own rows.
        let mut b = d.batch().unwrap();
        b.put(&brief("r2", 1, "p22", "")).unwrap();
        b.commit(false).unwrap();
        assert_eq!(d.party_records("p2").unwrap().len(), 1);
        assert_eq!(d.ids(By::Party, "p22").unwrap(), vec!["r2".to_string()]);
        assert!(d.ids(By::Sha, "aa").unwrap().is_empty());
        let r = d.record("r1").unwrap().unwrap();
        assert_eq!((r.rev, r.title.as_str(), r.thread_key), (2, "t2", Some(7)));
        assert_eq!(d.len().unwrap(), 2);
    }

    #[test]
    fn a_damaged_row_is_an_error_and_a_file_of_another_format_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        {
            let (d, o) = Disk::open(&path, 1 << 20).unwrap();
            assert!(matches!(o, Opened::Empty(_)));
            let mut b = d.batch().unwrap();
            b.put(&brief("r1", 1, "p1", "aa")).unwrap();
            b.applied(&Applied {
                seq: 5,
                hash: "h".into(),
            })
            .unwrap();
            b.commit(true).unwrap();
        }
        let (d, o) = Disk::open(&path, 1 << 20).unwrap();
        assert!(matches!(o, Opened::At(Applied { seq: 5, .. })), "{o:?}");
        // A row whose bytes changed: reading it is an error and marks the file.
        let tx = d.db.begin_write().unwrap();
        tx.open_table(RECORDS)
            .unwrap()
            .insert("r2", &b"12345678garbage"[..])
            .unwrap();
        tx.commit().unwrap();
        assert!(d.record("r2").is_err());
        assert!(d.take_damaged());
        assert!(!d.take_damaged());
        drop(d);
        let (d, o) = Disk::open(&path, 1 << 20).unwrap();
        assert!(matches!(o, Opened::Empty(_)), "{o:?}");
        assert_eq!(d.len().unwrap(), 0);
        drop(d);
        // Bytes that are no redb file at all.
        std::fs::write(&path, b"not a database").unwrap();
        let (d, o) = Disk::open(&path, 1 << 20).unwrap();
        assert!(matches!(o, Opened::Empty(_)));
        assert_eq!(d.applied().unwrap().seq, 0);
    }
}
