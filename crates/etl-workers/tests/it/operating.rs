//! Operating limits and outputs: a record longer than `--max-record-bytes` is a bad row
//! read in bounded memory, `--compression` of CSV and JSON Lines outputs, plain type names.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Output};

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");
const AGG: &str = env!("CARGO_BIN_EXE_agg");

/// Writes `rows` seed rows with a `long`-byte name on `long_line`, streaming (the file is
/// never in memory): lines are 1-based, as in messages.
fn write_with_long_line(path: &Path, rows: u64, long_line: u64, long: usize) {
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::new(file);
    for line in 1..=rows {
        if line == long_line {
            write!(out, "{line},").unwrap();
            let piece = vec![b'y'; 1 << 20];
            let mut left = long;
            while left > 0 {
                let n = left.min(piece.len());
                out.write_all(&piece[..n]).unwrap();
                left -= n;
            }
            writeln!(out, ",{}", line % 100).unwrap();
        } else {
            writeln!(out, "{line},n{line},{}", line % 100).unwrap();
        }
    }
    out.flush().unwrap();
}

/// Waits for a child, sampling its peak resident memory (VmHWM, Linux) meanwhile: the
/// last sample is a lower bound of the real peak.
fn wait_with_peak(mut child: Child) -> (Output, u64) {
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        }) {
            peak = peak.max(kib * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    let stderr = reader.join().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        peak,
    )
}

const LONG: usize = 200 << 20;

#[test]
fn a_200_mib_line_is_a_bad_row_named_by_its_line_read_in_bounded_memory() {
    let t = TestContext::new();
    let input = t.dir.path().join("long.csv");
    write_with_long_line(&input, 5000, 3000, LONG);
    let output = t.dir.path().join("long.parquet");
    let run = |extra: &[&str]| {
        let child = t
            .command(ETL)
            .args(["--input", input.to_str().unwrap(), "--output"])
            .arg(&output)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_with_peak(child)
    };

    let (out, peak) = run(&[]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("long.csv"), "{err}");
    assert!(
        err.contains("line 3000: the record is longer than 16 MiB (--max-record-bytes)"),
        "{err}"
    );
    assert!(!output.exists(), "a partial output was left");
    assert!(peak < 150 << 20, "peak RSS {} MiB", peak >> 20);

    let (out, peak) = run(&["--bad-rows", "skip"]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("bad row set aside"), "{err}");
    assert!(err.contains("line=3000"), "{err}");
    let batches = read_parquet(std::fs::read(&output).unwrap());
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 4999);
    assert!(peak < 150 << 20, "peak RSS {} MiB", peak >> 20);

    // Quarantine records the line and the reason, not 200 MiB.
    std::fs::remove_file(&output).unwrap();
    let (out, _) = run(&["--bad-rows", "quarantine"]);
    assert_exit(&out, 0);
    let sidecar = std::fs::read_to_string(t.dir.path().join("long.rejected.jsonl")).unwrap();
    assert!(sidecar.len() < 1024, "{} bytes kept", sidecar.len());
    let row: serde_json::Value = serde_json::from_str(sidecar.trim()).unwrap();
    assert_eq!(row["line"], 3000);
    assert_eq!(row["record"], "");
}

