//! A fault at every request of a run (the Nth request fails, N = 0, 1, ...), then a plain
//! rerun: the outputs are right and nothing of another version is left behind.

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");
const AGG: &str = env!("CARGO_BIN_EXE_agg");

use etl_test_support::s3::{NthRequest, S3ErrorCode};

/// Rows of a Parquet object read from the server's disk: the SDK's GET validates a
/// multipart object's whole-object CRC against the per-part checksum s3s-fs stores, and fails.
fn rows_on_disk(t: &TestContext, key: &str) -> usize {
    let bytes = std::fs::read(t.s3.root().join(BUCKET).join(key)).expect("output");
    read_parquet(bytes).iter().map(|b| b.num_rows()).sum()
}

fn rows(t: &TestContext, key: &str) -> usize {
    read_parquet(t.get(key).expect("output"))
        .iter()
        .map(|b| b.num_rows())
        .sum()
}

/// Kills the step's process once its Nth request reached the server (which never answers
/// it), for every N the step makes, and checks `after` once a plain rerun has run.
fn crash_at_every_request(
    setup: impl Fn(&TestContext),
    step: impl Fn(&TestContext) -> std::process::Command,
    during: impl Fn(&TestContext, &str),
    after: impl Fn(&TestContext),
) -> usize {
    let mut points = 0;
    for n in 0.. {
        let t = TestContext::new();
        setup(&t);
        t.s3.nth_request(n, NthRequest::Hang);
        let mut child = step(&t)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let failed = loop {
            if let Some(failed) = t.s3.failed_request() {
                break Some(failed);
            }
            if child.try_wait().unwrap().is_some() {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let Some(failed) = failed else {
            break;
        };
        child.kill().unwrap();
        child.wait().unwrap();
        points += 1;
        during(&t, &failed);
        t.s3.clear_refusals();
        let rerun = step(&t).output().unwrap();
        assert_exit(&rerun, 0);
        after(&t);
        #[allow(clippy::print_stderr)]
        {
            eprintln!("crash {n} at {failed}: rerun right");
        }
    }
    points
}

/// Runs `scenario`'s faulted step with the Nth request failing, for every N the step
/// makes, and checks `after` once a plain rerun has run. Returns the points injected.
fn at_every_request(
    code: S3ErrorCode,
    setup: impl Fn(&TestContext),
    step: impl Fn(&TestContext) -> std::process::Output,
    during: impl Fn(&TestContext, &str),
    after: impl Fn(&TestContext),
) -> usize {
    let mut points = 0;
    for n in 0.. {
        let t = TestContext::new();
        setup(&t);
        t.s3.fail_nth(n, code.clone());
        let out = step(&t);
        let Some(failed) = t.s3.failed_request() else {
            assert_exit(&out, 0);
            break;
        };
        points += 1;
        // A fault is never bad data: exit 1 for a transient code, 2 only for a refusal.
        let code_exit = out.status.code();
        assert!(
            matches!(code_exit, Some(0..=2)),
            "fault at {failed}: {code_exit:?}"
        );
        if code == S3ErrorCode::InternalError {
            assert_ne!(code_exit, Some(2), "fault at {failed}: {}", stderr(&out));
        }
        #[allow(clippy::print_stderr)]
        {
            eprintln!("fault {n} at {failed}: exit {:?}", out.status.code());
        }
        during(&t, &failed);
        t.s3.clear_refusals();
        let rerun = step(&t);
        assert_exit(&rerun, 0);
        after(&t);
        #[allow(clippy::print_stderr)]
        {
            eprintln!("fault {n}: rerun right");
        }
    }
    points
}

#[test]
fn every_request_of_a_conversion_can_fail_and_a_rerun_is_right() {
    let setup = |t: &TestContext| {
        t.put("input/q/x.csv", "1,aaa,100\n2,bbb\n3,ccc,300\n");
        let out = t
            .command(ETL)
            .args([
                "--bucket",
                BUCKET,
                "--key",
                "input/q/x.csv",
                "--bad-rows",
                "quarantine",
            ])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        t.put(
            "input/q/x.csv",
            "1,aaa,100\n2,bbb,200\n3,ccc,300\n4,ddd,400\n",
        );
    };
    let command = |t: &TestContext| {
        let mut command = t.command(ETL);
        command.args([
            "--bucket",
            BUCKET,
            "--key",
            "input/q/x.csv",
            "--bad-rows",
            "quarantine",
        ]);
        command
    };
    let step = |t: &TestContext| command(t).output().unwrap();
    let during = |t: &TestContext, failed: &str| {
        // The output is v1's (2 rows, with its sidecar) or v2's (4 rows).
        let n = rows(t, "output/q/x.parquet");
        assert!(n == 2 || n == 4, "fault at {failed}: {n} rows");
    };
    let after = |t: &TestContext| {
        assert_eq!(rows(t, "output/q/x.parquet"), 4);
        assert_eq!(t.keys("output/"), ["output/q/x.parquet"]);
        assert!(t.keys(".etl/").is_empty());
    };
    let mut points = 0;
    for code in [S3ErrorCode::AccessDenied, S3ErrorCode::InternalError] {
        points += at_every_request(code, setup, step, during, after);
    }
    let crashes = crash_at_every_request(setup, command, during, after);
    assert!(points >= 8 && crashes >= 8, "{points} {crashes}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "conversion: {points} failed requests + {crashes} crashes, wrong outputs after rerun: 0"
        );
    }
}

#[test]
fn every_request_of_an_aggregation_can_fail_and_a_rerun_is_right() {
    let setup = |t: &TestContext| {
        t.put("input/d/1.csv", "1,aaa,100\n2,bbb,300\n");
        t.put("input/d/2.csv", "1,ccc,200\n");
        let out = t
            .command(ETL)
            .args(["--bucket", BUCKET, "--prefix", "input/d/"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let out = t
            .command(AGG)
            .args(["--bucket", BUCKET, "--prefix", "output/d/"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        // A new winner arrives: the aggregate must move to it.
        t.put("input/d/3.csv", "1,zzz,900\n");
        let out = t
            .command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/d/3.csv"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
    };
    let command = |t: &TestContext| {
        let mut command = t.command(AGG);
        command.args(["--bucket", BUCKET, "--prefix", "output/d/"]);
        command
    };
    let step = |t: &TestContext| command(t).output().unwrap();
    let txt = |t: &TestContext| String::from_utf8(t.get("output/d/agg.txt").unwrap()).unwrap();
    let during = |t: &TestContext, failed: &str| {
        // agg.json (the commit record) never claims the new inputs without agg.txt saying so.
        let json: serde_json::Value =
            serde_json::from_slice(&t.get("output/d/agg.json").unwrap()).unwrap();
        if json["files"] == 3 {
            assert!(txt(t).contains("zzz"), "fault at {failed}: {}", txt(t));
        }
    };
    let after = |t: &TestContext| {
        assert!(txt(t).contains("zzz"), "{}", txt(t));
        let json: serde_json::Value =
            serde_json::from_slice(&t.get("output/d/agg.json").unwrap()).unwrap();
        assert_eq!(json["files"], 3);
        assert_eq!(json["source_key"], "output/d/3.parquet");
    };
    let mut points = 0;
    for code in [S3ErrorCode::AccessDenied, S3ErrorCode::InternalError] {
        points += at_every_request(code, setup, step, during, after);
    }
    let crashes = crash_at_every_request(setup, command, during, after);
    assert!(points >= 6 && crashes >= 6, "{points} {crashes}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "aggregation: {points} failed requests + {crashes} crashes, wrong outputs after rerun: 0"
        );
    }
}

#[test]
fn a_crash_at_every_request_of_a_multipart_publication_then_a_rerun_is_right() {
    // v2 is large enough (uncompressed) for a multipart upload of two parts.
    let setup = |t: &TestContext| {
        t.put("input/big/x.csv", csv_rows(3));
        let out = t
            .command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/big/x.csv"])
            .args(["--compression", "none"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        t.put("input/big/x.csv", csv_rows(400_000));
    };
    let command = |t: &TestContext| {
        let mut command = t.command(ETL);
        command
            .args(["--bucket", BUCKET, "--key", "input/big/x.csv"])
            .args(["--compression", "none"]);
        command
    };
    let during = |t: &TestContext, failed: &str| {
        let n = rows_on_disk(t, "output/big/x.parquet");
        assert!(n == 3 || n == 400_000, "fault at {failed}: {n} rows");
    };
    let after = |t: &TestContext| {
        assert_eq!(rows_on_disk(t, "output/big/x.parquet"), 400_000);
        assert_eq!(t.keys("output/"), ["output/big/x.parquet"]);
    };
    // Crashes only: failed requests take the same paths as in the tests above, and each
    // round converts 400,000 rows.
    let crashes = crash_at_every_request(setup, command, during, after);
    assert!(crashes >= 10, "{crashes}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("multipart: {crashes} crashes, wrong outputs after rerun: 0");
    }
}
