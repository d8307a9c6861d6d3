//! Bulk import of files, directory trees, `.eml`, mbox and Maildir: the engine of
//! `akte import` and of `POST /v1/imports`.
//!
//! Idempotent: every item is looked up by the SHA-256 of its bytes first, so running an
//! import again archives nothing twice (and so resumes one that was interrupted). Items
//! are archived in batches (`Ingest::ingest`, one group commit each); memory is bounded
//! by the batch, not by the size of a mailbox.

use std::collections::{HashSet, VecDeque};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::Ingest;
use crate::ingest::batch::{Incoming, IngestDefaults, ItemOutcome, Writing};
use crate::store::content::Content;

/// Told how an import advances (a progress bar, a job's view).
pub trait Progress: Send + Sync {
    /// The bytes of all inputs, once known.
    fn total(&self, _bytes: u64) {}
    /// One more input file (of `bytes`) read; `items` so far.
    fn advance(&self, _bytes: u64, _items: u64) {}
    /// The summary so far, after each batch.
    fn summary(&self, _s: &Summary) {}
    /// One item archived (or found archived before), as soon as its batch is committed.
    fn item(&self, _i: &Imported) {}
}

/// One item of an import and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// The input: a path, `mbox#n` for the n-th message of a mailbox.
    pub item: String,
    /// Its record (the existing one for a duplicate).
    pub id: String,
    /// The same bytes were archived before: nothing was written.
    pub duplicate: bool,
    /// Records made from its attachments.
    pub attachments: Vec<String>,
    /// Parties linked automatically, and why.
    pub linked: Vec<crate::catalog::LinkBrief>,
    /// Evidence naming more than one party: nothing linked for it, left to a person.
    pub ambiguous: Vec<crate::catalog::Match>,
    /// Other records with the same Message-ID but different bytes.
    pub related: Vec<String>,
}

/// No progress reporting.
pub struct Quiet;
impl Progress for Quiet {}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// Items archived (with or without warnings).
    pub archived: u64,
    /// Items whose bytes were archived before: nothing written.
    pub duplicates: u64,
    /// Items *not* archived (unreadable, refused, a failed commit): see `failures`.
    pub failed: u64,
    pub failures: Vec<ItemProblem>,
    /// Records made from attachments of the archived items.
    #[serde(default)]
    pub attachments: u64,
    /// Archived items linked to at least one party automatically.
    #[serde(default)]
    pub linked: u64,
    /// Items whose sender or recipient names more than one party (a domain shared by two
    /// parties, say): archived, but not linked for that evidence; each named, for a person
    /// to link.
    #[serde(default)]
    pub ambiguous: Vec<ItemProblem>,
    /// Items archived, but with a problem reading them (an extraction that failed, a
    /// message the parser could not read, an attachment without text), each named.
    pub warnings: Vec<ItemProblem>,
    pub bytes: u64,
    pub seconds: f64,
    pub dry_run: bool,
    /// Stopped by Ctrl-C: run the same import again to resume.
    pub interrupted: bool,
}

/// One item and what went wrong with it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ItemProblem {
    pub item: String,
    pub reason: String,
}

enum Kind {
    Email,
    Mbox,
    Document,
}

fn kind_of(path: &Path) -> Kind {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext == "eml" {
        return Kind::Email;
    }
    if ext == "mbox" || ext == "mbx" {
        return Kind::Mbox;
    }
    // Maildir: every file in cur/, new/ or tmp/ is one message.
    if let Some(parent) = path.parent().and_then(|p| p.file_name())
        && matches!(parent.to_str(), Some("cur" | "new" | "tmp"))
    {
        return Kind::Email;
    }
    let mut head = [0u8; 5];
    if let Ok(mut f) = std::fs::File::open(path)
        && f.read_exact(&mut head).is_ok()
        && &head == b"From "
    {
        return Kind::Mbox;
    }
    Kind::Document
}

/// Whether `path` is an Outlook PST or OST file (by name, else by its `!BDN` magic; a
/// file named `.eml` is taken for a message without opening it, as a directory of
/// exported mail has thousands).
fn is_pst(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext == "pst" || ext == "ost" {
        return true;
    }
    if ext == "eml" {
        return false;
    }
    let mut head = [0u8; 4];
    std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut head).is_ok() && &head == b"!BDN")
}

