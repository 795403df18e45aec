//! `etl setup aws` against moto's server (S3, SQS, SNS): setup, idempotence, `--check`,
//! foreign notification entries, `--delete`, and S3 → SQS → `etl --event` end to end.
//! Skipped with a note unless `ETL_MOTO_ENDPOINT` is set (see scripts/moto-start.sh).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration, TopicConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use crate::support::{assert_exit, read_parquet, stderr, stdout, testdata};

const ETL: &str = env!("CARGO_BIN_EXE_etl");
const REGION: &str = "us-east-1";

/// moto's server, clients on it, and a runtime for their calls.
struct Moto {
    endpoint: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    runtime: tokio::runtime::Runtime,
}

impl Moto {
    /// `None` (with a note) unless `ETL_MOTO_ENDPOINT` is set.
    fn from_env() -> Option<Moto> {
        let Some(endpoint) = std::env::var("ETL_MOTO_ENDPOINT")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            eprintln!(
                "skipped: set ETL_MOTO_ENDPOINT (see scripts/moto-start.sh) to run against moto"
            );
            return None;
        };
        let credentials =
            aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test");
        let s3 = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(credentials.clone())
            .force_path_style(true)
            .build();
        let sqs = aws_sdk_sqs::config::Builder::new()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(credentials.clone())
            .build();
        let sns = aws_sdk_sns::config::Builder::new()
            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
            .region(aws_sdk_sns::config::Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(credentials)
            .build();
        Some(Moto {
            endpoint,
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            sns: aws_sdk_sns::Client::from_conf(sns),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        })
    }

    /// A command for `etl` with only moto's endpoint, fake credentials and a region.
    fn etl(&self, args: &[&str]) -> Output {
        let mut command = Command::new(ETL);
        command.env_clear();
        for name in ["PATH", "HOME", "TMPDIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .envs([
                ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", REGION),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
                (
                    "AWS_SHARED_CREDENTIALS_FILE",
                    "/nonexistent/aws-credentials",
                ),
                ("ETL_LOG_FORMAT", "text"),
            ])
            .args(args)
            .output()
            .expect("run etl")
    }

    fn setup(&self, bucket: &str, via: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "setup", "aws", "--bucket", bucket, "--prefix", "input/", "--suffix", ".csv", "--via",
            via,
        ];
        args.extend_from_slice(extra);
        self.etl(&args)
    }

    fn create_bucket(&self, bucket: &str) {
        self.runtime
            .block_on(self.s3.create_bucket().bucket(bucket).send())
            .expect("create bucket");
    }

    fn notifications(&self, bucket: &str) -> NotificationConfiguration {
        let got = match self.runtime.block_on(
            self.s3
                .get_bucket_notification_configuration()
                .bucket(bucket)
                .send(),
        ) {
            Ok(got) => got,
            // moto answers an empty configuration with another (empty) root element.
            Err(aws_sdk_s3::error::SdkError::ServiceError(e))
                if e.raw()
                    .body()
                    .bytes()
                    .is_some_and(etl_aws_setup::wanted::is_empty_xml_document) =>
            {
                return NotificationConfiguration::builder().build();
            }
            Err(e) => panic!("get notification configuration: {e:?}"),
        };
        NotificationConfiguration::builder()
            .set_queue_configurations(Some(got.queue_configurations().to_vec()))
            .set_topic_configurations(Some(got.topic_configurations().to_vec()))
            .build()
    }

    fn put_notifications(&self, bucket: &str, config: NotificationConfiguration) {
        self.runtime
            .block_on(
                self.s3
                    .put_bucket_notification_configuration()
                    .bucket(bucket)
                    .notification_configuration(config)
                    .send(),
            )
            .expect("put notification configuration");
    }

    fn create_queue(&self, name: &str) -> (String, String) {
        let url = self
            .runtime
            .block_on(self.sqs.create_queue().queue_name(name).send())
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_owned();
        let arn = self.queue_attribute(&url, QueueAttributeName::QueueArn);
        (url, arn.expect("queue arn"))
    }

    fn queue_attribute(&self, url: &str, name: QueueAttributeName) -> Option<String> {
        let got = self
            .runtime
            .block_on(
                self.sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(name.clone())
                    .send(),
            )
            .expect("queue attributes");
        got.attributes().and_then(|a| a.get(&name)).cloned()
    }

    fn queue_exists(&self, name: &str) -> bool {
        self.runtime
            .block_on(self.sqs.get_queue_url().queue_name(name).send())
            .is_ok()
    }

    fn topics(&self) -> Vec<String> {
        let got = self
            .runtime
            .block_on(self.sns.list_topics().send())
            .expect("list topics");
        got.topics()
            .iter()
            .filter_map(|t| t.topic_arn().map(str::to_owned))
            .collect()
    }

    /// Receives every message that arrives within `wait`, deleting each, as the SQS
    /// EventSource does; returns them as Argo's SQS event data with `jsonBody: true`.
    fn drain(&self, url: &str, wait: Duration) -> Vec<Value> {
        let mut events = Vec::new();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let got = self
                .runtime
                .block_on(
                    self.sqs
                        .receive_message()
                        .queue_url(url)
                        .max_number_of_messages(10)
                        .wait_time_seconds(1)
                        .send(),
                )
                .expect("receive");
            for message in got.messages() {
                let body: Value =
                    serde_json::from_str(message.body().expect("body")).expect("a JSON body");
                events.push(json!({
                    "messageId": message.message_id(),
                    "messageAttributes": {},
                    "body": body,
                }));
                self.runtime
                    .block_on(
                        self.sqs
                            .delete_message()
                            .queue_url(url)
                            .receipt_handle(message.receipt_handle().expect("receipt"))
                            .send(),
                    )
                    .expect("delete message");
            }
        }
        events
    }

    fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.runtime
            .block_on(
                self.s3
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(ByteStream::from(body))
                    .send(),
            )
            .expect("put object");
    }

    fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let got = self
            .runtime
            .block_on(self.s3.get_object().bucket(bucket).key(key).send())
            .ok()?;
        let bytes = self.runtime.block_on(got.body.collect()).expect("body");
        Some(bytes.into_bytes().to_vec())
    }

    fn keys(&self, bucket: &str) -> Vec<String> {
        let got = self
            .runtime
            .block_on(self.s3.list_objects_v2().bucket(bucket).send())
            .expect("list");
        got.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

/// A bucket name no other run against the same moto server uses.
fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("etl-it-{test}-{}-{nanos}", std::process::id())
}

