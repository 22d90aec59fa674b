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

fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn admin_create_refuses_weak_passwords_and_keys_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let weak = run_with_stdin(
        civitas(dir.path()).args([
            "admin",
            "create",
            "--email",
            "chief@example.gov",
            "--password-stdin",
        ]),
        "password123456\n",
    );
    assert!(!weak.status.success());
    assert!(stderr(&weak).contains("too common"), "{}", stderr(&weak));
    let created = run_with_stdin(
        civitas(dir.path()).args([
            "admin",
            "create",
            "--email",
            "Chief@Example.gov",
            "--password-stdin",
        ]),
        "Vélo-rouge-sous-la-pluie\n",
    );
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(String::from_utf8_lossy(&created.stdout).contains("chief@example.gov"));
    let again = run_with_stdin(
        civitas(dir.path()).args([
            "admin",
            "create",
            "--email",
            "chief@example.gov",
            "--password-stdin",
        ]),
        "Vélo-rouge-sous-la-pluie\n",
    );
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already"), "{}", stderr(&again));

    let key = civitas(dir.path())
        .args([
            "keys",
            "create",
            "--email",
            "chief@example.gov",
            "--name",
            "laptop",
            "--expires-in-hours",
            "24",
        ])
        .output()
        .unwrap();
    assert!(key.status.success(), "{}", stderr(&key));
    let secret = String::from_utf8_lossy(&key.stdout).trim().to_owned();
    assert!(secret.starts_with("civ_") && secret.len() == 47, "{secret}");
    let listed = civitas(dir.path()).args(["keys", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("laptop") && listed.contains("active"), "{listed}");
    assert!(!listed.contains(&secret), "a listed key shows its secret");
    let id = listed
        .lines()
        .find(|line| line.contains("laptop"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_owned();
    let revoked = civitas(dir.path())
        .args(["keys", "revoke", &id])
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let listed = civitas(dir.path()).args(["keys", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("revoked"));
    let missing = civitas(dir.path())
        .args(["keys", "revoke", "key_nope"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let nobody = civitas(dir.path())
        .args(["keys", "create", "--email", "nobody@example.gov", "--name", "x"])
        .output()
        .unwrap();
    assert!(stderr(&nobody).contains("nobody has"), "{}", stderr(&nobody));
}

/// A tiny OpenAI-compatible server on a thread: `/v1/models` and a
/// one-token completion, for the key `good-key` only.
fn tiny_upstream() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                head.push(line.trim().to_lowercase());
                line.clear();
            }
            let length = head
                .iter()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let authorized = head.iter().any(|line| line == "authorization: bearer good-key");
            let (status, answer) = if !authorized {
                (
                    "401 Unauthorized",
                    r#"{"error":{"message":"bad key"}}"#.to_owned(),
                )
            } else if head[0].starts_with("get /v1/models") {
                ("200 OK", r#"{"object":"list","data":[]}"#.to_owned())
            } else {
                (
                    "200 OK",
                    r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#.to_owned(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    format!("http://{address}/v1")
}

#[test]
fn providers_test_checks_each_deployment_and_fails_when_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = tiny_upstream();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", listener.local_addr().unwrap())
    };
    let config = dir.path().join("civitas.toml");
    std::fs::write(
        &config,
        format!(
            "[[providers]]\nname = \"vllm\"\nbase_url = \"{upstream}\"\napi_key = \"env::GOOD_KEY\"\nmodels = [\"big\"]\nallow_internal = true\n\
             [[providers]]\nname = \"wrong-key\"\nbase_url = \"{upstream}\"\napi_key = \"env::BAD_KEY\"\nmodels = [\"big\"]\nallow_internal = true\n\
             [[providers]]\nname = \"gone\"\nbase_url = \"{closed}\"\nmodels = [\"big\"]\nallow_internal = true\n"
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        civitas(dir.path())
            .env("GOOD_KEY", "good-key")
            .env("BAD_KEY", "bad-key")
            .args(["--config", config.to_str().unwrap(), "providers", "test"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = run(&[]);
    assert!(!output.status.success());
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("vllm")[..6], ["vllm", "openai", "big", "yes", "yes", "yes"]);
    assert_eq!(
        row("wrong-key")[..6],
        ["wrong-key", "openai", "big", "yes", "NO", "NO"]
    );
    assert_eq!(row("gone")[..6], ["gone", "openai", "big", "NO", "?", "NO"]);
    assert!(
        stderr(&output).contains("2 of 3 checks failed"),
        "{}",
        stderr(&output)
    );
    // One provider, as JSON: it passes.
    let output = run(&["--name", "vllm", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows[0]["completion"], true);
    assert!(rows[0]["milliseconds"].is_u64());
    let output = run(&["--name", "nobody"]);
    assert!(stderr(&output).contains("no provider named `nobody`"));
}
