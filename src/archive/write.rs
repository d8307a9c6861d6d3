//! Writing new records: stage and group-commit, or one record streamed (`archive`).

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use super::*;
use crate::audit::{
    self,
    journal::{JournalEntry, Subject},
};
use crate::error::{Error, Result};
use crate::record::{self, RecordRevision};
use crate::store::Created;
use crate::store::blob::{self, BlobRef};
use crate::store::codec;
use crate::store::content::Content;
use crate::store::crypt::KeyStore;
use crate::store::keys::ObjectKind;

impl Archive {
    /// The first revision of a new record over `blob`; `media_type` is the checked or
    /// sniffed one.
    pub(super) fn first_revision(
        &self,
        actor: &str,
        id: String,
        blob: &BlobRef,
        media_type: String,
        meta: NewRecord,
    ) -> Result<RecordRevision> {
        let (class, title) = Self::class_and_title(&meta)?;
        let now = self.clock.now();
        let trigger = meta.document_date.unwrap_or(now.date_naive());
        Ok(RecordRevision {
            format: record::FORMAT,
            id,
            rev: 1,
            prev_hash: None,
            retention: self.catalogue.compute(&class, trigger),
            class,
            title,
            document_date: meta.document_date,
            archived_at: now,
            revised_at: now,
            actor: actor.to_string(),
            change: "created".into(),
            reason: None,
            content: content_ref(blob, media_type, meta.file_name, 1),
            parties: meta.parties,
            holds: vec![],
            cases: meta.cases,
            extra: meta.extra,
            tombstone: None,
            sealed: None,
        })
    }

    /// Class and title of a new record, checked.
    pub(super) fn class_and_title(meta: &NewRecord) -> Result<(String, String)> {
        let class = meta
            .class
            .clone()
            .unwrap_or_else(|| DEFAULT_CLASS.to_string());
        crate::ids::validate_class(&class)?;
        let title = meta
            .title
            .clone()
            .or_else(|| meta.file_name.clone())
            .unwrap_or_default();
        record::validate_title(&title)?;
        Ok((class, title))
    }

