//! Real-world CSV at the edges: compressed objects and sweeps, stdin, widening and
//! converting again, schema contracts (`--print-schema`, `--schema`).

use std::io::Write as _;
use std::process::Stdio;

use arrow_array::Array;
use arrow_schema::DataType;

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");

fn types(batches: &[arrow_array::RecordBatch]) -> Vec<String> {
    batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect()
}

fn run_with_stdin(t: &TestContext, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = t
        .command(ETL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_gzip_object_converts_to_its_stem_and_sweeps_pick_up_compressed_inputs() {
    let t = TestContext::new();
    t.put_file(
        "input/day/exports.csv.gz",
        &testdata("realworld/pandas-to-csv.csv.gz"),
    );
    t.put_file("input/day/seed.csv", &testdata("test.csv"));
    t.put("input/day/notes.txt", "not a csv");
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--prefix", "input/day/"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        t.keys("output/"),
        ["output/day/exports.parquet", "output/day/seed.parquet"]
    );
    let batches = read_parquet(t.get("output/day/exports.parquet").unwrap());
    assert_eq!(batches[0].num_rows(), 4);
    assert_eq!(
        types(&batches),
        [
            "column_1:Int64",
            "city:Utf8",
            "temp:Float64",
            "rain:Float64",
            "when:Timestamp(µs)",
            "flag:Boolean"
        ]
    );
}

#[test]
fn stdin_converts_and_a_late_misfit_there_names_column_line_and_schema() {
    let t = TestContext::new();
    let out = run_with_stdin(
        &t,
        &["--input", "-", "--output", "out.parquet"],
        b"id;price\n1;3,50\n2;NA\n",
    );
    assert_exit(&out, 0);
    let batches = read_parquet(std::fs::read(t.dir.path().join("out.parquet")).unwrap());
    assert_eq!(types(&batches), ["id:Int64", "price:Float64"]);
    assert_eq!(batches[0].column(1).null_count(), 1);

    // Past the 1 MiB sample a value does not fit: stdin cannot be read twice.
    let mut body = String::from("id,score\n");
    for i in 1..=300_000 {
        body.push_str(&format!("{i},{}\n", i % 50));
    }
    body.push_str("300001,secret-value\n");
    let out = run_with_stdin(
        &t,
        &["--input", "-", "--output", "late.parquet"],
        body.as_bytes(),
    );
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("line 300002: column 'score'"), "{err}");
    assert!(err.contains("--schema"), "{err}");
    assert!(!err.contains("secret-value"), "raw value in the log: {err}");
    assert!(!t.dir.path().join("late.parquet").exists());
}

#[test]
fn a_local_file_whose_late_value_does_not_fit_is_converted_again_widened() {
    let t = TestContext::new();
    // Compressed: no sampling from offsets, so the misfit shows only while converting.
    let mut body = String::from("id,score\n");
    for i in 1..=300_000 {
        body.push_str(&format!("{i},{}\n", i % 50));
    }
    body.push_str("300001,2.5\n");
    let mut gz = flate2_free_gzip(body.as_bytes());
    let path = t.dir.path().join("late.csv.gz");
    std::fs::write(&path, std::mem::take(&mut gz)).unwrap();
    let out = t
        .command(ETL)
        .args(["--input", "late.csv.gz"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert_eq!(
        err.matches("converting again with the column widened")
            .count(),
        1,
        "{err}"
    );
    let batches = read_parquet(std::fs::read(t.dir.path().join("late.parquet")).unwrap());
    assert_eq!(types(&batches), ["id:Int64", "score:Float64"]);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 300_001);
}

/// A gzip member with stored (uncompressed) deflate blocks: enough for a test input
/// without a compression library in the test's dependencies.
pub(crate) fn flate2_free_gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (index, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(index + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn print_schema_then_pin_it_for_a_local_file_and_an_object() {
    let t = TestContext::new();
    let input = testdata("realworld/database-export.csv");
    let out = t
        .command(ETL)
        .arg("--input")
        .arg(&input)
        .arg("--print-schema")
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let printed = stdout(&out);
    assert!(
        printed
            .contains("\nid: int64\nuser_id: int64\namount: float64\ncreated_at: timestamp_utc\n"),
        "{printed}"
    );

    t.put_file("input/db.csv", &input);
    let out = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/db.csv",
            "--print-schema",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), printed);
    assert!(t.keys("output/").is_empty());

    // Pinned: amount as text, and the footer records the schema used.
    let schema = t.write_file(
        "db.schema",
        &printed.replace("amount: float64", "amount: text"),
    );
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/db.csv", "--schema"])
        .arg(&schema)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let bytes = t.get("output/db.parquet").unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes.clone()),
    )
    .unwrap();
    let footer = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .find(|kv| kv.key == "etl.schema")
        .and_then(|kv| kv.value.clone());
    assert_eq!(
        footer.as_deref(),
        Some(
            "id:int64,user_id:int64,amount:text,created_at:timestamp_utc,deleted_at:timestamp_utc,note:text"
        )
    );
    let batches = read_parquet(bytes);
    assert_eq!(batches[0].schema().field(2).data_type(), &DataType::Utf8);

    // A value that does not fit a pinned type is bad input at its line.
    let schema = t.write_file("bad.schema", &printed.replace("note: text", "note: int64"));
    let out = t
        .command(ETL)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(t.dir.path().join("x.parquet"))
        .arg("--schema")
        .arg(&schema)
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("line 2: column 'note': a value does not fit int64"),
        "{}",
        stderr(&out)
    );
}

/// `--schema s3://bucket/key`: the schema file is read from the bucket and pins the types
/// (amount as text, not the float64 inference gives); a missing key is exit 2 naming it,
/// with no output.
#[test]
fn a_schema_stored_in_s3_pins_the_types() {
    let t = TestContext::new();
    t.put(
        "input/pay.csv",
        "id,amount,note\n1,3.50,a\n2,4.25,b\n".as_bytes(),
    );
    t.put(
        "schemas/pay.schema",
        "id: int64\namount: text\nnote: text\n".as_bytes(),
    );
    let out = t
        .command(ETL)
        .args([
            "--key",
            &format!("s3://{BUCKET}/input/pay.csv"),
            "--schema",
            &format!("s3://{BUCKET}/schemas/pay.schema"),
        ])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let batches = read_parquet(t.get("output/pay.parquet").expect("output/pay.parquet"));
    assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Int64);
    assert_eq!(batches[0].schema().field(1).data_type(), &DataType::Utf8);
    let amounts = batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    assert_eq!(amounts.value(0), "3.50");

    // The same for a local input.
    let input = t.write_file("pay.csv", "id,amount,note\n1,3.50,a\n");
    let output = t.dir.path().join("pay.parquet");
    let out = t
        .command(ETL)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(["--schema", &format!("s3://{BUCKET}/schemas/pay.schema")])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let batches = read_parquet(std::fs::read(&output).unwrap());
    assert_eq!(batches[0].schema().field(1).data_type(), &DataType::Utf8);

    let missing = format!("s3://{BUCKET}/schemas/missing.schema");
    let out = t
        .command(ETL)
        .args([
            "--key",
            &format!("s3://{BUCKET}/input/pay.csv"),
            "--output-key",
            "output/other.parquet",
            "--schema",
            &missing,
        ])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(stderr(&out).contains(&missing), "{}", stderr(&out));
    assert!(t.get("output/other.parquet").is_none());
}
