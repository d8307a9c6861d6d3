//! What the journal has committed: the commit point as every reader sees it
//! (DESIGN §2.6).
//!
//! A revision exists for a reader only once a durable journal entry names it. The ledger
//! is that fact, derived from the journal alone: for every object the revisions some
//! entry committed, and the crash leftovers that a `store.recover` entry set aside. It is
//! built by reading the journal once and then follows it: entries this process appends
//! are applied at once (read-your-writes), other processes' entries when the ledger is
//! synced (on a miss, and on the server's tick).
//!
//! Nothing here lists the store: a revision file without an entry is invisible, whatever
//! the store holds.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::journal::{JournalEntry, SetAside};
use crate::error::{Error, Result};
use crate::store::keys::ObjectKind;

/// The action of the entry that records crash leftovers (see [`super::recovery`]).
pub const RECOVERY_ACTION: &str = "store.recover";

/// The erasure of a party: its data key is destroyed.
pub const ERASE_ACTION: &str = "party.erase";
/// The tombstone of a disposed record: its metadata key is destroyed.
pub const DISPOSE_ACTION: &str = "record.dispose";

/// The layout of a ledger file; another value is rebuilt.
/// 2: the counts name the last `audit.verify` entry.
const FORMAT: u64 = 2;
/// Per object (kind index byte, then id): its committed revisions, ascending, 4 bytes
/// each, big-endian.
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// Members of the sets: `r\0<kind>\0<id>\0<rev>` recovered revision, `b\0<sha>` recovered
/// blob, `k\0<key>` recovered key file, `d\0<key>` destroyed data key.
const SETS: TableDefinition<&str, ()> = TableDefinition::new("sets");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const KINDS: usize = ObjectKind::ALL.len();

fn err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("ledger: {e}"))
}

fn kind_index(kind: ObjectKind) -> u8 {
    ObjectKind::ALL
        .iter()
        .position(|k| *k == kind)
        .map_or(u8::MAX, |i| i as u8)
}

fn object_key(kind: ObjectKind, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(kind_index(kind));
    k.extend_from_slice(id.as_bytes());
    k
}

fn revs_of(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn recovered_key(kind: ObjectKind, id: &str, rev: u32) -> String {
    format!("r\0{}\0{id}\0{rev}", kind.subject())
}

/// Counters kept beside the tables (and stored in the file's meta table).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Counts {
    /// Entries 1..=seq are applied; `hash` is entry `seq`'s.
    seq: u64,
    hash: String,
    /// Revisions committed per kind (in `ObjectKind::ALL` order): tells a follower
    /// cheaply whether objects of a kind changed.
    revisions: [u64; KINDS],
    /// Objects per kind.
    objects: [u64; KINDS],
    /// The newest `audit.verify` entry (0: none).
    last_verify: u64,
}

#[derive(Debug, Default)]
pub(super) struct LedgerState {
    /// Entries 1..=seq are applied.
    pub seq: u64,
    /// Whether the journal was read from the start (or from where a ledger file had
    /// applied it).
    pub loaded: bool,
    counts: Counts,
    /// The tables; `None` until first written (in memory unless a file was opened).
    db: Option<Database>,
    /// Whether `db` is a file (then a commit is made durable now and then).
    file: bool,
    /// Entries applied since the last durable commit.
    undurable: u64,
}

/// Entries applied without a durable commit before one is made.
const DURABLE_EVERY: u64 = 256;

impl LedgerState {
    fn db(&mut self) -> Result<&Database> {
        if self.db.is_none() {
            let db = Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(err)?;
            self.db = Some(db);
        }
        self.db.as_ref().ok_or_else(|| err("no database"))
    }

    /// Applies entry `e`, which must be entry `seq + 1`.
    pub fn apply(&mut self, e: &JournalEntry) -> Result<()> {
        self.apply_all(std::slice::from_ref(e))
    }

