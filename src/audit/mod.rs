//! The audit trail: the hash-chained journal, the commit of revisions, batched read
//! auditing, and verification of the whole store.

pub mod anchor;
pub mod journal;
pub mod ledger;
pub mod reads;
pub mod recovery;
pub mod signing;
pub mod timestamp;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::store::keys::{self, ObjectKind};
use crate::store::{Created, Store, codec};
use journal::{Draft, Journal, JournalEntry, Subject};
use object_store::path::Path;

/// Writes revision `rev` of object `id` create-only, then journals it with the digest of
/// its bytes. The journal entry is the commit point; its return means "durable".
#[allow(clippy::too_many_arguments)]
/// Writes one revision create-only, then its journal entry: with [`stage_revision`] and
/// [`commit_staged`], the only code that writes revisions and the entries committing them.
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
    store.will_write_revision(&key)?;
    if store.put_new(&key, Bytes::from(bytes)).await? == Created::Existed {
        store.settled([key.as_ref()]);
        return Err(Error::RevisionConflict {
            id: id.to_string(),
            rev,
        });
    }
    let entry = journal
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
        .await?;
    store.settled([key.as_ref()]);
    Ok(entry)
}

/// Writes revision `rev` of `id` create-only *without* committing it (group commit): the
/// write is durable after the next `Store::sync_deferred`, and the revision exists for
/// readers only once [`commit_staged`] has journaled it. Returns the digest the entry
/// will name.
pub async fn stage_revision(
    store: &Store,
    kind: ObjectKind,
    id: &str,
    rev: u32,
    bytes: Vec<u8>,
) -> Result<String> {
    let (key, bytes, digest) = revision_to_stage(store, kind, id, rev, bytes)?;
    let created = store.put_new_deferred(&key, bytes).await?;
    revision_staged(store, &key, created, id, rev)?;
    Ok(digest)
}

/// [`stage_revision`] in two halves, for a caller that writes the revision together
/// with other objects (`Store::put_new_deferred_all`): the key to create-only, its
/// bytes and the digest the entry will name. Call [`revision_staged`] with the write's
/// outcome.
pub fn revision_to_stage(
    store: &Store,
    kind: ObjectKind,
    id: &str,
    rev: u32,
    bytes: Vec<u8>,
) -> Result<(Path, Bytes, String)> {
    let digest = codec::sha256_hex(&bytes);
    let key = keys::revision(kind, id, rev);
    store.will_write_revision(&key)?;
    Ok((key, Bytes::from(bytes), digest))
}

/// The second half of [`revision_to_stage`]: a revision already there is a conflict.
pub fn revision_staged(
    store: &Store,
    key: &Path,
    created: Created,
    id: &str,
    rev: u32,
) -> Result<()> {
    if created == Created::Existed {
        store.settled([key.as_ref()]);
        return Err(Error::RevisionConflict {
            id: id.to_string(),
            rev,
        });
    }
    Ok(())
}

/// Commits staged revisions (group commit): one sync makes every deferred write durable
/// (blobs, keys, revisions), then one journal entry names each revision with its digest.
pub async fn commit_staged(
    store: &Store,
    journal: &Journal,
    actor: &str,
    action: &str,
    detail: Option<String>,
    subjects: Vec<Subject>,
) -> Result<JournalEntry> {
    store.sync_deferred().await?;
    let committed: Vec<Path> = subjects
        .iter()
        .filter_map(|s| {
            Some(keys::revision(
                ObjectKind::from_subject(&s.kind)?,
                &s.id,
                s.rev?,
            ))
        })
        .collect();
    let entry = journal
        .append(Draft {
            actor: actor.to_string(),
            action: action.to_string(),
            detail,
            subjects,
            payload_digest: None,
        })
        .await?;
    store.settled(committed.iter().map(|k| k.as_ref()));
    Ok(entry)
}

/// The keys of the committed revisions of object `id` of `kind`, oldest first. An
/// object no journal entry committed does not exist, whatever the store holds.
pub async fn revision_keys(journal: &Journal, kind: ObjectKind, id: &str) -> Result<Vec<Path>> {
    crate::ids::validate_id(id)?;
    let revs = journal
        .committed(kind, id)
        .await?
        .ok_or_else(|| Error::ObjectNotFound {
            key: format!("{} {id}", kind.subject()),
        })?;
    Ok(revs
        .into_iter()
        .map(|r| keys::revision(kind, id, r))
        .collect())
}

/// The latest committed revision of object `id` of `kind`, decoded, with the SHA-256 of
/// its bytes (the `prev_hash` its successor will carry).
pub async fn latest_revision<T>(
    store: &Store,
    journal: &Journal,
    kind: ObjectKind,
    id: &str,
    decode: fn(&str, &[u8]) -> Result<T>,
) -> Result<(T, String)> {
    let keys = revision_keys(journal, kind, id).await?;
    let last = keys.last().ok_or_else(|| Error::ObjectNotFound {
        key: format!("{} {id}", kind.subject()),
    })?;
    let bytes = store.get(last).await?;
    Ok((decode(last.as_ref(), &bytes)?, codec::sha256_hex(&bytes)))
}

/// The key of the latest committed revision of every object of `kind`, in id order.
pub async fn latest_keys(journal: &Journal, kind: ObjectKind) -> Result<Vec<Path>> {
    let ledger = journal.ledger_synced().await?;
    Ok(ledger
        .latest_of_kind(kind)
        .into_iter()
        .map(|(id, rev)| keys::revision(kind, &id, rev))
        .collect())
}

/// The number the next revision of object `id` gets when its latest committed revision
/// is `latest`: `latest + 1`, or past any crash leftovers that recovery set aside there
/// (they occupy their keys for good). A revision beyond `latest` that is committed means
/// the caller read a stale state (conflict: re-read and retry); one that is neither
/// committed nor recovered is another writer's commit in flight, or a leftover that
/// recovery has not decided yet (conflict as well).
pub async fn next_rev(
    store: &Store,
    journal: &Journal,
    kind: ObjectKind,
    id: &str,
    latest: u32,
) -> Result<u32> {
    let metas = store.list_sorted(&keys::revision_prefix(kind, id)).await?;
    let beyond: Vec<u32> = metas
        .iter()
        .filter_map(|m| match keys::classify(&m.location) {
            keys::KeyKind::Revision { rev, .. } if rev > latest => Some(rev),
            _ => None,
        })
        .collect();
    let mut next = latest + 1;
    if beyond.is_empty() {
        return Ok(next);
    }
    if beyond
        .iter()
        .any(|r| !journal.ledger().is_recovered(kind, id, *r))
    {
        journal.sync_ledger().await?;
    }
    for rev in beyond {
        let ledger = journal.ledger();
        if ledger.is_recovered(kind, id, rev) {
            next = next.max(rev + 1);
        } else {
            return Err(Error::RevisionConflict {
                id: id.to_string(),
                rev,
            });
        }
    }
    Ok(next)
}
