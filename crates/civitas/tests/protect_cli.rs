//! `civitas protect analyze` on real files: a table with line and column,
//! JSON lines with byte offsets, and clear refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn civitas() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_civitas"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CIVITAS_DATA_DIR", std::env::temp_dir());
    command
}

#[test]
fn a_file_is_analysed_and_bad_input_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("case.txt");
    std::fs::write(
        &file,
        "Case 44-B\nLe demandeur, joignable au 06 12 34 56 78,\nSSN 536-22-1234 (US file).\n",
    )
    .unwrap();
    let table = civitas()
        .args(["protect", "analyze"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let out = String::from_utf8(table.stdout).unwrap();
    assert!(out.contains("2:28\tPHONE_NUMBER"), "{out}");
    assert!(out.contains("3:5\tUS_SSN"), "{out}");
    assert!(String::from_utf8_lossy(&table.stderr).contains("2 found"));

    let json = civitas()
        .args(["protect", "analyze", "--json", "--entity", "US_SSN"])
        .arg(&file)
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["text"], "536-22-1234");
    let text = std::fs::read_to_string(&file).unwrap();
    let (start, end) = (
        lines[0]["start"].as_u64().unwrap() as usize,
        lines[0]["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[start..end], "536-22-1234");

    let binary = dir.path().join("scan.bin");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    for (args, said) in [
        (
            vec!["protect".into(), "analyze".into(), binary.display().to_string()],
            "not UTF-8",
        ),
        (
            vec![
                "protect".into(),
                "analyze".into(),
                "--entity".into(),
                "NOPE".into(),
                file.display().to_string(),
            ],
            "unknown entity type",
        ),
        (
            vec![
                "protect".into(),
                "analyze".into(),
                dir.path().join("missing").display().to_string(),
            ],
            "cannot open",
        ),
    ] {
        let refused = civitas().args(&args).output().unwrap();
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(said),
            "{args:?}"
        );
    }
}