#[test]
fn a_long_quoted_field_over_the_limit_names_its_line_and_the_rest_converts() {
    let t = TestContext::new();
    let mut body = String::from("id,note\n1,\"short\"\n");
    body.push_str(&format!("2,\"{}\"\n", "multi\nline ".repeat(200)));
    body.push_str("3,\"after\"\n");
    let input = t.write_file("quoted.csv", &body);
    let output = t.dir.path().join("quoted.jsonl");
    let run = |extra: &[&str]| {
        t.command(ETL)
            .args(["--input", input.to_str().unwrap(), "--output"])
            .arg(&output)
            .args(["--max-record-bytes", "1KiB"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("line 3: the record is longer than 1 KiB"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--bad-rows", "skip"]);
    assert_exit(&out, 0);
    let text = std::fs::read_to_string(&output).unwrap();
    assert_eq!(
        text,
        "{\"id\":1,\"note\":\"short\"}\n{\"id\":3,\"note\":\"after\"}\n"
    );
}

#[test]
fn a_bad_max_record_bytes_is_a_usage_error() {
    let t = TestContext::new();
    let input = t.write_file("x.csv", "1,a,2\n");
    let out = t
        .command(ETL)
        .args(["--input", input.to_str().unwrap()])
        .env("ETL_MAX_RECORD_BYTES", "lots")
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("'lots'"), "{}", stderr(&out));
}

/// The decompressed bytes of a file and the codec found.
fn unpack(bytes: Vec<u8>) -> (String, etl_convert::Codec) {
    let (mut reader, codec) = etl_convert::decompress(std::io::Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    (text, codec)
}

#[test]
fn csv_and_jsonl_outputs_are_compressed_and_named_so() {
    let t = TestContext::new();
    t.put_file("input/test.csv", &testdata("test.csv"));
    let plain = t
        .command(ETL)
        .args([
            "--bucket",
            BUCKET,
            "--key",
            "input/test.csv",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert_exit(&plain, 0);
    let expected = String::from_utf8(t.get("output/test.csv").unwrap()).unwrap();
    assert_eq!(expected.lines().count(), 4);

    for (format, codec, key, found) in [
        (
            "csv",
            "gzip",
            "output/test.csv.gz",
            etl_convert::Codec::Gzip,
        ),
        (
            "csv",
            "zstd:9",
            "output/test.csv.zst",
            etl_convert::Codec::Zstd,
        ),
        (
            "jsonl",
            "gzip",
            "output/test.jsonl.gz",
            etl_convert::Codec::Gzip,
        ),
    ] {
        let out = t
            .command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/test.csv"])
            .args(["--format", format, "--compression", codec])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(line["output_key"], key);
        let (text, got) = unpack(t.get(key).expect("compressed output"));
        assert_eq!(got, found, "{key}");
        if format == "csv" {
            assert_eq!(text, expected, "{key}");
        } else {
            let rows: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(rows.len(), 3);
            assert_eq!(rows[0]["name"], "aaa");
        }
    }

    // A local file: the codec from the name.
    let input = testdata("test.csv");
    let zst = t.dir.path().join("out.jsonl.zst");
    let out = t
        .command(ETL)
        .args(["--input", input.to_str().unwrap(), "--output"])
        .arg(&zst)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let (text, got) = unpack(std::fs::read(&zst).unwrap());
    assert_eq!(got, etl_convert::Codec::Zstd);
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn a_compression_that_does_not_fit_the_format_is_refused() {
    let t = TestContext::new();
    t.put_file("input/test.csv", &testdata("test.csv"));
    for (format, codec, message) in [
        (
            "csv",
            "snappy",
            "--compression snappy does not apply to csv output",
        ),
        (
            "parquet",
            "gzip",
            "--compression gzip does not apply to parquet output",
        ),
    ] {
        let out = t
            .command(ETL)
            .args(["--bucket", BUCKET, "--key", "input/test.csv"])
            .args(["--format", format, "--compression", codec])
            .output()
            .unwrap();
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    assert!(t.keys("output/").is_empty());
    let input = testdata("test.csv");
    let out = t
        .command(ETL)
        .args(["--input", input.to_str().unwrap(), "--compression", "zstd"])
        .arg("--output")
        .arg(t.dir.path().join("x.csv.gz"))
        .output()
        .unwrap();
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("names a gzip file but --compression is zstd"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn misfits_name_the_column_and_a_plain_type() {
    let t = TestContext::new();
    let schema = t.write_file("schema.txt", "no: int64\nname: text\nscore: int64\n");
    let input = t.write_file("x.csv", "no,name,score\n1,a,5\n2,b,x\n");
    let out = t
        .command(ETL)
        .args(["--input", input.to_str().unwrap(), "--schema"])
        .arg(&schema)
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("line 3: column 'score': a value does not fit int64"),
        "{err}"
    );
    assert!(!err.contains("Int64") && !err.contains("Utf8"), "{err}");

    // agg on a text column: the type by its plain name, not Arrow's `Utf8`.
    t.put_file("input/d/test.csv", &testdata("test.csv"));
    let out = t
        .command(ETL)
        .args(["--bucket", BUCKET, "--key", "input/d/test.csv"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let out = t
        .command(AGG)
        .args([
            "--bucket",
            BUCKET,
            "--prefix",
            "output/d/",
            "--column",
            "name",
        ])
        .output()
        .unwrap();
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("output/d/test.parquet: column 'name' is text, not a number"),
        "{err}"
    );
}
