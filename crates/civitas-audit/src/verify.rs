//! Verification of a whole log: the chain of hashes, the sequence numbers,
//! and every checkpoint's tree head and signature. Each problem is named
//! with the sequence numbers it concerns.

use serde::Serialize;

use crate::checkpoint::{Checkpoint, KeyRotation, PublicKey};
use crate::merkle::{CompactTree, Hash};
use crate::record::{Record, GENESIS};

/// One thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// The record's content does not match its hash: it was changed.
    Modified { seq: u64 },
    /// Sequence numbers are missing: records were deleted.
    Missing { from: u64, to: u64 },
    /// A sequence number is out of order or repeated: records were
    /// reordered or inserted.
    OutOfOrder { seq: u64, expected: u64 },
    /// The record does not point at the one before it.
    BrokenLink { seq: u64 },
    /// The records do not hash to the signed tree head.
    CheckpointMismatch { tree_size: u64 },
    /// A checkpoint covers records that are no longer there.
    CheckpointBeyondLog { tree_size: u64, records: u64 },
    /// A checkpoint's signature does not verify.
    BadSignature { tree_size: u64, reason: String },
    /// A key rotation record is not signed by both of its keys.
    BadKeyRotation { seq: u64 },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Modified { seq } => write!(f, "record {seq} was modified (its hash does not match)"),
            Problem::Missing { from, to } if from == to => write!(f, "record {from} is missing (deleted)"),
            Problem::Missing { from, to } => write!(f, "records {from} to {to} are missing (deleted)"),
            Problem::OutOfOrder { seq, expected } => {
                write!(f, "record {seq} stands where record {expected} should (reordered or inserted)")
            }
            Problem::BrokenLink { seq } => {
                write!(f, "record {seq} does not follow the record before it (chain broken)")
            }
            Problem::CheckpointMismatch { tree_size } => {
                write!(f, "the first {tree_size} records do not match their signed checkpoint")
            }
            Problem::CheckpointBeyondLog { tree_size, records } => write!(
                f,
                "a checkpoint covers {tree_size} records but the log holds {records} (records deleted at the end)"
            ),
            Problem::BadSignature { tree_size, reason } => {
                write!(f, "the checkpoint at {tree_size} records is not validly signed: {reason}")
            }
            Problem::BadKeyRotation { seq } => {
                write!(f, "record {seq} announces a key rotation that is not signed by both keys")
            }
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub records: u64,
    pub last_seq: u64,
    pub checkpoints: usize,
    #[serde(with = "crate::record::hex_hash")]
    pub root_hash: Hash,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a log record by record, in the order stored, without holding it
/// (a million records verify in a few megabytes).
#[derive(Debug)]
pub struct Verifier {
    problems: Vec<Problem>,
    /// Every checkpoint, to check once all keys are known.
    checkpoints: Vec<Checkpoint>,
    /// Checkpoints not reached yet, largest first (popped from the end).
    pending: Vec<Checkpoint>,
    /// Keys trusted from the start.
    keys: Vec<PublicKey>,
    /// Valid key rotations found in the log.
    rotations: Vec<KeyRotation>,
    tree: CompactTree,
    expected: u64,
    prev_hash: Hash,
    last_seq: u64,
}

impl Verifier {
    /// A verifier of a log whose `checkpoints` must verify with one of
    /// `keys`, or with a key the log's rotations link to one of them.
    pub fn new(checkpoints: &[Checkpoint], keys: &[PublicKey]) -> Verifier {
        let mut pending: Vec<Checkpoint> = checkpoints.to_vec();
        pending.sort_by_key(|checkpoint| std::cmp::Reverse(checkpoint.tree_size));
        Verifier {
            problems: Vec::new(),
            checkpoints: pending.iter().rev().cloned().collect(),
            pending,
            keys: keys.to_vec(),
            rotations: Vec::new(),
            tree: CompactTree::new(),
            expected: 1,
            prev_hash: GENESIS,
            last_seq: 0,
        }
    }

    /// The trusted keys with every key a valid rotation links to them.
    fn all_keys(&self) -> Vec<PublicKey> {
        let mut keys = self.keys.clone();
        loop {
            let before = keys.len();
            for rotation in &self.rotations {
                let (old, new) = (rotation.old_key(), rotation.new_key());
                let (knows_old, knows_new) = (keys.contains(&old), keys.contains(&new));
                if knows_old && !knows_new {
                    keys.push(new);
                } else if knows_new && !knows_old {
                    keys.push(old);
                }
            }
            if keys.len() == before {
                return keys;
            }
        }
    }

    /// The next record as stored.
    pub fn push(&mut self, record: &Record) {
        if record.seq > self.expected {
            self.problems.push(Problem::Missing {
                from: self.expected,
                to: record.seq - 1,
            });
        } else if record.seq < self.expected {
            self.problems.push(Problem::OutOfOrder {
                seq: record.seq,
                expected: self.expected,
            });
        }
        let (hash, leaf) = record.hashes();
        if hash != record.hash {
            self.problems.push(Problem::Modified { seq: record.seq });
        }
        if record.prev_hash != self.prev_hash {
            self.problems.push(Problem::BrokenLink { seq: record.seq });
        }
        if record.action == crate::record::Action::KeyRotation.as_str() {
            match serde_json::from_value::<KeyRotation>(record.details.clone()) {
                Ok(rotation) if rotation.is_valid() => self.rotations.push(rotation),
                _ => self.problems.push(Problem::BadKeyRotation { seq: record.seq }),
            }
        }
        self.tree.push(leaf);
        while self
            .pending
            .last()
            .is_some_and(|checkpoint| checkpoint.tree_size <= self.tree.size())
        {
            if let Some(checkpoint) = self.pending.pop() {
                if checkpoint.tree_size == self.tree.size() && checkpoint.root_hash != self.tree.root() {
                    self.problems.push(Problem::CheckpointMismatch {
                        tree_size: checkpoint.tree_size,
                    });
                }
            }
        }
        self.prev_hash = record.hash;
        self.expected = record.seq.max(self.expected) + 1;
        self.last_seq = record.seq;
    }

    /// The report, once every record was pushed.
    pub fn finish(mut self) -> Report {
        let keys = self.all_keys();
        for checkpoint in &self.checkpoints {
            if let Err(error) = checkpoint.verify(&keys) {
                self.problems.push(Problem::BadSignature {
                    tree_size: checkpoint.tree_size,
                    reason: error.to_string(),
                });
            }
        }
        while let Some(checkpoint) = self.pending.pop() {
            self.problems.push(Problem::CheckpointBeyondLog {
                tree_size: checkpoint.tree_size,
                records: self.tree.size(),
            });
        }
        Report {
            records: self.tree.size(),
            last_seq: self.last_seq,
            checkpoints: self.checkpoints.len(),
            root_hash: self.tree.root(),
            problems: self.problems,
        }
    }
}

/// Checks `records` (in the order stored) against themselves and against
/// `checkpoints`, whose signatures must verify with one of `keys`.
pub fn verify(
    records: impl IntoIterator<Item = Record>,
    checkpoints: &[Checkpoint],
    keys: &[PublicKey],
) -> Report {
    let mut verifier = Verifier::new(checkpoints, keys);
    for record in records {
        verifier.push(&record);
    }
    verifier.finish()
}
