//! S3 Object Lock for what the journal commits (DESIGN §2.1: write-once enforced by the
//! storage itself, not only by akte's code).
//!
//! On a bucket with Object Lock every new object version is locked from its first byte
//! by the bucket's default retention (see `Store::open_with`). The [`Locker`] follows
//! the journal, like the search indexer, and gives each committed object the retention
//! it needs — only ever extending it:
//!
//! - a record's revisions and content blobs: until the end of its `retain_until` (a
//!   blob shared by several records: the latest of them; extended when a retention
//!   event moves a record's date later);
//! - the journal entries, the checkpoints and the revisions of every other kind
//!   (parties, cases, tokens, holds, disposals): until the *horizon*, the end of the
//!   year after the longest retention in force, so that the proof outlives every
//!   record it speaks about. When the horizon moves, those objects are extended again.
//! - legal holds: a record covered by an active hold has its objects under an S3 legal
//!   hold (a blob: while any record using it is held); released when no hold covers it.
//!
//! Its progress (the last journal entry applied, and the horizon) is node-local state
//! in the data directory; losing it costs a full pass, which changes nothing already
//! right (every call is "extend to at least", checked against the object's lock first).

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::disposal::hold::{HoldRevision, HoldScope};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::store::keys::{self, KeyKind, ObjectKind};
use crate::store::s3::{S3Api, end_of_day};
use crate::store::{LockMode, Store};

/// Objects locked at once.
const PARALLEL: usize = 16;
/// Journal entries read per page.
const PAGE: usize = 500;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LockReport {
    /// Journal entries applied.
    pub entries: u64,
    /// Objects whose retention was extended.
    pub extended: u64,
    /// Objects whose legal hold was placed or released.
    pub holds_changed: u64,
}

/// What locking one record did.
#[derive(Debug, Default)]
struct RecordLocked {
    retain_until: Option<NaiveDate>,
    extended: u64,
    holds_changed: u64,
    /// A disposed record's tombstone revision: locked like the journal.
    tombstone: Option<KeyKind>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Progress {
    seq: u64,
    horizon: Option<NaiveDate>,
}

/// Applies S3 Object Lock retention and legal holds to committed objects.
#[derive(Debug)]
pub struct Locker {
    svc: Services,
    mode: LockMode,
    api: S3Api,
    progress_file: PathBuf,
    gate: tokio::sync::Mutex<()>,
}

/// The horizon for a longest retention ending on `day`: the end of the following year.
pub fn horizon_for(day: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(day.year().saturating_add(1), 12, 31).unwrap_or(day)
}

impl Locker {
    /// A locker for the services' store, or `None` if it has no Object Lock.
    /// `state_dir` keeps its progress.
    pub fn new(svc: Services, state_dir: &std::path::Path) -> Option<Locker> {
        let (mode, api) = svc.archive.store().object_lock()?;
        let api = api.clone();
        Some(Locker {
            svc,
            mode,
            api,
            progress_file: state_dir.join("object-lock.json"),
            gate: tokio::sync::Mutex::new(()),
        })
    }

    fn store(&self) -> &Store {
        self.svc.archive.store()
    }

    fn load(&self) -> Progress {
        std::fs::read(&self.progress_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, p: &Progress) -> Result<()> {
        let dir = self
            .progress_file
            .parent()
            .ok_or_else(|| Error::Internal("object-lock state has no directory".into()))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        let tmp = self.progress_file.with_extension("json.tmp");
        let bytes = serde_json::to_vec(p).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(tmp.display(), e))?;
        std::fs::rename(&tmp, &self.progress_file)
            .map_err(|e| Error::io(self.progress_file.display(), e))
    }

