//! Encoding of persisted structures and the hashes over them.
//!
//! Every persisted structure is MessagePack with named fields (`rmp_serde::to_vec_named`),
//! so that adding an optional field does not break old readers. Decoding is strict:
//! the bytes must be exactly what encoding the decoded value yields again. That makes
//! the encoding canonical, so any changed byte either fails to decode, fails this check,
//! or changes a value that a hash covers.

use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The all-zero hash that the first journal entry points back to.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| Error::Internal(format!("encode: {e}")))
}

/// Decodes `bytes` read from `key` and insists that they are the canonical encoding.
pub fn decode<T: Serialize + DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    let value: T = rmp_serde::from_slice(bytes).map_err(|e| Error::CorruptObject {
        key: key.to_string(),
        reason: format!("cannot decode: {e}"),
    })?;
    let again = encode(&value)?;
    if again != bytes {
        return Err(Error::CorruptObject {
            key: key.to_string(),
            reason: "not in canonical encoding (bytes changed after writing)".into(),
        });
    }
    Ok(value)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256(prev ‖ body)`, with `prev` given as hex (the chain link of the journal).
pub fn chain_hash(prev_hex: &str, body: &[u8]) -> Result<String> {
    let prev = hex::decode(prev_hex).map_err(|e| Error::invalid("prev_hash", e.to_string()))?;
    let mut h = Sha256::new();
    h.update(&prev);
    h.update(body);
    Ok(hex::encode(h.finalize()))
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct T {
        a: u32,
        b: String,
    }

    #[test]
    fn round_trips() {
        let t = T {
            a: 7,
            b: "x".into(),
        };
        let bytes = encode(&t).unwrap();
        assert_eq!(decode::<T>("k", &bytes).unwrap(), t);
    }

    #[test]
    fn rejects_non_canonical_integer_encoding() {
        // {"a": u32 7 encoded as uint32, "b": "x"} decodes to the same value but is not canonical.
        let mut bytes = vec![0x82, 0xa1, b'a', 0xce, 0, 0, 0, 7, 0xa1, b'b', 0xa1, b'x'];
        assert!(decode::<T>("k", &bytes).is_err());
        bytes = encode(&T {
            a: 7,
            b: "x".into(),
        })
        .unwrap();
        assert!(decode::<T>("k", &bytes).is_ok());
    }

    #[test]
    fn sha256_of_empty_is_known() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
