//! Read auditing (DESIGN §2.8): who opened or downloaded which record.
//!
//! Reads must not wait for a journal append each, so they are queued and written in
//! batches: one `record.read` entry per actor per batch, naming every revision read.
//! `shutdown` drains the queue, so a graceful stop loses no read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use super::journal::{Draft, Journal, Subject};

/// Largest number of reads in one journal entry.
const MAX_BATCH: usize = 512;
/// How long a read may wait for its batch.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct ReadEvent {
    pub actor: String,
    pub record_id: String,
    pub rev: u32,
    /// `metadata`, `content` or `party`.
    pub what: &'static str,
}

#[derive(Debug)]
pub struct ReadLog {
    tx: Mutex<Option<mpsc::UnboundedSender<ReadEvent>>>,
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

    pub async fn record(&self, ev: ReadEvent) {
        if let Some(tx) = self.tx.lock().await.as_ref()
            && tx.send(ev).is_err()
        {
            tracing::error!("read log is closed; a read was not journaled");
        }
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

async fn run(journal: Arc<Journal>, mut rx: mpsc::UnboundedReceiver<ReadEvent>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        let mut closed = false;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => batch.push(ev),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        flush(&journal, batch).await;
        if closed {
            return;
        }
    }
}

async fn flush(journal: &Journal, batch: Vec<ReadEvent>) {
    let mut by_actor: BTreeMap<String, Vec<ReadEvent>> = BTreeMap::new();
    for ev in batch {
        by_actor.entry(ev.actor.clone()).or_default().push(ev);
    }
    for (actor, events) in by_actor {
        let content = events.iter().filter(|e| e.what == "content").count();
        let detail = format!(
            "{} reads ({} content, {} metadata)",
            events.len(),
            content,
            events.len() - content
        );
        let subjects = events
            .iter()
            .map(|e| Subject {
                kind: if e.what == "content" {
                    "content"
                } else {
                    "record"
                }
                .to_string(),
                id: e.record_id.clone(),
                rev: Some(e.rev),
                digest: None,
            })
            .collect();
        let draft = Draft {
            actor,
            action: "record.read".into(),
            subjects,
            payload_digest: None,
            detail: Some(detail),
        };
        // A failed append is retried: reads must not be lost.
        let mut delay = Duration::from_millis(50);
        for attempt in 0..8 {
            match journal.append(draft.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(attempt, "journaling reads failed: {e}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}
