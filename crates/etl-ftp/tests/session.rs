//! `etl-ftp` against the in-process FTP server: listing, walking, streaming download,
//! and how failures are classified.

use etl_error::{Classify as _, ErrorClass};
use etl_ftp::{FtpSettings, connect};
use etl_test_support::ftp::FtpServer;
use tokio::io::AsyncReadExt as _;

fn settings(port: u16) -> FtpSettings {
    let mut settings = FtpSettings::new("127.0.0.1");
    settings.port = port;
    settings.user = "etl".to_owned();
    settings.password = "secret".to_owned();
    settings
}

#[tokio::test]
async fn walks_and_downloads_in_binary_mode() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("in/day")).unwrap();
    std::fs::write(root.path().join("in/a.csv"), b"1,aaa,100\n").unwrap();
    std::fs::write(root.path().join("in/day/b.csv"), b"2,bbb,90\n3,ccc,80\n").unwrap();
    let server = FtpServer::start(root.path());
    let mut ftp = connect(&settings(server.port())).await.unwrap();
    assert!(ftp.capabilities().mlsd);

    let flat = ftp.walk("/in", false).await.unwrap();
    assert_eq!(
        flat.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["/in/a.csv"]
    );
    let all = ftp.walk("/in", true).await.unwrap();
    let summary: Vec<(&str, u64)> = all.iter().map(|e| (e.path.as_str(), e.size)).collect();
    assert_eq!(summary, [("/in/a.csv", 10), ("/in/day/b.csv", 18)]);
    assert!(all.iter().all(|e| e.modified.is_some() && e.exact));

    // No LF -> CRLF translation: bytes come back exactly.
    let mut download = ftp.retr_stream("/in/day/b.csv").await.unwrap();
    let mut body = Vec::new();
    download.read_to_end(&mut body).await.unwrap();
    download.finish().await.unwrap();
    assert_eq!(body, b"2,bbb,90\n3,ccc,80\n");
    // The session is usable after finish.
    assert_eq!(ftp.size("/in/a.csv").await.unwrap(), 10);

    let missing = match ftp.retr_stream("/in/nope.csv").await {
        Ok(download) => download.finish().await.unwrap_err(),
        Err(error) => error,
    };
    assert!(missing.is_not_found(), "{missing:?}");
    assert_eq!(missing.class(), ErrorClass::BadInput);
    assert!(missing.to_string().contains("/in/nope.csv"));
    ftp.quit().await.unwrap();
}

#[tokio::test]
async fn refused_connection_is_retryable_and_password_stays_hidden() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let settings = settings(port);
    assert!(!format!("{settings:?}").contains("secret"));
    let error = connect(&settings).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert!(!format!("{error:?}").contains("secret"));
}

/// Listing (LIST + MDTM, vsftpd has no MLSD) and download against vsftpd; runs when
/// `ETL_VSFTPD_PORT` is set (see `scripts/vsftpd-start.sh`).
#[tokio::test]
async fn vsftpd_list_fallback_and_download() {
    let Some(port) = std::env::var("ETL_VSFTPD_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: set ETL_VSFTPD_PORT to run against vsftpd");
        }
        return;
    };
    let root = std::path::PathBuf::from(
        std::env::var("ETL_VSFTPD_ROOT").unwrap_or_else(|_| "/srv/etlftp".to_owned()),
    );
    let run = format!("ftp-it-{}", std::process::id());
    std::fs::create_dir_all(root.join(&run).join("sub dir")).unwrap();
    std::fs::write(root.join(&run).join("sub dir/a b.csv"), b"1,aaa,100\n").unwrap();
    let mut settings = settings(port);
    settings.user = std::env::var("FTP_USER").unwrap_or_else(|_| "etlftp".to_owned());
    settings.password = std::env::var("FTP_PASSWD").unwrap_or_else(|_| "etlftp-pass".to_owned());
    let mut ftp = connect(&settings).await.unwrap();
    assert!(!ftp.capabilities().mlsd);
    let files = ftp.walk(&format!("/{run}"), true).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].path, format!("/{run}/sub dir/a b.csv"));
    assert_eq!(files[0].size, 10);
    assert!(files[0].exact && files[0].modified.is_some());
    let mut download = ftp.retr_stream(&files[0].path).await.unwrap();
    let mut body = Vec::new();
    download.read_to_end(&mut body).await.unwrap();
    download.finish().await.unwrap();
    assert_eq!(body, b"1,aaa,100\n");
    let mut wrong = settings.clone();
    wrong.password = "wrong".to_owned();
    let error = connect(&wrong).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::BadInput);
    ftp.quit().await.unwrap();
    let _ = std::fs::remove_dir_all(root.join(&run));
}
