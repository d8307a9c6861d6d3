//! Read auditing (DESIGN §2.8): who opened or downloaded which record or party.
//!
//! A read is journaled *before* it is served: [`ReadLog::record`] returns once the entry
//! naming it is durable, and fails when it cannot be written (the request then fails;
//! a read is never served unjournaled, and never silently dropped). Reads do not pay an
//! append each: whatever arrives while an append runs goes into the next one (group
//! commit), so under load one entry names many reads — one entry per actor and kind
//! (`record.read` for records and their content, `party.read` for parties).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::journal::{Draft, Journal, Subject};
use crate::error::{Error, Result};

/// Largest number of reads in one journal entry.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct ReadEvent {
    pub actor: String,
    pub record_id: String,
    pub rev: u32,
    /// `metadata`, `content` or `party`.
    pub what: &'static str,
}

type Waiting = (ReadEvent, oneshot::Sender<Result<()>>);

#[derive(Debug)]
pub struct ReadLog {
    tx: Mutex<Option<mpsc::UnboundedSender<Waiting>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ReadLog {
    pub fn start(journal: Arc<Journal>) -> ReadLog {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(journal, rx));
        ReadLog {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Journals a read; returns once the entry naming it is durable.
    pub async fn record(&self, ev: ReadEvent) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let sent = match self.tx.lock().await.as_ref() {
            Some(tx) => tx.send((ev, done)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(Error::Internal(
                "the read log is closed (shutting down); the read is not served".into(),
            ));
        }
        wait.await.unwrap_or_else(|_| {
            Err(Error::Internal(
                "the read log stopped before journaling the read".into(),
            ))
        })
    }

    /// Stops accepting reads and waits until every queued read is journaled.
    pub async fn shutdown(&self) {
        self.tx.lock().await.take();
        if let Some(task) = self.task.lock().await.take()
            && let Err(e) = task.await
        {
            tracing::error!("read log task failed: {e}");
        }
    }
}

async fn run(journal: Arc<Journal>, mut rx: mpsc::UnboundedReceiver<Waiting>) {
    while let Some(first) = rx.recv().await {
        // Everything that queued up meanwhile joins this batch; nothing waits for more.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        flush(&journal, batch).await;
    }
}

async fn flush(journal: &Journal, batch: Vec<Waiting>) {
    let mut groups: BTreeMap<(String, bool), Vec<Waiting>> = BTreeMap::new();
    for w in batch {
        let key = (w.0.actor.clone(), w.0.what == "party");
        groups.entry(key).or_default().push(w);
    }
    for ((actor, party), waiting) in groups {
        let content = waiting.iter().filter(|(e, _)| e.what == "content").count();
        let detail = if party {
            format!("{} party reads", waiting.len())
        } else {
            format!(
                "{} reads ({} content, {} metadata)",
                waiting.len(),
                content,
                waiting.len() - content
            )
        };
        let subjects = waiting
            .iter()
            .map(|(e, _)| Subject {
                kind: match e.what {
                    "content" => "content",
                    "party" => "party",
                    _ => "record",
                }
                .to_string(),
                id: e.record_id.clone(),
                rev: Some(e.rev),
                digest: None,
            })
            .collect();
        let draft = Draft {
            actor,
            action: if party { "party.read" } else { "record.read" }.into(),
            subjects,
            payload_digest: None,
            detail: Some(detail),
        };
        // A failed append is retried briefly; if it still fails, every read in it fails.
        let mut delay = Duration::from_millis(20);
        let mut result = Err(Error::Internal("reads not journaled".into()));
        for attempt in 0..4 {
            match journal.append(draft.clone()).await {
                Ok(_) => {
                    result = Ok(());
                    break;
                }
                Err(e) => {
                    tracing::warn!(attempt, "journaling reads failed: {e}");
                    result = Err(e);
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        let msg = result.as_ref().err().map(ToString::to_string);
        for (_, done) in waiting {
            let _ = done.send(match &msg {
                None => Ok(()),
                Some(m) => Err(Error::Internal(format!(
                    "the read could not be journaled: {m}"
                ))),
            });
        }
    }
}
