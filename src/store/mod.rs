//! Access to the object store: the source of truth (DESIGN §4).
//!
//! Everything persistent goes through [`Store`]. It offers create-only writes and reads;
//! there is deliberately no method that overwrites or deletes a blob, a revision or a
//! journal entry. The only deletion is of `staging/` objects, which are uploads in
//! flight and never archive data.
//!
//! Backends: a local directory (`LocalFileSystem` with fsync of file and directory, the
//! embedded default), `memory://` (tests), and `s3://bucket/prefix` (any S3-compatible
//! store with conditional writes).

pub mod blob;
pub mod codec;
pub mod content;
pub mod crypt;
pub mod derived;
pub mod keys;
pub mod lease;
pub mod s3;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, Checksum, S3CopyIfNotExists};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetRange, GetResultPayload, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Chunk size for streaming reads of local files (object_store's default is 8 KiB).
const READ_CHUNK: usize = 256 * 1024;
/// Buffer size when hashing a local file in one blocking task.
const HASH_BUF: usize = 1024 * 1024;

/// Whether a create-only write made a new object or found one already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    Existed,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    desc: String,
    /// The local backend's directory (writer lock, directory syncs).
    root: Option<PathBuf>,
    /// How writes of a group commit are made durable together (see [`DeferredWrites`]).
    deferred: Option<Arc<dyn DeferredWrites>>,
    /// Keeps uploads off blobs a disposal is about to delete (see [`IngestGate`]).
    gate: Arc<IngestGate>,
    /// On S3: the calls `object_store` does not make (Object Lock, versions).
    s3: Option<s3::S3Api>,
    /// On an S3 bucket with Object Lock: the mode akte locks objects in.
    lock: Option<LockMode>,
    /// Where the data keys live when not in this store (`--key-store`): keys must be
    /// destroyable while the documents stay locked.
    key_store: Option<Arc<Store>>,
    /// Leases this process holds on a local directory.
    leases: Arc<lease::LocalLeases>,
    /// Revisions this process writes or wrote whose journal entry has not been appended
    /// (yet, or ever: a failed commit leaves one behind for recovery), and key
    /// destructions it began and did not finish.
    unsettled: Arc<std::sync::Mutex<Unsettled>>,
}

#[derive(Debug, Default)]
struct Unsettled {
    keys: std::collections::HashSet<String>,
    /// The writer session ended ([`Store::end_writing`]): a revision written after that
    /// first removes the clean mark.
    ended: bool,
}

pub use s3::LockMode;

/// How a store is opened beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Where the per-party data keys live (a path, `memory://` or `s3://`); default:
    /// the store itself. Required with Object Lock.
    pub key_store: Option<String>,
    /// Object Lock mode asked for; `None` takes what the bucket has, if anything.
    pub object_lock: Option<LockMode>,
}

/// Days of the default retention akte sets on a locked bucket that has none: every
/// new object version is locked from its first byte until akte sets its own date.
pub const DEFAULT_RETENTION_DAYS: u32 = 1;

/// Disposal deletes blobs that no live record uses; an upload of identical bytes must
/// never be acknowledged onto such a blob. Every upload holds the gate shared from its
/// first blob write to its journal entry; a disposal takes it exclusively for a moment to
/// decide which blobs go (no upload is then half-way) and *reserves* them: an upload whose
/// bytes hash to a reserved blob waits until the disposal is done, then writes its own
/// copy. (One process: uploads of another process against the same store are not held
/// back; see ARCHITECTURE.md.)
#[derive(Debug, Default)]
pub struct IngestGate {
    rw: Arc<tokio::sync::RwLock<()>>,
    reserved: std::sync::Mutex<std::collections::HashSet<String>>,
    released: tokio::sync::Notify,
}

/// An upload in flight, from its first blob write to its journal entry.
pub type UploadGuard = tokio::sync::OwnedRwLockReadGuard<()>;

/// Blobs reserved by a disposal; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    gate: Arc<IngestGate>,
    blobs: Vec<String>,
}

impl Reservation {
    /// The reserved blobs.
    pub fn blobs(&self) -> &[String] {
        &self.blobs
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self.gate.reserved.lock().unwrap_or_else(|e| e.into_inner());
        for b in &self.blobs {
            r.remove(b);
        }
        drop(r);
        self.gate.released.notify_waiters();
    }
}

/// Writes whose durability is established later, for a whole batch at once (group
/// commit): `put_new` without a sync each, then one `sync` for all. The local backend's
/// implementation is [`LocalDeferred`] (`O_EXCL`-style create through a temporary name,
/// then one `syncfs`); a store without one makes every deferred write an ordinary
/// durable `put_new`. Tests plug in a fault-injecting one that can lose unsynced writes.
pub trait DeferredWrites: Send + Sync + std::fmt::Debug {
    /// Creates `key` unless it exists; durable only after the next [`Self::sync`].
    fn put_new(&self, key: &Path, bytes: Bytes) -> BoxFuture<'static, Result<Created>>;
    /// Creates each of `writes` as `put_new` would (the same durability), one after
    /// another; the first error ends the call. Returns the outcome of each write made,
    /// in order: fewer than `writes` when one failed (then the last is the error), and a
    /// write after a failed one is not made. One hand-off for an object's few files
    /// where the backend has writer threads.
    fn put_new_all(
        self: Arc<Self>,
        writes: Vec<(Path, Bytes)>,
    ) -> BoxFuture<'static, Vec<Result<Created>>>
    where
        Self: 'static,
    {
        Box::pin(one_by_one(writes, move |key, bytes| {
            self.put_new(&key, bytes)
        }))
    }
    /// Makes every earlier `put_new` durable.
    fn sync(&self) -> BoxFuture<'static, Result<()>>;
}

/// Deferred writes on the local backend: files created without an fsync each, made
/// durable by one `syncfs` of the store's file system.
#[derive(Debug, Clone)]
pub struct LocalDeferred {
    root: PathBuf,
}

