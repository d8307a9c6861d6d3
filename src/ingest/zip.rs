//! Unpacking an uploaded zip (`POST /v1/imports`) for the import: bounded in entries and
//! in bytes (zip bombs), entries kept inside the target directory.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A zip may unpack to at most this many times its own size (zip bombs).
pub const RATIO: u64 = 20;
/// A zip may hold at most this many entries (millions of empty ones fill memory and
/// inodes without counting towards the size cap).
pub const MAX_ENTRIES: usize = 100_000;

/// Unpacks `zip` into `target`, refusing entries that would leave it and stopping once
/// `cap` bytes are written.
pub fn unzip(zip: &Path, target: &Path, cap: u64) -> Result<()> {
    let refused = |reason: String| Error::invalid("zip", reason);
    let f = std::fs::File::open(zip).map_err(|e| Error::io(zip.display(), e))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| refused(format!("not a readable zip: {e}")))?;
    std::fs::create_dir_all(target).map_err(|e| Error::io(target.display(), e))?;
    if z.len() > MAX_ENTRIES {
        return Err(refused(format!(
            "the zip holds {} entries (at most {MAX_ENTRIES}); nothing was imported",
            z.len()
        )));
    }
    let mut written = 0u64;
    for i in 0..z.len() {
        let entry = z
            .by_index(i)
            .map_err(|e| refused(format!("zip entry {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        // An entry whose path would leave the archive (`../`) keeps only its file name.
        let rel = entry.enclosed_name().unwrap_or_else(|| {
            let base = entry.name().rsplit(['/', '\\']).next().unwrap_or("unnamed");
            let name = crate::extract::mail::sanitize_file_name(base);
            PathBuf::from("outside").join(if name.is_empty() {
                "unnamed".into()
            } else {
                name
            })
        });
        let rel: PathBuf = rel
            .components()
            .map(|c| crate::extract::mail::sanitize_file_name(&c.as_os_str().to_string_lossy()))
            .filter(|c| !c.is_empty())
            .collect();
        let path = target.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
        }
        let mut out = std::fs::File::create(&path).map_err(|e| Error::io(path.display(), e))?;
        let n = std::io::copy(&mut entry.take(cap - written + 1), &mut out)
            .map_err(|e| Error::io(path.display(), e))?;
        written += n;
        if written > cap {
            return Err(refused(format!(
                "the zip unpacks to more than {RATIO} times its size (zip bomb?); nothing was \
                 imported"
            )));
        }
    }
    Ok(())
}
