//! `etl-notify` as a process against a hyper webhook server on 127.0.0.1 that records
//! every request: the JSON it receives, retries, and what reaches stderr.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BINARY: &str = env!("CARGO_BIN_EXE_etl-notify");
/// The secret part of the webhook URL, as in a Slack webhook.
const SECRET_PATH: &str = "/services/T0001/B0002/XyZsecretPart42";

/// One request the webhook received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// A webhook answering every request with `status`; records what it receives.
struct Webhook {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Webhook {
    fn start(status: u16) -> Webhook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&received);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => match accepted {
                            Ok(accepted) => accepted,
                            Err(_) => continue,
                        },
                    };
                    let record = Arc::clone(&record);
                    tokio::spawn(async move {
                        let service = service_fn(move |request: hyper::Request<Incoming>| {
                            let record = Arc::clone(&record);
                            async move {
                                let path = request.uri().path().to_owned();
                                let content_type = request
                                    .headers()
                                    .get(hyper::header::CONTENT_TYPE)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned();
                                let body = request
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                record.lock().unwrap().push(Received {
                                    path,
                                    content_type,
                                    body,
                                });
                                let response = hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .unwrap();
                                Ok::<_, Infallible>(response)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Webhook {
            address,
            received,
            stop: Some(stop),
        }
    }

    fn url(&self) -> String {
        format!("http://{}{SECRET_PATH}", self.address)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs etl-notify with exactly `env` (plus PATH), logging everything.
fn notify(env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
        .env("RUST_LOG", "trace")
        .env("ETL_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_no_url(output: &Output, url: &str) {
    let log = stderr(output);
    assert!(!log.contains(url), "the URL reached stderr:\n{log}");
    assert!(
        !log.contains("XyZsecretPart42"),
        "the URL's secret reached stderr:\n{log}"
    );
}

/// Control characters, quotes, backslashes and newlines in FAILURES arrive as valid
/// JSON holding exactly that text; unresolved `{{...}}` values read as empty.
#[test]
fn notify_posts_valid_json_whatever_the_values_hold() {
    let webhook = Webhook::start(200);
    let url = webhook.url();
    let failures = "line 1\nline \"2\"\t\\ end\r\u{1}\u{7}\u{1b}[31mred\u{7f} \u{2028} é";
    let output = notify(&[
        ("WEBHOOK_URL", &url),
        ("WORKFLOW", "etl-abc12"),
        ("STATUS", "Failed"),
        ("FAILURES", failures),
        ("OBJECT", "{{workflow.parameters.object}}"),
        ("OBJECTS", "input/a \"b\".csv"),
        ("ROWS", "{{workflow.outputs.parameters.rows}}"),
        ("OUTPUT_BUCKET", "etlproj"),
        ("OUTPUT_KEY", "output/a.parquet"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let received = webhook.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].path, SECRET_PATH);
    assert_eq!(received[0].content_type, "application/json");
    let body: serde_json::Value =
        serde_json::from_slice(&received[0].body).expect("the body is valid JSON");
    let object = body.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "error",
            "object",
            "output_key",
            "rows",
            "status",
            "text",
            "workflow"
        ]
    );
    assert_eq!(body["error"], failures);
    assert_eq!(body["workflow"], "etl-abc12");
    assert_eq!(body["status"], "Failed");
    assert_eq!(body["object"], "input/a \"b\".csv");
    assert_eq!(body["rows"], "");
    assert_eq!(body["output_key"], "output/a.parquet");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with(":x: etl-abc12 Failed: "), "{text}");
    assert!(text.ends_with(&format!("error={failures}")), "{text}");
    assert!(!text.contains("{{"), "{text}");
    assert_no_url(&output, &url);
}

/// No webhook URL (absent, empty, or an unresolved reference): one info line, exit 0.
#[test]
fn notify_without_url_sends_nothing_and_exits_0() {
    for env in [
        vec![("STATUS", "Succeeded")],
        vec![("STATUS", "Succeeded"), ("WEBHOOK_URL", "")],
        vec![("WEBHOOK_URL", "{{secrets.url}}")],
    ] {
        let output = notify(&env);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("no webhook URL"),
            "{}",
            stderr(&output)
        );
    }
}

/// A webhook failing with 500: three tries, one warning without the URL, exit 0.
#[test]
fn notify_failure_is_one_warning_without_the_url() {
    let webhook = Webhook::start(500);
    let url = webhook.url();
    let output = notify(&[("WEBHOOK_URL", &url), ("STATUS", "Succeeded")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(webhook.received().len(), 3);
    let log = stderr(&output);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("HTTP 500"), "{log}");
    assert_no_url(&output, &url);

    // A 4xx is not retried (the URL is wrong, trying again cannot help).
    let gone = Webhook::start(404);
    let output = notify(&[("WEBHOOK_URL", &gone.url())]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(gone.received().len(), 1);
    assert_no_url(&output, &gone.url());

    // Plain http to another machine would send the secret in clear: refused, nothing sent.
    let output = notify(&[(
        "WEBHOOK_URL",
        "http://hooks.example.invalid/services/XyZsecretPart42",
    )]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("not https"), "{}", stderr(&output));
    assert_no_url(
        &output,
        "http://hooks.example.invalid/services/XyZsecretPart42",
    );

    // Nobody listening: still exit 0, still no URL in the log.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}{SECRET_PATH}");
    let output = notify(&[("WEBHOOK_URL", &url)]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("notification not sent"));
    assert_no_url(&output, &url);
}
