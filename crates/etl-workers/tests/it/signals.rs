//! SIGTERM mid-sweep (a pod evicted or scaled down): no new object starts, the upload in
//! flight is aborted, what finished is reported, and the exit code asks for a retry.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

#[test]
fn sigterm_mid_sweep_aborts_the_upload_in_flight_and_reports_what_finished() {
    let t = TestContext::new();
    t.put("input/a.csv", csv_rows(3));
    t.put("input/b.csv", csv_rows(1_500_000));
    t.put("input/c.csv", csv_rows(3));
    let mut child = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--prefix",
            "input/",
            "--jobs",
            "1",
            "--compression",
            "none",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until b's output is a multipart upload in progress.
    let deadline = Instant::now() + Duration::from_secs(120);
    while uploads_in_flight(&t) == 0 {
        assert!(Instant::now() < deadline, "no multipart upload started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("etl did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    let lines = stdout(&out);
    assert!(
        lines.contains(r#""key":"input/a.csv","#) && lines.contains(r#""status":"converted""#),
        "{lines}"
    );
    assert!(lines.contains(r#""key":"input/b.csv","#), "{lines}");
    assert!(!lines.contains("input/c.csv"), "c was started: {lines}");
    assert!(stderr(&out).contains("summary"), "{}", stderr(&out));
    assert_eq!(
        uploads_in_flight(&t),
        0,
        "a multipart upload was left behind"
    );
    assert!(t.get("output/a.parquet").is_some());
    assert!(t.get("output/b.parquet").is_none());
    assert!(t.get("output/c.parquet").is_none());
}
