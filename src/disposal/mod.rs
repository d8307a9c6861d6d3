//! Disposal (DESIGN §2.5): expiry makes a record *eligible*, nothing more. Destroying it
//! needs a request by one person and the approval of another (four-eyes), a trusted
//! clock, and no hold. Execution writes a tombstone revision per record (hash, class,
//! legal basis, dates, requester, approver — no personal data), deletes the content blobs
//! that no live record references any more, and journals every step. Refused attempts
//! are journaled too.

pub mod hold;
pub mod report;

use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::archive::Archive;
use crate::audit::{
    self,
    journal::{Draft, Journal, Subject},
};
use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::party::Parties;
use crate::record::{RecordRevision, Tombstone};
use crate::store::keys::{self, KeyKind, ObjectKind};
use crate::store::{Store, codec};
use hold::{HoldRevision, Holds};

pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DisposalState {
    Requested,
    /// Approved by a second person; the execution is under way (or was cut short and
    /// resumes).
    Approved,
    Executed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DisposedItem {
    pub record: String,
    pub class: String,
    pub policy: String,
    pub legal_basis: String,
    pub retain_until: NaiveDate,
    /// (sha256, size) of every content version.
    pub contents: Vec<(String, u64)>,
    pub blobs_deleted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DisposalRevision {
    pub format: u32,
    pub id: String,
    pub rev: u32,
    pub prev_hash: Option<String>,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub records: Vec<String>,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub state: DisposalState,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub items: Vec<DisposedItem>,
}

impl DisposalRevision {
    pub fn decode(key: &str, bytes: &[u8]) -> Result<DisposalRevision> {
        let d: DisposalRevision = codec::decode(key, bytes)?;
        if d.format != FORMAT {
            return Err(Error::CorruptObject {
                key: key.into(),
                reason: format!("unsupported disposal format {}", d.format),
            });
        }
        Ok(d)
    }
}

/// Why a record is not eligible for disposal now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotEligible {
    pub record: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Disposals {
    store: Store,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
    archive: Archive,
    holds: Holds,
    parties: Parties,
}

impl Disposals {
    pub fn new(archive: Archive, holds: Holds, parties: Parties) -> Disposals {
        Disposals {
            store: archive.store().clone(),
            journal: archive.journal_arc(),
            clock: archive.clock().clone(),
            archive,
            holds,
            parties,
        }
    }

    /// Today, by a clock that has not moved back behind the journal.
    pub async fn trusted_today(&self) -> Result<NaiveDate> {
        // Read the journal's last time first, then the clock: an entry another task
        // appends in between must not look like a clock that went back.
        let last = self.journal.last_time().await?;
        let now = self.clock.now();
        if let Some(last) = last
            && now < last
        {
            return Err(Error::ClockBehind {
                now: now.to_rfc3339(),
                last: last.to_rfc3339(),
            });
        }
        Ok(now.date_naive())
    }

    /// Names of active holds covering `r`.
    /// `holds` is every hold (`Holds::all`), loaded once by the caller for a whole batch.
    pub async fn held_by(&self, holds: &[HoldRevision], r: &RecordRevision) -> Result<Vec<String>> {
        // Only party-scoped holds need merged parties resolved (a read each); without
        // one active, decide from the record alone.
        let party_scoped = holds
            .iter()
            .any(|h| h.active && matches!(h.scope, hold::HoldScope::Party { .. }));
        if !party_scoped {
            return Ok(holds
                .iter()
                .filter(|h| h.covers(r, &|id| id.to_string()))
                .map(|h| h.name.clone())
                .collect());
        }
        let mut ids: BTreeSet<String> = r.parties.iter().map(|l| l.party.clone()).collect();
        for h in holds {
            if let hold::HoldScope::Party { id } = &h.scope {
                ids.insert(id.clone());
            }
        }
        let mut resolved: HashMap<String, String> = HashMap::new();
        for id in ids {
            let s = match self.parties.resolve(&id).await {
                Ok(p) => p.revision.id,
                Err(_) => id.clone(),
            };
            resolved.insert(id, s);
        }
        let resolve = |id: &str| resolved.get(id).cloned().unwrap_or_else(|| id.to_string());
        Ok(holds
            .iter()
            .filter(|h| h.covers(r, &resolve))
            .map(|h| h.name.clone())
            .collect())
    }

    /// Checks one record; `Ok(revision)` if it may be disposed on `today`.
    pub async fn check(
        &self,
        id: &str,
        today: NaiveDate,
        holds: &[HoldRevision],
    ) -> Result<std::result::Result<RecordRevision, NotEligible>> {
        let r = self.archive.latest(id).await?;
        let no = |reason: String| {
            Ok(Err(NotEligible {
                record: id.to_string(),
                reason,
            }))
        };
        if r.tombstone.is_some() {
            return no("already disposed".into());
        }
        if r.retention.retain_until >= today {
            return no(format!(
                "retained until {} ({})",
                r.retention.retain_until, r.retention.legal_basis
            ));
        }
        let held = self.held_by(holds, &r).await?;
        if !held.is_empty() {
            return no(format!("on legal hold: {}", held.join(", ")));
        }
        Ok(Ok(r))
    }

    /// Records past retention and under no hold, in id order: those after `after`, at
    /// most `limit`. The candidates come from the catalog's summaries (past retention,
    /// not disposed), a bounded number per pass; each is then checked against its
    /// committed revision and the holds, as a disposal request checks it. Only
    /// candidates are read from the store, and memory is bounded by `limit`.
    pub async fn eligible(
        &self,
        catalog: &Catalog,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecordRevision>> {
        let today = self.trusted_today().await?;
        let holds = self.holds.all().await?;
        catalog.catch_up(&self.journal).await?;
        let per_pass = limit.clamp(64, 10_000) * 2;
        let mut cursor = after.map(str::to_string);
        let mut out = Vec::new();
        loop {
            let from = cursor.clone();
            // The `per_pass` smallest candidate ids after the cursor (a max-heap).
            let heap = catalog
                .fold_summaries(BinaryHeap::new(), move |heap, r| {
                    let past = !r.retention.disposed && r.retention.retain_until < today;
                    if !past || from.as_deref().is_some_and(|c| r.id.as_str() <= c) {
                        return;
                    }
                    if heap.len() < per_pass {
                        heap.push(r.id);
                    } else if heap.peek().is_some_and(|top| r.id < *top) {
                        heap.pop();
                        heap.push(r.id);
                    }
                })
                .await?;
            let full = heap.len() == per_pass;
            for id in heap.into_sorted_vec() {
                if let Ok(r) = self.check(&id, today, &holds).await? {
                    out.push(r);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
                cursor = Some(id);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    async fn refused(&self, actor: &str, what: &str, subjects: Vec<Subject>, why: &str) {
        let _ = self
            .journal
            .append(Draft {
                actor: actor.into(),
                action: "retention.refused".into(),
                subjects,
                payload_digest: None,
                detail: Some(format!("{what}: {why}")),
            })
            .await;
    }

    fn subjects(ids: &[String]) -> Vec<Subject> {
        ids.iter()
            .map(|i| Subject {
                kind: "record".into(),
                id: i.clone(),
                rev: None,
                digest: None,
            })
            .collect()
    }

    /// Requests disposal of records; refused whole if any is not eligible.
    pub async fn request(
        &self,
        actor: &str,
        ids: &[String],
        reason: &str,
    ) -> Result<DisposalRevision> {
        if !crate::ids::shape::matches(crate::ids::shape::TEXT, reason) {
            return Err(Error::invalid(
                "reason",
                "a disposal request needs a reason",
            ));
        }
        let mut ids: Vec<String> = ids.to_vec();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Err(Error::invalid("records", "no records named"));
        }
        let today = match self.trusted_today().await {
            Ok(t) => t,
            Err(e) => {
                self.refused(
                    actor,
                    "disposal request",
                    Self::subjects(&ids),
                    &e.to_string(),
                )
                .await;
                return Err(e);
            }
        };
        let holds = self.holds.all().await?;
        let mut not = Vec::new();
        for id in &ids {
            if let Err(n) = self.check(id, today, &holds).await? {
                not.push(format!("{}: {}", n.record, n.reason));
            }
        }
        if !not.is_empty() {
            let why = not.join("; ");
            self.refused(actor, "disposal request", Self::subjects(&ids), &why)
                .await;
            return Err(Error::NotEligible { reason: why });
        }
        let now = self.clock.now();
        let d = DisposalRevision {
            format: FORMAT,
            id: self.clock.new_id().to_string(),
            rev: 1,
            prev_hash: None,
            revised_at: now,
            actor: actor.into(),
            records: ids,
            reason: reason.trim().into(),
            requested_by: actor.into(),
            requested_at: now,
            state: DisposalState::Requested,
            approved_by: None,
            approved_at: None,
            items: vec![],
        };
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Disposal,
            &d.id,
            1,
            codec::encode(&d)?,
            actor,
            "disposal.request",
            Some(format!("{} records", d.records.len())),
        )
        .await?;
        Ok(d)
    }

    pub async fn get(&self, id: &str) -> Result<DisposalRevision> {
        Ok(self.latest_raw(id).await?.0)
    }

    async fn latest_raw(&self, id: &str) -> Result<(DisposalRevision, String)> {
        audit::latest_revision(
            &self.store,
            &self.journal,
            ObjectKind::Disposal,
            id,
            DisposalRevision::decode,
        )
        .await
    }

    /// Every content hash referenced by any revision of a record that is not disposed
    /// and not among `disposing`.
    async fn live_blobs(&self, disposing: &HashSet<String>) -> Result<HashSet<String>> {
        let metas = self.store.list_sorted(&keys::records_prefix()).await?;
        let mut by_record: Vec<(String, Vec<(object_store::path::Path, u32)>)> = Vec::new();
        for m in metas {
            if let KeyKind::Revision { id, rev, .. } = keys::classify(&m.location) {
                match by_record.last_mut() {
                    Some((last, v)) if *last == id => v.push((m.location, rev)),
                    _ => by_record.push((id, vec![(m.location, rev)])),
                }
            }
        }
        let ledger = self.archive.journal().ledger_synced().await?;
        let mut live = HashSet::new();
        for (id, revs) in by_record {
            if disposing.contains(&id) {
                continue;
            }
            let loaded: Vec<Option<RecordRevision>> = futures::stream::iter(revs)
                .map(|(k, rev)| {
                    let store = self.store.clone();
                    let committed = ledger.is_committed(ObjectKind::Record, &id, rev);
                    async move {
                        let b = store.get(&k).await?;
                        match RecordRevision::decode(k.as_ref(), &b) {
                            Ok(r) => Ok(Some(r)),
                            // A write a crash cut short, never committed (recovery sets
                            // it aside): it names no content. An uncommitted revision
                            // that decodes still keeps its content (it may be in flight).
                            Err(_) if !committed => Ok(None),
                            Err(e) => Err(e),
                        }
                    }
                })
                .buffered(16)
                .try_collect()
                .await?;
            let loaded: Vec<RecordRevision> = loaded.into_iter().flatten().collect();
            if loaded.last().is_some_and(|r| r.tombstone.is_some()) {
                continue;
            }
            live.extend(loaded.into_iter().map(|r| r.content.sha256));
        }
        Ok(live)
    }

    /// Approves a request and executes it (in the caller's task). See
    /// [`Disposals::approve_only`] and [`Disposals::execute`]: the approval is journaled
    /// first, so that an execution cut short by a crash is finished later.
    pub async fn approve(&self, actor: &str, id: &str) -> Result<DisposalRevision> {
        let approved = self.approve_only(actor, id).await?;
        self.execute(&approved.id, &NoProgress).await
    }

    /// Approves a request: the approver must be another person, the clock trusted, every
    /// record still eligible. Journaled as `disposal.approve`: from then on the decision
    /// stands, and [`Disposals::execute`] carries it out (again and again if need be).
    /// An approved request is returned as it is.
    pub async fn approve_only(&self, actor: &str, id: &str) -> Result<DisposalRevision> {
        let (req, hash) = self.latest_raw(id).await?;
        let subjects = vec![Subject {
            kind: "disposal".into(),
            id: id.into(),
            rev: Some(req.rev),
            digest: None,
        }];
        match req.state {
            DisposalState::Requested => {}
            DisposalState::Approved => return Ok(req),
            DisposalState::Executed => {
                return Err(Error::state(
                    "disposal",
                    format!("request {id} was already executed"),
                ));
            }
        }
        // Four eyes are two persons, whatever tokens they use.
        if crate::access::person_of(actor) == crate::access::person_of(&req.requested_by) {
            let e = Error::FourEyes { id: id.into() };
            self.refused(actor, "disposal approval", subjects, &e.to_string())
                .await;
            return Err(e);
        }
        let today = match self.trusted_today().await {
            Ok(t) => t,
            Err(e) => {
                self.refused(actor, "disposal approval", subjects, &e.to_string())
                    .await;
                return Err(e);
            }
        };
        let holds = self.holds.all().await?;
        // Re-check: a hold may have been placed since the request.
        let mut not = Vec::new();
        for rid in &req.records {
            if let Err(n) = self.check(rid, today, &holds).await? {
                not.push(format!("{}: {}", n.record, n.reason));
            }
        }
        if !not.is_empty() {
            let why = not.join("; ");
            self.refused(actor, "disposal approval", subjects, &why)
                .await;
            return Err(Error::NotEligible { reason: why });
        }
        let now = self.clock.now();
        let d = self
            .commit_next(&req, hash, actor, "disposal.approve", |d| {
                d.state = DisposalState::Approved;
                d.approved_by = Some(actor.into());
                d.approved_at = Some(now);
                format!("{} records", d.records.len())
            })
            .await?;
        Ok(d)
    }

    /// Writes the request's next revision — `change` fills it in and returns the entry's
    /// detail — and journals it as `action`.
    async fn commit_next(
        &self,
        req: &DisposalRevision,
        prev_hash: String,
        actor: &str,
        action: &str,
        change: impl FnOnce(&mut DisposalRevision) -> String,
    ) -> Result<DisposalRevision> {
        let mut d = req.clone();
        d.rev = audit::next_rev(
            &self.store,
            &self.journal,
            ObjectKind::Disposal,
            &req.id,
            req.rev,
        )
        .await?;
        d.prev_hash = Some(prev_hash);
        d.revised_at = self.clock.now();
        d.actor = actor.into();
        let detail = change(&mut d);
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Disposal,
            &d.id,
            d.rev,
            codec::encode(&d)?,
            actor,
            action,
            Some(detail),
        )
        .await?;
        Ok(d)
    }

    /// Every disposal request, newest first.
    pub async fn all(&self) -> Result<Vec<DisposalRevision>> {
        let mut out = Vec::new();
        for id in self.journal.committed_ids(ObjectKind::Disposal).await? {
            out.push(self.get(&id).await?);
        }
        out.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Approved requests whose execution has not finished (a crash, an error): what a
    /// starting server resumes.
    pub async fn unfinished(&self) -> Result<Vec<DisposalRevision>> {
        let mut out = Vec::new();
        for id in self.journal.committed_ids(ObjectKind::Disposal).await? {
            let d = self.get(&id).await?;
            if d.state == DisposalState::Approved {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// How far the execution of a request has come: records tombstoned of all.
    pub async fn progress(&self, d: &DisposalRevision) -> Result<(usize, usize)> {
        let mut done = 0;
        for rid in &d.records {
            if self
                .archive
                .latest(rid)
                .await?
                .tombstone
                .is_some_and(|t| t.disposal == d.id)
            {
                done += 1;
            }
        }
        Ok((done, d.records.len()))
    }

    /// Executes an approved request, idempotently: records already tombstoned by it are
    /// skipped, the rest get their tombstone, then the blobs no live record uses are
    /// deleted and the records' keys destroyed (each durably), and `disposal.execute`
    /// closes it. Run again after a crash or an error, it finishes what is left.
    ///
    /// The blobs to delete are decided while no upload of this process is half-way, and
    /// reserved until deleted: an upload of the same bytes meanwhile waits and then
    /// stores its own copy — it is never acknowledged onto a blob that is then deleted.
    pub async fn execute(&self, id: &str, progress: &dyn Progress) -> Result<DisposalRevision> {
        let (req, hash) = self.latest_raw(id).await?;
        match req.state {
            DisposalState::Executed => return Ok(req),
            DisposalState::Requested => {
                return Err(Error::state(
                    "disposal",
                    format!("request {id} is not approved"),
                ));
            }
            DisposalState::Approved => {}
        }
        let approver = req.approved_by.clone().unwrap_or_default();
        let now = self.clock.now();
        // Which records are left, and are they still free of holds? A hold placed after
        // the approval stops the execution (it resumes once the hold is released).
        let holds = self.holds.all().await?;
        let mut left = Vec::new();
        for rid in &req.records {
            let r = self.archive.latest(rid).await?;
            match &r.tombstone {
                Some(t) if t.disposal == req.id => {}
                Some(t) => {
                    return Err(Error::invalid(
                        "disposal",
                        format!("record {rid} was disposed by request {}", t.disposal),
                    ));
                }
                None => {
                    let held = self.held_by(&holds, &r).await?;
                    if !held.is_empty() {
                        let why = format!("{rid}: on legal hold: {}", held.join(", "));
                        self.refused(
                            &approver,
                            "disposal execution",
                            Self::subjects(std::slice::from_ref(rid)),
                            &why,
                        )
                        .await;
                        return Err(Error::NotEligible { reason: why });
                    }
                    left.push(r);
                }
            }
        }
        progress.started(req.records.len(), req.records.len() - left.len());
        // Every content version of every record of the request.
        let mut contents_of: HashMap<String, Vec<(String, u64)>> = HashMap::new();
        for rid in &req.records {
            let mut contents: Vec<(String, u64)> = Vec::new();
            for h in self.archive.history(rid).await? {
                if h.tombstone.is_none() && !contents.iter().any(|(s, _)| *s == h.content.sha256) {
                    contents.push((h.content.sha256.clone(), h.content.size));
                }
            }
            contents_of.insert(rid.clone(), contents);
        }
        let all: BTreeSet<String> = contents_of
            .values()
            .flatten()
            .map(|(s, _)| s.clone())
            .collect();
        let disposing: HashSet<String> = req.records.iter().cloned().collect();
        let reservation = self
            .store
            .reserve_blobs(async {
                let live = self.live_blobs(&disposing).await?;
                Ok(all.into_iter().filter(|s| !live.contains(s)).collect())
            })
            .await?;
        let to_delete: BTreeSet<String> = reservation_blobs(&reservation);
        // On a bucket with Object Lock, S3 refuses to delete a version before its
        // retention ends or while it is on legal hold. Ask it first: a refusal then
        // leaves nothing half-done (no tombstone written, no blob deleted).
        if let Some((_, api)) = self.store.object_lock() {
            for sha in &to_delete {
                let key = crate::store::keys::blob(sha);
                let Some(lock) = api.lock_state(&key).await? else {
                    continue;
                };
                let until = lock.retain_until.filter(|u| *u > now);
                if until.is_none() && !lock.legal_hold {
                    continue;
                }
                let rid = contents_of
                    .iter()
                    .find(|(_, c)| c.iter().any(|(s, _)| s == sha))
                    .map(|(r, _)| r.clone())
                    .unwrap_or_default();
                let why = match until {
                    Some(u) => format!(
                        "{rid}: its content (blob {sha}) is locked by the bucket's Object Lock \
                         until {} ({}); S3 would refuse the deletion — nothing was disposed, \
                         execute again after that date",
                        u.format("%Y-%m-%d %H:%M:%S UTC"),
                        lock.mode.map(|m| m.name()).unwrap_or("retention")
                    ),
                    None => format!(
                        "{rid}: its content (blob {sha}) is under an S3 legal hold; nothing \
                         was disposed"
                    ),
                };
                self.refused(
                    &approver,
                    "disposal execution",
                    Self::subjects(std::slice::from_ref(&rid)),
                    &why,
                )
                .await;
                return Err(Error::NotEligible { reason: why });
            }
        }
        for r in &left {
            let contents = contents_of.get(&r.id).cloned().unwrap_or_default();
            let deleted: Vec<String> = contents
                .iter()
                .filter(|(s, _)| to_delete.contains(s))
                .map(|(s, _)| s.clone())
                .collect();
            let tomb = Tombstone {
                disposal: req.id.clone(),
                disposed_at: now,
                requested_by: req.requested_by.clone(),
                approved_by: approver.clone(),
                reason: req.reason.clone(),
                class: r.class.clone(),
                policy: r.retention.policy.clone(),
                legal_basis: r.retention.legal_basis.clone(),
                retain_until: r.retention.retain_until,
                contents,
                blobs_deleted: deleted,
            };
            self.archive.write_tombstone(&approver, &r.id, tomb).await?;
            progress.record_done();
        }
        for sha in &to_delete {
            self.store.dispose_blob(sha).await?;
        }
        drop(reservation);
        // Crypto-shred the records' titles and file names in every earlier revision.
        for rid in &req.records {
            self.archive.destroy_record_key(rid).await?;
        }
        // The items, from the tombstones (this run's and earlier runs').
        let mut items = Vec::new();
        for rid in &req.records {
            let r = self.archive.latest(rid).await?;
            if let Some(t) = r.tombstone {
                items.push(DisposedItem {
                    record: rid.clone(),
                    class: t.class,
                    policy: t.policy,
                    legal_basis: t.legal_basis,
                    retain_until: t.retain_until,
                    contents: t.contents,
                    blobs_deleted: t.blobs_deleted,
                });
            }
        }
        let deleted = to_delete.len();
        let d = self
            .commit_next(&req, hash, &approver, "disposal.execute", |d| {
                d.state = DisposalState::Executed;
                d.items = items;
                let n = d.records.len();
                format!(
                    "{n} record{}, {deleted} blob{} deleted",
                    if n == 1 { "" } else { "s" },
                    if deleted == 1 { "" } else { "s" }
                )
            })
            .await?;
        Ok(d)
    }
}

fn reservation_blobs(r: &crate::store::Reservation) -> BTreeSet<String> {
    r.blobs().iter().cloned().collect()
}

/// Progress of an execution, for the CLI's bar and the server's job view.
pub trait Progress: Send + Sync {
    /// `total` records, `done` of them tombstoned by an earlier run.
    fn started(&self, _total: usize, _done: usize) {}
    fn record_done(&self) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

/// A human-readable disposal certificate.
pub fn certificate_html(d: &DisposalRevision) -> String {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }
    let mut rows = String::new();
    for i in &d.items {
        let hashes: Vec<String> = i
            .contents
            .iter()
            .map(|(s, n)| format!("{s} ({n} bytes)"))
            .collect();
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
            esc(&i.record),
            esc(&i.class),
            esc(&i.legal_basis),
            i.retain_until,
            esc(&hashes.join(", ")),
            i.blobs_deleted.len()
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><title>Löschprotokoll / Disposal certificate {id}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}</style></head>\n<body>\n<h1>Löschprotokoll / Disposal certificate</h1>\n<p>Request <code>{id}</code>, state <b>{state:?}</b>.</p>\n<p>Requested by {req} at {req_at}; approved by {appr} at {appr_at}.</p>\n<p>Reason: {reason}</p>\n<table><tr><th>Record</th><th>Class</th><th>Legal basis</th><th>Retained until</th><th>Content (SHA-256)</th><th>Blobs deleted</th></tr>\n{rows}</table>\n<p>Each record keeps a tombstone revision with these facts; the journal entries <code>record.dispose</code> and <code>disposal.execute</code> prove when this happened. No personal data are recorded here.</p>\n</body></html>\n",
        id = esc(&d.id),
        state = d.state,
        req = esc(&d.requested_by),
        req_at = d.requested_at.to_rfc3339(),
        appr = esc(d.approved_by.as_deref().unwrap_or("-")),
        appr_at = d
            .approved_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".into()),
        reason = esc(&d.reason),
    )
}
