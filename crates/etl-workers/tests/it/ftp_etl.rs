//! `ftp-etl` and the whole FTP flow: file on FTP → `ftp-watch` event → `ftp-etl` →
//! Parquet in the S3 test server (in-process FTP server; vsftpd when available).

use std::process::Output;

use arrow_array::{Array, Float64Array, Int64Array};
use base64::Engine as _;
use etl_test_support::ftp::FtpServer;

use crate::support::ftp::{DEADLINE, Vsftpd, Watcher, config, write};
use crate::support::*;

const FTP_ETL: &str = env!("CARGO_BIN_EXE_ftp-etl");
const FTP_PASSWORD: &str = "ftp-secret-Kq2";

/// The next event's payload as Argo's generic source delivers it: base64 in `body`.
async fn next_event_body(
    stream: &mut tonic::Streaming<etl_grpc::Event>,
    watcher: &Watcher,
) -> (String, String) {
    let event = match tokio::time::timeout(DEADLINE, stream.message()).await {
        Ok(Ok(Some(event))) => event,
        other => panic!("no event ({other:?}); ftp-watch log:\n{}", watcher.log()),
    };
    let body = base64::engine::general_purpose::STANDARD.encode(&event.payload);
    (event.name, serde_json::json!({ "body": body }).to_string())
}

fn ftp_etl(t: &TestContext, port: u16, user: &str, password: &str, args: &[&str]) -> Output {
    t.command(FTP_ETL)
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", port.to_string())
        .env("FTP_USER", user)
        .env("FTP_PASSWD", password)
        .env("S3_BUCKET", BUCKET)
        .env("S3_PREFIX", "output/")
        .env("RUST_LOG", "trace")
        .args(args)
        .output()
        .unwrap()
}

fn assert_seed_test_parquet(t: &TestContext) {
    let batches = read_parquet(t.get("output/test.parquet").expect("output/test.parquet"));
    let score = batches[0]
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(score.values(), &[100, 80, 90]);
    assert_eq!(batches[0].schema().field(1).name(), "name");
}

#[tokio::test(flavor = "multi_thread")]
async fn ftp_file_becomes_parquet_through_watch_event_and_ftp_etl() {
    let t = TestContext::new();
    let root = tempfile::tempdir().unwrap();
    let server = FtpServer::start(root.path());
    let watcher = Watcher::start("etl", FTP_PASSWORD, server.port());
    let mut stream = watcher
        .subscribe(&config(server.port(), "suffix: .csv\n"))
        .await
        .expect("stream");
    watcher.wait_for_log("first listing").await;
    write(
        root.path(),
        "test.csv",
        &std::fs::read(testdata("test.csv")).unwrap(),
    );
    let (kind, body) = next_event_body(&mut stream, &watcher).await;
    assert_eq!(kind, "new");

    let out = ftp_etl(&t, server.port(), "etl", FTP_PASSWORD, &["--event", &body]);
    assert_exit(&out, 0);
    assert_seed_test_parquet(&t);
    assert!(
        !stderr(&out).contains(FTP_PASSWORD),
        "the password reached a log line"
    );
    assert!(
        !stderr(&out).contains(etl_test_support::s3::SECRET_KEY),
        "the S3 secret reached a log line"
    );

    // The same event again: one HEAD, no download, no upload.
    t.s3.clear_requests();
    let out = ftp_etl(&t, server.port(), "etl", FTP_PASSWORD, &["--event", &body]);
    assert_exit(&out, 0);
    let methods: Vec<String> = t.s3.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["HEAD"]);
}

#[test]
fn dry_run_and_missing_file() {
    let t = TestContext::new();
    let root = tempfile::tempdir().unwrap();
    let server = FtpServer::start(root.path());
    let payload = base64::engine::general_purpose::STANDARD
        .encode(r#"{"name":"sub/day.csv","sz":10,"dt":"2026-11-24T00:00:00Z"}"#);
    let out = ftp_etl(
        &t,
        server.port(),
        "etl",
        FTP_PASSWORD,
        &["--event", &payload, "--dry-run", "--format", "jsonl"],
    );
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        r#"{"ftp_path":"/sub/day.csv","output_bucket":"etlproj","output_key":"output/sub/day.jsonl"}"#
    );
    let out = ftp_etl(
        &t,
        server.port(),
        "etl",
        FTP_PASSWORD,
        &["--path", "/nope.csv"],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("/nope.csv"), "{}", stderr(&out));
    assert!(t.keys("output/").is_empty());
}

