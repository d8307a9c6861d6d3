//! The audit trail: the hash-chained journal, the commit of revisions, batched read
//! auditing, and verification of the whole store.

pub mod journal;
pub mod reads;
pub mod verify;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::store::keys::{self, ObjectKind};
use crate::store::{Created, Store, codec};
use journal::{Draft, Journal, JournalEntry, Subject};

/// Writes revision `rev` of object `id` create-only, then journals it with the digest of
/// its bytes. The journal entry is the commit point; its return means "durable".
#[allow(clippy::too_many_arguments)]
pub async fn commit_revision(
    store: &Store,
    journal: &Journal,
    kind: ObjectKind,
    id: &str,
    rev: u32,
    bytes: Vec<u8>,
    actor: &str,
    action: &str,
    detail: Option<String>,
) -> Result<JournalEntry> {
    let digest = codec::sha256_hex(&bytes);
    let key = keys::revision(kind, id, rev);
    if store.put_new(&key, Bytes::from(bytes)).await? == Created::Existed {
        return Err(Error::RevisionConflict {
            id: id.to_string(),
            rev,
        });
    }
    journal
        .append(Draft {
            actor: actor.to_string(),
            action: action.to_string(),
            subjects: vec![Subject {
                kind: kind.subject().to_string(),
                id: id.to_string(),
                rev: Some(rev),
            }],
            payload_digest: Some(digest),
            detail,
        })
        .await
}
