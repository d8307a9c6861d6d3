//! Cases (Vorgänge): business events that group records — a complaint, a service case,
//! an order, a project, a special, framework or price agreement. A case belongs to a
//! party, is open or closed (who and when is kept), and an agreement has a validity
//! period. Cases are revisioned and journaled like records.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{self, journal::Journal};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::keys::ObjectKind;
use crate::store::{Store, codec};

pub const FORMAT: u32 = 1;

/// Case kinds that are agreements: "in force" while their validity covers a day.
pub const AGREEMENT_KINDS: &[&str] = &[
    "contract",
    "framework-agreement",
    "price-agreement",
    "special-agreement",
    "agreement",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRevision {
    pub format: u32,
    pub id: String,
    pub rev: u32,
    pub prev_hash: Option<String>,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    pub reason: Option<String>,
    /// complaint, service-case, order, project, special-agreement, … (company-extensible)
    pub kind: String,
    pub title: String,
    pub party: String,
    pub status: CaseStatus,
    pub status_changed_at: DateTime<Utc>,
    pub status_changed_by: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    /// External reference (order number, ticket number …).
    pub reference: Option<String>,
}

impl CaseRevision {
    pub fn decode(key: &str, bytes: &[u8]) -> Result<CaseRevision> {
        let c: CaseRevision = codec::decode(key, bytes)?;
        if c.format != FORMAT {
            return Err(Error::CorruptObject {
                key: key.to_string(),
                reason: format!("unsupported case format {}", c.format),
            });
        }
        Ok(c)
    }

    pub fn is_agreement(&self) -> bool {
        AGREEMENT_KINDS.contains(&self.kind.as_str())
    }

    /// An agreement is in force on `day` if it is not closed and its validity covers it.
    pub fn in_force(&self, day: NaiveDate) -> bool {
        self.is_agreement()
            && self.status == CaseStatus::Open
            && self.valid_from.is_none_or(|f| f <= day)
            && self.valid_until.is_none_or(|u| u >= day)
    }
}

/// What a new case needs.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    pub kind: String,
    pub title: String,
    pub party: String,
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    #[serde(default)]
    pub reference: Option<String>,
}

/// A change to a case; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseChange {
    #[serde(default)]
    pub status: Option<CaseStatus>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Cases {
    store: Store,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
}

impl Cases {
    pub fn new(store: Store, journal: Arc<Journal>, clock: Arc<dyn Clock>) -> Cases {
        Cases {
            store,
            journal,
            clock,
        }
    }

