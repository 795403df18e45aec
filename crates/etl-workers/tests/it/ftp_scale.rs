//! Issue 20: ftp-watch at scale and across restarts: FTPS against vsftpd, state in S3,
//! recursive watches bounded by depth and excludes (command counts via a counting proxy).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use etl_test_support::ftp::FtpServer;
use etl_test_support::ftp_count::CountingFtpProxy;

use crate::support::ftp::{DEADLINE, Vsftpd, Watcher, config, next_event, scan, scan_lines, write};
use crate::support::*;

const BINARY: &str = env!("CARGO_BIN_EXE_ftp-watch");

/// Issue 20: `ftp-watch scan` over explicit FTPS against vsftpd (`ssl_enable=YES`), the
/// certificate verified against the private CA given as a server's `ca_file`; without it
/// the certificate fails verification and scan exits 2 with one sentence.
#[test]
fn ftp_watch_scan_over_ftps_against_vsftpd() {
    let Some((
        Vsftpd {
            port,
            user,
            password,
            run,
            dir,
        },
        ca,
    )) = Vsftpd::tls_from_env("ftps-watch")
    else {
        return;
    };
    write(&dir, "a.csv", b"1,a,1\n");
    write(&dir, "day/b.csv", b"1,b,22\n");
    let files = tempfile::tempdir().unwrap();
    let password_file = files.path().join("password");
    std::fs::write(&password_file, &password).unwrap();
    let source = files.path().join("source.yaml");
    std::fs::write(&source, format!("server: secure\ndir: /{run}\n")).unwrap();
    let scan_secure = |ca_file: Option<&Path>| {
        let servers = files.path().join("servers.yaml");
        let ca_line =
            ca_file.map_or_else(String::new, |ca| format!("    ca_file: {}\n", ca.display()));
        std::fs::write(
            &servers,
            format!(
                "servers:\n  secure:\n    host: 127.0.0.1\n    port: {port}\n    tls: true\n    user: {user}\n    password_file: {}\n{ca_line}",
                password_file.display()
            ),
        )
        .unwrap();
        Command::new(BINARY)
            .arg("--servers")
            .arg(&servers)
            .args(["scan", "--config"])
            .arg(&source)
            .env_remove("FTP_HOST")
            .env("ETL_LOG_FORMAT", "text")
            .output()
            .unwrap()
    };
    let names: Vec<String> = scan_lines(&scan_secure(Some(&ca)))
        .iter()
        .map(|line| line["payload"]["name"].to_string())
        .collect();
    assert_eq!(names, ["\"a.csv\"", "\"day/b.csv\""]);

    let output = scan_secure(None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("failed verification"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(!stderr.contains(&password));
    let _ = std::fs::remove_dir_all(&dir);
}

fn watcher_with_s3(t: &TestContext, port: u16) -> Watcher {
    let port = port.to_string();
    let mut env: Vec<(String, String)> = t.s3.env();
    env.extend(
        [
            ("FTP_HOST", "127.0.0.1"),
            ("FTP_PORT", port.as_str()),
            ("FTP_USER", "etl"),
            ("FTP_PASSWD", "x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Watcher::start_with(&env, &[])
}

/// Waits until the state object lists `name`; returns its text.
async fn state_with(t: &TestContext, key: &str, name: &str) -> String {
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        let text = t
            .get_consistent(key)
            .map(|b| String::from_utf8(b).unwrap())
            .unwrap_or_default();
        if text.contains(&format!("\"{name}\"")) {
            return text;
        }
        assert!(
            std::time::Instant::now() < until,
            "state never recorded {name}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 20: `state: s3://bucket/key` survives the pod. Files changed while ftp-watch was
/// down are announced once after the restart, nothing announced before is repeated, and a
/// state object another writer changed stops the stream instead of being overwritten.
#[tokio::test(flavor = "multi_thread")]
async fn ftp_watch_state_on_s3_survives_a_restart() {
    let t = TestContext::new();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "a.csv", b"1,a,1\n");
    write(root.path(), "b.csv", b"1,b,1\n");
    let server = FtpServer::start(root.path());
    const KEY: &str = "ftp-watch/upload.json";
    let yaml = config(
        server.port(),
        &format!("settle: 0\nexisting: emit\nstate: s3://{BUCKET}/{KEY}\n"),
    );

    let mut watcher = watcher_with_s3(&t, server.port());
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    for expected in ["a.csv", "b.csv"] {
        let seen = next_event(&mut stream, &watcher).await;
        assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", expected));
    }
    state_with(&t, KEY, "b.csv").await;
    drop(stream);
    watcher.kill();

    // While ftp-watch is down: b.csv changes, c.csv arrives, a.csv stays.
    write(root.path(), "b.csv", b"1,b,1\n2,b,2\n");
    write(root.path(), "c.csv", b"1,c,1\n");

    let watcher = watcher_with_s3(&t, server.port());
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    // Events of a poll come sorted by name: a repeated a.csv would come first.
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("mod", "b.csv"));
    assert_eq!(seen.sz, 12);
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", "c.csv"));
    // Nothing else until the next change: the next event is d.csv's.
    write(root.path(), "d.csv", b"1,d,1\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", "d.csv"));
    let text = state_with(&t, KEY, "d.csv").await;
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&String> = saved["files"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["a.csv", "b.csv", "c.csv", "d.csv"]);
    assert_eq!(saved["files"]["b.csv"]["sz"], 12);

    // The state is written when the announced listing changes, not on every poll.
    let etag = t.head_etag(KEY);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        t.head_etag(KEY),
        etag,
        "an unchanged listing was written again"
    );

    // Another writer replaces the object: the next conditional PUT (after e.csv's event)
    // fails and the stream ends with ABORTED; the object keeps the other writer's bytes.
    let foreign = text.replace("\"d.csv\"", "\"other.csv\"");
    t.put(KEY, foreign.clone());
    write(root.path(), "e.csv", b"1,e,1\n");
    let ended = tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream did not end");
    let status = ended.expect_err("the stream ended without an error");
    assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
    assert!(status.message().contains("another writer"), "{status:?}");
    assert_eq!(t.get(KEY).unwrap(), foreign.into_bytes());
}

fn age(path: &Path, by: Duration) {
    let then = std::time::SystemTime::now() - by;
    std::fs::File::open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

/// LIST arguments recorded by the proxy, in order.
fn listed(proxy: &CountingFtpProxy) -> Vec<String> {
    proxy
        .lines()
        .iter()
        .filter_map(|line| line.strip_prefix("LIST ").map(str::to_owned))
        .collect()
}

/// Issue 20: a recursive watch bounded by `depth` and `exclude` lists only the folders it
/// watches; with `skip_unchanged_folders`, a poll over unchanged leaf folders (times over a
/// day old) costs one LIST per folder that has subfolders and nothing else, and a folder
/// that gets a new file is listed again. Counted on a server without MLSD.
#[tokio::test]
async fn ftp_watch_bounded_walk_skips_unchanged_folders_by_command_count() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "a.csv", b"1,a,1\n");
    for day in ["d1", "d2", "d3"] {
        write(root.path(), &format!("days/{day}/{day}.csv"), b"1,d,1\n");
    }
    write(root.path(), "days/d2/x.part", b"partial");
    write(root.path(), "days/d1/deeper/z.csv", b"1,z,1\n");
    write(root.path(), "tmp/t.csv", b"1,t,1\n");
    for folder in ["days/d1/deeper", "days/d1", "days/d2", "days/d3"] {
        age(
            &root.path().join(folder),
            Duration::from_secs(3 * 24 * 3600),
        );
    }
    let server = FtpServer::start(root.path());
    let proxy = CountingFtpProxy::without_mlsd(server.port());
    let source = format!(
        "dir: /\ninterval: 100ms\nsettle: 0\nport: {}\ndepth: 2\nexclude: [tmp, '*.part']\nskip_unchanged_folders: true\n",
        proxy.port()
    );

    // One walk (`scan`): tmp/ and days/d1/deeper/ are never listed, x.part never stat'ed.
    let names: Vec<String> = scan_lines(&scan(&source, proxy.port()))
        .iter()
        .map(|line| line["payload"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "a.csv",
            "days/d1/d1.csv",
            "days/d2/d2.csv",
            "days/d3/d3.csv"
        ]
    );
    let mut folders = listed(&proxy);
    folders.sort();
    assert_eq!(folders, ["/", "/days", "/days/d1", "/days/d2", "/days/d3"]);
    assert_eq!(proxy.count("MDTM"), 4);
    proxy.clear();

    // Polls: the first lists everything as above; later ones only `/` and `/days`.
    let watcher = Watcher::start("etl", "x", proxy.port());
    let mut stream = watcher.subscribe(&source).await.expect("stream");
    watcher.wait_for_log("first listing").await;
    let first_poll = proxy.lines().len();
    write(root.path(), "tmp/late.csv", b"1,late,1\n");
    write(root.path(), "days/d1/deeper/late.csv", b"1,late,1\n");
    let until = tokio::time::Instant::now() + DEADLINE;
    while listed(&proxy).iter().filter(|l| *l == "/").count() < 5 {
        assert!(
            tokio::time::Instant::now() < until,
            "no polls: {:?}",
            proxy.lines()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let later = proxy.lines()[first_poll..].to_vec();
    let later_lists: std::collections::BTreeSet<&str> = later
        .iter()
        .filter_map(|l| l.strip_prefix("LIST "))
        .collect();
    assert_eq!(later_lists, ["/", "/days"].into(), "{later:?}");
    assert!(!later.iter().any(|l| l.starts_with("MDTM")), "{later:?}");

    // A new file changes its folder's time: that folder is listed again, the file announced.
    write(root.path(), "days/d2/new.csv", b"1,new,1\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str()),
        ("new", "days/d2/new.csv")
    );
    assert!(listed(&proxy).iter().any(|l| l == "/days/d2"));
    assert_eq!(proxy.count("MDTM"), 4 + 1, "{:?}", proxy.lines());
}

const FTP_ETL: &str = env!("CARGO_BIN_EXE_ftp-etl");

fn ftp_etl_tls(
    t: &TestContext,
    port: u16,
    user: &str,
    password: &str,
    ca: Option<&Path>,
    path: &str,
) -> std::process::Output {
    let mut command = t.command(FTP_ETL);
    command
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", port.to_string())
        .env("FTP_USER", user)
        .env("FTP_PASSWD", password)
        .env("FTP_TLS", "true")
        .env("S3_BUCKET", BUCKET)
        .env("S3_PREFIX", "output/")
        .args(["--path", path]);
    if let Some(ca) = ca {
        command.env("FTP_CA_FILE", ca);
    }
    command.output().unwrap()
}

/// The one line ftp-etl prints for a configuration error.
fn one_sentence(output: &std::process::Output) -> String {
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    lines[0].to_owned()
}

/// Issue 20/19: `ftp-etl` over explicit FTPS against vsftpd (`ssl_enable=YES`, protected
/// data connections) with its private CA in `FTP_CA_FILE`; without the CA the certificate
/// fails verification: exit 2, one sentence, nothing uploaded.
#[test]
fn ftp_etl_over_ftps_against_vsftpd() {
    let Some((
        Vsftpd {
            port,
            user,
            password,
            run,
            dir,
        },
        ca,
    )) = Vsftpd::tls_from_env("ftps-etl")
    else {
        return;
    };
    write(
        &dir,
        "test.csv",
        &std::fs::read(testdata("test.csv")).unwrap(),
    );
    let t = TestContext::new();
    let path = format!("/{run}/test.csv");

    let out = ftp_etl_tls(&t, port, &user, &password, None, &path);
    assert_exit(&out, 2);
    let line = one_sentence(&out);
    assert!(
        line.contains("failed verification") && line.contains("FTP_CA_FILE"),
        "{line}"
    );
    assert!(t.keys("output/").is_empty());

    let out = ftp_etl_tls(&t, port, &user, &password, Some(&ca), &path);
    assert_exit(&out, 0);
    let parquet = t
        .get(&format!("output/{run}/test.parquet"))
        .unwrap_or_else(|| panic!("no output: {:?}", t.keys("")));
    assert_eq!(read_parquet(parquet)[0].num_rows(), 3);
    assert!(!stderr(&out).contains(&password));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 19: FTPS asked of a server without TLS is a configuration error: exit 2 (not
/// retried) with one sentence naming the server, before any credentials are sent. The
/// in-process server always; vsftpd without `ssl_enable` when available.
#[test]
fn ftp_etl_ftps_against_a_server_without_tls_exits_2() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "a.csv", b"1,a,1\n");
    let server = FtpServer::start(root.path());
    let proxy = CountingFtpProxy::without_mlsd(server.port());
    let t = TestContext::new();
    let out = ftp_etl_tls(&t, proxy.port(), "etl", "pw-Zz9", None, "/a.csv");
    assert_exit(&out, 2);
    let line = one_sentence(&out);
    assert!(
        line.contains(&format!("127.0.0.1:{} does not offer TLS", proxy.port())),
        "{line}"
    );
    assert!(
        !proxy.commands().iter().any(|c| c == "USER" || c == "PASS"),
        "{:?}",
        proxy.commands()
    );
    assert!(t.keys("output/").is_empty());

    if let Some(plain) = Vsftpd::from_env("no-tls") {
        let out = ftp_etl_tls(&t, plain.port, &plain.user, &plain.password, None, "/x.csv");
        assert_exit(&out, 2);
        let line = one_sentence(&out);
        assert!(line.contains("does not offer TLS"), "{line}");
        let _ = std::fs::remove_dir_all(&plain.dir);
    }
}

/// Issue 20: reading an S3 state that fails transiently is retried (the source starts once
/// S3 answers); a refused read (403) ends the stream with FAILED_PRECONDITION naming it.
#[tokio::test(flavor = "multi_thread")]
async fn ftp_watch_state_on_s3_retries_transient_and_stops_on_refused_reads() {
    use etl_test_support::s3::S3ErrorCode;
    let t = TestContext::new();
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "a.csv", b"1,a,1\n");
    let server = FtpServer::start(root.path());
    let watcher = watcher_with_s3(&t, server.port());

    t.s3.refuse("GetObject", "ftp-watch/flaky", S3ErrorCode::InternalError);
    let yaml = config(
        server.port(),
        &format!("settle: 0\nexisting: emit\nstate: s3://{BUCKET}/ftp-watch/flaky.json\n"),
    );
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    watcher
        .wait_for_log("state s3://etlproj/ftp-watch/flaky.json")
        .await;
    t.s3.clear_refusals();
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", "a.csv"));
    state_with(&t, "ftp-watch/flaky.json", "a.csv").await;

    t.s3.refuse("GetObject", "ftp-watch/denied", S3ErrorCode::AccessDenied);
    let yaml = config(
        server.port(),
        &format!("settle: 0\nexisting: emit\nstate: s3://{BUCKET}/ftp-watch/denied.json\n"),
    );
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    let ended = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("the stream did not end");
    let status = ended.expect_err("a refused state read must end the stream");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(
        status
            .message()
            .contains("s3://etlproj/ftp-watch/denied.json"),
        "{status:?}"
    );
    assert!(t.get_consistent("ftp-watch/denied.json").is_none());
}