/// The threads that create a group commit's files (blobs, data keys, revisions) on the
/// local backend. A bulk import creates a few files per email, each a short system call
/// or two: on tokio's blocking pool every one of them woke a parked thread and the pool
/// grew to hundreds (perf: a sixth of the import's time in wake-ups and task switches).
/// Two threads of their own take the creates from one queue in turn; a create for a
/// directory the other thread is filling waits on the directory's lock in the kernel
/// either way.
struct SmallWrites {
    queue: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
}

const SMALL_WRITERS: usize = 2;

fn small_writes() -> &'static SmallWrites {
    static WRITES: std::sync::OnceLock<SmallWrites> = std::sync::OnceLock::new();
    WRITES.get_or_init(|| {
        let (queue, jobs) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let jobs = Arc::new(std::sync::Mutex::new(jobs));
        for n in 0..SMALL_WRITERS {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("akte-writes-{n}"))
                .spawn(move || {
                    loop {
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("store: no writer thread: {e}");
            }
        }
        SmallWrites { queue }
    })
}

impl SmallWrites {
    /// Runs `f` on a writer thread; the receiver has its result. (Without a writer
    /// thread — none could be started — `f` runs on tokio's blocking pool.)
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = tx.send(f());
        });
        if let Err(std::sync::mpsc::SendError(job)) = self.queue.send(job) {
            tokio::task::spawn_blocking(job);
        }
        rx
    }
}

impl LocalDeferred {
    /// What creating `key` takes on this backend: its path, and whether it is created
    /// under its own name. A revision or a data key of a group commit is read by no one
    /// before its entry (and never deduplicated onto): it is created under its own name,
    /// and a process killed mid-write leaves a short one, which recovery records as torn
    /// like one a power loss left. A blob may be deduplicated onto at once: it appears
    /// whole.
    fn target(&self, key: &Path) -> (PathBuf, bool) {
        // Keys are plain ASCII segments (hex, UUIDs, numbers: see `keys`), which the
        // local backend maps to the same relative path.
        let direct = matches!(
            keys::classify(key),
            keys::KeyKind::Revision { .. } | keys::KeyKind::PartyKey { .. }
        );
        (self.root.join(key.as_ref()), direct)
    }
}

/// The outcomes of `results` up to and including the first error (the rule of
/// [`DeferredWrites::put_new_all`]: the first error ends the writes).
fn until_error<T>(results: impl Iterator<Item = Result<T>>) -> Vec<Result<T>> {
    let mut made = Vec::new();
    for r in results {
        let failed = r.is_err();
        made.push(r);
        if failed {
            break;
        }
    }
    made
}

/// Makes `writes` with `put`, one after another, until the first error.
async fn one_by_one<F, Fut>(writes: Vec<(Path, Bytes)>, mut put: F) -> Vec<Result<Created>>
where
    F: FnMut(Path, Bytes) -> Fut,
    Fut: std::future::Future<Output = Result<Created>>,
{
    let mut made = Vec::with_capacity(writes.len());
    for (key, bytes) in writes {
        let r = put(key, bytes).await;
        let failed = r.is_err();
        made.push(r);
        if failed {
            break;
        }
    }
    made
}

fn create_target(path: &std::path::Path, direct: bool, bytes: &[u8]) -> Result<Created> {
    if direct {
        create_file_direct(path, bytes)
    } else {
        create_file(path, bytes)
    }
}

impl DeferredWrites for LocalDeferred {
    fn put_new(&self, key: &Path, bytes: Bytes) -> BoxFuture<'static, Result<Created>> {
        let (path, direct) = self.target(key);
        let done = small_writes().run(move || create_target(&path, direct, &bytes));
        Box::pin(async move {
            done.await
                .map_err(|_| Error::Internal("write task ended".into()))?
        })
    }

    fn put_new_all(
        self: Arc<Self>,
        writes: Vec<(Path, Bytes)>,
    ) -> BoxFuture<'static, Vec<Result<Created>>> {
        let writes: Vec<_> = writes
            .into_iter()
            .map(|(key, bytes)| (self.target(&key), bytes))
            .collect();
        let done = small_writes().run(move || {
            until_error(
                writes
                    .iter()
                    .map(|((path, direct), bytes)| create_target(path, *direct, bytes)),
            )
        });
        Box::pin(async move {
            done.await
                .unwrap_or_else(|_| vec![Err(Error::Internal("write task ended".into()))])
        })
    }

    fn sync(&self) -> BoxFuture<'static, Result<()>> {
        let root = self.root.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let dir = std::fs::File::open(&root).map_err(|e| Error::io(root.display(), e))?;
                rustix::fs::syncfs(&dir).map_err(|e| Error::io(root.display(), e.into()))
            })
            .await
            .map_err(|e| Error::Internal(format!("sync task: {e}")))?
        })
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.desc)
    }
}

