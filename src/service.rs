//! The domain services together: records, parties, cases and the catalog that joins
//! them. The edges (API, CLI) hold one of these; every write goes through it so that the
//! catalog sees each change the moment it is committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::archive::{Archive, Archived, LinkChange, NewRecord};
use crate::case::Cases;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::ingest::batch::{Given, Incoming, IngestDefaults, ItemOutcome};
use crate::ingest::content::Content;
use crate::party::Parties;
use crate::record::{PartyLink, RecordRevision};

#[derive(Debug, Clone)]
pub struct Services {
    pub archive: Archive,
    pub parties: Parties,
    pub cases: Cases,
    pub catalog: Arc<Catalog>,
    pub holds: crate::retention::hold::Holds,
    pub disposals: crate::retention::disposal::Disposals,
    /// Text extraction (worker processes with limits, or in-process).
    pub extractor: Arc<crate::extract::sandbox::Extractor>,
    /// Classification rules applied at ingest.
    pub rules: Arc<crate::ingest::rules::Rules>,
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

impl Services {
    pub fn new(archive: Archive) -> Services {
        let store = archive.store().clone();
        let parties = Parties::new(
            store.clone(),
            archive.journal_arc(),
            archive.clock().clone(),
        );
        let cases = Cases::new(
            store.clone(),
            archive.journal_arc(),
            archive.clock().clone(),
        );
        let catalog = Arc::new(Catalog::new(archive.clone(), parties.clone()));
        let holds = crate::retention::hold::Holds::new(
            store,
            archive.journal_arc(),
            archive.clock().clone(),
        );
        let disposals = crate::retention::disposal::Disposals::new(
            archive.clone(),
            holds.clone(),
            parties.clone(),
        );
        Services {
            archive,
            parties,
            cases,
            catalog,
            holds,
            disposals,
            extractor: crate::extract::sandbox::Extractor::in_process(),
            rules: Arc::new(crate::ingest::rules::Rules::shipped()),
        }
    }

    /// Checks ingest defaults before anything is written: the class is valid, the
    /// parties and cases exist.
    pub async fn check_defaults(&self, d: &IngestDefaults) -> Result<()> {
        if let Some(c) = &d.class {
            crate::record::validate_class(c)?;
        }
        for l in &d.parties {
            self.parties.get(&l.party).await?;
        }
        for c in &d.cases {
            self.cases.get(c).await?;
        }
        Ok(())
    }

    /// The same services extracting text with `e` (worker processes, in the binary).
    pub fn with_extractor(mut self, e: Arc<crate::extract::sandbox::Extractor>) -> Services {
        self.extractor = e;
        self
    }

    /// The same services classifying with `rules`.
    pub fn with_rules(mut self, rules: crate::ingest::rules::Rules) -> Services {
        self.rules = Arc::new(rules);
        self
    }

    /// Builds the catalog from the store.
    pub async fn load(&self) -> Result<()> {
        self.catalog.rebuild(self.archive.journal()).await
    }

    /// Archives a record and enters it into the catalog.
    pub async fn archive<S, E>(&self, actor: &str, input: S, meta: NewRecord) -> Result<Archived>
    where
        S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: Into<Error>,
    {
        for l in &meta.parties {
            self.parties.get(&l.party).await?;
        }
        for c in &meta.cases {
            self.cases.get(c).await?;
        }
        let a = self.archive.archive(actor, input, meta).await?;
        self.catalog.put_record(&a.revision).await;
        Ok(a)
    }

    /// Adds or removes links of a record (parties and cases must exist).
    pub async fn link(&self, actor: &str, id: &str, ch: LinkChange) -> Result<RecordRevision> {
        for l in &ch.add_parties {
            self.parties.get(&l.party).await?;
        }
        for c in &ch.add_cases {
            self.cases.get(c).await?;
        }
        let r = self.archive.change_links(actor, id, ch).await?;
        self.catalog.put_record(&r).await;
        Ok(r)
    }

