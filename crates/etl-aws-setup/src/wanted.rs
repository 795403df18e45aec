//! The wanted state, as pure functions: resource names, tags, policies, the bucket's
//! notification entry and its merge with entries that are not ours.

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter, TopicConfiguration,
};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Tag put on every queue and topic we create; `--delete` removes only what carries it.
pub const MANAGED_BY_TAG: (&str, &str) = ("managed-by", "etl-setup");
/// Tag naming the bucket a resource was made for.
pub const BUCKET_TAG: &str = "etl-bucket";
/// Receives before a message moves to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// Retention of the dead-letter queue: 14 days, the SQS maximum.
pub const DLQ_RETENTION_SECONDS: u32 = 1_209_600;

/// How S3 notifications reach the EventSource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// S3 → SQS queue (with a dead-letter queue) ← Argo's SQS EventSource.
    Sqs,
    /// S3 → SNS topic → Argo's SNS EventSource (an HTTPS subscriber).
    Sns,
}

/// What `etl setup aws` manages for one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub bucket: String,
    pub prefix: String,
    pub suffix: String,
    pub via: Via,
    /// Base name of the queue or topic (`<name>`, `<name>-dlq`).
    pub name: String,
    /// Public URL of the SNS EventSource (SNS only; printed for the overlay).
    pub endpoint_url: Option<String>,
}

impl Wanted {
    /// Checks names and filters; `name` defaults to `etl-<bucket>`.
    pub fn new(
        bucket: &str,
        prefix: &str,
        suffix: &str,
        via: Via,
        name: Option<&str>,
        endpoint_url: Option<&str>,
    ) -> Result<Wanted> {
        if bucket.is_empty() {
            return Err(Error::Invalid("--bucket must not be empty".into()));
        }
        let name = match name {
            Some(n) => n.to_owned(),
            None => default_name(bucket),
        };
        // SQS: 1–80 of [A-Za-z0-9_-]; "-dlq" is appended, so 76 at most.
        if name.is_empty()
            || name.len() > 76
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Invalid(format!(
                "--name {name:?}: 1 to 76 letters, digits, '-' or '_'"
            )));
        }
        if let Some(url) = endpoint_url {
            if via != Via::Sns {
                return Err(Error::Invalid(
                    "--endpoint-url is for --via sns only".into(),
                ));
            }
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return Err(Error::Invalid(format!(
                    "--endpoint-url {url:?}: an http(s) URL reachable by SNS"
                )));
            }
        }
        Ok(Wanted {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            via,
            name,
            endpoint_url: endpoint_url.map(str::to_owned),
        })
    }

    pub fn queue_name(&self) -> String {
        self.name.clone()
    }

    pub fn dlq_name(&self) -> String {
        format!("{}-dlq", self.name)
    }

    pub fn topic_name(&self) -> String {
        self.name.clone()
    }

    /// Id of our entry in the bucket's notification configuration.
    pub fn notification_id(&self) -> String {
        format!("etl-setup-{}", self.name)
    }

    /// Tags of every queue and topic we create.
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            (MANAGED_BY_TAG.0.to_owned(), MANAGED_BY_TAG.1.to_owned()),
            (BUCKET_TAG.to_owned(), self.bucket.clone()),
        ]
    }

    /// Our notification entry, pointing at `target_arn` (the queue or topic).
    pub fn entry(&self, target_arn: &str) -> Entry {
        Entry {
            id: self.notification_id(),
            target: match self.via {
                Via::Sqs => Target::Queue(target_arn.to_owned()),
                Via::Sns => Target::Topic(target_arn.to_owned()),
            },
            events: vec!["s3:ObjectCreated:*".to_owned()],
            prefix: non_empty(&self.prefix),
            suffix: non_empty(&self.suffix),
        }
    }
}

/// `etl-<bucket>` with the characters SQS refuses replaced by '-'.
pub fn default_name(bucket: &str) -> String {
    let cleaned: String = bucket
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(72)
        .collect();
    format!("etl-{cleaned}")
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The account in an ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
pub fn arn_account(arn: &str) -> Result<&str> {
    match arn.split(':').nth(4) {
        Some(account) if !account.is_empty() => Ok(account),
        _ => Err(Error::Invalid(format!("no account in ARN {arn:?}"))),
    }
}

/// Only `bucket` of `account` may send to the queue.
pub fn queue_policy(queue_arn: &str, bucket: &str) -> Result<Value> {
    from_bucket_policy("sqs:SendMessage", queue_arn, bucket)
}

/// Only `bucket` of `account` may publish to the topic.
pub fn topic_policy(topic_arn: &str, bucket: &str) -> Result<Value> {
    from_bucket_policy("SNS:Publish", topic_arn, bucket)
}

fn from_bucket_policy(action: &str, resource: &str, bucket: &str) -> Result<Value> {
    let account = arn_account(resource)?;
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "S3BucketNotifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": action,
            "Resource": resource,
            "Condition": {
                "ArnLike": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")},
                "StringEquals": {"aws:SourceAccount": account}
            }
        }]
    }))
}

