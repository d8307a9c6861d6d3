//! Landlock confinement of the processes that touch outside bytes: the extraction
//! workers and the OCR tools. Landlock (Linux ≥ 5.13) restricts a thread and everything
//! it later starts; it is applied by the process itself, before it reads a byte of
//! input, and cannot be lifted. Where the kernel lacks it (or parts of it), the best the
//! kernel offers is applied and [`Confinement`] says what that was.
//!
//! - A worker ([`worker`]) needs nothing but its stdin and stdout, which are open before
//!   it confines itself: no file may be opened, read, written or executed, no TCP
//!   connection made or port bound, no signal sent and no abstract socket reached
//!   outside its own domain.
//! - An OCR tool ([`tool`]) reads the system's programs, libraries and data (`/usr`,
//!   `/lib*`, `/bin`, `/sbin`, `/etc`), its input file and its own `/proc` entry, and
//!   writes its working directory only; no network, no signals outside its domain. Not
//!   the store, not the spool of other uploads, not another process's `/proc` entry (the
//!   server's environment holds secrets).

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

/// The newest Landlock ABI this code asks for; older kernels give what they have.
const ABI_WANTED: ABI = ABI::V6;

/// What the kernel enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    /// Every restriction asked for.
    Full,
    /// Some (an older Landlock ABI: e.g. files but not the network).
    Partial,
    /// None: the kernel has no Landlock (or it is disabled).
    None,
}

impl std::fmt::Display for Confinement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Confinement::Full => "fully enforced",
            Confinement::Partial => "partly enforced (the kernel's Landlock is older)",
            Confinement::None => "not enforced (the kernel has no Landlock)",
        })
    }
}

fn status(s: RulesetStatus) -> Confinement {
    match s {
        RulesetStatus::FullyEnforced => Confinement::Full,
        RulesetStatus::PartiallyEnforced => Confinement::Partial,
        RulesetStatus::NotEnforced => Confinement::None,
    }
}

fn base() -> Result<landlock::RulesetCreated, String> {
    Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI_WANTED))
        .and_then(|r| r.handle_access(AccessNet::from_all(ABI_WANTED)))
        .and_then(|r| r.scope(Scope::from_all(ABI_WANTED)))
        .and_then(|r| r.create())
        .map_err(|e| format!("landlock: {e}"))
}

/// Confines the calling thread (and whatever it starts) as an extraction worker: no file
/// system, no network, no signals out.
pub fn worker() -> Result<Confinement, String> {
    base()?
        .restrict_self()
        .map(|s| status(s.ruleset))
        .map_err(|e| format!("landlock: {e}"))
}

/// The system directories a tool reads and executes from (those that exist).
const SYSTEM: [&str; 7] = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/opt"];

/// Confines the calling thread as an OCR tool about to be executed: read (and execute)
/// the system and `program` itself (wherever `PATH` found it), read `inputs`, read and
/// write `work`.
pub fn tool(program: Option<&Path>, inputs: &[&Path], work: &Path) -> Result<Confinement, String> {
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    let read = AccessFs::from_read(ABI_WANTED);
    let mut ruleset = base()?;
    for dir in SYSTEM.iter().map(Path::new).filter(|p| p.exists()) {
        ruleset = ruleset
            .add_rule(PathBeneath::new(
                PathFd::new(dir).map_err(|e| e.to_string())?,
                read,
            ))
            .map_err(err)?;
    }
    // Its own /proc entry (a tool may read its limits or maps); `/proc/self` names this
    // process, which the tool becomes by exec.
    if let Ok(fd) = PathFd::new("/proc/self") {
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, AccessFs::ReadFile | AccessFs::ReadDir))
            .map_err(err)?;
    }
    // OpenMP reads the CPU topology.
    if let Ok(fd) = PathFd::new("/sys/devices/system/cpu") {
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, AccessFs::ReadFile | AccessFs::ReadDir))
            .map_err(err)?;
    }
    if let Some(p) = program {
        let fd = PathFd::new(p).map_err(|e| format!("{}: {e}", p.display()))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, AccessFs::ReadFile | AccessFs::Execute))
            .map_err(err)?;
    }
    for input in inputs {
        let fd = PathFd::new(input).map_err(|e| format!("{}: {e}", input.display()))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, AccessFs::ReadFile))
            .map_err(err)?;
    }
    let fd = PathFd::new(work).map_err(|e| format!("{}: {e}", work.display()))?;
    ruleset = ruleset
        .add_rule(PathBeneath::new(fd, AccessFs::from_all(ABI_WANTED)))
        .map_err(err)?;
    for null in ["/dev/null", "/dev/urandom"] {
        if let Ok(fd) = PathFd::new(null) {
            ruleset = ruleset
                .add_rule(PathBeneath::new(
                    fd,
                    AccessFs::ReadFile | AccessFs::WriteFile,
                ))
                .map_err(err)?;
        }
    }
    ruleset
        .restrict_self()
        .map(|s| status(s.ruleset))
        .map_err(err)
}

/// What this kernel enforces for a worker, found out on a thread of its own (Landlock
/// confines the calling thread only, and that thread ends here).
pub fn probe() -> Confinement {
    std::thread::spawn(|| worker().unwrap_or(Confinement::None))
        .join()
        .unwrap_or(Confinement::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread of its own (the confinement ends with it).
    fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(f).join().expect("thread")
    }

    #[test]
    fn a_confined_worker_opens_no_file_and_connects_nowhere() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("secret");
        std::fs::write(&file, b"AKTE_ADMIN_TOKEN=x").expect("write");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (c, read, wrote, connected) = on_thread(move || {
            let c = worker().expect("landlock");
            let read = std::fs::read(&file).is_ok();
            let wrote = std::fs::write(file.with_extension("new"), b"x").is_ok();
            let connected = std::net::TcpStream::connect(addr).is_ok();
            (c, read, wrote, connected)
        });
        if c == Confinement::None {
            eprintln!("skipped: this kernel has no Landlock ({c})");
            return;
        }
        assert!(!read, "a confined worker read a file");
        assert!(!wrote, "a confined worker wrote a file");
        if c == Confinement::Full {
            assert!(!connected, "a confined worker connected over TCP");
        }
        // Unconfined, the same reads work: the test can fail.
        assert!(std::fs::read(dir.path().join("secret")).is_ok());
    }

    #[test]
    fn a_confined_tool_reads_its_input_and_writes_only_its_directory() {
        let outside = tempfile::tempdir().expect("dir");
        let input = outside.path().join("scan.png");
        std::fs::write(&input, b"\x89PNG").expect("write");
        let other = outside.path().join("other-upload");
        std::fs::write(&other, b"someone else's").expect("write");
        let work = tempfile::tempdir().expect("dir");
        let work_path = work.path().to_path_buf();
        let (c, input_ok, other_ok, work_ok, system_ok) = on_thread(move || {
            let c = tool(None, &[&input], &work_path).expect("landlock");
            (
                c,
                std::fs::read(&input).is_ok(),
                std::fs::read(&other).is_ok(),
                std::fs::write(work_path.join("page-1.png"), b"x").is_ok(),
                std::fs::metadata("/usr/bin").is_ok() && std::fs::read("/etc/hostname").is_ok(),
            )
        });
        if c == Confinement::None {
            eprintln!("skipped: this kernel has no Landlock ({c})");
            return;
        }
        assert!(input_ok, "the tool must read its input");
        assert!(work_ok, "the tool must write its directory");
        assert!(system_ok, "the tool must read the system");
        assert!(!other_ok, "the tool read a file that is not its input");
    }
}