    /// Applies `entries` in order, skipping those not next (one write transaction).
    pub fn apply_all(&mut self, entries: &[JournalEntry]) -> Result<()> {
        let mut counts = self.counts.clone();
        let tx = self.db()?.begin_write().map_err(err)?;
        let mut applied = 0;
        for e in entries {
            if e.seq != counts.seq + 1 {
                continue;
            }
            apply_one(&tx, &mut counts, e)?;
            applied += 1;
        }
        if applied == 0 {
            return tx.abort().map_err(err);
        }
        tx.open_table(META)
            .map_err(err)?
            .insert("counts", &rmp_serde::to_vec(&counts).map_err(err)?[..])
            .map_err(err)?;
        self.undurable += applied;
        let mut tx = tx;
        if !self.file || self.undurable < DURABLE_EVERY {
            tx.set_durability(redb::Durability::None).map_err(err)?;
        } else {
            self.undurable = 0;
        }
        tx.commit().map_err(err)?;
        self.seq = counts.seq;
        self.counts = counts;
        Ok(())
    }

    /// Makes what was applied durable.
    pub fn flush(&mut self) -> Result<()> {
        if !self.file || self.undurable == 0 {
            return Ok(());
        }
        let tx = self.db()?.begin_write().map_err(err)?;
        tx.commit().map_err(err)?;
        self.undurable = 0;
        Ok(())
    }
}

/// The action `akte verify` journals its result under.
const VERIFY_ACTION: &str = "audit.verify";

fn apply_one(tx: &WriteTransaction, counts: &mut Counts, e: &JournalEntry) -> Result<()> {
    if e.action == VERIFY_ACTION {
        counts.last_verify = e.seq;
    }
    let mut sets = tx.open_table(SETS).map_err(err)?;
    if e.action == RECOVERY_ACTION {
        for a in e.set_aside() {
            let k = match a {
                SetAside::Revision(kind, id, rev) => recovered_key(kind, id, rev),
                SetAside::Blob(sha) => format!("b\0{sha}"),
                SetAside::Key(k) => format!("k\0{k}"),
            };
            sets.insert(k.as_str(), ()).map_err(err)?;
        }
    } else {
        match e.action.as_str() {
            ERASE_ACTION => {
                for s in &e.subjects {
                    sets.insert(format!("d\0{}", s.id).as_str(), ())
                        .map_err(err)?;
                }
            }
            DISPOSE_ACTION => {
                for s in e.subjects.iter().filter(|s| s.kind == "record") {
                    sets.insert(format!("d\0record-{}", s.id).as_str(), ())
                        .map_err(err)?;
                }
            }
            _ => {}
        }
        let mut objects = tx.open_table(OBJECTS).map_err(err)?;
        for (s, rev, _) in e.written() {
            let Some(kind) = ObjectKind::from_subject(&s.kind) else {
                continue;
            };
            let key = object_key(kind, &s.id);
            let mut revs = objects
                .get(key.as_slice())
                .map_err(err)?
                .map(|v| revs_of(v.value()))
                .unwrap_or_default();
            let i = kind_index(kind) as usize;
            if revs.is_empty()
                && let Some(n) = counts.objects.get_mut(i)
            {
                *n += 1;
            }
            if let Err(at) = revs.binary_search(&rev) {
                revs.insert(at, rev);
                if let Some(n) = counts.revisions.get_mut(i) {
                    *n += 1;
                }
                let bytes: Vec<u8> = revs.iter().flat_map(|r| r.to_be_bytes()).collect();
                objects
                    .insert(key.as_slice(), bytes.as_slice())
                    .map_err(err)?;
            }
        }
    }
    counts.seq = e.seq;
    counts.hash = e.hash.clone();
    Ok(())
}

/// A ledger file as opened: what it has applied (`None`: empty, apply from the start).
pub(super) struct Opened {
    pub db: Database,
    pub applied: Option<(u64, String)>,
}

/// Opens (or creates) the ledger file at `path`; `None` when another process holds it.
/// A file redb cannot open is set aside and replaced by an empty one.
pub(super) fn open_file(path: &Path, cache: usize) -> Result<Option<Opened>> {
    use crate::store::derived::{self, Opened as File};
    let db = match derived::open(path, cache)? {
        File::Found(db) => db,
        File::Replaced(db, why) => {
            tracing::warn!(
                "{}: {why}; set aside, the ledger file is rebuilt from the journal",
                path.display()
            );
            db
        }
        File::Held => return Ok(None),
    };
    let counts = {
        let tx = db.begin_read().map_err(err)?;
        match tx.open_table(META) {
            Ok(t) => {
                let format = t.get("format").map_err(err)?.map(|v| v.value().to_vec());
                let counts = t.get("counts").map_err(err)?.map(|v| v.value().to_vec());
                match (format, counts) {
                    (Some(f), Some(c)) if f == FORMAT.to_be_bytes() => {
                        Some(rmp_serde::from_slice::<Counts>(&c).map_err(err)?)
                    }
                    _ => None,
                }
            }
            Err(_) => None,
        }
    };
    Ok(Some(Opened {
        applied: counts.as_ref().map(|c| (c.seq, c.hash.clone())),
        db,
    }))
}