/// The redrive policy of the queue.
pub fn redrive_policy(dlq_arn: &str) -> Value {
    json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
}

/// The least-privilege policy of the workers' role (IRSA): read the inputs under the
/// prefix, write the outputs into the bucket, list the bucket for HEAD's 404s.
pub fn workers_policy(bucket: &str, prefix: &str) -> Value {
    let mut list = json!({
        "Sid": "ListBucket",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": format!("arn:aws:s3:::{bucket}"),
    });
    if !prefix.is_empty() {
        list["Condition"] = json!({"StringLike": {"s3:prefix": [format!("{prefix}*")]}});
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadInputs",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/{prefix}*"),
            },
            {
                "Sid": "WriteOutputs",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            },
            list
        ]
    })
}

/// The policy of the EventSource's role: receive and delete from the queue, or
/// subscribe to the topic.
pub fn eventsource_policy(via: Via, arn: &str) -> Value {
    let actions = match via {
        Via::Sqs => json!([
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility"
        ]),
        Via::Sns => json!([
            "sns:Subscribe",
            "sns:ConfirmSubscription",
            "sns:Unsubscribe"
        ]),
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "EventSource", "Effect": "Allow", "Action": actions, "Resource": arn}]
    })
}

/// Whether two policy documents say the same thing (key order and a string-encoded
/// `maxReceiveCount` aside).
pub fn same_json(actual: Option<&str>, wanted: &Value) -> bool {
    let Some(actual) = actual else { return false };
    match serde_json::from_str::<Value>(actual) {
        Ok(value) => normalize(value) == normalize(wanted.clone()),
        Err(_) => false,
    }
}

fn normalize(value: Value) -> Value {
    match value {
        Value::String(s) if s.parse::<u64>().is_ok() => {
            s.parse::<u64>().map_or(Value::Null, Value::from)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, normalize(v))).collect())
        }
        other => other,
    }
}

/// Whether an XML document is one empty root element (`<?xml ...?><Root xmlns="..."/>`).
pub fn is_empty_xml_document(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let mut text = text.trim();
    if text.starts_with("<?xml") {
        match text.find("?>") {
            Some(end) => text = text[end + 2..].trim(),
            None => return false,
        }
    }
    text.starts_with('<') && text.ends_with("/>") && text.matches('<').count() == 1
}

/// Where a notification entry sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Queue(String),
    Topic(String),
}

/// A queue or topic entry of a notification configuration, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub target: Target,
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

fn filter_of(filter: Option<&NotificationConfigurationFilter>) -> (Option<String>, Option<String>) {
    let mut prefix = None;
    let mut suffix = None;
    for rule in filter
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
    {
        let name = rule.name().map(|n| n.as_str().to_ascii_lowercase());
        let value = rule.value().map(str::to_owned).filter(|v| !v.is_empty());
        match name.as_deref() {
            Some("prefix") => prefix = value,
            Some("suffix") => suffix = value,
            _ => {}
        }
    }
    (prefix, suffix)
}

/// The entry with `id` in a configuration, if any (queue or topic).
pub fn find_entry(config: &NotificationConfiguration, id: &str) -> Option<Entry> {
    let queues = config
        .queue_configurations()
        .iter()
        .filter(|q| q.id() == Some(id))
        .map(|q| {
            let (prefix, suffix) = filter_of(q.filter());
            Entry {
                id: id.to_owned(),
                target: Target::Queue(q.queue_arn().to_owned()),
                events: q.events().iter().map(|e| e.as_str().to_owned()).collect(),
                prefix,
                suffix,
            }
        });
    let topics = config
        .topic_configurations()
        .iter()
        .filter(|t| t.id() == Some(id))
        .map(|t| {
            let (prefix, suffix) = filter_of(t.filter());
            Entry {
                id: id.to_owned(),
                target: Target::Topic(t.topic_arn().to_owned()),
                events: t.events().iter().map(|e| e.as_str().to_owned()).collect(),
                prefix,
                suffix,
            }
        });
    queues.chain(topics).next()
}

