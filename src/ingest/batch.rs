//! The one ingest pipeline. Every way content enters goes through [`Ingest::ingest`]:
//! `POST /v1/records` (raw and multipart), `POST /v1/emails`, `POST /v1/imports`,
//! `akte archive`, `akte import`, notes — a single upload is a batch of one. (A new
//! content version of an existing record takes the same extraction and facts through
//! [`Ingest::new_content`].)
//!
//! 1. Every item is hashed on the blocking pool, on all cores (a file in chunks).
//! 2. Duplicates are set aside: bytes the catalog already holds, and copies within the
//!    batch. Nothing is written for them, and they are not parsed. (Unless the caller
//!    archives every copy as an act of its own: `IngestDefaults::keep_copies`.)
//! 3. New emails are parsed, and documents and attachments extracted, in the worker
//!    processes of `extract::sandbox` (time and memory limits).
//!    Then the plan of each record: what the caller said wins (class, parties, title,
//!    date), then the classification rules (`rules.rs`, the rule named in
//!    `extra.class_rule`), e-invoice facts, and auto-links by email addresses and
//!    domains, identifiers in the title, file name and labelled in the text, and an
//!    e-invoice's VAT IDs.
//! 4. Every new record (each email, each attachment, each document) is *staged*: blob,
//!    key and revision are written without an fsync each.
//! 5. One commit makes the batch durable (one sync) and journals it in one entry. Only
//!    then is anything reported archived.
//!
//! A failure to stage one item (an attachment, say) is reported on that item; a failure
//! of the commit fails the whole batch, and nothing of it is reported archived.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use chrono::NaiveDate;

use super::Ingest;
use super::plan::{Found, apply, media_of};
use crate::archive::{Archived, NewRecord, Staged};
use crate::catalog::{LinkBrief, Match};
use crate::error::{Error, Result};
use crate::extract::mail::MailFacts;
use crate::extract::sandbox::Outcome;
use crate::record::{PartyLink, RecordRevision};
use crate::store::content::Content;

/// Defaults for everything one ingest archives.
#[derive(Debug, Clone, Default)]
pub struct IngestDefaults {
    /// Class of every item (default: by the rules, else `email` or `document`).
    pub class: Option<String>,
    pub parties: Vec<PartyLink>,
    pub cases: Vec<String>,
    /// Archive the same bytes again as a record of its own (an explicit upload is an act
    /// of its own, DESIGN: same content twice) instead of answering "duplicate" (imports
    /// and emails, which are idempotent).
    pub keep_copies: bool,
    /// The SMTP envelope the message arrived with (journaling), kept with its record.
    pub envelope: Option<Envelope>,
    /// Facts about where every item came from (`folder` of a mailbox), kept in each
    /// item's record beside what ingest finds.
    pub extra: BTreeMap<String, String>,
}

/// What the sending server said of a message it delivered (SMTP `MAIL FROM`, every
/// `RCPT TO`): the Bcc recipients are here and nowhere in the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
}

/// What the caller says of one document, winning over what ingest would find.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub title: Option<String>,
    pub document_date: Option<NaiveDate>,
    pub media_type: Option<String>,
    /// Sender and recipient addresses, for auto-links.
    pub from: Vec<String>,
    pub to: Vec<String>,
    /// Further metadata (a note's duration and author).
    pub extra: BTreeMap<String, String>,
}

/// What archiving one item did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ItemOutcome {
    /// The item's record (the existing one for a duplicate).
    pub id: String,
    /// The same bytes were archived before: nothing was written.
    pub duplicate: bool,
    pub sha256: String,
    pub size: u64,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    /// Other records with the same Message-ID but different bytes (kept, marked related).
    pub related: Vec<String>,
    /// Records made from the attachments (each also a content-addressed blob).
    pub attachments: Vec<String>,
    /// Parties linked automatically, and why.
    pub auto_links: Vec<LinkBrief>,
    /// Evidence that names more than one party: nothing was linked for it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ambiguous: Vec<Match>,
    /// What went wrong while reading the item, though it was archived (a message the
    /// parser cannot read, an attachment without text): each problem named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extraction_failed: Option<String>,
    /// The item's own record as committed (not for duplicates).
    #[serde(skip)]
    pub archived: Option<Archived>,
}

/// Records staged at once while a batch is written.
const STAGE_PARALLEL: usize = 8;

