//! Crypto-shredding of personal data (DESIGN §2.9).
//!
//! Each party has its own 256-bit data key under `keys/<party-id>`. Personal fields of
//! every revision of that party are sealed with it (AES-256-GCM, a fresh 96-bit nonce per
//! seal, the party id as associated data so a sealed block cannot be moved to another
//! party). Destroying the key (a journaled erasure, built with retention) makes every
//! revision's personal data unreadable at once, while the revisions themselves — and
//! their hashes — stay as they were.
//!
//! The key store is the one deliberate exception to write-once: keys are created with a
//! conditional create and never overwritten; the only deletion is `destroy`, called by a
//! journaled erasure.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::store::{Created, Store, codec, keys};

/// Tells which keys a journaled erasure or disposal destroyed — in this process or any
/// other (the journal, which lives a layer above the store, implements it).
pub trait Destroyed: Send + Sync + std::fmt::Debug {
    /// Whether the key `id` was destroyed, after catching up with other processes.
    fn is_destroyed<'a>(
        &'a self,
        id: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + Send + 'a>>;
}

/// A sealed (encrypted and authenticated) block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// `aes-256-gcm`
    pub alg: String,
    /// Hex of the 12-byte nonce.
    pub nonce: String,
    /// Hex of ciphertext ‖ tag.
    pub data: String,
}

/// The stored form of a data key (format 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeyFile {
    format: u32,
    party: String,
    /// Hex of 32 random bytes.
    key: String,
}

/// Parses a stored key file: the id it belongs to and the key.
pub fn parse_key_file(path: &str, bytes: &[u8]) -> Result<(String, [u8; 32])> {
    let file: KeyFile = codec::decode(path, bytes)?;
    // Key files are not covered by any digest: accept only their one exact spelling.
    if file.format != 1
        || file.key.len() != 64
        || !file
            .key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::CorruptObject {
            key: path.to_string(),
            reason: "not a valid key file".into(),
        });
    }
    let key: [u8; 32] = hex::decode(&file.key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| Error::CorruptObject {
            key: path.to_string(),
            reason: "not a 256-bit key".into(),
        })?;
    Ok((file.party, key))
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no random source: {e}")))?;
    Ok(b)
}

fn aead(key: &[u8; 32]) -> Result<LessSafeKey> {
    let k =
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::Internal("bad key length".into()))?;
    Ok(LessSafeKey::new(k))
}

pub fn seal(key: &[u8; 32], party: &str, plaintext: &[u8]) -> Result<Sealed> {
    let nonce = random::<NONCE_LEN>()?;
    let mut data = plaintext.to_vec();
    aead(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(party.as_bytes()),
            &mut data,
        )
        .map_err(|_| Error::Internal("sealing failed".into()))?;
    Ok(Sealed {
        alg: "aes-256-gcm".into(),
        nonce: hex::encode(nonce),
        data: hex::encode(data),
    })
}

pub fn open(key: &[u8; 32], party: &str, sealed: &Sealed) -> Result<Vec<u8>> {
    let corrupt = |reason: &str| Error::CorruptObject {
        key: format!("personal data of party {party}"),
        reason: reason.to_string(),
    };
    if sealed.alg != "aes-256-gcm" {
        return Err(corrupt("unknown algorithm"));
    }
    let nonce: [u8; NONCE_LEN] = hex::decode(&sealed.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| corrupt("bad nonce"))?;
    let mut data = hex::decode(&sealed.data).map_err(|_| corrupt("bad ciphertext encoding"))?;
    let plain = aead(key)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(party.as_bytes()),
            &mut data,
        )
        .map_err(|_| corrupt("does not authenticate with the party's key"))?;
    Ok(plain.to_vec())
}

/// Keys held in memory at most (then the cache starts afresh): some 10 MB.
const KEY_CACHE: usize = 65_536;

/// The per-party key store.
#[derive(Debug)]
pub struct KeyStore {
    store: Store,
    /// The journal tells which keys an erasure or disposal destroyed, in this process or
    /// any other: such a key is dropped from the cache and never served again.
    journal: Arc<dyn Destroyed>,
    cache: Mutex<HashMap<String, [u8; 32]>>,
}

