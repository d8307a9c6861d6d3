//! Archiving many items at once (group commit): the path of `akte import`, and of a
//! single `POST /v1/emails` too (a batch of one email and its attachments).
//!
//! 1. Every item is hashed on the blocking pool, on all cores.
//! 2. Duplicates are set aside: bytes the catalog already holds, and copies within the
//!    batch. Nothing is written for them, and they are not parsed.
//! 3. New emails are parsed, and documents and attachments extracted, in the worker
//!    processes of `extract::sandbox` (time and memory limits).
//! 4. Every new record (each email, each attachment, each document) is *staged*: blob,
//!    key and revision are written without an fsync each.
//! 5. One commit makes the batch durable (one sync) and journals it in one entry. Only
//!    then is anything reported archived.
//!
//! A failure to stage one item (an attachment, say) is reported on that item; a failure
//! of the commit fails the whole batch, and nothing of it is reported archived.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use futures::StreamExt;

use crate::archive::{NewRecord, Staged};
use crate::error::{Error, Result};
use crate::extract::document;
use crate::extract::sandbox::Outcome;
use crate::ingest::mail::{self, MailFacts};
use crate::ingest::rules;
use crate::record::PartyLink;
use crate::service::{EmailOutcome, IngestDefaults, Services};

/// Records staged at once while a batch is written.
const STAGE_PARALLEL: usize = 8;

/// One item to archive.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// Raw RFC 5322 bytes.
    Email(Bytes),
    /// Any other file; `file_name` is the name it had (sanitised before it is kept).
    Document {
        bytes: Bytes,
        file_name: Option<String>,
    },
}

impl Incoming {
    pub fn bytes(&self) -> &Bytes {
        match self {
            Incoming::Email(b) | Incoming::Document { bytes: b, .. } => b,
        }
    }
}

/// An item after hashing and parsing, before anything is written.
struct Prepared {
    sha: String,
    size: u64,
    is_email: bool,
    facts: MailFacts,
    /// Why parsing failed (the original is archived all the same).
    failed: Option<String>,
    item: Incoming,
}

/// Hashes an item on the blocking pool. (Emails are parsed later, and only if new.)
async fn prepare(item: Incoming) -> Result<Prepared> {
    let bytes = item.bytes().clone();
    let sha = tokio::task::spawn_blocking(move || crate::store::codec::sha256_hex(&bytes))
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))?;
    Ok(Prepared {
        sha,
        size: item.bytes().len() as u64,
        is_email: matches!(item, Incoming::Email(_)),
        facts: MailFacts::default(),
        failed: None,
        item,
    })
}

/// What one new item will write: its own record and its attachments'.
struct Plan {
    index: usize,
    id: String,
    bytes: Bytes,
    meta: NewRecord,
    attachments: Vec<(String, Bytes, NewRecord)>,
}

impl Services {
    /// Archives `items` with one group commit; one result per item, in order.
    pub async fn ingest(
        &self,
        actor: &str,
        items: Vec<Incoming>,
        d: &IngestDefaults,
    ) -> Vec<Result<EmailOutcome>> {
        // 1. Hash and parse on all cores.
        let count = items.len();
        let mut prepared: Vec<Prepared> = match futures::stream::iter(items)
            .map(prepare)
            .buffered(STAGE_PARALLEL)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()
        {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                return (0..count)
                    .map(|_| Err(Error::Internal(msg.clone())))
                    .collect();
            }
        };
        let n = prepared.len();

