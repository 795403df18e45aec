//! `ftp-watch` as a process, driven by a real tonic client, against the in-process
//! FTP server (and, when `ETL_VSFTPD_PORT` is set, against vsftpd).
//!
//! Files are changed by writing into the served directory. Every wait polls with
//! a deadline; nothing asserts after a fixed sleep.

use std::io::Write as _;
use std::time::Duration;

use etl_test_support::ftp::FtpServer;

use crate::support::ftp::{DEADLINE, Vsftpd, Watcher, config, next_event, scan, scan_lines, write};

#[tokio::test]
async fn ftp_watch_announces_new_then_mod() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "old.csv", b"1,old,1\n");
    let server = FtpServer::start(root.path());
    let watcher = Watcher::start("etl", "secret-password", server.port());
    let mut stream = watcher
        .subscribe(&config(server.port(), "suffix: .csv\n"))
        .await
        .expect("stream");
    watcher.wait_for_log("first listing").await;

    write(root.path(), "test.csv", b"1,aaa,100\n");
    write(root.path(), "ignored.txt", b"not a csv\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str(), seen.sz),
        ("new", "test.csv", 10)
    );
    assert!(
        humantime::parse_rfc3339(&seen.dt).is_ok(),
        "dt {:?}",
        seen.dt
    );

    write(root.path(), "test.csv", b"1,aaa,100\n2,bbb,90\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str(), seen.sz),
        ("mod", "test.csv", 19)
    );

    write(root.path(), "20230414/1.csv", b"1,x,1\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str()),
        ("new", "20230414/1.csv")
    );

    assert!(!watcher.log().contains("secret-password"));
    // Hanging up stops the poller.
    drop(stream);
    watcher.wait_for_log("poller stopped").await;
}

