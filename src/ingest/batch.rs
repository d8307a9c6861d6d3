//! Archiving many items at once (group commit): the path of `akte import`, and of a
//! single `POST /v1/emails` too (a batch of one email and its attachments).
//!
//! 1. Every item is hashed and parsed on the blocking pool, on all cores.
//! 2. Duplicates are set aside: bytes the catalog already holds, and copies within the
//!    batch. Nothing is written for them.
//! 3. Every new record (each email, each attachment, each document) is *staged*: blob,
//!    key and revision are written without an fsync each.
//! 4. One commit makes the batch durable (one sync) and journals it in one entry. Only
//!    then is anything reported archived.
//!
//! A failure to stage one item (an attachment, say) is reported on that item; a failure
//! of the commit fails the whole batch, and nothing of it is reported archived.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use futures::StreamExt;

use crate::archive::{NewRecord, Staged};
use crate::error::{Error, Result};
use crate::ingest::mail::{self, MailFacts};
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
    fn bytes(&self) -> &Bytes {
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

fn prepare(item: Incoming) -> Prepared {
    let sha = crate::store::codec::sha256_hex(item.bytes());
    let size = item.bytes().len() as u64;
    let (is_email, parsed) = match &item {
        Incoming::Email(raw) => (true, mail::parse(raw)),
        Incoming::Document { .. } => (false, Ok(MailFacts::default())),
    };
    let (facts, failed) = match parsed {
        Ok(f) => (f, None),
        Err(reason) => (MailFacts::default(), Some(reason)),
    };
    Prepared {
        sha,
        size,
        is_email,
        facts,
        failed,
        item,
    }
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
        let prepared: Vec<Prepared> = match futures::stream::iter(items)
            .map(|item| async move {
                tokio::task::spawn_blocking(move || prepare(item))
                    .await
                    .map_err(|e| Error::Internal(format!("parse task: {e}")))
            })
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

        // 2. Duplicates, and the plan of every new record.
        let mut out: Vec<Option<Result<EmailOutcome>>> = (0..n).map(|_| None).collect();
        let mut in_batch: HashMap<String, String> = HashMap::new();
        let mut by_message_id: HashMap<String, Vec<String>> = HashMap::new();
        let mut plans = Vec::new();
        let mut outcomes: Vec<EmailOutcome> = Vec::with_capacity(n);
        for (index, p) in prepared.into_iter().enumerate() {
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
            let mut o = EmailOutcome {
                id: String::new(),
                duplicate: false,
                sha256: p.sha.clone(),
                size: p.size,
                message_id: p.facts.message_id.clone(),
                subject: p.facts.subject.clone(),
                related: vec![],
                attachments: vec![],
                auto_links: vec![],
                extraction_failed: p.failed.clone(),
            };
            if let Some(id) = existing {
                o.id = id;
                o.duplicate = true;
                outcomes.push(o);
                continue;
            }
            let id = self.archive.new_id();
            o.id = id.clone();
            in_batch.insert(p.sha.clone(), id.clone());
            if let Some(m) = &p.facts.message_id {
                let mut related = self.catalog.records_with_message_id(m).await;
                let earlier = by_message_id.entry(m.clone()).or_default();
                related.extend(earlier.iter().cloned());
                earlier.push(id.clone());
                o.related = related;
            }
            match self.plan(index, id, p, d, &mut o).await {
                Ok(plan) => plans.push(plan),
                Err(e) => out[index] = Some(Err(e)),
            }
            outcomes.push(o);
        }

        // 3. Stage every record of the batch.
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

        // 4. One commit for all of it.
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

    /// The records one new item makes, with links and metadata.
    async fn plan(
        &self,
        index: usize,
        id: String,
        p: Prepared,
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
        let (bytes, meta) = match p.item {
            Incoming::Email(raw) => {
                let title = facts
                    .subject
                    .clone()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.chars().filter(|c| !c.is_control()).take(1000).collect())
                    .unwrap_or_else(|| "(no subject)".into());
                let meta = NewRecord {
                    class: Some(d.class.clone().unwrap_or_else(|| "email".into())),
                    title: Some(title),
                    document_date: date,
                    media_type: Some("message/rfc822".into()),
                    file_name: None,
                    parties: parties.clone(),
                    cases: d.cases.clone(),
                    extra,
                };
                (raw, meta)
            }
            Incoming::Document { bytes, file_name } => {
                let meta = NewRecord {
                    class: d.class.clone(),
                    file_name: file_name.map(|n| mail::sanitize_file_name(&n)),
                    parties: parties.clone(),
                    cases: d.cases.clone(),
                    extra,
                    ..Default::default()
                };
                (bytes, meta)
            }
        };
        let class = meta.class.clone();
        let attachments = facts
            .attachments
            .into_iter()
            .map(|att| {
                let mut extra = BTreeMap::new();
                extra.insert("parent".to_string(), id.clone());
                let meta = NewRecord {
                    class: class.clone(),
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
                };
                (self.archive.new_id(), Bytes::from(att.bytes), meta)
            })
            .collect();
        Ok(Plan {
            index,
            id,
            bytes,
            meta,
            attachments,
        })
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

/// Staging results of one plan: its own record, then each attachment.
type StagedPlan = (Result<Staged>, Vec<Result<Staged>>);
