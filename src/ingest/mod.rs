//! Ingest (DESIGN §5): emails and mailboxes. The raw bytes are archived first, as the
//! original; what parsing yields (headers, thread, text, attachments) is additional.

pub mod batch;
pub mod imap;
pub mod import;
pub mod journaling;
pub mod mbox;
pub mod parties;
mod plan;
pub mod rules;
pub mod zip;

use std::collections::BTreeMap;
use std::sync::Arc;

use batch::{Given, Incoming, IngestDefaults, ItemOutcome};

use crate::archive::Archived;
use crate::error::{Error, Result};
use crate::extract::sandbox::Extractor;
use crate::record::PartyLink;
use crate::service::Services;
use crate::store::content::Content;

/// The ingest component: the domain services, and what reading content needs (the
/// extractor, the classification rules). Every way content enters goes through it.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub svc: Services,
    /// Text extraction (worker processes with limits, or in-process).
    pub extractor: Arc<Extractor>,
    /// Classification rules applied at ingest.
    pub rules: Arc<rules::Rules>,
}

/// A phone note or memo.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub text: String,
    /// `phone-note` (default) or `memo`.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub case: Option<String>,
    /// Duration of a call, e.g. `12m`.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

impl Ingest {
    /// Ingest over `svc` with in-process extraction and the shipped rules.
    pub fn new(svc: Services) -> Ingest {
        Ingest {
            svc,
            extractor: Extractor::in_process(),
            rules: Arc::new(rules::Rules::shipped()),
        }
    }

    /// The same, extracting text with `e` (worker processes of the binary).
    pub fn with_extractor(mut self, e: Arc<Extractor>) -> Ingest {
        self.extractor = e;
        self
    }

    /// Checks ingest defaults before anything is written: the class is valid, the
    /// parties and cases exist.
    pub async fn check_defaults(&self, d: &IngestDefaults) -> Result<()> {
        if let Some(c) = &d.class {
            crate::ids::validate_class(c)?;
            self.svc.archive.check_class(c)?;
        }
        for l in &d.parties {
            self.svc
                .parties
                .get(&l.party)
                .await
                .map_err(|e| e.referenced("party"))?;
        }
        for c in &d.cases {
            self.svc
                .cases
                .get(c)
                .await
                .map_err(|e| e.referenced("case"))?;
        }
        Ok(())
    }

    /// The same, classifying with `rules`.
    pub fn with_rules(mut self, rules: rules::Rules) -> Ingest {
        self.rules = Arc::new(rules);
        self
    }

    /// Records a phone note or memo about a party as a text record linked to it.
    pub async fn note(&self, actor: &str, party: &str, n: NoteInput) -> Result<Archived> {
        let text = n.text.trim();
        if !crate::ids::shape::matches(crate::ids::shape::TEXT, text) {
            return Err(Error::unprocessable(
                "text",
                "a note needs text (not only spaces or control characters)",
            ));
        }
        let class = n.kind.unwrap_or_else(|| "phone-note".into());
        if class != "phone-note" && class != "memo" {
            return Err(Error::invalid("kind", "phone-note or memo"));
        }
        let title = n.title.unwrap_or_else(|| {
            let first = text.lines().next().unwrap_or_default();
            first
                .chars()
                .filter(|c| !c.is_control())
                .take(120)
                .collect()
        });
        let mut extra = BTreeMap::new();
        if let Some(d) = n.duration {
            extra.insert("duration".to_string(), d);
        }
        extra.insert("author".to_string(), actor.to_string());
        let given = Given {
            title: Some(title),
            document_date: Some(self.svc.archive.clock().now().date_naive()),
            media_type: Some("text/plain".into()),
            extra,
            ..Default::default()
        };
        let d = IngestDefaults {
            class: Some(class),
            parties: vec![PartyLink {
                party: party.to_string(),
                role: "subject".into(),
                reason: None,
            }],
            cases: n.case.into_iter().collect(),
            keep_copies: true,
            envelope: None,
            extra: Default::default(),
        };
        let content = Content::Memory(bytes::Bytes::from(text.to_string()));
        let (a, _) = self
            .archive_document(actor, content, Some("note.txt".into()), given, d)
            .await?;
        Ok(a)
    }

    /// Archives one raw RFC 5322 message byte-exact as the original, with its header
    /// facts; each attachment becomes a record of its own (`extra.parent`). The same
    /// bytes twice are archived once and reported as a duplicate.
    pub async fn archive_email(
        &self,
        actor: &str,
        raw: bytes::Bytes,
        d: &IngestDefaults,
    ) -> Result<ItemOutcome> {
        self.ingest_one(actor, Incoming::Email(raw), d).await
    }

    /// Archives one item (a batch of one).
    pub async fn ingest_one(
        &self,
        actor: &str,
        item: Incoming,
        d: &IngestDefaults,
    ) -> Result<ItemOutcome> {
        self.ingest(actor, vec![item], d)
            .await
            .pop()
            .unwrap_or_else(|| Err(Error::Internal("no outcome".into())))
    }

    /// Archives one document as an act of its own (an upload, `akte archive`, a note):
    /// the same bytes again make another record. Returns the committed record and what
    /// ingest found.
    pub async fn archive_document(
        &self,
        actor: &str,
        content: Content,
        file_name: Option<String>,
        given: Given,
        d: IngestDefaults,
    ) -> Result<(Archived, ItemOutcome)> {
        self.check_defaults(&d).await?;
        let d = IngestDefaults {
            keep_copies: true,
            ..d
        };
        let item = Incoming::Document {
            content,
            file_name,
            given: Box::new(given),
        };
        let mut o = self.ingest_one(actor, item, &d).await?;
        let a = o
            .archived
            .take()
            .ok_or_else(|| Error::Internal("an upload was not archived".into()))?;
        Ok((a, o))
    }
}
