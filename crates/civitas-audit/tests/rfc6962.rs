//! The Merkle proofs against the RFC 6962 test vectors (transparency-dev's
//! inclusion and consistency cases, in `../shared/testdata/rfc6962`):
//! every case that must verify does, every case that must fail does, and
//! the proofs Civitas generates for the standard leaves are the ones in
//! the vectors. Skips with a notice when the vectors are absent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use base64::Engine;
use civitas_audit::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion, Hash,
};
use serde_json::Value;

fn vectors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/rfc6962");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "notice: RFC 6962 test vectors not found at {}; skipping",
            dir.display()
        );
        None
    }
}

fn cases(dir: &Path) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                found.push((path.display().to_string(), value));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// A hash from the vectors; a value of another length is kept as given so
/// that the proof must fail.
fn hash(value: &Value) -> Option<Vec<u8>> {
    value
        .as_str()
        .map(|text| base64::engine::general_purpose::STANDARD.decode(text).unwrap())
}

fn exact(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

/// A root or leaf from the vectors as a hash: some cases give values of
/// other lengths that only matter for being equal or not, so those are
/// replaced by a digest of themselves (equal stays equal, different stays
/// different, and none can pass for a real tree head).
fn value(bytes: &[u8]) -> Hash {
    use sha2::{Digest, Sha256};
    exact(bytes).unwrap_or_else(|| Sha256::digest([b"not a hash: ".as_slice(), bytes].concat()).into())
}

/// A tree size or index (the vectors hold some beyond `i64`).
fn number(value: &Value) -> Option<u64> {
    value.as_u64()
}

fn proof(value: &Value) -> Option<Vec<Hash>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(|item| exact(&hash(item).unwrap())).collect(),
        _ => None,
    }
}

/// The leaves the vectors' trees are built of (RFC 6962's examples).
fn standard_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|hex| {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        leaf_hash(&bytes)
    })
    .collect()
}

#[test]
fn inclusion_vectors() {
    let Some(dir) = vectors() else { return };
    let leaves = standard_leaves();
    let cases = cases(&dir.join("inclusion"));
    assert!(cases.len() > 50, "only {} inclusion cases found", cases.len());
    let mut generated = 0;
    for (name, case) in cases {
        let want_error = case["wantErr"].as_bool().unwrap();
        let index = number(&case["leafIdx"]);
        let size = number(&case["treeSize"]);
        // A leaf or root that is not a SHA-256 hash can prove nothing.
        let root_hash = hash(&case["root"]).and_then(|bytes| exact(&bytes));
        let leaf = hash(&case["leafHash"]).and_then(|bytes| exact(&bytes));
        let path = proof(&case["proof"]);
        let verdict = match (index, size, root_hash, leaf, path) {
            (Some(index), Some(size), Some(root_hash), Some(leaf), Some(path)) => {
                verify_inclusion(index, size, &leaf, &path, &root_hash).is_ok()
            }
            _ => false,
        };
        let (index, size) = (index.unwrap_or(u64::MAX), size.unwrap_or(u64::MAX));
        assert_eq!(verdict, !want_error, "{name}: {}", case["desc"]);
        // For the correct cases over the standard leaves, Civitas makes
        // exactly the proof of the vector.
        if !want_error && size <= leaves.len() as u64 && size > 0 {
            let tree = &leaves[..size as usize];
            if Some(tree[index as usize]) == leaf && Some(root(tree)) == root_hash {
                assert_eq!(
                    Some(inclusion_proof(tree, index as usize)),
                    proof(&case["proof"]),
                    "{name}"
                );
                generated += 1;
            }
        }
    }
    assert!(generated > 0, "no vector matched the standard leaves");
}

#[test]
fn consistency_vectors() {
    let Some(dir) = vectors() else { return };
    let leaves = standard_leaves();
    let cases = cases(&dir.join("consistency"));
    assert!(cases.len() > 20, "only {} consistency cases found", cases.len());
    let mut generated = 0;
    for (name, case) in cases {
        let want_error = case["wantErr"].as_bool().unwrap();
        let size1 = number(&case["size1"]);
        let size2 = number(&case["size2"]);
        let root1 = hash(&case["root1"]).map(|bytes| value(&bytes));
        let root2 = hash(&case["root2"]).map(|bytes| value(&bytes));
        let path = proof(&case["proof"]);
        let verdict = match (size1, size2, root1, root2, &path) {
            (Some(size1), Some(size2), Some(root1), Some(root2), Some(path)) => {
                verify_consistency(size1, size2, &root1, &root2, path).is_ok()
            }
            _ => false,
        };
        let (size1, size2) = (size1.unwrap_or(u64::MAX), size2.unwrap_or(u64::MAX));
        assert_eq!(verdict, !want_error, "{name}: {}", case["desc"]);
        if !want_error && size2 <= leaves.len() as u64 && size1 > 0 && size1 < size2 {
            let tree = &leaves[..size2 as usize];
            if Some(root(tree)) == root2 && Some(root(&tree[..size1 as usize])) == root1 {
                assert_eq!(Some(consistency_proof(tree, size1 as usize)), path, "{name}");
                generated += 1;
            }
        }
    }
    assert!(generated > 0, "no vector matched the standard leaves");
}
