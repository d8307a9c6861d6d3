//! The one module that builds and parses object keys (DESIGN §4).
//!
//! ```text
//! blobs/sha256/ab/cdef…          content, create-only, deduplicated by hash
//! records/<id>/<rev>.mpk         record revisions, create-only
//! journal/<seq>.mpk              journal entries, create-only (commit point)
//! tokens/<id>/<rev>.mpk          API token revisions (hashes only), create-only
//! staging/<uuid>                 large uploads in flight (not archive data)
//! jobs/imports/<id>/…            import jobs shared by the nodes (not archive data)
//! leases/<name>                  which node runs a background job (mutable)
//! ```

use object_store::path::Path;

pub const BLOBS: &str = "blobs/sha256";
pub const RECORDS: &str = "records";
pub const JOURNAL: &str = "journal";
pub const STAGING: &str = "staging";
pub const QUARANTINE: &str = "quarantine";
pub const CHECKPOINTS: &str = "checkpoints";
pub const TOKENS: &str = "tokens";
pub const PARTIES: &str = "parties";
pub const CASES: &str = "cases";
pub const HOLDS: &str = "holds";
pub const DISPOSALS: &str = "disposals";
/// Per-party data keys: the one deliberate exception to write-once (DESIGN §2.9).
pub const KEYS: &str = "keys";
/// Leases of background jobs among nodes (mutable; not archive data).
pub const LEASES: &str = "leases";
/// Background jobs shared among nodes (an import's upload and state; not archive data).
pub const JOBS: &str = "jobs";

/// Kinds of revisioned objects: each lives under `<prefix>/<id>/<rev>.mpk` and each
/// revision is committed by a journal entry whose subject has this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    Record,
    Token,
    Party,
    Case,
    Hold,
    Disposal,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 6] = [
        ObjectKind::Record,
        ObjectKind::Token,
        ObjectKind::Party,
        ObjectKind::Case,
        ObjectKind::Hold,
        ObjectKind::Disposal,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            ObjectKind::Record => RECORDS,
            ObjectKind::Token => TOKENS,
            ObjectKind::Party => PARTIES,
            ObjectKind::Case => CASES,
            ObjectKind::Hold => HOLDS,
            ObjectKind::Disposal => DISPOSALS,
        }
    }

    /// The subject kind used in journal entries.
    pub fn subject(self) -> &'static str {
        match self {
            ObjectKind::Record => "record",
            ObjectKind::Token => "token",
            ObjectKind::Party => "party",
            ObjectKind::Case => "case",
            ObjectKind::Hold => "hold",
            ObjectKind::Disposal => "disposal",
        }
    }

    pub fn from_subject(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.subject() == s)
    }
}

/// Width of the zero-padded sequence number: u64::MAX has 20 digits, so lexical
/// order of keys equals numeric order.
const SEQ_WIDTH: usize = 20;
/// Width of the zero-padded revision number.
const REV_WIDTH: usize = 8;

pub fn blob(sha256_hex: &str) -> Path {
    let (dir, _) = sha256_hex.split_at(2.min(sha256_hex.len()));
    Path::from(format!("{BLOBS}/{dir}/{sha256_hex}"))
}

pub fn blobs_prefix() -> Path {
    Path::from(BLOBS)
}

pub fn record_prefix(id: &str) -> Path {
    revision_prefix(ObjectKind::Record, id)
}

pub fn records_prefix() -> Path {
    Path::from(RECORDS)
}

pub fn record_rev(id: &str, rev: u32) -> Path {
    revision(ObjectKind::Record, id, rev)
}

pub fn revision(kind: ObjectKind, id: &str, rev: u32) -> Path {
    Path::from(format!("{}/{id}/{rev:0REV_WIDTH$}.mpk", kind.prefix()))
}

pub fn revision_prefix(kind: ObjectKind, id: &str) -> Path {
    Path::from(format!("{}/{id}", kind.prefix()))
}

pub fn kind_prefix(kind: ObjectKind) -> Path {
    Path::from(kind.prefix())
}

pub fn journal(seq: u64) -> Path {
    Path::from(format!("{JOURNAL}/{seq:0SEQ_WIDTH$}.mpk"))
}

/// A checkpoint: the journal's head hash at `seq`, written create-only.
pub fn checkpoint(seq: u64) -> Path {
    Path::from(format!("{CHECKPOINTS}/{seq:0SEQ_WIDTH$}.mpk"))
}

/// A checkpoint's RFC 3161 timestamp token (DER), beside it, written create-only.
pub fn checkpoint_stamp(seq: u64) -> Path {
    Path::from(format!("{CHECKPOINTS}/{seq:0SEQ_WIDTH$}.tst"))
}

pub fn checkpoints_prefix() -> Path {
    Path::from(CHECKPOINTS)
}

pub fn journal_prefix() -> Path {
    Path::from(JOURNAL)
}