#[tokio::test]
async fn ftp_watch_waits_until_a_growing_file_settles() {
    let root = tempfile::tempdir().unwrap();
    let server = FtpServer::start(root.path());
    let watcher = Watcher::start("etl", "x", server.port());
    let mut stream = watcher
        .subscribe(&config(server.port(), "settle: 2\n"))
        .await
        .expect("stream");
    watcher.wait_for_log("first listing").await;

    // Grow the file much faster than settle (2 polls of 200 ms) allows to announce it.
    let path = root.path().join("big.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    let line = b"1,growing,100\n";
    for _ in 0..30 {
        file.write_all(line).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    drop(file);
    let final_size = 30 * line.len() as u64;
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", "big.csv"));
    assert_eq!(seen.sz, final_size, "announced before the upload finished");
}

#[tokio::test]
async fn ftp_watch_restart_with_state_neither_misses_nor_repeats() {
    let root = tempfile::tempdir().unwrap();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.json");
    let server = FtpServer::start(root.path());
    let yaml = config(
        server.port(),
        &format!("settle: 0\nexisting: emit\nstate: {}\n", state.display()),
    );

    let mut watcher = Watcher::start("etl", "x", server.port());
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    write(root.path(), "a.csv", b"1,a,1\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", "a.csv"));
    // The state is written right after the events of a poll are handed over.
    let until = std::time::Instant::now() + DEADLINE;
    while !std::fs::read_to_string(&state)
        .unwrap_or_default()
        .contains("a.csv")
    {
        assert!(
            std::time::Instant::now() < until,
            "state never recorded a.csv"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stream);
    watcher.kill();

    // Uploaded while ftp-watch is down.
    write(root.path(), "b.csv", b"1,b,1\n");

    let watcher = Watcher::start("etl", "x", server.port());
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    let seen = next_event(&mut stream, &watcher).await;
    // Events of a poll come sorted by name: a repeated a.csv would come first.
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", "b.csv"));
    write(root.path(), "c.csv", b"1,c,1\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!((seen.kind.as_str(), seen.name.as_str()), ("new", "c.csv"));
}

#[tokio::test]
async fn ftp_watch_refuses_unknown_config_keys() {
    let watcher = Watcher::start("etl", "x", 21);
    let status = watcher
        .subscribe("host: 127.0.0.1\nintervall: 1s\n")
        .await
        .expect_err("bad config must fail");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("unknown field `intervall`"),
        "{}",
        status.message()
    );
    let status = watcher
        .subscribe("host: 127.0.0.1\npassword: hunter2\n")
        .await
        .expect_err("password in config must fail");
    assert!(
        status.message().contains("FTP_PASSWD"),
        "{}",
        status.message()
    );
}

/// Issue 16: the seed's own EventSource config works unchanged (its LIST column keys are
/// ignored with one info line); a misspelt key is still refused.
#[tokio::test]
async fn ftp_watch_accepts_the_seed_config_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let server = FtpServer::start(root.path());
    let watcher = Watcher::start("etl", "x", server.port());
    let seed = format!(
        "host: 127.0.0.1\nport: {}\ndir: /\npassive: true\nszfield: 4\ndtfields: [-4, -3, -2]\ninterval: 200ms\nsettle: 0\n",
        server.port()
    );
    let mut stream = watcher.subscribe(&seed).await.expect("the seed's config");
    watcher.wait_for_log("first listing").await;
    write(root.path(), "seed.csv", b"1,a,1\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str()),
        ("new", "seed.csv")
    );
    assert_eq!(
        watcher
            .log()
            .matches("ignoring the seed's LIST column keys")
            .count(),
        1
    );

    let status = watcher
        .subscribe(&seed.replace("szfield", "sizefield"))
        .await
        .expect_err("a typo is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("unknown field `sizefield`"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn ftp_watch_serves_several_streams_at_once() {
    let root_one = tempfile::tempdir().unwrap();
    let root_two = tempfile::tempdir().unwrap();
    let one = FtpServer::start(root_one.path());
    let two = FtpServer::start(root_two.path());
    // `default` is `one` (FTP_*); `two` comes from a servers file with its own password.
    let settings = tempfile::tempdir().unwrap();
    let password_file = settings.path().join("two.password");
    std::fs::write(&password_file, "two-secret\n").unwrap();
    let servers = settings.path().join("servers.yaml");
    std::fs::write(
        &servers,
        format!(
            "servers:\n  two:\n    host: 127.0.0.1\n    port: {}\n    user: etl2\n    password_file: {}\n",
            two.port(),
            password_file.display()
        ),
    )
    .unwrap();
    let one_port = one.port().to_string();
    let watcher = Watcher::start_with(
        &[
            ("FTP_HOST", "127.0.0.1"),
            ("FTP_PORT", &one_port),
            ("FTP_USER", "etl"),
            ("FTP_PASSWD", "x"),
        ],
        &["--servers", servers.to_str().unwrap()],
    );
    let extra = "settle: 0\nexisting: emit\n";
    let mut stream_one = watcher.subscribe(&config(one.port(), extra)).await.unwrap();
    // By name, and the seed's way (host and port equal to the server's).
    let mut stream_two = watcher
        .subscribe(&format!("server: two\ninterval: 200ms\n{extra}"))
        .await
        .unwrap();
    let mut stream_three = watcher.subscribe(&config(two.port(), extra)).await.unwrap();
    write(root_one.path(), "one.csv", b"1\n");
    write(root_two.path(), "two.csv", b"2\n");
    assert_eq!(next_event(&mut stream_one, &watcher).await.name, "one.csv");
    assert_eq!(next_event(&mut stream_two, &watcher).await.name, "two.csv");
    assert_eq!(
        next_event(&mut stream_three, &watcher).await.name,
        "two.csv"
    );
    assert!(!watcher.log().contains("two-secret"));
}

#[test]
fn ftp_watch_scan_prints_one_poll_as_json_lines() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "a.csv", b"1,a,1\n");
    write(root.path(), "sub/b.csv", b"1,b,22\n");
    let server = FtpServer::start(root.path());
    let lines = scan_lines(&scan(&config(server.port(), ""), server.port()));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["name"], "new");
    assert_eq!(lines[0]["payload"]["name"], "a.csv");
    assert_eq!(lines[1]["payload"]["name"], "sub/b.csv");
    assert_eq!(lines[1]["payload"]["sz"], 7);

    // A bad config exits 2; an unreachable server exits 1.
    let output = scan("host: 127.0.0.1\nbogus: 1\n", server.port());
    assert_eq!(output.status.code(), Some(2));
    drop(server);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let output = scan(&config(port, ""), port);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The same new/mod flow against vsftpd (no MLSD: LIST + MDTM). Start it with
