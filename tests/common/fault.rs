//! A fault-injecting object store: the "disk" is an in-memory store; at the N-th write
//! (put, copy, delete, deferred write or sync) it injects a fault, chosen per schedule:
//!
//! - `Error`: that one write fails and nothing of it happens; later writes succeed.
//! - `Crash`: the process dies there: that write and everything after fail; unsynced
//!   deferred writes survive (the page cache outlives a killed process).
//! - `PowerLoss`: like a crash, and on restart every deferred write not yet synced is
//!   gone or torn (short), as after a power cut.
//!
//! It is also the store's [`DeferredWrites`], so the group-commit path is covered the way
//! the local backend runs it: writes without a sync each, then one sync.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use akte::store::{Created, DeferredWrites, Store};
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Error,
    Crash,
    PowerLoss,
}

#[derive(Debug)]
pub struct Faulty {
    pub disk: Arc<InMemory>,
    ops: AtomicU64,
    fault_at: AtomicU64,
    kind: Mutex<FaultKind>,
    crashed: AtomicBool,
    /// Deferred writes not yet synced.
    unsynced: Arc<Mutex<Vec<Path>>>,
    /// The next group commit's sync fails (once).
    fail_sync: AtomicBool,
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty")
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected fault: {what}").into(),
    }
}

impl Faulty {
    pub fn new() -> Arc<Faulty> {
        Arc::new(Faulty {
            disk: Arc::new(InMemory::new()),
            ops: AtomicU64::new(0),
            fault_at: AtomicU64::new(u64::MAX),
            kind: Mutex::new(FaultKind::Error),
            crashed: AtomicBool::new(false),
            fail_sync: AtomicBool::new(false),
            unsynced: Arc::default(),
        })
    }

    /// A store over this disk, its group commits going through the fault injector.
    pub fn store(self: &Arc<Self>) -> Store {
        Store::from_object_store(self.clone(), "faulty").with_deferred(self.clone())
    }

    /// Injects `kind` at write number `at` (counted from now).
    pub fn arm(&self, at: u64, kind: FaultKind) {
        self.ops.store(0, Ordering::SeqCst);
        *self.kind.lock().unwrap() = kind;
        self.fault_at.store(at, Ordering::SeqCst);
    }

    /// Writes seen since the last `arm`.
    /// Makes the next group commit's sync fail with an error (nothing else).
    pub fn fail_next_sync(&self) {
        self.fail_sync.store(true, Ordering::SeqCst);
    }

    pub fn writes(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// What a restart finds: after a power loss, each unsynced deferred write is either
    /// gone or short (`seed` decides which). Disarms the injector.
    pub async fn restart(&self, seed: u64) {
        let power_lost = *self.kind.lock().unwrap() == FaultKind::PowerLoss && self.crashed();
        let unsynced = std::mem::take(&mut *self.unsynced.lock().unwrap());
        if power_lost {
            let mut x = seed | 1;
            for key in unsynced {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(2) {
                    self.disk.delete(&key).await.unwrap();
                } else if let Ok(r) = self.disk.get(&key).await {
                    let b = r.bytes().await.unwrap();
                    let short = b.slice(..b.len() / 2);
                    self.disk
                        .put(&key, PutPayload::from_bytes(short))
                        .await
                        .unwrap();
                }
            }
        }
        self.fault_at.store(u64::MAX, Ordering::SeqCst);
        self.crashed.store(false, Ordering::SeqCst);
    }

    /// Counts a write and decides its fate.
    fn tick(&self, what: &str) -> object_store::Result<()> {
        if self.crashed() {
            return Err(injected("the process is gone"));
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        if n != self.fault_at.load(Ordering::SeqCst) {
            return Ok(());
        }
        match *self.kind.lock().unwrap() {
            FaultKind::Error => Err(injected(what)),
            FaultKind::Crash | FaultKind::PowerLoss => {
                self.crashed.store(true, Ordering::SeqCst);
                Err(injected(what))
            }
        }
    }

    fn read_ok(&self) -> object_store::Result<()> {
        if self.crashed() {
            Err(injected("the process is gone"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.tick("put")?;
        self.disk.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.tick("multipart")?;
        self.disk.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.read_ok()?;
        self.disk.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if let Err(e) = self.tick("delete") {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.disk.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(e) = self.read_ok() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.disk.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.read_ok()?;
        self.disk.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.tick("copy")?;
        self.disk.copy_opts(from, to, options).await
    }
}

impl DeferredWrites for Faulty {
    fn put_new(
        &self,
        key: &Path,
        bytes: Bytes,
    ) -> BoxFuture<'static, Result<Created, akte::Error>> {
        let result = self.tick("deferred write");
        let disk = self.disk.clone();
        let unsynced = self.unsynced.clone();
        let key = key.clone();
        Box::pin(async move {
            result.map_err(|e| akte::Error::Internal(e.to_string()))?;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match disk
                .put_opts(&key, PutPayload::from_bytes(bytes), opts)
                .await
            {
                Ok(_) => {
                    // Until the next sync, a power loss may take it.
                    unsynced.lock().unwrap().push(key);
                    Ok(Created::New)
                }
                Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Existed),
                Err(e) => Err(akte::Error::Internal(e.to_string())),
            }
        })
    }

    fn sync(&self) -> BoxFuture<'static, Result<(), akte::Error>> {
        if self.fail_sync.swap(false, Ordering::SeqCst) {
            return Box::pin(async { Err(akte::Error::Internal("injected: sync failed".into())) });
        }
        let r = self.tick("sync");
        if r.is_ok() {
            self.unsynced.lock().unwrap().clear();
        }
        Box::pin(async move { r.map_err(|e| akte::Error::Internal(e.to_string())) })
    }
}

/// Every object under `prefix` on the disk (for checks that bypass the injector).
pub async fn disk_keys(f: &Faulty, prefix: &str) -> Vec<String> {
    f.disk
        .list(Some(&Path::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}