    /// Writes a new record's blob, key and first revision *without* committing it: the
    /// record does not exist until [`Archive::commit_staged`] has journaled it, and
    /// nothing may report it archived before. The writes are deferred (on the local
    /// store, no fsync each): a batch shares one sync, then one journal entry.
    ///
    /// `id` comes from [`Archive::new_id`], so that a caller can name the record (an
    /// email's attachments name their parent) before it is staged. `sha256` is the hash
    /// of `content` when the caller computed it already (from the same bytes).
    pub async fn stage(
        &self,
        actor: &str,
        id: String,
        content: Content,
        meta: NewRecord,
        sha256: Option<String>,
    ) -> Result<Staged> {
        Self::class_and_title(&meta)?;
        crate::ids::validate_id(&id)?;
        let media_type = match &meta.media_type {
            Some(m) => validate_media_type(m)?,
            None => record::guess_media_type(meta.file_name.as_deref(), &content.head(8192)?),
        };
        // A blob in memory is written with the record's data key and revision, in one
        // hand-off to the store (a bulk import stages thousands of records a second);
        // a larger one is streamed first.
        let (mut blob, inline) = match content {
            Content::Memory(bytes) if bytes.len() <= blob::INLINE_LIMIT => {
                let sha256 = sha256.unwrap_or_else(|| codec::sha256_hex(&bytes));
                self.store.wait_unreserved(&sha256).await;
                let blob = BlobRef {
                    sha256,
                    size: bytes.len() as u64,
                    new: true,
                };
                (blob, Some(bytes))
            }
            content => (
                blob::put_stream(&self.store, &id, content.stream().await?).await?,
                None,
            ),
        };
        let revision = self.first_revision(actor, id.clone(), &blob, media_type, meta)?;
        let key_id = Self::record_key_id(&id);
        let (key, key_path, key_file) = KeyStore::fresh(&key_id)?;
        let sealed = Self::seal_with(revision.clone(), Some(&key))?;
        let (rev_path, rev_bytes, digest) =
            audit::revision_to_stage(&self.store, ObjectKind::Record, &id, 1, sealed.encode()?)?;
        let mut writes = Vec::with_capacity(3);
        if let Some(bytes) = &inline {
            writes.push((crate::store::keys::blob(&blob.sha256), bytes.clone()));
        }
        writes.push((key_path, key_file));
        writes.push((rev_path.clone(), rev_bytes));
        let wanted = writes.len();
        let mut made = self.store.put_new_deferred_all(writes).await.into_iter();
        let blob_made = match &inline {
            Some(_) => made.next(),
            None => None,
        };
        let (key_made, rev_made) = (made.next(), made.next());
        let Some(rev_made) = rev_made else {
            // A write before the revision failed, and the revision was not made.
            self.store.settled([rev_path.as_ref()]);
            let failed = blob_made.into_iter().chain(key_made).find_map(Result::err);
            return Err(failed.unwrap_or_else(|| {
                Error::Internal(format!("the store made fewer than {wanted} writes"))
            }));
        };
        // Checked first: a revision already there is a conflict, and none of ours.
        audit::revision_staged(&self.store, &rev_path, rev_made?, &id, 1)?;
        if let Some(key_made) = key_made {
            KeyStore::fresh_created(&key_id, key_made?)?;
        }
        if let (Some(bytes), Some(blob_made)) = (inline, blob_made) {
            let created = blob_made?;
            blob.new = created == Created::New;
            if created == Created::Existed {
                blob::trust_existing(&self.store, &blob.sha256, bytes).await?;
            }
        }
        Ok(Staged {
            archived: Archived {
                id,
                rev: 1,
                sha256: blob.sha256,
                size: blob.size,
                new_blob: blob.new,
                retain_until: revision.retention.retain_until,
                journal_seq: 0,
                revision,
            },
            digest,
        })
    }

    /// Commits staged records (group commit): one sync makes their blobs, keys and
    /// revisions durable, then one journal entry names every revision with its digest.
    /// Only when that entry is durable are the records archived and returned, with the
    /// entry (none for an empty batch).
    ///
    /// Runs in its own task, like [`Archive::commit`]: a caller that goes away does not
    /// leave a synced batch without its entry.
    pub async fn commit_staged(
        &self,
        actor: &str,
        staged: Vec<Staged>,
    ) -> Result<Option<(JournalEntry, Vec<Archived>)>> {
        if staged.is_empty() {
            return Ok(None);
        }
        let subjects = staged
            .iter()
            .map(|s| Subject {
                kind: "record".into(),
                id: s.archived.id.clone(),
                rev: Some(1),
                digest: Some(s.digest.clone()),
            })
            .collect::<Vec<_>>();
        let (store, journal, actor) = (self.store.clone(), self.journal.clone(), actor.to_string());
        let detail = Some(format!("group commit of {} records", subjects.len()));
        let task = self.commits.spawn(async move {
            audit::commit_staged(&store, &journal, &actor, "record.create", detail, subjects).await
        });
        let entry = task
            .await
            .map_err(|e| Error::Internal(format!("commit task: {e}")))??;
        let archived = staged
            .into_iter()
            .map(|s| Archived {
                journal_seq: entry.seq,
                ..s.archived
            })
            .collect();
        Ok(Some((entry, archived)))
    }