/// One item to archive.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// Raw RFC 5322 bytes.
    Email(Bytes),
    /// Any other file; `file_name` is the name it had (sanitised before it is kept).
    Document {
        content: Content,
        file_name: Option<String>,
        given: Box<Given>,
    },
}

impl Incoming {
    /// A document with nothing said about it but its name.
    pub fn document(content: Content, file_name: Option<String>) -> Incoming {
        Incoming::Document {
            content,
            file_name,
            given: Box::default(),
        }
    }

    /// How many bytes the item has.
    pub fn len(&self) -> u64 {
        match self {
            Incoming::Email(b) => b.len() as u64,
            Incoming::Document { content, .. } => content.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item's bytes when they are in memory (emails, small documents).
    pub fn in_memory(&self) -> Option<&Bytes> {
        match self {
            Incoming::Email(b) => Some(b),
            Incoming::Document {
                content: Content::Memory(b),
                ..
            } => Some(b),
            Incoming::Document { .. } => None,
        }
    }
}

/// An item after hashing and parsing, before anything is written.
pub(super) struct Prepared {
    pub(super) sha: String,
    pub(super) size: u64,
    pub(super) is_email: bool,
    pub(super) facts: MailFacts,
    /// Why parsing failed (the original is archived all the same).
    pub(super) failed: Option<String>,
    pub(super) item: Incoming,
}

/// An item hashed, before it is parsed. (Emails are parsed later, and only if new.)
fn prepared(item: Incoming, sha: String) -> Prepared {
    Prepared {
        sha,
        size: item.len(),
        is_email: matches!(item, Incoming::Email(_)),
        facts: MailFacts::default(),
        failed: None,
        item,
    }
}

/// How many bytes of items in memory one task of the blocking pool hashes: a bulk
/// import's emails are a few KB each, and a task per email cost more in hand-offs than
/// in hashing.
const HASH_CHUNK: usize = 4 << 20;

/// Items to hash in one task of the blocking pool: items in memory up to
/// [`HASH_CHUNK`] bytes together, an item in a file alone.
enum HashJob {
    Memory(Vec<(Bytes, Incoming)>),
    File(Incoming),
}

/// Every item hashed on the blocking pool, `STAGE_PARALLEL` tasks at a time; in order.
async fn prepare_all(items: Vec<Incoming>) -> Result<Vec<Prepared>> {
    let mut jobs = Vec::new();
    let mut memory = Vec::new();
    let mut bytes = 0;
    for item in items {
        match item.in_memory().cloned() {
            Some(b) => {
                bytes += b.len();
                memory.push((b, item));
                if bytes >= HASH_CHUNK {
                    jobs.push(HashJob::Memory(std::mem::take(&mut memory)));
                    bytes = 0;
                }
            }
            None => {
                if !memory.is_empty() {
                    jobs.push(HashJob::Memory(std::mem::take(&mut memory)));
                    bytes = 0;
                }
                jobs.push(HashJob::File(item));
            }
        }
    }
    if !memory.is_empty() {
        jobs.push(HashJob::Memory(memory));
    }
    let done: Vec<Vec<Prepared>> = futures::stream::iter(jobs)
        .map(|job| async move {
            match job {
                HashJob::Memory(items) => tokio::task::spawn_blocking(move || {
                    items
                        .into_iter()
                        .map(|(b, item)| prepared(item, crate::store::codec::sha256_hex(&b)))
                        .collect()
                })
                .await
                .map_err(|e| Error::Internal(format!("hash task: {e}"))),
                HashJob::File(item) => {
                    let sha = match &item {
                        Incoming::Email(b) => Content::Memory(b.clone()).sha256().await?,
                        Incoming::Document { content, .. } => content.sha256().await?,
                    };
                    Ok(vec![prepared(item, sha)])
                }
            }
        })
        .buffered(STAGE_PARALLEL)
        .try_collect()
        .await?;
    Ok(done.into_iter().flatten().collect())
}

/// What one new item will write: its own record and its attachments'.
pub(super) struct Plan {
    pub(super) index: usize,
    pub(super) id: String,
    pub(super) content: Content,
    pub(super) meta: NewRecord,
    pub(super) attachments: Vec<(String, Bytes, NewRecord)>,
}

/// A batch hashed, parsed and planned, nothing of it written yet
/// ([`Ingest::plan_batch`], then [`Ingest::write_batch`]).
pub struct PlannedBatch {
    outcomes: Vec<ItemOutcome>,
    /// Per item, a result that is final already (a failed plan).
    out: Vec<Option<Result<ItemOutcome>>>,
    plans: Vec<Plan>,
    /// Per item, the record of the batch before it that it is a duplicate of.
    of_earlier: Vec<Option<String>>,
}

/// What a batch being written will archive, as the next batch planned meanwhile must
/// see it: its new records by SHA-256 (with their media types) and by Message-ID. (The
/// catalog has them only once the batch is committed.)
#[derive(Debug, Default)]
pub struct Writing {
    by_sha: HashMap<String, Vec<(String, String)>>,
    by_message_id: HashMap<String, Vec<String>>,
}

impl Writing {
    /// What `batches` write together (batches being written, newest first).
    pub fn of_all<'a>(batches: impl IntoIterator<Item = &'a Writing>) -> Writing {
        let mut w = Writing::default();
        for b in batches {
            for (sha, records) in &b.by_sha {
                w.by_sha
                    .entry(sha.clone())
                    .or_default()
                    .extend(records.iter().cloned());
            }
            for (m, ids) in &b.by_message_id {
                w.by_message_id
                    .entry(m.clone())
                    .or_default()
                    .extend(ids.iter().cloned());
            }
        }
        w
    }

    /// A record of the batch being written with these bytes, of a media type `fits`.
    fn record_with_sha(&self, sha: &str, fits: impl Fn(&str) -> bool) -> Option<String> {
        self.by_sha
            .get(sha)?
            .iter()
            .find(|(_, media)| fits(media))
            .map(|(id, _)| id.clone())
    }
}

impl PlannedBatch {
    /// The records this batch will write, for the batch planned while it is written.
    pub fn writing(&self) -> Writing {
        let mut w = Writing::default();
        for p in &self.plans {
            let media = p.meta.media_type.clone().unwrap_or_default();
            let sha = &self.outcomes[p.index].sha256;
            w.by_sha
                .entry(sha.clone())
                .or_default()
                .push((p.id.clone(), media));
            if let Some(m) = &self.outcomes[p.index].message_id {
                w.by_message_id
                    .entry(m.clone())
                    .or_default()
                    .push(p.id.clone());
            }
            for (id, bytes, meta) in &p.attachments {
                w.by_sha
                    .entry(crate::store::codec::sha256_hex(bytes))
                    .or_default()
                    .push((id.clone(), meta.media_type.clone().unwrap_or_default()));
            }
        }
        w
    }
}

/// A batch staged, not yet committed ([`Ingest::stage_batch`], then
/// [`Ingest::commit_batch`]).
pub struct StagedBatch {
    outcomes: Vec<ItemOutcome>,
    out: Vec<Option<Result<ItemOutcome>>>,
    of_earlier: Vec<Option<String>>,
    to_commit: Vec<Staged>,
    /// Per staged record: its item, and whether it is the item's own (not an attachment).
    owner: Vec<(usize, bool)>,
    _upload: Option<crate::store::UploadGuard>,
}

impl StagedBatch {
    /// Once the batch before was written: an item found to be a duplicate of one of its
    /// records fails when that record was not archived after all (its commit failed),
    /// so that importing again archives it. (A copy is never staged: only its result
    /// changes, so a batch may be staged before the one before it is committed.)
    pub fn earlier_written(&mut self, archived: &std::collections::HashSet<String>) {
        for (i, of) in self.of_earlier.iter().enumerate() {
            if let Some(id) = of
                && !archived.contains(id)
                && self.out[i].is_none()
            {
                self.out[i] = Some(Err(Error::Internal(format!(
                    "its bytes are those of {id}, which the batch before did not commit: \
                     import it again"
                ))));
            }
        }
    }
}

impl Ingest {
    /// Archives `items` with one group commit; one result per item, in order.
    pub async fn ingest(
        &self,
        actor: &str,
        items: Vec<Incoming>,
        d: &IngestDefaults,
    ) -> Vec<Result<ItemOutcome>> {
        let planned = self.plan_batch(items, d, &Writing::default()).await;
        self.write_batch(actor, planned).await
    }