    /// Applies every journal entry beyond the last pass. Returns what it changed.
    pub async fn catch_up(&self) -> Result<LockReport> {
        let _one = self.gate.lock().await;
        let mut progress = self.load();
        let journal = self.svc.archive.journal();
        let head = journal.head_seq().await?;
        if head < progress.seq {
            // State of another store: start over (every call only extends).
            progress = Progress::default();
        }
        let mut report = LockReport::default();
        if head == progress.seq {
            return Ok(report);
        }
        let holds = self.svc.holds.all().await?;
        let mut seq = progress.seq;
        while seq < head {
            let entries = journal.entries(seq, PAGE).await?;
            let Some(last) = entries.last() else { break };
            let upto = last.seq;
            // What these entries touched.
            let mut records: BTreeSet<String> = BTreeSet::new();
            let mut others: Vec<keys::KeyKind> = Vec::new();
            for e in &entries {
                others.push(KeyKind::Journal { seq: e.seq });
                for s in &e.subjects {
                    let Some(kind) = ObjectKind::from_subject(&s.kind) else {
                        continue;
                    };
                    match kind {
                        ObjectKind::Record => {
                            records.insert(s.id.clone());
                        }
                        ObjectKind::Hold => {
                            if let Some(rev) = s.rev {
                                records.extend(self.hold_scope(&s.id, rev).await?);
                            }
                        }
                        _ => {}
                    }
                    if kind != ObjectKind::Record
                        && let Some(rev) = s.rev
                    {
                        others.push(KeyKind::Revision {
                            kind,
                            id: s.id.clone(),
                            rev,
                        });
                    }
                }
            }
            // Records first: their dates move the horizon.
            let now = self.svc.archive.clock().now();
            let latest = futures::stream::iter(records)
                .map(|id| {
                    let holds = &holds;
                    async move { self.lock_record(&id, holds, now).await }
                })
                .buffer_unordered(PARALLEL)
                .try_collect::<Vec<_>>()
                .await?;
            let mut longest = progress.horizon;
            for done in latest {
                report.extended += done.extended;
                report.holds_changed += done.holds_changed;
                if let Some(u) = done.retain_until {
                    let h = horizon_for(u);
                    longest = Some(longest.map_or(h, |l| l.max(h)));
                }
                others.extend(done.tombstone);
            }
            let horizon = longest.unwrap_or_else(|| horizon_for(now.date_naive()));
            if progress.horizon.is_some_and(|h| h < horizon) {
                // The proof must outlive the new longest retention: everything locked
                // to the old horizon so far is extended.
                report.extended += self.extend_proof(progress.seq, horizon).await?;
            }
            report.extended += self.lock_all(&others, horizon).await?;
            report.extended += self.lock_checkpoints(horizon).await?;
            report.entries += entries.len() as u64;
            seq = upto;
            progress = Progress {
                seq,
                horizon: Some(horizon),
            };
            self.save(&progress)?;
        }
        Ok(report)
    }

    /// Records a hold revision may cover.
    async fn hold_scope(&self, id: &str, rev: u32) -> Result<Vec<String>> {
        let key = keys::revision(ObjectKind::Hold, id, rev);
        let h = HoldRevision::decode(key.as_ref(), &self.store().get(&key).await?)?;
        let cat = &self.svc.catalog;
        Ok(match &h.scope {
            HoldScope::Records { ids } => ids.clone(),
            HoldScope::Party { id } => cat.records_of(id).await,
            HoldScope::Case { id } => cat.records_in_case(id).await,
            HoldScope::Class { class, .. } => cat.records_of_class(class).await,
        })
    }