impl Store {
    /// Opens a store from a spec: a directory path (or `file:///path`), `memory://`,
    /// or `s3://bucket[/prefix]` (credentials and region from the usual `AWS_*`
    /// variables; `AKTE_S3_ENDPOINT` or `AWS_ENDPOINT_URL` override the endpoint).
    pub fn open(spec: &str) -> Result<Store> {
        let config_err = |reason: String| Error::StoreConfig {
            spec: spec.to_string(),
            reason,
        };
        if spec == "memory://" || spec == "memory:" {
            return Ok(Store::from_object_store(
                Arc::new(InMemory::new()),
                "memory://",
            ));
        }
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = match rest.split_once('/') {
                Some((b, p)) => (b, p.trim_matches('/')),
                None => (rest, ""),
            };
            if bucket.is_empty() {
                return Err(config_err("no bucket name".into()));
            }
            // S3 servers that check for an Object Lock checksum look for this header
            // beside the checksum itself (moto does).
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "x-amz-sdk-checksum-algorithm",
                http::HeaderValue::from_static("SHA256"),
            );
            let mut builder = AmazonS3Builder::from_env()
                .with_client_options(
                    object_store::ClientOptions::new().with_default_headers(headers),
                )
                .with_bucket_name(bucket)
                // Buckets with Object Lock refuse writes without a checksum; every other
                // server checks it too (s3s-fs does).
                .with_checksum_algorithm(Checksum::SHA256);
            let endpoint = std::env::var("AKTE_S3_ENDPOINT")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok();
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                // The usual profile files, as the AWS tools read them.
                if let Some(p) = aws_profile() {
                    builder = builder
                        .with_access_key_id(p.key)
                        .with_secret_access_key(p.secret);
                    if let Some(t) = p.token {
                        builder = builder.with_token(t);
                    }
                    if std::env::var_os("AWS_REGION").is_none()
                        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
                        && let Some(r) = p.region
                    {
                        builder = builder.with_region(r);
                    }
                }
            }
            if let Some(ep) = endpoint {
                builder = builder
                    .with_allow_http(ep.starts_with("http://"))
                    .with_endpoint(ep);
            }
            if std::env::var("AWS_COPY_IF_NOT_EXISTS").is_err() {
                // Native S3 offers copy-if-not-exists only through a conditional multipart
                // completion; large blobs are published that way.
                builder = builder.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
            }
            let s3 = Arc::new(builder.build().map_err(|e| config_err(e.to_string()))?);
            let api = s3::S3Api::new(s3.clone(), prefix, spec)?;
            let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
                s3
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            };
            let mut store = Store::from_object_store(inner, spec);
            store.s3 = Some(api);
            return Ok(store);
        }
        let path = match spec.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if spec.contains("://") => {
                return Err(config_err(
                    "unknown scheme (use a path, file://, memory:// or s3://)".into(),
                ));
            }
            None => PathBuf::from(spec),
        };
        std::fs::create_dir_all(&path).map_err(|e| config_err(e.to_string()))?;
        let local = LocalFileSystem::new_with_prefix(&path)
            .map_err(|e| config_err(e.to_string()))?
            .with_fsync(true);
        let mut store = Store::from_object_store(Arc::new(local), path.display().to_string());
        let root = std::fs::canonicalize(&path).map_err(|e| config_err(e.to_string()))?;
        store.deferred = Some(Arc::new(LocalDeferred { root: root.clone() }));
        store.root = Some(root);
        Ok(store)
    }

    /// Opens a store with its options: the key store, and Object Lock — asked for
    /// (refused with a clear error where the bucket has none) or found on the bucket.
    pub async fn open_with(spec: &str, opts: &StoreOptions) -> Result<Store> {
        let config_err = |reason: String| Error::StoreConfig {
            spec: spec.to_string(),
            reason,
        };
        let mut store = Store::open(spec)?;
        match (&store.s3, opts.object_lock) {
            (None, Some(_)) => {
                return Err(config_err(
                    "Object Lock needs an s3:// store (a local directory cannot refuse a \
                     deletion by itself)"
                        .into(),
                ));
            }
            (None, None) => {}
            (Some(api), asked) => {
                let bucket = api.bucket_lock().await?;
                store.lock = match (bucket.enabled, asked) {
                    (false, Some(mode)) => {
                        return Err(config_err(format!(
                            "--object-lock {} was asked for, but the bucket has no Object \
                             Lock (it can only be enabled when a bucket is created: \
                             `aws s3api create-bucket --object-lock-enabled-for-bucket`)",
                            mode.name()
                        )));
                    }
                    (false, None) => None,
                    (true, asked) => {
                        let mode = asked
                            .or(bucket.default.map(|(m, _)| m))
                            .unwrap_or(LockMode::Compliance);
                        if bucket.default.is_none() {
                            api.set_default_retention(mode, DEFAULT_RETENTION_DAYS)
                                .await
                                .map_err(|e| {
                                    config_err(format!(
                                        "the bucket has Object Lock but no default retention, \
                                         and akte could not set one ({e}); set it (e.g. {} for \
                                         {DEFAULT_RETENTION_DAYS} day) with `aws s3api \
                                         put-object-lock-configuration`",
                                        mode.name()
                                    ))
                                })?;
                            tracing::info!(
                                "{spec}: the bucket had no default retention; set {} for \
                                 {DEFAULT_RETENTION_DAYS} day(s), so that every object is \
                                 locked from its first byte",
                                mode.name()
                            );
                        }
                        Some(mode)
                    }
                };
            }
        }
        match &opts.key_store {
            Some(ks) => {
                let keys = Store::open(ks)?;
                if let Some(api) = &keys.s3
                    && api.bucket_lock().await?.enabled
                {
                    return Err(Error::StoreConfig {
                        spec: ks.clone(),
                        reason: "the key store has Object Lock: keys in it could not be \
                                 destroyed (crypto-shredding); use a bucket without it"
                            .into(),
                    });
                }
                store.key_store = Some(Arc::new(keys));
            }
            None if store.lock.is_some() => {
                return Err(config_err(
                    "a bucket with Object Lock cannot destroy the parties' data keys: give \
                     --key-store (a bucket or directory without Object Lock)"
                        .into(),
                ));
            }
            None => {}
        }
        Ok(store)
    }

    /// Wraps any object store (tests use this for fault injection).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, desc: impl Into<String>) -> Store {
        Store {
            inner,
            desc: desc.into(),
            root: None,
            deferred: None,
            gate: Arc::default(),
            s3: None,
            lock: None,
            key_store: None,
            leases: Arc::default(),
            unsettled: Arc::default(),
        }
    }

    /// A revision is about to be written under `key`; its entry is still to come. (Said
    /// before the write: a session ending meanwhile sees it.) After the session ended,
    /// the clean mark goes first (see [`WriterLock`]).
    pub(crate) fn will_write_revision(&self, key: &Path) -> Result<()> {
        self.unsettle(key.to_string())
    }

    /// Something is about to happen that recovery must finish if it is cut short.
    fn unsettle(&self, what: String) -> Result<()> {
        let mut u = self.unsettled.lock().unwrap_or_else(|e| e.into_inner());
        u.keys.insert(what);
        if u.ended
            && let Some(root) = &self.root
        {
            remove_clean_mark(root)?;
        }
        Ok(())
    }

    /// An entry committed the revisions under `keys`, or they were never written by this
    /// process (another writer's revision was there).
    pub(crate) fn settled<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut u = self.unsettled.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            u.keys.remove(k);
        }
    }

    /// Ends this process's writing: `f` is told how many revisions it wrote that no
    /// entry committed, and key destructions it did not finish; it runs while no
    /// revision write can start (a write after it removes the clean mark `f` may leave).
    pub fn end_writing<R>(&self, f: impl FnOnce(usize) -> R) -> R {
        let mut u = self.unsettled.lock().unwrap_or_else(|e| e.into_inner());
        u.ended = true;
        f(u.keys.len())
    }

    /// The Object Lock mode objects are locked in, and the calls that lock them; `None`
    /// unless the store is an S3 bucket with Object Lock.
    pub fn object_lock(&self) -> Option<(LockMode, &s3::S3Api)> {
        self.lock.zip(self.s3.as_ref())
    }

    /// The extra S3 calls, on an S3 store.
    pub fn s3(&self) -> Option<&s3::S3Api> {
        self.s3.as_ref()
    }

    /// Whether other processes on other machines may write to this store (an S3
    /// bucket): then background jobs are shared through the store and run under leases.
    pub fn shared(&self) -> bool {
        self.s3.is_some()
    }

    /// Where the data keys live, when not in this store.
    pub fn key_store(&self) -> Option<&Store> {
        self.key_store.as_deref()
    }

    /// The store that holds `key`: the key store for data keys, else this one.
    fn home(&self, key: &Path) -> Option<&Store> {
        let ks = self.key_store.as_deref()?;
        let first = key.as_ref().split('/').next().unwrap_or_default();
        (first == keys::KEYS).then_some(ks)
    }

    /// Marks an upload in flight (see [`IngestGate`]); hold it until the journal entry.
    pub async fn upload_guard(&self) -> UploadGuard {
        self.gate.rw.clone().read_owned().await
    }

    /// Waits for every upload in flight to finish, then reserves the blobs `decide`
    /// names (it runs while no upload is half-way). Uploads of a reserved blob wait.
    pub(crate) async fn reserve_blobs<F>(&self, decide: F) -> Result<Reservation>
    where
        F: std::future::Future<Output = Result<Vec<String>>>,
    {
        let _exclusive = self.gate.rw.write().await;
        let blobs = decide.await?;
        let mut r = self.gate.reserved.lock().unwrap_or_else(|e| e.into_inner());
        r.extend(blobs.iter().cloned());
        drop(r);
        Ok(Reservation {
            gate: self.gate.clone(),
            blobs,
        })
    }

    /// Returns once `sha256` is not reserved by a disposal.
    pub(crate) async fn wait_unreserved(&self, sha256: &str) {
        loop {
            let released = self.gate.released.notified();
            let reserved = self
                .gate
                .reserved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(sha256);
            if !reserved {
                return;
            }
            released.await;
        }
    }

    pub fn describe(&self) -> &str {
        &self.desc
    }

    fn err(&self, key: &Path, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::ObjectNotFound {
                key: key.to_string(),
            },
            other => Error::Store {
                store: self.desc.clone(),
                source: other,
            },
        }
    }

    /// Writes `bytes` under `key` only if nothing is there yet. The write is durable
    /// when this returns `Created::New`.
    pub async fn put_new(&self, key: &Path, bytes: Bytes) -> Result<Created> {
        if let Some(home) = self.home(key) {
            return Box::pin(home.put_new(key, bytes)).await;
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(key, PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Existed),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Like [`Store::put_new`], but the write is durable only after the next
    /// [`Store::sync_deferred`]. On the local backend this saves an fsync of the file and
    /// of its directory per object: a batch of writes shares one `syncfs`. Other backends
    /// acknowledge a PUT only once it is durable, so there it is `put_new`.
    ///
    /// Whoever uses it must not report anything written before `sync_deferred` returned,
    /// and must journal only after it (group commit in `Archive::commit_staged`).
    pub async fn put_new_deferred(&self, key: &Path, bytes: Bytes) -> Result<Created> {
        if let Some(home) = self.home(key) {
            // The key store's writes are durable each: it has its own file system or
            // bucket, which this store's sync does not reach.
            return Box::pin(home.put_new(key, bytes)).await;
        }
        match &self.deferred {
            Some(d) => d.put_new(key, bytes).await,
            None => self.put_new(key, bytes).await,
        }
    }

    /// [`Store::put_new_deferred`] for a few objects at once (a record's blob, data key
    /// and revision), one after another: the outcome of each write made, in order; the
    /// first error ends it, and no write after it is made. One hand-off to the local
    /// backend's writer threads instead of one per object.
    pub async fn put_new_deferred_all(&self, writes: Vec<(Path, Bytes)>) -> Vec<Result<Created>> {
        match &self.deferred {
            Some(d) if writes.iter().all(|(key, _)| self.home(key).is_none()) => {
                d.clone().put_new_all(writes).await
            }
            _ => {
                one_by_one(writes, |key, bytes| async move {
                    self.put_new_deferred(&key, bytes).await
                })
                .await
            }
        }
    }

    /// The same store with `d` making its group commits durable (tests use this to
    /// inject faults and lost unsynced writes).
    pub fn with_deferred(mut self, d: Arc<dyn DeferredWrites>) -> Store {
        self.deferred = Some(d);
        self
    }

    /// Takes the writer lock: exclusively when no other writer holds it (then
    /// [`WriterLock::sole`]), else shared. A store in memory (or a test's wrapped store)
    /// belongs to this process; on S3 other nodes may write at any time, so there no
    /// writer is ever alone.
    pub async fn writer_lock(&self) -> Result<WriterLock> {
        let Some(root) = &self.root else {
            return Ok(WriterLock {
                file: None,
                sole: !self.desc.starts_with("s3://"),
                root: None,
                session: None,
            });
        };
        let root = root.clone();
        let path = root.join(".writers.lock");
        tokio::task::spawn_blocking(move || {
            if let Some(file) = try_flock_exclusive(&path)? {
                return Ok(WriterLock {
                    file: Some(file),
                    sole: true,
                    root: Some(root),
                    session: None,
                });
            }
            let file = open_lock_file(&path)?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared)
                .map_err(|e| Error::io(path.display(), e.into()))?;
            Ok(WriterLock {
                file: Some(file),
                sole: false,
                root: Some(root),
                session: None,
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("lock task: {e}")))?
    }

    /// Makes every deferred write durable: one `syncfs` of the store's file system.
    pub async fn sync_deferred(&self) -> Result<()> {
        match &self.deferred {
            Some(d) => d.sync().await,
            None => Ok(()),
        }
    }

    /// Replaces the object under a blob key whose bytes do not hash to its name (a write
    /// torn by a crash before its batch was synced, or damage) with `bytes`, which do.
    /// The damaged bytes are first kept under `quarantine/` (create-only): the evidence
    /// stays, and `verify` reports it. Nothing that *is* the blob is ever overwritten:
    /// the caller checked the hash, and this checks it again for the new bytes.
    pub(crate) async fn heal_blob(&self, sha256: &str, damaged: Bytes, bytes: Bytes) -> Result<()> {
        if codec::sha256_hex(&bytes) != sha256 {
            return Err(Error::Internal(format!(
                "refusing to heal blob {sha256} with bytes of another hash"
            )));
        }
        let found = codec::sha256_hex(&damaged);
        if found == sha256 {
            return Ok(());
        }
        self.put_new(&keys::quarantine_blob(sha256, &found), damaged)
            .await?;
        let key = keys::blob(sha256);
        tracing::warn!(
            "blob {sha256} did not match its hash (found {found}); damaged copy kept under \
             quarantine/, replaced by a fresh upload of the right bytes"
        );
        self.inner
            .put(&key, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.err(&key, e))
    }

    /// [`Store::heal_blob`] for a large blob: the damaged object (whose bytes hash to
    /// `found`) is copied under `quarantine/`, then `source` (checked by the caller to
    /// hash to `sha256`) is copied over it. Nothing passes through memory.
    pub(crate) async fn heal_blob_from(
        &self,
        sha256: &str,
        found: &str,
        source: &Path,
    ) -> Result<()> {
        let key = keys::blob(sha256);
        self.copy_new(&key, &keys::quarantine_blob(sha256, found))
            .await?;
        tracing::warn!(
            "blob {sha256} did not match its hash (found {found}); damaged copy kept under \
             quarantine/, replaced by a fresh upload of the right bytes"
        );
        self.inner
            .copy(source, &key)
            .await
            .map_err(|e| self.err(&key, e))
    }

    pub async fn get(&self, key: &Path) -> Result<Bytes> {
        if let Some(home) = self.home(key) {
            return Box::pin(home.get(key)).await;
        }
        let r = self.inner.get(key).await.map_err(|e| self.err(key, e))?;
        r.bytes().await.map_err(|e| self.err(key, e))
    }

    pub async fn get_opt(&self, key: &Path) -> Result<Option<Bytes>> {
        match self.get(key).await {
            Ok(b) => Ok(Some(b)),
            Err(Error::ObjectNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn head(&self, key: &Path) -> Result<Option<ObjectMeta>> {
        if let Some(home) = self.home(key) {
            return Box::pin(home.head(key)).await;
        }
        match self.inner.head(key).await {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    pub async fn exists(&self, key: &Path) -> Result<bool> {
        Ok(self.head(key).await?.is_some())
    }

    /// Every object under `prefix`, in no particular order.
    pub fn list(&self, prefix: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Some(home) = self.home(prefix) {
            return home.list(prefix);
        }
        let desc = self.desc.clone();
        self.inner
            .list(Some(prefix))
            .map_err(move |e| Error::Store {
                store: desc.clone(),
                source: e,
            })
            .boxed()
    }

    /// Every object under `prefix`, sorted by key.
    pub async fn list_sorted(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        let mut v: Vec<ObjectMeta> = self.list(prefix).try_collect().await?;
        v.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(v)
    }

    /// Number of immediate "directories" under `prefix` (e.g. records under `records/`).
    pub async fn count_children(&self, prefix: &Path) -> Result<u64> {
        let r = self
            .inner
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(|e| self.err(prefix, e))?;
        Ok(r.common_prefixes.len() as u64)
    }

    /// A streaming read of `key`, optionally of a byte range.
    pub async fn read_stream(
        &self,
        key: &Path,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectMeta, BoxStream<'static, Result<Bytes>>)> {
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let r = self
            .inner
            .get_opts(key, opts)
            .await
            .map_err(|e| self.err(key, e))?;
        let meta = r.meta.clone();
        let range = r.range.clone();
        let stream = match r.payload {
            GetResultPayload::File(file, path) => file_stream(file, path, range),
            GetResultPayload::Stream(s) => {
                let desc = self.desc.clone();
                s.map_err(move |e| Error::Store {
                    store: desc.clone(),
                    source: e,
                })
                .boxed()
            }
        };
        Ok((meta, stream))
    }

    /// SHA-256 and length of the object under `key`, streamed (never held in memory).
    pub async fn sha256_of(&self, key: &Path) -> Result<(String, u64)> {
        let r = self.inner.get(key).await.map_err(|e| self.err(key, e))?;
        match r.payload {
            GetResultPayload::File(mut file, path) => tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; HASH_BUF];
                let mut n: u64 = 0;
                loop {
                    let k = file
                        .read(&mut buf)
                        .map_err(|e| Error::io(path.display(), e))?;
                    if k == 0 {
                        break;
                    }
                    h.update(&buf[..k]);
                    n += k as u64;
                }
                Ok((hex::encode(h.finalize()), n))
            })
            .await
            .map_err(|e| Error::Internal(format!("hash task: {e}")))?,
            GetResultPayload::Stream(mut s) => {
                let mut h = Sha256::new();
                let mut n: u64 = 0;
                while let Some(chunk) = s.next().await {
                    let chunk = chunk.map_err(|e| self.err(key, e))?;
                    h.update(&chunk);
                    n += chunk.len() as u64;
                }
                Ok((hex::encode(h.finalize()), n))
            }
        }
    }

    pub(crate) async fn start_multipart(&self, key: &Path) -> Result<Box<dyn MultipartUpload>> {
        self.inner
            .put_multipart(key)
            .await
            .map_err(|e| self.err(key, e))
    }

    /// Publishes `from` under `to` only if `to` does not exist yet.
    pub(crate) async fn copy_new(&self, from: &Path, to: &Path) -> Result<Created> {
        let opts = CopyOptions {
            mode: CopyMode::Create,
            ..Default::default()
        };
        match self.inner.copy_opts(from, to, opts).await {
            Ok(()) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::Existed),
            Err(e) => Err(self.err(to, e)),
        }
    }

    /// Deletes a blob. The one sanctioned deletion of archive content: only the disposal
    /// of an approved request calls it, after the tombstones are committed.
    /// Durable when it returns (the directory entry is gone on disk too).
    pub(crate) async fn dispose_blob(&self, sha256: &str) -> Result<()> {
        let key = keys::blob(sha256);
        if let Some(api) = &self.s3
            && api.versioned().await?
        {
            // On a versioned bucket a DELETE only hides the object behind a delete
            // marker; disposal removes every version (S3 refuses while one is locked).
            return api.delete_all_versions(&key).await;
        }
        match self.inner.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => self.sync_parent(&key).await,
            Err(e) => Err(self.err(&key, e)),
        }
    }

    /// Deletes a party's data key (crypto-shredding; the key store is the one exception
    /// to write-once). Only a journaled erasure calls it.
    /// Durable when it returns: a crash afterwards cannot bring the key back.
    pub(crate) async fn destroy_key(&self, party: &str) -> Result<()> {
        // Journaled already: one cut short is finished by the next recovery, so it must
        // not count as a clean end (see `WriterLock`).
        let what = format!("destruction of key {party}");
        self.unsettle(what.clone())?;
        self.destroy_key_now(party).await?;
        self.settled([what.as_str()]);
        Ok(())
    }

    async fn destroy_key_now(&self, party: &str) -> Result<()> {
        if let Some(ks) = &self.key_store {
            return Box::pin(ks.destroy_key(party)).await;
        }
        let key = keys::party_key(party);
        if let Some(api) = &self.s3 {
            match self.inner.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(&key, e)),
            }
            // Versions too: a key hidden behind a delete marker is not destroyed.
            if api.versioned().await? {
                api.delete_all_versions(&key).await?;
            }
            return Ok(());
        }
        match self.inner.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => self.sync_parent(&key).await,
            Err(e) => Err(self.err(&key, e)),
        }
    }

    /// Makes a deletion under `key` durable: on the local store an fsync of its
    /// directory (object stores acknowledge a DELETE only once it is durable).
    async fn sync_parent(&self, key: &Path) -> Result<()> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let path = root.join(key.as_ref());
        let Some(dir) = path.parent().map(std::path::Path::to_path_buf) else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || match std::fs::File::open(&dir) {
            Ok(f) => f.sync_all().map_err(|e| Error::io(dir.display(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(dir.display(), e)),
        })
        .await
        .map_err(|e| Error::Internal(format!("sync task: {e}")))?
    }

    /// Writes the local file `path` under `key` (a shared job's upload), streamed in
    /// parts: never whole in memory. Only for `jobs/`, which is not archive data.
    pub async fn put_file(&self, key: &Path, path: &std::path::Path) -> Result<()> {
        use tokio::io::AsyncReadExt;
        if !key.as_ref().starts_with(keys::JOBS) {
            return Err(Error::Internal(format!("put_file is for jobs/, not {key}")));
        }
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io(path.display(), e))?;
        let upload = self.start_multipart(key).await?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, blob::PART_SIZE);
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| Error::io(path.display(), e))?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(2).await.map_err(|e| self.err(key, e))?;
            w.write(&buf[..n]);
        }
        w.finish().await.map_err(|e| self.err(key, e))?;
        Ok(())
    }

    /// Reads `key` into the local file `path`, streamed.
    pub async fn get_file(&self, key: &Path, path: &std::path::Path) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let (_, mut stream) = self.read_stream(key, None).await?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Error::io(path.display(), e))?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?)
                .await
                .map_err(|e| Error::io(path.display(), e))?;
        }
        file.flush().await.map_err(|e| Error::io(path.display(), e))
    }

    /// The names of the immediate "directories" under `prefix`.
    pub async fn children(&self, prefix: &Path) -> Result<Vec<String>> {
        let r = self
            .inner
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(|e| self.err(prefix, e))?;
        Ok(r.common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Removes a shared job's object. Refuses any key outside `jobs/`.
    pub async fn delete_job_object(&self, key: &Path) -> Result<()> {
        if !key.as_ref().starts_with(keys::JOBS) {
            return Err(Error::Internal(format!(
                "refusing to delete {key}: only job objects may be deleted"
            )));
        }
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Removes an upload in flight. Refuses any key outside `staging/`.
    pub(crate) async fn delete_staging(&self, key: &Path) -> Result<()> {
        if keys::classify(key) != keys::KeyKind::Staging {
            return Err(Error::Internal(format!(
                "refusing to delete {key}: only staging objects may be deleted"
            )));
        }
        if let Some(api) = &self.s3
            && self.lock.is_none()
            && api.versioned().await?
        {
            return api.delete_all_versions(key).await;
        }
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(key, e)),
        }
    }
}