impl KeyStore {
    pub fn new(store: Store, journal: Arc<dyn Destroyed>) -> KeyStore {
        KeyStore {
            store,
            journal,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The party's key, created (durably, create-only) if it has none yet.
    pub async fn get_or_create(&self, party: &str) -> Result<[u8; 32]> {
        if let Some(k) = self.get(party).await? {
            return Ok(k);
        }
        if self.journal.is_destroyed(party).await? {
            // Erased (or disposed): a destroyed key is never made again.
            return Err(Error::Erased {
                id: party.to_string(),
            });
        }
        let key = random::<32>()?;
        let file = KeyFile {
            format: 1,
            party: party.to_string(),
            key: hex::encode(key),
        };
        match self
            .store
            .put_new(&keys::party_key(party), Bytes::from(codec::encode(&file)?))
            .await?
        {
            Created::New => {
                self.cache.lock().await.insert(party.to_string(), key);
                Ok(key)
            }
            // Someone else created it first: use theirs, never replace it.
            Created::Existed => self
                .get(party)
                .await?
                .ok_or_else(|| Error::Internal(format!("key of party {party} vanished"))),
        }
    }

    /// A new key for a new object `id` (a record id just minted; no lookup as
    /// `get_or_create` makes, and not cached: a bulk import must not grow memory with
    /// every record): the key, and the file that stores it under its path, for the
    /// caller to create-only (`Archive::stage` does, with the record's other writes),
    /// then to check with [`Self::fresh_created`].
    pub fn fresh(id: &str) -> Result<([u8; 32], Path, Bytes)> {
        let key = random::<32>()?;
        let file = Bytes::from(codec::encode(&KeyFile {
            format: 1,
            party: id.to_string(),
            key: hex::encode(key),
        })?);
        Ok((key, keys::party_key(id), file))
    }

    /// Whether the create-only write of a [`Self::fresh`] key file made it (an id is new:
    /// a key already there is an error, never replaced).
    pub fn fresh_created(id: &str, created: Created) -> Result<()> {
        match created {
            Created::New => Ok(()),
            Created::Existed => Err(Error::Internal(format!("the key of {id} exists already"))),
        }
    }

    /// Destroys a party's key: crypto-shredding. Only `Parties::erase` calls this, after
    /// the erasure revision is journaled.
    pub(crate) async fn destroy(&self, party: &str) -> Result<()> {
        self.cache.lock().await.remove(party);
        self.store.destroy_key(party).await
    }

    /// The party's key, or `None` if it has none (never created, or erased).
    pub async fn get(&self, party: &str) -> Result<Option<[u8; 32]>> {
        if self.journal.is_destroyed(party).await? {
            self.cache.lock().await.remove(party);
            return Ok(None);
        }
        if let Some(k) = self.cache.lock().await.get(party) {
            return Ok(Some(*k));
        }
        let key_path = keys::party_key(party);
        let Some(bytes) = self.store.get_opt(&key_path).await? else {
            return Ok(None);
        };
        let (owner, key) = parse_key_file(key_path.as_ref(), &bytes)?;
        if owner != party {
            return Err(Error::CorruptObject {
                key: key_path.to_string(),
                reason: "not a valid key for this party".into(),
            });
        }
        let mut cache = self.cache.lock().await;
        if cache.len() >= KEY_CACHE {
            // Bounded: keys of records read once (a rebuild, a reindex) must not stay.
            cache.clear();
        }
        cache.insert(party.to_string(), key);
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_key_and_party() {
        let k1 = [7u8; 32];
        let k2 = [8u8; 32];
        let s = seal(&k1, "p1", b"Erika Mustermann").unwrap();
        assert_eq!(open(&k1, "p1", &s).unwrap(), b"Erika Mustermann");
        assert!(open(&k2, "p1", &s).is_err());
        assert!(open(&k1, "p2", &s).is_err(), "bound to the party");
        assert!(!s.data.contains(&hex::encode("Erika")));
    }

    #[tokio::test]
    async fn keys_are_created_once_and_kept() {
        let store = Store::open("memory://").unwrap();
        let journal = Arc::new(crate::audit::journal::Journal::new(
            store.clone(),
            Arc::new(crate::clock::SystemClock),
        ));
        let ks = KeyStore::new(store.clone(), journal.clone());
        assert!(ks.get("p").await.unwrap().is_none());
        let a = ks.get_or_create("p").await.unwrap();
        let fresh = KeyStore::new(store, journal);
        assert_eq!(fresh.get_or_create("p").await.unwrap(), a);
    }
}
