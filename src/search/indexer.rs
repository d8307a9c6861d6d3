//! Keeps the search index in step with the store.
//!
//! - [`Indexer::catch_up`] reads the journal beyond the sequence the last index commit
//!   covers, re-indexes every record an entry touched (a record entry: that record; a
//!   party entry: the party's records, whose names are indexed with them; a hold entry:
//!   the records in its scope), then commits with the new sequence. The server calls it
//!   twice a second, so a record is searchable about half a second after it was
//!   acknowledged, and after a crash the first call indexes what the dead process had
//!   not committed.
//! - [`Indexer::rebuild`] indexes every record from the store alone (`akte reindex`).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::{IndexDoc, SearchIndex};
use crate::disposal::hold::{HoldRevision, HoldScope};
use crate::error::{Error, Result};
use crate::record::RecordRevision;
use crate::service::Services;
use crate::store::keys::{self, ObjectKind};

#[derive(Debug, Clone)]
pub struct Indexer {
    pub index: Arc<SearchIndex>,
    svc: Services,
    /// One catch-up or rebuild at a time.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// How many records are loaded and analysed at once.
const PARALLEL: usize = 16;

impl Indexer {
    pub fn new(index: Arc<SearchIndex>, svc: Services) -> Indexer {
        Indexer {
            index,
            svc,
            gate: Arc::default(),
        }
    }

