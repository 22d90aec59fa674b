//! Secrets handed to callers: API keys and session tokens. Only their
//! SHA-256 is stored; they carry 256 random bits, so a fast hash is safe
//! (unlike passwords).

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Every API key starts with this.
pub const KEY_PREFIX: &str = "civ_";

/// 32 random bytes, URL-safe base64 without padding (43 characters).
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A new API key secret: `civ_` and 43 random characters.
pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", random_token())
}

/// What is stored in place of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The part of a key shown in lists to recognise it: `civ_` and 4 more.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(KEY_PREFIX.len() + 4).collect()
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let a = new_api_key();
        let b = new_api_key();
        assert!(a.starts_with("civ_") && a.len() == 47, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(display_prefix(&a).len(), 8);
        assert!(constant_time_eq(&a, &a.clone()) && !constant_time_eq(&a, &b));
    }
}
