//! Node-local files of derived state (the ledger, the catalog): redb databases beside the
//! store, rebuilt from the journal whenever they cannot be trusted.

use std::path::Path;

use redb::Database;

use crate::error::{Error, Result};

/// A derived-state file as opened.
pub enum Opened {
    /// The file as found (or created empty).
    Found(Database),
    /// The file could not be opened (why): it was set aside as `<file>.damaged` and this
    /// one is new.
    Replaced(Database, String),
    /// Another process holds the file.
    Held,
}

/// Opens (or creates) the redb file at `path` with a page cache of `cache` bytes.
pub fn open(path: &Path, cache: usize) -> Result<Opened> {
    let fail = |e: &dyn std::fmt::Display| Error::Internal(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    }
    let open = || Database::builder().set_cache_size(cache).create(path);
    match open() {
        Ok(db) => Ok(Opened::Found(db)),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Ok(Opened::Held),
        Err(e) => {
            let why = e.to_string();
            let mut aside = path.as_os_str().to_owned();
            aside.push(".damaged");
            std::fs::rename(path, &aside).map_err(|e| Error::io(path.display(), e))?;
            Ok(Opened::Replaced(open().map_err(|e| fail(&e))?, why))
        }
    }
}