/// The data key of a party.
pub fn party_key(party_id: &str) -> Path {
    Path::from(format!("{KEYS}/{party_id}"))
}

/// The lease `name` (see `store::lease`).
pub fn lease(name: &str) -> Path {
    Path::from(format!("{LEASES}/{name}"))
}

/// A file of the shared import job `job`: `upload`, `job.json`, `done.json`.
pub fn import_job(job: &str, file: &str) -> Path {
    Path::from(format!("{JOBS}/imports/{job}/{file}"))
}

/// Where the shared import jobs are.
pub fn import_jobs_prefix() -> Path {
    Path::from(format!("{JOBS}/imports"))
}

/// The object a data key belongs to: `record-<id>` seals a record's metadata, any other
/// key id is a party's.
pub fn key_owner(key_id: &str) -> (ObjectKind, &str) {
    match key_id.strip_prefix("record-") {
        Some(r) => (ObjectKind::Record, r),
        None => (ObjectKind::Party, key_id),
    }
}

pub fn keys_prefix() -> Path {
    Path::from(KEYS)
}

/// Where the damaged bytes found under a blob's name are kept when a fresh upload of
/// the right bytes replaces them: evidence, never archive content.
pub fn quarantine_blob(sha256: &str, found: &str) -> Path {
    Path::from(format!("{QUARANTINE}/blobs/{sha256}.{found}"))
}

pub fn quarantine_prefix() -> Path {
    Path::from(QUARANTINE)
}

pub fn staging(name: &str) -> Path {
    Path::from(format!("{STAGING}/{name}"))
}

/// What a key names, as far as its shape tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Blob {
        sha256: String,
    },
    Revision {
        kind: ObjectKind,
        id: String,
        rev: u32,
    },
    Journal {
        seq: u64,
    },
    Staging,
    PartyKey {
        party: String,
    },
    Checkpoint {
        seq: u64,
    },
    /// A checkpoint's timestamp token.
    Stamp {
        seq: u64,
    },
    Unknown,
}

pub fn classify(key: &Path) -> KeyKind {
    let parts: Vec<&str> = key.as_ref().split('/').collect();
    match parts.as_slice() {
        ["blobs", "sha256", dir, name]
            if name.len() == 64
                && name.starts_with(dir)
                && dir.len() == 2
                && name
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            KeyKind::Blob {
                sha256: (*name).to_string(),
            }
        }
        [prefix, id, file] => {
            let kind = ObjectKind::ALL.into_iter().find(|k| k.prefix() == *prefix);
            let rev = file
                .strip_suffix(".mpk")
                .filter(|n| n.len() == REV_WIDTH && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u32>().ok());
            match (kind, rev) {
                (Some(kind), Some(rev)) if !id.is_empty() => KeyKind::Revision {
                    kind,
                    id: (*id).to_string(),
                    rev,
                },
                _ => KeyKind::Unknown,
            }
        }
        ["journal", file] => match file
            .strip_suffix(".mpk")
            .filter(|n| n.len() == SEQ_WIDTH)
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(seq) => KeyKind::Journal { seq },
            None => KeyKind::Unknown,
        },
        ["staging", _] => KeyKind::Staging,
        ["checkpoints", file] => {
            let seq = |suffix: &str| {
                file.strip_suffix(suffix)
                    .filter(|n| n.len() == SEQ_WIDTH && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<u64>().ok())
            };
            match (seq(".mpk"), seq(".tst")) {
                (Some(seq), _) => KeyKind::Checkpoint { seq },
                (_, Some(seq)) => KeyKind::Stamp { seq },
                _ => KeyKind::Unknown,
            }
        }
        ["keys", party] if !party.is_empty() => KeyKind::PartyKey {
            party: (*party).to_string(),
        },
        _ => KeyKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_classify() {
        let sha = "ab".repeat(32);
        assert_eq!(
            classify(&blob(&sha)),
            KeyKind::Blob {
                sha256: sha.clone()
            }
        );
        assert_eq!(
            classify(&record_rev("r1", 7)),
            KeyKind::Revision {
                kind: ObjectKind::Record,
                id: "r1".into(),
                rev: 7
            }
        );
        assert_eq!(classify(&journal(42)), KeyKind::Journal { seq: 42 });
        assert_eq!(journal(42).as_ref(), "journal/00000000000000000042.mpk");
    }

    #[test]
    fn journal_keys_sort_numerically() {
        assert!(journal(9).as_ref() < journal(10).as_ref());
        assert!(journal(99_999).as_ref() < journal(100_000).as_ref());
    }

    #[test]
    fn misplaced_blob_is_unknown() {
        let sha = "ab".repeat(32);
        let wrong = Path::from(format!("blobs/sha256/cd/{sha}"));
        assert_eq!(classify(&wrong), KeyKind::Unknown);
    }
}
