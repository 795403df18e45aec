//! `etl-s3-server --help` and `--version` answer and exit; they never start a server in a
//! folder named after the flag.

use std::process::Command;

const SERVER: &str = env!("CARGO_BIN_EXE_etl-s3-server");

#[test]
fn help_and_version_answer_without_serving() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, expected) in [
        ("--version", "etl-s3-server "),
        ("--help", "Usage: etl-s3-server"),
    ] {
        let out = Command::new(SERVER)
            .arg(flag)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(expected),
            "{flag}"
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
