//! The compiled binary: start-up failures and model commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Command, Output};

fn civitas(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civitas"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CIVITAS_DATA_DIR", data_dir)
        .env("CIVITAS_BOOTSTRAP_KEY", "sk-test-cli");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn missing_model_is_one_clear_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let output = civitas(dir.path())
        .args(["serve", "--no-pull", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("is not installed"), "{message}");
    assert!(message.contains("civitas models pull"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
}

#[test]
fn bad_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("civitas.toml");
    std::fs::write(&config, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let output = civitas(dir.path())
        .args(["--config", config.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("lisen"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");

    let output = civitas(dir.path())
        .env("CIVITAS__MODELS__SLOTS", "0")
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("models.slots"), "{}", stderr(&output));
}

#[test]
fn port_in_use_is_reported() {
    let Ok(models_dir) = std::env::var("CIVITAS_TEST_MODELS_DIR") else {
        eprintln!("notice: CIVITAS_TEST_MODELS_DIR unset; port-in-use test skipped");
        return;
    };
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = civitas(dir.path())
        .env("CIVITAS__MODELS__DIR", &models_dir)
        .env("CIVITAS__MODELS__CHAT", "smollm2-135m-instruct")
        .args(["serve", "--no-pull", "--listen", &address])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot listen on {address}")),
        "{message}"
    );
}

#[test]
fn unknown_model_pull_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = civitas(dir.path())
        .args(["models", "pull", "gpt-imaginary"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("civitas models list"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn import_registers_a_gguf_and_verify_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tiny.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend((0..10_000u32).map(|i| (i % 251) as u8));
    std::fs::write(&source, &bytes).unwrap();
    let output = civitas(dir.path())
        .args([
            "models",
            "import",
            source.to_str().unwrap(),
            "--name",
            "agency-model",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let verify = civitas(dir.path()).args(["models", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    let list = civitas(dir.path()).args(["models", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("agency-model"));

    let installed = dir.path().join("models").join("agency-model").join("model.gguf");
    let mut tampered = std::fs::read(&installed).unwrap();
    tampered[100] ^= 0xff;
    std::fs::write(&installed, tampered).unwrap();
    let verify = civitas(dir.path()).args(["models", "verify"]).output().unwrap();
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("FAILED  agency-model"));

    let not_gguf = dir.path().join("notes.txt");
    std::fs::write(&not_gguf, "hello").unwrap();
    let output = civitas(dir.path())
        .args(["models", "import", not_gguf.to_str().unwrap(), "--name", "x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("not a GGUF"), "{}", stderr(&output));
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["models", "--help"],
        vec!["models", "pull", "--help"],
    ] {
        let output = civitas(dir.path()).args(&args).output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.len() > 200, "{args:?}: {text}");
    }
}