fn report(output: &Output) -> Value {
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| {
        panic!(
            "a JSON report ({e}):\n{}\n{}",
            stdout(output),
            stderr(output)
        )
    })
}

fn drift(report: &Value) -> Vec<String> {
    report["drift"]
        .as_array()
        .expect("drift")
        .iter()
        .map(|d| d.as_str().expect("a string").to_owned())
        .collect()
}

fn has_entry(config: &NotificationConfiguration, id: &str) -> bool {
    config
        .queue_configurations()
        .iter()
        .any(|q| q.id() == Some(id))
        || config
            .topic_configurations()
            .iter()
            .any(|t| t.id() == Some(id))
}

#[test]
fn setup_sqs_then_an_upload_is_converted_by_etl_and_delete_leaves_foreign_entries() {
    let Some(moto) = Moto::from_env() else { return };
    let bucket = unique("sqs");
    moto.create_bucket(&bucket);
    let (_, foreign_arn) = moto.create_queue(&format!("{bucket}-foreign"));
    let foreign = QueueConfiguration::builder()
        .id("someone-else")
        .queue_arn(&foreign_arn)
        .events(Event::from("s3:ObjectRemoved:*"))
        .build()
        .expect("foreign entry");
    moto.put_notifications(
        &bucket,
        NotificationConfiguration::builder()
            .queue_configurations(foreign.clone())
            .build(),
    );

    let out = moto.setup(&bucket, "sqs", &[]);
    assert_exit(&out, 0);
    let first = report(&out);
    let queue_name = format!("etl-{bucket}");
    let id = format!("etl-setup-{queue_name}");
    assert_eq!(
        drift(&first),
        [
            format!("queue {queue_name}-dlq: missing"),
            format!("queue {queue_name}: missing"),
            format!("queue {queue_name}: Policy differs"),
            format!("queue {queue_name}: RedrivePolicy differs"),
            format!("bucket {bucket} notification {id}: missing"),
        ]
    );
    let queue_url = first["resources"]["queue_url"]
        .as_str()
        .expect("queue url")
        .to_owned();
    let queue_arn = first["resources"]["queue_arn"]
        .as_str()
        .expect("queue arn")
        .to_owned();
    let dlq_arn = first["resources"]["dlq_arn"].as_str().expect("dlq arn");
    assert_eq!(
        first["eventsource_iam_policy"]["Statement"][0]["Resource"],
        queue_arn.as_str()
    );
    assert_eq!(
        first["workers_iam_policy"]["Statement"][0]["Resource"],
        format!("arn:aws:s3:::{bucket}/input/*")
    );
    let redrive: Value = serde_json::from_str(
        &moto
            .queue_attribute(&queue_url, QueueAttributeName::RedrivePolicy)
            .expect("redrive policy"),
    )
    .expect("JSON");
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn);
    let config = moto.notifications(&bucket);
    assert!(has_entry(&config, &id));
    assert_eq!(
        config
            .queue_configurations()
            .iter()
            .find(|q| q.id() == Some("someone-else")),
        Some(&foreign)
    );

    // A second setup changes nothing; --check agrees.
    let out = moto.setup(&bucket, "sqs", &[]);
    assert_exit(&out, 0);
    let second = report(&out);
    assert!(drift(&second).is_empty(), "{second}");
    assert_eq!(second["resources"], first["resources"]);
    let out = moto.setup(&bucket, "sqs", &["--check"]);
    assert_exit(&out, 0);
    assert!(drift(&report(&out)).is_empty());

    // The s3:TestEvent(s) S3 sent on configuration: nothing to do, nothing written.
    let test_events = moto.drain(&queue_url, Duration::from_secs(2));
    assert!(!test_events.is_empty(), "moto sends s3:TestEvent first");
    for event in &test_events {
        assert_eq!(event["body"]["Event"], "s3:TestEvent", "{event}");
        let out = moto.etl(&["--event", &event.to_string()]);
        assert_exit(&out, 0);
    }
    assert!(moto.keys(&bucket).is_empty());

    // Outside the prefix or suffix: no message. Under them: one, converted by etl.
    moto.put(&bucket, "other/1.csv", b"no,name,score\n1,a,2\n".to_vec());
    moto.put(&bucket, "input/notes.txt", b"not csv".to_vec());
    let csv = std::fs::read(testdata("20230414/1.csv")).expect("testdata");
    moto.put(&bucket, "input/20230414/1.csv", csv);
    let events = moto.drain(&queue_url, Duration::from_secs(3));
    assert_eq!(events.len(), 1, "{events:?}");
    // URL-encoded as in AWS's notifications (moto encodes '/' too); etl decodes it.
    let key = events[0]["body"]["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .expect("key");
    assert_eq!(key.replace("%2F", "/"), "input/20230414/1.csv");
    let out = moto.etl(&["--event", &events[0].to_string()]);
    assert_exit(&out, 0);
    let batches = read_parquet(
        moto.get(&bucket, "output/20230414/1.parquet")
            .expect("the Parquet in moto's bucket"),
    );
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    assert_eq!(batches[0].num_columns(), 3);

    // A manual change of the queue policy: --check exits 1 and names it; setup repairs it.
    moto.runtime
        .block_on(
            moto.sqs
                .set_queue_attributes()
                .queue_url(&queue_url)
                .attributes(
                    QueueAttributeName::Policy,
                    r#"{"Version":"2012-10-17","Statement":[]}"#,
                )
                .send(),
        )
        .expect("set policy");
    let out = moto.setup(&bucket, "sqs", &["--check"]);
    assert_exit(&out, 1);
    assert_eq!(
        drift(&report(&out)),
        [format!("queue {queue_name}: Policy differs")]
    );
    assert_exit(&moto.setup(&bucket, "sqs", &[]), 0);
    assert_exit(&moto.setup(&bucket, "sqs", &["--check"]), 0);

    // --delete: our queues and entry are gone, the foreign entry and queue stay.
    let out = moto.setup(&bucket, "sqs", &["--delete"]);
    assert_exit(&out, 0);
    assert!(!moto.queue_exists(&queue_name));
    assert!(!moto.queue_exists(&format!("{queue_name}-dlq")));
    assert!(moto.queue_exists(&format!("{bucket}-foreign")));
    let config = moto.notifications(&bucket);
    assert!(!has_entry(&config, &id));
    assert_eq!(config.queue_configurations(), [foreign]);
    let out = moto.setup(&bucket, "sqs", &["--check"]);
    assert_exit(&out, 1);
}

