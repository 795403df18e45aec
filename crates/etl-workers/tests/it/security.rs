//! The threats of `docs/security.md`, each tried against the real binaries: credential
//! harvesting through an event source config, unauthenticated gRPC clients.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use etl_test_support::ftp::FtpServer;

use crate::support::ftp::{DEADLINE, Watcher, config, write};

const PASSWORD: &str = "real-ftp-password-7Qz";

/// A fake FTP server on 127.0.0.1 that greets every connection and records every byte
/// it receives: what a credential harvester would run.
struct Harvester {
    port: u16,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Harvester {
    fn start() -> Harvester {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count, record) = (Arc::clone(&connections), Arc::clone(&received));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                count.fetch_add(1, Ordering::SeqCst);
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let _ = stream.write_all(b"220 welcome\r\n");
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                        // Play along so that a client would go on to PASS.
                        let _ = stream.write_all(b"331 password please\r\n");
                    }
                });
            }
        });
        Harvester {
            port,
            connections,
            received,
        }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            self.connections.load(Ordering::SeqCst),
            0,
            "ftp-watch connected to the harvester; it received {:?}",
            String::from_utf8_lossy(&self.received.lock().unwrap())
        );
        assert!(self.received.lock().unwrap().is_empty());
    }
}

/// Issue 18: a gRPC client naming another host or port gets an error status, and no
/// connection is made there; the seed-style config naming the configured server works.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_naming_an_unconfigured_server_is_refused_without_connecting() {
    let root = tempfile::tempdir().unwrap();
    let server = FtpServer::start(root.path());
    let harvester = Harvester::start();
    let port = server.port().to_string();
    let watcher = Watcher::start_with(
        &[
            ("FTP_HOST", "127.0.0.1"),
            ("FTP_PORT", &port),
            ("FTP_USER", "etl"),
            ("FTP_PASSWD", PASSWORD),
            ("RUST_LOG", "trace"),
        ],
        &[],
    );

    let refused = [
        format!("host: 127.0.0.1\nport: {}\n", harvester.port),
        format!("port: {}\n", harvester.port),
        format!("server: default\nport: {}\n", harvester.port),
        // Same address, other spelling: host names are compared, never resolved.
        format!("host: localhost\nport: {}\n", server.port()),
        "host: ftp.attacker.example\n".to_owned(),
    ];
    for yaml in &refused {
        let status = watcher
            .subscribe(&format!("{yaml}interval: 50ms\nsettle: 0\n"))
            .await
            .expect_err("an unconfigured server must be refused");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{yaml}");
        assert!(
            status
                .message()
                .contains("not a server ftp-watch is configured with")
                || status.message().contains("does not match server"),
            "{yaml}: {}",
            status.message()
        );
    }
    let status = watcher
        .subscribe("server: elsewhere\n")
        .await
        .expect_err("an unknown server name must be refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(status.message().contains("configured: default"));

    // The seed's config (host equal to FTP_HOST) still works end to end.
    let mut stream = watcher
        .subscribe(&config(server.port(), "settle: 0\nexisting: emit\n"))
        .await
        .expect("the configured server is accepted");
    write(root.path(), "after.csv", b"1,a,1\n");
    let event = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("an event in time")
        .expect("a message")
        .expect("an open stream");
    assert_eq!(event.name, "new");
    assert!(String::from_utf8_lossy(&event.payload).contains("after.csv"));

    // By now every refused stream has had many poll intervals to connect.
    harvester.assert_untouched();
    assert!(!watcher.log().contains(PASSWORD));
}

/// ftp-watch requiring the bearer token in `token`, watching `port` as `default`.
fn watcher_with_token(port: u16, token: &str) -> (Watcher, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let port = port.to_string();
    let watcher = Watcher::start_with(
        &[
            ("FTP_HOST", "127.0.0.1"),
            ("FTP_PORT", &port),
            ("FTP_USER", "etl"),
            ("FTP_PASSWD", PASSWORD),
            ("FTP_WATCH_AUTH_TOKEN_FILE", token_file.to_str().unwrap()),
        ],
        &[],
    );
    (watcher, dir)
}

/// Issue 18: with a token configured, a call without it or with another is refused with
/// UNAUTHENTICATED before its config is even read; the right token streams events.
#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_need_the_bearer_token() {
    const TOKEN: &str = "tok-9f8e7d6c5b4a";
    let root = tempfile::tempdir().unwrap();
    let server = FtpServer::start(root.path());
    let (watcher, _token_dir) = watcher_with_token(server.port(), TOKEN);
    let yaml = config(server.port(), "settle: 0\nexisting: emit\n");

    for (label, authorization) in [
        ("no token", None),
        ("wrong token", Some("Bearer tok-9f8e7d6c5b4b")),
        ("token as prefix", Some("Bearer tok-9f8e7d6c5b4a-and-more")),
        ("other scheme", Some("Basic tok-9f8e7d6c5b4a")),
        ("bare token", Some(TOKEN)),
    ] {
        let status = watcher
            .subscribe_with(&yaml, authorization)
            .await
            .expect_err(label);
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{label}");
    }
    // A refused call never reached the service: no poller was started.
    assert!(!watcher.log().contains("event source started"));

    let mut stream = watcher
        .subscribe_with(&yaml, Some(&format!("Bearer {TOKEN}")))
        .await
        .expect("the right token is accepted");
    write(root.path(), "ok.csv", b"1,a,1\n");
    let event = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("an event in time")
        .expect("a message")
        .expect("an open stream");
    assert_eq!(event.name, "new");
    assert!(String::from_utf8_lossy(&event.payload).contains("ok.csv"));
    assert!(!watcher.log().contains(TOKEN));
}