    /// Steps 1–3 of a batch: hashed, duplicates set aside (against the catalog and
    /// against `writing`, the batch before while it is written), parsed, extracted and
    /// planned. Nothing is written.
    pub async fn plan_batch(
        &self,
        items: Vec<Incoming>,
        d: &IngestDefaults,
        writing: &Writing,
    ) -> PlannedBatch {
        // 1. Hash and parse on all cores.
        let count = items.len();
        let mut prepared: Vec<Prepared> = match prepare_all(items).await {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                return PlannedBatch {
                    outcomes: vec![],
                    out: (0..count)
                        .map(|_| Some(Err(Error::Internal(msg.clone()))))
                        .collect(),
                    plans: vec![],
                    of_earlier: vec![],
                };
            }
        };
        let n = prepared.len();

        // 2. Duplicates: bytes archived before, or earlier in this batch.
        let mut out: Vec<Option<Result<ItemOutcome>>> = (0..n).map(|_| None).collect();
        let mut in_batch: HashMap<String, String> = HashMap::new();
        let mut ids: Vec<Option<String>> = Vec::with_capacity(n);
        let mut outcomes: Vec<ItemOutcome> = Vec::with_capacity(n);
        let mut of_earlier: Vec<Option<String>> = vec![None; n];
        for (i, p) in prepared.iter().enumerate() {
            let fits = |media: &str| !p.is_email || media == "message/rfc822";
            let existing = match in_batch.get(&p.sha) {
                _ if d.keep_copies => None,
                Some(id) => Some(id.clone()),
                None => match self
                    .svc
                    .catalog
                    .records_with_sha(&p.sha)
                    .await
                    .into_iter()
                    .find(|b| fits(&b.media_type))
                {
                    Some(b) => Some(b.id),
                    None => {
                        of_earlier[i] = writing.record_with_sha(&p.sha, fits);
                        of_earlier[i].clone()
                    }
                },
            };
            let (id, new) = match existing {
                Some(id) => (id, false),
                None => {
                    let id = self.svc.archive.new_id();
                    in_batch.insert(p.sha.clone(), id.clone());
                    (id, true)
                }
            };
            outcomes.push(ItemOutcome {
                id: id.clone(),
                duplicate: !new,
                sha256: p.sha.clone(),
                size: p.size,
                message_id: p.facts.message_id.clone(),
                subject: p.facts.subject.clone(),
                related: vec![],
                attachments: vec![],
                auto_links: vec![],
                ambiguous: vec![],
                extraction_failed: p.failed.clone(),
                archived: None,
            });
            ids.push(new.then_some(id));
        }