    /// Locks a record's revisions and blobs until its `retain_until`, and sets their
    /// legal hold to whether a hold covers it.
    async fn lock_record(
        &self,
        id: &str,
        holds: &[HoldRevision],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<RecordLocked> {
        let mut done = RecordLocked::default();
        let history = match self.svc.archive.history(id).await {
            Ok(h) => h,
            Err(Error::RecordNotFound { .. }) => return Ok(done),
            Err(e) => return Err(e),
        };
        let Some(latest) = history.last() else {
            return Ok(done);
        };
        if latest.tombstone.is_some() {
            // Disposed: the tombstone is evidence and stays as long as the journal.
            done.tombstone = Some(KeyKind::Revision {
                kind: ObjectKind::Record,
                id: id.to_string(),
                rev: latest.rev,
            });
            return Ok(done);
        }
        let day = latest.retention.retain_until;
        done.retain_until = Some(day);
        let until = end_of_day(day);
        // A date already past needs no lock beyond the bucket's default (S3 refuses a
        // retention in the past).
        let extend = until > now;
        let held = !self.svc.disposals.held_by(holds, latest).await?.is_empty();
        let blobs: BTreeSet<&str> = history
            .iter()
            .filter(|r| r.tombstone.is_none() && !r.content.sha256.is_empty())
            .map(|r| r.content.sha256.as_str())
            .collect();
        let until = extend.then_some(until);
        for rev in 1..=latest.rev {
            let key = keys::record_rev(id, rev);
            let (e, h) = self.api.apply_lock(&key, self.mode, until, held).await?;
            done.extended += u64::from(e);
            done.holds_changed += u64::from(h);
        }
        for sha in blobs {
            let key = keys::blob(sha);
            // A blob is held while any record using it is.
            let held_blob = held || self.blob_held_elsewhere(sha, id, holds).await?;
            let (e, h) = self
                .api
                .apply_lock(&key, self.mode, until, held_blob)
                .await?;
            done.extended += u64::from(e);
            done.holds_changed += u64::from(h);
        }
        Ok(done)
    }

    async fn blob_held_elsewhere(
        &self,
        sha: &str,
        except: &str,
        holds: &[HoldRevision],
    ) -> Result<bool> {
        if !holds.iter().any(|h| h.active) {
            return Ok(false);
        }
        for b in self.svc.catalog.records_with_sha(sha).await {
            if b.id == except {
                continue;
            }
            let r = self.svc.archive.latest(&b.id).await?;
            if !self.svc.disposals.held_by(holds, &r).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Locks objects of the proof (journal entries, other kinds' revisions) until
    /// `horizon`.
    async fn lock_all(&self, kinds: &[KeyKind], horizon: NaiveDate) -> Result<u64> {
        let until = end_of_day(horizon);
        let keys: Vec<object_store::path::Path> = kinds
            .iter()
            .filter_map(|k| match k {
                KeyKind::Journal { seq } => Some(keys::journal(*seq)),
                KeyKind::Revision { kind, id, rev } => Some(keys::revision(*kind, id, *rev)),
                KeyKind::Checkpoint { seq } => Some(keys::checkpoint(*seq)),
                KeyKind::Stamp { seq } => Some(keys::checkpoint_stamp(*seq)),
                _ => None,
            })
            .collect();
        let changed = futures::stream::iter(keys)
            .map(|k| async move { self.api.extend_retention(&k, self.mode, until).await })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<bool>>()
            .await?;
        Ok(changed.into_iter().filter(|c| *c).count() as u64)
    }

    async fn lock_checkpoints(&self, horizon: NaiveDate) -> Result<u64> {
        let list = self
            .store()
            .list_sorted(&keys::checkpoints_prefix())
            .await?;
        let kinds: Vec<KeyKind> = list.iter().map(|m| keys::classify(&m.location)).collect();
        self.lock_all(&kinds, horizon).await
    }

    /// Extends the proof objects of entries `1..=upto` to a later horizon.
    async fn extend_proof(&self, upto: u64, horizon: NaiveDate) -> Result<u64> {
        let journal = self.svc.archive.journal();
        let mut n = 0;
        let mut seq = 0;
        while seq < upto {
            let entries = journal.entries(seq, PAGE).await?;
            let Some(last) = entries.last() else { break };
            seq = last.seq.min(upto);
            let mut kinds = Vec::new();
            for e in entries.iter().filter(|e| e.seq <= upto) {
                kinds.push(KeyKind::Journal { seq: e.seq });
                for s in &e.subjects {
                    if let (Some(kind), Some(rev)) = (ObjectKind::from_subject(&s.kind), s.rev)
                        && kind != ObjectKind::Record
                    {
                        kinds.push(KeyKind::Revision {
                            kind,
                            id: s.id.clone(),
                            rev,
                        });
                    }
                }
            }
            n += self.lock_all(&kinds, horizon).await?;
        }
        Ok(n)
    }
}
