//! FTP test helpers shared by the FTP test files: a running `ftp-watch` and its events,
//! `ftp-watch scan`, files written into a served folder, and a vsftpd when CI has one.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use etl_grpc::{Event, EventSource, EventingClient};
use tonic::Streaming;

const FTP_WATCH: &str = env!("CARGO_BIN_EXE_ftp-watch");

/// Generous: the machine may be busy building other crates.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// A running `ftp-watch` process; killed on drop.
pub(crate) struct Watcher {
    child: Child,
    address: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    /// ftp-watch whose server `default` is 127.0.0.1:`port` with these credentials.
    pub(crate) fn start(user: &str, password: &str, port: u16) -> Watcher {
        Watcher::start_with(
            &[
                ("FTP_HOST", "127.0.0.1"),
                ("FTP_PORT", &port.to_string()),
                ("FTP_USER", user),
                ("FTP_PASSWD", password),
            ],
            &[],
        )
    }

    /// ftp-watch with exactly these environment variables (plus PATH, HOME, TMPDIR)
    /// and extra arguments.
    pub(crate) fn start_with(env: &[(&str, &str)], args: &[&str]) -> Watcher {
        let mut command = Command::new(FTP_WATCH);
        command.env_clear();
        for name in ["PATH", "HOME", "TMPDIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ftp-watch");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (sender, receiver) = mpsc::channel();
        let collected = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("listening on ") {
                    let _ = sender.send(address.trim().to_owned());
                }
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = receiver.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            panic!(
                "ftp-watch did not report its address: {}",
                log.lock().unwrap()
            )
        });
        Watcher {
            child,
            address: address.parse().expect("address"),
            stderr: log,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    pub(crate) async fn subscribe(&self, config: &str) -> Result<Streaming<Event>, tonic::Status> {
        self.subscribe_with(config, None).await
    }

    /// Subscribes, sending `authorization` metadata when given (as Argo's generic source does).
    pub(crate) async fn subscribe_with(
        &self,
        config: &str,
        authorization: Option<&str>,
    ) -> Result<Streaming<Event>, tonic::Status> {
        let mut client = EventingClient::connect(format!("http://{}", self.address))
            .await
            .expect("gRPC connect");
        let mut request = tonic::Request::new(EventSource {
            name: "ftp-test".to_owned(),
            config: config.as_bytes().to_vec(),
        });
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().expect("ASCII metadata"));
        }
        client
            .start_event_source(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Polls the log until it contains `text`.
    pub(crate) async fn wait_for_log(&self, text: &str) {
        let until = tokio::time::Instant::now() + DEADLINE;
        while !self.log().contains(text) {
            assert!(
                tokio::time::Instant::now() < until,
                "log never contained {text:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The decoded parts of an event.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) sz: u64,
    pub(crate) dt: String,
}

pub(crate) async fn next_event(stream: &mut Streaming<Event>, watcher: &Watcher) -> Seen {
    let event = match tokio::time::timeout(DEADLINE, stream.message()).await {
        Ok(Ok(Some(event))) => event,
        other => panic!("no event ({other:?}); ftp-watch log:\n{}", watcher.log()),
    };
    let payload: serde_json::Value = serde_json::from_slice(&event.payload).expect("JSON payload");
    Seen {
        kind: event.name,
        name: payload["name"].as_str().expect("name").to_owned(),
        sz: payload["sz"].as_u64().expect("sz"),
        dt: payload["dt"].as_str().unwrap_or_default().to_owned(),
    }
}

pub(crate) fn write(root: &Path, name: &str, content: &[u8]) {
    let path = root.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

pub(crate) fn config(port: u16, extra: &str) -> String {
    format!("host: 127.0.0.1\nport: {port}\ndir: /\ninterval: 200ms\n{extra}")
}

/// A vsftpd started by `scripts/vsftpd-start.sh`, and a fresh folder in it for one test
/// (writable by the FTP user).
pub(crate) struct Vsftpd {
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: String,
    /// The folder's name under the FTP root.
    pub(crate) run: String,
    /// The folder on disk.
    pub(crate) dir: PathBuf,
}

impl Vsftpd {
    /// `None` (with a note) unless `ETL_VSFTPD_PORT` is set; `ETL_VSFTPD_ROOT`, `FTP_USER`
    /// and `FTP_PASSWD` override the script's defaults.
    pub(crate) fn from_env(label: &str) -> Option<Vsftpd> {
        let Some(port) = std::env::var("ETL_VSFTPD_PORT")
            .ok()
            .and_then(|p| p.parse::<u16>().ok())
        else {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "skipped: set ETL_VSFTPD_PORT (see scripts/vsftpd-start.sh) to run against vsftpd"
                );
            }
            return None;
        };
        let root = PathBuf::from(
            std::env::var("ETL_VSFTPD_ROOT").unwrap_or_else(|_| "/srv/etlftp".to_owned()),
        );
        let run = format!(
            "{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        let dir = root.join(&run);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        Some(Vsftpd {
            port,
            user: std::env::var("FTP_USER").unwrap_or_else(|_| "etlftp".to_owned()),
            password: std::env::var("FTP_PASSWD").unwrap_or_else(|_| "etlftp-pass".to_owned()),
            run,
            dir,
        })
    }

    /// The FTPS vsftpd of `scripts/vsftpd-start.sh` (same root and user) and the CA bundle
    /// that signed its certificate: `None` (with a note) unless `ETL_VSFTPD_TLS_PORT` and
    /// `ETL_VSFTPD_TLS_CA` are set.
    pub(crate) fn tls_from_env(label: &str) -> Option<(Vsftpd, PathBuf)> {
        let tls = std::env::var("ETL_VSFTPD_TLS_PORT")
            .ok()
            .and_then(|p| p.parse::<u16>().ok())
            .zip(std::env::var_os("ETL_VSFTPD_TLS_CA").map(PathBuf::from));
        let Some((port, ca)) = tls else {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "skipped: set ETL_VSFTPD_TLS_PORT and ETL_VSFTPD_TLS_CA (see scripts/vsftpd-start.sh) to run against vsftpd with FTPS"
                );
            }
            return None;
        };
        let mut server = Vsftpd::from_env(label)?;
        server.port = port;
        Some((server, ca))
    }
}

/// `ftp-watch scan` with `source` as its config file, the server at 127.0.0.1:`port`.
pub(crate) fn scan(source: &str, port: u16) -> Output {
    let files = tempfile::tempdir().unwrap();
    let config_path = files.path().join("source.yaml");
    std::fs::write(&config_path, source).unwrap();
    Command::new(FTP_WATCH)
        .args(["scan", "--config"])
        .arg(&config_path)
        .env("ETL_LOG_FORMAT", "text")
        .env("FTP_HOST", "127.0.0.1")
        .env("FTP_PORT", port.to_string())
        .output()
        .unwrap()
}

/// The JSON lines of a scan that must have succeeded.
pub(crate) fn scan_lines(output: &Output) -> Vec<serde_json::Value> {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
