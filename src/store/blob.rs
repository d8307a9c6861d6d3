//! Content-addressed blobs: `blobs/sha256/ab/abcdef…`, create-only, deduplicated.
//!
//! The hash is only known after the last byte, so content is streamed: small content is
//! buffered and written with a conditional create straight to its key; larger content is
//! streamed to `staging/` as a multipart upload while it is hashed, then published with a
//! copy-if-not-exists (a hard link locally, a conditional multipart copy on S3). Memory use
//! stays bounded by the part size, whatever the content size.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use object_store::WriteMultipart;
use sha2::{Digest, Sha256};

use super::{Created, Store, keys};
use crate::error::{Error, Result};

/// Content up to this size is buffered and written in one conditional PUT.
pub const INLINE_LIMIT: usize = 8 * 1024 * 1024;
/// Part size of multipart uploads to staging.
pub(crate) const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub sha256: String,
    pub size: u64,
    /// False when identical content was already stored (deduplicated).
    pub new: bool,
}

/// Stores the bytes of `input` as a blob and returns its hash. `staging_name` must be
/// unique per call (the caller's id source provides it).
pub async fn put_stream<S, E>(store: &Store, staging_name: &str, input: S) -> Result<BlobRef>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: Into<Error>,
{
    let mut input = input;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head = BytesMut::new();

    // Phase 1: buffer up to INLINE_LIMIT.
    let mut spilled = None;
    while let Some(chunk) = input.next().await {
        let chunk = chunk.map_err(Into::into)?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        head.extend_from_slice(&chunk);
        if head.len() > INLINE_LIMIT {
            spilled = Some(head.split().freeze());
            break;
        }
    }

    let Some(first) = spilled else {
        let sha256 = hex::encode(hasher.finalize());
        return put_inline(store, sha256, head.freeze()).await;
    };

    // Phase 2: stream the rest through a staging object.
    let staging = keys::staging(staging_name);
    let upload = store.start_multipart(&staging).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let streamed: Result<()> = async {
        writer.write(&first);
        while let Some(chunk) = input.next().await {
            let chunk = chunk.map_err(Into::into)?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|e| store.err(&staging, e))?;
            writer.write(&chunk);
        }
        Ok(())
    }
    .await;
    if let Err(e) = streamed {
        let _ = writer.abort().await;
        return Err(e);
    }
    writer.finish().await.map_err(|e| store.err(&staging, e))?;

    let sha256 = hex::encode(hasher.finalize());
    store.wait_unreserved(&sha256).await;
    let published = store.copy_new(&staging, &keys::blob(&sha256)).await;
    let checked = match &published {
        // A blob already there is trusted only once its bytes hash to its name: a torn
        // write or damage is healed from this upload (its damaged bytes kept as evidence).
        Ok(Created::Existed) => heal_large(store, &staging, &sha256).await,
        _ => Ok(()),
    };
    let cleaned = store.delete_staging(&staging).await;
    checked?;
    cleaned?;
    let created = published?;
    Ok(BlobRef {
        sha256,
        size,
        new: created == Created::New,
    })
}

/// Checks an existing large blob against its name; when it does not match, keeps its
/// bytes under `quarantine/` and replaces it with the staged upload, which does.
async fn heal_large(store: &Store, staging: &object_store::path::Path, sha256: &str) -> Result<()> {
    let key = keys::blob(sha256);
    let (found, _) = store.sha256_of(&key).await?;
    if found == sha256 {
        return Ok(());
    }
    store.heal_blob_from(sha256, &found, staging).await
}

/// Stores `bytes`, whose SHA-256 is `sha256`, as a blob, durably. (A record staged for
/// a group commit writes its blob with its other objects: `Archive::stage`.)
///
/// A blob that is already there is trusted only if its bytes hash to its name: a write
/// torn by a crash before its batch was synced is healed with these bytes, so that
/// deduplication never links a new record to damaged content.
pub async fn put_inline(store: &Store, sha256: String, bytes: Bytes) -> Result<BlobRef> {
    let key = keys::blob(&sha256);
    let size = bytes.len() as u64;
    store.wait_unreserved(&sha256).await;
    let created = store.put_new(&key, bytes.clone()).await?;
    if created == Created::Existed {
        trust_existing(store, &sha256, bytes).await?;
    }
    Ok(BlobRef {
        sha256,
        size,
        new: created == Created::New,
    })
}

