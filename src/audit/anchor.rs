//! Anchors: signed checkpoints of the journal's head kept outside the store — in another
//! store (a bucket with Object Lock, a directory on other media) or a file — so that a
//! journal cut back by someone who controls the store is still found (`verify --anchor`).
//!
//! An anchor is the checkpoint as one JSON line, written create-only under
//! `anchors/<seq:020>.json` of its target.

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;

use super::journal::{Checkpoint, Journal};
use crate::error::{Error, Result};
use crate::store::Store;

const PREFIX: &str = "anchors";

fn key(seq: u64) -> Path {
    Path::from(format!("{PREFIX}/{seq:020}.json"))
}

/// Where anchors go.
#[derive(Debug, Clone)]
pub struct Target {
    pub spec: String,
    store: Store,
}

impl Target {
    /// A target: a directory path, `file://…`, or `s3://bucket/prefix`.
    pub fn open(spec: &str) -> Result<Target> {
        Ok(Target {
            spec: spec.to_string(),
            store: Store::open(spec)?,
        })
    }

    /// Writes `cp` (signed) here unless this target holds it already.
    pub async fn write(&self, cp: &Checkpoint) -> Result<()> {
        if cp.signature.is_none() {
            return Err(Error::invalid(
                "anchor",
                "an anchor must be signed (--signing-key)",
            ));
        }
        let line = serde_json::to_string(cp).map_err(|e| Error::Internal(e.to_string()))?;
        self.store
            .put_new(&key(cp.seq), Bytes::from(format!("{line}\n")))
            .await?;
        Ok(())
    }

    /// Every anchor this target holds, oldest first, each with where it was read.
    pub async fn read_all(&self) -> Result<Vec<(String, Checkpoint)>> {
        let mut metas: Vec<_> = self
            .store
            .list(&Path::from(PREFIX))
            .try_collect::<Vec<_>>()
            .await?;
        metas.sort_by(|a, b| a.location.cmp(&b.location));
        let mut out = Vec::new();
        for m in metas {
            let bytes = self.store.get(&m.location).await?;
            let source = format!("{}/{}", self.spec.trim_end_matches('/'), m.location);
            let cp = parse(&source, &bytes)?;
            out.push((source, cp));
        }
        Ok(out)
    }

    /// The newest anchor this target holds, if any.
    pub async fn last(&self) -> Result<Option<Checkpoint>> {
        let newest = self
            .store
            .list(&Path::from(PREFIX))
            .try_fold(None::<Path>, |max, m| async move {
                Ok(match max {
                    Some(p) if p >= m.location => Some(p),
                    _ => Some(m.location),
                })
            })
            .await?;
        let Some(key) = newest else { return Ok(None) };
        let bytes = self.store.get(&key).await?;
        parse(&format!("{}/{key}", self.spec), &bytes).map(Some)
    }
}

/// Reads one anchor (a line of JSON).
pub fn parse(source: &str, bytes: &[u8]) -> Result<Checkpoint> {
    serde_json::from_slice(bytes.trim_ascii()).map_err(|e| {
        Error::invalid(
            "anchor",
            format!("{source}: not an anchor written by akte ({e})"),
        )
    })
}

/// Signs the head now and writes it to every target. Returns the checkpoint, `None` for
/// an empty journal.
pub async fn anchor_now(journal: &Journal, targets: &[Target]) -> Result<Option<Checkpoint>> {
    if journal.signing_key().is_none() {
        return Err(Error::invalid(
            "anchor",
            "an anchor must be signed: give --signing-key FILE (or AKTE_SIGNING_KEY)",
        ));
    }
    let Some(cp) = journal.checkpoint().await? else {
        return Ok(None);
    };
    for t in targets {
        t.write(&cp).await?;
    }
    Ok(Some(cp))
}