        // 2. Duplicates: bytes archived before, or earlier in this batch.
        let mut out: Vec<Option<Result<EmailOutcome>>> = (0..n).map(|_| None).collect();
        let mut in_batch: HashMap<String, String> = HashMap::new();
        let mut ids: Vec<Option<String>> = Vec::with_capacity(n);
        let mut outcomes: Vec<EmailOutcome> = Vec::with_capacity(n);
        for p in &prepared {
            let existing = match in_batch.get(&p.sha) {
                Some(id) => Some(id.clone()),
                None => self
                    .catalog
                    .records_with_sha(&p.sha)
                    .await
                    .into_iter()
                    .find(|b| !p.is_email || b.media_type == "message/rfc822")
                    .map(|b| b.id),
            };
            let (id, new) = match existing {
                Some(id) => (id, false),
                None => {
                    let id = self.archive.new_id();
                    in_batch.insert(p.sha.clone(), id.clone());
                    (id, true)
                }
            };
            outcomes.push(EmailOutcome {
                id: id.clone(),
                duplicate: !new,
                sha256: p.sha.clone(),
                size: p.size,
                message_id: p.facts.message_id.clone(),
                subject: p.facts.subject.clone(),
                related: vec![],
                attachments: vec![],
                auto_links: vec![],
                extraction_failed: p.failed.clone(),
            });
            ids.push(new.then_some(id));
        }

        // 3. The new emails parsed (in worker processes); duplicates are not.
        let to_parse: Vec<(usize, Bytes)> = prepared
            .iter()
            .enumerate()
            .filter(|(i, p)| p.is_email && ids[*i].is_some())
            .map(|(i, p)| (i, p.item.bytes().clone()))
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
                let mut related = self.catalog.records_with_message_id(m).await;
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