        // 3. The new emails parsed (in worker processes); duplicates are not.
        let to_parse: Vec<(usize, Bytes)> = prepared
            .iter()
            .enumerate()
            .filter(|(i, p)| p.is_email && ids[*i].is_some())
            .filter_map(|(i, p)| p.item.in_memory().map(|b| (i, b.clone())))
            .collect();
        let parsed: Vec<(usize, std::result::Result<MailFacts, String>)> =
            futures::stream::iter(to_parse)
                .map(|(i, raw)| async move { (i, self.extractor.parse_mail(raw).await) })
                .buffer_unordered(STAGE_PARALLEL)
                .collect()
                .await;
        for (i, r) in parsed {
            match r {
                Ok(f) => {
                    outcomes[i].message_id = f.message_id.clone();
                    outcomes[i].subject = f.subject.clone();
                    prepared[i].facts = f;
                }
                Err(reason) => {
                    outcomes[i].extraction_failed = Some(reason.clone());
                    prepared[i].failed = Some(reason);
                }
            }
        }

        // 4. Text and facts of every new document and attachment, in worker processes.
        let mut extracted = self.extract_all(&prepared, &ids).await;

        // 5. The plan of every new record: links, metadata, class.
        let mut by_message_id: HashMap<String, Vec<String>> = HashMap::new();
        let mut plans = Vec::new();
        for (index, (p, id)) in prepared.into_iter().zip(ids).enumerate() {
            let Some(id) = id else { continue };
            let o = &mut outcomes[index];
            if let Some(m) = &p.facts.message_id {
                let mut related = self.svc.catalog.records_with_message_id(m).await;
                // The batch before may be in the catalog already, or not yet.
                for id in writing.by_message_id.get(m).into_iter().flatten() {
                    if !related.contains(id) {
                        related.push(id.clone());
                    }
                }
                let earlier = by_message_id.entry(m.clone()).or_default();
                related.extend(earlier.iter().cloned());
                earlier.push(id.clone());
                o.related = related;
            }
            let found = Found::take(&mut extracted, index, p.facts.attachments.len());
            match self.plan(index, id, p, found, d, o).await {
                Ok(plan) => plans.push(plan),
                Err(e) => out[index] = Some(Err(e)),
            }
        }