    /// Archives the bytes of `input` as a new record with exactly the metadata given —
    /// nothing read, classified or linked. The primitive under fixtures and benchmarks;
    /// every entry point of the product goes through `ingest::Ingest`.
    pub async fn archive<S, E>(&self, actor: &str, input: S, meta: NewRecord) -> Result<Archived>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: Into<Error>,
    {
        Self::class_and_title(&meta)?;
        let id = self.clock.new_id().to_string();
        let _upload = self.store.upload_guard().await;

        // Peek at the first chunk for media-type sniffing without buffering the rest.
        let mut input = input;
        let first = input.try_next().await.map_err(Into::into)?;
        let media_type = match &meta.media_type {
            Some(m) => validate_media_type(m)?,
            None => record::guess_media_type(
                meta.file_name.as_deref(),
                first.as_deref().unwrap_or_default(),
            ),
        };
        let rest =
            futures::stream::iter(first.map(Ok::<Bytes, Error>)).chain(input.map_err(Into::into));
        let blob = blob::put_stream(&self.store, &id, Box::pin(rest)).await?;
        let revision = self.first_revision(actor, id.clone(), &blob, media_type, meta)?;
        let entry = self.commit(revision.clone(), "record.create", None).await?;
        Ok(Archived {
            id,
            rev: 1,
            sha256: blob.sha256,
            size: blob.size,
            new_blob: blob.new,
            retain_until: revision.retention.retain_until,
            journal_seq: entry.seq,
            revision,
        })
    }

    /// Writes `revision` create-only, then journals it. Returns the journal entry.
    ///
    /// The two writes run in their own task: if the caller is dropped (a client hangs up,
    /// a request is cancelled) the commit still completes, so a revision is never left
    /// without its journal entry by cancellation.
    pub(super) async fn commit(
        &self,
        revision: RecordRevision,
        action: &str,
        detail: Option<String>,
    ) -> Result<JournalEntry> {
        let revision = self.seal_meta(revision).await?;
        let bytes = revision.encode()?;
        let (store, journal) = (self.store.clone(), self.journal.clone());
        let action = action.to_string();
        let task = self.commits.spawn(async move {
            audit::commit_revision(
                &store,
                &journal,
                ObjectKind::Record,
                &revision.id,
                revision.rev,
                bytes,
                &revision.actor,
                &action,
                detail,
            )
            .await
        });
        task.await
            .map_err(|e| Error::Internal(format!("commit task: {e}")))?
    }

    /// Waits for every commit in flight (graceful shutdown).
    pub async fn drain(&self) {
        self.commits.close();
        self.commits.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, keys};

    /// Stages `bytes` as a letter titled `title` under `id`.
    async fn stage(
        archive: &Archive,
        id: String,
        bytes: Bytes,
        title: &str,
        sha256: Option<String>,
    ) -> Result<Staged> {
        let meta = NewRecord {
            class: Some("letter".into()),
            title: Some(title.into()),
            ..Default::default()
        };
        archive
            .stage("tester", id, Content::Memory(bytes), meta, sha256)
            .await
    }

