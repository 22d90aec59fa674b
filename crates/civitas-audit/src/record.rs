//! One audit record, its canonical encoding, and the hash chain.
//!
//! The canonical encoding is what the chain hash and the Merkle leaf are
//! computed over: a version tag, then every field in a fixed order, each
//! as a 4-byte big-endian length and its UTF-8 bytes (an absent value is
//! the length 0xFFFFFFFF), the details as JSON with object keys sorted and
//! no spaces. Any change to any field changes the encoding.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::merkle::{leaf_hash, Hash};

/// The version tag at the head of every encoded record.
const ENCODING: &[u8] = b"civitas-audit-record-v1";

/// The hash before the first record.
pub const GENESIS: Hash = [0u8; 32];

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    Person,
    Key,
    Service,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Person => "person",
            ActorKind::Key => "key",
            ActorKind::Service => "service",
            ActorKind::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<ActorKind> {
        [
            ActorKind::Person,
            ActorKind::Key,
            ActorKind::Service,
            ActorKind::System,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by a policy, a permission or a limit.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [Outcome::Success, Outcome::Failure, Outcome::Denied]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

macro_rules! actions {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// The closed set of things the audit log records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The stable name kept in each record.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            pub fn parse(text: &str) -> Option<Action> {
                Action::ALL.iter().copied().find(|action| action.as_str() == text)
            }
        }
    };
}

actions! {
    /// A person signed in (password, second factor or single sign-on).
    SignIn => "auth.sign_in",
    /// A sign-in was refused.
    SignInFailed => "auth.sign_in_failed",
    SignOut => "auth.sign_out",
    /// A second factor was set up, confirmed or removed.
    SecondFactor => "auth.second_factor",
    /// Sessions were ended by their owner or an administrator.
    SessionsRevoked => "auth.sessions_revoked",
    /// An administrator changed an agency, group, person, role, model
    /// access or limit (before and after, never secrets).
    AdminChange => "admin.change",
    KeyCreated => "key.created",
    KeyFirstUsed => "key.first_used",
    KeyRevoked => "key.revoked",
    /// A model answered (or failed to): who, which model and weights,
    /// tokens, latency — never the content.
    ModelCall => "model.call",
    DocumentAccess => "document.access",
    CollectionAccess => "collection.access",
    /// A conversation or a report left the system.
    Export => "data.export",
    /// A data key was rotated, re-wrapped, retired or destroyed.
    DataKey => "data.key",
    /// The retention purge removed records (which ones, never content).
    Purge => "data.purged",
    /// A legal hold was placed or released.
    LegalHold => "data.legal_hold",
    /// A person's content (and possibly account) was erased on request.
    Erasure => "data.erased",
    /// A policy, a permission or an agency boundary refused an action.
    PolicyDenied => "policy.denied",
    LimitHit => "limit.hit",
    /// An administrator read someone else's content, with a justification.
    BreakGlass => "access.break_glass",
    /// The configuration a server started with (without secrets).
    ConfigurationAtStart => "system.configuration",
    Checkpoint => "audit.checkpoint",
    Verification => "audit.verification",
    KeyRotation => "audit.key_rotation",
}

/// A record before it joins the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub agency_id: Option<String>,
    pub action: Action,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// A JSON object; never content, never secrets.
    pub details: Value,
}

/// A record in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub agency_id: Option<String>,
    /// An [`Action`]'s name (kept as text so that a record written by a
    /// later version still reads).
    pub action: String,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: Value,
    /// The previous record's hash ([`GENESIS`] before the first).
    #[serde(with = "hex_hash")]
    pub prev_hash: Hash,
    /// `SHA-256(prev_hash || canonical encoding)`.
    #[serde(with = "hex_hash")]
    pub hash: Hash,
}