#[test]
fn setup_sns_creates_a_tagged_topic_and_delete_removes_only_it() {
    let Some(moto) = Moto::from_env() else { return };
    let bucket = unique("sns");
    moto.create_bucket(&bucket);
    let foreign_topic = moto
        .runtime
        .block_on(
            moto.sns
                .create_topic()
                .name(format!("{bucket}-foreign"))
                .send(),
        )
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_owned();
    let foreign = TopicConfiguration::builder()
        .id("someone-else")
        .topic_arn(&foreign_topic)
        .events(Event::from("s3:ObjectRemoved:*"))
        .build()
        .expect("foreign entry");
    moto.put_notifications(
        &bucket,
        NotificationConfiguration::builder()
            .topic_configurations(foreign.clone())
            .build(),
    );
    let url = "https://etl-events.example.com/s3";
    let out = moto.setup(&bucket, "sns", &["--endpoint-url", url]);
    assert_exit(&out, 0);
    let first = report(&out);
    let topic_arn = first["resources"]["topic_arn"]
        .as_str()
        .expect("topic arn")
        .to_owned();
    assert!(topic_arn.ends_with(&format!(":etl-{bucket}")));
    assert_eq!(first["endpoint_url"], url);
    let policy = moto
        .runtime
        .block_on(moto.sns.get_topic_attributes().topic_arn(&topic_arn).send())
        .expect("attributes")
        .attributes()
        .and_then(|a| a.get("Policy").cloned())
        .expect("policy");
    let policy: Value = serde_json::from_str(&policy).expect("JSON");
    assert_eq!(
        policy["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"],
        format!("arn:aws:s3:::{bucket}")
    );
    let id = format!("etl-setup-etl-{bucket}");
    let config = moto.notifications(&bucket);
    assert!(has_entry(&config, &id));
    assert!(config.topic_configurations().contains(&foreign));

    let out = moto.setup(&bucket, "sns", &[]);
    assert_exit(&out, 0);
    assert!(drift(&report(&out)).is_empty());
    assert_exit(&moto.setup(&bucket, "sns", &["--check"]), 0);

    assert_exit(&moto.setup(&bucket, "sns", &["--delete"]), 0);
    let topics = moto.topics();
    assert!(!topics.contains(&topic_arn));
    assert!(topics.contains(&foreign_topic));
    assert_eq!(
        moto.notifications(&bucket).topic_configurations(),
        [foreign]
    );
}

