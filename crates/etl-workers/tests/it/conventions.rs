//! The conventions of command-line data tools: boolean environment variables, the output
//! format from the output's extension, `--plan` only for objects, a closed stdout pipe.

use std::io::Read as _;
use std::process::Stdio;

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

fn status_of(out: &std::process::Output) -> String {
    let line: serde_json::Value =
        serde_json::from_str(stdout(out).lines().next().unwrap_or("{}")).unwrap();
    line["status"].as_str().unwrap_or("").to_owned()
}

#[test]
fn boolean_environment_variables_take_1_0_yes_no() {
    let t = TestContext::new();
    t.put_file("input/test.csv", &testdata("test.csv"));
    let run = |force: &str| {
        t.command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/test.csv"])
            .env("ETL_FORCE", force)
            .output()
            .unwrap()
    };
    let first = run("0");
    assert_exit(&first, 0);
    assert_eq!(status_of(&first), "converted");
    for (value, status) in [
        ("no", "up-to-date"),
        ("1", "converted"),
        ("yes", "converted"),
        ("false", "up-to-date"),
    ] {
        let out = run(value);
        assert_exit(&out, 0);
        assert_eq!(status_of(&out), status, "ETL_FORCE={value}");
    }
}

#[test]
fn the_output_extension_picks_the_format_and_a_mismatch_is_refused() {
    let t = TestContext::new();
    let input = testdata("test.csv");
    let jsonl = t.dir.path().join("out.jsonl");
    let out = t
        .command(ETL)
        .args(["--input", input.to_str().unwrap(), "--output"])
        .arg(&jsonl)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["name"], "aaa");
    assert_eq!(text.lines().count(), 3);

    let csv = t.dir.path().join("out.csv");
    let out = t
        .command(ETL)
        .args([
            "--input",
            input.to_str().unwrap(),
            "--format",
            "parquet",
            "--output",
        ])
        .arg(&csv)
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("names a csv file but --format is parquet"));
    assert!(!csv.exists());
}

#[test]
fn plan_is_for_objects_not_local_files() {
    let t = TestContext::new();
    let input = t.write_file("local.csv", "1,aaa,100\n");
    let out = t
        .command(ETL)
        .args(["--input", input.to_str().unwrap(), "--plan"])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(!t.dir.path().join("local.parquet").exists());
}

#[test]
fn a_reader_closing_stdout_early_is_not_a_failure() {
    let t = TestContext::new();
    let input = t.write_file("big.csv", &csv_rows(500_000));
    let mut child = t
        .command(ETL)
        .args([
            "--input",
            input.to_str().unwrap(),
            "--output",
            "-",
            "--format",
            "csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The pipe's read end is dropped here, as `| head -c 64` would.
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("ERROR"), "{}", stderr(&out));
    assert!(head.starts_with(b"no,name,score\n"));
}

#[test]
fn s3_uris_name_bucket_and_key_and_tsv_objects_are_swept() {
    let t = TestContext::new();
    t.put_file("input/test.csv", &testdata("test.csv"));
    let out = t
        .command(ETL)
        .args(["--key", &format!("s3://{BUCKET}/input/test.csv")])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(t.get("output/test.parquet").is_some());

    let out = t
        .command(ETL)
        .args([
            "--bucket",
            "another",
            "--key",
            &format!("s3://{BUCKET}/input/test.csv"),
        ])
        .output()
        .unwrap();
    assert_exit(&out, 2);

    t.put(
        "input/day/tabs.tsv",
        "no\tname\tscore\n1\taaa\t100\n2\tbbb\t80\n",
    );
    let out = t
        .command(ETL)
        .args(["--prefix", &format!("s3://{BUCKET}/input/day/")])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let batches = read_parquet(t.get("output/day/tabs.parquet").expect("tsv swept"));
    assert_eq!(batches[0].num_columns(), 3);
    assert_eq!(batches[0].num_rows(), 2);
}

#[test]
fn agg_takes_a_folder_without_its_final_slash() {
    let t = TestContext::new();
    for name in ["1", "2"] {
        t.put_file(
            &format!("input/20230414/{name}.csv"),
            &testdata(&format!("20230414/{name}.csv")),
        );
    }
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--prefix", "input/20230414/"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let out = t
        .command(env!("CARGO_BIN_EXE_agg"))
        .args(["--bucket", BUCKET, "--prefix", "output/20230414"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let text = String::from_utf8(t.get("output/20230414/agg.txt").expect("agg.txt")).unwrap();
    assert!(text.starts_with("index"), "{text}");
}

#[test]
fn repeated_column_names_are_made_unique() {
    let t = TestContext::new();
    let input = t.write_file("dup.csv", "a,a,b\n1,2,3\n");
    let output = t.dir.path().join("dup.parquet");
    let out = t
        .command(ETL)
        .args(["--input", input.to_str().unwrap(), "--output"])
        .arg(&output)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("a repeated column name is renamed"));
    let batches = read_parquet(std::fs::read(&output).unwrap());
    let names: Vec<_> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["a", "a_2", "b"]);
}

#[test]
fn s3_settings_that_cannot_work_are_exit_2_before_any_request() {
    let t = TestContext::new();
    t.put_file("input/test.csv", &testdata("test.csv"));
    let run = |command: &mut std::process::Command| {
        command
            .args(["--bucket", BUCKET, "--key", "input/test.csv"])
            .output()
            .unwrap()
    };
    let out = run(t.command(ETL).env("AWS_ENDPOINT_URL", "not-a-url"));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("AWS_ENDPOINT_URL=not-a-url is not an endpoint URL"));

    let out = run(t
        .command(ETL)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"));
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no usable AWS credentials"),
        "{}",
        stderr(&out)
    );
    assert!(t.get("output/test.parquet").is_none());
}

#[test]
fn unusable_local_paths_are_exit_2_before_any_work() {
    let t = TestContext::new();
    let input = t.write_file("local.csv", "1,aaa,100\n");
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--input",
                input.to_str().unwrap(),
                "--output",
                "/nonexistent/dir/x.parquet",
            ],
            "the folder /nonexistent/dir does not exist",
        ),
        (
            &[
                "--input",
                t.dir.path().to_str().unwrap(),
                "--output",
                "x.parquet",
            ],
            "a folder",
        ),
        (
            &[
                "--input",
                input.to_str().unwrap(),
                "--result-dir",
                input.to_str().unwrap(),
            ],
            "--result-dir",
        ),
    ];
    for (args, message) in cases {
        let out = t.command(ETL).args(args).output().unwrap();
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains(".etl-"), "{}", stderr(&out));
    }
    assert!(!t.dir.path().join("local.parquet").exists());
}
