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

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use super::journal::{JournalEntry, SetAside};
use crate::store::keys::ObjectKind;

/// The action of the entry that records crash leftovers (see [`super::recovery`]).
pub const RECOVERY_ACTION: &str = "store.recover";

/// The erasure of a party: its data key is destroyed.
pub const ERASE_ACTION: &str = "party.erase";
/// The tombstone of a disposed record: its metadata key is destroyed.
pub const DISPOSE_ACTION: &str = "record.dispose";

/// One object: its kind and id.
type ObjKey = (ObjectKind, Box<str>);

#[derive(Debug, Default)]
pub(super) struct LedgerState {
    /// Entries 1..=seq are applied.
    pub seq: u64,
    /// Whether the journal was read from the start.
    pub loaded: bool,
    /// Committed revisions of every object, ascending.
    objects: HashMap<ObjKey, Vec<u32>>,
    /// Revisions a recovery entry recorded as never committed.
    recovered: HashSet<(ObjectKind, Box<str>, u32)>,
    /// Blobs a recovery entry recorded as torn leftovers.
    recovered_blobs: HashSet<Box<str>>,
    /// Key files (by key id) a recovery entry recorded as torn leftovers.
    recovered_keys: HashSet<Box<str>>,
    /// Data keys a journaled erasure or disposal destroyed (by key id): gone for every
    /// reader from that entry on, even before (or if a crash kept) the file's deletion.
    destroyed_keys: HashSet<Box<str>>,
    /// Revisions committed per kind (in `ObjectKind::ALL` order): tells a follower
    /// cheaply whether objects of a kind changed.
    revisions_per_kind: [u64; ObjectKind::ALL.len()],
}

impl LedgerState {
    /// Applies entry `e`, which must be entry `seq + 1`.
    pub fn apply(&mut self, e: &JournalEntry) {
        debug_assert_eq!(e.seq, self.seq + 1);
        if e.action == RECOVERY_ACTION {
            for a in e.set_aside() {
                match a {
                    SetAside::Revision(kind, id, rev) => {
                        self.recovered.insert((kind, id.into(), rev));
                    }
                    SetAside::Blob(sha) => {
                        self.recovered_blobs.insert(sha.into());
                    }
                    SetAside::Key(k) => {
                        self.recovered_keys.insert(k.into());
                    }
                }
            }
        } else {
            match e.action.as_str() {
                ERASE_ACTION => {
                    for s in &e.subjects {
                        self.destroyed_keys.insert(s.id.as_str().into());
                    }
                }
                DISPOSE_ACTION => {
                    for s in e.subjects.iter().filter(|s| s.kind == "record") {
                        self.destroyed_keys
                            .insert(format!("record-{}", s.id).into_boxed_str());
                    }
                }
                _ => {}
            }
            for (s, rev, _) in e.written() {
                if let Some(kind) = ObjectKind::from_subject(&s.kind) {
                    let revs = self
                        .objects
                        .entry((kind, s.id.as_str().into()))
                        .or_default();
                    if let Err(at) = revs.binary_search(&rev) {
                        revs.insert(at, rev);
                        if let Some(i) = ObjectKind::ALL.iter().position(|k| *k == kind) {
                            self.revisions_per_kind[i] += 1;
                        }
                    }
                }
            }
        }
        self.seq = e.seq;
    }
}

/// The ledger: shared state behind a lock that readers take only briefly.
#[derive(Debug, Default)]
pub struct Ledger {
    pub(super) state: RwLock<LedgerState>,
}

impl Ledger {
    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, LedgerState> {
        // A panic while holding the lock cannot leave the state half-applied in a way
        // that matters (apply is a few inserts); keep serving.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, LedgerState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Committed revisions of one object, ascending; `None` when none is.
    pub fn revisions(&self, kind: ObjectKind, id: &str) -> Option<Vec<u32>> {
        self.read().objects.get(&(kind, id.into())).cloned()
    }

    /// Whether revision `rev` of the object is committed.
    pub fn is_committed(&self, kind: ObjectKind, id: &str, rev: u32) -> bool {
        self.read()
            .objects
            .get(&(kind, id.into()))
            .is_some_and(|r| r.binary_search(&rev).is_ok())
    }

    /// Whether a recovery entry recorded this revision as a never-committed leftover.
    pub fn is_recovered(&self, kind: ObjectKind, id: &str, rev: u32) -> bool {
        self.read().recovered.contains(&(kind, id.into(), rev))
    }

    /// Whether a recovery entry recorded this blob as a torn leftover.
    pub fn is_recovered_blob(&self, sha256: &str) -> bool {
        self.read().recovered_blobs.contains(sha256)
    }

    /// Whether a recovery entry recorded this key file as a torn leftover.
    pub fn is_recovered_key(&self, key_id: &str) -> bool {
        self.read().recovered_keys.contains(key_id)
    }

    /// Whether a journaled erasure or disposal destroyed this data key.
    pub fn is_key_destroyed(&self, key_id: &str) -> bool {
        self.read().destroyed_keys.contains(key_id)
    }

    /// Every destroyed data key (by key id).
    pub fn destroyed_keys(&self) -> Vec<String> {
        self.read()
            .destroyed_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    }

    /// Every object of `kind` with its latest committed revision, in id order.
    pub fn latest_of_kind(&self, kind: ObjectKind) -> Vec<(String, u32)> {
        let st = self.read();
        let mut out: Vec<(String, u32)> = st
            .objects
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .filter_map(|((_, id), revs)| Some((id.to_string(), *revs.last()?)))
            .collect();
        out.sort_unstable();
        out
    }

    /// Number of committed revisions of objects of `kind`: changes whenever one of them
    /// does.
    pub fn revisions_of_kind(&self, kind: ObjectKind) -> u64 {
        ObjectKind::ALL
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.read().revisions_per_kind[i])
    }

    /// Number of committed objects of `kind`.
    pub fn count(&self, kind: ObjectKind) -> usize {
        self.read()
            .objects
            .keys()
            .filter(|(k, _)| *k == kind)
            .count()
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
        ));
        // A read names the record but writes nothing.
        st.apply(&entry(
            2,
            "record.read",
            vec![Subject::about("record", id)],
            None,
        ));
        let mut leftover = Subject::record(id, 2);
        leftover.digest = Some("bb".into());
        st.apply(&entry(3, RECOVERY_ACTION, vec![leftover], None));
        st.apply(&entry(
            4,
            "record.amend",
            vec![Subject::record(id, 3)],
            Some("cc"),
        ));
        let l = Ledger {
            state: RwLock::new(st),
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
