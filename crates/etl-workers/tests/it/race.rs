//! Version races through a slow proxy: a slow conversion of an old source version that
//! finishes after a newer version was converted writes nothing and exits 0 as superseded.

use std::process::Stdio;
use std::time::Duration;

use etl_test_support::proxy::{Fault, FaultProxy};

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

fn total_rows(t: &TestContext, key: &str) -> usize {
    read_parquet(t.get(key).expect("output"))
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

/// v1 (150,000 rows) is read slowly; v2 (3 rows) is uploaded and converted meanwhile.
fn slow_old_version_loses(extra: &[&str]) {
    let t = TestContext::new();
    t.put("input/r.csv", csv_rows(150_000));
    let proxy = FaultProxy::start(t.s3.address()).unwrap();
    proxy.set(Fault::Slow(Duration::from_millis(2)));
    t.s3.clear_requests();
    let slow = t
        .command(ETL)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .args(["--bucket", BUCKET, "--key", "input/r.csv"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the old version's download has started.
    while !t
        .s3
        .requests()
        .iter()
        .any(|r| r.is_object_get() && r.path.ends_with("/input/r.csv"))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    t.put("input/r.csv", csv_rows(3));
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/r.csv"])
        .args(extra)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("\"converted\""), "{}", stdout(&out));
    assert_eq!(total_rows(&t, "output/r.parquet"), 3);

    let old = slow.wait_with_output().unwrap();
    assert_exit(&old, 0);
    assert!(
        stdout(&old).contains("\"status\":\"superseded\""),
        "the old run did not report superseded: {}\n{}",
        stdout(&old),
        stderr(&old)
    );
    assert_eq!(
        total_rows(&t, "output/r.parquet"),
        3,
        "the old version replaced the new output"
    );
    assert_eq!(t.keys("output/"), ["output/r.parquet"]);
    // A plain rerun agrees that the output is the current version's.
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/r.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
}

#[test]
fn a_slow_old_version_never_replaces_a_newer_output() {
    slow_old_version_loses(&[]);
}

#[test]
fn a_slow_old_version_loses_without_conditional_writes_too() {
    // The store-ignores-conditions path: only the source re-check protects the output.
    slow_old_version_loses(&["--conditional-writes", "off"]);
}

#[test]
fn a_slow_old_version_loses_with_conditional_writes_auto() {
    slow_old_version_loses(&["--conditional-writes", "auto"]);
}

#[test]
fn a_replayed_old_event_costs_heads_not_a_conversion() {
    let t = TestContext::new();
    t.put("input/e.csv", csv_rows(10));
    let old_etag = t.head_etag("input/e.csv");
    t.put("input/e.csv", csv_rows(20));
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/e.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(total_rows(&t, "output/e.parquet"), 20);
    let event = s3_notification(BUCKET, "input/e.csv", &old_etag);
    t.s3.clear_requests();
    let out = t.command(ETL).args(["--event", &event]).output().unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
    let requests = t.s3.requests();
    assert_eq!(
        requests.iter().filter(|r| r.method == "HEAD").count(),
        2,
        "{requests:?}"
    );
    assert_eq!(requests.len(), 2, "{requests:?}");
}
