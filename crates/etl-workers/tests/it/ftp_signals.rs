//! SIGTERM to `ftp-etl` at each point of a transfer, held there by a proxy in front of the
//! FTP server: before publishing nothing is left (no object, no multipart upload) and the
//! source is untouched, exit 1; after publishing the output stays and a rerun is one HEAD.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use etl_test_support::ftp::FtpServer;
use etl_test_support::ftp_count::CountingFtpProxy;
use etl_test_support::ftp_hold::{HoldAt, HoldingFtpProxy};

use crate::support::*;

const FTP_ETL: &str = env!("CARGO_BIN_EXE_ftp-etl");
const WAIT: Duration = Duration::from_secs(120);

/// A file on the FTP server, as it was before the run.
struct Source {
    path: PathBuf,
    bytes: Vec<u8>,
    modified: SystemTime,
    /// The event ftp-watch would send for it (name, size, time).
    event: String,
}

impl Source {
    fn write(root: &Path, name: &str, body: String) -> Source {
        let path = root.join(name);
        std::fs::write(&path, &body).unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        let event = serde_json::json!({
            "name": name, "sz": body.len(), "dt": humantime::format_rfc3339_seconds(modified).to_string()
        })
        .to_string();
        Source {
            path,
            bytes: body.into_bytes(),
            modified,
            event,
        }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            std::fs::read(&self.path).unwrap(),
            self.bytes,
            "the source changed"
        );
        assert_eq!(
            std::fs::metadata(&self.path).unwrap().modified().unwrap(),
            self.modified
        );
    }
}

/// A running `ftp-etl` whose stderr is collected as it comes.
struct Run {
    child: Child,
    stderr: Arc<Mutex<String>>,
    collector: std::thread::JoinHandle<()>,
}

