//! Extraction outside the request path, with time and memory limits.
//!
//! Complex formats (PDF, Office, OpenDocument, RTF, XML) are parsed by worker processes:
//! the `akte` binary itself, run as `akte extract-worker`. A worker caps its own address
//! space (`RLIMIT_AS`) before it reads anything, then serves requests one at a time over
//! its stdin/stdout. The parent gives each request a deadline. A worker that overruns
//! it is killed; so is one that dies, whether from running out of memory or from a
//! crash. Either way it is replaced, and the item is recorded as "extraction failed:
//! reason". Neither the server nor the import goes down with it.
//!
//! Emails are parsed there too (`message/rfc822`): a message that hangs or bombs the MIME
//! parser costs a worker, not the import.
//!
//! Frames, both directions: a little-endian `u64` length, then that many bytes. A request
//! is three frames (media type, file name, content); a response is one (MessagePack
//! `Answer`).
//!
//! Text-like content (plain text, HTML, images to OCR) is decoded in-process. So is
//! everything in tests and tools that have no worker binary (`Extractor::in_process`),
//! there under `catch_unwind`.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Semaphore};

use futures::StreamExt;

use super::document::{self, Extracted, Kind};
use crate::store::content::Content;

/// Limits of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(60),
            memory_bytes: 1024 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Defaults, overridden by `AKTE_EXTRACT_TIMEOUT_SECS` and `AKTE_EXTRACT_MEMORY_MB`.
    pub fn from_env() -> Limits {
        let mut l = Limits::default();
        if let Some(s) = env_u64("AKTE_EXTRACT_TIMEOUT_SECS") {
            l.timeout = Duration::from_secs(s.max(1));
        }
        if let Some(mb) = env_u64("AKTE_EXTRACT_MEMORY_MB") {
            l.memory_bytes = mb.max(64) * 1024 * 1024;
        }
        l
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What extraction of one item gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No extractor for this type: archived with "no text".
    NoExtractor,
    Done(Box<Extracted>),
    /// Why extraction failed; the original is archived all the same.
    Failed(String),
}

/// A worker's answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Answer {
    Document(Result<Extracted, String>),
    Mail(Result<crate::extract::mail::MailFacts, String>),
}

/// The media type that asks a worker to parse an email.
const MAIL: &str = "message/rfc822";

struct Worker {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
}

enum Mode {
    InProcess,
    Workers {
        exe: PathBuf,
        idle: Mutex<Vec<Worker>>,
        slots: Semaphore,
    },
}

/// Runs extractions: in worker processes, or in-process where there is no worker binary.
pub struct Extractor {
    mode: Mode,
    limits: Limits,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::InProcess => "in-process",
            Mode::Workers { .. } => "workers",
        };
        write!(f, "Extractor({mode}, {:?})", self.limits)
    }
}

impl Extractor {
    /// Extraction in this process, under `catch_unwind`, without a deadline or a memory
    /// cap (tests, and library users without the `akte` binary).
    pub fn in_process() -> Arc<Extractor> {
        Arc::new(Extractor {
            mode: Mode::InProcess,
            limits: Limits::default(),
        })
    }

    /// Up to `workers` worker processes of `exe` (the `akte` binary), started on demand.
    pub fn workers(exe: PathBuf, workers: usize, limits: Limits) -> Arc<Extractor> {
        Arc::new(Extractor {
            mode: Mode::Workers {
                exe,
                idle: Mutex::new(Vec::new()),
                slots: Semaphore::new(workers.max(1)),
            },
            limits,
        })
    }

    /// Workers of the running binary, one per core.
    pub fn for_this_binary() -> Arc<Extractor> {
        match std::env::current_exe() {
            Ok(exe) => {
                tracing::info!(
                    "extraction workers and OCR tools: Landlock {}",
                    super::confine::probe()
                );
                let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
                let workers = env_u64("AKTE_EXTRACT_WORKERS")
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(cores);
                Extractor::workers(exe, workers, Limits::from_env())
            }
            Err(e) => {
                tracing::warn!("extraction runs in-process (no path to this binary: {e})");
                Extractor::in_process()
            }
        }
    }