/// A token file that cannot be used stops ftp-watch at start with exit 2.
#[test]
fn an_unusable_token_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    for file in [empty, dir.path().join("missing")] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ftp-watch"))
            .args(["--listen", "127.0.0.1:0", "--auth-token-file"])
            .arg(&file)
            .env("FTP_HOST", "127.0.0.1")
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A test CA and a certificate for `localhost` it signed, made by the system's `openssl`:
/// `(ca, cert, key)`; `None` (with a note) where there is no usable `openssl`.
fn test_certificates(
    dir: &std::path::Path,
) -> Option<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let ext = dir.join("leaf.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<String>; 3] = [
        [
            "req",
            "-x509",
            "-days",
            "1",
            "-subj",
            "/CN=etl test CA",
            "-keyout",
        ]
        .iter()
        .map(ToString::to_string)
        .chain([path("ca.key"), "-out".into(), path("ca.crt")])
        .chain(ec.iter().map(ToString::to_string))
        .collect(),
        ["req", "-subj", "/CN=localhost", "-keyout"]
            .iter()
            .map(ToString::to_string)
            .chain([path("tls.key"), "-out".into(), path("tls.csr")])
            .chain(ec.iter().map(ToString::to_string))
            .collect(),
        ["x509", "-req", "-days", "1", "-in"]
            .iter()
            .map(ToString::to_string)
            .chain([
                path("tls.csr"),
                "-CA".into(),
                path("ca.crt"),
                "-CAkey".into(),
                path("ca.key"),
                "-CAcreateserial".into(),
                "-extfile".into(),
                ext.to_str().unwrap().to_owned(),
                "-out".into(),
                path("tls.crt"),
            ])
            .collect(),
    ];
    for args in &steps {
        let made = std::process::Command::new("openssl").args(args).output();
        if !made.is_ok_and(|o| o.status.success()) {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: no usable `openssl` to make test certificates");
            }
            return None;
        }
    }
    Some((dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key")))
}

/// Optional gRPC TLS: a client trusting the certificate streams events (with the token);
/// a plaintext client gets nothing.
#[tokio::test(flavor = "multi_thread")]
async fn grpc_over_tls_with_the_token() {
    const TOKEN: &str = "tls-token-1234";
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = test_certificates(dir.path()) else {
        return;
    };
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let root = tempfile::tempdir().unwrap();
    let server = FtpServer::start(root.path());
    let port = server.port().to_string();
    let watcher = Watcher::start_with(
        &[
            ("FTP_HOST", "127.0.0.1"),
            ("FTP_PORT", &port),
            ("FTP_PASSWD", PASSWORD),
            ("FTP_WATCH_AUTH_TOKEN_FILE", token_file.to_str().unwrap()),
            ("FTP_WATCH_TLS_CERT", cert.to_str().unwrap()),
            ("FTP_WATCH_TLS_KEY", key.to_str().unwrap()),
        ],
        &[],
    );
    let address = watcher.address();
    let yaml = config(server.port(), "settle: 0\nexisting: emit\n");

    // Plaintext HTTP/2 to a TLS port: refused at the transport.
    if let Ok(mut plain) = etl_grpc::EventingClient::connect(format!("http://{address}")).await {
        let attempt = tokio::time::timeout(
            DEADLINE,
            plain.start_event_source(etl_grpc::EventSource {
                name: "plain".into(),
                config: yaml.clone().into_bytes(),
            }),
        )
        .await
        .expect("an answer in time");
        assert!(attempt.is_err(), "a plaintext call was served");
    }

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&ca).unwrap(),
        ))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS connect");
    let mut client = etl_grpc::EventingClient::new(channel);
    let mut request = tonic::Request::new(etl_grpc::EventSource {
        name: "tls".into(),
        config: yaml.into_bytes(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let mut stream = client
        .start_event_source(request)
        .await
        .expect("stream over TLS")
        .into_inner();
    write(root.path(), "tls.csv", b"1,a,1\n");
    let event = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("an event in time")
        .expect("a message")
        .expect("an open stream");
    assert!(String::from_utf8_lossy(&event.payload).contains("tls.csv"));
}

/// etl-notify verifies the webhook's certificate: a TLS server whose certificate comes
/// from a CA the system does not trust (ftp-watch with the test CA's certificate) gets no
/// request; the failure is one warning naming the certificate, without the URL.
#[test]
fn notify_refuses_a_webhook_certificate_it_cannot_verify() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_ca, cert, key)) = test_certificates(dir.path()) else {
        return;
    };
    let watcher = Watcher::start_with(
        &[
            ("FTP_HOST", "127.0.0.1"),
            ("FTP_WATCH_TLS_CERT", cert.to_str().unwrap()),
            ("FTP_WATCH_TLS_KEY", key.to_str().unwrap()),
        ],
        &[],
    );
    let url = format!(
        "https://localhost:{}/services/T1/B2/notifySecret9",
        watcher.address().port()
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_etl-notify"))
        .env("WEBHOOK_URL", &url)
        .env("STATUS", "Failed")
        .env("RUST_LOG", "trace")
        .env("ETL_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let log = String::from_utf8_lossy(&output.stderr);
    let warning = log
        .lines()
        .find(|l| l.contains("notification not sent"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(
        warning.to_ascii_lowercase().contains("certificate") || warning.contains("UnknownIssuer"),
        "{warning}"
    );
    assert!(!log.contains("notifySecret9"), "{log}");
}
