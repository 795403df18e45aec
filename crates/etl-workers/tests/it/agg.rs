//! `agg` against the S3 test server: the seed's day, ties, skips, settling, concurrency.

use std::time::Duration;

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");
const AGG: &str = env!("CARGO_BIN_EXE_agg");

const SEED_RESULT: &str = "index      2\nno         9\nname     iii\nscore    100";

fn seed_day(t: &TestContext) {
    for n in 1..=3 {
        let key = format!("input/20230414/{n}.csv");
        t.put_file(&key, &testdata(&format!("20230414/{n}.csv")));
    }
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--prefix", "input/20230414/"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
}

fn agg(t: &TestContext, extra: &[&str]) -> std::process::Output {
    t.command(AGG)
        .args(["--bucket", BUCKET, "--prefix", "output/20230414/"])
        .args(extra)
        .output()
        .unwrap()
}

fn agg_txt(t: &TestContext) -> String {
    String::from_utf8(t.get("output/20230414/agg.txt").expect("agg.txt")).unwrap()
}

#[test]
fn seed_day_gives_the_seed_result_and_reads_little() {
    let t = TestContext::new();
    seed_day(&t);
    t.s3.clear_requests();
    let event = minio_notification(BUCKET, &["output/20230414/3.parquet"]);
    let out = t.command(AGG).args(["--event", &event]).output().unwrap();
    assert_exit(&out, 0);
    // Every object GET is a range request: footers and column chunks, never whole files.
    let gets: Vec<_> =
        t.s3.requests()
            .into_iter()
            .filter(|r| r.is_object_get())
            .collect();
    assert!(!gets.is_empty());
    assert!(gets.iter().all(|r| r.range.is_some()), "{gets:?}");
    assert_eq!(agg_txt(&t), SEED_RESULT);
    let report: serde_json::Value =
        serde_json::from_slice(&t.get("output/20230414/agg.json").unwrap()).unwrap();
    assert_eq!(report["source_key"], "output/20230414/3.parquet");
    assert_eq!(report["files"], 3);
    assert_eq!(report["index"], 2);

    // Up to date: a LIST and a HEAD, nothing downloaded, nothing written.
    t.s3.clear_requests();
    let out = t.command(AGG).args(["--event", &event]).output().unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
    let methods: Vec<String> = t.s3.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["GET", "HEAD"], "{:?}", t.s3.requests());
    assert!(t.s3.requests()[0].query.contains("list-type"));
}

#[test]
fn ties_go_to_the_first_file_in_key_order_then_the_first_row() {
    let t = TestContext::new();
    t.put("input/20230414/b.csv", "1,late,100\n2,later,100\n");
    t.put(
        "input/20230414/a.csv",
        "3,x,5\n4,early,100\n5,earlier-row-later,100\n",
    );
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--prefix", "input/"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_exit(&agg(&t, &[]), 0);
    assert_eq!(
        agg_txt(&t),
        "index        1\nno           4\nname     early\nscore      100"
    );
}

#[test]
fn a_new_file_invalidates_the_aggregate() {
    let t = TestContext::new();
    seed_day(&t);
    assert_exit(&agg(&t, &[]), 0);
    t.put("input/20230414/4.csv", "10,jjj,101\n");
    assert_exit(
        &t.command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/20230414/4.csv"])
            .output()
            .unwrap(),
        0,
    );
    let out = agg(&t, &[]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("written"));
    assert_eq!(
        agg_txt(&t),
        "index      0\nno        10\nname     jjj\nscore    101"
    );
}