    /// Extracts text and facts from `content`. Content in a file is streamed to the
    /// worker from disk, never held whole in this process.
    pub async fn extract(
        &self,
        content: &Content,
        media_type: &str,
        file_name: Option<&str>,
    ) -> Outcome {
        let Some(kind) = document::kind_of(media_type, file_name) else {
            return Outcome::NoExtractor;
        };
        let outcome = match &self.mode {
            Mode::Workers { exe, idle, slots } if document::needs_sandbox(kind) => {
                let Ok(_slot) = slots.acquire().await else {
                    return Outcome::Failed("extraction is shutting down".into());
                };
                match self
                    .in_worker(exe, idle, content, media_type, file_name)
                    .await
                {
                    Ok(Answer::Document(r)) => r,
                    Ok(Answer::Mail(_)) => Err("the extractor answered out of turn".into()),
                    Err(e) => Err(e),
                }
            }
            _ => {
                let content = content.clone();
                let job = move || {
                    let bytes = content.to_bytes().map_err(|e| e.to_string())?;
                    guarded(&bytes, kind)
                };
                match tokio::task::spawn_blocking(job).await {
                    Ok(r) => r,
                    Err(e) => Err(format!("extraction task: {e}")),
                }
            }
        };
        match outcome {
            Ok(mut e) => {
                if e.needs_ocr && ocr_possible() {
                    let pdf = kind == Kind::Pdf;
                    let exe = match &self.mode {
                        Mode::Workers { exe, .. } => Some(exe.as_path()),
                        Mode::InProcess => None,
                    };
                    match ocr(content, pdf, self.limits, exe).await {
                        Ok(text) => {
                            e.text = document::finish_text(&text);
                            e.needs_ocr = false;
                        }
                        Err(reason) => return Outcome::Failed(format!("OCR: {reason}")),
                    }
                }
                Outcome::Done(Box::new(e))
            }
            Err(reason) => Outcome::Failed(reason),
        }
    }

    /// Parses a raw email: in a worker (with the limits), or in-process.
    pub async fn parse_mail(
        &self,
        raw: bytes::Bytes,
    ) -> Result<crate::extract::mail::MailFacts, String> {
        match &self.mode {
            Mode::Workers { exe, idle, slots } => {
                let Ok(_slot) = slots.acquire().await else {
                    return Err("extraction is shutting down".into());
                };
                let raw = Content::Memory(raw);
                match self.in_worker(exe, idle, &raw, MAIL, None).await {
                    Ok(Answer::Mail(r)) => r,
                    Ok(Answer::Document(_)) => Err("the extractor answered out of turn".into()),
                    Err(e) => Err(e),
                }
            }
            Mode::InProcess => {
                tokio::task::spawn_blocking(move || crate::extract::mail::parse(&raw))
                    .await
                    .unwrap_or_else(|e| Err(format!("parse task: {e}")))
            }
        }
    }

    async fn in_worker(
        &self,
        exe: &std::path::Path,
        idle: &Mutex<Vec<Worker>>,
        content: &Content,
        media_type: &str,
        file_name: Option<&str>,
    ) -> Result<Answer, String> {
        let pooled = idle.lock().await.pop();
        let mut w = match pooled {
            Some(w) => w,
            None => self.spawn(exe)?,
        };
        let limit = self.limits.timeout;
        let r = tokio::time::timeout(limit, request(&mut w, content, media_type, file_name)).await;
        match r {
            Ok(Ok(answer)) => {
                idle.lock().await.push(w);
                Ok(answer)
            }
            Ok(Err(io)) => {
                // The worker died mid-request: out of memory, or a crash.
                let _ = w.child.kill().await;
                let status = w.child.wait().await.ok();
                Err(format!(
                    "the extractor process died ({}; memory limit {} MiB): {io}",
                    status.map_or("no status".into(), |s| s.to_string()),
                    self.limits.memory_bytes >> 20
                ))
            }
            Err(_) => {
                let _ = w.child.kill().await;
                Err(format!(
                    "timed out after {} s (extractor killed)",
                    limit.as_secs()
                ))
            }
        }
    }