impl Run {
    fn start(t: &TestContext, port: u16, event: &str, extra: &[&str]) -> Run {
        let mut child = t
            .command(FTP_ETL)
            .env("FTP_HOST", "127.0.0.1")
            .env("FTP_PORT", port.to_string())
            .env("S3_BUCKET", BUCKET)
            .env("S3_PREFIX", "output/")
            .args(["--event", event])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        let collector = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Run {
            child,
            stderr,
            collector,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then waits until ftp-etl logged that it saw it (or died of it).
    fn sigterm(&mut self) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + WAIT;
        while !self.stderr().contains("signal received") && self.child.try_wait().unwrap().is_none()
        {
            if Instant::now() > deadline {
                panic!("ftp-etl did not log the signal:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit; the exit code, stdout and stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("ftp-etl did not stop:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.collector.join().unwrap();
        let err = self.stderr.lock().unwrap().clone();
        (status.code(), out, err)
    }
}

/// Waits until the S3 server holds a multipart upload in progress with no part in flight:
/// every part started is stored (a part cut off mid-flight by the stop is another matter,
/// see `parts_started`).
fn wait_for_multipart(t: &TestContext, run: &Run) {
    let deadline = Instant::now() + WAIT;
    let mut settled = 0;
    while settled < 3 {
        assert!(
            Instant::now() < deadline,
            "no multipart upload settled ({} parts stored of {} started):\n{}",
            uploads_in_flight(t),
            parts_started(t),
            run.stderr()
        );
        let stored = uploads_in_flight(t);
        settled = if stored > 0 && stored == parts_started(t) {
            settled + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `UploadPart` requests the S3 server received.
fn parts_started(t: &TestContext) -> usize {
    t.s3.requests()
        .iter()
        .filter(|r| r.is_put() && r.query.contains("partNumber="))
        .count()
}

/// What a run stopped before publishing leaves: exit 1 naming the output, no object, no
/// multipart upload, the source as it was.
fn assert_stopped_before_publishing(t: &TestContext, run: Run, source: &Source) {
    let (code, out, err) = run.finish();
    assert!(t.keys("output/").is_empty(), "{:?}", t.keys("output/"));
    assert_eq!(
        uploads_in_flight(t),
        0,
        "a multipart upload was left behind"
    );
    source.assert_untouched();
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("stopped by a signal before s3://etlproj/output/big.parquet was published"),
        "{err}"
    );
}

/// A file of `rows` rows on an FTP server, seen through a proxy holding at `at`.
struct Scene {
    t: TestContext,
    _root: tempfile::TempDir,
    source: Source,
    server: FtpServer,
    proxy: HoldingFtpProxy,
}

impl Scene {
    fn new(rows: u64, at: HoldAt) -> Scene {
        let t = TestContext::new();
        let root = tempfile::tempdir().unwrap();
        let source = Source::write(root.path(), "big.csv", csv_rows(rows));
        let server = FtpServer::start(root.path());
        let proxy = HoldingFtpProxy::start(server.port(), at);
        Scene {
            t,
            _root: root,
            source,
            server,
            proxy,
        }
    }

    /// ftp-etl for the file's event, once it is held.
    fn held_run(&self, extra: &[&str]) -> Run {
        let run = Run::start(&self.t, self.proxy.port(), &self.source.event, extra);
        assert!(self.proxy.wait_reached(WAIT), "{}", run.stderr());
        run
    }

    /// Nothing is lost: the same event converts the whole file afterwards.
    fn assert_rerun_converts(&self, rows: usize) {
        let (t, source) = (&self.t, &self.source);
        let (code, out, err) = Run::start(t, self.server.port(), &source.event, &[]).finish();
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains(r#""status":"converted""#), "{out}");
        let batches = read_parquet(t.get("output/big.parquet").expect("output"));
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
        source.assert_untouched();
    }
}

#[test]
fn sigterm_mid_download_stops_the_stalled_transfer_and_leaves_nothing() {
    let scene = Scene::new(50_000, HoldAt::DataAfter(256 * 1024));
    let mut run = scene.held_run(&[]);
    run.sigterm();
    // The transfer stays held: the stop alone must end the wait for data.
    assert_stopped_before_publishing(&scene.t, run, &scene.source);
    scene.proxy.release();
    scene.assert_rerun_converts(50_000);
}

#[test]
fn sigterm_mid_multipart_upload_aborts_it() {
    // Past the first row group (1Mi rows): its parts are stored when the data stalls.
    let held = csv_rows(1_200_000).len();
    let scene = Scene::new(1_500_000, HoldAt::DataAfter(held));
    let mut run = scene.held_run(&["--compression", "none"]);
    wait_for_multipart(&scene.t, &run);
    run.sigterm();
    assert_stopped_before_publishing(&scene.t, run, &scene.source);
}

#[test]
fn sigterm_after_the_whole_file_was_read_withholds_the_output() {
    // The data connection is closed, the server's completion reply (226) held: the whole
    // file was read and the output's parts uploaded, only the publication is left.
    let scene = Scene::new(400_000, HoldAt::Reply("226"));
    // About 8 MB of Parquet: more than one 5 MiB part.
    let mut run = scene.held_run(&["--compression", "none", "--s3-part-size", "5MiB"]);
    wait_for_multipart(&scene.t, &run);
    run.sigterm();
    scene.proxy.release();
    assert_stopped_before_publishing(&scene.t, run, &scene.source);
    scene.assert_rerun_converts(400_000);
}

#[test]
fn sigterm_after_publishing_keeps_the_output_and_a_rerun_is_one_head() {
    // ftp-etl ends its FTP session after publishing: QUIT is held.
    let scene = Scene::new(1_000, HoldAt::Command("QUIT"));
    let t = &scene.t;
    let mut run = scene.held_run(&[]);
    let published = t.get("output/big.parquet").expect("published before QUIT");
    run.sigterm();
    scene.proxy.release();
    let (code, out, err) = run.finish();
    // The work is done: reporting it as done spares Argo a retry.
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(r#""status":"converted""#), "{out}");
    assert_eq!(t.get("output/big.parquet").unwrap(), published);
    scene.source.assert_untouched();

    // The same event again: one HEAD, not one FTP command.
    let counting = CountingFtpProxy::start(scene.server.port(), false, Duration::ZERO);
    t.s3.clear_requests();
    let (code, out, err) = Run::start(t, counting.port(), &scene.source.event, &[]).finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty(), "{out}");
    let methods: Vec<String> = t.s3.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["HEAD"]);
    assert_eq!(counting.commands(), Vec::<String>::new());
    assert_eq!(t.get("output/big.parquet").unwrap(), published);
}