/// Creates `path` with `bytes` unless it exists, under its own name (`O_EXCL`), without
/// an fsync: for objects no one reads before a later step commits them. A crash before
/// the batch is synced can leave the file short; recovery records it as torn.
fn create_file_direct(path: &std::path::Path, bytes: &[u8]) -> Result<Created> {
    use std::io::{ErrorKind, Write};
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
    };
    let mut file = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(Created::Existed),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
            }
            match open() {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(Created::Existed),
                Err(e) => return Err(Error::io(path.display(), e)),
            }
        }
        Err(e) => return Err(Error::io(path.display(), e)),
    };
    if let Err(e) = file.write_all(bytes) {
        // Nothing half-written stays behind under its name when the process lives on.
        let _ = std::fs::remove_file(path);
        return Err(Error::io(path.display(), e));
    }
    Ok(Created::New)
}

/// Creates `path` with `bytes` unless it exists, appearing whole or not at all, without
/// an fsync: written as an unnamed file (`O_TMPFILE`) that is then linked under its name
/// (which fails if the name exists), else through a temporary name and a rename.
fn create_file(path: &std::path::Path, bytes: &[u8]) -> Result<Created> {
    static NO_TMPFILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !NO_TMPFILE.load(std::sync::atomic::Ordering::Relaxed) {
        match create_file_unnamed(path, bytes) {
            Ok(Some(created)) => return Ok(created),
            Ok(None) => NO_TMPFILE.store(true, std::sync::atomic::Ordering::Relaxed),
            Err(e) => return Err(e),
        }
    }
    create_file_renamed(path, bytes)
}