    fn spawn(&self, exe: &std::path::Path) -> Result<Worker, String> {
        let mut cmd = tokio::process::Command::new(exe);
        // A worker parses hostile bytes: it gets no secrets (`AKTE_ADMIN_TOKEN`, `AWS_*`,
        // the store's location) — only what finding its tools and a temporary directory
        // needs — and starts outside the data directory.
        cmd.env_clear();
        for keep in ["PATH", "TMPDIR", "LANG", "LC_ALL"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        let mut child = cmd
            .current_dir(std::env::temp_dir())
            .arg("extract-worker")
            .arg("--memory-bytes")
            .arg(self.limits.memory_bytes.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the extractor {}: {e}", exe.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("extractor without pipes".into());
        };
        Ok(Worker {
            child,
            stdin,
            stdout: tokio::io::BufReader::new(stdout),
        })
    }
}

/// Appends a frame (its length, then its bytes) to `buf`.
fn frame(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    buf.extend_from_slice(b);
}

async fn request(
    w: &mut Worker,
    content: &Content,
    media_type: &str,
    file_name: Option<&str>,
) -> std::io::Result<Answer> {
    // One write for the whole request where the content is in memory: the worker waits
    // in a read, and every write woke it (perf: a bulk import's emails each cost six
    // wake-ups of the worker and as many of this side).
    let mut head = Vec::with_capacity(
        64 + match content {
            Content::Memory(b) => b.len(),
            Content::File(_) => 0,
        },
    );
    frame(&mut head, media_type.as_bytes());
    frame(&mut head, file_name.unwrap_or_default().as_bytes());
    match content {
        Content::Memory(b) => {
            frame(&mut head, b);
            w.stdin.write_all(&head).await?;
        }
        Content::File(_) => {
            // From disk, in chunks: the worker holds the item, this process does not.
            head.extend_from_slice(&content.len().to_le_bytes());
            w.stdin.write_all(&head).await?;
            let mut chunks = content.stream().await.map_err(std::io::Error::other)?;
            let mut sent = 0u64;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                sent += chunk.len() as u64;
                w.stdin.write_all(&chunk).await?;
            }
            if sent != content.len() {
                return Err(std::io::Error::other("the file changed while it was read"));
            }
        }
    }
    w.stdin.flush().await?;
    let mut len = [0u8; 8];
    w.stdout.read_exact(&mut len).await?;
    let n = usize::try_from(u64::from_le_bytes(len)).unwrap_or(usize::MAX);
    if n > 64 * 1024 * 1024 {
        return Err(std::io::Error::other("oversized answer"));
    }
    let mut buf = vec![0u8; n];
    w.stdout.read_exact(&mut buf).await?;
    rmp_serde::from_slice(&buf).map_err(std::io::Error::other)
}

/// Extraction under `catch_unwind`: a parser panic is a failure of this item only.
fn guarded(bytes: &[u8], kind: Kind) -> Result<Extracted, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        document::extract(bytes, kind)
    })) {
        Ok(r) => r,
        Err(_) => Err("the parser crashed on this file".into()),
    }
}