    async fn commit(&self, c: &CaseRevision, action: &str, detail: String) -> Result<()> {
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Case,
            &c.id,
            c.rev,
            codec::encode(c)?,
            &c.actor,
            action,
            Some(detail),
        )
        .await?;
        Ok(())
    }

    /// Opens a case for `party` (which the caller has checked exists).
    pub async fn create(&self, actor: &str, n: NewCase) -> Result<CaseRevision> {
        crate::ids::validate_class(&n.kind).map_err(|_| {
            Error::invalid(
                "kind",
                format!("{:?} is not a case kind (lower-case, '-')", n.kind),
            )
        })?;
        crate::record::validate_title(&n.title)?;
        if !crate::ids::shape::matches(crate::ids::shape::NAME, &n.title) {
            return Err(Error::invalid("title", "required"));
        }
        crate::ids::validate_id(&n.party).map_err(|_| Error::invalid("party", "not a party id"))?;
        if let (Some(f), Some(u)) = (n.valid_from, n.valid_until)
            && u < f
        {
            return Err(Error::unprocessable("valid_until", "before valid_from"));
        }
        let now = self.clock.now();
        let c = CaseRevision {
            format: FORMAT,
            id: self.clock.new_id().to_string(),
            rev: 1,
            prev_hash: None,
            revised_at: now,
            actor: actor.to_string(),
            change: "created".into(),
            reason: None,
            kind: n.kind,
            title: n.title.trim().to_string(),
            party: n.party,
            status: CaseStatus::Open,
            status_changed_at: now,
            status_changed_by: actor.to_string(),
            valid_from: n.valid_from,
            valid_until: n.valid_until,
            reference: n.reference,
        };
        self.commit(&c, "case.create", c.kind.clone()).await?;
        Ok(c)
    }

    pub async fn change(&self, actor: &str, id: &str, ch: CaseChange) -> Result<CaseRevision> {
        let (prev, hash) = self.latest_raw(id).await?;
        let mut next = prev.clone();
        let mut what = Vec::new();
        let now = self.clock.now();
        if let Some(s) = ch.status
            && s != prev.status
        {
            next.status = s;
            next.status_changed_at = now;
            next.status_changed_by = actor.to_string();
            what.push(match s {
                CaseStatus::Open => "reopened",
                CaseStatus::Closed => "closed",
            });
        }
        if let Some(t) = ch.title
            && t != prev.title
        {
            crate::record::validate_title(&t)?;
            next.title = t;
            what.push("title");
        }
        if ch.valid_from.is_some() && ch.valid_from != prev.valid_from {
            next.valid_from = ch.valid_from;
            what.push("validity");
        }
        if ch.valid_until.is_some() && ch.valid_until != prev.valid_until {
            next.valid_until = ch.valid_until;
            if !what.contains(&"validity") {
                what.push("validity");
            }
        }
        if let (Some(f), Some(u)) = (next.valid_from, next.valid_until)
            && u < f
        {
            return Err(Error::unprocessable("valid_until", "before valid_from"));
        }
        if what.is_empty() {
            return Err(Error::unchanged("case"));
        }
        next.rev =
            audit::next_rev(&self.store, &self.journal, ObjectKind::Case, id, prev.rev).await?;
        next.prev_hash = Some(hash);
        next.revised_at = now;
        next.actor = actor.to_string();
        next.change = what.join(", ");
        next.reason = ch.reason;
        let action = if next.status != prev.status {
            "case.status"
        } else {
            "case.amend"
        };
        self.commit(&next, action, next.change.clone()).await?;
        Ok(next)
    }

    async fn latest_raw(&self, id: &str) -> Result<(CaseRevision, String)> {
        audit::latest_revision(
            &self.store,
            &self.journal,
            ObjectKind::Case,
            id,
            CaseRevision::decode,
        )
        .await
    }

    pub async fn get(&self, id: &str) -> Result<CaseRevision> {
        Ok(self.latest_raw(id).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(
        from: Option<NaiveDate>,
        until: Option<NaiveDate>,
        status: CaseStatus,
    ) -> CaseRevision {
        let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 0, 0, 0).unwrap();
        CaseRevision {
            format: 1,
            id: "c".into(),
            rev: 1,
            prev_hash: None,
            revised_at: t,
            actor: "a".into(),
            change: "created".into(),
            reason: None,
            kind: "special-agreement".into(),
            title: "Sonderkondition".into(),
            party: "p".into(),
            status,
            status_changed_at: t,
            status_changed_by: "a".into(),
            valid_from: from,
            valid_until: until,
            reference: None,
        }
    }

    #[test]
    fn in_force_only_within_validity_and_while_open() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let today = d(6, 15);
        assert!(agreement(Some(d(1, 1)), Some(d(12, 31)), CaseStatus::Open).in_force(today));
        assert!(agreement(None, None, CaseStatus::Open).in_force(today));
        assert!(
            !agreement(Some(d(1, 1)), Some(d(6, 14)), CaseStatus::Open).in_force(today),
            "ended yesterday"
        );
        assert!(
            agreement(Some(d(1, 1)), Some(d(6, 15)), CaseStatus::Open).in_force(today),
            "ends today"
        );
        assert!(
            !agreement(Some(d(6, 16)), None, CaseStatus::Open).in_force(today),
            "starts tomorrow"
        );
        assert!(!agreement(None, None, CaseStatus::Closed).in_force(today));
    }
}