/// Empties a ledger database and writes its format.
fn reset(db: &Database) -> Result<()> {
    let tx = db.begin_write().map_err(err)?;
    tx.delete_table(OBJECTS).map_err(err)?;
    tx.delete_table(SETS).map_err(err)?;
    tx.delete_table(META).map_err(err)?;
    tx.open_table(META)
        .map_err(err)?
        .insert("format", &FORMAT.to_be_bytes()[..])
        .map_err(err)?;
    tx.open_table(OBJECTS).map_err(err)?;
    tx.open_table(SETS).map_err(err)?;
    tx.commit().map_err(err)
}

/// The ledger: shared state behind a lock that readers take only briefly.
#[derive(Debug, Default)]
pub struct Ledger {
    pub(super) state: RwLock<LedgerState>,
    /// The file to keep it in (and its page cache bytes), from the first sync on.
    pub(super) file: std::sync::Mutex<Option<(PathBuf, usize)>>,
}

impl Ledger {
    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, LedgerState> {
        // A panic while holding the lock cannot leave the state half-applied: an entry
        // is applied in one transaction; keep serving.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, LedgerState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a ledger database that has applied entries 1..=`seq` (counts as stored).
    pub(super) fn adopt(&self, db: Database, file: bool) -> Result<()> {
        let counts = {
            let tx = db.begin_read().map_err(err)?;
            let t = tx.open_table(META).map_err(err)?;
            let c = t.get("counts").map_err(err)?;
            match c {
                Some(c) => rmp_serde::from_slice::<Counts>(c.value()).map_err(err)?,
                None => Counts::default(),
            }
        };
        let mut st = self.write();
        st.seq = counts.seq;
        st.counts = counts;
        st.db = Some(db);
        st.file = file;
        st.undurable = 0;
        Ok(())
    }

    /// Empties `db` and takes it (the journal is then read from the start).
    pub(super) fn adopt_empty(&self, db: Database, file: bool) -> Result<()> {
        reset(&db)?;
        self.adopt(db, file)
    }

    /// Reads with the tables, if there are any yet.
    fn with<T: Default>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Result<T>) -> T {
        let st = self.read();
        let Some(db) = &st.db else {
            return T::default();
        };
        let r = db.begin_read().map_err(err).and_then(|tx| f(&tx));
        r.unwrap_or_else(|e| {
            tracing::error!("{e}");
            T::default()
        })
    }

    fn in_sets(&self, key: &str) -> bool {
        self.with(|tx| match tx.open_table(SETS) {
            Ok(t) => Ok(t.get(key).map_err(err)?.is_some()),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(err(e)),
        })
    }

    /// Committed revisions of one object, ascending; `None` when none is.
    pub fn revisions(&self, kind: ObjectKind, id: &str) -> Option<Vec<u32>> {
        self.with(|tx| match tx.open_table(OBJECTS) {
            Ok(t) => Ok(t
                .get(object_key(kind, id).as_slice())
                .map_err(err)?
                .map(|v| revs_of(v.value()))),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(err(e)),
        })
    }

    /// Whether revision `rev` of the object is committed.
    pub fn is_committed(&self, kind: ObjectKind, id: &str, rev: u32) -> bool {
        self.revisions(kind, id)
            .is_some_and(|r| r.binary_search(&rev).is_ok())
    }

    /// Whether a recovery entry recorded this revision as a never-committed leftover.
    pub fn is_recovered(&self, kind: ObjectKind, id: &str, rev: u32) -> bool {
        self.in_sets(&recovered_key(kind, id, rev))
    }

