//! Whether a store enforces conditional writes: asked once per process on a scratch key
//! (S3 and MinIO answer 412; Garage ignores the condition and overwrites).

use bytes::Bytes;
use etl_s3::{PutCondition, PutRequest, Result};

use crate::store::ObjectStore;

/// The folder of the probe's scratch keys (outside the output key space).
pub const PROBE_PREFIX: &str = ".etl/probe/";

/// Writes a scratch key, then writes it again with `If-None-Match: *`: a 412 means the
/// store enforces conditional writes; success (or 501 Not Implemented) means it does not.
/// The scratch key is deleted afterwards.
pub async fn enforces_conditional_writes<S: ObjectStore>(store: &S, bucket: &str) -> Result<bool> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let scratch = PutRequest {
        bucket: bucket.to_owned(),
        key: format!("{PROBE_PREFIX}{}-{nonce:x}", std::process::id()),
        content_type: "text/plain".to_owned(),
        metadata: Default::default(),
    };
    store
        .put(&scratch, Bytes::from_static(b"first"), &PutCondition::None)
        .await?;
    let second = store
        .put(
            &scratch,
            Bytes::from_static(b"second"),
            &PutCondition::Absent,
        )
        .await;
    let removed = store.delete(bucket, &scratch.key).await;
    let enforced = match second {
        Err(error) if error.is_precondition_failed() => true,
        Err(error) if error.is_not_implemented() => false,
        Err(error) => return Err(error),
        Ok(_) => false,
    };
    if let Err(error) = removed {
        tracing::warn!(key = %scratch.key, %error, "could not delete the probe's scratch key");
    }
    tracing::info!(bucket, enforced, "probed the store for conditional writes");
    Ok(enforced)
}

static PROBED: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();

/// [`enforces_conditional_writes`] once per process: the first conversion that is about to
/// write asks; later ones reuse the answer (a failed probe is asked again).
pub async fn enforced_once<S: ObjectStore>(store: &S, bucket: &str) -> Result<bool> {
    PROBED
        .get_or_try_init(|| enforces_conditional_writes(store, bucket))
        .await
        .copied()
}
