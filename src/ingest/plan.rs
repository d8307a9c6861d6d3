//! The plan of each new record: what the caller said, then classification rules,
//! e-invoice facts, and links to parties (addresses and domains, identifiers, an
//! e-invoice's VAT IDs), each with the evidence behind it.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use chrono::NaiveDate;

use super::Ingest;
use super::batch::{Given, Incoming, IngestDefaults, ItemOutcome, Plan, Prepared};
use crate::archive::NewRecord;
use crate::catalog::{LinkBrief, Match};
use crate::error::Result;
use crate::extract::document;
use crate::extract::mail;
use crate::extract::sandbox::Outcome;
use crate::ingest::rules;
use crate::record::PartyLink;
use crate::store::content::Content;

impl Ingest {
    /// The records one new item makes, with links, metadata and class.
    pub(super) async fn plan(
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
        let envelope_to: &[String] = d.envelope.as_ref().map_or(&[], |e| e.to.as_slice());
        let recipients: Vec<String> = facts
            .to
            .iter()
            .chain(&facts.cc)
            .chain(&given.to)
            .chain(envelope_to)
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
        if let Some(e) = &d.envelope {
            put("envelope_from", e.from.clone());
            put("envelope_to", e.to.join(", "));
        }
        for (k, v) in &d.extra {
            put(k, v.clone());
        }
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
}

/// Extraction outcomes of one item: its own (documents) and each attachment's (emails).
pub(super) struct Found {
    own: Outcome,
    attachments: Vec<Outcome>,
}

impl Found {
    pub(super) fn take(
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
pub(super) fn apply(
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

/// The media type of a document: the caller's (checked), else sniffed from its first
/// bytes and name.
pub(super) fn media_of(
    content: &Content,
    file_name: Option<&str>,
    given: &Given,
) -> Result<String> {
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

/// A file carried inside another: (file name, media type, bytes).
type Carried = (String, String, Vec<u8>);