fn filter(entry: &Entry) -> Result<Option<NotificationConfigurationFilter>> {
    let mut rules = Vec::new();
    for (name, value) in [
        (FilterRuleName::Prefix, &entry.prefix),
        (FilterRuleName::Suffix, &entry.suffix),
    ] {
        if let Some(value) = value {
            rules.push(FilterRule::builder().name(name).value(value).build());
        }
    }
    if rules.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        NotificationConfigurationFilter::builder()
            .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
            .build(),
    ))
}

/// `existing` without any entry with our id, plus `ours` if given. Every other entry
/// (queue, topic, Lambda, EventBridge) is kept as it is.
pub fn merge(
    existing: &NotificationConfiguration,
    id: &str,
    ours: Option<&Entry>,
) -> Result<NotificationConfiguration> {
    let mut queues: Vec<QueueConfiguration> = existing
        .queue_configurations()
        .iter()
        .filter(|q| q.id() != Some(id))
        .cloned()
        .collect();
    let mut topics: Vec<TopicConfiguration> = existing
        .topic_configurations()
        .iter()
        .filter(|t| t.id() != Some(id))
        .cloned()
        .collect();
    let build_error = |e: aws_sdk_s3::error::BuildError| Error::Invalid(e.to_string());
    if let Some(entry) = ours {
        let events: Vec<Event> = entry
            .events
            .iter()
            .map(|e| Event::from(e.as_str()))
            .collect();
        match &entry.target {
            Target::Queue(arn) => queues.push(
                QueueConfiguration::builder()
                    .id(&entry.id)
                    .queue_arn(arn)
                    .set_events(Some(events))
                    .set_filter(filter(entry)?)
                    .build()
                    .map_err(build_error)?,
            ),
            Target::Topic(arn) => topics.push(
                TopicConfiguration::builder()
                    .id(&entry.id)
                    .topic_arn(arn)
                    .set_events(Some(events))
                    .set_filter(filter(entry)?)
                    .build()
                    .map_err(build_error)?,
            ),
        }
    }
    Ok(NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues))
        .set_topic_configurations(Some(topics))
        .set_lambda_function_configurations(Some(
            existing.lambda_function_configurations().to_vec(),
        ))
        .set_event_bridge_configuration(existing.event_bridge_configuration().cloned())
        .build())
}

/// One difference between the wanted and the actual state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The resource (`queue etl-b`, `bucket b notification etl-setup-etl-b`).
    pub what: String,
    /// What differs (`missing`, `Policy differs`).
    pub how: String,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.how)
    }
}