        PlannedBatch {
            outcomes,
            out,
            plans,
            of_earlier,
        }
    }

    /// Steps 4–5 of a batch: every record staged, then one commit. One result per item,
    /// in order.
    pub async fn write_batch(&self, actor: &str, batch: PlannedBatch) -> Vec<Result<ItemOutcome>> {
        let staged = self.stage_batch(actor, batch).await;
        self.commit_batch(actor, staged).await
    }

    /// Step 4: every record of the batch staged (nothing reported archived yet). A bulk
    /// import stages a batch while the one before is committed.
    pub async fn stage_batch(&self, actor: &str, batch: PlannedBatch) -> StagedBatch {
        let PlannedBatch {
            mut outcomes,
            mut out,
            plans,
            of_earlier,
        } = batch;
        if outcomes.is_empty() {
            return StagedBatch {
                outcomes,
                out,
                of_earlier,
                to_commit: vec![],
                owner: vec![],
                _upload: None,
            };
        }
        // An upload in flight until its commit: a disposal does not delete a blob this
        // batch deduplicates onto.
        let upload = self.svc.archive.store().upload_guard().await;
        let staged = self.stage_all(actor, &plans, &outcomes).await;
        let mut to_commit: Vec<Staged> = Vec::new();
        let mut owner: Vec<(usize, bool)> = Vec::new();
        for (plan, (main, atts)) in plans.iter().zip(staged) {
            let o = &mut outcomes[plan.index];
            match main {
                Err(e) => {
                    out[plan.index] = Some(Err(e));
                    continue;
                }
                Ok(s) => {
                    to_commit.push(s);
                    owner.push((plan.index, true));
                }
            }
            let mut errors = Vec::new();
            for ((_, _, meta), r) in plan.attachments.iter().zip(atts) {
                match r {
                    Ok(s) => {
                        o.attachments.push(s.archived.id.clone());
                        to_commit.push(s);
                        owner.push((plan.index, false));
                    }
                    Err(e) => errors.push(format!(
                        "attachment {}: {e}",
                        meta.file_name.as_deref().unwrap_or("(unnamed)")
                    )),
                }
            }
            if !errors.is_empty() {
                let joined = errors.join("; ");
                o.extraction_failed = Some(match o.extraction_failed.take() {
                    Some(f) => format!("{f}; {joined}"),
                    None => joined,
                });
            }
        }
        StagedBatch {
            outcomes,
            out,
            of_earlier,
            to_commit,
            owner,
            _upload: Some(upload),
        }
    }

