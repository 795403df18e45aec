//! The cost of repeated walks on a server without MLSD (as vsftpd): one LIST per folder,
//! and MDTM/SIZE only for files whose LIST line changed since the previous walk.

use etl_ftp::{FtpSettings, ListingCache, connect};
use etl_test_support::ftp::FtpServer;
use etl_test_support::ftp_count::CountingFtpProxy;

const FILES: usize = 40;

#[tokio::test]
async fn a_second_walk_over_unchanged_files_sends_no_mdtm_or_size() {
    let root = tempfile::tempdir().unwrap();
    for folder in ["in", "in/day1", "in/day2"] {
        std::fs::create_dir_all(root.path().join(folder)).unwrap();
        for i in 0..FILES {
            std::fs::write(
                root.path().join(format!("{folder}/{i}.csv")),
                format!("{i},x\n"),
            )
            .unwrap();
        }
    }
    let server = FtpServer::start(root.path());
    let proxy = CountingFtpProxy::without_mlsd(server.port());
    let mut settings = FtpSettings::new("127.0.0.1");
    settings.port = proxy.port();
    let mut ftp = connect(&settings).await.unwrap();
    assert!(!ftp.capabilities().mlsd, "the proxy hides MLSD");

    let mut cache = ListingCache::default();
    proxy.clear();
    let first = ftp.walk_cached("/in", true, &mut cache).await.unwrap();
    assert_eq!(first.len(), 3 * FILES);
    assert!(first.iter().all(|e| e.exact), "MDTM gave exact times");
    assert_eq!(proxy.count("LIST"), 3);
    assert_eq!(proxy.count("MDTM"), 3 * FILES);
    assert_eq!(proxy.count("MLSD"), 0);

    // Nothing changed: one LIST per folder, nothing per file, the same exact times.
    proxy.clear();
    let second = ftp.walk_cached("/in", true, &mut cache).await.unwrap();
    assert_eq!(second, first);
    assert_eq!(proxy.count("LIST"), 3);
    assert_eq!(
        proxy.count("MDTM") + proxy.count("SIZE"),
        0,
        "{:?}",
        proxy.commands()
    );

    // One file grows, one appears, one goes: MDTM for the first two only.
    std::fs::write(root.path().join("in/day1/3.csv"), "3,grown,longer\n").unwrap();
    std::fs::write(root.path().join("in/day2/new.csv"), "n\n").unwrap();
    std::fs::remove_file(root.path().join("in/5.csv")).unwrap();
    proxy.clear();
    let third = ftp.walk_cached("/in", true, &mut cache).await.unwrap();
    assert_eq!(third.len(), 3 * FILES);
    assert_eq!(proxy.count("LIST"), 3);
    assert_eq!(proxy.count("MDTM"), 2, "{:?}", proxy.commands());
    let grown = third.iter().find(|e| e.path == "/in/day1/3.csv").unwrap();
    assert_eq!((grown.size, grown.exact), (15, true));
    assert_eq!(cache.len(), 3 * FILES);

    // Without a kept cache every walk pays per file, as before.
    proxy.clear();
    ftp.walk("/in", true).await.unwrap();
    assert_eq!(proxy.count("MDTM"), 3 * FILES);
    ftp.quit().await.unwrap();
}
