//! The bad-input corpus (`testdata/bad/`): every case through `etl` against the S3 test
//! server, with its documented outcome; rejected inputs leave no output object.

use arrow_array::Array;

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

fn run_case(t: &TestContext, name: &str, body: Vec<u8>) -> std::process::Output {
    let key = format!("input/bad/{name}");
    t.put(&key, body);
    t.command(ETL)
        .args(["--bucket", BUCKET, "--key", &key])
        .output()
        .unwrap()
}

fn assert_rejected(
    t: &TestContext,
    name: &str,
    out: &std::process::Output,
    line: Option<u64>,
    message: &str,
) {
    assert_exit(out, 2);
    let err = stderr(out);
    assert!(
        err.contains(&format!("s3://etlproj/input/bad/{name}")),
        "{name}: {err}"
    );
    assert!(err.contains(message), "{name}: {err}");
    if let Some(line) = line {
        assert!(err.contains(&format!("line {line}:")), "{name}: {err}");
    }
    let stem = name.trim_end_matches(".csv");
    assert!(
        t.get(&format!("output/bad/{stem}.parquet")).is_none(),
        "{name}: an output appeared"
    );
}

#[test]
fn corpus_cases_have_their_documented_outcome() {
    let t = TestContext::new();
    let dir = testdata("bad");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let mut tried = 0;
    for (name, case) in expected.as_object().unwrap() {
        if name.starts_with('_') {
            continue;
        }
        tried += 1;
        let out = run_case(&t, name, std::fs::read(dir.join(name)).unwrap());
        match case["exit"].as_i64() {
            Some(2) => assert_rejected(
                &t,
                name,
                &out,
                case["line"].as_u64(),
                case["message"].as_str().unwrap(),
            ),
            Some(0) => {
                assert_exit(&out, 0);
                let stem = name.trim_end_matches(".csv");
                let bytes = t
                    .get(&format!("output/bad/{stem}.parquet"))
                    .expect("output");
                let schema =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        bytes::Bytes::from(bytes.clone()),
                    )
                    .unwrap()
                    .schema()
                    .clone();
                let batches = read_parquet(bytes);
                let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                assert_eq!(rows as u64, case["rows"].as_u64().unwrap(), "{name}");
                let types: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| f.data_type().to_string())
                    .collect();
                let want: Vec<String> = case["types"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(types, want, "{name}");
                for batch in &batches {
                    for column in batch.columns() {
                        assert_eq!(column.null_count(), 0, "{name}: a value was lost");
                    }
                }
            }
            other => panic!("{name}: unknown expected exit {other:?}"),
        }
    }
    assert!(tried >= 11, "corpus shrank: {tried}");
}

#[test]
fn a_numeric_column_turning_to_text_late_is_widened_and_converted_again() {
    let t = TestContext::new();
    let mut body = String::new();
    for i in 1..=120_000 {
        body.push_str(&format!("{i},name{i},{}\n", i % 100));
    }
    body.push_str("120001,late,not-a-number\n");
    let out = run_case(&t, "late-text.csv", body.into_bytes());
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("converting again with the column widened"),
        "{err}"
    );
    assert!(err.contains("120001"), "{err}");
    assert!(!err.contains("not-a-number"), "raw value in the log: {err}");
    let batches = read_parquet(t.get("output/bad/late-text.parquet").expect("output"));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 120_001);
    let schema = batches[0].schema();
    assert_eq!(schema.field(2).data_type(), &arrow_schema::DataType::Utf8);
    let last = batches.last().unwrap();
    let score = last
        .column(2)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    assert_eq!(score.value(score.len() - 1), "not-a-number");
}

#[test]
fn a_very_long_line_converts() {
    let t = TestContext::new();
    let body = format!("1,{},100\n2,b,80\n", "y".repeat(3 << 20));
    let out = run_case(&t, "long-line.csv", body.into_bytes());
    assert_exit(&out, 0);
    let batches = read_parquet(t.get("output/bad/long-line.parquet").expect("output"));
    assert_eq!(batches[0].num_rows(), 2);
}

#[test]
fn quarantine_keeps_bad_rows_in_a_sidecar_and_converts_the_rest() {
    let t = TestContext::new();
    let mut body = String::from("1,aaa,100\n2,bbb\n3,ccc,x3\n");
    for i in 4..=40 {
        body.push_str(&format!("{i},n{i},{i}\n"));
    }
    t.put("input/day/mixed.csv", body);
    // The pinned schema makes `x3` a bad row (without it, the column would be text).
    let schema = t.dir.path().join("schema.txt");
    std::fs::write(&schema, "no: int64\nname: text\nscore: int64\n").unwrap();
    let result_dir = t.dir.path().join("result");
    let out = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/day/mixed.csv",
            "--bad-rows",
            "quarantine",
            "--schema",
        ])
        .arg(&schema)
        .arg("--result-dir")
        .arg(&result_dir)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (line["rows"].as_u64(), line["bad_rows"].as_u64()),
        (Some(38), Some(2))
    );
    assert_eq!(
        std::fs::read_to_string(result_dir.join("bad_rows")).unwrap(),
        "2"
    );
    assert!(
        stderr(&out).contains("bad row set aside"),
        "{}",
        stderr(&out)
    );

    let sidecar =
        String::from_utf8(t.get("output/day/mixed.rejected.jsonl").expect("sidecar")).unwrap();
    let rows: Vec<serde_json::Value> = sidecar
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["line"].as_u64(), rows[0]["record"].as_str()),
        (Some(2), Some("2,bbb"))
    );
    assert_eq!(
        (rows[1]["line"].as_u64(), rows[1]["record"].as_str()),
        (Some(3), Some("3,ccc,x3"))
    );
    let batches = read_parquet(t.get("output/day/mixed.parquet").expect("output"));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 38);

    // skip: the same rows left out, no sidecar.
    t.put(
        "input/day/mixed2.csv",
        String::from_utf8(t.get("input/day/mixed.csv").unwrap()).unwrap(),
    );
    let out = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/day/mixed2.csv",
            "--bad-rows",
            "skip",
            "--schema",
        ])
        .arg(&schema)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(t.get("output/day/mixed2.rejected.jsonl").is_none());
    assert!(t.get("output/day/mixed2.parquet").is_some());
}