    /// Step 5: one commit makes the staged batch durable and journals it; one result
    /// per item, in order.
    pub async fn commit_batch(&self, actor: &str, batch: StagedBatch) -> Vec<Result<ItemOutcome>> {
        let StagedBatch {
            mut outcomes,
            mut out,
            to_commit,
            owner,
            _upload,
            ..
        } = batch;
        if outcomes.is_empty() {
            // Nothing was planned: every item has its failure.
            return out
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(Error::Internal("not planned".into()))))
                .collect();
        }
        match self.svc.archive.commit_staged(actor, to_commit).await {
            Ok(None) => {}
            Ok(Some((entry, archived))) => {
                let revisions: Vec<&RecordRevision> =
                    archived.iter().map(|a| &a.revision).collect();
                self.svc.catalog.put_committed(&entry, &revisions).await;
                for (a, (i, own)) in archived.into_iter().zip(owner) {
                    if own {
                        outcomes[i].archived = Some(a);
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (i, _) in owner {
                    out[i] = Some(Err(Error::Internal(format!("batch not committed: {msg}"))));
                }
            }
        }
        outcomes
            .into_iter()
            .zip(out)
            .map(|(o, r)| r.unwrap_or(Ok(o)))
            .collect()
    }

    /// Extracts text and facts of every new document and every attachment of a new
    /// email, as many at once as there are workers.
    async fn extract_all(
        &self,
        prepared: &[Prepared],
        ids: &[Option<String>],
    ) -> HashMap<(usize, Option<usize>), Outcome> {
        let mut jobs: Vec<(JobKey, Content, String, Option<String>)> = Vec::new();
        for (i, (p, id)) in prepared.iter().zip(ids).enumerate() {
            if id.is_none() {
                continue;
            }
            match &p.item {
                Incoming::Document {
                    content,
                    file_name,
                    given,
                } => {
                    let media = match media_of(content, file_name.as_deref(), given) {
                        Ok(m) => m,
                        Err(_) => continue,
                    };
                    jobs.push(((i, None), content.clone(), media, file_name.clone()));
                }
                Incoming::Email(_) => {
                    for (k, a) in p.facts.attachments.iter().enumerate() {
                        jobs.push((
                            (i, Some(k)),
                            Content::Memory(a.bytes.clone()),
                            a.media_type.clone(),
                            a.file_name.clone(),
                        ));
                    }
                }
            }
        }
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        futures::stream::iter(jobs)
            .map(|(key, content, media, name)| async move {
                (
                    key,
                    self.extractor
                        .extract(&content, &media, name.as_deref())
                        .await,
                )
            })
            .buffer_unordered(workers)
            .collect()
            .await
    }

    /// A new content version of record `id`, read like any upload: its text and
    /// e-invoice facts replace those of the old content (class, links and retention stay
    /// as they are; an amendment changes those).
    pub async fn new_content(
        &self,
        actor: &str,
        id: &str,
        content: Content,
        mut meta: crate::archive::NewContent,
    ) -> Result<crate::record::RecordRevision> {
        let prev = self.svc.archive.latest(id).await?;
        if prev.tombstone.is_some() {
            return Err(Error::Disposed { id: id.to_string() });
        }
        let file_name = meta.file_name.clone().or(prev.content.file_name.clone());
        let given = Given {
            media_type: meta.media_type.clone(),
            ..Default::default()
        };
        let media = media_of(&content, file_name.as_deref(), &given)?;
        meta.media_type = Some(media.clone());
        let outcome = self
            .extractor
            .extract(&content, &media, file_name.as_deref())
            .await;
        let mut found = NewRecord::default();
        let mut failures = Vec::new();
        apply(outcome, &mut found, &mut failures, None);
        meta.facts = Some(found.extra);
        let r = self
            .svc
            .archive
            .amend_content(actor, id, content.stream().await?, meta)
            .await?;
        self.svc.catalog.put_record(&r).await;
        Ok(r)
    }

    /// Stages every record of `plans`, `STAGE_PARALLEL` at a time; per plan, the result of
    /// its own record and of each attachment. (An item's bytes were hashed once, in step
    /// 1: `outcomes` has the hash.)
    async fn stage_all(
        &self,
        actor: &str,
        plans: &[Plan],
        outcomes: &[ItemOutcome],
    ) -> Vec<StagedPlan> {
        type Job = (
            usize,
            Option<usize>,
            String,
            Content,
            NewRecord,
            Option<String>,
        );
        let jobs: Vec<Job> = plans
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                let sha = outcomes.get(p.index).map(|o| o.sha256.clone());
                std::iter::once((
                    i,
                    None,
                    p.id.clone(),
                    p.content.clone(),
                    p.meta.clone(),
                    sha,
                ))
                .chain(p.attachments.iter().enumerate().map(
                    move |(k, (id, b, m))| {
                        (
                            i,
                            Some(k),
                            id.clone(),
                            Content::Memory(b.clone()),
                            m.clone(),
                            None,
                        )
                    },
                ))
            })
            .collect();
        let results: Vec<(usize, Option<usize>, Result<Staged>)> = futures::stream::iter(jobs)
            .map(|(i, k, id, content, meta, sha)| async move {
                let staged = self.svc.archive.stage(actor, id, content, meta, sha).await;
                (i, k, staged)
            })
            .buffer_unordered(STAGE_PARALLEL)
            .collect()
            .await;
        let mut mains: Vec<Option<Result<Staged>>> = plans.iter().map(|_| None).collect();
        let mut atts: Vec<Vec<Option<Result<Staged>>>> = plans
            .iter()
            .map(|p| p.attachments.iter().map(|_| None).collect())
            .collect();
        for (i, k, r) in results {
            match k {
                None => mains[i] = Some(r),
                Some(k) => atts[i][k] = Some(r),
            }
        }
        let missing = || Err(Error::Internal("not staged".into()));
        mains
            .into_iter()
            .zip(atts)
            .map(|(m, a)| {
                (
                    m.unwrap_or_else(missing),
                    a.into_iter().map(|r| r.unwrap_or_else(missing)).collect(),
                )
            })
            .collect()
    }
}

/// An item (by index) or one of its attachments.
type JobKey = (usize, Option<usize>);

/// Staging results of one plan: its own record, then each attachment.
type StagedPlan = (Result<Staged>, Vec<Result<Staged>>);