/// [`create_file`] with an unnamed file: a process killed mid-write leaves nothing
/// behind, and no directory entry is made twice. `None` when this file system or
/// kernel cannot (no `O_TMPFILE`, no `/proc` to link it from).
fn create_file_unnamed(path: &std::path::Path, bytes: &[u8]) -> Result<Option<Created>> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    use rustix::io::Errno;
    let parent = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no directory", path.display())))?;
    let open = || {
        rustix::fs::openat(
            CWD,
            parent,
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
    };
    let fd = match open() {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
            match open() {
                Ok(fd) => fd,
                Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => return Ok(None),
                Err(e) => return Err(Error::io(parent.display(), e.into())),
            }
        }
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => return Ok(None),
        Err(e) => return Err(Error::io(parent.display(), e.into())),
    };
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, bytes).map_err(|e| Error::io(path.display(), e))?;
    let me = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    match rustix::fs::linkat(CWD, me.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Ok(Some(Created::New)),
        Err(Errno::EXIST) => Ok(Some(Created::Existed)),
        // No `/proc` (a bare container), or linking refused: the renaming way.
        Err(Errno::NOENT | Errno::PERM | Errno::ACCESS | Errno::OPNOTSUPP | Errno::XDEV) => {
            Ok(None)
        }
        Err(e) => Err(Error::io(path.display(), e.into())),
    }
}

