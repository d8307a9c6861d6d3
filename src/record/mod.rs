//! Record revisions: the persisted shape of one archived item (format v1).
//!
//! A record is a chain of revisions `records/<id>/<rev>.mpk`, each pointing to its
//! predecessor by the SHA-256 of the predecessor's stored bytes. Amending metadata or
//! adding a content version writes a new revision; nothing is edited in place.
//! The layout is documented in `schemas/record-revision.md`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::retention::Retention;
use crate::store::codec;

/// Current format version of [`RecordRevision`].
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRevision {
    pub format: u32,
    /// Record id (UUID v7, time-ordered).
    pub id: String,
    /// Revision number, starting at 1, gap-free.
    pub rev: u32,
    /// SHA-256 (hex) of the stored bytes of revision `rev - 1`; `None` for revision 1.
    pub prev_hash: Option<String>,
    pub class: String,
    pub title: String,
    /// Date the document bears (or was received/sent), if known.
    pub document_date: Option<NaiveDate>,
    /// When the record was first archived (same in every revision).
    pub archived_at: DateTime<Utc>,
    /// When this revision was written, and by whom.
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    /// What this revision changed, for humans (`created`, `title, class`, `content`).
    pub change: String,
    /// Free-text reason given for the change.
    pub reason: Option<String>,
    /// The original content as of this revision.
    pub content: ContentRef,
    /// Parties linked to this record, each with a role in this record.
    pub parties: Vec<PartyLink>,
    pub retention: Retention,
    /// Names of legal holds covering this record.
    pub holds: Vec<String>,
    /// Cases (Vorgänge) this record belongs to. Added after format 1 was first written:
    /// absent in older revisions, and omitted when empty so those stay canonical.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<String>,
    /// Small free key/value facts (e.g. `duration` of a phone call). Omitted when empty.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra: std::collections::BTreeMap<String, String>,
    /// Set on the last revision of a disposed record: proof of what was destroyed, when
    /// and why. Omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<Tombstone>,
    /// Title, file name and extras sealed with the record's own key (`keys/record-<id>`),
    /// which disposal destroys: then no revision's metadata can be read any more. As
    /// stored, `title`, `content.file_name` and `extra` are empty when this is set;
    /// readers get them back in clear from `Archive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<crate::store::crypt::Sealed>,
}

/// The part of a record revision that may name people, sealed per record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedMeta {
    pub title: String,
    pub file_name: Option<String>,
    pub extra: std::collections::BTreeMap<String, String>,
}

/// What remains of a disposed record: no content, no personal data — the hash, class,
/// legal basis, dates and the two people who requested and approved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub disposal: String,
    pub disposed_at: chrono::DateTime<chrono::Utc>,
    pub requested_by: String,
    pub approved_by: String,
    pub reason: String,
    pub class: String,
    pub policy: String,
    pub legal_basis: String,
    pub retain_until: NaiveDate,
    /// Every content version the record had: (sha256, size).
    pub contents: Vec<(String, u64)>,
    /// The blobs actually deleted (content still used by a live record stays).
    pub blobs_deleted: Vec<String>,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRef {
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub file_name: Option<String>,
    /// Content version, starting at 1; a new content version increments it.
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyLink {
    pub party: String,
    /// The party's role in this record: sender, recipient, contract-party, …
    pub role: String,
    /// Why the link was made, for automatic links ("sender address a@b.de is a contact
    /// of the party"). Omitted for manual links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl PartyLink {
    /// A link someone gave (no automatic reason): `party` in `role`.
    pub fn given(party: &str, role: &str) -> PartyLink {
        PartyLink {
            party: party.to_string(),
            role: role.to_string(),
            reason: None,
        }
    }
}

impl RecordRevision {
    pub fn encode(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Decodes a revision read from `key`, checking format version and canonical bytes.
    pub fn decode(key: &str, bytes: &[u8]) -> Result<RecordRevision> {
        let r: RecordRevision = codec::decode(key, bytes)?;
        if r.format != FORMAT {
            return Err(Error::CorruptObject {
                key: key.to_string(),
                reason: format!("unsupported record format {}", r.format),
            });
        }
        Ok(r)
    }
}

/// Longest title, in characters.
pub const MAX_TITLE: usize = 1024;

pub fn validate_title(title: &str) -> Result<()> {
    if title.chars().count() > MAX_TITLE {
        return Err(Error::invalid(
            "title",
            format!("longer than {MAX_TITLE} characters"),
        ));
    }
    if !crate::ids::shape::matches(crate::ids::shape::LINE, title) {
        return Err(Error::invalid("title", "contains control characters"));
    }
    Ok(())
}

/// Guesses the media type from the first bytes and the file name.
pub fn guess_media_type(file_name: Option<&str>, head: &[u8]) -> String {
    if head.starts_with(b"%PDF-") {
        return "application/pdf".into();
    }
    if let Some(name) = file_name
        && let Some(m) = mime_guess::from_path(name).first()
    {
        return m.essence_str().to_string();
    }
    "application/octet-stream".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_are_validated() {
        assert!(crate::ids::validate_class("invoice").is_ok());
        assert!(crate::ids::validate_class("business-letter").is_ok());
        assert!(crate::ids::validate_class("Invoice").is_err());
        assert!(crate::ids::validate_class("").is_err());
        assert!(crate::ids::validate_class("a/b").is_err());
    }

    #[test]
    fn media_type_from_magic_then_name() {
        assert_eq!(
            guess_media_type(Some("x.bin"), b"%PDF-1.7"),
            "application/pdf"
        );
        assert_eq!(guess_media_type(Some("a.txt"), b"hello"), "text/plain");
        assert_eq!(guess_media_type(None, b"??"), "application/octet-stream");
    }
}