    /// Erases a party's personal data (GDPR Art. 17) — refused while any of its records is
    /// still retained or held (Art. 17 (3) (b): a legal retention duty comes first), or a
    /// hold names the party.
    pub async fn erase_party(
        &self,
        actor: &str,
        id: &str,
        reason: &str,
    ) -> Result<crate::party::Party> {
        let today = self.disposals.trusted_today().await?;
        let party = self.parties.get(id).await?;
        let mut blockers = Vec::new();
        let holds = self.holds.all().await?;
        for h in &holds {
            if h.active
                && let crate::retention::hold::HoldScope::Party { id: held } = &h.scope
                && self
                    .parties
                    .resolve(held)
                    .await
                    .map(|p| p.revision.id)
                    .ok()
                    .as_deref()
                    == Some(party.revision.id.as_str())
            {
                blockers.push(format!("legal hold {}", h.name));
            }
        }
        for rid in self.catalog.records_of(id).await {
            let r = self.archive.latest(&rid).await?;
            if r.tombstone.is_some() {
                continue;
            }
            if r.retention.retain_until >= today {
                blockers.push(format!(
                    "record {rid} is retained until {}",
                    r.retention.retain_until
                ));
            } else {
                let held = self.disposals.held_by(&holds, &r).await?;
                if !held.is_empty() {
                    blockers.push(format!("record {rid} is on hold ({})", held.join(", ")));
                }
            }
        }
        if !blockers.is_empty() {
            blockers.truncate(5);
            return Err(Error::NotEligible {
                reason: format!("personal data are still needed: {}", blockers.join("; ")),
            });
        }
        let p = self.parties.erase(actor, id, reason).await?;
        self.catalog.put_party(&p).await;
        Ok(p)
    }

    /// Changes a case, and applies the retention event it may be: closing a case, or the
    /// end of an agreement's validity, starts the period of its event-triggered records
    /// (service reports after the case is closed, contracts after they end).
    pub async fn change_case(
        &self,
        actor: &str,
        id: &str,
        ch: crate::case::CaseChange,
    ) -> Result<crate::case::CaseRevision> {
        let c = self.cases.change(actor, id, ch).await?;
        self.catalog.put_case(&c).await;
        let event = if c.status == crate::case::CaseStatus::Closed {
            Some(c.valid_until.unwrap_or(c.status_changed_at.date_naive()))
        } else {
            c.valid_until
        };
        if let Some(date) = event {
            for rid in self.catalog.records_in_case(&c.id).await {
                let r = self.archive.latest(&rid).await?;
                if r.tombstone.is_none()
                    && r.retention.awaiting_event.is_some()
                    && self.archive.catalogue().entry(&r.class).is_event()
                {
                    let next = self
                        .archive
                        .record_event(
                            actor,
                            &rid,
                            date,
                            Some(format!("case {} {}", c.id, c.change)),
                        )
                        .await?;
                    self.catalog.put_record(&next).await;
                }
            }
        }
        Ok(c)
    }

    /// Records a phone note or memo about a party as a text record linked to it.
    pub async fn note(&self, actor: &str, party: &str, n: NoteInput) -> Result<Archived> {
        let text = n.text.trim();
        if text.is_empty() {
            return Err(Error::invalid("text", "a note needs text"));
        }
        let class = n.kind.unwrap_or_else(|| "phone-note".into());
        if class != "phone-note" && class != "memo" {
            return Err(Error::invalid("kind", "phone-note or memo"));
        }
        let title = n.title.unwrap_or_else(|| {
            let first = text.lines().next().unwrap_or_default();
            first.chars().take(120).collect()
        });
        let mut extra = BTreeMap::new();
        if let Some(d) = n.duration {
            extra.insert("duration".to_string(), d);
        }
        extra.insert("author".to_string(), actor.to_string());
        let given = Given {
            title: Some(title),
            document_date: Some(self.archive.clock().now().date_naive()),
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
        };
        let content = Content::Memory(bytes::Bytes::from(text.to_string()));
        let (a, _) = self
            .archive_document(actor, content, Some("note.txt".into()), given, d)
            .await?;
        Ok(a)
    }
}

impl Services {
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
