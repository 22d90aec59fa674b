//! The tamper-evident audit log, without I/O: records and their canonical
//! encoding, the hash chain, RFC 6962 Merkle trees with inclusion and
//! consistency proofs, Ed25519-signed checkpoints, and the verification
//! of a whole log. The store keeps the records; the server and the CLI
//! write, prove and verify through this crate.

pub mod checkpoint;
pub mod merkle;
pub mod record;
pub mod verify;

pub use checkpoint::{AuditKey, Checkpoint, CheckpointError, KeyRotation, PublicKey};
pub use merkle::{CompactTree, Hash, ProofError};
pub use record::{Action, ActorKind, Entry, Outcome, Record, GENESIS};
pub use verify::{verify, Problem, Report, Verifier};
