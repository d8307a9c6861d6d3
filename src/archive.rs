//! The archive: records as chains of revisions over blobs, every change journaled.
//!
//! Order of writes for every change: blob → revision → journal entry. A change is
//! acknowledged (the method returns) only after the journal entry is durable. A crash
//! after the revision and before the journal entry leaves an *unjournaled revision*,
//! which `verify` reports and `verify --repair` completes (see ARCHITECTURE.md).
//!
//! Archiving identical content twice makes two records that share one blob: each
//! archiving is its own act with its own metadata and retention.

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::audit::{
    self,
    journal::{Journal, JournalEntry, Subject},
};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::record::{self, ContentRef, PartyLink, RecordRevision};
use crate::retention;
use crate::store::Store;
use crate::store::blob::{self, BlobRef};
use crate::store::codec;
use crate::store::content::Content;
use crate::store::keys::{self, ObjectKind};

/// A record written but not committed yet (see [`Archive::stage`]).
#[derive(Debug, Clone)]
pub struct Staged {
    pub archived: Archived,
    /// SHA-256 of the stored revision's bytes, which the journal entry commits to.
    digest: String,
}

/// Metadata for a new record.
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub class: Option<String>,
    pub title: Option<String>,
    pub document_date: Option<NaiveDate>,
    pub media_type: Option<String>,
    pub file_name: Option<String>,
    pub parties: Vec<PartyLink>,
    pub cases: Vec<String>,
    pub extra: std::collections::BTreeMap<String, String>,
}

/// Links to add to or remove from a record.
#[derive(Debug, Clone, Default)]
pub struct LinkChange {
    pub add_parties: Vec<PartyLink>,
    /// (party, role) pairs to remove; role `*` removes every link to the party.
    pub remove_parties: Vec<(String, String)>,
    pub add_cases: Vec<String>,
    pub remove_cases: Vec<String>,
    pub reason: Option<String>,
}

/// What an ingest acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Archived {
    pub id: String,
    pub rev: u32,
    pub sha256: String,
    pub size: u64,
    /// False when the content was already stored (deduplicated blob).
    pub new_blob: bool,
    pub retain_until: NaiveDate,
    pub journal_seq: u64,
    /// The revision written, in clear (for derived state such as the catalog).
    #[serde(skip)]
    pub revision: RecordRevision,
}

/// A metadata change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Amendment {
    pub title: Option<String>,
    pub class: Option<String>,
    pub document_date: Option<NaiveDate>,
    pub retain_until: Option<NaiveDate>,
    pub reason: Option<String>,
    /// The revision this amendment was made against; if a newer one exists the
    /// amendment is refused as a conflict (no lost updates).
    pub base_rev: Option<u32>,
}

/// A new content version.
#[derive(Debug, Clone, Default)]
pub struct NewContent {
    pub media_type: Option<String>,
    pub file_name: Option<String>,
    pub reason: Option<String>,
    /// What reading the new content found (text, e-invoice facts, why there is none):
    /// replaces what was found in the old content. `None` keeps the old facts.
    pub facts: Option<BTreeMap<String, String>>,
}

/// The `extra` keys that reading a record's content fills (and a new content version
/// replaces).
pub const CONTENT_FACTS: &[&str] = &[
    "text",
    "extraction",
    "einvoice",
    "invoice_number",
    "invoice_date",
    "due_date",
    "seller",
    "buyer",
    "seller_vat",
    "buyer_vat",
    "net_total",
    "gross_total",
    "currency",
];

pub const DEFAULT_CLASS: &str = "document";

#[derive(Debug, Clone)]
pub struct Archive {
    store: Store,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
    /// Commits in flight; see [`Archive::drain`].
    commits: tokio_util::task::TaskTracker,
    /// The retention catalogue in force.
    catalogue: Arc<retention::catalogue::Catalogue>,
    /// Per-record keys sealing titles and file names (destroyed at disposal).
    keys: Arc<crate::store::crypt::KeyStore>,
}

impl Archive {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Archive {
        let journal = Arc::new(Journal::new(store.clone(), clock.clone()));
        Archive {
            keys: Arc::new(crate::store::crypt::KeyStore::new(
                store.clone(),
                journal.clone(),
            )),
            store,
            journal,
            clock,
            commits: tokio_util::task::TaskTracker::new(),
            catalogue: Arc::new(retention::catalogue::Catalogue::shipped()),
        }
    }