#[test]
fn a_queue_of_that_name_not_made_by_setup_is_left_alone() {
    let Some(moto) = Moto::from_env() else { return };
    let bucket = unique("foreign");
    moto.create_bucket(&bucket);
    let name = format!("etl-{bucket}");
    moto.create_queue(&name);
    for extra in [&[][..], &["--delete"][..]] {
        let out = moto.setup(&bucket, "sqs", extra);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains(&format!(
                "queue {name} exists without the tag managed-by=etl-setup"
            )),
            "{}",
            stderr(&out)
        );
    }
    assert!(moto.queue_exists(&name));
    assert!(!has_entry(
        &moto.notifications(&bucket),
        &format!("etl-setup-{name}")
    ));
}

#[test]
fn setup_refuses_bad_arguments_before_any_call() {
    let cases: [(&[&str], &str); 2] = [
        (
            &["--via", "sqs", "--endpoint-url", "https://x"],
            "--endpoint-url is for --via sns only",
        ),
        (
            &["--via", "sqs", "--name", "bad name"],
            "--name \"bad name\": 1 to 76 letters",
        ),
    ];
    for (args, message) in cases {
        let out = Command::new(ETL)
            .env_clear()
            .env("ETL_LOG_FORMAT", "text")
            // Nowhere: any AWS call would fail with exit 1, not 2.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .args(["setup", "aws", "--bucket", "b"])
            .args(args)
            .output()
            .expect("run etl");
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
}