    /// Whether a recovery entry recorded this blob as a torn leftover.
    pub fn is_recovered_blob(&self, sha256: &str) -> bool {
        self.in_sets(&format!("b\0{sha256}"))
    }

    /// Whether a recovery entry recorded this key file as a torn leftover.
    pub fn is_recovered_key(&self, key_id: &str) -> bool {
        self.in_sets(&format!("k\0{key_id}"))
    }

    /// Whether a journaled erasure or disposal destroyed this data key.
    pub fn is_key_destroyed(&self, key_id: &str) -> bool {
        self.in_sets(&format!("d\0{key_id}"))
    }

    /// Every destroyed data key (by key id).
    pub fn destroyed_keys(&self) -> Vec<String> {
        self.with(|tx| {
            let t = match tx.open_table(SETS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(err(e)),
            };
            let mut out = Vec::new();
            for row in t.range::<&str>("d\0".."d\u{1}").map_err(err)? {
                let (k, _) = row.map_err(err)?;
                out.push(k.value()["d\0".len()..].to_string());
            }
            Ok(out)
        })
    }

    /// Every object of `kind` with its latest committed revision, in id order.
    pub fn latest_of_kind(&self, kind: ObjectKind) -> Vec<(String, u32)> {
        self.with(|tx| {
            let t = match tx.open_table(OBJECTS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(err(e)),
            };
            let k = kind_index(kind);
            let (lo, hi) = ([k], [k.saturating_add(1)]);
            let mut out = Vec::new();
            for row in t.range::<&[u8]>(&lo[..]..&hi[..]).map_err(err)? {
                let (key, v) = row.map_err(err)?;
                let id = String::from_utf8_lossy(&key.value()[1..]).into_owned();
                if let Some(rev) = revs_of(v.value()).last() {
                    out.push((id, *rev));
                }
            }
            Ok(out)
        })
    }

    /// Number of committed revisions of objects of `kind`: changes whenever one of them
    /// does.
    pub fn revisions_of_kind(&self, kind: ObjectKind) -> u64 {
        let i = kind_index(kind) as usize;
        self.read().counts.revisions.get(i).copied().unwrap_or(0)
    }

    /// Number of committed objects of `kind`.
    pub fn count(&self, kind: ObjectKind) -> usize {
        let i = kind_index(kind) as usize;
        self.read().counts.objects.get(i).copied().unwrap_or(0) as usize
    }

    /// The sequence of the newest `audit.verify` entry applied (0: none).
    pub fn last_verify(&self) -> u64 {
        self.read().counts.last_verify
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::journal::Subject;

    fn entry(seq: u64, action: &str, subjects: Vec<Subject>, digest: Option<&str>) -> JournalEntry {
        JournalEntry {
            format: 1,
            seq,
            time: chrono::DateTime::UNIX_EPOCH,
            actor: "t".into(),
            action: action.into(),
            subjects,
            payload_digest: digest.map(str::to_string),
            detail: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn only_journaled_revisions_are_committed_and_recovered_ones_are_set_aside() {
        let mut st = LedgerState::default();
        let id = "0190a0b0-0000-7000-8000-000000000001";
        st.apply(&entry(
            1,
            "record.create",
            vec![Subject::record(id, 1)],
            Some("aa"),
        ))
        .unwrap();
        // A read names the record but writes nothing.
        st.apply(&entry(
            2,
            "record.read",
            vec![Subject::about("record", id)],
            None,
        ))
        .unwrap();
        let mut leftover = Subject::record(id, 2);
        leftover.digest = Some("bb".into());
        st.apply(&entry(3, RECOVERY_ACTION, vec![leftover], None))
            .unwrap();
        st.apply(&entry(
            4,
            "record.amend",
            vec![Subject::record(id, 3)],
            Some("cc"),
        ))
        .unwrap();
        let l = Ledger {
            state: RwLock::new(st),
            file: Default::default(),
        };
        assert_eq!(l.revisions(ObjectKind::Record, id), Some(vec![1, 3]));
        assert!(!l.is_committed(ObjectKind::Record, id, 2));
        assert!(l.is_recovered(ObjectKind::Record, id, 2));
        assert_eq!(
            l.latest_of_kind(ObjectKind::Record),
            vec![(id.to_string(), 3)]
        );
        assert_eq!(l.read().seq, 4);
    }
}