/// `akte extract-worker`: caps its address space, then answers requests until stdin
/// closes.
pub fn worker_main(memory_bytes: u64) -> std::process::ExitCode {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let cap = Rlimit {
        current: Some(memory_bytes),
        maximum: Some(memory_bytes),
    };
    if let Err(e) = setrlimit(Resource::As, cap) {
        eprintln!("extract-worker: cannot set the memory limit: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // No file system, network or signals from here on (stdin and stdout are open).
    if let Err(e) = super::confine::worker() {
        eprintln!("extract-worker: cannot confine itself: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // A panic is answered as a failure; its message must not pollute the protocol.
    std::panic::set_hook(Box::new(|_| {}));
    let mut stdin = std::io::stdin().lock();
    // Answers go out unbuffered, each in one write (stdout's line buffering would split
    // an answer at its last newline byte, and each part wakes the archive's side).
    let mut stdout = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            eprintln!("extract-worker: no stdout: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    loop {
        let Some(media) = read_frame(&mut stdin) else {
            return std::process::ExitCode::SUCCESS;
        };
        let (Some(name), Some(bytes)) = (read_frame(&mut stdin), read_frame(&mut stdin)) else {
            return std::process::ExitCode::FAILURE;
        };
        let media = String::from_utf8_lossy(&media).into_owned();
        let name = String::from_utf8_lossy(&name).into_owned();
        let name = (!name.is_empty()).then_some(name);
        let answer = if media == MAIL {
            // mail::parse runs under catch_unwind itself.
            Answer::Mail(crate::extract::mail::parse(&bytes))
        } else {
            Answer::Document(match document::kind_of(&media, name.as_deref()) {
                Some(kind) => guarded(&bytes, kind),
                None => Ok(Extracted::default()),
            })
        };
        // The answer's length, then the answer: one buffer, written at once.
        let mut out = vec![0u8; 8];
        if rmp_serde::encode::write(&mut out, &answer).is_err() {
            return std::process::ExitCode::FAILURE;
        }
        let len = (out.len() - 8) as u64;
        out[..8].copy_from_slice(&len.to_le_bytes());
        let ok = stdout.write_all(&out);
        if ok.is_err() {
            return std::process::ExitCode::FAILURE;
        }
    }
}

/// Most processes (threads included) an OCR tool may have; counted per user, and not
/// enforced for root (the note in ARCHITECTURE.md says so).
const TOOL_PROCESSES: u64 = 64;

/// `akte confine-exec`: caps memory (`RLIMIT_AS`), processes (`RLIMIT_NPROC`) and core
/// dumps, confines itself with Landlock (read the system and `inputs`, write `work`; see
/// `extract::confine`), then replaces itself with `command`, which inherits all of it.
pub fn confine_exec(
    memory_bytes: u64,
    inputs: &[PathBuf],
    work: &std::path::Path,
    command: &[std::ffi::OsString],
) -> std::process::ExitCode {
    use rustix::process::{Resource, Rlimit, setrlimit};
    use std::os::unix::process::CommandExt;
    let limit = |n: u64| Rlimit {
        current: Some(n),
        maximum: Some(n),
    };
    for (resource, n, what) in [
        (Resource::As, memory_bytes, "memory"),
        (Resource::Nproc, TOOL_PROCESSES, "process"),
        (Resource::Core, 0, "core dump"),
    ] {
        if let Err(e) = setrlimit(resource, limit(n)) {
            eprintln!("confine-exec: cannot set the {what} limit: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let Some((program, args)) = command.split_first() else {
        return std::process::ExitCode::FAILURE;
    };
    let found = find_program(program);
    let inputs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    if let Err(e) = super::confine::tool(found.as_deref(), &inputs, work) {
        eprintln!("confine-exec: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let e = std::process::Command::new(program).args(args).exec();
    eprintln!("confine-exec: {}: {e}", program.to_string_lossy());
    std::process::ExitCode::FAILURE
}

/// Where `PATH` finds `program` (as the exec that follows will).
fn find_program(program: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let p = std::path::Path::new(program);
    if p.components().count() > 1 {
        return Some(p.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|c| {
            c.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn read_frame(r: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 8];
    r.read_exact(&mut len).ok()?;
    let n = usize::try_from(u64::from_le_bytes(len)).ok()?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(n).ok()?;
    buf.resize(n, 0);
    r.read_exact(&mut buf).ok()?;
    Some(buf)
}

static OCR_NOTICE: AtomicBool = AtomicBool::new(false);

/// Whether `program arg` runs and succeeds (a tool on the PATH, e.g. `tesseract
/// --version`).
fn tool_works(program: &str, arg: &str) -> bool {
    std::process::Command::new(program)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `tesseract` is on the PATH.
pub fn tesseract_available() -> bool {
    tool_works("tesseract", "--version")
}

static OCR_AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Whether OCR can run: tesseract installed (checked once). When it is not, a one-time
/// notice says so; such items are archived and say why they have no text.
fn ocr_possible() -> bool {
    let ok = *OCR_AVAILABLE.get_or_init(tesseract_available);
    if !ok && !OCR_NOTICE.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "OCR unavailable: tesseract is not installed (Debian: apt install \
                 tesseract-ocr tesseract-ocr-deu tesseract-ocr-eng poppler-utils); images \
                 and PDFs without a text layer are archived without text"
        );
        eprintln!(
            "notice: OCR unavailable (tesseract not installed); scans are archived without text"
        );
    }
    ok
}

/// OCR of an image or a scanned PDF with `tesseract` (German and English) and, for PDFs,
/// `pdftoppm -r 300`, each a child process under the extraction limits: the memory cap
/// (`RLIMIT_AS`), and one deadline for the whole item, after which the running child is
/// killed. `OMP_THREAD_LIMIT=1`: on two cores it is several times faster.
///
/// With `exe` (the `akte` binary), each tool runs under `akte confine-exec`: Landlock
/// and a process cap besides the memory cap. Each runs in a process group of its own, and
/// the deadline kills the group: children a tool starts go with it.
pub async fn ocr(
    content: &Content,
    pdf: bool,
    limits: Limits,
    exe: Option<&std::path::Path>,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + limits.timeout * 4;
    if !pdf {
        let head = content.head(12).map_err(|e| e.to_string())?;
        if !is_image(&head) {
            return Err("not a readable image (neither PNG, JPEG, GIF, TIFF, BMP nor WebP)".into());
        }
    }
    let dir = tempfile::tempdir().map_err(|e| format!("OCR: {e}"))?;
    let input = match content.path() {
        Some(p) => p.to_path_buf(),
        None => {
            let input = dir.path().join(if pdf { "in.pdf" } else { "in.img" });
            let bytes = content.to_bytes().map_err(|e| e.to_string())?;
            tokio::fs::write(&input, &bytes)
                .await
                .map_err(|e| format!("OCR: {e}"))?;
            input
        }
    };
    let mut images = vec![];
    if pdf {
        let mut cmd = limited_command("pdftoppm", &[&input], dir.path(), limits, exe);
        cmd.args(["-r", "300", "-png"])
            .arg(&input)
            .arg(dir.path().join("page"));
        let out = run_until(cmd, deadline).await?;
        if !out.status.success() {
            return Err(format!("pdftoppm failed: {}", out.status));
        }
        let mut pages: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .map_err(|e| format!("OCR: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "png"))
            .collect();
        pages.sort();
        images.extend(pages);
    } else {
        images.push(input);
    }
    let mut text = String::new();
    for img in images {
        let mut cmd = limited_command("tesseract", &[&img], dir.path(), limits, exe);
        cmd.arg(&img)
            .arg("stdout")
            .args(["-l", "deu+eng"])
            .env("OMP_THREAD_LIMIT", "1");
        let out = run_until(cmd, deadline).await?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            return Err(format!("tesseract failed ({}): {why}", out.status));
        }
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        text.push('\n');
    }
    Ok(text)
}

/// Whether `head` starts like an image tesseract reads.
fn is_image(head: &[u8]) -> bool {
    head.starts_with(b"\x89PNG")
        || head.starts_with(b"\xff\xd8\xff")
        || head.starts_with(b"GIF8")
        || head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
        || head.starts_with(b"BM")
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
}

/// A command for an OCR tool: the worker's environment (nothing but what finding the
/// tool and its data needs), `dir` as its working directory, and the memory cap
/// (`RLIMIT_AS`, inherited by whatever the tool starts) set by util-linux's `prlimit`,
/// which then runs the tool in its own place — so a kill reaches the tool itself.
fn limited_command(
    program: &str,
    inputs: &[&std::path::Path],
    dir: &std::path::Path,
    limits: Limits,
    exe: Option<&std::path::Path>,
) -> tokio::process::Command {
    let mut cmd = if let Some(exe) = exe {
        let mut c = tokio::process::Command::new(exe);
        c.arg("confine-exec")
            .arg(format!("--memory-bytes={}", limits.memory_bytes));
        for input in inputs {
            c.arg("--input").arg(input);
        }
        c.arg("--work").arg(dir).arg("--").arg(program);
        c
    } else if prlimit_available() {
        let mut c = tokio::process::Command::new("prlimit");
        c.arg(format!("--as={}", limits.memory_bytes))
            .arg("--")
            .arg(program);
        c
    } else {
        tokio::process::Command::new(program)
    };
    cmd.env_clear();
    for keep in ["PATH", "TMPDIR", "LANG", "LC_ALL", "TESSDATA_PREFIX"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.current_dir(dir)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

static PRLIMIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Whether `prlimit` (util-linux, on every Debian) can cap OCR's memory; checked once,
/// with a notice when it cannot.
fn prlimit_available() -> bool {
    *PRLIMIT.get_or_init(|| {
        let ok = tool_works("prlimit", "--version");
        if !ok {
            tracing::warn!("prlimit not found: OCR runs with its deadline but no memory cap");
        }
        ok
    })
}

/// Runs `cmd` to its end or until `deadline`, when the child is killed (and reaped).
async fn run_until(
    mut cmd: tokio::process::Command,
    deadline: tokio::time::Instant,
) -> Result<std::process::Output, String> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    // `wait_with_output` owns the child; dropping it on the deadline kills the child
    // (`kill_on_drop`), and tokio reaps it. Its process group goes too.
    match tokio::time::timeout_at(deadline, child.wait_with_output()).await {
        Ok(r) => r.map_err(|e| format!("{program}: {e}")),
        Err(_) => {
            if let Some(g) = group {
                let _ = rustix::process::kill_process_group(g, rustix::process::Signal::KILL);
            }
            Err(format!("{program} timed out (killed)"))
        }
    }
}