/// [`create_file`] through a temporary name and a rename that does not replace.
fn create_file_renamed(path: &std::path::Path, bytes: &[u8]) -> Result<Created> {
    use std::io::{ErrorKind, Write};
    // Written under a temporary name, then renamed without replacing: a process killed
    // mid-write leaves a temporary file, never a short object under its final name. (A
    // power loss before the batch's sync can still leave one short: recovery and verify
    // treat such a file as a leftover of a batch that never committed.)
    let parent = path
        .parent()
        .ok_or_else(|| Error::Internal(format!("{} has no directory", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if path.exists() {
        return Ok(Created::Existed);
    }
    // `<name>#<digits>` is the local backend's own name for an object in flight: its
    // listings skip it, so a leftover never shows up as an object.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut made_parent = false;
    let (tmp_path, mut tmp) = loop {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp_name = format!("{name}#{}{n:06}", pid());
        let tmp_path = parent.join(&tmp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
        {
            Ok(f) => break (tmp_path, f),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            // Its directory is made when it is missing, not asked about for every file.
            Err(e) if e.kind() == ErrorKind::NotFound && !made_parent => {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
                made_parent = true;
            }
            Err(e) => return Err(Error::io(tmp_path.display(), e)),
        }
    };
    let cleanup = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp_path);
        Error::io(path.display(), e)
    };
    tmp.write_all(bytes).map_err(cleanup)?;
    drop(tmp);
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        &tmp_path,
        rustix::fs::CWD,
        path,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(Created::New),
        Err(rustix::io::Errno::EXIST) => {
            let _ = std::fs::remove_file(&tmp_path);
            Ok(Created::Existed)
        }
        Err(e) => Err(cleanup(e.into())),
    }
}

/// This process's id, asked of the kernel once.
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Opens (creating it, owner-only) a lock file.
fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path.display(), e))
}

