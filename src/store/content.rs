//! The bytes of one item on its way through ingest: in memory (small items, email
//! parts), or in a file (an upload spooled to disk, a file archived from the command
//! line). A file is read in chunks wherever the bytes go — hashing, the extraction
//! worker, the blob — so an item of any size never sits whole in the server's memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Chunk size of reads from a file.
const CHUNK: usize = 256 * 1024;

/// Where an item's bytes are.
#[derive(Debug, Clone)]
pub enum Content {
    Memory(Bytes),
    File(Arc<FileContent>),
}

/// Bytes in a file: a spooled upload (deleted when the last handle goes) or a file the
/// caller owns.
#[derive(Debug)]
pub struct FileContent {
    path: PathBuf,
    size: u64,
    /// SHA-256 (hex), once known: computed while spooling, or on the first request.
    sha256: std::sync::OnceLock<String>,
    /// The spool file, removed on drop.
    _temp: Option<tempfile::TempPath>,
}

impl Content {
    /// A file the caller owns (`akte archive`, `akte import`); read, never removed.
    pub fn file(path: &Path) -> Result<Content> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path.display(), e))?;
        if !meta.is_file() {
            return Err(Error::invalid(
                "file",
                format!("{} is not a regular file", path.display()),
            ));
        }
        Ok(Content::File(Arc::new(FileContent {
            path: path.to_path_buf(),
            size: meta.len(),
            sha256: Default::default(),
            _temp: None,
        })))
    }

    /// A spooled upload of `size` bytes hashing to `sha256`, removed when the last clone
    /// of this content is dropped.
    fn spooled(temp: tempfile::TempPath, size: u64, sha256: String) -> Content {
        Content::File(Arc::new(FileContent {
            path: temp.to_path_buf(),
            size,
            sha256: sha256.into(),
            _temp: Some(temp),
        }))
    }

    pub fn len(&self) -> u64 {
        match self {
            Content::Memory(b) => b.len() as u64,
            Content::File(f) => f.size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file the bytes are in, if they are in one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Content::Memory(_) => None,
            Content::File(f) => Some(&f.path),
        }
    }

    /// The first `n` bytes at most (media-type sniffing).
    pub fn head(&self, n: usize) -> Result<Bytes> {
        match self {
            Content::Memory(b) => Ok(b.slice(..b.len().min(n))),
            Content::File(f) => {
                use std::io::Read;
                let file =
                    std::fs::File::open(&f.path).map_err(|e| Error::io(f.path.display(), e))?;
                let mut buf = Vec::with_capacity(n.min(CHUNK));
                file.take(n as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::io(f.path.display(), e))?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// All the bytes in memory: for what is small by construction (a memory item), or
    /// for the in-process extractor of tests and library users.
    pub fn to_bytes(&self) -> Result<Bytes> {
        match self {
            Content::Memory(b) => Ok(b.clone()),
            Content::File(f) => std::fs::read(&f.path)
                .map(Bytes::from)
                .map_err(|e| Error::io(f.path.display(), e)),
        }
    }

    /// SHA-256 (hex): known from spooling, else computed on the blocking pool (once).
    pub async fn sha256(&self) -> Result<String> {
        if let Content::File(f) = self
            && let Some(h) = f.sha256.get()
        {
            return Ok(h.clone());
        }
        let c = self.clone();
        tokio::task::spawn_blocking(move || match &c {
            Content::Memory(b) => Ok(crate::store::codec::sha256_hex(b)),
            Content::File(f) => {
                use std::io::Read;
                let mut file =
                    std::fs::File::open(&f.path).map_err(|e| Error::io(f.path.display(), e))?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = file
                        .read(&mut buf)
                        .map_err(|e| Error::io(f.path.display(), e))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                Ok(f.sha256.get_or_init(|| hex::encode(h.finalize())).clone())
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("hash task: {e}")))?
    }

    /// The bytes as a stream of chunks.
    pub async fn stream(
        &self,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + Unpin + 'static> {
        let s: futures::stream::BoxStream<'static, Result<Bytes>> = match self {
            Content::Memory(b) => {
                futures::stream::once(futures::future::ready(Ok(b.clone()))).boxed()
            }
            Content::File(f) => {
                let file = tokio::fs::File::open(&f.path)
                    .await
                    .map_err(|e| Error::io(f.path.display(), e))?;
                let path = f.path.clone();
                // Keep the spool file alive while it is read.
                let keep = f.clone();
                tokio_util::io::ReaderStream::with_capacity(file, CHUNK)
                    .map_err(move |e| {
                        let _ = &keep;
                        Error::io(path.display(), e)
                    })
                    .boxed()
            }
        };
        Ok(s)
    }
}

/// Writes `input` to a new spool file in `dir` while counting and hashing it; the file is removed
/// when the returned content is dropped. An error of the input (a cut-off upload, a size
/// limit) is returned and leaves nothing behind.
pub async fn spool<S>(dir: &Path, input: S) -> Result<Content>
where
    S: Stream<Item = Result<Bytes>> + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let temp = tempfile::Builder::new()
        .prefix("akte-upload-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir.display(), e))?
        .into_temp_path();
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&temp)
        .await
        .map_err(|e| Error::io(temp.display(), e))?;
    let mut input = input;
    let mut size = 0u64;
    let mut hash = Sha256::new();
    while let Some(chunk) = input.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        hash.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io(temp.display(), e))?;
    }
    file.flush()
        .await
        .map_err(|e| Error::io(temp.display(), e))?;
    drop(file);
    Ok(Content::spooled(temp, size, hex::encode(hash.finalize())))
}