/// How our entry in the bucket differs from the wanted one (`None`: it does not).
pub fn entry_drift(actual: Option<&Entry>, wanted: &Entry) -> Option<String> {
    let actual = match actual {
        None => return Some("missing".to_owned()),
        Some(a) => a,
    };
    let mut how = Vec::new();
    if actual.target != wanted.target {
        how.push(format!(
            "target {:?}, wanted {:?}",
            actual.target, wanted.target
        ));
    }
    let mut events = actual.events.clone();
    events.sort();
    if events != wanted.events {
        how.push(format!(
            "events {:?}, wanted {:?}",
            actual.events, wanted.events
        ));
    }
    if actual.prefix != wanted.prefix {
        how.push(format!(
            "prefix {:?}, wanted {:?}",
            actual.prefix, wanted.prefix
        ));
    }
    if actual.suffix != wanted.suffix {
        how.push(format!(
            "suffix {:?}, wanted {:?}",
            actual.suffix, wanted.suffix
        ));
    }
    (!how.is_empty()).then(|| how.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:etl-data";

    fn wanted(via: Via) -> Wanted {
        Wanted::new("data", "in/", ".csv", via, None, None).expect("valid")
    }

    fn foreign() -> NotificationConfiguration {
        NotificationConfiguration::builder()
            .queue_configurations(
                QueueConfiguration::builder()
                    .id("someone-else")
                    .queue_arn("arn:aws:sqs:us-east-1:123456789012:other")
                    .events(Event::from("s3:ObjectRemoved:*"))
                    .build()
                    .expect("queue"),
            )
            .build()
    }

    #[test]
    fn only_a_document_without_content_is_empty() {
        let moto = br#"<?xml version="1.0" encoding="utf-8"?>
<GetBucketNotificationResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#;
        assert!(is_empty_xml_document(moto));
        assert!(is_empty_xml_document(b"<NotificationConfiguration/>"));
        assert!(!is_empty_xml_document(
            b"<NotificationConfiguration><QueueConfiguration/></NotificationConfiguration>"
        ));
        assert!(!is_empty_xml_document(b"<A></A>"));
        assert!(!is_empty_xml_document(b""));
    }

    #[test]
    fn names_come_from_the_bucket() {
        let w = Wanted::new("my.bucket", "", "", Via::Sqs, None, None).expect("valid");
        assert_eq!(w.queue_name(), "etl-my-bucket");
        assert_eq!(w.dlq_name(), "etl-my-bucket-dlq");
        assert_eq!(w.notification_id(), "etl-setup-etl-my-bucket");
        assert!(Wanted::new("b", "", "", Via::Sqs, Some("bad name"), None).is_err());
        assert!(Wanted::new("b", "", "", Via::Sqs, None, Some("https://x")).is_err());
        assert!(Wanted::new("b", "", "", Via::Sns, None, Some("ftp://x")).is_err());
    }

    #[test]
    fn merge_keeps_foreign_entries_and_replaces_ours() {
        let w = wanted(Via::Sqs);
        let ours = w.entry(QUEUE);
        let merged = merge(&foreign(), &w.notification_id(), Some(&ours)).expect("merge");
        assert_eq!(merged.queue_configurations().len(), 2);
        assert_eq!(
            find_entry(&merged, "someone-else").expect("kept").events,
            ["s3:ObjectRemoved:*"]
        );
        assert_eq!(
            find_entry(&merged, &w.notification_id()),
            Some(ours.clone())
        );
        // Again: still one entry of ours, nothing lost.
        let again = merge(&merged, &w.notification_id(), Some(&ours)).expect("merge");
        assert_eq!(again, merged);
        // Removing ours gives the foreign configuration back.
        let removed = merge(&again, &w.notification_id(), None).expect("merge");
        assert_eq!(
            removed.queue_configurations(),
            foreign().queue_configurations()
        );
    }

    #[test]
    fn sns_entries_are_topic_configurations() {
        let w = wanted(Via::Sns);
        let topic = "arn:aws:sns:us-east-1:123456789012:etl-data";
        let merged = merge(&foreign(), &w.notification_id(), Some(&w.entry(topic))).expect("merge");
        assert_eq!(merged.topic_configurations().len(), 1);
        assert_eq!(merged.topic_configurations()[0].topic_arn(), topic);
        let rules = merged.topic_configurations()[0]
            .filter()
            .and_then(|f| f.key())
            .map(|k| k.filter_rules().len());
        assert_eq!(rules, Some(2));
    }

    #[test]
    fn drift_names_what_differs() {
        let w = wanted(Via::Sqs);
        let ours = w.entry(QUEUE);
        assert_eq!(entry_drift(None, &ours).as_deref(), Some("missing"));
        assert_eq!(entry_drift(Some(&ours), &ours), None);
        let mut changed = ours.clone();
        changed.suffix = Some(".txt".into());
        assert_eq!(
            entry_drift(Some(&changed), &ours).as_deref(),
            Some(r#"suffix Some(".txt"), wanted Some(".csv")"#)
        );
    }

    #[test]
    fn policies_let_only_the_bucket_in() {
        let policy = queue_policy(QUEUE, "data").expect("policy");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Action"], "sqs:SendMessage");
        assert_eq!(statement["Resource"], QUEUE);
        assert_eq!(
            statement["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:s3:::data"
        );
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:SourceAccount"],
            "123456789012"
        );
        assert!(queue_policy("not-an-arn", "data").is_err());
        assert_eq!(
            topic_policy("arn:aws:sns:r:1:t", "data").expect("p")["Statement"][0]["Action"],
            "SNS:Publish"
        );
    }

    #[test]
    fn workers_read_under_the_prefix_only() {
        let policy = workers_policy("data", "in/");
        assert_eq!(policy["Statement"][0]["Resource"], "arn:aws:s3:::data/in/*");
        assert_eq!(
            policy["Statement"][2]["Condition"]["StringLike"]["s3:prefix"][0],
            "in/*"
        );
        assert!(
            workers_policy("data", "")["Statement"][2]
                .get("Condition")
                .is_none()
        );
        let es = eventsource_policy(Via::Sqs, QUEUE);
        assert_eq!(es["Statement"][0]["Resource"], QUEUE);
    }

    #[test]
    fn policy_comparison_ignores_order_and_number_encoding() {
        let wanted = redrive_policy("arn:dlq");
        assert!(same_json(
            Some(r#"{"maxReceiveCount":"5","deadLetterTargetArn":"arn:dlq"}"#),
            &wanted
        ));
        assert!(!same_json(
            Some(r#"{"maxReceiveCount":6,"deadLetterTargetArn":"arn:dlq"}"#),
            &wanted
        ));
        assert!(!same_json(None, &wanted));
        assert!(!same_json(Some("not json"), &wanted));
    }
}