/// `scripts/vsftpd-start.sh`, then set `ETL_VSFTPD_PORT` (and `ETL_VSFTPD_ROOT`,
/// `FTP_USER`, `FTP_PASSWD` when not the script's defaults).
#[tokio::test]
async fn ftp_watch_against_vsftpd() {
    let Some(Vsftpd {
        port,
        user,
        password,
        run,
        dir,
    }) = Vsftpd::from_env("it")
    else {
        return;
    };
    write(&dir, "before.csv", b"0\n");

    let watcher = Watcher::start(&user, &password, port);
    let yaml =
        format!("host: 127.0.0.1\nport: {port}\ndir: /{run}\ninterval: 300ms\nsuffix: .csv\n");
    let mut stream = watcher.subscribe(&yaml).await.expect("stream");
    watcher.wait_for_log("first listing").await;
    write(&dir, "test.csv", b"1,aaa,100\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str(), seen.sz),
        ("new", "test.csv", 10)
    );
    assert!(
        humantime::parse_rfc3339(&seen.dt).is_ok(),
        "dt {:?}",
        seen.dt
    );
    write(&dir, "test.csv", b"1,aaa,100\n2,bbb,90\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str(), seen.sz),
        ("mod", "test.csv", 19)
    );
    write(&dir, "day/1.csv", b"1\n");
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str()),
        ("new", "day/1.csv")
    );
    drop(stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 20: on a server without MLSD, ftp-watch's polls after the first cost one LIST per
/// folder and no MDTM/SIZE while nothing changes; a change costs one MDTM.
#[tokio::test]
async fn ftp_watch_polls_unchanged_files_without_mdtm() {
    const FILES: usize = 30;
    let root = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        write(
            root.path(),
            &format!("day/{i}.csv"),
            format!("{i},x,1\n").as_bytes(),
        );
    }
    let server = FtpServer::start(root.path());
    let proxy = etl_test_support::ftp_count::CountingFtpProxy::without_mlsd(server.port());
    let watcher = Watcher::start("etl", "x", proxy.port());
    let mut stream = watcher
        .subscribe(&format!(
            "dir: /\ninterval: 100ms\nsettle: 0\nport: {}\n",
            proxy.port()
        ))
        .await
        .expect("stream");
    watcher.wait_for_log("first listing").await;
    // Wait for at least five more polls (two folders: `/` and `/day`, one LIST each).
    let start = proxy.count("LIST");
    let until = tokio::time::Instant::now() + DEADLINE;
    while proxy.count("LIST") < start + 10 {
        assert!(
            tokio::time::Instant::now() < until,
            "no polls: {:?}",
            proxy.commands()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(proxy.count("MLSD"), 0);
    assert_eq!(proxy.count("MDTM"), FILES, "MDTM only on the first poll");
    assert_eq!(proxy.count("SIZE"), 0);

    // Replaced whole (a rename from outside the served tree): no poll sees it half written.
    let staging = tempfile::tempdir_in(root.path().parent().unwrap()).unwrap();
    write(staging.path(), "7.csv", b"7,changed,100\n");
    std::fs::rename(staging.path().join("7.csv"), root.path().join("day/7.csv")).unwrap();
    let seen = next_event(&mut stream, &watcher).await;
    assert_eq!(
        (seen.kind.as_str(), seen.name.as_str()),
        ("mod", "day/7.csv")
    );
    assert_eq!(proxy.count("MDTM"), FILES + 1);
}
