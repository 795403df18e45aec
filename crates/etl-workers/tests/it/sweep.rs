//! Sweeps longer than one batch (`ETL_SWEEP_BATCH`, lowered here to 10 objects, with pages of
//! 5 keys): a checking pass, then a second listing streamed into the conversions.

use etl_test_support::s3::RecordedRequest;

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

fn is_list(r: &RecordedRequest) -> bool {
    r.method == "GET" && r.query.contains("list-type")
}

fn lists(t: &TestContext) -> usize {
    t.s3.requests().iter().filter(|r| is_list(r)).count()
}

/// `etl --bucket etlproj --prefix P` with a batch of `batch` objects and 5-key pages.
fn sweep(t: &TestContext, prefix: &str, batch: usize, extra: &[&str]) -> std::process::Output {
    t.command(ETL)
        .env("ETL_SWEEP_BATCH", batch.to_string())
        .env("ETL_LIST_PAGE_KEYS", "5")
        .args(["--bucket", BUCKET, "--prefix", prefix])
        .args(extra)
        .output()
        .unwrap()
}

fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn keys_of(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["key"].as_str().expect("a key").to_owned())
        .collect()
}

#[test]
fn a_sweep_longer_than_one_batch_lists_twice_and_converts_as_it_lists() {
    let t = TestContext::new();
    let keys: Vec<String> = (0..50).map(|n| format!("input/b/{n:02}.csv")).collect();
    for (n, key) in keys.iter().enumerate() {
        t.put(key, format!("id,v\n{n},x{n}\n"));
    }

    // Dry run: a line per object in listing order; 10 pages checked, 10 listed again.
    t.s3.clear_requests();
    let out = sweep(&t, "input/b/", 10, &["--dry-run", "--jobs", "4"]);
    assert_exit(&out, 0);
    let lines = json_lines(&out);
    assert_eq!(keys_of(&lines), keys);
    assert!(lines.iter().all(|l| l["state"] == "missing"), "{lines:?}");
    assert_eq!(lists(&t), 20);
    assert!(!t.s3.requests().iter().any(|r| r.is_put()));

    // Plan: the same order, each with its size.
    let out = sweep(&t, "input/b/", 10, &["--plan"]);
    assert_exit(&out, 0);
    let lines = json_lines(&out);
    assert_eq!(keys_of(&lines), keys);
    assert_eq!(lines[7]["size"], "id,v\n7,x7\n".len());

    t.s3.clear_requests();
    let out = sweep(&t, "input/b/", 10, &["--format", "jsonl", "--jobs", "2"]);
    assert_exit(&out, 0);
    let requests = t.s3.requests();
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 50);
    assert!(
        lines.iter().all(|l| l["status"] == "converted"),
        "{lines:?}"
    );
    let mut converted = keys_of(&lines);
    converted.sort();
    assert_eq!(converted, keys);
    assert_eq!(t.keys("output/b/").len(), 50);
    assert_eq!(
        t.get("output/b/37.jsonl").unwrap(),
        b"{\"id\":37,\"v\":\"x37\"}\n"
    );
    assert!(
        stderr(&out).contains("objects=50") && stderr(&out).contains("converted=50"),
        "{}",
        stderr(&out)
    );
    // Two passes of 10 pages. The second is read as the conversions go: a task lists at
    // most two pages ahead of the one being handed out, so by the first write at most three
    // pages of the second pass were asked for (all ten with the listing read up front).
    assert_eq!(requests.iter().filter(|r| is_list(r)).count(), 20);
    let first_put = requests.iter().position(|r| r.is_put()).expect("a PUT");
    let lists_before = requests[..first_put].iter().filter(|r| is_list(r)).count();
    assert!(
        (11..=13).contains(&lists_before),
        "{lists_before} LISTs before the first write: {requests:?}"
    );

    // A rerun: every object up to date, nothing written.
    t.s3.clear_requests();
    let out = sweep(&t, "input/b/", 10, &["--format", "jsonl"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).matches("\"up-to-date\"").count(), 50);
    assert!(!t.s3.requests().iter().any(|r| r.is_put()));
    assert_eq!(lists(&t), 20);
}

#[test]
fn a_collision_pages_apart_in_a_long_sweep_is_refused_before_any_write() {
    let t = TestContext::new();
    t.put("input/c/a/dup.csv", "1,a,1\n");
    for n in 0..48 {
        t.put(&format!("input/c/m/{n:02}.csv"), format!("{n},m,{n}\n"));
    }
    t.put("input/c/z/dup.csv", "2,z,2\n");
    let template = ["--output-key", "flat/{stem}.{ext}"];

    // Held (a batch of 100): one pass of 10 pages.
    t.s3.clear_requests();
    let out = sweep(&t, "input/c/", 100, &template);
    assert_exit(&out, 2);
    assert_eq!(lists(&t), 10);

    // Longer than the batch: the checking pass finds the shared output hash, a second look
    // finds both sources; nothing is written.
    t.s3.clear_requests();
    let out = sweep(&t, "input/c/", 10, &template);
    assert_exit(&out, 2);
    let message = stderr(&out);
    assert!(
        message.contains("s3://etlproj/input/c/a/dup.csv")
            && message.contains("s3://etlproj/input/c/z/dup.csv")
            && message.contains("s3://etlproj/flat/dup.parquet"),
        "{message}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let requests = t.s3.requests();
    assert_eq!(requests.iter().filter(|r| is_list(r)).count(), 20);
    assert!(
        requests.iter().all(is_list),
        "only listings before the refusal: {requests:?}"
    );
    assert!(t.keys("flat/").is_empty());
    assert!(t.keys(".etl/").is_empty());
    assert_eq!(t.keys("").len(), 50);

    // Without the second source, the long sweep converts all 49.
    t.delete("input/c/z/dup.csv");
    let out = sweep(&t, "input/c/", 10, &template);
    assert_exit(&out, 0);
    assert_eq!(t.keys("flat/").len(), 49);
}

#[test]
fn a_listing_that_fails_during_the_converting_pass_is_a_failure_not_an_empty_sweep() {
    let t = TestContext::new();
    for n in 0..12 {
        t.put(&format!("input/f/{n:02}.csv"), format!("{n},f,{n}\n"));
    }
    // The checking pass is 3 LISTs and nothing else; the converting pass starts with the 4th.
    t.s3.clear_requests();
    t.s3.fail_nth(3, etl_test_support::s3::S3ErrorCode::AccessDenied);
    let out = sweep(&t, "input/f/", 10, &[]);
    assert_eq!(
        t.s3.failed_request().as_deref(),
        Some("ListObjectsV2 "),
        "{:?}",
        t.s3.requests()
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("the listing of s3://etlproj/input/f/ failed after 0 objects")
            && stderr(&out).contains("ListObjectsV2"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("failed=1"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(t.keys("output/").is_empty());
}
