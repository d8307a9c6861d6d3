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
use futures::StreamExt;

use chrono::NaiveDate;

use super::Ingest;
use crate::archive::{Archived, NewRecord, Staged};
use crate::catalog::{LinkBrief, Match};
use crate::error::{Error, Result};
use crate::extract::document;
use crate::extract::mail::{self, MailFacts};
use crate::extract::sandbox::Outcome;
use crate::ingest::rules;
use crate::record::PartyLink;
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
    let sha = match &item {
        Incoming::Email(b) => Content::Memory(b.clone()).sha256().await?,
        Incoming::Document { content, .. } => content.sha256().await?,
    };
    Ok(Prepared {
        sha,
        size: item.len(),
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
    content: Content,
    meta: NewRecord,
    attachments: Vec<(String, Bytes, NewRecord)>,
}

impl Ingest {
    /// Archives `items` with one group commit; one result per item, in order.
    pub async fn ingest(
        &self,
        actor: &str,
        items: Vec<Incoming>,
        d: &IngestDefaults,
    ) -> Vec<Result<ItemOutcome>> {
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
        let mut out: Vec<Option<Result<ItemOutcome>>> = (0..n).map(|_| None).collect();
        let mut in_batch: HashMap<String, String> = HashMap::new();
        let mut ids: Vec<Option<String>> = Vec::with_capacity(n);
        let mut outcomes: Vec<ItemOutcome> = Vec::with_capacity(n);
        for p in &prepared {
            let existing = match in_batch.get(&p.sha) {
                _ if d.keep_copies => None,
                Some(id) => Some(id.clone()),
                None => self
                    .svc
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
        let _upload = self.svc.archive.store().upload_guard().await;
        let staged = self.stage_all(actor, &plans).await;
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

        // 7. One commit for all of it.
        match self.svc.archive.commit_staged(actor, to_commit).await {
            Ok(archived) => {
                for (a, (i, own)) in archived.into_iter().zip(owner) {
                    self.svc.catalog.put_record(&a.revision).await;
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
                        .extract_content(&content, &media, name.as_deref())
                        .await,
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
        o: &mut ItemOutcome,
    ) -> Result<Plan> {
        let mut parties: Vec<PartyLink> = Vec::new();
        for l in &d.parties {
            parties.push(PartyLink {
                party: self.svc.catalog.resolve(&l.party).await,
                role: l.role.clone(),
                reason: l.reason.clone(),
            });
        }
        let facts = p.facts;
        let given = match &p.item {
            Incoming::Document { given, .. } => given.as_ref().clone(),
            Incoming::Email(_) => Given::default(),
        };
        let senders: Vec<String> = facts.from.iter().chain(&given.from).cloned().collect();
        let recipients: Vec<String> = facts
            .to
            .iter()
            .chain(&facts.cc)
            .chain(&given.to)
            .cloned()
            .collect();
        for (addrs, role) in [(&senders, "sender"), (&recipients, "recipient")] {
            for found in self.svc.catalog.match_emails(addrs).await {
                link(&mut parties, o, found, role);
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
        for (k, v) in given.extra {
            put(&k, v);
        }
        let date = given
            .document_date
            .or_else(|| facts.date.map(|d| d.date_naive()));
        let senders = rules::domains(&senders);

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
                (Content::Memory(raw), meta, vec![], None)
            }
            Incoming::Document {
                content,
                file_name,
                given: g,
            } => {
                let media = media_of(&content, file_name.as_deref(), &g)?;
                let mut meta = NewRecord {
                    title: g.title.clone(),
                    document_date: date,
                    file_name: file_name.map(|n| mail::sanitize_file_name(&n)),
                    media_type: Some(media),
                    parties: parties.clone(),
                    cases: d.cases.clone(),
                    extra,
                    ..Default::default()
                };
                let (invoice, embedded) = apply(found.own, &mut meta, &mut failures, None);
                if meta.document_date.is_none() {
                    meta.document_date = invoice
                        .as_ref()
                        .and_then(|i| i.issue_date.as_deref())
                        .and_then(invoice_date);
                }
                (content, meta, embedded, invoice)
            }
        };
        crate::archive::check_new(&meta)?;

        // An e-invoice names its seller and buyer by VAT ID.
        if let Some(inv) = &own_invoice {
            for (vat, role, who) in [
                (&inv.seller_vat, "sender", "seller"),
                (&inv.buyer_vat, "recipient", "buyer"),
            ] {
                if let Some(vat) = vat {
                    for mut found in self.svc.catalog.match_identifiers(vat, false).await {
                        found.reason = format!("the e-invoice's {who} VAT ID {vat}");
                        link(&mut parties, o, found, role);
                    }
                }
            }
        }
        // Identifiers: in the title, file name and subject any known number; in the text
        // only VAT IDs and numbers a label names ("Kundennummer 10042").
        let named = format!(
            "{} {} {}",
            meta.title.as_deref().unwrap_or_default(),
            meta.file_name.as_deref().unwrap_or_default(),
            facts.subject.as_deref().unwrap_or_default()
        );
        let mut found_ids = self.svc.catalog.match_identifiers(&named, false).await;
        let own_text = meta.extra.get("text").map(String::as_str);
        let body = if p.is_email {
            facts.text.as_str()
        } else {
            own_text.unwrap_or_default()
        };
        for m in self.svc.catalog.match_identifiers(body, true).await {
            if !found_ids.iter().any(|f| f.evidence == m.evidence) {
                found_ids.push(m);
            }
        }
        for found in found_ids {
            link(&mut parties, o, found, "mentioned");
        }
        for l in &parties {
            if !meta.parties.contains(l) {
                meta.parties.push(l.clone());
            }
        }

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
            let att_id = self.svc.archive.new_id();
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
            content: bytes,
            meta,
            attachments,
        })
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
            .extract_content(&content, &media, file_name.as_deref())
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
        (self.svc.archive.new_id(), Bytes::from(bytes), m)
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
            if self.svc.catalog.party(&party).await.is_none() {
                tracing::warn!("classification rule {rule}: party {party} does not exist");
                continue;
            }
            let party = self.svc.catalog.resolve(&party).await;
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
        let jobs: Vec<(usize, Option<usize>, String, Content, NewRecord)> = plans
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                std::iter::once((i, None, p.id.clone(), p.content.clone(), p.meta.clone())).chain(
                    p.attachments
                        .iter()
                        .enumerate()
                        .map(move |(k, (id, b, m))| {
                            (
                                i,
                                Some(k),
                                id.clone(),
                                Content::Memory(b.clone()),
                                m.clone(),
                            )
                        }),
                )
            })
            .collect();
        let results: Vec<(usize, Option<usize>, Result<Staged>)> = futures::stream::iter(jobs)
            .map(|(i, k, id, content, meta)| async move {
                (i, k, self.svc.archive.stage(actor, id, content, meta).await)
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

/// The media type of a document: the caller's (checked), else sniffed from its first
/// bytes and name.
fn media_of(content: &Content, file_name: Option<&str>, given: &Given) -> Result<String> {
    match &given.media_type {
        Some(m) => crate::archive::validate_media_type(m),
        None => Ok(crate::record::guess_media_type(
            file_name,
            &content.head(8192)?,
        )),
    }
}

/// An e-invoice's issue date (`YYYY-MM-DD` or CII's `YYYYMMDD`).
fn invoice_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
        .ok()
}

/// Links the one party `found` names (with `role`, the reason as evidence) unless it is
/// linked so already; evidence naming several parties is reported, not linked.
fn link(parties: &mut Vec<PartyLink>, o: &mut ItemOutcome, found: Match, role: &str) {
    match found.parties.as_slice() {
        [one] => {
            // "Mentioned" adds nothing to a party linked in any role.
            if parties
                .iter()
                .any(|l| l.party == *one && (l.role == role || role == "mentioned"))
            {
                return;
            }
            parties.push(PartyLink {
                party: one.clone(),
                role: role.into(),
                reason: Some(found.reason.clone()),
            });
            o.auto_links.push(LinkBrief {
                party: one.clone(),
                role: role.into(),
                reason: Some(found.reason),
            });
        }
        [] => {}
        _ => {
            if !o.ambiguous.iter().any(|m| m.evidence == found.evidence) {
                o.ambiguous.push(found);
            }
        }
    }
}
