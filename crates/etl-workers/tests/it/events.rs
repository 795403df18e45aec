//! Every notification fixture in `testdata/events/` through `etl --dry-run`: the exact
//! objects for each shape, silence for nothing-to-do payloads, exit 2 for bad ones.

use crate::support::*;

const ETL: &str = env!("CARGO_BIN_EXE_etl");
const FTP_ETL: &str = env!("CARGO_BIN_EXE_ftp-etl");

fn fixtures(dir: &str) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(testdata(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".expected.json")
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_s3_fixture_prints_exactly_its_objects() {
    let t = TestContext::new();
    let mut checked = 0;
    for path in fixtures("events") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("generic-ftp") {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("expected.jsonl")).unwrap();
        let mut command = t.command(ETL);
        command.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
        let out = command
            .args(["--event", &format!("@{}", path.display()), "--dry-run"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let printed: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let wanted: Vec<serde_json::Value> = expected
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(printed.len(), wanted.len(), "{name}: {}", stdout(&out));
        for (got, want) in printed.iter().zip(&wanted) {
            assert_eq!(
                (&got["bucket"], &got["key"]),
                (&want["bucket"], &want["key"]),
                "{name}"
            );
            assert!(
                got["output_key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with(".parquet")),
                "{name}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} fixtures");
}

#[test]
fn every_generic_ftp_fixture_names_its_file() {
    let t = TestContext::new();
    for path in fixtures("events")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("generic-ftp"))
    {
        let expected: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(path.with_extension("expected.jsonl"))
                .unwrap()
                .trim(),
        )
        .unwrap();
        let out = t
            .command(FTP_ETL)
            .env("S3_BUCKET", BUCKET)
            .args(["--event", &format!("@{}", path.display()), "--dry-run"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let name = expected["name"].as_str().unwrap().trim_start_matches('/');
        assert!(
            line["ftp_path"].as_str().unwrap().ends_with(name),
            "{}: {line}",
            path.display()
        );
    }
}

#[test]
fn every_bad_fixture_exits_2_with_its_message() {
    let t = TestContext::new();
    let mut checked = 0;
    for path in fixtures("events/bad") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = std::fs::read_to_string(path.with_extension("expected-error.txt")).unwrap();
        let binary = if name.starts_with("generic-ftp") {
            FTP_ETL
        } else {
            ETL
        };
        let out = t
            .command(binary)
            .env("S3_BUCKET", BUCKET)
            .args(["--event", &format!("@{}", path.display()), "--dry-run"])
            .output()
            .unwrap();
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(expected.trim()),
            "{name}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{name}");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} bad fixtures");
}