/// After a create-only write of blob `sha256` found one there: it is trusted only if
/// its bytes hash to its name, else healed with `bytes` (which do).
pub(crate) async fn trust_existing(store: &Store, sha256: &str, bytes: Bytes) -> Result<()> {
    let have = store.get(&keys::blob(sha256)).await?;
    if crate::store::codec::sha256_hex(&have) != sha256 {
        store.heal_blob(sha256, have, bytes).await?;
    }
    Ok(())
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io("input", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::sha256_hex;

    fn chunks(data: &[u8], size: usize) -> Vec<std::result::Result<Bytes, Error>> {
        data.chunks(size.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    #[tokio::test]
    async fn small_and_large_blobs_round_trip_and_dedup() {
        let store = Store::open("memory://").unwrap();
        for len in [
            0usize,
            1,
            1000,
            INLINE_LIMIT,
            INLINE_LIMIT + 1,
            3 * INLINE_LIMIT + 7,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let s = futures::stream::iter(chunks(&data, 65536));
            let r = put_stream(&store, &format!("t{len}"), s).await.unwrap();
            assert_eq!(r.sha256, sha256_hex(&data));
            assert_eq!(r.size, len as u64);
            assert!(r.new);
            let back = store.get(&keys::blob(&r.sha256)).await.unwrap();
            assert_eq!(back.as_ref(), &data[..]);
            let again = put_stream(
                &store,
                &format!("u{len}"),
                futures::stream::iter(chunks(&data, 4096)),
            )
            .await
            .unwrap();
            assert!(!again.new, "second put of {len} bytes must dedup");
        }
        let staged: Vec<_> = store.list_sorted(&keys::staging("")).await.unwrap();
        assert!(staged.is_empty(), "staging must be cleaned up");
    }

    #[tokio::test]
    async fn a_torn_blob_is_healed_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let data = Bytes::from_static(b"the whole content of an attachment");
        let sha = sha256_hex(&data);
        // A crash before the batch was synced left the file short.
        let path = dir.path().join(keys::blob(&sha).as_ref());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"the whole").unwrap();
        let r = put_inline(&store, sha.clone(), data.clone()).await.unwrap();
        assert!(!r.new);
        store.sync_deferred().await.unwrap();
        assert_eq!(store.get(&keys::blob(&sha)).await.unwrap(), data);
        // The damaged bytes are kept as evidence.
        let kept = store.list_sorted(&keys::quarantine_prefix()).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            store.get(&kept[0].location).await.unwrap().as_ref(),
            b"the whole"
        );
        // An intact blob is left as it is.
        let again = put_inline(&store, sha.clone(), data.clone()).await.unwrap();
        assert!(!again.new);
        let staged: Vec<_> = store.list_sorted(&keys::staging("")).await.unwrap();
        assert!(staged.is_empty(), "staging must be cleaned up");
    }

    #[tokio::test]
    async fn a_damaged_large_blob_is_checked_by_hash_and_healed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        let data: Vec<u8> = (0..INLINE_LIMIT + 4096).map(|i| (i % 251) as u8).collect();
        let sha = sha256_hex(&data);
        // Same size, one byte changed: a size check would trust it.
        let mut bad = data.clone();
        bad[100] ^= 1;
        let path = dir.path().join(keys::blob(&sha).as_ref());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bad).unwrap();
        let one = futures::stream::once(async { Ok::<_, Error>(Bytes::from(data.clone())) });
        let r = put_stream(&store, "x", Box::pin(one)).await.unwrap();
        assert!(!r.new);
        assert_eq!(
            store.get(&keys::blob(&sha)).await.unwrap().as_ref(),
            &data[..]
        );
        let kept = store.list_sorted(&keys::quarantine_prefix()).await.unwrap();
        assert_eq!(kept.len(), 1, "the damaged copy is kept");
        assert_eq!(
            store.get(&kept[0].location).await.unwrap().as_ref(),
            &bad[..]
        );
    }

    #[tokio::test]
    async fn an_upload_onto_a_reserved_blob_waits_and_then_stores_its_own_copy() {
        let store = Store::open("memory://").unwrap();
        let data = Bytes::from_static(b"bytes a disposal is about to delete");
        let sha = sha256_hex(&data);
        put_inline(&store, sha.clone(), data.clone()).await.unwrap();
        // A disposal decided to delete the blob and reserved it.
        let reservation = store
            .reserve_blobs(async { Ok(vec![sha.clone()]) })
            .await
            .unwrap();
        let (s2, d2, sha2) = (store.clone(), data.clone(), sha.clone());
        let upload = tokio::spawn(async move { put_inline(&s2, sha2, d2).await });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!upload.is_finished(), "the upload waits for the disposal");
        store.dispose_blob(&sha).await.unwrap();
        drop(reservation);
        let r = upload.await.unwrap().unwrap();
        assert!(r.new, "its own copy, not the deleted blob");
        assert_eq!(store.get(&keys::blob(&sha)).await.unwrap(), data);
    }
}