/// The lock file at `path`, locked exclusively, or `None` when another holds it.
fn try_flock_exclusive(path: &std::path::Path) -> Result<Option<std::fs::File>> {
    use rustix::fs::{FlockOperation, flock};
    let file = open_lock_file(path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(Error::io(path.display(), e.into())),
    }
}

/// A writer's hold on the store (see `audit::recovery`). On the local store every
/// writing process holds `<data>/.writers.lock` shared for its lifetime; one that got it
/// exclusively at start knows no other writer is alive.
///
/// Beside the lock, on the local store: each writer session has a file under
/// `<data>/.sessions/` from its start until its clean end, and the last writer to end
/// cleanly — alone, every revision it wrote committed, every key destruction it began
/// finished — leaves `<data>/.clean` naming
/// the journal's head. A writer that starts alone and finds that mark at the head, and
/// no session file, knows nothing was written since without an entry: recovery need
/// not list the store.
#[derive(Debug)]
pub struct WriterLock {
    file: Option<std::fs::File>,
    sole: bool,
    /// The local store's directory; `None` in memory and on S3 (no marks there).
    root: Option<PathBuf>,
    /// This session's file under `.sessions/`, once begun.
    session: Option<PathBuf>,
}

/// The mark's first line (its format).
const CLEAN_MARK: &str = "akte clean end 1";

impl WriterLock {
    /// No other process can be writing to this store.
    pub fn sole(&self) -> bool {
        self.sole
    }

    /// The journal head (sequence number, hash) the last writer ended cleanly at, when
    /// this writer is alone and no writer has started since (no session file).
    pub fn clean_end(&self) -> Option<(u64, String)> {
        let root = self.root.as_ref().filter(|_| self.sole)?;
        if sessions(root).ok()?.next().is_some() {
            return None;
        }
        let text = std::fs::read_to_string(root.join(".clean")).ok()?;
        let mut lines = text.lines();
        if lines.next()? != CLEAN_MARK {
            return None;
        }
        let (seq, hash) = lines.next()?.split_once(' ')?;
        Some((seq.parse().ok()?, hash.to_string()))
    }