    /// The same archive with another retention catalogue in force.
    pub fn with_catalogue(mut self, c: retention::catalogue::Catalogue) -> Archive {
        self.catalogue = Arc::new(c);
        self
    }

    pub fn catalogue(&self) -> &retention::catalogue::Catalogue {
        &self.catalogue
    }

    fn record_key_id(id: &str) -> String {
        format!("record-{id}")
    }

    /// Moves title, file name and extras into the block sealed with the record's key.
    async fn seal_meta(&self, r: RecordRevision) -> Result<RecordRevision> {
        if r.tombstone.is_some() {
            return Self::seal_with(r, None);
        }
        let key = self.keys.get_or_create(&Self::record_key_id(&r.id)).await?;
        Self::seal_with(r, Some(&key))
    }

    fn seal_with(mut r: RecordRevision, key: Option<&[u8; 32]>) -> Result<RecordRevision> {
        let Some(key) = key else {
            r.sealed = None;
            return Ok(r);
        };
        let meta = record::SealedMeta {
            title: std::mem::take(&mut r.title),
            file_name: r.content.file_name.take(),
            extra: std::mem::take(&mut r.extra),
        };
        let kid = Self::record_key_id(&r.id);
        r.sealed = Some(crate::store::crypt::seal(
            key,
            &kid,
            &codec::encode(&meta)?,
        )?);
        Ok(r)
    }

    /// A stored revision as readers see it: sealed metadata opened (or, once the record's
    /// key is destroyed by disposal, gone).
    pub async fn open_meta(&self, mut r: RecordRevision) -> Result<RecordRevision> {
        if let Some(s) = r.sealed.take() {
            let kid = Self::record_key_id(&r.id);
            if let Some(key) = self.keys.get(&kid).await? {
                let corrupt = |_| Error::CorruptObject {
                    key: keys::record_rev(&r.id, r.rev).to_string(),
                    reason: "sealed metadata do not authenticate with the record's key".into(),
                };
                let plain = crate::store::crypt::open(&key, &kid, &s).map_err(corrupt)?;
                let meta: record::SealedMeta =
                    codec::decode("record metadata", &plain).map_err(corrupt)?;
                r.title = meta.title;
                r.content.file_name = meta.file_name;
                r.extra = meta.extra;
            }
        }
        Ok(r)
    }