#[test]
fn settle_waits_for_a_file_arriving_meanwhile() {
    let t = TestContext::new();
    seed_day(&t);
    let child = t
        .command(AGG)
        .args([
            "--bucket",
            BUCKET,
            "--prefix",
            "output/20230414/",
            "--settle",
            "3s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    t.put("input/20230414/4.csv", "10,jjj,101\n");
    assert_exit(
        &t.command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/20230414/4.csv"])
            .output()
            .unwrap(),
        0,
    );
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("inputs changed while settling"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        agg_txt(&t),
        "index      0\nno        10\nname     jjj\nscore    101"
    );
}

#[test]
fn concurrent_runs_end_with_the_aggregate_of_the_final_inputs() {
    let t = TestContext::new();
    seed_day(&t);
    let children: Vec<_> = (0..4)
        .map(|_| {
            t.command(AGG)
                .args(["--bucket", BUCKET, "--prefix", "output/20230414/"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert_exit(&child.wait_with_output().unwrap(), 0);
    }
    assert_eq!(agg_txt(&t), SEED_RESULT);
}

#[test]
fn empty_folder_is_nothing_to_do() {
    let t = TestContext::new();
    let out = agg(&t, &[]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("no Parquet objects"),
        "{}",
        stderr(&out)
    );
    assert!(t.get("output/20230414/agg.txt").is_none());
}

#[test]
fn corrupt_parquet_exits_2_naming_the_key() {
    let t = TestContext::new();
    seed_day(&t);
    t.put("output/20230414/broken.parquet", "definitely not parquet");
    let out = agg(&t, &[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("output/20230414/broken.parquet"),
        "{}",
        stderr(&out)
    );
    assert!(t.get("output/20230414/agg.txt").is_none());
}

#[test]
fn dry_run_names_the_folders() {
    let t = TestContext::new();
    let event = minio_notification(
        BUCKET,
        &[
            "output/20230414/1.parquet",
            "output/20230414/2.parquet",
            "output/20230415/1.parquet",
        ],
    );
    let out = t
        .command(AGG)
        .args(["--event", &event, "--dry-run"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 2);
    assert!(stdout(&out).contains("\"prefix\":\"output/20230415/\""));
    assert!(t.s3.requests().is_empty());
}

#[test]
fn each_folder_aggregates_only_changed_days() {
    let t = TestContext::new();
    seed_day(&t);
    t.put("input/20230415/1.csv", "1,x,5\n2,y,7\n");
    assert_exit(
        &t.command(ETL)
            .args(["--bucket", BUCKET, "--prefix", "input/"])
            .output()
            .unwrap(),
        0,
    );
    let all_days = |t: &TestContext| {
        t.command(AGG)
            .args(["--bucket", BUCKET, "--prefix", "output/", "--each-folder"])
            .output()
            .unwrap()
    };
    let out = all_days(&t);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out).matches("\"written\"").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert_eq!(agg_txt(&t), SEED_RESULT);
    let other = String::from_utf8(t.get("output/20230415/agg.txt").unwrap()).unwrap();
    assert_eq!(other, "index    1\nno       2\nname     y\nscore    7");

    // Only the day that changed is aggregated again.
    t.put("input/20230415/2.csv", "3,z,9\n");
    assert_exit(
        &t.command(ETL)
            .args(["--bucket", BUCKET, "--prefix", "input/"])
            .output()
            .unwrap(),
        0,
    );
    let out = all_days(&t);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains(
            "{\"bucket\":\"etlproj\",\"prefix\":\"output/20230414/\",\"status\":\"up-to-date\"}"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(
            "{\"bucket\":\"etlproj\",\"prefix\":\"output/20230415/\",\"status\":\"written\"}"
        ),
        "{}",
        stdout(&out)
    );
}

/// Sum of the byte ranges the server was asked for.
fn ranged_bytes(t: &TestContext) -> u64 {
    t.s3.requests()
        .iter()
        .filter_map(|r| r.range.as_deref())
        .filter_map(|range| {
            let (start, end) = range.strip_prefix("bytes=")?.split_once('-')?;
            Some(end.parse::<u64>().ok()? - start.parse::<u64>().ok()? + 1)
        })
        .sum()
}

/// What agg reads: footers, the score column of every file, and the pages holding the
/// winning row; with 8 files that is a small fraction of the data.
#[test]
fn reads_the_score_column_not_the_files() {
    let t = TestContext::new();
    let mut total = 0u64;
    for file in 0..8u64 {
        let mut body = String::new();
        for i in 0..60_000u64 {
            let n = file * 60_000 + i;
            body.push_str(&format!(
                "{n},{:032x},{}\n",
                n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                (n * 7919) % 100_000
            ));
        }
        t.put(&format!("input/big/{file}.csv"), body);
    }
    assert_exit(
        &t.command(ETL)
            .args(["--bucket", BUCKET, "--prefix", "input/big/"])
            .output()
            .unwrap(),
        0,
    );
    for key in t.keys("output/big/") {
        total += t.get(&key).unwrap().len() as u64;
    }
    t.s3.clear_requests();
    let out = t
        .command(AGG)
        .args(["--bucket", BUCKET, "--prefix", "output/big/"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let read = ranged_bytes(&t);
    assert!(
        read * 100 < total * 15,
        "agg read {read} of {total} bytes: more than 15% of the data"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&t.get("output/big/agg.json").unwrap()).unwrap();
    assert_eq!(report["files"], 8);
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "agg read {read} of {total} bytes ({:.1}%)",
            read as f64 * 100.0 / total as f64
        );
    }
}

/// Makes a key unwritable on the file-backed test server (a directory stands where the
/// object would go): the PUT of that key fails with a server error.
fn block_key(t: &TestContext, key: &str) -> std::path::PathBuf {
    let path = t.s3.root().join(BUCKET).join(key);
    std::fs::create_dir_all(path.join("blocked")).unwrap();
    path
}

#[test]
fn a_failed_write_of_either_file_then_a_plain_rerun_leaves_both_right() {
    for failing in ["agg.txt", "agg.json"] {
        let t = TestContext::new();
        seed_day(&t);
        let blocked = block_key(&t, &format!("output/20230414/{failing}"));
        let out = agg(&t, &[]);
        assert_exit(&out, 1);
        if failing == "agg.txt" {
            assert!(
                t.get("output/20230414/agg.json").is_none(),
                "the commit record was written before agg.txt"
            );
        }
        std::fs::remove_dir_all(&blocked).unwrap();
        let out = agg(&t, &[]);
        assert_exit(&out, 0);
        assert!(
            stdout(&out).contains("\"written\""),
            "{failing}: {}",
            stdout(&out)
        );
        assert_eq!(agg_txt(&t), SEED_RESULT, "{failing}");
        let report: serde_json::Value =
            serde_json::from_slice(&t.get("output/20230414/agg.json").unwrap()).unwrap();
        assert_eq!(report["source_key"], "output/20230414/3.parquet");
        let out = agg(&t, &[]);
        assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
    }
}

#[test]
fn another_column_is_not_up_to_date() {
    let t = TestContext::new();
    seed_day(&t);
    assert_exit(&agg(&t, &[]), 0);
    let out = agg(&t, &["--column", "no"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("\"written\""), "{}", stdout(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&t.get("output/20230414/agg.json").unwrap()).unwrap();
    assert_eq!(report["column"], "no");
    assert!(agg_txt(&t).starts_with("index"), "{}", agg_txt(&t));
    let out = agg(&t, &["--column", "no"]);
    assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
}

#[test]
fn each_folder_goes_on_past_a_bad_folder_and_exits_like_a_sweep() {
    let t = TestContext::new();
    seed_day(&t);
    t.put("output/20230401/bad.parquet", "not parquet at all");
    t.put("output/20230501/bad.parquet", "not parquet either");
    let out = t
        .command(AGG)
        .args(["--bucket", BUCKET, "--prefix", "output/", "--each-folder"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert_eq!(agg_txt(&t), SEED_RESULT);
    let text = stdout(&out);
    assert_eq!(text.matches("\"failed\"").count(), 2, "{text}");
    assert!(
        stderr(&out).contains("output/20230501/bad.parquet"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("output/20230401/bad.parquet"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn agg_json_holds_the_row_as_typed_json_and_an_old_layout_is_stale() {
    let t = TestContext::new();
    t.put(
        "input/typed/a.csv",
        "no,name,score,when,ok\n3,x,100.5,2023-04-14T10:00:00Z,true\n4,y,7.25,2023-04-15T00:00:00Z,false\n",
    );
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/typed/a.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let run = || {
        t.command(AGG)
            .args(["--bucket", BUCKET, "--prefix", "output/typed/"])
            .output()
            .unwrap()
    };
    let out = run();
    assert_exit(&out, 0);
    let bytes = t.get("output/typed/agg.json").unwrap();
    let report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        report["row"],
        serde_json::json!({"no": 3, "name": "x", "score": 100.5, "when": "2023-04-14T10:00:00Z", "ok": true})
    );
    let txt = String::from_utf8(t.get("output/typed/agg.txt").unwrap()).unwrap();
    assert!(txt.contains("2023-04-14T10:00:00Z"), "{txt}");
    // Keys in column order.
    let text = String::from_utf8(bytes).unwrap();
    let row = &text[text.find("\"row\"").unwrap()..];
    let order: Vec<usize> = ["\"no\"", "\"name\"", "\"score\"", "\"when\"", "\"ok\""]
        .iter()
        .map(|k| row.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");

    // An agg.json as an earlier version wrote it (string pairs, the same fingerprint, no
    // layout recorded) is stale: aggregated again, never an error.
    let metadata = t.head_metadata("output/typed/agg.json");
    let mut old = report.clone();
    old["row"] = serde_json::json!([["no", "3"], ["name", "x"], ["score", "100.5"]]);
    t.put_with_metadata(
        "output/typed/agg.json",
        serde_json::to_vec(&old).unwrap(),
        &[("etl-fingerprint", &metadata["etl-fingerprint"])],
    );
    let out = run();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("\"written\""), "{}", stdout(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&t.get("output/typed/agg.json").unwrap()).unwrap();
    assert_eq!(report["row"]["score"], 100.5);
    let out = run();
    assert!(stdout(&out).contains("up-to-date"), "{}", stdout(&out));
}
