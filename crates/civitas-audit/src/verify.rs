//! Verification of a whole log: the chain of hashes, the sequence numbers,
//! and every checkpoint's tree head and signature. Each problem is named
//! with the sequence numbers it concerns.

use serde::Serialize;

use crate::checkpoint::{Checkpoint, PublicKey};
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
    /// Checkpoints not reached yet, largest first (popped from the end).
    pending: Vec<Checkpoint>,
    checkpoints: usize,
    tree: CompactTree,
    expected: u64,
    prev_hash: Hash,
    last_seq: u64,
}

impl Verifier {
    /// A verifier of a log whose `checkpoints` must verify with one of
    /// `keys`.
    pub fn new(checkpoints: &[Checkpoint], keys: &[PublicKey]) -> Verifier {
        let mut problems = Vec::new();
        let mut pending: Vec<Checkpoint> = checkpoints.to_vec();
        pending.sort_by_key(|checkpoint| std::cmp::Reverse(checkpoint.tree_size));
        for checkpoint in pending.iter().rev() {
            if let Err(error) = checkpoint.verify(keys) {
                problems.push(Problem::BadSignature {
                    tree_size: checkpoint.tree_size,
                    reason: error.to_string(),
                });
            }
        }
        Verifier {
            problems,
            checkpoints: pending.len(),
            pending,
            tree: CompactTree::new(),
            expected: 1,
            prev_hash: GENESIS,
            last_seq: 0,
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
        while let Some(checkpoint) = self.pending.pop() {
            self.problems.push(Problem::CheckpointBeyondLog {
                tree_size: checkpoint.tree_size,
                records: self.tree.size(),
            });
        }
        Report {
            records: self.tree.size(),
            last_seq: self.last_seq,
            checkpoints: self.checkpoints,
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