/// Converts a PST/OST with `readpst` (Debian's `pst-utils`) into a temporary tree of
/// `.eml` files, one directory per mail folder. Returns the tree (deleted when dropped)
/// and every message with its folder path (`Posteingang/Kunden`).
fn convert_pst(
    path: &Path,
) -> std::result::Result<(tempfile::TempDir, Vec<(String, PathBuf)>), String> {
    let out = tempfile::Builder::new()
        .prefix("akte-pst-")
        .tempdir()
        .map_err(|e| format!("a temporary directory: {e}"))?;
    let run = std::process::Command::new(
        std::env::var_os("AKTE_READPST").unwrap_or_else(|| "readpst".into()),
    )
    .args(["-e", "-q", "-b", "-te", "-o"])
    .arg(out.path())
    .arg(path)
    .stdin(std::process::Stdio::null())
    .output();
    let done = match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                "an Outlook PST/OST is converted with readpst, which is not installed: \
                        apt-get install pst-utils (Debian/Ubuntu), then import again"
                    .into(),
            );
        }
        Err(e) => return Err(format!("readpst: {e}")),
        Ok(o) => o,
    };
    if !done.status.success() {
        return Err(format!(
            "readpst could not read it ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        ));
    }
    let files = walk(&[out.path().to_path_buf()]).map_err(|e| e.to_string())?;
    let messages = files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "eml"))
        .map(|f| {
            let folder = f
                .parent()
                .and_then(|d| d.strip_prefix(out.path()).ok())
                .map(|d| {
                    d.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            (folder, f)
        })
        .collect();
    Ok((out, messages))
}

/// Every file under the inputs, in a stable order.
pub fn walk(paths: &[PathBuf]) -> crate::error::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(p) = stack.pop() {
        let meta =
            std::fs::symlink_metadata(&p).map_err(|e| crate::error::Error::io(p.display(), e))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| crate::error::Error::io(p.display(), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else if meta.is_file() {
            out.push(p);
        }
    }
    Ok(out)
}

/// Imports everything under `paths`. Stops after the batch in hand once `stop` is set
/// (`interrupted` in the summary).
pub async fn run(
    svc: &Ingest,
    actor: &str,
    paths: &[PathBuf],
    d: &IngestDefaults,
    dry_run: bool,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> crate::error::Result<Summary> {
    let started = Instant::now();
    let mut s = Summary {
        dry_run,
        ..Default::default()
    };
    // Each file with the mail folder it comes from (the messages of a PST, converted to
    // a temporary tree first; kept until the import ends).
    let mut files: Vec<(PathBuf, Option<String>, String)> = Vec::new();
    let mut converted = Vec::new();
    for f in walk(paths)? {
        if !is_pst(&f) {
            let name = f.display().to_string();
            files.push((f, None, name));
            continue;
        }
        match convert_pst(&f) {
            Ok((tree, messages)) => {
                for (folder, m) in messages {
                    let name = format!(
                        "{}#{folder}/{}",
                        f.display(),
                        m.file_name().unwrap_or_default().to_string_lossy()
                    );
                    files.push((m, Some(folder), name));
                }
                converted.push(tree);
            }
            Err(why) => fail(&mut s, &f.display().to_string(), why),
        }
    }
    let total_bytes: u64 = files
        .iter()
        .filter_map(|(f, _, _)| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    progress.total(total_bytes);
    let stopped = || stop.load(Ordering::SeqCst);
    let mut batches = Batcher {
        svc,
        actor,
        d: d.clone(),
        dry_run,
        progress,
        pending: Pending::default(),
        inflight: VecDeque::new(),
        writing: None,
        archived: None,
        staged: None,
        ends: VecDeque::new(),
    };
    let mut items = 0u64;
    for (f, folder, name) in &files {
        if stopped() {
            break;
        }
        // A batch holds the messages of one folder: its folder goes into each record.
        if batches.d.extra.get("folder") != folder.as_ref() {
            batches.flush(&mut s).await;
            match folder {
                Some(x) => batches.d.extra.insert("folder".into(), x.clone()),
                None => batches.d.extra.remove("folder"),
            };
        }
        let name = name.clone();
        match kind_of(f) {
            Kind::Email => {
                let raw = match std::fs::read(f) {
                    Ok(r) => r,
                    Err(e) => {
                        fail(&mut s, &name, e.to_string());
                        continue;
                    }
                };
                batches
                    .add(Incoming::Email(raw.into()), name.clone(), &mut s)
                    .await;
                items += 1;
            }
            Kind::Mbox => {
                let file = match std::fs::File::open(f) {
                    Ok(file) => file,
                    Err(e) => {
                        fail(&mut s, &name, e.to_string());
                        continue;
                    }
                };
                // Streams: one message in memory at a time.
                let it = super::mbox::Messages::new(BufReader::with_capacity(1 << 18, file));
                for (i, m) in it.enumerate() {
                    if stopped() {
                        break;
                    }
                    let item = format!("{name}#{}", i + 1);
                    match m {
                        Ok(contents) => {
                            let mut raw = contents;
                            // The blank line before the next "From " belongs to the mbox.
                            if raw.ends_with(b"\n\n") {
                                raw.pop();
                            }
                            batches.add(Incoming::Email(raw.into()), item, &mut s).await;
                            items += 1;
                        }
                        Err(e) => fail(&mut s, &item, e),
                    }
                    if i.is_multiple_of(64) {
                        progress.advance(0, items);
                    }
                }
            }
            Kind::Document if dry_run => {
                dry_document(svc, f, &name, &mut s).await;
                items += 1;
            }
            Kind::Document => {
                // Small files are read at once; larger ones stay on disk and are read
                // in chunks wherever their bytes go (hash, extraction, blob).
                let small = std::fs::metadata(f)
                    .is_ok_and(|m| m.len() <= crate::store::blob::INLINE_LIMIT as u64);
                let content = if small {
                    std::fs::read(f)
                        .map(|b| Content::Memory(b.into()))
                        .map_err(|e| crate::error::Error::io(f.display(), e))
                } else {
                    Content::file(f)
                };
                match content {
                    Ok(content) => {
                        let file_name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                        batches
                            .add(Incoming::document(content, file_name), name.clone(), &mut s)
                            .await;
                    }
                    Err(e) => fail(&mut s, &name, e.to_string()),
                }
                items += 1;
            }
        }
        progress.advance(std::fs::metadata(f).map(|m| m.len()).unwrap_or(0), items);
    }
    batches.flush(&mut s).await;
    batches.settle(&mut s, 0).await;
    svc.svc.archive.drain().await;
    drop(converted);
    s.seconds = started.elapsed().as_secs_f64();
    s.interrupted = stopped();
    progress.summary(&s);
    Ok(s)
}

impl Imported {
    fn of(item: String, o: ItemOutcome) -> Imported {
        Imported {
            item,
            id: o.id,
            duplicate: o.duplicate,
            attachments: o.attachments,
            linked: o.auto_links,
            ambiguous: o.ambiguous,
            related: o.related,
        }
    }
}

/// An item that was not archived.
fn fail(s: &mut Summary, item: &str, reason: String) {
    s.failed += 1;
    s.failures.push(ItemProblem {
        item: item.to_string(),
        reason,
    });
}

/// An item archived with a problem.
fn warn(s: &mut Summary, item: &str, reason: String) {
    s.warnings.push(ItemProblem {
        item: item.to_string(),
        reason,
    });
}

/// Items collected before a batch is archived (one group commit)…
const BATCH: usize = 256;
/// …or this many bytes, whichever comes first: memory stays bounded whatever the
/// size of the mailbox.
const BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Items waiting for the next batch.
#[derive(Default)]
struct Pending {
    items: Vec<(Incoming, String)>,
    bytes: usize,
}

impl Pending {
    fn push(&mut self, item: Incoming, name: String) {
        self.bytes += item.in_memory().map_or(0, |b| b.len());
        self.items.push((item, name));
    }

    fn full(&self) -> bool {
        self.items.len() >= BATCH || self.bytes >= BATCH_BYTES
    }
}

pub fn rate(items: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    format!("{items} items, {:.0} items/s", items as f64 / secs)
}

/// A batch being archived in the background: its task, and per item its name and size.
type InFlight = (
    tokio::task::JoinHandle<Vec<crate::error::Result<ItemOutcome>>>,
    Vec<String>,
    Vec<u64>,
);

/// Collects items into batches and archives each while the next one is read.
struct Batcher<'a> {
    svc: &'a Ingest,
    actor: &'a str,
    d: IngestDefaults,
    dry_run: bool,
    progress: &'a dyn Progress,
    pending: Pending,
    /// The batches sent off, oldest first: at most `PLAN_AHEAD + 2`: one being
    /// committed while the next ones are staged and planned, while another is read…
    inflight: VecDeque<InFlight>,
    /// …what the newest batches will write, newest first, once planned (a plan needs
    /// those of the `PLAN_AHEAD` batches before it)…
    writing: Option<tokio::sync::oneshot::Receiver<Recent<Writing>>>,
    /// …the records they archived, once committed (a commit checks the copies it found
    /// in them)…
    archived: Option<tokio::sync::oneshot::Receiver<Recent<HashSet<String>>>>,
    /// …a signal that the newest batch is staged (batches are staged in order, so that
    /// each is committed as early as it can be, not after the ones planned with it)…
    staged: Option<tokio::sync::oneshot::Receiver<()>>,
    /// …and, for the newest batches, a signal that ends when the batch's task does (its
    /// sender is dropped then, committed or not): a batch is planned once the batch
    /// `PLAN_AHEAD + 1` before it is in the catalog.
    ends: VecDeque<tokio::sync::oneshot::Receiver<()>>,
}

/// How many batches before it a batch's plan sees by what they will write rather than
/// in the catalog: the plan of batch k starts once batch k − 3 is committed, while
/// k − 2 and k − 1 are staged or planned.
const PLAN_AHEAD: usize = 2;

/// Something of each of the last `PLAN_AHEAD` batches, newest first.
type Recent<T> = Vec<std::sync::Arc<T>>;

/// `mine` and the newest of `before`, as the next batch needs them.
fn pass_on<T>(mine: T, before: &Recent<T>) -> Recent<T> {
    std::iter::once(std::sync::Arc::new(mine))
        .chain(before.iter().take(PLAN_AHEAD - 1).cloned())
        .collect()
}

/// The records (items and attachments) a batch archived.
fn archived_by(outcomes: &[crate::error::Result<ItemOutcome>]) -> HashSet<String> {
    let mut archived = HashSet::new();
    for o in outcomes.iter().flatten() {
        if !o.duplicate {
            archived.insert(o.id.clone());
            archived.extend(o.attachments.iter().cloned());
        }
    }
    archived
}

impl Batcher<'_> {
    /// Adds an item; a full batch is sent off.
    async fn add(&mut self, item: Incoming, name: String, s: &mut Summary) {
        self.pending.push(item, name);
        if self.pending.full() {
            self.flush(s).await;
        }
    }

    /// Waits for every batch in flight but the newest `keep` and counts what each did.
    async fn settle(&mut self, s: &mut Summary, keep: usize) {
        while self.inflight.len() > keep {
            self.settle_oldest(s).await;
        }
    }

    /// Waits for the oldest batch in flight and counts what it did.
    async fn settle_oldest(&mut self, s: &mut Summary) {
        let Some((task, names, lens)) = self.inflight.pop_front() else {
            return;
        };
        match task.await {
            Ok(outcomes) => {
                for ((r, name), len) in outcomes.into_iter().zip(names).zip(lens) {
                    match r {
                        Ok(o) if o.duplicate => {
                            s.duplicates += 1;
                            self.progress.item(&Imported::of(name, o));
                        }
                        Ok(o) => {
                            s.archived += 1;
                            s.bytes += len;
                            s.attachments += o.attachments.len() as u64;
                            if !o.auto_links.is_empty() {
                                s.linked += 1;
                            }
                            for m in &o.ambiguous {
                                let mut named = Vec::new();
                                for p in &m.parties {
                                    named.push(match self.svc.svc.catalog.party(p).await {
                                        Some(b) => format!("{} {p}", b.data.name),
                                        None => p.clone(),
                                    });
                                }
                                s.ambiguous.push(ItemProblem {
                                    item: name.clone(),
                                    reason: format!(
                                        "{} names {} parties ({}): not linked",
                                        m.evidence,
                                        m.parties.len(),
                                        named.join(", ")
                                    ),
                                });
                            }
                            if let Some(reason) = &o.extraction_failed {
                                warn(s, &name, format!("extraction failed: {reason}"));
                            }
                            self.progress.item(&Imported::of(name, o));
                        }
                        Err(e) => fail(s, &name, e.to_string()),
                    }
                }
            }
            Err(e) => {
                for name in names {
                    fail(s, &name, format!("batch task: {e}"));
                }
            }
        }
        self.progress.summary(s);
    }

    /// Archives the collected items with one group commit, in steps that overlap with
    /// the batches before and after, in a task of its own: the items are planned
    /// (`Ingest::plan_batch`: hashed, parsed, extracted, linked) while the batches before
    /// are staged or committed and the next one is read, then staged
    /// (`Ingest::stage_batch`) once the batch before is, while it is committed, and
    /// committed (`Ingest::commit_batch`) once the batch before is. Copies across batches
    /// are duplicates: the plan sees the `PLAN_AHEAD` batches before (what they write) as
    /// well as the catalog, which holds every batch before those (the plan waits for
    /// it); a copy of a record whose batch did not commit after all fails before its own
    /// batch commits.
    async fn flush(&mut self, s: &mut Summary) {
        self.pending.bytes = 0;
        let (items, names): (Vec<Incoming>, Vec<String>) = self.pending.items.drain(..).unzip();
        if items.is_empty() {
            return;
        }
        let lens: Vec<u64> = items.iter().map(Incoming::len).collect();
        if self.dry_run {
            self.settle(s, 0).await;
            let mut seen = std::collections::HashSet::new();
            for ((item, name), len) in items.into_iter().zip(names).zip(lens) {
                let Incoming::Email(raw) = item else { continue };
                let sha = crate::store::codec::sha256_hex(&raw);
                if !seen.insert(sha.clone())
                    || !self.svc.svc.catalog.records_with_sha(&sha).await.is_empty()
                {
                    s.duplicates += 1;
                    continue;
                }
                s.archived += 1;
                s.bytes += len;
                if let Err(reason) = crate::extract::mail::parse(&raw) {
                    warn(s, &name, format!("extraction failed: {reason}"));
                }
            }
            return;
        }
        // Memory: at most `PLAN_AHEAD + 2` batches in flight besides the one being read.
        self.settle(s, PLAN_AHEAD + 1).await;
        let (svc, actor, d) = (self.svc.clone(), self.actor.to_string(), self.d.clone());
        let writing_before = self.writing.take();
        let (planned_tx, planned_rx) = tokio::sync::oneshot::channel();
        self.writing = Some(planned_rx);
        let archived_before = self.archived.take();
        let (archived_tx, archived_rx) = tokio::sync::oneshot::channel();
        self.archived = Some(archived_rx);
        let committed_before = if self.ends.len() > PLAN_AHEAD {
            self.ends.pop_front()
        } else {
            None
        };
        let staged_before = self.staged.take();
        let (staged_tx, staged_rx) = tokio::sync::oneshot::channel::<()>();
        self.staged = Some(staged_rx);
        let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
        self.ends.push_back(end_rx);
        let task = tokio::spawn(async move {
            let _end = end_tx;
            if let Some(ended) = committed_before {
                // Committed (or failed): its records are in the catalog, and those of
                // every batch before it.
                let _ = ended.await;
            }
            // A batch whose task ended without a word writes nothing.
            let writing = match writing_before {
                Some(w) => w.await.unwrap_or_default(),
                None => Vec::new(),
            };
            let planned = svc
                .plan_batch(items, &d, &Writing::of_all(writing.iter().map(|w| &**w)))
                .await;
            let _ = planned_tx.send(pass_on(planned.writing(), &writing));
            drop(writing);
            if let Some(before) = staged_before {
                // Staged, or its task ended.
                let _ = before.await;
            }
            let mut staged = svc.stage_batch(&actor, planned).await;
            drop(staged_tx);
            // A batch that ended without a word archived nothing.
            let before = match archived_before {
                Some(a) => a.await.unwrap_or_default(),
                None => Vec::new(),
            };
            let all: HashSet<String> = before.iter().flat_map(|a| a.iter().cloned()).collect();
            staged.earlier_written(&all);
            let outcomes = svc.commit_batch(&actor, staged).await;
            let _ = archived_tx.send(pass_on(archived_by(&outcomes), &before));
            outcomes
        });
        self.inflight.push_back((task, names, lens));
    }
}

/// A dry run's look at a document: would it be archived, or is it a duplicate?
async fn dry_document(svc: &Ingest, path: &Path, item: &str, s: &mut Summary) {
    let content = match Content::file(path) {
        Ok(c) => c,
        Err(e) => return fail(s, item, e.to_string()),
    };
    let sha = match content.sha256().await {
        Ok(sha) => sha,
        Err(e) => return fail(s, item, e.to_string()),
    };
    let len = content.len();
    if !svc.svc.catalog.records_with_sha(&sha).await.is_empty() {
        s.duplicates += 1;
        return;
    }
    s.archived += 1;
    s.bytes += len;
}
