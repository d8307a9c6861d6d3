//! Leases: which node runs a background job when several akte nodes share one store
//! (the Object Lock catch-up, an approved disposal, an import whose node died).
//!
//! A lease is a small object `leases/<name>` naming its holder and when it expires. A
//! node takes it when it is absent or expired, and renews it while it works, each time
//! by a *conditional* write (create-only, or replace-if-unchanged by ETag): of two
//! nodes racing, exactly one wins. A node that dies stops renewing; after the time to
//! live another node takes over. Leases live in the key store when there is one (the
//! mutable place; a bucket with Object Lock would keep every renewal for a day).
//!
//! On a local directory several processes share one machine: there the lease is an
//! `flock` on `<data>/leases/<name>.lock`, released when the holder exits. A store in
//! memory belongs to one process, which always holds every lease.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::{GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::{Store, keys};
use crate::error::{Error, Result};

/// This process's name among the nodes: host, process id and a random part.
pub fn node_id() -> &'static str {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "node".into());
        let mut r = [0u8; 4];
        let _ = getrandom::fill(&mut r);
        format!("{host}-{}-{}", std::process::id(), hex::encode(r))
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseFile {
    holder: String,
    expires: DateTime<Utc>,
}

/// Local leases held by this process (their open, locked files).
#[derive(Debug, Default)]
pub(crate) struct LocalLeases {
    held: Mutex<HashMap<String, std::fs::File>>,
}

impl Store {
    /// Takes or renews the lease `name` for `ttl` from `now`; returns whether this node
    /// holds it now. Refuses names that are not one path segment.
    pub async fn hold_lease(&self, name: &str, ttl: Duration, now: DateTime<Utc>) -> Result<bool> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(Error::Internal(format!("bad lease name {name:?}")));
        }
        if let Some(ks) = &self.key_store
            && ks.s3.is_some()
        {
            return Box::pin(ks.hold_lease(name, ttl, now)).await;
        }
        if let Some(root) = &self.root {
            return local_lease(&self.leases, root, name).await;
        }
        if self.s3.is_none() {
            return Ok(true);
        }
        let key = keys::lease(name);
        let me = node_id();
        let expires = now
            + chrono::Duration::from_std(ttl)
                .map_err(|e| Error::Internal(format!("lease time: {e}")))?;
        let body = Bytes::from(
            serde_json::to_vec(&LeaseFile {
                holder: me.to_string(),
                expires,
            })
            .map_err(|e| Error::Internal(e.to_string()))?,
        );
        let mode = match self.inner.get_opts(&key, GetOptions::default()).await {
            Err(object_store::Error::NotFound { .. }) => PutMode::Create,
            Err(e) => return Err(self.err(&key, e)),
            Ok(r) => {
                let meta = r.meta.clone();
                let bytes = r.bytes().await.map_err(|e| self.err(&key, e))?;
                let held: Option<LeaseFile> = serde_json::from_slice(&bytes).ok();
                let free = held
                    .as_ref()
                    .is_none_or(|l| l.holder == me || l.expires < now);
                if !free {
                    return Ok(false);
                }
                PutMode::Update(UpdateVersion {
                    e_tag: meta.e_tag,
                    version: meta.version,
                })
            }
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&key, PutPayload::from_bytes(body), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. }
                | object_store::Error::NotModified { .. },
            ) => Ok(false),
            Err(e) => Err(self.err(&key, e)),
        }
    }

    /// Gives up a lease this process holds on a local directory (elsewhere it expires).
    pub fn release_lease(&self, name: &str) {
        self.leases
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

async fn local_lease(
    leases: &Arc<LocalLeases>,
    root: &std::path::Path,
    name: &str,
) -> Result<bool> {
    if leases
        .held
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(name)
    {
        return Ok(true);
    }
    let dir = root.join(keys::LEASES);
    let path = dir.join(format!("{name}.lock"));
    let file = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
        super::try_flock_exclusive(&path)
    })
    .await
    .map_err(|e| Error::Internal(format!("lease task: {e}")))??;
    match file {
        Some(f) => {
            leases
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string(), f);
            Ok(true)
        }
        None => Ok(false),
    }
}