    /// Destroys a disposed record's metadata key (called by disposal only).
    pub(crate) async fn destroy_record_key(&self, id: &str) -> Result<()> {
        self.keys.destroy(&Self::record_key_id(id)).await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts a writer on this archive: takes the writer lock and records what a crash
    /// left behind (see `audit::recovery`). Keep the session for the writer's lifetime.
    pub async fn start_writer(&self) -> Result<audit::recovery::WriterSession> {
        audit::recovery::start_writer(
            &self.store,
            &self.journal,
            &self.clock,
            audit::recovery::ACTOR,
        )
        .await
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The shared journal handle (one head per process avoids needless races).
    pub fn journal_arc(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A fresh record id (time-ordered).
    pub fn new_id(&self) -> String {
        self.clock.new_id().to_string()
    }

    /// The first revision of a new record over `blob`; `media_type` is the checked or
    /// sniffed one.
    fn first_revision(
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
    fn class_and_title(meta: &NewRecord) -> Result<(String, String)> {
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
    /// email's attachments name their parent) before it is staged.
    pub async fn stage(
        &self,
        actor: &str,
        id: String,
        content: Content,
        meta: NewRecord,
    ) -> Result<Staged> {
        Self::class_and_title(&meta)?;
        crate::ids::validate_id(&id)?;
        let media_type = match &meta.media_type {
            Some(m) => validate_media_type(m)?,
            None => record::guess_media_type(meta.file_name.as_deref(), &content.head(8192)?),
        };
        let blob = match content {
            Content::Memory(bytes) if bytes.len() <= blob::INLINE_LIMIT => {
                blob::put_inline(&self.store, codec::sha256_hex(&bytes), bytes, true).await?
            }
            content => blob::put_stream(&self.store, &id, content.stream().await?).await?,
        };
        let revision = self.first_revision(actor, id.clone(), &blob, media_type, meta)?;
        let key = self
            .keys
            .create_fresh(&Self::record_key_id(&id), true)
            .await?;
        let sealed = Self::seal_with(revision.clone(), Some(&key))?;
        let digest =
            audit::stage_revision(&self.store, ObjectKind::Record, &id, 1, sealed.encode()?)
                .await?;
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
    /// Only when that entry is durable are the records archived and returned.
    ///
    /// Runs in its own task, like [`Archive::commit`]: a caller that goes away does not
    /// leave a synced batch without its entry.
    pub async fn commit_staged(&self, actor: &str, staged: Vec<Staged>) -> Result<Vec<Archived>> {
        if staged.is_empty() {
            return Ok(vec![]);
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
        Ok(staged
            .into_iter()
            .map(|s| Archived {
                journal_seq: entry.seq,
                ..s.archived
            })
            .collect())
    }

    /// Archives the bytes of `input` as a new record.
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

    /// Archives a local file, streamed.
    pub async fn archive_file(
        &self,
        actor: &str,
        path: &FsPath,
        mut meta: NewRecord,
    ) -> Result<Archived> {
        let file = open_file(path).await?;
        if meta.file_name.is_none() {
            meta.file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        }
        let stream = tokio_util_stream(file, path);
        self.archive(actor, Box::pin(stream), meta).await
    }

    /// Writes `revision` create-only, then journals it. Returns the journal entry.
    ///
    /// The two writes run in their own task: if the caller is dropped (a client hangs up,
    /// a request is cancelled) the commit still completes, so a revision is never left
    /// without its journal entry by cancellation.
    async fn commit(
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

    /// All revisions of a record with their stored bytes, oldest first.
    async fn revisions_raw(&self, id: &str) -> Result<Vec<(RecordRevision, Bytes)>> {
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
    async fn committed_keys(&self, id: &str) -> Result<Vec<object_store::path::Path>> {
        crate::ids::validate_id(id)?;
        audit::revision_keys(&self.journal, ObjectKind::Record, id)
            .await
            .map_err(|e| match e {
                Error::ObjectNotFound { .. } => Error::RecordNotFound { id: id.to_string() },
                e => e,
            })
    }

    /// The number of the record's next revision after `prev` (past crash leftovers).
    async fn next_rev(&self, prev: &RecordRevision) -> Result<u32> {
        audit::next_rev(
            &self.store,
            &self.journal,
            ObjectKind::Record,
            &prev.id,
            prev.rev,
        )
        .await
    }

    /// The latest revision and its hash, refusing a disposed record (no change after
    /// disposal).
    async fn latest_live(&self, id: &str) -> Result<(RecordRevision, String)> {
        let (r, h) = self.latest_raw(id).await?;
        if r.tombstone.is_some() {
            return Err(Error::Disposed { id: id.to_string() });
        }
        Ok((r, h))
    }

    /// Writes the tombstone revision of a disposed record (called by disposal only).
    pub(crate) async fn write_tombstone(
        &self,
        actor: &str,
        id: &str,
        t: crate::record::Tombstone,
    ) -> Result<RecordRevision> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        let mut next = prev.clone();
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "disposed".into();
        next.reason = Some(t.reason.clone());
        // No personal data in the tombstone: title, file name, links and extras go.
        next.title = String::new();
        next.content.file_name = None;
        next.parties = vec![];
        next.extra = Default::default();
        next.tombstone = Some(t);
        self.commit(next.clone(), "record.dispose", Some("disposed".into()))
            .await?;
        Ok(next)
    }

    /// The latest revision and the hash of its bytes.
    async fn latest_raw(&self, id: &str) -> Result<(RecordRevision, String)> {
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

    /// Amends metadata by writing a new revision.
    pub async fn amend(&self, actor: &str, id: &str, a: Amendment) -> Result<RecordRevision> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        if let Some(base) = a.base_rev
            && base != prev.rev
        {
            return Err(Error::RevisionConflict {
                id: id.to_string(),
                rev: prev.rev,
            });
        }
        let mut next = prev.clone();
        let mut changed = Vec::new();
        if let Some(t) = a.title
            && t != prev.title
        {
            record::validate_title(&t)?;
            next.title = t;
            changed.push("title");
        }
        if let Some(c) = a.class
            && c != prev.class
        {
            crate::ids::validate_class(&c)?;
            next.class = c;
            changed.push("class");
        }
        if let Some(d) = a.document_date
            && Some(d) != prev.document_date
        {
            next.document_date = Some(d);
            changed.push("document_date");
        }
        if changed
            .iter()
            .any(|c| *c == "class" || *c == "document_date")
        {
            let trigger = next.document_date.unwrap_or(next.archived_at.date_naive());
            next.retention = self
                .catalogue
                .recompute(&prev.retention, &next.class, trigger);
        }
        if let Some(until) = a.retain_until {
            if until < next.retention.retain_until {
                let e = Error::RetentionShortening {
                    id: id.to_string(),
                    current: next.retention.retain_until.to_string(),
                    requested: until.to_string(),
                };
                self.journal_refusal(actor, id, "shorten retention", &e)
                    .await;
                return Err(e);
            }
            if until != next.retention.retain_until {
                next.retention.retain_until = until;
                next.retention.policy = format!(
                    "{}+extended",
                    prev.retention.policy.trim_end_matches("+extended")
                );
                changed.push("retain_until");
            }
        }
        if next.retention != prev.retention && !changed.contains(&"retain_until") {
            changed.push("retention");
        }
        if changed.is_empty() {
            return Err(Error::invalid("amendment", "nothing would change"));
        }
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = changed.join(", ");
        next.reason = a.reason;
        self.commit(next.clone(), "record.amend", Some(next.change.clone()))
            .await?;
        Ok(next)
    }

    /// Records the event an event-triggered retention waits for (contract end, case
    /// closed): the period then runs from the end of the event's year. Only extends.
    pub async fn record_event(
        &self,
        actor: &str,
        id: &str,
        date: NaiveDate,
        reason: Option<String>,
    ) -> Result<RecordRevision> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        if !self.catalogue.entry(&prev.class).is_event() {
            return Err(Error::invalid(
                "class",
                format!(
                    "retention of class {} does not wait for an event",
                    prev.class
                ),
            ));
        }
        let mut next = prev.clone();
        next.retention = self
            .catalogue
            .apply_event(&prev.retention, &prev.class, date);
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = format!("retention event {date}");
        next.reason = reason;
        self.commit(
            next.clone(),
            "record.retention",
            Some(format!(
                "event {date}: retained until {}",
                next.retention.retain_until
            )),
        )
        .await?;
        Ok(next)
    }

    /// Recomputes a record's retention with the catalogue in force (after a catalogue
    /// change). Writes a revision only when the period grows; never shortens.
    pub async fn recompute_retention(
        &self,
        actor: &str,
        id: &str,
    ) -> Result<Option<RecordRevision>> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        let trigger = prev.document_date.unwrap_or(prev.archived_at.date_naive());
        let r = self
            .catalogue
            .recompute(&prev.retention, &prev.class, trigger);
        if r.retain_until <= prev.retention.retain_until {
            return Ok(None);
        }
        let mut next = prev.clone();
        next.retention = r;
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "retention".into();
        next.reason = Some(format!("catalogue {}", self.catalogue.version));
        self.commit(
            next.clone(),
            "record.retention",
            Some(format!("retained until {}", next.retention.retain_until)),
        )
        .await?;
        Ok(Some(next))
    }

    /// Adds or removes links to parties and cases, as a new revision.
    pub async fn change_links(
        &self,
        actor: &str,
        id: &str,
        ch: LinkChange,
    ) -> Result<RecordRevision> {
        // A tombstone is final: no links are added to (or taken from) a disposed record.
        let (prev, prev_hash) = self.latest_live(id).await?;
        let mut next = prev.clone();
        for l in &ch.add_parties {
            crate::ids::validate_id(&l.party)
                .map_err(|_| Error::invalid("party", format!("{:?} is not a party id", l.party)))?;
            crate::ids::validate_class(&l.role)
                .map_err(|_| Error::invalid("role", format!("{:?} is not a role name", l.role)))?;
        }
        next.parties.retain(|l| {
            !ch.remove_parties
                .iter()
                .any(|(p, r)| *p == l.party && (r == "*" || *r == l.role))
        });
        for l in ch.add_parties {
            if !next
                .parties
                .iter()
                .any(|x| x.party == l.party && x.role == l.role)
            {
                next.parties.push(l);
            }
        }
        for c in &ch.add_cases {
            crate::ids::validate_id(c)
                .map_err(|_| Error::invalid("case", format!("{c:?} is not a case id")))?;
        }
        next.cases.retain(|c| !ch.remove_cases.contains(c));
        for c in ch.add_cases {
            if !next.cases.contains(&c) {
                next.cases.push(c);
            }
        }
        if next.parties == prev.parties && next.cases == prev.cases {
            return Err(Error::invalid("links", "nothing would change"));
        }
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "links".into();
        next.reason = ch.reason;
        self.commit(next.clone(), "record.link", Some("links".into()))
            .await?;
        Ok(next)
    }

    /// Adds a new content version: a new blob and a new revision pointing to it.
    pub async fn amend_content<S, E>(
        &self,
        actor: &str,
        id: &str,
        input: S,
        meta: NewContent,
    ) -> Result<RecordRevision>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: Into<Error>,
    {
        let _upload = self.store.upload_guard().await;
        let (prev, prev_hash) = self.latest_live(id).await?;
        let mut input = input;
        let first = input.try_next().await.map_err(Into::into)?;
        let file_name = meta.file_name.or(prev.content.file_name.clone());
        let media_type = match meta.media_type {
            Some(m) => validate_media_type(&m)?,
            None => {
                record::guess_media_type(file_name.as_deref(), first.as_deref().unwrap_or_default())
            }
        };
        let rest =
            futures::stream::iter(first.map(Ok::<Bytes, Error>)).chain(input.map_err(Into::into));
        // Unique per call: two uploads of the same record never share a staging name.
        let staging = format!("{id}-{}", self.clock.new_id());
        let blob = blob::put_stream(&self.store, &staging, Box::pin(rest)).await?;
        let mut next = prev.clone();
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "content".into();
        next.reason = meta.reason;
        next.content = content_ref(&blob, media_type, file_name, prev.content.version + 1);
        if let Some(facts) = meta.facts {
            next.extra
                .retain(|k, _| !CONTENT_FACTS.contains(&k.as_str()));
            next.extra.extend(facts);
        }
        self.commit(
            next.clone(),
            "record.content",
            Some(format!("content v{}", next.content.version)),
        )
        .await?;
        Ok(next)
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

    /// Refuses deletion, always: records leave only through an approved disposal request.
    /// The attempt is journaled.
    pub async fn delete(&self, actor: &str, id: &str) -> Result<()> {
        let (r, _) = self.latest_live(id).await?;
        let e = Error::Retained {
            id: id.to_string(),
            retain_until: format!(
                "{} (records are removed only by an approved disposal request)",
                r.retention.retain_until
            ),
        };
        self.journal_refusal(actor, id, "delete", &e).await;
        Err(e)
    }

    /// Journals a refused attempt to remove or shorten the retention of a record: an
    /// auditor sees the attempt, not only its absence of effect.
    async fn journal_refusal(&self, actor: &str, id: &str, what: &str, e: &Error) {
        let draft = crate::audit::journal::Draft {
            actor: actor.to_string(),
            action: "retention.refused".into(),
            subjects: vec![crate::audit::journal::Subject {
                kind: "record".into(),
                id: id.to_string(),
                rev: None,
                digest: None,
            }],
            payload_digest: None,
            detail: Some(format!("{what}: {e}")),
        };
        if let Err(err) = self.journal.append(draft).await {
            tracing::error!("could not journal a refused {what} of {id}: {err}");
        }
    }
}

fn content_ref(
    blob: &BlobRef,
    media_type: String,
    file_name: Option<String>,
    version: u32,
) -> ContentRef {
    ContentRef {
        sha256: blob.sha256.clone(),
        size: blob.size,
        media_type,
        file_name,
        version,
    }
}

/// Record ids are UUIDs; anything else is refused before it reaches a key.
/// Checks a new record's metadata (class, title, media type) before anything is written.
pub fn check_new(meta: &NewRecord) -> Result<()> {
    Archive::class_and_title(meta)?;
    if let Some(m) = &meta.media_type {
        validate_media_type(m)?;
    }
    Ok(())
}

pub fn validate_media_type(m: &str) -> Result<String> {
    let ok = m.len() <= 255
        && m.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && m.bytes().all(|c| c.is_ascii_graphic() || c == b' ')
        });
    if ok {
        Ok(m.to_ascii_lowercase())
    } else {
        Err(Error::invalid(
            "media_type",
            format!("{m:?} is not a media type"),
        ))
    }
}

async fn open_file(path: &FsPath) -> Result<tokio::fs::File> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| Error::io(path.display(), e))?;
    if !meta.is_file() {
        return Err(Error::invalid(
            "file",
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// Reads a file as a stream of 1 MiB chunks.
fn tokio_util_stream(
    file: tokio::fs::File,
    path: &FsPath,
) -> impl Stream<Item = Result<Bytes>> + use<> {
    let path = path.display().to_string();
    futures::stream::try_unfold((file, path), |(mut file, path)| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1024 * 1024];
        let mut filled = 0;
        while filled < buf.len() {
            let n = file
                .read(&mut buf[filled..])
                .await
                .map_err(|e| Error::io(&path, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(None);
        }
        buf.truncate(filled);
        Ok(Some((Bytes::from(buf), (file, path))))
    })
}
