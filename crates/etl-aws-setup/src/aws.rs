//! The SDK edge: reads the actual state, and in apply mode changes what differs from
//! [`Wanted`]; the same walk serves setup (apply), `--check` (report) and delete.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::NotificationConfiguration;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use crate::error::{Error, Result, call_error};
use crate::wanted::{
    self, DLQ_RETENTION_SECONDS, Drift, MANAGED_BY_TAG, Via, Wanted, entry_drift, find_entry,
    merge, same_json,
};

/// The three clients, on one configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
}

/// Builds the clients from the SDK's chain with the settings of `etl_s3::build_client`
/// (default region, timeouts, retries); S3 itself comes from `etl_s3`.
pub async fn build_clients() -> Clients {
    let settings = etl_s3::ClientSettings::default();
    let config = etl_s3::sdk_config(&settings).await;
    Clients {
        s3: etl_s3::build_client(&settings).await,
        sqs: aws_sdk_sqs::Client::new(&config),
        sns: aws_sdk_sns::Client::new(&config),
    }
}

/// What a run found and did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Differences from the wanted state (setup: the ones it fixed; check: the ones left).
    pub drift: Vec<Drift>,
    /// Queue or topic URLs and ARNs (those that exist).
    pub resources: serde_json::Map<String, Value>,
}

impl Outcome {
    fn drift(&mut self, what: impl Into<String>, how: impl Into<String>) {
        self.drift.push(Drift {
            what: what.into(),
            how: how.into(),
        });
    }

    /// The report printed on stdout: resources, changes, and the IAM policies.
    pub fn report(&self, wanted: &Wanted, mode: &str) -> Value {
        let arn_key = match wanted.via {
            Via::Sqs => "queue_arn",
            Via::Sns => "topic_arn",
        };
        let mut report = json!({
            "mode": mode,
            "via": match wanted.via { Via::Sqs => "sqs", Via::Sns => "sns" },
            "bucket": wanted.bucket,
            "prefix": wanted.prefix,
            "suffix": wanted.suffix,
            "notification_id": wanted.notification_id(),
            "resources": self.resources,
            "drift": self.drift.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "workers_iam_policy": wanted::workers_policy(&wanted.bucket, &wanted.prefix),
        });
        if let Some(arn) = self.resources.get(arn_key).and_then(Value::as_str) {
            report["eventsource_iam_policy"] = wanted::eventsource_policy(wanted.via, arn);
        }
        if let Some(url) = &wanted.endpoint_url {
            report["endpoint_url"] = json!(url);
        }
        report
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    Check,
}

/// Creates or updates whatever differs from `wanted`; `drift` lists what it changed.
pub async fn setup(clients: &Clients, wanted: &Wanted) -> Result<Outcome> {
    reconcile(clients, wanted, Mode::Apply).await
}

/// Reports what differs from `wanted`, changing nothing.
pub async fn check(clients: &Clients, wanted: &Wanted) -> Result<Outcome> {
    reconcile(clients, wanted, Mode::Check).await
}

async fn reconcile(clients: &Clients, wanted: &Wanted, mode: Mode) -> Result<Outcome> {
    let mut out = Outcome::default();
    let target_arn = match wanted.via {
        Via::Sqs => {
            let dlq = queue(clients, wanted, &wanted.dlq_name(), None, mode, &mut out).await?;
            if let Some((url, arn)) = &dlq {
                out.resources.insert("dlq_url".into(), json!(url));
                out.resources.insert("dlq_arn".into(), json!(arn));
            }
            let dlq_arn = dlq.map(|(_, arn)| arn);
            let main = queue(
                clients,
                wanted,
                &wanted.queue_name(),
                dlq_arn.as_deref(),
                mode,
                &mut out,
            )
            .await?;
            main.map(|(url, arn)| {
                out.resources.insert("queue_url".into(), json!(url));
                out.resources.insert("queue_arn".into(), json!(arn));
                arn
            })
        }
        Via::Sns => {
            let arn = topic(clients, wanted, mode, &mut out).await?;
            if let Some(arn) = &arn {
                out.resources.insert("topic_arn".into(), json!(arn));
            }
            arn
        }
    };
    let what = format!(
        "bucket {} notification {}",
        wanted.bucket,
        wanted.notification_id()
    );
    let Some(target_arn) = target_arn else {
        out.drift(what, "missing");
        return Ok(out);
    };
    let existing = notifications(clients, &wanted.bucket).await?;
    let ours = wanted.entry(&target_arn);
    if let Some(how) = entry_drift(find_entry(&existing, &ours.id).as_ref(), &ours) {
        out.drift(what, how);
        if mode == Mode::Apply {
            let merged = merge(&existing, &ours.id, Some(&ours))?;
            put_notifications(clients, &wanted.bucket, merged).await?;
        }
    }
    Ok(out)
}

/// Removes our notification entry, queues and topic (only those tagged as ours);
/// `drift` lists what it removed.
pub async fn delete(clients: &Clients, wanted: &Wanted) -> Result<Outcome> {
    let mut out = Outcome::default();
    let id = wanted.notification_id();
    let existing = notifications(clients, &wanted.bucket).await?;
    if find_entry(&existing, &id).is_some() {
        put_notifications(clients, &wanted.bucket, merge(&existing, &id, None)?).await?;
        out.drift(
            format!("bucket {} notification {id}", wanted.bucket),
            "removed",
        );
    }
    match wanted.via {
        Via::Sqs => {
            for name in [wanted.queue_name(), wanted.dlq_name()] {
                let Some(url) = queue_url(clients, &name).await? else {
                    continue;
                };
                if !queue_is_ours(clients, &url).await? {
                    return Err(not_ours("queue", &name));
                }
                clients
                    .sqs
                    .delete_queue()
                    .queue_url(&url)
                    .send()
                    .await
                    .map_err(|e| call_error("sqs DeleteQueue", e))?;
                out.drift(format!("queue {name}"), "removed");
            }
        }
        Via::Sns => {
            if let Some(arn) = topic_arn(clients, &wanted.topic_name()).await? {
                if !topic_is_ours(clients, &arn).await? {
                    return Err(not_ours("topic", &wanted.topic_name()));
                }
                clients
                    .sns
                    .delete_topic()
                    .topic_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| call_error("sns DeleteTopic", e))?;
                out.drift(format!("topic {}", wanted.topic_name()), "removed");
            }
        }
    }
    Ok(out)
}

