//! Signed tree heads: at intervals the head of the Merkle tree over all
//! records is signed with the installation's Ed25519 key, stored, and
//! published, so that an outside party can pin it and later prove that the
//! log it sees extends what it pinned.

use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, Verifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;
use crate::record::{hex_hash, timestamp};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The installation's signing key (the 32-byte Ed25519 seed).
pub struct AuditKey {
    signing: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    /// A new random key.
    pub fn generate() -> AuditKey {
        let seed: [u8; 32] = rand::random();
        AuditKey::from_seed(seed)
    }

    pub fn from_seed(seed: [u8; 32]) -> AuditKey {
        AuditKey {
            signing: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// The key as stored in its file: the seed in base64.
    pub fn to_text(&self) -> String {
        BASE64.encode(self.signing.to_bytes())
    }

    /// Reads a key written by [`AuditKey::to_text`].
    pub fn from_text(text: &str) -> Option<AuditKey> {
        let bytes = BASE64.decode(text.trim()).ok()?;
        let seed: [u8; 32] = bytes.try_into().ok()?;
        Some(AuditKey::from_seed(seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey::from_bytes(self.signing.verifying_key().to_bytes())
    }

    pub fn key_id(&self) -> String {
        self.public().key_id
    }

    /// An Ed25519 signature of `message`, base64 (signed documents such as
    /// an answer's provenance dossier).
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        BASE64.encode(self.signing.sign(message).to_bytes())
    }
}

/// A verifying key with its id (the first 8 bytes of the SHA-256 of the
/// key, hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub key_id: String,
    /// The 32-byte Ed25519 public key, base64.
    pub public_key: String,
}

impl PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        let digest = Sha256::digest(bytes);
        PublicKey {
            key_id: digest[..8].iter().map(|byte| format!("{byte:02x}")).collect(),
            public_key: BASE64.encode(bytes),
        }
    }

    /// Whether `signature` (base64) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(key) = self.verifying() else { return false };
        let Some(bytes) = BASE64
            .decode(signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        else {
            return false;
        };
        key.verify(message, &ed25519_dalek::Signature::from_bytes(&bytes))
            .is_ok()
    }

    fn verifying(&self) -> Option<ed25519_dalek::VerifyingKey> {
        let bytes: [u8; 32] = BASE64.decode(&self.public_key).ok()?.try_into().ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
    }
}

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// How many records the tree covers (records 1 to `tree_size`).
    pub tree_size: u64,
    #[serde(with = "hex_hash")]
    pub root_hash: Hash,
    pub at: DateTime<Utc>,
    pub key_id: String,
    /// Ed25519 over [`Checkpoint::message`], base64.
    pub signature: String,
}

/// Why a checkpoint is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("signed by key {0}, which is not among the known keys")]
    UnknownKey(String),
    #[error("the signature does not match")]
    BadSignature,
}

impl Checkpoint {
    /// The text that is signed: a version line, then size, root (hex),
    /// time and key id, one per line.
    pub fn message(tree_size: u64, root_hash: &Hash, at: DateTime<Utc>, key_id: &str) -> String {
        format!(
            "civitas audit checkpoint v1\n{tree_size}\n{}\n{}\n{key_id}\n",
            hex_hash::to_hex(root_hash),
            timestamp(at)
        )
    }

    pub fn sign(key: &AuditKey, tree_size: u64, root_hash: Hash, at: DateTime<Utc>) -> Checkpoint {
        let key_id = key.key_id();
        let signature = key
            .signing
            .sign(Checkpoint::message(tree_size, &root_hash, at, &key_id).as_bytes());
        Checkpoint {
            tree_size,
            root_hash,
            at,
            key_id,
            signature: BASE64.encode(signature.to_bytes()),
        }
    }

    /// Checks the signature against the key it names among `keys`.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<(), CheckpointError> {
        let key = keys
            .iter()
            .find(|key| key.key_id == self.key_id)
            .and_then(PublicKey::verifying)
            .ok_or_else(|| CheckpointError::UnknownKey(self.key_id.clone()))?;
        let bytes: [u8; 64] = BASE64
            .decode(&self.signature)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(CheckpointError::BadSignature)?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        let message = Checkpoint::message(self.tree_size, &self.root_hash, self.at, &self.key_id);
        key.verify(message.as_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_with_its_key_only_and_untouched() {
        let key = AuditKey::generate();
        let other = AuditKey::generate();
        let at = chrono::Utc::now();
        let checkpoint = Checkpoint::sign(&key, 42, [7; 32], at);
        assert_eq!(checkpoint.verify(&[other.public(), key.public()]), Ok(()));
        assert_eq!(
            checkpoint.verify(&[other.public()]),
            Err(CheckpointError::UnknownKey(key.key_id()))
        );
        let mut bigger = checkpoint.clone();
        bigger.tree_size = 43;
        assert_eq!(bigger.verify(&[key.public()]), Err(CheckpointError::BadSignature));
        let mut rerooted = checkpoint.clone();
        rerooted.root_hash[0] ^= 1;
        assert_eq!(
            rerooted.verify(&[key.public()]),
            Err(CheckpointError::BadSignature)
        );
        // The key survives its file.
        let again = AuditKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        assert!(AuditKey::from_text("not a key").is_none());
    }
}
