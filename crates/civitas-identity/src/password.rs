//! Passwords of local accounts: argon2id hashes (the crate's defaults:
//! 19 MiB, two passes, one lane) and a policy that refuses short and
//! well-known passwords.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// Why a password was refused; the message is shown to the person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("the password must have at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("the password must have at most {MAX_LENGTH} characters")]
    TooLong,
    #[error("this password is too common or follows a well-known pattern; choose another")]
    Common,
    #[error("the password must not contain your e-mail address or name")]
    ContainsIdentity,
}

/// Words that breached-password lists show people build passwords from,
/// in English and French, plus this product's own name.
const COMMON_WORDS: &[&str] = &[
    "password",
    "passw0rd",
    "motdepasse",
    "welcome",
    "bienvenue",
    "letmein",
    "qwerty",
    "azerty",
    "qwertyuiop",
    "azertyuiop",
    "iloveyou",
    "jetaime",
    "admin",
    "administrator",
    "administrateur",
    "changeme",
    "secret",
    "dragon",
    "monkey",
    "sunshine",
    "soleil",
    "football",
    "baseball",
    "princess",
    "master",
    "shadow",
    "superman",
    "batman",
    "trustno",
    "starwars",
    "whatever",
    "freedom",
    "bonjour",
    "loulou",
    "chouchou",
    "doudou",
    "marseille",
    "paris",
    "america",
    "government",
    "gouvernement",
    "civitas",
    "abcdef",
    "abcdefgh",
    "abcdefghijkl",
    "test",
    "testing",
    "default",
    "login",
    "summer",
    "winter",
    "spring",
    "autumn",
    "hello",
    "solo",
];

/// Keyboard and counting runs.
const RUNS: &[&str] = &[
    "01234567890",
    "09876543210",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
];

fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    // Only one character repeated, or a run like "123456789012".
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 3 {
        return true;
    }
    if RUNS.iter().any(|run| run.contains(lower.as_str())) {
        return true;
    }
    // A common word dressed up: case, leetspeak, digits and symbols around.
    let core: String = lower
        .trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace())
        .chars()
        .map(unleet)
        .filter(|c| c.is_alphanumeric())
        .collect();
    let stripped = core.trim_end_matches(|c: char| c.is_ascii_digit());
    if stripped.is_empty() {
        return true;
    }
    COMMON_WORDS.iter().any(|word| {
        let word_only = stripped.replace(word, "");
        stripped == *word
            || word_only.is_empty()
            || word_only.chars().all(|c| c.is_ascii_digit())
            || (stripped.starts_with(word) && stripped.len() <= word.len() + 4)
    })
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str, email: &str, display_name: &str) -> Result<(), PasswordRejected> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordRejected::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PasswordRejected::TooLong);
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    let names = display_name
        .to_lowercase()
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if (local.chars().count() >= 4 && lower.contains(&local))
        || names
            .iter()
            .any(|name| name.chars().count() >= 4 && lower.contains(name.as_str()))
    {
        return Err(PasswordRejected::ContainsIdentity);
    }
    if is_common(password) {
        return Err(PasswordRejected::Common);
    }
    Ok(())
}

/// The argon2id hash of `password` in PHC string form.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches `stored` (a PHC string).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the time of one verification, for unknown accounts, so that
/// timing does not tell which e-mail addresses exist.
pub fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("civitas-nobody-placeholder").unwrap_or_default());
    let _ = verify(password, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_short_common_and_personal_passwords() {
        let ok = |p: &str| check_policy(p, "jeanne.dupont@interieur.gouv.fr", "Jeanne Dupont");
        assert_eq!(ok("short"), Err(PasswordRejected::TooShort));
        assert_eq!(ok(&"x".repeat(300)), Err(PasswordRejected::TooLong));
        for common in [
            "Password1234!",
            "P@ssw0rd2026!!",
            "motdepasse123",
            "123456789012",
            "aaaaaaaaaaaaaa",
            "qwertyuiop12",
            "Welcome2026!!",
            "abcabcabcabc",
        ] {
            assert_eq!(ok(common), Err(PasswordRejected::Common), "{common}");
        }
        assert_eq!(ok("jeanne.dupont-2026"), Err(PasswordRejected::ContainsIdentity));
        assert_eq!(ok("ma-Dupont-clef-42"), Err(PasswordRejected::ContainsIdentity));
        for fine in [
            "correct horse battery staple",
            "Vélo-rouge-sous-la-pluie",
            "tr4in-K3ttle-m0ss",
        ] {
            assert_eq!(ok(fine), Ok(()), "{fine}");
        }
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let first = hash("correct horse battery staple").unwrap();
        let second = hash("correct horse battery staple").unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second);
        assert!(verify("correct horse battery staple", &first));
        assert!(!verify("correct horse battery stapler", &first));
        assert!(!verify("anything", "not a hash"));
        verify_nobody("anything");
    }
}