        // 6. Stage every record of the batch (an upload in flight until its commit: a
        // disposal does not delete a blob this batch deduplicates onto).
        let _upload = self.archive.store().upload_guard().await;
        let staged = self.stage_all(actor, &plans).await;
        let mut to_commit: Vec<Staged> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (plan, (main, atts)) in plans.iter().zip(staged) {
            let o = &mut outcomes[plan.index];
            match main {
                Err(e) => {
                    out[plan.index] = Some(Err(e));
                    continue;
                }
                Ok(s) => {
                    to_commit.push(s);
                    owner.push(plan.index);
                }
            }
            let mut errors = Vec::new();
            for ((_, _, meta), r) in plan.attachments.iter().zip(atts) {
                match r {
                    Ok(s) => {
                        o.attachments.push(s.archived.id.clone());
                        to_commit.push(s);
                        owner.push(plan.index);
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

        // 7. One commit for all of it.
        match self.archive.commit_staged(actor, to_commit).await {
            Ok(archived) => {
                for a in &archived {
                    self.catalog.put_record(&a.revision).await;
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for i in owner {
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
        let mut jobs: Vec<(JobKey, Bytes, String, Option<String>)> = Vec::new();
        for (i, (p, id)) in prepared.iter().zip(ids).enumerate() {
            if id.is_none() {
                continue;
            }
            match &p.item {
                Incoming::Document { bytes, file_name } => {
                    let media = crate::record::guess_media_type(file_name.as_deref(), bytes);
                    jobs.push(((i, None), bytes.clone(), media, file_name.clone()));
                }
                Incoming::Email(_) => {
                    for (k, a) in p.facts.attachments.iter().enumerate() {
                        jobs.push((
                            (i, Some(k)),
                            a.bytes.clone(),
                            a.media_type.clone(),
                            a.file_name.clone(),
                        ));
                    }
                }
            }
        }
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        futures::stream::iter(jobs)
            .map(|(key, bytes, media, name)| async move {
                (
                    key,
                    self.extractor.extract(bytes, &media, name.as_deref()).await,
                )
            })
            .buffer_unordered(workers)
            .collect()
            .await
    }

    /// The records one new item makes, with links, metadata and class.
    async fn plan(
        &self,
        index: usize,
        id: String,
        p: Prepared,
        found: Found,
        d: &IngestDefaults,
        o: &mut EmailOutcome,
    ) -> Result<Plan> {
        let mut parties: Vec<PartyLink> = Vec::new();
        for l in &d.parties {
            parties.push(PartyLink {
                party: self.catalog.resolve(&l.party).await,
                role: l.role.clone(),
                reason: l.reason.clone(),
            });
        }
        let facts = p.facts;
        let recipients: Vec<String> = facts.to.iter().chain(&facts.cc).cloned().collect();
        for (addrs, role) in [(&facts.from, "sender"), (&recipients, "recipient")] {
            for found in self.catalog.match_emails(addrs).await {
                if let [one] = found.parties.as_slice()
                    && !parties.iter().any(|l| l.party == *one && l.role == role)
                {
                    parties.push(PartyLink {
                        party: one.clone(),
                        role: role.into(),
                        reason: Some(found.reason.clone()),
                    });
                    o.auto_links.push(crate::catalog::LinkBrief {
                        party: one.clone(),
                        role: role.into(),
                        reason: Some(found.reason),
                    });
                }
            }
        }
        let mut failures: Vec<String> = Vec::new();
        let mut extra = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            if !v.is_empty() {
                extra.insert(k.to_string(), v);
            }
        };
        put("from", facts.from.join(", "));
        put("to", facts.to.join(", "));
        put("cc", facts.cc.join(", "));
        put("bcc", facts.bcc.join(", "));
        put("reply_to", facts.reply_to.join(", "));
        put("message_id", facts.message_id.clone().unwrap_or_default());
        put("in_reply_to", facts.in_reply_to.clone().unwrap_or_default());
        put("thread", facts.thread.clone().unwrap_or_default());
        put("related", o.related.join(", "));
        if let Some(f) = &p.failed {
            put("extraction", format!("extraction failed: {f}"));
        }
        let date = facts.date.map(|d| d.date_naive());
        let senders = rules::domains(&facts.from);

        // The item's own record.
        let (bytes, mut meta, mut embedded, own_invoice) = match p.item {
            Incoming::Email(raw) => {
                let title = facts
                    .subject
                    .clone()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.chars().filter(|c| !c.is_control()).take(1000).collect())
                    .unwrap_or_else(|| "(no subject)".into());
                let meta = NewRecord {
                    class: None,
                    title: Some(title),
                    document_date: date,
                    media_type: Some("message/rfc822".into()),
                    file_name: None,
                    parties: parties.clone(),
                    cases: d.cases.clone(),
                    extra,
                };
                (raw, meta, vec![], None)
            }
            Incoming::Document { bytes, file_name } => {
                let media = crate::record::guess_media_type(file_name.as_deref(), &bytes);
                let mut meta = NewRecord {
                    file_name: file_name.map(|n| mail::sanitize_file_name(&n)),
                    media_type: Some(media),
                    parties: parties.clone(),
                    cases: d.cases.clone(),
                    extra,
                    ..Default::default()
                };
                let (invoice, embedded) = apply(found.own, &mut meta, &mut failures, None);
                (bytes, meta, embedded, invoice)
            }
        };

        // Attachments: records of their own, each with its text and facts.
        let mut attachments: Vec<(String, Bytes, NewRecord)> = Vec::new();
        let mut any_invoice = own_invoice.is_some();
        for (att, outcome) in facts.attachments.into_iter().zip(found.attachments) {
            let mut extra = BTreeMap::new();
            extra.insert("parent".to_string(), id.clone());
            let mut m = NewRecord {
                title: Some(
                    att.file_name
                        .clone()
                        .unwrap_or_else(|| format!("Attachment of {id}")),
                ),
                document_date: date,
                media_type: Some(att.media_type.clone()),
                file_name: att.file_name.clone(),
                parties: parties.clone(),
                cases: d.cases.clone(),
                extra,
                ..Default::default()
            };
            let (invoice, inner) = apply(outcome, &mut m, &mut failures, att.file_name.as_deref());
            any_invoice |= invoice.is_some();
            let att_id = self.archive.new_id();
            for (name, media, b) in inner {
                attachments.push(self.embedded_record(
                    &att_id,
                    name,
                    media,
                    b,
                    &m,
                    invoice.as_ref(),
                ));
            }
            attachments.push((att_id, att.bytes, m));
        }
        for (name, media, b) in std::mem::take(&mut embedded) {
            let r = self.embedded_record(&id, name, media, b, &meta, own_invoice.as_ref());
            attachments.push(r);
        }

        // Classification: an explicit class wins; else the first matching rule; else the
        // default (email, document).
        let own_text = meta.extra.get("text").cloned().unwrap_or_default();
        let body = if p.is_email {
            facts.text.as_str()
        } else {
            own_text.as_str()
        };
        let (own_name, own_media) = (meta.file_name.clone(), meta.media_type.clone());
        let evidence = rules::Evidence {
            subject: facts.subject.as_deref(),
            file_name: own_name.as_deref(),
            body,
            sender_domains: senders.clone(),
            media_type: own_media.as_deref().unwrap_or_default(),
            einvoice: any_invoice,
        };
        let parent_class = self.classify(&mut meta, &evidence, d, p.is_email).await;
        // Attachments are classified on their own evidence (name, text, e-invoice), not
        // on the sender; they share the parties the rules linked to the item.
        let ruled: Vec<PartyLink> = meta
            .parties
            .iter()
            .filter(|l| !parties.contains(l))
            .cloned()
            .collect();
        for (_, _, m) in &mut attachments {
            for l in &ruled {
                if !m.parties.contains(l) {
                    m.parties.push(l.clone());
                }
            }
            let text = m.extra.get("text").cloned().unwrap_or_default();
            let (name, media) = (m.file_name.clone(), m.media_type.clone());
            let ev = rules::Evidence {
                subject: None,
                file_name: name.as_deref(),
                body: &text,
                sender_domains: vec![],
                media_type: media.as_deref().unwrap_or_default(),
                einvoice: m.extra.contains_key("einvoice"),
            };
            if m.class.is_none() {
                let c = self.classify(m, &ev, d, false).await;
                if !m.extra.contains_key("class_rule") {
                    m.class = Some(parent_class.clone());
                } else {
                    m.class = Some(c);
                }
            }
        }
        if !failures.is_empty() {
            let joined = failures.join("; ");
            o.extraction_failed = Some(match o.extraction_failed.take() {
                Some(f) => format!("{f}; {joined}"),
                None => joined,
            });
        }
        Ok(Plan {
            index,
            id,
            bytes,
            meta,
            attachments,
        })
    }

    /// A record for a file carried inside another (the XML of a ZUGFeRD PDF), kept as an
    /// original of its own with the carrier as `parent`.
    fn embedded_record(
        &self,
        parent: &str,
        name: String,
        media: String,
        bytes: Vec<u8>,
        carrier: &NewRecord,
        invoice: Option<&document::Invoice>,
    ) -> (String, Bytes, NewRecord) {
        let mut extra = BTreeMap::new();
        extra.insert("parent".to_string(), parent.to_string());
        extra.insert("embedded_in".to_string(), parent.to_string());
        if let Some(inv) = invoice {
            extra.extend(inv.to_extra());
        }
        let m = NewRecord {
            class: carrier.class.clone(),
            title: Some(name.clone()),
            document_date: carrier.document_date,
            media_type: Some(media),
            file_name: Some(name),
            parties: carrier.parties.clone(),
            cases: carrier.cases.clone(),
            extra,
        };
        (self.archive.new_id(), Bytes::from(bytes), m)
    }

    /// Sets the class of `meta` (explicit, rule or default) and links the parties rules
    /// name; returns the class.
    async fn classify(
        &self,
        meta: &mut NewRecord,
        e: &rules::Evidence<'_>,
        d: &IngestDefaults,
        is_email: bool,
    ) -> String {
        let a = self.rules.apply(e);
        for (party, role, rule) in a.parties {
            if self.catalog.party(&party).await.is_none() {
                tracing::warn!("classification rule {rule}: party {party} does not exist");
                continue;
            }
            let party = self.catalog.resolve(&party).await;
            if !meta
                .parties
                .iter()
                .any(|l| l.party == party && l.role == role)
            {
                meta.parties.push(PartyLink {
                    party,
                    role,
                    reason: Some(format!("classification rule {rule}")),
                });
            }
        }
        let class = match (&d.class, a.class) {
            (Some(c), _) => c.clone(),
            (None, Some((c, rule))) => {
                meta.extra.insert("class_rule".into(), rule);
                c
            }
            (None, None) if is_email => "email".into(),
            (None, None) => crate::archive::DEFAULT_CLASS.into(),
        };
        meta.class = Some(class.clone());
        class
    }

    /// Stages every record of `plans`, `STAGE_PARALLEL` at a time; per plan, the result of
    /// its own record and of each attachment.
    async fn stage_all(&self, actor: &str, plans: &[Plan]) -> Vec<StagedPlan> {
        let jobs: Vec<(usize, Option<usize>, String, Bytes, NewRecord)> = plans
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                std::iter::once((i, None, p.id.clone(), p.bytes.clone(), p.meta.clone())).chain(
                    p.attachments
                        .iter()
                        .enumerate()
                        .map(move |(k, (id, b, m))| (i, Some(k), id.clone(), b.clone(), m.clone())),
                )
            })
            .collect();
        let results: Vec<(usize, Option<usize>, Result<Staged>)> = futures::stream::iter(jobs)
            .map(|(i, k, id, bytes, meta)| async move {
                (i, k, self.archive.stage(actor, id, bytes, meta).await)
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
/// A file carried inside another: (file name, media type, bytes).
type Carried = (String, String, Vec<u8>);

/// Extraction outcomes of one item: its own (documents) and each attachment's (emails).
struct Found {
    own: Outcome,
    attachments: Vec<Outcome>,
}

impl Found {
    fn take(
        all: &mut HashMap<(usize, Option<usize>), Outcome>,
        index: usize,
        attachments: usize,
    ) -> Found {
        Found {
            own: all.remove(&(index, None)).unwrap_or(Outcome::NoExtractor),
            attachments: (0..attachments)
                .map(|k| {
                    all.remove(&(index, Some(k)))
                        .unwrap_or(Outcome::NoExtractor)
                })
                .collect(),
        }
    }
}

/// Writes what extraction found into `meta`: the text, e-invoice facts, or why there is
/// none. Returns the invoice and the files carried inside.
fn apply(
    outcome: Outcome,
    meta: &mut NewRecord,
    failures: &mut Vec<String>,
    item: Option<&str>,
) -> (Option<document::Invoice>, Vec<Carried>) {
    let label = |r: &str| match item {
        Some(n) => format!("attachment {n}: {r}"),
        None => r.to_string(),
    };
    match outcome {
        Outcome::NoExtractor => {
            meta.extra.insert(
                "extraction".into(),
                "no text (no extractor for this type)".into(),
            );
            (None, vec![])
        }
        Outcome::Failed(reason) => {
            meta.extra
                .insert("extraction".into(), format!("extraction failed: {reason}"));
            failures.push(label(&reason));
            (None, vec![])
        }
        Outcome::Done(e) => {
            let e = *e;
            if let Some(inv) = &e.invoice {
                meta.extra.extend(inv.to_extra());
            }
            if e.needs_ocr {
                meta.extra.insert(
                    "extraction".into(),
                    "no text (a scan: OCR unavailable, tesseract not installed)".into(),
                );
            } else if e.text.trim().is_empty() {
                meta.extra.insert("extraction".into(), "no text".into());
            } else {
                meta.extra.insert("text".into(), e.text);
            }
            (e.invoice, e.embedded)
        }
    }
}

/// Staging results of one plan: its own record, then each attachment.
type StagedPlan = (Result<Staged>, Vec<Result<Staged>>);
