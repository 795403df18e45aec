//! Faults between `etl` and the S3 server (through a TCP proxy of ours): cuts mid-download
//! and mid-upload leave no output and a rerun succeeds; 503s and slowness are retried.
//! Also idempotency, concurrent runs on one key, and secrets at trace level.

use std::time::Instant;

use arrow_array::{Array, Int64Array};
use etl_test_support::proxy::{Fault, FaultProxy};

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

fn etl_via(t: &TestContext, proxy: &FaultProxy, key: &str, extra: &[&str]) -> std::process::Output {
    let mut command = t.command(ETL);
    command.env("AWS_ENDPOINT_URL", proxy.endpoint());
    command
        .args(["--bucket", BUCKET, "--key", key])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn connection_cut_mid_download_leaves_nothing_and_a_rerun_succeeds() {
    let t = TestContext::new();
    t.put("input/big.csv", csv_rows(200_000));
    let proxy = FaultProxy::start(t.s3.address()).unwrap();
    proxy.set(Fault::CutDownstreamAfter(1 << 20));
    let out = etl_via(&t, &proxy, "input/big.csv", &[]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("s3://etlproj/input/big.csv"),
        "{}",
        stderr(&out)
    );
    assert!(
        t.keys("output/").is_empty(),
        "an output appeared: {:?}",
        t.keys("output/")
    );

    proxy.set(Fault::None);
    let out = etl_via(&t, &proxy, "input/big.csv", &[]);
    assert_exit(&out, 0);
    let batches = read_parquet(t.get("output/big.parquet").unwrap());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 200_000);
}

