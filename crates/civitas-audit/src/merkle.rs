//! Merkle trees as RFC 6962 (Certificate Transparency) defines them: the
//! tree head of a list of leaves, inclusion proofs (a leaf is in a tree)
//! and consistency proofs (a tree is an extension of an earlier one), and
//! the verification of both as RFC 9162 §2.1.3–2.1.4 describes it.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The tree head of no leaves: the hash of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (`n` > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The tree head of `leaves` (leaf hashes).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree of `leaves` (empty when the
/// index is out of range).
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    if index >= leaves.len() {
        return Vec::new();
    }
    fn path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
        if leaves.len() <= 1 {
            return Vec::new();
        }
        let k = split(leaves.len());
        let (mut proof, sibling) = if index < k {
            (path(index, &leaves[..k]), root(&leaves[k..]))
        } else {
            (path(index - k, &leaves[k..]), root(&leaves[..k]))
        };
        proof.push(sibling);
        proof
    }
    path(index, leaves)
}

/// The proof that the tree of the first `size` leaves is a prefix of the
/// tree of all `leaves` (empty for `size` 0 or `size` ≥ the number of leaves).
pub fn consistency_proof(leaves: &[Hash], size: usize) -> Vec<Hash> {
    if size == 0 || size >= leaves.len() {
        return Vec::new();
    }
    fn subproof(size: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
        let n = leaves.len();
        if size == n {
            return if whole { Vec::new() } else { vec![root(leaves)] };
        }
        let k = split(n);
        let (mut proof, sibling) = if size <= k {
            (subproof(size, &leaves[..k], whole), root(&leaves[k..]))
        } else {
            (subproof(size - k, &leaves[k..], false), root(&leaves[..k]))
        };
        proof.push(sibling);
        proof
    }
    subproof(size, leaves, true)
}

/// Why a proof does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the leaf index is outside the tree")]
    IndexOutOfRange,
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the first tree is larger than the second")]
    SizesReversed,
    #[error("a proof from the empty tree proves nothing")]
    EmptyTree,
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose
/// head is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut hash = *leaf;
    for sibling in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            hash = node_hash(sibling, &hash);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if hash != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `size1` leaves with head `root1` is a prefix of
/// the tree of `size2` leaves with head `root2`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesReversed);
    }
    if size1 == 0 {
        // Every tree extends the empty one: there is nothing to check, and
        // a caller asking is mistaken.
        return Err(ProofError::EmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut first, mut second) = (path[0], path[0]);
    for hash in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            first = node_hash(hash, &first);
            second = node_hash(hash, &second);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            second = node_hash(&second, hash);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if first != *root1 || second != *root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A tree grown one leaf at a time, keeping only the heads of its perfect
/// subtrees (at most 64): the head of a million-leaf log without holding
/// a million hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactTree {
    size: u64,
    /// Heads of the perfect subtrees, largest (leftmost) first.
    peaks: Vec<Hash>,
}

impl CompactTree {
    pub fn new() -> CompactTree {
        CompactTree::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a leaf (its leaf hash).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each trailing one bit of the old size is a perfect subtree of the
        // same height as the new one: merge them.
        while size & 1 == 1 {
            let left = self.peaks.pop().unwrap_or(hash);
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The tree head of the leaves added so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("record {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn the_compact_tree_agrees_with_the_definition() {
        let all = leaves(70);
        let mut compact = CompactTree::new();
        assert_eq!(compact.root(), empty_root());
        for (i, leaf) in all.iter().enumerate() {
            compact.push(*leaf);
            assert_eq!(compact.root(), root(&all[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn generated_proofs_verify_and_altered_ones_do_not() {
        let all = leaves(37);
        for size in 1..=all.len() {
            let head = root(&all[..size]);
            for index in 0..size {
                let proof = inclusion_proof(&all[..size], index);
                assert_eq!(
                    verify_inclusion(index as u64, size as u64, &all[index], &proof, &head),
                    Ok(())
                );
                let other = (index + 1) % size;
                if other != index {
                    assert!(verify_inclusion(other as u64, size as u64, &all[index], &proof, &head).is_err());
                }
            }
            for earlier in 1..size {
                let proof = consistency_proof(&all[..size], earlier);
                let old = root(&all[..earlier]);
                assert_eq!(
                    verify_consistency(earlier as u64, size as u64, &old, &head, &proof),
                    Ok(())
                );
                let mut bent = proof.clone();
                if let Some(first) = bent.first_mut() {
                    first[0] ^= 1;
                    assert!(verify_consistency(earlier as u64, size as u64, &old, &head, &bent).is_err());
                }
            }
        }
    }
}
