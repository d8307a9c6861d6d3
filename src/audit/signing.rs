//! Signed checkpoints (issue #18, first part): an Ed25519 key held outside the store signs
//! every checkpoint of the journal's head, so that an operator who controls the store can
//! neither delete checkpoints unnoticed nor write new ones after cutting the journal back —
//! once a signed checkpoint has been anchored somewhere else (`akte anchor`), `verify
//! --anchor` proves the journal still holds it.
//!
//! The key is a PKCS#8 file readable only by the server's user (`--signing-key FILE`,
//! `AKTE_SIGNING_KEY`); [`Signer`] is the seam for a key in an HSM or KMS later. What is
//! signed is [`message`]: a fixed prefix, the sequence number, the head hash and the time,
//! one per line — easy to re-check with any Ed25519 tool.

use std::path::Path;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A checkpoint's signature: the public key that made it and the signature, both hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointSignature {
    /// Ed25519 public key (32 bytes, hex).
    pub key: String,
    /// Ed25519 signature of [`message`] (64 bytes, hex).
    pub sig: String,
}

/// The bytes a checkpoint's signature covers.
pub fn message(seq: u64, hash: &str, time: DateTime<Utc>) -> Vec<u8> {
    format!(
        "akte-checkpoint-1\n{seq}\n{hash}\n{}\n",
        time.to_rfc3339_opts(SecondsFormat::Nanos, true)
    )
    .into_bytes()
}

/// The journal action that hands checkpoint signing from one key to the next.
pub const ROTATE_ACTION: &str = "signing.rotate";

/// A key rotation as journaled (the entry's detail, JSON): both keys sign the hand-over,
/// so that whoever trusts the old key trusts the new one and whoever trusts the new key
/// trusts the checkpoints the old one signed before — and nobody without both private
/// keys can make a key trusted by journaling a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// The key signing checkpoints until now (hex).
    pub old: String,
    /// The key signing them from now on (hex).
    pub new: String,
    /// The old key's signature of [`rotation_message`] (hex).
    pub sig: String,
    /// The new key's signature of the same (hex): it accepts the hand-over.
    pub new_sig: String,
}

impl Rotation {
    /// `old` hands over to `new`.
    pub fn sign(old: &Signer, new: &Signer) -> Rotation {
        let msg = rotation_message(old.public_hex(), new.public_hex());
        Rotation {
            old: old.public_hex().to_string(),
            new: new.public_hex().to_string(),
            sig: old.sign(&msg).sig,
            new_sig: new.sign(&msg).sig,
        }
    }

    /// Whether both keys signed this hand-over.
    pub fn valid(&self) -> bool {
        let msg = rotation_message(&self.old, &self.new);
        let by = |key: &str, sig: &str| {
            valid(
                &msg,
                &CheckpointSignature {
                    key: key.to_string(),
                    sig: sig.to_string(),
                },
            )
        };
        by(&self.old, &self.sig) && by(&self.new, &self.new_sig)
    }
}

/// `trusted` with every key a valid rotation links to a trusted key, either way.
pub fn trusted_through(trusted: &[String], rotations: &[Rotation]) -> Vec<String> {
    let valid: Vec<&Rotation> = rotations.iter().filter(|r| r.valid()).collect();
    let mut out = trusted.to_vec();
    loop {
        let before = out.len();
        for r in &valid {
            if out.contains(&r.old) && !out.contains(&r.new) {
                out.push(r.new.clone());
            } else if out.contains(&r.new) && !out.contains(&r.old) {
                out.push(r.old.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// The bytes a rotation's signature covers.
pub fn rotation_message(old: &str, new: &str) -> Vec<u8> {
    format!("akte-key-rotation-1\n{old}\n{new}\n").into_bytes()
}

/// A short name of a public key: the first 16 hex digits of its SHA-256.
pub fn fingerprint(public_hex: &str) -> String {
    let bytes = hex::decode(public_hex).unwrap_or_default();
    crate::store::codec::sha256_hex(&bytes)[..16].to_string()
}

/// Whether `sig` is a valid signature of `msg` by `sig.key`.
pub fn valid(msg: &[u8], sig: &CheckpointSignature) -> bool {
    let (Ok(key), Ok(s)) = (hex::decode(&sig.key), hex::decode(&sig.sig)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(msg, &s)
        .is_ok()
}

/// Signs checkpoints.
pub struct Signer {
    pair: Ed25519KeyPair,
    public_hex: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", fingerprint(&self.public_hex))
    }
}

impl Signer {
    /// Loads the key at `path`, or creates one there (owner-only) when there is none.
    /// Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Signer, bool)> {
        match std::fs::read(path) {
            Ok(bytes) => Ok((Signer::from_pkcs8(&bytes, path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| Error::Internal("generating an Ed25519 key failed".into()))?;
                write_private(path, doc.as_ref())?;
                Ok((Signer::from_pkcs8(doc.as_ref(), path)?, true))
            }
            Err(e) => Err(Error::io(path.display(), e)),
        }
    }

    fn from_pkcs8(bytes: &[u8], path: &Path) -> Result<Signer> {
        let pair = Ed25519KeyPair::from_pkcs8(bytes).map_err(|_| {
            Error::invalid(
                "signing key",
                format!("{}: not an Ed25519 PKCS#8 key", path.display()),
            )
        })?;
        let public_hex = hex::encode(pair.public_key().as_ref());
        Ok(Signer { pair, public_hex })
    }

    pub fn public_hex(&self) -> &str {
        &self.public_hex
    }

    pub fn sign(&self, msg: &[u8]) -> CheckpointSignature {
        CheckpointSignature {
            key: self.public_hex.clone(),
            sig: hex::encode(self.pair.sign(msg).as_ref()),
        }
    }
}

/// Writes a new private key file, readable by its owner only, durably.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path.display(), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_checkpoint_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.p8");
        let (s, created) = Signer::load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = Signer::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(s.public_hex(), again.public_hex());
        let t = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let sig = s.sign(&message(7, "ab", t));
        assert!(valid(&message(7, "ab", t), &sig));
        assert!(!valid(&message(8, "ab", t), &sig), "another seq");
        assert!(!valid(&message(7, "ac", t), &sig), "another hash");
        let (other, _) = Signer::load_or_create(&dir.path().join("other.p8")).unwrap();
        let forged = CheckpointSignature {
            key: s.public_hex().into(),
            sig: other.sign(&message(7, "ab", t)).sig,
        };
        assert!(
            !valid(&message(7, "ab", t), &forged),
            "another key's signature"
        );
        // Rotation: trust flows both ways along a hand-over signed by both keys, and
        // not along one a rogue key made up alone.
        let (third, _) = Signer::load_or_create(&dir.path().join("third.p8")).unwrap();
        let r = Rotation::sign(&s, &other);
        assert!(r.valid());
        let ks = |v: &[&Signer]| {
            v.iter()
                .map(|k| k.public_hex().to_string())
                .collect::<Vec<_>>()
        };
        let t = trusted_through(&ks(&[&s]), std::slice::from_ref(&r));
        assert!(t.contains(&other.public_hex().to_string()));
        let t = trusted_through(&ks(&[&other]), std::slice::from_ref(&r));
        assert!(t.contains(&s.public_hex().to_string()), "backwards");
        let mut rogue = Rotation::sign(&third, &other);
        rogue.new_sig = third
            .sign(&rotation_message(third.public_hex(), other.public_hex()))
            .sig;
        assert!(!rogue.valid(), "the new key did not accept");
        let t = trusted_through(&ks(&[&other]), &[rogue]);
        assert!(!t.contains(&third.public_hex().to_string()));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
