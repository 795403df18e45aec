//! The cost of one ftp-watch poll (FTP commands, wall time) over many files, through a
//! link with added latency, on a server with and without MLSD, against the seed's LIST.
//!
//! `cargo run --release -p etl-ftp --example poll_bench -- [--files 10000] [--rtt-ms 10]`
//!
//! The in-process libunftp server (it has MLSD) serves a temporary tree holding the files
//! twice: `/flat` (all in one folder) and `/daily` (100 folders, as a watch over daily
//! folders sees them). A counting proxy in front of it adds `--rtt-ms` to every command
//! (twice to PASV/EPSV, whose data connection costs one more handshake) and, for the
//! "no MLSD" rows, hides MLSD as vsftpd does. Rows:
//! - `seed`: the seed's approach, one LIST per folder and no MDTM (minute-precision times);
//! - `ftp-watch`: `walk_with` with the listing cache kept across polls (MDTM only for files
//!   new or changed), and `+skip` with `skip_unchanged_folders` (folders aged two days).
//!
//! Each row gives the first poll and a later poll over unchanged files. Prints Markdown.

use std::time::{Duration, Instant, SystemTime};

use etl_ftp::{FtpSettings, ListingCache, WalkOptions};
use etl_test_support::ftp::FtpServer;
use etl_test_support::ftp_count::CountingFtpProxy;

const DAILY_FOLDERS: usize = 100;

fn argument(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn make_tree(root: &std::path::Path, files: usize) -> std::io::Result<()> {
    let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::create_dir_all(root.join("flat"))?;
    for i in 0..files {
        std::fs::write(root.join(format!("flat/{i:05}.csv")), format!("{i},x,1\n"))?;
    }
    for day in 0..DAILY_FOLDERS {
        let folder = root.join(format!("daily/d{day:03}"));
        std::fs::create_dir_all(&folder)?;
        for i in 0..files / DAILY_FOLDERS {
            std::fs::write(folder.join(format!("{i:05}.csv")), format!("{i},x,1\n"))?;
        }
        std::fs::File::open(&folder)?.set_modified(old)?;
    }
    Ok(())
}

struct Poll {
    commands: usize,
    elapsed: Duration,
    files: usize,
}

impl std::fmt::Display for Poll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} commands, {:.2} s",
            self.commands,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The seed's approach: LIST each folder (`dir` and, for `/daily`, its subfolders), no MDTM.
async fn seed_poll(proxy: &CountingFtpProxy, dir: &str) -> anyhow::Result<Poll> {
    let mut ftp =
        suppaftp::tokio::AsyncRustlsFtpStream::connect(("127.0.0.1", proxy.port())).await?;
    ftp.login("bench", "bench").await?;
    proxy.clear();
    let started = Instant::now();
    let mut files = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for line in ftp.list(Some(&folder)).await? {
            if let Some(entry) = etl_ftp::parse_list_line(&folder, &line) {
                if entry.is_dir {
                    pending.push(entry.path);
                } else {
                    files += 1;
                }
            }
        }
    }
    let poll = Poll {
        commands: proxy.commands().len(),
        elapsed: started.elapsed(),
        files,
    };
    let _ = ftp.quit().await;
    Ok(poll)
}

/// Two polls of ftp-watch's walk on one connection, the cache kept between them.
async fn watch_polls(
    proxy: &CountingFtpProxy,
    dir: &str,
    skip: bool,
) -> anyhow::Result<(Poll, Poll)> {
    let mut settings = FtpSettings::new("127.0.0.1");
    settings.port = proxy.port();
    settings.user = "bench".to_owned();
    let mut connection = etl_ftp::connect(&settings).await?;
    let options = WalkOptions {
        max_depth: None,
        skip_unchanged_folders: skip,
    };
    let mut cache = ListingCache::default();
    let mut polls = Vec::new();
    for _ in 0..2 {
        proxy.clear();
        let started = Instant::now();
        let files = connection
            .walk_with(dir, &options, &mut cache, &|_| true)
            .await?;
        polls.push(Poll {
            commands: proxy.commands().len(),
            elapsed: started.elapsed(),
            files: files.len(),
        });
    }
    let _ = connection.quit().await;
    let later = polls.pop().expect("two polls");
    let first = polls.pop().expect("two polls");
    Ok((first, later))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let files = usize::try_from(argument("--files", 10_000))?;
    let rtt = Duration::from_millis(argument("--rtt-ms", 10));
    let root = tempfile::tempdir()?;
    make_tree(root.path(), files)?;
    let server = FtpServer::start(root.path());
    println!(
        "Cost of one poll over {files} files, {} ms added per command round trip (libunftp in-process; \"no MLSD\" = MLSD hidden as on vsftpd):\n",
        rtt.as_millis()
    );
    println!("| server | layout | approach | first poll | later poll (nothing changed) |");
    println!("|---|---|---|---|---|");
    for (server_kind, hide_mlsd) in [("no MLSD", true), ("MLSD", false)] {
        let proxy = CountingFtpProxy::start(server.port(), hide_mlsd, rtt);
        for (layout, dir) in [("1 folder", "/flat"), ("100 folders", "/daily")] {
            let seed = seed_poll(&proxy, dir).await?;
            println!(
                "| {server_kind} | {layout} | seed (LIST only, no exact times) | {seed} | {seed} |"
            );
            let (first, later) = watch_polls(&proxy, dir, false).await?;
            anyhow::ensure!(first.files == files && later.files == files && seed.files == files);
            println!("| {server_kind} | {layout} | ftp-watch | {first} | {later} |");
            if layout == "100 folders" {
                let (first, later) = watch_polls(&proxy, dir, true).await?;
                println!(
                    "| {server_kind} | {layout} | ftp-watch, skip_unchanged_folders | {first} | {later} |"
                );
            }
        }
    }
    Ok(())
}
