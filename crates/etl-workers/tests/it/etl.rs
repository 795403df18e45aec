//! `etl` against the S3 test server: keys, events, formats, local files, failures.

use arrow_array::{Array, Int64Array, StringArray};
use arrow_schema::DataType;

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

#[test]
fn bucket_and_key_writes_the_seed_output_with_pandas_types() {
    let t = TestContext::new();
    t.put_file("input/20230414/1.csv", &testdata("20230414/1.csv"));
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/20230414/1.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let batches = read_parquet(t.get("output/20230414/1.parquet").expect("output object"));
    let batch = &batches[0];
    let schema = batch.schema();
    let types: Vec<(&str, &DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        [
            ("no", &DataType::Int64),
            ("name", &DataType::Utf8),
            ("score", &DataType::Int64)
        ]
    );
    let no = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let name = batch
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let score = batch
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(no.values(), &[1, 2, 3]);
    assert_eq!((name.value(0), name.value(2)), ("aaa", "ccc"));
    assert_eq!(score.values(), &[70, 80, 90]);
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["status"], "converted");
    assert_eq!(line["rows"], 3);
    let metadata = t.head_metadata("output/20230414/1.parquet");
    assert_eq!(metadata["etl-source"], "s3://etlproj/input/20230414/1.csv");
    assert!(!metadata["etl-source-version"].is_empty());

    // A rerun costs HEADs and no transfer.
    t.s3.clear_requests();
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/20230414/1.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let methods: Vec<String> = t.s3.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "HEAD"]);
}

#[test]
fn minio_event_converts_every_record_including_raw_keys() {
    let t = TestContext::new();
    let odd = "input/20230414/a+b 50%.csv";
    t.put_file("input/20230414/2.csv", &testdata("20230414/2.csv"));
    t.put_file(odd, &testdata("20230414/3.csv"));
    let event = minio_notification(BUCKET, &["input/20230414/2.csv", odd]);
    let out = t.command(ETL).args(["--event", &event]).output().unwrap();
    assert_exit(&out, 0);
    for (key, first) in [
        ("output/20230414/2.parquet", 4),
        ("output/20230414/a+b 50%.parquet", 7),
    ] {
        let batches = read_parquet(t.get(key).unwrap_or_else(|| panic!("{key} missing")));
        let no = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(no.value(0), first, "{key}");
    }
}

