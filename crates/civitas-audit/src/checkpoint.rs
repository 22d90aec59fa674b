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

/// A change of signing key, kept as the details of an
/// `audit.key_rotation` record: each key signs the pair, so the new key is
/// vouched for by the old one and the old one by the new. A verifier that
/// trusts either key learns the other; nobody holding neither private key
/// can write one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    pub old_key_id: String,
    pub old_public_key: String,
    pub new_key_id: String,
    pub new_public_key: String,
    /// The old key's signature of [`KeyRotation::message`], base64.
    pub endorsement: String,
    /// The new key's signature of the same, base64.
    pub acceptance: String,
}

impl KeyRotation {
    /// What both keys sign.
    pub fn message(old_public_key: &str, new_public_key: &str) -> String {
        format!("civitas audit key rotation v1\n{old_public_key}\n{new_public_key}\n")
    }

    pub fn sign(old: &AuditKey, new: &AuditKey) -> KeyRotation {
        let (old_public, new_public) = (old.public(), new.public());
        let message = KeyRotation::message(&old_public.public_key, &new_public.public_key);
        KeyRotation {
            endorsement: old.sign_bytes(message.as_bytes()),
            acceptance: new.sign_bytes(message.as_bytes()),
            old_key_id: old_public.key_id,
            old_public_key: old_public.public_key,
            new_key_id: new_public.key_id,
            new_public_key: new_public.public_key,
        }
    }

    pub fn old_key(&self) -> PublicKey {
        PublicKey {
            key_id: self.old_key_id.clone(),
            public_key: self.old_public_key.clone(),
        }
    }

    pub fn new_key(&self) -> PublicKey {
        PublicKey {
            key_id: self.new_key_id.clone(),
            public_key: self.new_public_key.clone(),
        }
    }

    /// Both signatures hold and the ids are those of the keys.
    pub fn is_valid(&self) -> bool {
        let message = KeyRotation::message(&self.old_public_key, &self.new_public_key);
        let named_right = |key: &PublicKey| {
            use base64::Engine;
            BASE64
                .decode(&key.public_key)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .is_some_and(|bytes| PublicKey::from_bytes(bytes).key_id == key.key_id)
        };
        let (old, new) = (self.old_key(), self.new_key());
        named_right(&old)
            && named_right(&new)
            && old.verifies(message.as_bytes(), &self.endorsement)
            && new.verifies(message.as_bytes(), &self.acceptance)
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

    #[test]
    fn a_rotation_needs_both_keys() {
        let old = AuditKey::generate();
        let new = AuditKey::generate();
        let rotation = KeyRotation::sign(&old, &new);
        assert!(rotation.is_valid());
        assert_eq!(rotation.old_key(), old.public());
        assert_eq!(rotation.new_key(), new.public());
        // A forger holding only the new key cannot claim an old one.
        let forger = AuditKey::generate();
        let mut claimed = KeyRotation::sign(&forger, &new);
        claimed.old_key_id = old.key_id();
        claimed.old_public_key = old.public().public_key;
        assert!(!claimed.is_valid());
        // Nor swap in a key of their own as the new one.
        let mut swapped = rotation.clone();
        swapped.new_public_key = forger.public().public_key;
        swapped.new_key_id = forger.key_id();
        assert!(!swapped.is_valid());
        // An id that is not the key's is refused.
        let mut misnamed = rotation;
        misnamed.new_key_id = "0000000000000000".to_owned();
        assert!(!misnamed.is_valid());
    }
}