/// Issue 19: an absolute name is not prefixed by FTP_DIR again; `..` and names outside
/// FTP_DIR are refused with exit 2 before any connection, and nothing is written.
#[test]
fn ftp_names_stay_inside_ftp_dir() {
    let t = TestContext::new();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "upload/day.csv", b"1,a,1\n2,b,2\n");
    let server = FtpServer::start(root.path());
    let run = |args: &[&str]| {
        t.command(FTP_ETL)
            .env("FTP_HOST", "127.0.0.1")
            .env("FTP_PORT", server.port().to_string())
            .env("FTP_USER", "etl")
            .env("FTP_PASSWD", FTP_PASSWORD)
            .env("FTP_DIR", "/upload")
            .env("S3_BUCKET", BUCKET)
            .env("S3_PREFIX", "output/")
            .args(args)
            .output()
            .unwrap()
    };
    let absolute =
        base64::engine::general_purpose::STANDARD.encode(r#"{"name":"/upload/day.csv"}"#);
    let out = run(&["--event", &absolute]);
    assert_exit(&out, 0);
    assert_eq!(t.keys("output/"), ["output/day.parquet"]);
    let out = run(&["--path", "/upload/day.csv", "--dry-run"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains(r#""ftp_path":"/upload/day.csv""#),
        "{}",
        stdout(&out)
    );

    for (args, says) in [
        (vec!["--path", "../secret/x.csv"], "`..`"),
        (vec!["--path", "/etc/x.csv"], "outside FTP_DIR"),
        (vec!["--event", r#"{"name":"../secret/x.csv"}"#], "`..`"),
        (vec!["--event", r#"{"name":"a/../../x.csv"}"#], "`..`"),
        (
            vec!["--event", r#"{"name":"/secret/x.csv"}"#],
            "outside FTP_DIR",
        ),
        (
            vec!["--event", r#"{"name":"x.csv","path":"/etc/x.csv"}"#],
            "outside FTP_DIR",
        ),
        (
            vec!["--event", r#"{"name":"x.csv\r\nDELE day.csv"}"#],
            "control character",
        ),
    ] {
        let out = run(&args);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(t.keys("output/"), ["output/day.parquet"]);
    assert!(root.path().join("upload/day.csv").exists());
}

#[test]
fn bad_csv_on_ftp_exits_2_with_line_and_no_output() {
    let t = TestContext::new();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("bad.csv"), "1,a,1\n2,b,2\n3,c\n").unwrap();
    let server = FtpServer::start(root.path());
    let out = ftp_etl(
        &t,
        server.port(),
        "etl",
        FTP_PASSWORD,
        &["--path", "bad.csv"],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("ftp://127.0.0.1/bad.csv"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
    assert!(t.keys("output/").is_empty());
}

/// A value far past the sample does not fit the inferred int64 column: ftp-etl downloads
/// the file again and converts it with the column widened to float64, as etl does. Two
/// RETRs, one output, every value kept.
#[test]
fn a_late_value_that_does_not_fit_widens_the_column_and_downloads_again() {
    let t = TestContext::new();
    let root = tempfile::tempdir().unwrap();
    let mut content = String::from("id,name,score\n");
    for i in 1..=150_000 {
        let score = if i == 140_000 {
            "2.5".to_owned()
        } else {
            (i % 100).to_string()
        };
        content.push_str(&format!("{i},n{i},{score}\n"));
    }
    assert!(
        content.len() > 2 << 20,
        "the late value must lie past the sample"
    );
    std::fs::write(root.path().join("late.csv"), &content).unwrap();
    let server = FtpServer::start(root.path());
    let proxy = etl_test_support::ftp_count::CountingFtpProxy::without_mlsd(server.port());
    let out = ftp_etl(
        &t,
        proxy.port(),
        "etl",
        FTP_PASSWORD,
        &["--path", "late.csv"],
    );
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("converting again with the column widened"),
        "{}",
        stderr(&out)
    );
    assert_eq!(proxy.count("RETR"), 2, "{:?}", proxy.commands());
    assert_eq!(t.keys("output/"), ["output/late.parquet"]);
    let batches = read_parquet(t.get("output/late.parquet").unwrap());
    let mut scores = Vec::new();
    for batch in &batches {
        let column = batch
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("score widened to float64");
        scores.extend(column.values().iter().copied());
    }
    assert_eq!(scores.len(), 150_000);
    assert_eq!(scores[139_999], 2.5);
    assert_eq!(scores[0], 1.0);
}

/// The seed's FTP test against vsftpd (the server the seeds deploy): `put test.csv` over
/// FTP → ftp-watch event → ftp-etl → `output/test.parquet`. Needs `scripts/vsftpd-start.sh`
/// and `ETL_VSFTPD_PORT`.
#[tokio::test(flavor = "multi_thread")]
async fn seed_ftp_flow_against_vsftpd() {
    let Some(Vsftpd {
        port,
        user,
        password,
        run,
        ..
    }) = Vsftpd::from_env("seed")
    else {
        return;
    };

    let t = TestContext::new();
    let watcher = Watcher::start(&user, &password, port);
    let yaml =
        format!("host: 127.0.0.1\nport: {port}\ndir: /{run}\ninterval: 300ms\nsuffix: .csv\n");
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    watcher.wait_for_log("first listing").await;

    // put test.csv, as the seed's test does, over FTP.
    let mut ftp = suppaftp::tokio::AsyncRustlsFtpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    ftp.login(user.as_str(), password.as_str()).await.unwrap();
    ftp.transfer_type(suppaftp::types::FileType::Binary)
        .await
        .unwrap();
    let data = std::fs::read(testdata("test.csv")).unwrap();
    ftp.put_file(format!("/{run}/test.csv"), &mut data.as_slice())
        .await
        .unwrap();
    let _ = ftp.quit().await;

    let (kind, body) = next_event_body(&mut stream, &watcher).await;
    assert_eq!(kind, "new");
    let out = t
        .command(FTP_ETL)
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", port.to_string())
        .env("FTP_USER", &user)
        .env("FTP_PASSWD", &password)
        .env("FTP_DIR", format!("/{run}"))
        .env("S3_BUCKET", BUCKET)
        .args(["--event", &body])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_seed_test_parquet(&t);
}

/// A data connection dropped mid-RETR after whole lines: the converter alone would accept
/// the truncated file, but the server's 426 stops the upload. Nothing is published.
#[test]
fn a_transfer_cut_mid_retr_publishes_nothing() {
    let t = TestContext::new();
    let mut content = String::new();
    for i in 1..=20_000 {
        content.push_str(&format!("{i},n{i},{}\n", i % 100));
    }
    let cut = content[..content.len() / 2].rfind('\n').unwrap() + 1;
    let server = etl_test_support::ftp_cut::CuttingFtpServer::start(content.into_bytes(), cut);
    let out = ftp_etl(
        &t,
        server.port(),
        "etl",
        FTP_PASSWORD,
        &["--path", "/day.csv"],
    );
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("426"), "{}", stderr(&out));
    assert!(
        t.keys("output/").is_empty(),
        "an output appeared: {:?}",
        t.keys("output/")
    );
}

/// The FTP server restarts under ftp-watch: it reconnects and announces what changed while
/// the server was down, without repeating what it announced before.
#[tokio::test(flavor = "multi_thread")]
async fn ftp_watch_reconnects_after_a_server_restart() {
    let root = tempfile::tempdir().unwrap();
    let mut server = FtpServer::start(root.path());
    let port = server.port();
    let watcher = Watcher::start("etl", FTP_PASSWORD, port);
    let mut stream = watcher
        .subscribe(&config(port, "suffix: .csv\n"))
        .await
        .expect("stream");
    watcher.wait_for_log("first listing").await;
    write(root.path(), "a.csv", b"1,a,1\n");
    let (kind, _) = next_event_body(&mut stream, &watcher).await;
    assert_eq!(kind, "new");

    server.stop();
    write(root.path(), "b.csv", b"2,b,2\n");
    watcher.wait_for_log("cannot").await;
    let _server = FtpServer::start_on(root.path(), port);
    let event = match tokio::time::timeout(DEADLINE, stream.message()).await {
        Ok(Ok(Some(event))) => event,
        other => panic!("no event after restart ({other:?}):\n{}", watcher.log()),
    };
    let payload: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(
        (event.name.as_str(), payload["name"].as_str()),
        ("new", Some("b.csv"))
    );
    // a.csv is not announced again.
    let again =
        tokio::time::timeout(std::time::Duration::from_millis(1500), stream.message()).await;
    assert!(again.is_err(), "unexpected event: {again:?}");
}
