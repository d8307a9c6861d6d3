//! Reading records: committed revisions only (the ledger decides), content streams.

use bytes::Bytes;

use super::*;
use crate::audit::{self};
use crate::error::{Error, Result};
use crate::record::RecordRevision;
use crate::store::codec;
use crate::store::keys::{self, ObjectKind};

impl Archive {
    /// All revisions of a record with their stored bytes, oldest first.
    pub(super) async fn revisions_raw(&self, id: &str) -> Result<Vec<(RecordRevision, Bytes)>> {
        let keys = self.committed_keys(id).await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let bytes = self.store.get(&key).await?;
            let r = self
                .open_meta(RecordRevision::decode(key.as_ref(), &bytes)?)
                .await?;
            out.push((r, bytes));
        }
        Ok(out)
    }

    /// Keys of the record's committed revisions, oldest first (DESIGN §2.6: a revision
    /// no journal entry names does not exist).
    pub(super) async fn committed_keys(&self, id: &str) -> Result<Vec<object_store::path::Path>> {
        crate::ids::validate_id(id)?;
        audit::revision_keys(&self.journal, ObjectKind::Record, id)
            .await
            .map_err(|e| match e {
                Error::ObjectNotFound { .. } => Error::RecordNotFound { id: id.to_string() },
                e => e,
            })
    }

    /// The latest revision and the hash of its bytes.
    pub(super) async fn latest_raw(&self, id: &str) -> Result<(RecordRevision, String)> {
        let keys = self.committed_keys(id).await?;
        let last = keys
            .last()
            .ok_or_else(|| Error::RecordNotFound { id: id.to_string() })?;
        let bytes = self.store.get(last).await?;
        let r = self
            .open_meta(RecordRevision::decode(last.as_ref(), &bytes)?)
            .await?;
        Ok((r, codec::sha256_hex(&bytes)))
    }

    pub async fn latest(&self, id: &str) -> Result<RecordRevision> {
        Ok(self.latest_raw(id).await?.0)
    }

    pub async fn history(&self, id: &str) -> Result<Vec<RecordRevision>> {
        Ok(self
            .revisions_raw(id)
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    pub async fn revision(&self, id: &str, rev: u32) -> Result<RecordRevision> {
        crate::ids::validate_id(id)?;
        let key = keys::record_rev(id, rev);
        let committed = self
            .journal
            .committed(ObjectKind::Record, id)
            .await?
            .is_some_and(|r| r.contains(&rev));
        let found = if committed {
            self.store.get_opt(&key).await?
        } else {
            None
        };
        match found {
            Some(bytes) => {
                self.open_meta(RecordRevision::decode(key.as_ref(), &bytes)?)
                    .await
            }
            None => {
                // Distinguish an unknown record from an unknown revision.
                self.latest_raw(id).await?;
                Err(Error::RevisionNotFound {
                    id: id.to_string(),
                    rev,
                })
            }
        }
    }

    /// Opens the original content of a record (latest revision, or `rev`).
    pub async fn open_content(
        &self,
        id: &str,
        rev: Option<u32>,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<(
        RecordRevision,
        futures::stream::BoxStream<'static, Result<Bytes>>,
    )> {
        let r = self.content_revision(id, rev).await?;
        let stream = self.content_stream(&r, range).await?;
        Ok((r, stream))
    }

    /// The revision whose content a reader asks for (latest, or `rev`); refused once the
    /// record is disposed.
    pub async fn content_revision(&self, id: &str, rev: Option<u32>) -> Result<RecordRevision> {
        let latest = self.latest(id).await?;
        if latest.tombstone.is_some() {
            return Err(Error::Disposed { id: id.to_string() });
        }
        match rev {
            Some(n) if n != latest.rev => self.revision(id, n).await,
            _ => Ok(latest),
        }
    }

    /// Streams the content of `r`, optionally a byte range.
    pub async fn content_stream(
        &self,
        r: &RecordRevision,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes>>> {
        let (_, stream) = self
            .store
            .read_stream(&keys::blob(&r.content.sha256), range)
            .await?;
        Ok(stream)
    }
}
