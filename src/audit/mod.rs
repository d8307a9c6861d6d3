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
use object_store::path::Path;

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
                digest: None,
            }],
            payload_digest: Some(digest),
            detail,
        })
        .await
}

/// The latest revision of object `id` of `kind`, decoded, with the SHA-256 of its bytes
/// (the `prev_hash` its successor will carry).
pub async fn latest_revision<T>(
    store: &Store,
    kind: ObjectKind,
    id: &str,
    decode: fn(&str, &[u8]) -> Result<T>,
) -> Result<(T, String)> {
    crate::archive::validate_id(id)?;
    let metas = store.list_sorted(&keys::revision_prefix(kind, id)).await?;
    let last = metas.last().ok_or_else(|| Error::ObjectNotFound {
        key: format!("{} {id}", kind.subject()),
    })?;
    let bytes = store.get(&last.location).await?;
    Ok((
        decode(last.location.as_ref(), &bytes)?,
        codec::sha256_hex(&bytes),
    ))
}

/// The key of the latest revision of every object of `kind`, in id order.
pub async fn latest_keys(store: &Store, kind: ObjectKind) -> Result<Vec<Path>> {
    let metas = store.list_sorted(&keys::kind_prefix(kind)).await?;
    let mut latest: Vec<(String, Path)> = Vec::new();
    for m in metas {
        if let keys::KeyKind::Revision { id, .. } = keys::classify(&m.location) {
            match latest.last_mut() {
                Some((last, k)) if *last == id => *k = m.location,
                _ => latest.push((id, m.location)),
            }
        }
    }
    Ok(latest.into_iter().map(|(_, k)| k).collect())
}
