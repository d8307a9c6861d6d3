//! Changing records: amendments, retention events, links, content versions,
//! tombstones, and the refusal of deletion — each a new revision.

use bytes::Bytes;
use chrono::NaiveDate;
use futures::{Stream, StreamExt, TryStreamExt};

use super::*;
use crate::audit::{self};
use crate::error::{Error, Result};
use crate::record::{self, RecordRevision};
use crate::store::blob::{self};
use crate::store::keys::ObjectKind;

impl Archive {
    /// The number of the record's next revision after `prev` (past crash leftovers).
    pub(super) async fn next_rev(&self, prev: &RecordRevision) -> Result<u32> {
        audit::next_rev(
            &self.store,
            &self.journal,
            ObjectKind::Record,
            &prev.id,
            prev.rev,
        )
        .await
    }

    /// The latest revision and its hash, refusing a disposed record (no change after
    /// disposal).
    pub(super) async fn latest_live(&self, id: &str) -> Result<(RecordRevision, String)> {
        let (r, h) = self.latest_raw(id).await?;
        if r.tombstone.is_some() {
            return Err(Error::Disposed { id: id.to_string() });
        }
        Ok((r, h))
    }

    /// Writes the tombstone revision of a disposed record (called by disposal only).
    pub(crate) async fn write_tombstone(
        &self,
        actor: &str,
        id: &str,
        t: crate::record::Tombstone,
    ) -> Result<RecordRevision> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        let mut next = prev.clone();
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "disposed".into();
        next.reason = Some(t.reason.clone());
        // No personal data in the tombstone: title, file name, links and extras go.
        next.title = String::new();
        next.content.file_name = None;
        next.parties = vec![];
        next.extra = Default::default();
        next.tombstone = Some(t);
        self.commit(next.clone(), "record.dispose", Some("disposed".into()))
            .await?;
        Ok(next)
    }

    /// Amends metadata by writing a new revision.
    pub async fn amend(&self, actor: &str, id: &str, a: Amendment) -> Result<RecordRevision> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        if let Some(base) = a.base_rev
            && base != prev.rev
        {
            return Err(Error::RevisionConflict {
                id: id.to_string(),
                rev: prev.rev,
            });
        }
        let mut next = prev.clone();
        let mut changed = Vec::new();
        if let Some(t) = a.title
            && t != prev.title
        {
            record::validate_title(&t)?;
            next.title = t;
            changed.push("title");
        }
        if let Some(c) = a.class
            && c != prev.class
        {
            crate::ids::validate_class(&c)?;
            self.check_class(&c)?;
            next.class = c;
            changed.push("class");
        }
        if let Some(d) = a.document_date
            && Some(d) != prev.document_date
        {
            next.document_date = Some(d);
            changed.push("document_date");
        }
        if changed
            .iter()
            .any(|c| *c == "class" || *c == "document_date")
        {
            let trigger = next.document_date.unwrap_or(next.archived_at.date_naive());
            next.retention = self
                .catalogue
                .recompute(&prev.retention, &next.class, trigger);
        }
        if let Some(until) = a.retain_until {
            if until < next.retention.retain_until {
                let e = Error::RetentionShortening {
                    id: id.to_string(),
                    current: next.retention.retain_until.to_string(),
                    requested: until.to_string(),
                };
                self.journal_refusal(actor, id, "shorten retention", &e)
                    .await;
                return Err(e);
            }
            if until != next.retention.retain_until {
                next.retention.retain_until = until;
                next.retention.policy = format!(
                    "{}+extended",
                    prev.retention.policy.trim_end_matches("+extended")
                );
                changed.push("retain_until");
            }
        }
        if next.retention != prev.retention && !changed.contains(&"retain_until") {
            changed.push("retention");
        }
        if changed.is_empty() {
            return Err(Error::unchanged("amendment"));
        }
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = changed.join(", ");
        next.reason = a.reason;
        self.commit(next.clone(), "record.amend", Some(next.change.clone()))
            .await?;
        Ok(next)
    }

    /// Records the event an event-triggered retention waits for (contract end, case
    /// closed): the period then runs from the end of the event's year. Only extends.
    pub async fn record_event(
        &self,
        actor: &str,
        id: &str,
        date: NaiveDate,
        reason: Option<String>,
    ) -> Result<RecordRevision> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        if !self.catalogue.entry(&prev.class).is_event() {
            return Err(Error::invalid(
                "class",
                format!(
                    "retention of class {} does not wait for an event",
                    prev.class
                ),
            ));
        }
        let mut next = prev.clone();
        next.retention = self
            .catalogue
            .apply_event(&prev.retention, &prev.class, date);
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = format!("retention event {date}");
        next.reason = reason;
        self.commit(
            next.clone(),
            "record.retention",
            Some(format!(
                "event {date}: retained until {}",
                next.retention.retain_until
            )),
        )
        .await?;
        Ok(next)
    }

    /// Recomputes a record's retention with the catalogue in force (after a catalogue
    /// change). Writes a revision only when the period grows; never shortens.
    pub async fn recompute_retention(
        &self,
        actor: &str,
        id: &str,
    ) -> Result<Option<RecordRevision>> {
        let (prev, prev_hash) = self.latest_live(id).await?;
        let trigger = prev.document_date.unwrap_or(prev.archived_at.date_naive());
        let r = self
            .catalogue
            .recompute(&prev.retention, &prev.class, trigger);
        if r.retain_until <= prev.retention.retain_until {
            return Ok(None);
        }
        let mut next = prev.clone();
        next.retention = r;
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "retention".into();
        next.reason = Some(format!("catalogue {}", self.catalogue.version));
        self.commit(
            next.clone(),
            "record.retention",
            Some(format!("retained until {}", next.retention.retain_until)),
        )
        .await?;
        Ok(Some(next))
    }

    /// Adds or removes links to parties and cases, as a new revision.
    pub async fn change_links(
        &self,
        actor: &str,
        id: &str,
        ch: LinkChange,
    ) -> Result<RecordRevision> {
        // A tombstone is final: no links are added to (or taken from) a disposed record.
        let (prev, prev_hash) = self.latest_live(id).await?;
        let mut next = prev.clone();
        for l in &ch.add_parties {
            crate::ids::validate_id(&l.party)
                .map_err(|_| Error::invalid("party", format!("{:?} is not a party id", l.party)))?;
            if l.role == "*" {
                return Err(Error::unprocessable(
                    "role",
                    "`*` (every role) is for removing links",
                ));
            }
            crate::ids::validate_class(&l.role)
                .map_err(|_| Error::invalid("role", format!("{:?} is not a role name", l.role)))?;
        }
        next.parties.retain(|l| {
            !ch.remove_parties
                .iter()
                .any(|(p, r)| *p == l.party && (r == "*" || *r == l.role))
        });
        for l in ch.add_parties {
            if !next
                .parties
                .iter()
                .any(|x| x.party == l.party && x.role == l.role)
            {
                next.parties.push(l);
            }
        }
        for c in &ch.add_cases {
            crate::ids::validate_id(c)
                .map_err(|_| Error::invalid("case", format!("{c:?} is not a case id")))?;
        }
        next.cases.retain(|c| !ch.remove_cases.contains(c));
        for c in ch.add_cases {
            if !next.cases.contains(&c) {
                next.cases.push(c);
            }
        }
        if next.parties == prev.parties && next.cases == prev.cases {
            return Err(Error::unchanged("links"));
        }
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "links".into();
        next.reason = ch.reason;
        self.commit(next.clone(), "record.link", Some("links".into()))
            .await?;
        Ok(next)
    }

    /// Adds a new content version: a new blob and a new revision pointing to it.
    pub async fn amend_content<S, E>(
        &self,
        actor: &str,
        id: &str,
        input: S,
        meta: NewContent,
    ) -> Result<RecordRevision>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: Into<Error>,
    {
        let _upload = self.store.upload_guard().await;
        let (prev, prev_hash) = self.latest_live(id).await?;
        let mut input = input;
        let first = input.try_next().await.map_err(Into::into)?;
        let file_name = meta.file_name.or(prev.content.file_name.clone());
        let media_type = match meta.media_type {
            Some(m) => validate_media_type(&m)?,
            None => {
                record::guess_media_type(file_name.as_deref(), first.as_deref().unwrap_or_default())
            }
        };
        let rest =
            futures::stream::iter(first.map(Ok::<Bytes, Error>)).chain(input.map_err(Into::into));
        // Unique per call: two uploads of the same record never share a staging name.
        let staging = format!("{id}-{}", self.clock.new_id());
        let blob = blob::put_stream(&self.store, &staging, Box::pin(rest)).await?;
        let mut next = prev.clone();
        next.rev = self.next_rev(&prev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "content".into();
        next.reason = meta.reason;
        next.content = content_ref(&blob, media_type, file_name, prev.content.version + 1);
        if let Some(facts) = meta.facts {
            next.extra
                .retain(|k, _| !CONTENT_FACTS.contains(&k.as_str()));
            next.extra.extend(facts);
        }
        self.commit(
            next.clone(),
            "record.content",
            Some(format!("content v{}", next.content.version)),
        )
        .await?;
        Ok(next)
    }

    /// Refuses deletion, always: records leave only through an approved disposal request.
    /// The attempt is journaled.
    pub async fn delete(&self, actor: &str, id: &str) -> Result<()> {
        let (r, _) = self.latest_live(id).await?;
        let e = Error::Retained {
            id: id.to_string(),
            retain_until: format!(
                "{} (records are removed only by an approved disposal request)",
                r.retention.retain_until
            ),
        };
        self.journal_refusal(actor, id, "delete", &e).await;
        Err(e)
    }

    /// Journals a refused attempt to remove or shorten the retention of a record: an
    /// auditor sees the attempt, not only its absence of effect.
    pub(super) async fn journal_refusal(&self, actor: &str, id: &str, what: &str, e: &Error) {
        let draft = crate::audit::journal::Draft {
            actor: actor.to_string(),
            action: "retention.refused".into(),
            subjects: vec![crate::audit::journal::Subject {
                kind: "record".into(),
                id: id.to_string(),
                rev: None,
                digest: None,
            }],
            payload_digest: None,
            detail: Some(format!("{what}: {e}")),
        };
        if let Err(err) = self.journal.append(draft).await {
            tracing::error!("could not journal a refused {what} of {id}: {err}");
        }
    }
}