#[test]
fn sns_event_from_a_file_and_stdin_decodes_url_encoded_keys() {
    let t = TestContext::new();
    let key = "input/20230414/서울 data.csv";
    t.put_file(key, &testdata("test.csv"));
    let encoded = "input/20230414/%EC%84%9C%EC%9A%B8+data.csv";
    let s3_event = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": encoded, "size": 30}}
    }]});
    let sns = serde_json::json!({
        "Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:etl",
        "Subject": "Amazon S3 Notification", "Message": s3_event.to_string(),
        "Timestamp": "2026-11-24T00:00:00.000Z", "SignatureVersion": "1",
        "Signature": "x", "SigningCertURL": "https://x", "UnsubscribeURL": "https://x"
    });
    let path = t.write_file("sns.json", &sns.to_string());
    let out = t
        .command(ETL)
        .args([
            "--event",
            &format!("@{}", path.display()),
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let body =
        String::from_utf8(t.get("output/20230414/서울 data.jsonl").expect("output")).unwrap();
    assert_eq!(
        body.lines().next(),
        Some(r#"{"no":1,"name":"aaa","score":100}"#)
    );

    // The same event through stdin: the output records that input version, so nothing is uploaded.
    t.s3.clear_requests();
    let mut child = t
        .command(ETL)
        .args(["--event", "-", "--format", "jsonl"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sns.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("\"status\":\"up-to-date\""),
        "{}",
        stdout(&out)
    );
    assert!(
        !t.s3.requests().iter().any(|r| r.is_put()),
        "{:?}",
        t.s3.requests()
    );
}

#[test]
fn csv_format_and_output_templates() {
    let t = TestContext::new();
    t.put_file("input/20230414/1.csv", &testdata("20230414/1.csv"));
    t.s3.create_bucket("curated").unwrap();
    let out = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/20230414/1.csv",
            "--format",
            "csv",
            "--output-bucket",
            BUCKET,
            "--output-key",
            "curated/{parent}/{stem}.{ext}",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let body = String::from_utf8(t.get("curated/20230414/1.csv").expect("output")).unwrap();
    assert_eq!(body, "no,name,score\n1,aaa,70\n2,bbb,80\n3,ccc,90\n");
}

#[test]
fn dry_run_prints_the_plan_without_io() {
    let t = TestContext::new();
    let event = minio_notification(BUCKET, &["input/20230414/1.csv", "test.csv"]);
    let mut command = t.command(ETL);
    command.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let out = command
        .args(["--event", &event, "--dry-run"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "{\"bucket\":\"etlproj\",\"key\":\"input/20230414/1.csv\",\"output_bucket\":\"etlproj\",\"output_key\":\"output/20230414/1.parquet\"}\n\
         {\"bucket\":\"etlproj\",\"key\":\"test.csv\",\"output_bucket\":\"etlproj\",\"output_key\":\"output/test.parquet\"}\n"
    );
    assert!(t.s3.requests().is_empty());
}

#[test]
fn nothing_to_do_payloads_exit_zero_silently() {
    let t = TestContext::new();
    let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-24T00:00:00Z","Bucket":"etlproj","RequestId":"r","HostId":"h"}"#;
    let out = t
        .command(ETL)
        .args(["--event", test_event, "--dry-run"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
    let out = t
        .command(ETL)
        .args(["--event", test_event])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(t.s3.requests().is_empty());
}

#[test]
fn plan_adds_size_and_resources() {
    let t = TestContext::new();
    t.put_file("input/20230414/1.csv", &testdata("20230414/1.csv"));
    let out = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/20230414/1.csv",
            "--plan",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["size"], 27);
    assert_eq!(line["resources"]["requests"]["memory"], "64Mi");
    assert!(t.get("output/20230414/1.parquet").is_none());
}

#[test]
fn local_input_and_output() {
    let t = TestContext::new();
    let output = t.dir.path().join("out.parquet");
    let out = t
        .command(ETL)
        .args(["--input"])
        .arg(testdata("test.csv"))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let batches = read_parquet(std::fs::read(&output).unwrap());
    let score = batches[0]
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(score.values(), &[100, 80, 90]);
}

#[test]
fn missing_object_exits_2_naming_it() {
    let t = TestContext::new();
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/nope.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("s3://etlproj/input/nope.csv"), "{err}");
    assert!(err.contains("NoSuchKey"), "{err}");
}

#[test]
fn unreachable_endpoint_exits_1() {
    let t = TestContext::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut command = t.command(ETL);
    command.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    let out = command
        .args(["--bucket", BUCKET, "--key", "input/20230414/1.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("s3://etlproj/"), "{}", stderr(&out));
}

#[test]
fn malformed_csv_exits_2_naming_object_and_line_and_writes_nothing() {
    let t = TestContext::new();
    t.put("input/bad.csv", "1,aaa,100\n2,bbb,80\n3,ccc\n4,ddd,70\n");
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/bad.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("s3://etlproj/input/bad.csv"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(t.keys("output/"), Vec::<String>::new());
}

#[test]
fn a_bad_value_after_a_large_valid_prefix_leaves_no_multipart_output() {
    let t = TestContext::new();
    // More rows than one row group: the output exceeds one multipart part before the bad
    // line (a short record) arrives.
    let i = 1_100_000u64;
    let mut body = csv_rows(i);
    body.push_str("x,oops\n");
    t.put("input/big.csv", body);
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
    assert!(
        stderr(&out).contains(&format!("line {}", i + 1)),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.keys("output/"), Vec::<String>::new());
    assert!(
        t.s3.requests().iter().any(|r| r.query.contains("uploadId")),
        "expected a multipart upload to have started: {:?}",
        t.s3.requests().iter().filter(|r| r.is_put()).count()
    );
}

#[test]
fn large_file_converts_through_multipart_upload() {
    let t = TestContext::new();
    let rows = 1_100_000u64;
    t.put("input/big.csv", csv_rows(rows));
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
    assert_exit(&out, 0);
    let batches = read_parquet(t.get("output/big.parquet").expect("output"));
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total as u64, rows);
    let last = batches.last().unwrap();
    let no = last
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(no.value(no.len() - 1) as u64, rows);
    assert!(t.s3.requests().iter().any(|r| r.query.contains("uploadId")));
}

#[test]
fn bad_payload_exits_2_with_what_was_expected() {
    let t = TestContext::new();
    let out = t
        .command(ETL)
        .args(["--event", "{\"Records\": [", "--dry-run"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("not JSON"), "{}", stderr(&out));
}

#[test]
fn sweep_converts_missing_and_stale_only() {
    let t = TestContext::new();
    for n in 1..=3 {
        t.put_file(
            &format!("input/20230414/{n}.csv"),
            &testdata(&format!("20230414/{n}.csv")),
        );
    }
    let sweep = |t: &TestContext| {
        t.command(ETL)
            .args(["--bucket", BUCKET, "--prefix", "input/", "--jobs", "2"])
            .output()
            .unwrap()
    };
    let out = sweep(&t);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out).matches("\"converted\"").count(),
        3,
        "{}",
        stdout(&out)
    );

    // Change one input: exactly that one is stale.
    t.put("input/20230414/2.csv", "4,ddd,81\n");
    t.s3.clear_requests();
    let out = sweep(&t);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out).matches("\"converted\"").count(),
        1,
        "{}",
        stdout(&out)
    );
    assert_eq!(stdout(&out).matches("\"up-to-date\"").count(), 2);
    assert_eq!(t.s3.requests().iter().filter(|r| r.is_put()).count(), 1);

    // A bad file among good ones: the others still convert, exit 2 names it.
    t.put("input/20230414/4.csv", "1,a,1\n2,b\n");
    t.put("input/20230414/5.csv", "5,eee,5\n");
    let out = sweep(&t);
    assert_exit(&out, 2);
    assert!(t.get("output/20230414/5.parquet").is_some());
    assert!(
        stderr(&out).contains("s3://etlproj/input/20230414/4.csv"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

#[test]
fn help_and_version() {
    let t = TestContext::new();
    let out = t.command(ETL).arg("--help").output().unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Examples:"));
    let out = t.command(ETL).arg("--version").output().unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("etl "));
    let out = t.command(ETL).arg("--bogus").output().unwrap();
    assert_exit(&out, 2);
}

fn quarantine_run(t: &TestContext, key: &str) -> std::process::Output {
    t.command(ETL)
        .args(["--bucket", BUCKET, "--key", key, "--bad-rows", "quarantine"])
        .output()
        .unwrap()
}

#[test]
fn a_clean_new_version_removes_the_old_versions_sidecar() {
    let t = TestContext::new();
    t.put("input/q/x.csv", "1,aaa,100\n2,bbb\n3,ccc,300\n4,ddd,400\n");
    assert_exit(&quarantine_run(&t, "input/q/x.csv"), 0);
    assert!(t.get("output/q/x.rejected.jsonl").is_some());
    t.put(
        "input/q/x.csv",
        "1,aaa,100\n2,bbb,200\n3,ccc,300\n4,ddd,400\n",
    );
    let out = quarantine_run(&t, "input/q/x.csv");
    assert_exit(&out, 0);
    assert_eq!(t.keys("output/q/"), ["output/q/x.parquet"]);
    // The same holds when the clean version is converted without quarantine.
    t.put("input/q/x.csv", "1,aaa,100\n2,bbb\n3,ccc,300\n4,ddd,400\n");
    assert_exit(&quarantine_run(&t, "input/q/x.csv"), 0);
    assert!(t.get("output/q/x.rejected.jsonl").is_some());
    t.put("input/q/x.csv", "1,aaa,100\n3,ccc,300\n4,ddd,400\n");
    let out = t
        .command(env!("CARGO_BIN_EXE_etl"))
        .args(["--bucket", BUCKET, "--key", "input/q/x.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(t.keys("output/q/"), ["output/q/x.parquet"]);
}

#[test]
fn an_unpublished_output_leaves_no_sidecar() {
    let t = TestContext::new();
    t.put("input/q/y.csv", "1,aaa,100\n2,bbb\n3,ccc,300\n4,ddd,400\n");
    t.s3.refuse(
        "PutObject",
        "y.parquet",
        etl_test_support::s3::S3ErrorCode::InternalError,
    );
    let out = quarantine_run(&t, "input/q/y.csv");
    assert_exit(&out, 1);
    assert!(t.keys("output/").is_empty(), "{:?}", t.keys("output/"));
    t.s3.clear_refusals();
    assert_exit(&quarantine_run(&t, "input/q/y.csv"), 0);
    assert_eq!(
        t.keys("output/q/"),
        ["output/q/y.parquet", "output/q/y.rejected.jsonl"]
    );
}

fn states(t: &TestContext, prefix: &str) -> Vec<(String, String)> {
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--prefix", prefix, "--dry-run"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["key"].as_str().unwrap().to_owned(),
                v["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_bad_source_is_remembered_by_its_etag_until_it_changes() {
    let t = TestContext::new();
    t.put_file("input/m/good.csv", &testdata("20230414/1.csv"));
    t.put("input/m/bad.csv", "1,aaa,100\n2,bbb\n");
    let sweep = || {
        t.command(ETL)
            .args(["--bucket", BUCKET, "--prefix", "input/m/"])
            .output()
            .unwrap()
    };
    let out = sweep();
    assert_exit(&out, 2);
    assert!(t.get(".etl/bad/output/m/bad.parquet.json").is_some());

    t.s3.clear_requests();
    let out = sweep();
    assert_exit(&out, 2);
    assert!(
        stdout(&out).contains("\"status\":\"bad\""),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    let downloads =
        t.s3.requests()
            .into_iter()
            .filter(|r| r.is_object_get() && r.path.ends_with("/input/m/bad.csv"))
            .count();
    assert_eq!(downloads, 0, "a known bad source was downloaded again");

    t.put("input/m/new.csv", "1,x,1\n");
    t.put("input/m/good.csv", "1,y,2\n");
    assert_eq!(
        states(&t, "input/m/"),
        [
            ("input/m/bad.csv".to_owned(), "bad".to_owned()),
            ("input/m/good.csv".to_owned(), "stale".to_owned()),
            ("input/m/new.csv".to_owned(), "missing".to_owned()),
        ]
    );

    t.put("input/m/bad.csv", "1,aaa,100\n2,bbb,200\n");
    let out = sweep();
    assert_exit(&out, 0);
    assert_eq!(
        t.keys("output/m/"),
        [
            "output/m/bad.parquet",
            "output/m/good.parquet",
            "output/m/new.parquet"
        ]
    );
    assert!(
        states(&t, "input/m/")
            .iter()
            .all(|(_, s)| s == "up-to-date")
    );
}

#[test]
fn two_sources_for_one_output_key_are_refused_before_any_write() {
    let t = TestContext::new();
    t.put("input/k/x.csv", "1,a,1\n");
    t.put("input/k/x.CSV", "2,b,2\n");
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--prefix", "input/k/"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("s3://etlproj/input/k/x.CSV")
            && stderr(&out).contains("s3://etlproj/input/k/x.csv"),
        "{}",
        stderr(&out)
    );
    assert!(t.keys("output/").is_empty());
    // Across runs: the output records its source, another source may not replace it.
    assert_exit(
        &t.command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/k/x.csv"])
            .output()
            .unwrap(),
        0,
    );
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/k/x.CSV"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("input/k/x.csv"), "{}", stderr(&out));
    let batches = read_parquet(t.get("output/k/x.parquet").unwrap());
    assert_eq!(batches[0].num_rows(), 1);
    let no = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(no.value(0), 1);
}

/// A sweep prints one line per object as each finishes (completion order) and keeps only
/// counters for its summary.
#[test]
fn a_sweep_over_two_thousand_objects_prints_a_line_for_each() {
    let t = TestContext::new();
    for n in 0..2000 {
        t.put(
            &format!("input/many/{n:04}.csv"),
            format!("id,v\n{n},x{n}\n"),
        );
    }
    let out = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--prefix",
            "input/many/",
            "--format",
            "jsonl",
            "--jobs",
            "16",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2000);
    let keys: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["key"].as_str()).collect();
    assert_eq!(keys.len(), 2000);
    assert!(lines.iter().all(|l| l["status"] == "converted"));
    // One listing page holds 1,000 keys.
    assert_eq!(t.keys("output/many/0").len(), 1000);
    assert_eq!(t.keys("output/many/1").len(), 1000);
    assert!(stderr(&out).contains("converted=2000"), "{}", stderr(&out));
}
