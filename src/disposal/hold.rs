//! Legal holds (DESIGN §3): named, with reason and authority, scoped to records, a
//! party (covering records linked later too), a case, or a class within a date range.
//! Placed and released by journaled acts. A held record cannot be disposed.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{self, journal::Journal};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ids::shape;
use crate::record::RecordRevision;
use crate::store::keys::ObjectKind;
use crate::store::{Store, codec};

pub const FORMAT: u32 = 1;
/// Longest hold name, in characters.
pub const MAX_NAME: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HoldScope {
    Records {
        ids: Vec<String>,
    },
    Party {
        id: String,
    },
    Case {
        id: String,
    },
    Class {
        class: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRevision {
    pub format: u32,
    pub id: String,
    pub rev: u32,
    pub prev_hash: Option<String>,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub name: String,
    pub reason: String,
    pub authority: Option<String>,
    pub scope: HoldScope,
    pub active: bool,
    pub placed_at: DateTime<Utc>,
    pub placed_by: String,
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<String>,
    pub release_reason: Option<String>,
}

impl HoldRevision {
    pub fn decode(key: &str, bytes: &[u8]) -> Result<HoldRevision> {
        let h: HoldRevision = codec::decode(key, bytes)?;
        if h.format != FORMAT {
            return Err(Error::CorruptObject {
                key: key.into(),
                reason: format!("unsupported hold format {}", h.format),
            });
        }
        Ok(h)
    }

    /// Whether this (active) hold covers `r`. `resolve` maps a party id to its survivor.
    pub fn covers(&self, r: &RecordRevision, resolve: &dyn Fn(&str) -> String) -> bool {
        self.covers_parts(
            &Held {
                id: &r.id,
                cases: &r.cases,
                class: &r.class,
                date: r.document_date.unwrap_or(r.archived_at.date_naive()),
            },
            &|held| {
                let target = resolve(held);
                r.parties.iter().any(|l| resolve(&l.party) == target)
            },
        )
    }

    /// Whether this hold covers a record given by its parts; `links_party(id)` says
    /// whether the record is linked to party `id` (or to a party merged with it).
    pub fn covers_parts(&self, r: &Held<'_>, links_party: &dyn Fn(&str) -> bool) -> bool {
        if !self.active {
            return false;
        }
        match &self.scope {
            HoldScope::Records { ids } => ids.iter().any(|i| i == r.id),
            HoldScope::Party { id } => links_party(id),
            HoldScope::Case { id } => r.cases.contains(id),
            HoldScope::Class { class, from, to } => {
                let d = r.date;
                r.class == class && from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)
            }
        }
    }
}

/// What a hold looks at in a record besides its parties: from a revision or from the
/// catalog's summary.
pub struct Held<'a> {
    pub id: &'a str,
    pub cases: &'a [String],
    pub class: &'a str,
    /// The document date, else the day it was archived.
    pub date: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct Holds {
    store: Store,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
}

impl Holds {
    pub fn new(store: Store, journal: Arc<Journal>, clock: Arc<dyn Clock>) -> Holds {
        Holds {
            store,
            journal,
            clock,
        }
    }

    pub async fn place(
        &self,
        actor: &str,
        name: &str,
        reason: &str,
        authority: Option<String>,
        scope: HoldScope,
    ) -> Result<HoldRevision> {
        if !shape::matches(shape::NAME, name) || name.chars().count() > MAX_NAME {
            return Err(Error::invalid(
                "name",
                format!("required, one line, at most {MAX_NAME} characters"),
            ));
        }
        if !shape::matches(shape::TEXT, reason) {
            return Err(Error::invalid("reason", "a hold needs a reason"));
        }
        match &scope {
            HoldScope::Records { ids } if ids.is_empty() => {
                return Err(Error::invalid("scope", "no records named"));
            }
            HoldScope::Records { ids } => {
                for id in ids {
                    crate::ids::validate_id(id)?;
                }
            }
            HoldScope::Party { id } | HoldScope::Case { id } => crate::ids::validate_id(id)?,
            HoldScope::Class { class, from, to } => {
                crate::ids::validate_class(class)?;
                if let (Some(f), Some(t)) = (from, to)
                    && t < f
                {
                    return Err(Error::unprocessable("scope", "`to` lies before `from`"));
                }
            }
        }
        let now = self.clock.now();
        let h = HoldRevision {
            format: FORMAT,
            id: self.clock.new_id().to_string(),
            rev: 1,
            prev_hash: None,
            revised_at: now,
            actor: actor.into(),
            name: name.trim().into(),
            reason: reason.trim().into(),
            authority,
            scope,
            active: true,
            placed_at: now,
            placed_by: actor.into(),
            released_at: None,
            released_by: None,
            release_reason: None,
        };
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Hold,
            &h.id,
            1,
            codec::encode(&h)?,
            actor,
            "hold.place",
            Some(h.name.clone()),
        )
        .await?;
        Ok(h)
    }

    pub async fn release(&self, actor: &str, id: &str, reason: &str) -> Result<HoldRevision> {
        if !shape::matches(shape::TEXT, reason) {
            return Err(Error::invalid("reason", "releasing a hold needs a reason"));
        }
        let (prev, hash) = self.latest_raw(id).await?;
        if !prev.active {
            return Err(Error::state(
                "hold",
                format!("hold {id} is already released"),
            ));
        }
        let now = self.clock.now();
        let mut h = prev.clone();
        h.rev = audit::next_rev(&self.store, &self.journal, ObjectKind::Hold, id, prev.rev).await?;
        h.prev_hash = Some(hash);
        h.revised_at = now;
        h.actor = actor.into();
        h.active = false;
        h.released_at = Some(now);
        h.released_by = Some(actor.into());
        h.release_reason = Some(reason.trim().into());
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Hold,
            &h.id,
            h.rev,
            codec::encode(&h)?,
            actor,
            "hold.release",
            Some(h.name.clone()),
        )
        .await?;
        Ok(h)
    }

    async fn latest_raw(&self, id: &str) -> Result<(HoldRevision, String)> {
        audit::latest_revision(
            &self.store,
            &self.journal,
            ObjectKind::Hold,
            id,
            HoldRevision::decode,
        )
        .await
    }

    /// Every hold, latest revision each (active and released).
    pub async fn all(&self) -> Result<Vec<HoldRevision>> {
        let mut out = Vec::new();
        for key in audit::latest_keys(&self.journal, ObjectKind::Hold).await? {
            let bytes = self.store.get(&key).await?;
            out.push(HoldRevision::decode(key.as_ref(), &bytes)?);
        }
        Ok(out)
    }
}