/// JSON with object keys sorted at every depth and no spaces.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (index, key) in keys.into_iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn put(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => {
            out.extend_from_slice(&(text.len() as u32).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

/// A moment as the encoding writes it: RFC 3339, UTC, microseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Record {
    /// The record `seq` made of `entry`, chained after `prev_hash`.
    pub fn chain(seq: u64, entry: Entry, prev_hash: Hash) -> Record {
        let mut record = Record {
            seq,
            at: entry.at,
            actor_kind: entry.actor_kind,
            actor_id: entry.actor_id,
            agency_id: entry.agency_id,
            action: entry.action.as_str().to_owned(),
            target: entry.target,
            outcome: entry.outcome,
            source_address: entry.source_address,
            user_agent: entry.user_agent,
            request_id: entry.request_id,
            details: entry.details,
            prev_hash,
            hash: [0; 32],
        };
        record.hash = record.computed_hash();
        record
    }

    /// The canonical encoding (without the hashes).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(ENCODING);
        put(&mut out, Some(&self.seq.to_string()));
        put(&mut out, Some(&timestamp(self.at)));
        put(&mut out, Some(self.actor_kind.as_str()));
        put(&mut out, Some(&self.actor_id));
        put(&mut out, self.agency_id.as_deref());
        put(&mut out, Some(&self.action));
        put(&mut out, self.target.as_deref());
        put(&mut out, Some(self.outcome.as_str()));
        put(&mut out, self.source_address.as_deref());
        put(&mut out, self.user_agent.as_deref());
        put(&mut out, self.request_id.as_deref());
        put(&mut out, Some(&canonical_json(&self.details)));
        out
    }

    /// What [`Record::hash`] must be.
    pub fn computed_hash(&self) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash);
        hasher.update(self.canonical());
        hasher.finalize().into()
    }

    /// This record's leaf in the Merkle tree of the log.
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.canonical())
    }

    /// What [`Record::hash`] must be, and the leaf hash, from one encoding
    /// (verification of long logs).
    pub fn hashes(&self) -> (Hash, Hash) {
        let encoded = self.canonical();
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash);
        hasher.update(&encoded);
        (hasher.finalize().into(), leaf_hash(&encoded))
    }
}

/// Hashes as lowercase hex in JSON.
pub mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::merkle::Hash;

    pub fn to_hex(hash: &Hash) -> String {
        hash.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<Hash> {
        if text.len() != 64 {
            return None;
        }
        let mut hash = [0u8; 32];
        for (index, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        Some(hash)
    }

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_hex(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(deserializer)?;
        from_hex(&text).ok_or_else(|| serde::de::Error::custom("a hash is 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn entry(action: Action) -> Entry {
        Entry {
            at: Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap(),
            actor_kind: ActorKind::Person,
            actor_id: "p-1".to_owned(),
            agency_id: Some("a-1".to_owned()),
            action,
            target: Some("conversation:c-1".to_owned()),
            outcome: Outcome::Success,
            source_address: Some("10.0.0.1".to_owned()),
            user_agent: None,
            request_id: Some("req-1".to_owned()),
            details: json!({"b": 1, "a": {"z": [1, "x"], "y": null}}),
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = json!({"b": 1, "a": {"z": [1, "é\"x"], "y": null}});
        assert_eq!(canonical_json(&value), r#"{"a":{"y":null,"z":[1,"é\"x"]},"b":1}"#);
    }

    #[test]
    fn every_field_changes_the_hash_and_absent_differs_from_empty() {
        let base = Record::chain(1, entry(Action::Export), GENESIS);
        assert_eq!(base.hash, base.computed_hash());
        let mut changed = Vec::new();
        let mut variant = base.clone();
        variant.seq = 2;
        changed.push(variant);
        let mut variant = base.clone();
        variant.at += chrono::Duration::microseconds(1);
        changed.push(variant);
        let mut variant = base.clone();
        variant.actor_kind = ActorKind::Key;
        changed.push(variant);
        let mut variant = base.clone();
        variant.agency_id = Some(String::new());
        changed.push(variant);
        let mut variant = base.clone();
        variant.user_agent = Some(String::new());
        changed.push(variant);
        let mut variant = base.clone();
        variant.outcome = Outcome::Denied;
        changed.push(variant);
        let mut variant = base.clone();
        variant.details = json!({"b": 2, "a": {"z": [1, "x"], "y": null}});
        changed.push(variant);
        let mut variant = base.clone();
        variant.prev_hash[0] = 1;
        changed.push(variant);
        for variant in changed {
            assert_ne!(variant.computed_hash(), base.hash, "{variant:?}");
        }
        // Key order in the details does not matter.
        let mut reordered = base.clone();
        reordered.details = json!({"a": {"y": null, "z": [1, "x"]}, "b": 1});
        assert_eq!(reordered.computed_hash(), base.hash);
        // Fields cannot bleed into each other.
        let mut shifted = base.clone();
        shifted.actor_id = "p-1a".to_owned();
        shifted.agency_id = Some("-1".to_owned());
        assert_ne!(shifted.computed_hash(), base.hash);
    }

    #[test]
    fn records_round_trip_through_json() {
        let record = Record::chain(7, entry(Action::ModelCall), [9; 32]);
        let text = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.computed_hash(), record.hash);
        assert!(Action::ALL
            .iter()
            .all(|action| Action::parse(action.as_str()) == Some(*action)));
    }
}