    /// Begins this writer's session, before it writes anything: the clean mark is
    /// removed and a session file made, both durably; a writer alone first removes the
    /// session files of writers that died (call it after recovery, which recorded what
    /// they left). Then the lock is shared, so that other writers may start.
    pub async fn begin(mut self) -> Result<WriterLock> {
        let Some(root) = self.root.clone() else {
            return Ok(self);
        };
        let clear = self.sole;
        let session = tokio::task::spawn_blocking(move || -> Result<PathBuf> {
            let dir = root.join(".sessions");
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(dir.display(), e))?;
            if clear {
                for stale in sessions(&root)? {
                    std::fs::remove_file(&stale).map_err(|e| Error::io(stale.display(), e))?;
                }
            }
            remove_clean_mark(&root)?;
            let session = dir.join(format!("{}-{}", pid(), hex::encode(crypt::random::<8>()?)));
            std::fs::File::create(&session).map_err(|e| Error::io(session.display(), e))?;
            sync_dir(&dir)?;
            Ok(session)
        })
        .await
        .map_err(|e| Error::Internal(format!("lock task: {e}")))??;
        self.session = Some(session);
        self.shared().await
    }

    /// The same lock, shared, so that other writers may start.
    async fn shared(self) -> Result<WriterLock> {
        let Some(file) = self.file else {
            return Ok(self);
        };
        let (root, session) = (self.root, self.session);
        tokio::task::spawn_blocking(move || {
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared)
                .map_err(|e| Error::io("writer lock", e.into()))?;
            Ok(WriterLock {
                file: Some(file),
                sole: false,
                root,
                session,
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("lock task: {e}")))?
    }

    /// Ends this writer's session cleanly: its session file goes, and when this writer
    /// is the last one alive, nobody died in a session since the last recovery, and
    /// `head` is given (every revision this process wrote is committed) the clean mark
    /// names `head`. Returns whether it was left.
    pub fn end(&mut self, head: Option<(u64, String)>) -> Result<bool> {
        let (Some(root), Some(session)) = (self.root.clone(), self.session.take()) else {
            return Ok(false);
        };
        std::fs::remove_file(&session).map_err(|e| Error::io(session.display(), e))?;
        sync_dir(&root.join(".sessions"))?;
        let Some((seq, hash)) = head else {
            return Ok(false);
        };
        let Some(file) = &self.file else {
            return Ok(false);
        };
        match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(e) => return Err(Error::io("writer lock", e.into())),
        }
        if sessions(&root)?.next().is_some() {
            return Ok(false);
        }
        let tmp = root.join(".clean.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(tmp.display(), e))?;
        std::io::Write::write_all(&mut f, format!("{CLEAN_MARK}\n{seq} {hash}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(tmp.display(), e))?;
        std::fs::rename(&tmp, root.join(".clean")).map_err(|e| Error::io(tmp.display(), e))?;
        sync_dir(&root)?;
        Ok(true)
    }
}

/// The session files under `<root>/.sessions/` (none when it does not exist).
fn sessions(root: &std::path::Path) -> Result<impl Iterator<Item = PathBuf>> {
    let dir = root.join(".sessions");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => Some(e),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(dir.display(), e)),
    };
    Ok(entries
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path())))
}

/// Removes `<root>/.clean`, durably.
fn remove_clean_mark(root: &std::path::Path) -> Result<()> {
    let mark = root.join(".clean");
    match std::fs::remove_file(&mark) {
        Ok(()) => sync_dir(root),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(mark.display(), e)),
    }
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir.display(), e))
}

/// Credentials of an AWS profile file.
struct Profile {
    key: String,
    secret: String,
    token: Option<String>,
    region: Option<String>,
}

/// The profile `AWS_PROFILE` (default `default`) from `AWS_SHARED_CREDENTIALS_FILE`
/// (default `~/.aws/credentials`), its region from `AWS_CONFIG_FILE` (`~/.aws/config`).
fn aws_profile() -> Option<Profile> {
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let name = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws").join(default))
    };
    let section = |path: PathBuf, header: &str| -> std::collections::HashMap<String, String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut inside = false;
        let mut out = std::collections::HashMap::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                inside = line.trim_matches(|c| c == '[' || c == ']').trim() == header;
            } else if inside && let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        out
    };
    let creds = section(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), &name);
    let config_header = if name == "default" {
        name.clone()
    } else {
        format!("profile {name}")
    };
    let config = section(file("AWS_CONFIG_FILE", "config"), &config_header);
    Some(Profile {
        key: creds.get("aws_access_key_id")?.clone(),
        secret: creds.get("aws_secret_access_key")?.clone(),
        token: creds.get("aws_session_token").cloned(),
        region: config.get("region").cloned(),
    })
}

/// Reads a local file in [`READ_CHUNK`] pieces on the blocking pool.
fn file_stream(
    file: std::fs::File,
    path: PathBuf,
    range: Range<u64>,
) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::try_unfold(
        (Some(file), path, range.start, range.end),
        |(file, path, pos, end)| async move {
            let Some(file) = file else { return Ok(None) };
            if pos >= end {
                return Ok(None);
            }
            let want = usize::try_from((end - pos).min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
            let (file, path, buf) = tokio::task::spawn_blocking(move || {
                use std::io::{Read, Seek, SeekFrom};
                let mut file = file;
                let mut buf = vec![0u8; want];
                file.seek(SeekFrom::Start(pos))
                    .map_err(|e| Error::io(path.display(), e))?;
                file.read_exact(&mut buf)
                    .map_err(|e| Error::io(path.display(), e))?;
                Ok::<_, Error>((file, path, buf))
            })
            .await
            .map_err(|e| Error::Internal(format!("read task: {e}")))??;
            let next = pos + buf.len() as u64;
            Ok(Some((Bytes::from(buf), (Some(file), path, next, end))))
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir` and below, relative, sorted.
    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p.clone());
                }
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_created_file_appears_whole_once_and_leaves_nothing_else() {
        type Create = fn(&std::path::Path, &[u8]) -> Result<Created>;
        let unnamed: Create = |p, b| Ok(create_file_unnamed(p, b)?.expect("O_TMPFILE here"));
        for (how, create) in [
            ("unnamed", unnamed),
            ("renamed", create_file_renamed as Create),
            ("either", create_file as Create),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("blobs/ab/abcd");
            assert_eq!(create(&path, b"first").unwrap(), Created::New, "{how}");
            assert_eq!(create(&path, b"second").unwrap(), Created::Existed, "{how}");
            assert_eq!(std::fs::read(&path).unwrap(), b"first", "{how}");
            assert_eq!(
                names(dir.path()),
                ["blobs", "blobs/ab", "blobs/ab/abcd"],
                "{how}: no temporary file stays behind"
            );
        }
    }
}