#[test]
fn connection_cut_mid_upload_leaves_nothing_and_a_rerun_succeeds() {
    let t = TestContext::new();
    t.put("input/big.csv", csv_rows(200_000));
    let proxy = FaultProxy::start(t.s3.address()).unwrap();
    // Every connection dies after 256 KiB client -> server: only uploads are that large.
    proxy.set(Fault::CutUpstreamAfter(256 << 10));
    let out = etl_via(&t, &proxy, "input/big.csv", &["--compression", "none"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("output/big.parquet"),
        "{}",
        stderr(&out)
    );
    assert!(
        t.keys("output/").is_empty(),
        "an output appeared: {:?}",
        t.keys("output/")
    );

    proxy.set(Fault::None);
    let out = etl_via(&t, &proxy, "input/big.csv", &["--compression", "none"]);
    assert_exit(&out, 0);
    assert!(t.get("output/big.parquet").is_some());
}

#[test]
fn throttling_and_slowness_are_retried() {
    let t = TestContext::new();
    t.put_file("input/20230414/1.csv", &testdata("20230414/1.csv"));
    let proxy = FaultProxy::start(t.s3.address()).unwrap();
    proxy.set(Fault::Reject503(2));
    let out = etl_via(&t, &proxy, "input/20230414/1.csv", &[]);
    assert_exit(&out, 0);
    assert!(
        proxy.connections() >= 3,
        "503s were not retried: {}",
        proxy.connections()
    );

    proxy.set(Fault::Slow(std::time::Duration::from_millis(2)));
    let out = etl_via(&t, &proxy, "input/20230414/1.csv", &["--force"]);
    assert_exit(&out, 0);
}

#[test]
fn endpoint_down_at_start_exits_1() {
    let t = TestContext::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let mut command = t.command(ETL);
    command.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    let out = command
        .args(["--bucket", BUCKET, "--key", "input/x.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    // Reported, not asserted: the bound is the SDK's retries with backoff.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("endpoint down: exit 1 after {:?}", started.elapsed());
    }
}

#[test]
fn the_same_event_twice_gives_byte_identical_output() {
    let t = TestContext::new();
    t.put_file("input/20230414/1.csv", &testdata("20230414/1.csv"));
    let event = minio_notification(BUCKET, &["input/20230414/1.csv"]);
    assert_exit(
        &t.command(ETL).args(["--event", &event]).output().unwrap(),
        0,
    );
    let first = t.get("output/20230414/1.parquet").unwrap();
    assert_exit(
        &t.command(ETL)
            .args(["--event", &event, "--force"])
            .output()
            .unwrap(),
        0,
    );
    assert_eq!(t.get("output/20230414/1.parquet").unwrap(), first);
}

#[test]
fn eight_concurrent_runs_on_one_key_leave_one_valid_object() {
    let t = TestContext::new();
    t.put("input/c.csv", csv_rows(50_000));
    let children: Vec<_> = (0..8)
        .map(|_| {
            t.command(ETL)
                .args(["--bucket", BUCKET, "--key", "input/c.csv", "--force"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert_exit(&child.wait_with_output().unwrap(), 0);
    }
    assert_eq!(t.keys("output/"), ["output/c.parquet"]);
    let batches = read_parquet(t.get("output/c.parquet").unwrap());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 50_000);
    let last = batches.last().unwrap();
    let no = last
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(no.value(no.len() - 1), 50_000);
}

#[test]
fn secrets_never_reach_a_log_line_even_at_trace() {
    let t = TestContext::new();
    t.put_file("input/20230414/1.csv", &testdata("20230414/1.csv"));
    let mut logs = String::new();
    for format in ["text", "json"] {
        let out = t
            .command(ETL)
            .env("RUST_LOG", "trace")
            .env("ETL_LOG_FORMAT", format)
            .args([
                "--bucket",
                BUCKET,
                "--key",
                "input/20230414/1.csv",
                "--force",
            ])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        logs.push_str(&stderr(&out));
        logs.push_str(&stdout(&out));
    }
    // A session token the server does not check: it must not be logged either.
    let token = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789";
    let mut command = t.command(ETL);
    command
        .env("RUST_LOG", "trace")
        .env("AWS_SESSION_TOKEN", token);
    let out = command
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/20230414/1.csv",
            "--force",
        ])
        .output()
        .unwrap();
    logs.push_str(&stderr(&out));
    assert!(
        logs.len() > 10_000,
        "trace logging produced too little to be a test: {}",
        logs.len()
    );
    assert!(
        !logs.contains(etl_test_support::s3::SECRET_KEY),
        "the secret key was logged"
    );
    assert!(!logs.contains(token), "the session token was logged");
}

#[test]
fn a_cut_anywhere_in_a_download_is_transient_never_bad_data() {
    let t = TestContext::new();
    let body = csv_rows(700_000);
    assert!(body.len() > 17 << 20, "{}", body.len());
    t.put("input/cut.csv", body);
    let proxy = FaultProxy::start(t.s3.address()).unwrap();
    // Offsets count response bytes on one connection: HEADs of the plan come first on it.
    for cut in [600, 2_000, 64 << 10, 1 << 20, 2 << 20, 9 << 20] {
        proxy.set(Fault::CutDownstreamAfter(cut));
        let out = etl_via(&t, &proxy, "input/cut.csv", &[]);
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("s3://etlproj/input/cut.csv"),
            "cut at {cut}: {}",
            stderr(&out)
        );
        assert!(
            t.keys("output/").is_empty(),
            "cut at {cut}: an output appeared"
        );
    }
}

#[test]
fn a_refused_multipart_upload_exits_2_naming_access_denied() {
    let t = TestContext::new();
    t.put("input/big.csv", csv_rows(400_000));
    t.s3.refuse(
        "CreateMultipartUpload",
        "",
        etl_test_support::s3::S3ErrorCode::AccessDenied,
    );
    let out = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/big.csv",
            "--compression",
            "none",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("AccessDenied"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("output/big.parquet"),
        "{}",
        stderr(&out)
    );
    assert!(t.keys("output/").is_empty());
}

#[test]
fn error_codes_decide_the_class_not_only_the_status() {
    let t = TestContext::new();
    t.put_file("input/a.csv", &testdata("20230414/1.csv"));
    // 400 RequestTimeout and 409 OperationAborted: transient whatever their status.
    for code in [
        etl_test_support::s3::S3ErrorCode::RequestTimeout,
        etl_test_support::s3::S3ErrorCode::OperationAborted,
    ] {
        t.s3.clear_refusals();
        t.s3.refuse("GetObject", "input/a.csv", code.clone());
        let out = t
            .command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/a.csv"])
            .output()
            .unwrap();
        assert_exit(&out, 1);
        assert!(stderr(&out).contains(code.as_str()), "{}", stderr(&out));
    }
    // A missing bucket (s3s-fs itself answers NoSuchKey for one): exit 2 naming it.
    t.s3.clear_refusals();
    t.s3.refuse(
        "GetObject",
        "input/a.csv",
        etl_test_support::s3::S3ErrorCode::NoSuchBucket,
    );
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/a.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("NoSuchBucket"), "{}", stderr(&out));
}

#[test]
fn a_sweep_with_a_bad_file_and_a_transient_failure_exits_1() {
    let t = TestContext::new();
    t.put_file("input/s/good.csv", &testdata("20230414/1.csv"));
    t.put("input/s/bad.csv", "a,b,c\n1,2\n");
    t.put_file("input/s/flaky.csv", &testdata("20230414/2.csv"));
    t.s3.refuse(
        "GetObject",
        "flaky",
        etl_test_support::s3::S3ErrorCode::InternalError,
    );
    let sweep = || {
        t.command(ETL)
            .args(["--bucket", BUCKET, "--prefix", "input/s/"])
            .output()
            .unwrap()
    };
    let out = sweep();
    assert_exit(&out, 1);
    assert!(t.get("output/s/good.parquet").is_some());
    t.s3.clear_refusals();
    let out = sweep();
    assert_exit(&out, 2);
    assert!(t.get("output/s/flaky.parquet").is_some());
    assert!(stderr(&out).contains("input/s/bad.csv"), "{}", stderr(&out));
}