    /// Builds the document of one record revision.
    pub async fn doc(&self, r: &RecordRevision, holds: &[HoldRevision]) -> Result<IndexDoc> {
        let body = crate::extract::record_text(&self.svc.archive, r)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(record = %r.id, "no text for the index: {e}");
                String::new()
            });
        let mut names = String::new();
        for l in &r.parties {
            if let Some(p) = self.svc.catalog.party(&l.party).await {
                let d = &p.data;
                names.push_str(&d.name);
                for v in d
                    .vat_id
                    .iter()
                    .chain(d.register_number.iter())
                    .chain(d.identifiers.values())
                    .chain(d.emails.iter())
                    .chain(d.domains.iter())
                {
                    names.push(' ');
                    names.push_str(v);
                }
                names.push('\n');
            }
        }
        let held = self.svc.disposals.held_by(holds, r).await?;
        let get = |k: &str| r.extra.get(k).cloned().unwrap_or_default();
        Ok(IndexDoc {
            id: r.id.clone(),
            title: r.title.clone(),
            body,
            lang: None,
            class: r.class.clone(),
            parties: r
                .parties
                .iter()
                .map(|l| (l.party.clone(), l.role.clone()))
                .collect(),
            party_names: names,
            cases: r.cases.clone(),
            holds: held,
            from: get("from"),
            to: get("to"),
            cc: get("cc"),
            extra: r
                .extra
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "from" | "to" | "cc"))
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            media_type: r.content.media_type.clone(),
            document_date: r.document_date,
            archived_at: r.archived_at,
            retain_until: Some(r.retention.retain_until),
            awaiting_event: r.retention.awaiting_event.is_some(),
        })
    }

    /// The highlighted title and text excerpt of one hit: reads its latest revision and
    /// at most `SNIPPET_SOURCE` bytes of its content. `None` when the record is gone.
    pub async fn snippets(
        &self,
        r: &super::SearchRequest,
        hit: &super::Hit,
    ) -> Option<(String, String)> {
        let archive = &self.svc.archive;
        let rev = archive.latest(&hit.id).await.ok()?;
        let text = crate::extract::record_text_upto(archive, &rev, crate::extract::SNIPPET_SOURCE)
            .await
            .unwrap_or_default();
        self.index.snippet(r, hit.lang, &rev.title, &text).ok()
    }

    /// Re-reads one record and puts (or removes) its document.
    async fn refresh(&self, id: &str, holds: &[HoldRevision]) -> Result<()> {
        match self.svc.archive.latest(id).await {
            Ok(r) if r.tombstone.is_none() => {
                let d = self.doc(&r, holds).await?;
                let index = self.index.clone();
                blocking(move || index.put(&d)).await
            }
            Ok(_) | Err(Error::RecordNotFound { .. }) => self.index.remove(id),
            Err(e) => Err(e),
        }
    }

    /// Indexes what the journal holds beyond the last commit; returns how many records
    /// were re-indexed.
    pub async fn catch_up(&self) -> Result<usize> {
        let _one = self.gate.lock().await;
        self.catch_up_locked().await
    }

    async fn catch_up_locked(&self) -> Result<usize> {
        let journal = self.svc.archive.journal();
        let since = self.index.committed_seq()?;
        let head = journal.head_seq().await?;
        if since > head {
            // The index covers more than this journal holds: it was built from another
            // store. Start over.
            tracing::warn!(
                index_seq = since,
                journal_seq = head,
                "the search index is ahead of the journal (another store?); rebuilding"
            );
            let n = self.rebuild_locked(&|_, _| {}).await?;
            return Ok(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if head <= since {
            return Ok(0);
        }
        if since == 0 {
            // A new (or deleted) index: listing the records is cheaper than reading the
            // whole journal.
            let n = self.rebuild_locked(&|_, _| {}).await?;
            return Ok(usize::try_from(n).unwrap_or(usize::MAX));
        }
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut seq = since;
        while seq < head {
            let entries = journal.entries(seq, 1000).await?;
            let Some(last) = entries.last() else { break };
            seq = last.seq;
            for e in &entries {
                for s in &e.subjects {
                    match s.kind.as_str() {
                        "record" => {
                            ids.insert(s.id.clone());
                        }
                        "party" => ids.extend(self.svc.catalog.records_of(&s.id).await),
                        "hold" => {
                            if let Some(rev) = s.rev {
                                ids.extend(self.hold_scope(&s.id, rev).await?);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let holds = self.svc.holds.all().await?;
        let n = ids.len();
        futures::stream::iter(ids)
            .map(|id| {
                let holds = &holds;
                async move { self.refresh(&id, holds).await }
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        let index = self.index.clone();
        blocking(move || index.commit(seq)).await?;
        Ok(n)
    }

    /// Records a hold revision may cover (placing, changing or releasing it).
    async fn hold_scope(&self, id: &str, rev: u32) -> Result<Vec<String>> {
        let key = keys::revision(ObjectKind::Hold, id, rev);
        let h = HoldRevision::decode(key.as_ref(), &self.svc.archive.store().get(&key).await?)?;
        Ok(match &h.scope {
            HoldScope::Records { ids } => ids.clone(),
            HoldScope::Party { id } => self.svc.catalog.records_of(id).await,
            HoldScope::Case { id } => self.svc.catalog.records_in_case(id).await,
            HoldScope::Class { class, .. } => self.index.ids_with_class(class)?,
        })
    }

    /// Rebuilds the whole index from the store; `progress(done, total)` is called as it
    /// goes. Returns the number of records indexed.
    pub async fn rebuild(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<u64> {
        let _one = self.gate.lock().await;
        let n = self.rebuild_locked(progress).await?;
        // Whatever was committed while we listed.
        self.catch_up_locked().await?;
        Ok(n)
    }

    async fn rebuild_locked(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<u64> {
        // The ledger brought up to the head this rebuild commits: every record up to it
        // is in the listing (a head read apart from the ledger lost records that other
        // nodes committed in between).
        let head = self.svc.archive.journal().sync_ledger().await?;
        let store = self.svc.archive.store();
        let latest =
            crate::audit::latest_keys(self.svc.archive.journal(), ObjectKind::Record).await?;
        let total = latest.len() as u64;
        let holds = self.svc.holds.all().await?;
        let index = self.index.clone();
        blocking(move || index.clear()).await?;
        let mut done = 0u64;
        let mut indexed = 0u64;
        let mut batch = Vec::new();
        let mut docs = futures::stream::iter(latest)
            .map(|key| {
                let holds = &holds;
                async move {
                    let bytes = store.get(&key).await?;
                    let r = self
                        .svc
                        .archive
                        .open_meta(RecordRevision::decode(key.as_ref(), &bytes)?)
                        .await?;
                    if r.tombstone.is_some() {
                        return Ok(None);
                    }
                    self.doc(&r, holds).await.map(Some)
                }
            })
            .buffered(PARALLEL);
        while let Some(d) = docs.next().await {
            done += 1;
            if let Some(d) = d? {
                batch.push(d);
                indexed += 1;
            }
            if batch.len() >= 1000 {
                let index = self.index.clone();
                let b = std::mem::take(&mut batch);
                blocking(move || index.add_new(b)).await?;
                progress(done, total);
            }
        }
        let index = self.index.clone();
        blocking(move || {
            index.add_new(batch)?;
            index.commit(head)?;
            index.optimize()
        })
        .await?;
        progress(done, total);
        Ok(indexed)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("index task failed: {e}")))?
}