fn not_ours(kind: &str, name: &str) -> Error {
    Error::NotOurs(format!(
        "{kind} {name} exists without the tag {}={}: not created by etl setup aws, left alone",
        MANAGED_BY_TAG.0, MANAGED_BY_TAG.1
    ))
}

async fn notifications(clients: &Clients, bucket: &str) -> Result<NotificationConfiguration> {
    let got = match clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(got) => got,
        Err(aws_sdk_s3::error::SdkError::ServiceError(e))
            if e.raw().status().is_success()
                && e.raw()
                    .body()
                    .bytes()
                    .is_some_and(wanted::is_empty_xml_document) =>
        {
            // Some S3-compatible servers (moto) answer an empty configuration with another
            // root element; only a document with no content at all counts as empty.
            return Ok(NotificationConfiguration::builder().build());
        }
        Err(e) => return Err(call_error("s3 GetBucketNotificationConfiguration", e)),
    };
    Ok(NotificationConfiguration::builder()
        .set_queue_configurations(Some(got.queue_configurations().to_vec()))
        .set_topic_configurations(Some(got.topic_configurations().to_vec()))
        .set_lambda_function_configurations(Some(got.lambda_function_configurations().to_vec()))
        .set_event_bridge_configuration(got.event_bridge_configuration().cloned())
        .build())
}

async fn put_notifications(
    clients: &Clients,
    bucket: &str,
    config: NotificationConfiguration,
) -> Result<()> {
    clients
        .s3
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .map_err(|e| call_error("s3 PutBucketNotificationConfiguration", e))?;
    Ok(())
}

async fn queue_url(clients: &Clients, name: &str) -> Result<Option<String>> {
    match clients.sqs.get_queue_url().queue_name(name).send().await {
        Ok(got) => Ok(got.queue_url().map(str::to_owned)),
        Err(e) => {
            let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
            if code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist") {
                Ok(None)
            } else {
                Err(call_error("sqs GetQueueUrl", e))
            }
        }
    }
}

async fn queue_is_ours(clients: &Clients, url: &str) -> Result<bool> {
    let tags = clients
        .sqs
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .map_err(|e| call_error("sqs ListQueueTags", e))?;
    Ok(tags
        .tags()
        .and_then(|t| t.get(MANAGED_BY_TAG.0))
        .is_some_and(|v| v == MANAGED_BY_TAG.1))
}

