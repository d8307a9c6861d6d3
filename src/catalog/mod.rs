//! The catalog: a derived, in-memory index of parties, cases and record summaries that
//! serves the party file, party lists and contact matching without scanning the store.
//!
//! Derived state (DESIGN §2.7): built from the store at start, kept current by applying
//! every revision this process commits and by tailing the journal for what other
//! processes commit. Deleting it loses nothing. Personal data enter it only in clear
//! form decrypted with keys that still exist, so an erased party is rebuilt without them.

mod queries;
mod state;
mod views;

pub use state::fold;
pub use views::*;

use futures::StreamExt;
use tokio::sync::RwLock;

use crate::audit::journal::Journal;
use crate::case::CaseRevision;
use crate::error::{Error, Result};
use crate::party::{Parties, Party};
use crate::record::RecordRevision;
use crate::store::Store;
use crate::store::keys::{self, ObjectKind};

use state::{Loaded, State, apply};

#[derive(Debug)]
pub struct Catalog {
    store: Store,
    archive: crate::archive::Archive,
    parties: Parties,
    state: RwLock<State>,
    /// False until the first rebuild has finished.
    ready: tokio::sync::watch::Sender<bool>,
}

/// A committed revision the catalog cannot read is corruption for `verify` to report; it
/// must not keep every other object from being served.
fn skipped(kind: ObjectKind, e: &Error) {
    tracing::error!("catalog: a committed {} was skipped: {e}", kind.subject());
}

impl Catalog {
    pub fn new(archive: crate::archive::Archive, parties: Parties) -> Catalog {
        Catalog {
            store: archive.store().clone(),
            archive,
            parties,
            state: RwLock::new(State::default()),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first rebuild is done, at most `timeout`; says whether it is.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let mut rx = self.ready.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| *r)).await,
            Ok(Ok(_))
        )
    }

    /// Rebuilds everything from the store, then applies what the journal holds beyond.
    pub async fn rebuild(&self, journal: &Journal) -> Result<()> {
        // Built from what the journal committed, never from a store listing: a revision
        // no entry names does not exist (DESIGN §2.6).
        let head = journal.sync_ledger().await?;
        let mut state = State {
            seq: head,
            ..Default::default()
        };
        for kind in [ObjectKind::Party, ObjectKind::Case, ObjectKind::Record] {
            let latest = journal.ledger().latest_of_kind(kind);
            let mut loaded = futures::stream::iter(latest)
                .map(|(id, rev)| self.load(kind, id, rev))
                .buffered(32);
            while let Some(l) = loaded.next().await {
                match l {
                    Ok(l) => apply(&mut state, l),
                    Err(e @ Error::Store { .. }) => return Err(e),
                    Err(e) => skipped(kind, &e),
                }
            }
        }
        *self.state.write().await = state;
        self.catch_up(journal).await?;
        self.ready.send_replace(true);
        Ok(())
    }

    async fn load(&self, kind: ObjectKind, id: String, rev: u32) -> Result<Loaded> {
        if !matches!(
            kind,
            ObjectKind::Record | ObjectKind::Party | ObjectKind::Case
        ) {
            return Ok(Loaded::Nothing);
        }
        let key = keys::revision(kind, &id, rev);
        let bytes = self.store.get(&key).await?;
        Ok(match kind {
            ObjectKind::Record => Loaded::Record(Box::new(
                self.archive
                    .open_meta(RecordRevision::decode(key.as_ref(), &bytes)?)
                    .await?,
            )),
            ObjectKind::Party => {
                let r = crate::party::PartyRevision::decode(key.as_ref(), &bytes)?;
                Loaded::Party(Box::new(self.parties.open(&r).await?))
            }
            ObjectKind::Case => Loaded::Case(Box::new(CaseRevision::decode(key.as_ref(), &bytes)?)),
            ObjectKind::Token | ObjectKind::Hold | ObjectKind::Disposal => Loaded::Nothing,
        })
    }

    /// Applies journal entries written since the last look (by any process).
    pub async fn catch_up(&self, journal: &Journal) -> Result<()> {
        let since = self.state.read().await.seq;
        let head = journal.head_seq().await?;
        if head <= since {
            return Ok(());
        }
        let mut seq = since;
        while seq < head {
            let entries = journal.entries(seq, 1000).await?;
            let Some(last) = entries.last() else { break };
            let next_seq = last.seq;
            for e in entries {
                for (s, rev, _) in e.written() {
                    if let Some(kind) = ObjectKind::from_subject(&s.kind) {
                        match self.load(kind, s.id.clone(), rev).await {
                            Ok(l) => apply(&mut *self.state.write().await, l),
                            Err(e @ Error::Store { .. }) => return Err(e),
                            Err(e) => skipped(kind, &e),
                        }
                    }
                }
            }
            seq = next_seq;
            self.state.write().await.seq = seq;
        }
        Ok(())
    }

    pub async fn put_record(&self, r: &RecordRevision) {
        self.state.write().await.put_record(RecordBrief::from(r));
    }

    pub async fn put_party(&self, p: &Party) {
        self.state.write().await.put_party(PartyBrief::from(p));
    }

    pub async fn put_case(&self, c: &CaseRevision) {
        self.state.write().await.put_case(c.clone());
    }
}