    /// A record staged in one hand-off (blob, data key, revision) reads back whole after
    /// its commit; a blob a crash left torn is healed, and a second record on the same
    /// bytes deduplicates onto the healed blob.
    #[tokio::test]
    async fn staged_records_heal_a_torn_blob_and_deduplicate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let archive = Archive::new(store.clone(), Arc::new(crate::clock::SystemClock));
        let data = Bytes::from_static(b"Sehr geehrte Damen und Herren, anbei die Rechnung.");
        let sha = codec::sha256_hex(&data);
        let path = dir.path().join(keys::blob(&sha).as_ref());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"Sehr geehrte").unwrap();

        let first = stage(&archive, archive.new_id(), data.clone(), "Rechnung", None)
            .await
            .unwrap();
        assert!(!first.archived.new_blob, "the torn file was there");
        let other = Bytes::from_static(b"a different letter");
        let second = stage(
            &archive,
            archive.new_id(),
            other.clone(),
            "Brief",
            Some(codec::sha256_hex(&other)),
        )
        .await
        .unwrap();
        assert!(second.archived.new_blob);
        let (id1, id2) = (first.archived.id.clone(), second.archived.id.clone());
        let (entry, archived) = archive
            .commit_staged("tester", vec![first, second])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(archived.len(), 2);
        assert!(archived.iter().all(|a| a.journal_seq == entry.seq));

        assert_eq!(store.get(&keys::blob(&sha)).await.unwrap(), data);
        let kept = store.list_sorted(&keys::quarantine_prefix()).await.unwrap();
        assert_eq!(kept.len(), 1, "the torn bytes are kept as evidence");
        let r1 = archive.latest(&id1).await.unwrap();
        assert_eq!(r1.title, "Rechnung");
        assert_eq!(r1.content.sha256, sha);
        let r2 = archive.latest(&id2).await.unwrap();
        assert_eq!(r2.title, "Brief");

        let again = stage(
            &archive,
            archive.new_id(),
            data.clone(),
            "Rechnung, noch einmal",
            None,
        )
        .await
        .unwrap();
        assert!(!again.archived.new_blob);
        archive
            .commit_staged("tester", vec![again])
            .await
            .unwrap()
            .unwrap();
        let kept = store.list_sorted(&keys::quarantine_prefix()).await.unwrap();
        assert_eq!(kept.len(), 1, "an intact blob is not healed again");
    }

    /// Deferred writes whose blobs fail (a full disk, say); the rest go to `inner`.
    #[derive(Debug)]
    struct BlobsFail {
        inner: Store,
    }

    impl crate::store::DeferredWrites for BlobsFail {
        fn put_new(
            &self,
            key: &object_store::path::Path,
            bytes: Bytes,
        ) -> futures::future::BoxFuture<'static, Result<Created>> {
            let blob = matches!(keys::classify(key), keys::KeyKind::Blob { .. });
            let (store, key) = (self.inner.clone(), key.clone());
            Box::pin(async move {
                if blob {
                    return Err(Error::Internal("no space left on the device".into()));
                }
                store.put_new(&key, bytes).await
            })
        }

        fn sync(&self) -> futures::future::BoxFuture<'static, Result<()>> {
            Box::pin(async { Ok(()) })
        }
    }

    /// A record whose blob cannot be written is not staged: its data key and revision
    /// are not written either, and nothing is left for recovery (the session can end
    /// clean).
    #[tokio::test]
    async fn a_failed_blob_write_stages_nothing_and_leaves_nothing_unsettled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let inner = Store::open(root).unwrap();
        let store = Store::open(root)
            .unwrap()
            .with_deferred(Arc::new(BlobsFail { inner }));
        let archive = Archive::new(store.clone(), Arc::new(crate::clock::SystemClock));
        let id = archive.new_id();
        let r = stage(
            &archive,
            id.clone(),
            Bytes::from_static(b"Lieferschein 12"),
            "Lieferschein",
            None,
        )
        .await;
        assert!(
            r.as_ref()
                .is_err_and(|e| e.to_string().contains("no space left")),
            "{r:?}"
        );
        let revision = dir
            .path()
            .join(keys::revision(ObjectKind::Record, &id, 1).as_ref());
        assert!(!revision.exists());
        let key = dir
            .path()
            .join(keys::party_key(&Archive::record_key_id(&id)).as_ref());
        assert!(!key.exists());
        assert_eq!(store.end_writing(|unsettled| unsettled), 0);
    }

    /// A revision that is already there is a conflict, not overwritten.
    #[tokio::test]
    async fn staging_onto_an_existing_revision_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let archive = Archive::new(store.clone(), Arc::new(crate::clock::SystemClock));
        let id = archive.new_id();
        let path = dir
            .path()
            .join(keys::revision(ObjectKind::Record, &id, 1).as_ref());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        let r = stage(&archive, id.clone(), Bytes::from_static(b"x"), "x", None).await;
        assert!(
            matches!(r, Err(Error::RevisionConflict { rev: 1, .. })),
            "{r:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
        // Not ours: nothing for recovery to finish.
        assert_eq!(store.end_writing(|unsettled| unsettled), 0);
    }
}
