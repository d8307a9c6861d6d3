//! The domain services together: records, parties, cases and the catalog that joins
//! them. The edges (API, CLI) hold one of these; every write goes through it so that the
//! catalog sees each change the moment it is committed.

use std::sync::Arc;

use crate::archive::{Archive, Archived, LinkChange, NewRecord};
use crate::case::Cases;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::party::Parties;
use crate::record::RecordRevision;

#[derive(Debug, Clone)]
pub struct Services {
    pub archive: Archive,
    pub parties: Parties,
    pub cases: Cases,
    pub catalog: Arc<Catalog>,
    pub holds: crate::disposal::hold::Holds,
    pub disposals: crate::disposal::Disposals,
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
        let holds = crate::disposal::hold::Holds::new(
            store,
            archive.journal_arc(),
            archive.clock().clone(),
        );
        let disposals =
            crate::disposal::Disposals::new(archive.clone(), holds.clone(), parties.clone());
        Services {
            archive,
            parties,
            cases,
            catalog,
            holds,
            disposals,
        }
    }

    /// The names of the active holds covering record `r` however they were placed (on
    /// the record, its party, its case, its class), merged into the holds it carries.
    pub async fn holds_in_force(&self, r: &crate::record::RecordRevision) -> Result<Vec<String>> {
        let mut names = r.holds.clone();
        if r.tombstone.is_none() {
            let holds = self.holds.all().await?;
            for h in self.disposals.held_by(&holds, r).await? {
                if !names.contains(&h) {
                    names.push(h);
                }
            }
        }
        Ok(names)
    }

    /// The active legal holds placed on a party (or on a party merged into it).
    pub async fn party_holds(&self, party: &str) -> Result<Vec<crate::catalog::HoldNote>> {
        let sid = self.catalog.resolve(party).await;
        let mut out = Vec::new();
        for h in self.holds.all().await? {
            if let crate::disposal::hold::HoldScope::Party { id } = &h.scope
                && h.active
                && self.catalog.resolve(id).await == sid
            {
                out.push(crate::catalog::HoldNote {
                    id: h.id.clone(),
                    name: h.name.clone(),
                    reason: h.reason.clone(),
                    placed_at: h.placed_at,
                });
            }
        }
        Ok(out)
    }

    /// Builds the catalog from the store.
    pub async fn load(&self) -> Result<()> {
        self.catalog.rebuild(self.archive.journal()).await
    }

    /// Archives `input` with exactly the metadata given (nothing read, classified or
    /// linked) and enters it into the catalog: for fixtures and tools. Uploads, imports
    /// and notes go through `ingest::Ingest`, the one pipeline.
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
            self.parties
                .get(&l.party)
                .await
                .map_err(|e| e.referenced("party"))?;
        }
        for c in &ch.add_cases {
            self.cases.get(c).await.map_err(|e| e.referenced("case"))?;
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
                && let crate::disposal::hold::HoldScope::Party { id: held } = &h.scope
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
}