/// The queue `name`: created if missing (apply), its attributes brought to the wanted
/// ones. `redrive_to`: the dead-letter queue's ARN (the main queue), `None` for the DLQ.
async fn queue(
    clients: &Clients,
    wanted: &Wanted,
    name: &str,
    redrive_to: Option<&str>,
    mode: Mode,
    out: &mut Outcome,
) -> Result<Option<(String, String)>> {
    let what = format!("queue {name}");
    let url = match queue_url(clients, name).await? {
        Some(url) => {
            if !queue_is_ours(clients, &url).await? {
                return Err(not_ours("queue", name));
            }
            url
        }
        None => {
            out.drift(&what, "missing");
            if mode == Mode::Check {
                return Ok(None);
            }
            let mut create = clients.sqs.create_queue().queue_name(name);
            for (k, v) in wanted.tags() {
                create = create.tags(k, v);
            }
            if redrive_to.is_none() {
                create = create.attributes(
                    QueueAttributeName::MessageRetentionPeriod,
                    DLQ_RETENTION_SECONDS.to_string(),
                );
            }
            let created = create
                .send()
                .await
                .map_err(|e| call_error("sqs CreateQueue", e))?;
            created
                .queue_url()
                .ok_or_else(|| Error::Invalid(format!("CreateQueue {name}: no QueueUrl")))?
                .to_owned()
        }
    };
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| call_error("sqs GetQueueAttributes", e))?;
    let attributes = attributes.attributes().cloned().unwrap_or_default();
    let arn = attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .ok_or_else(|| Error::Invalid(format!("queue {name}: no QueueArn")))?;
    let Some(dlq_arn) = redrive_to else {
        return Ok(Some((url, arn)));
    };
    let mut set = Vec::new();
    for (attribute, value) in [
        (
            QueueAttributeName::Policy,
            wanted::queue_policy(&arn, &wanted.bucket)?,
        ),
        (
            QueueAttributeName::RedrivePolicy,
            wanted::redrive_policy(dlq_arn),
        ),
    ] {
        if !same_json(attributes.get(&attribute).map(String::as_str), &value) {
            out.drift(&what, format!("{} differs", attribute.as_str()));
            set.push((attribute, value.to_string()));
        }
    }
    if mode == Mode::Apply && !set.is_empty() {
        clients
            .sqs
            .set_queue_attributes()
            .queue_url(&url)
            .set_attributes(Some(set.into_iter().collect()))
            .send()
            .await
            .map_err(|e| call_error("sqs SetQueueAttributes", e))?;
    }
    Ok(Some((url, arn)))
}

async fn topic_arn(clients: &Clients, name: &str) -> Result<Option<String>> {
    let suffix = format!(":{name}");
    let mut pages = clients.sns.list_topics().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("sns ListTopics", e))?;
        if let Some(arn) = page
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn())
            .find(|arn| arn.ends_with(&suffix))
        {
            return Ok(Some(arn.to_owned()));
        }
    }
    Ok(None)
}

async fn topic_is_ours(clients: &Clients, arn: &str) -> Result<bool> {
    let tags = clients
        .sns
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("sns ListTagsForResource", e))?;
    Ok(tags
        .tags()
        .iter()
        .any(|t| t.key() == MANAGED_BY_TAG.0 && t.value() == MANAGED_BY_TAG.1))
}

async fn topic(
    clients: &Clients,
    wanted: &Wanted,
    mode: Mode,
    out: &mut Outcome,
) -> Result<Option<String>> {
    let name = wanted.topic_name();
    let what = format!("topic {name}");
    let arn = match topic_arn(clients, &name).await? {
        Some(arn) => {
            if !topic_is_ours(clients, &arn).await? {
                return Err(not_ours("topic", &name));
            }
            arn
        }
        None => {
            out.drift(&what, "missing");
            if mode == Mode::Check {
                return Ok(None);
            }
            let mut create = clients.sns.create_topic().name(&name);
            for (k, v) in wanted.tags() {
                let tag = aws_sdk_sns::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                create = create.tags(tag);
            }
            let created = create
                .send()
                .await
                .map_err(|e| call_error("sns CreateTopic", e))?;
            created
                .topic_arn()
                .ok_or_else(|| Error::Invalid(format!("CreateTopic {name}: no TopicArn")))?
                .to_owned()
        }
    };
    let attributes = clients
        .sns
        .get_topic_attributes()
        .topic_arn(&arn)
        .send()
        .await
        .map_err(|e| call_error("sns GetTopicAttributes", e))?;
    let policy = wanted::topic_policy(&arn, &wanted.bucket)?;
    let actual = attributes.attributes().and_then(|a| a.get("Policy"));
    if !same_json(actual.map(String::as_str), &policy) {
        out.drift(&what, "Policy differs");
        if mode == Mode::Apply {
            clients
                .sns
                .set_topic_attributes()
                .topic_arn(&arn)
                .attribute_name("Policy")
                .attribute_value(policy.to_string())
                .send()
                .await
                .map_err(|e| call_error("sns SetTopicAttributes", e))?;
        }
    }
    Ok(Some(arn))
}
