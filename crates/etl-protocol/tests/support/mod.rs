//! An in-memory S3 double that counts calls and fails, crashes or races at the Nth one.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use etl_error::ErrorClass;
use etl_protocol::{Body, ObjectStore, Transfer};
use etl_s3::{Error, ListedObject, ObjectInfo, PutCondition, PutRequest, Result};

/// What happens at the armed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 503 before the call takes effect.
    Transient,
    /// The call takes effect, then a 500 (a reply lost on the way back).
    TransientAfter,
    /// 403 AccessDenied before the call takes effect.
    Permanent,
    /// The process dies before the call takes effect: every later call fails.
    Crash,
    /// The process dies after the call took effect: every later call fails.
    CrashAfter,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Transient,
        Fault::TransientAfter,
        Fault::Permanent,
        Fault::Crash,
        Fault::CrashAfter,
    ];

    pub fn is_crash(self) -> bool {
        matches!(self, Fault::Crash | Fault::CrashAfter)
    }
}

/// A change made by "another writer" just before the armed call.
pub type Race = Box<dyn FnOnce(&mut State) + Send>;

#[derive(Debug, Clone)]
pub struct Object {
    pub data: Bytes,
    pub etag: String,
    pub metadata: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub bucket: String,
    pub key: String,
    pub request: PutRequest,
    pub parts: BTreeMap<u32, Bytes>,
}

#[derive(Default)]
pub struct State {
    pub objects: BTreeMap<(String, String), Object>,
    pub uploads: BTreeMap<String, Upload>,
    next_upload: u64,
    /// Calls made so far, and their operation names.
    pub calls: Vec<&'static str>,
    armed: Option<(usize, Fault)>,
    race: Option<(usize, Race)>,
    dead: bool,
    /// Whether `If-Match` / `If-None-Match` are enforced (S3, MinIO) or ignored (Garage).
    pub enforce_conditions: bool,
    /// Part size, parts in flight, ranged reads.
    pub transfer: Transfer,
    /// Ranges read, with the ETag each was pinned to.
    pub ranges: Vec<(Range<u64>, Option<String>)>,
    /// Calls of this operation wait for a permit before they run.
    pub hold: Option<(&'static str, Arc<tokio::sync::Semaphore>)>,
    /// Calls waiting at the hold now.
    pub held: usize,
    pub page_size: usize,
}

impl State {
    /// The object at `bucket`/`key`, or `NoSuchKey` for `operation`.
    fn object(&self, operation: &'static str, bucket: &str, key: &str) -> Result<&Object> {
        self.objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .ok_or_else(|| not_found(operation, bucket, key))
    }

    /// The multipart upload `upload_id`, or `NoSuchUpload`.
    fn upload(
        &mut self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<&mut Upload> {
        self.uploads
            .get_mut(upload_id)
            .ok_or_else(|| no_such_upload(operation, bucket, key))
    }

    /// Removes the multipart upload `upload_id`, or `NoSuchUpload`.
    fn take_upload(
        &mut self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Upload> {
        self.uploads
            .remove(upload_id)
            .ok_or_else(|| no_such_upload(operation, bucket, key))
    }

    pub fn put_object(
        &mut self,
        bucket: &str,
        key: &str,
        data: Bytes,
        metadata: HashMap<String, String>,
    ) -> String {
        let etag = etag_of(&data);
        self.objects.insert(
            (bucket.to_owned(), key.to_owned()),
            Object {
                data,
                etag: etag.clone(),
                metadata,
            },
        );
        etag
    }
}

fn etag_of(data: &[u8]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    format!("{:016x}{:08x}", hasher.finish(), data.len())
}

#[derive(Clone)]
pub struct MemStore {
    state: Arc<Mutex<State>>,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new(true)
    }
}

fn error(
    operation: &'static str,
    bucket: &str,
    key: &str,
    status: u16,
    code: &str,
    class: ErrorClass,
) -> Error {
    Error::Request {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message: format!("{code} (injected)"),
        status: Some(status),
        code: Some(code.to_owned()),
        class,
    }
}

impl MemStore {
    pub fn new(enforce_conditions: bool) -> MemStore {
        MemStore {
            state: Arc::new(Mutex::new(State {
                enforce_conditions,
                transfer: Transfer {
                    part_size: 64,
                    ranged_read_above: u64::MAX,
                    ..Transfer::default()
                },
                page_size: 1000,
                ..State::default()
            })),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the store's lock")
    }

    /// A copy of the objects and uploads (not the counters or faults).
    pub fn fork(&self) -> MemStore {
        let state = self.state();
        MemStore {
            state: Arc::new(Mutex::new(State {
                objects: state.objects.clone(),
                uploads: state.uploads.clone(),
                next_upload: state.next_upload,
                enforce_conditions: state.enforce_conditions,
                transfer: state.transfer,
                page_size: state.page_size,
                ..State::default()
            })),
        }
    }

    pub fn arm(&self, at: usize, fault: Fault) {
        self.state().armed = Some((at, fault));
    }

    pub fn race_at(&self, at: usize, race: Race) {
        self.state().race = Some((at, race));
    }

    /// Arms `fault` at call `at`, or with `None` runs `race` just before it.
    pub fn fault_or_race(&self, at: usize, fault: Option<Fault>, race: Race) {
        match fault {
            Some(fault) => self.arm(at, fault),
            None => self.race_at(at, race),
        }
    }

    /// Clears faults and races and revives a crashed store (the rerun's process).
    pub fn heal(&self) {
        let mut state = self.state();
        state.armed = None;
        state.race = None;
        state.dead = false;
    }

    pub fn calls(&self) -> usize {
        self.state().calls.len()
    }

    pub fn object(&self, bucket: &str, key: &str) -> Option<Object> {
        self.state()
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
    }

    pub fn put(&self, bucket: &str, key: &str, data: impl Into<Bytes>) -> String {
        self.state()
            .put_object(bucket, key, data.into(), HashMap::new())
    }

    /// Makes calls of `operation` wait until [`MemStore::release`].
    pub fn hold(&self, operation: &'static str) {
        self.state().hold = Some((operation, Arc::new(tokio::sync::Semaphore::new(0))));
    }

    /// Lets every held call (and every later one) run.
    pub fn release(&self) {
        if let Some((_, hold)) = &self.state().hold {
            hold.add_permits(tokio::sync::Semaphore::MAX_PERMITS >> 1);
        }
    }

    /// Waits at the hold if `operation` is held.
    async fn wait_if_held(&self, operation: &'static str) {
        let hold = match &self.state().hold {
            Some((held, hold)) if *held == operation => hold.clone(),
            _ => return,
        };
        self.state().held += 1;
        let _ = hold.acquire().await;
        self.state().held -= 1;
    }

    /// Runs one call: the armed fault or race first, then `effect` on the state.
    fn call<T>(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        effect: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.state();
        if state.dead {
            return Err(crashed(operation, bucket, key));
        }
        let index = state.calls.len();
        state.calls.push(operation);
        if state.race.as_ref().is_some_and(|(at, _)| *at == index)
            && let Some((_, race)) = state.race.take()
        {
            race(&mut state);
        }
        let fault = match state.armed {
            Some((at, fault)) if at == index => Some(fault),
            _ => None,
        };
        let Some(fault) = fault else {
            return effect(&mut state);
        };
        if matches!(fault, Fault::TransientAfter | Fault::CrashAfter) {
            let _ = effect(&mut state);
        }
        let (status, code, class) = match fault {
            Fault::Transient => (503, "ServiceUnavailable", ErrorClass::Retryable),
            Fault::TransientAfter => (500, "InternalError", ErrorClass::Retryable),
            Fault::Permanent => (403, "AccessDenied", ErrorClass::BadInput),
            Fault::Crash | Fault::CrashAfter => {
                state.dead = true;
                return Err(crashed(operation, bucket, key));
            }
        };
        Err(error(operation, bucket, key, status, code, class))
    }
}

fn info(object: &Object) -> ObjectInfo {
    ObjectInfo {
        size: object.data.len() as u64,
        etag: Some(object.etag.clone()),
        metadata: object.metadata.clone(),
    }
}

fn check(
    state: &State,
    operation: &'static str,
    bucket: &str,
    key: &str,
    condition: &PutCondition,
) -> Result<()> {
    if !state.enforce_conditions {
        return Ok(());
    }
    let current = state.objects.get(&(bucket.to_owned(), key.to_owned()));
    let holds = match condition {
        PutCondition::None => true,
        PutCondition::Absent => current.is_none(),
        PutCondition::Matches(etag) => current.is_some_and(|o| &o.etag == etag),
    };
    if holds {
        Ok(())
    } else {
        Err(precondition_failed(operation, bucket, key))
    }
}

fn not_found(operation: &'static str, bucket: &str, key: &str) -> Error {
    error(
        operation,
        bucket,
        key,
        404,
        "NoSuchKey",
        ErrorClass::BadInput,
    )
}

fn no_such_upload(operation: &'static str, bucket: &str, key: &str) -> Error {
    error(
        operation,
        bucket,
        key,
        404,
        "NoSuchUpload",
        ErrorClass::BadInput,
    )
}

fn precondition_failed(operation: &'static str, bucket: &str, key: &str) -> Error {
    error(
        operation,
        bucket,
        key,
        412,
        "PreconditionFailed",
        ErrorClass::Retryable,
    )
}

/// Every call of a crashed process fails like this (the process is gone).
fn crashed(operation: &'static str, bucket: &str, key: &str) -> Error {
    error(
        operation,
        bucket,
        key,
        599,
        "Crashed",
        ErrorClass::Retryable,
    )
}

impl ObjectStore for MemStore {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>> {
        self.call("HeadObject", bucket, key, |state| {
            Ok(state
                .objects
                .get(&(bucket.to_owned(), key.to_owned()))
                .map(info))
        })
    }

    async fn get(&self, bucket: &str, key: &str, etag: Option<&str>) -> Result<(ObjectInfo, Body)> {
        self.call("GetObject", bucket, key, |state| {
            let object = state.object("GetObject", bucket, key)?;
            if state.enforce_conditions && etag.is_some_and(|e| e != object.etag) {
                return Err(precondition_failed("GetObject", bucket, key));
            }
            let body: Body = Box::pin(std::io::Cursor::new(object.data.clone()));
            Ok((info(object), body))
        })
    }

    async fn get_range(
        &self,
        bucket: &str,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<(Bytes, Option<String>)> {
        self.wait_if_held("GetObject").await;
        self.call("GetObject", bucket, key, |state| {
            state.ranges.push((range.clone(), etag.map(str::to_owned)));
            let object = state.object("GetObject", bucket, key)?;
            // The client compares the response's ETag whatever the server enforces.
            if etag.is_some_and(|e| e != object.etag) {
                return Err(precondition_failed("GetObject", bucket, key));
            }
            let len = object.data.len() as u64;
            let (start, end) = (range.start.min(len), range.end.min(len));
            Ok((
                object.data.slice(start as usize..end as usize),
                Some(object.etag.clone()),
            ))
        })
    }

    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<ListedObject>, Option<String>)> {
        self.call("ListObjectsV2", bucket, prefix, |state| {
            let after = token.unwrap_or("");
            let mut page: Vec<ListedObject> = state
                .objects
                .iter()
                .filter(|((b, k), _)| {
                    b == bucket && k.starts_with(prefix) && (token.is_none() || k.as_str() > after)
                })
                .take(state.page_size + 1)
                .map(|((_, k), o)| ListedObject {
                    key: k.clone(),
                    size: o.data.len() as u64,
                    etag: o.etag.clone(),
                    last_modified: None,
                })
                .collect();
            let next = if page.len() > state.page_size {
                page.pop();
                page.last().map(|o| o.key.clone())
            } else {
                None
            };
            Ok((page, next))
        })
    }

    async fn put(
        &self,
        object: &PutRequest,
        body: Bytes,
        condition: &PutCondition,
    ) -> Result<String> {
        self.call("PutObject", &object.bucket, &object.key, |state| {
            check(state, "PutObject", &object.bucket, &object.key, condition)?;
            Ok(state.put_object(&object.bucket, &object.key, body, object.metadata.clone()))
        })
    }

    async fn create_multipart(&self, object: &PutRequest) -> Result<String> {
        self.call(
            "CreateMultipartUpload",
            &object.bucket,
            &object.key,
            |state| {
                state.next_upload += 1;
                let id = format!("upload-{}", state.next_upload);
                state.uploads.insert(
                    id.clone(),
                    Upload {
                        bucket: object.bucket.clone(),
                        key: object.key.clone(),
                        request: object.clone(),
                        parts: BTreeMap::new(),
                    },
                );
                Ok(id)
            },
        )
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
    ) -> Result<String> {
        self.wait_if_held("UploadPart").await;
        self.call("UploadPart", bucket, key, |state| {
            let upload = state.upload("UploadPart", bucket, key, upload_id)?;
            let etag = etag_of(&data);
            upload.parts.insert(number, data);
            Ok(etag)
        })
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        condition: &PutCondition,
    ) -> Result<String> {
        self.call("CompleteMultipartUpload", bucket, key, |state| {
            check(state, "CompleteMultipartUpload", bucket, key, condition)?;
            let upload = state.take_upload("CompleteMultipartUpload", bucket, key, upload_id)?;
            let mut data = Vec::new();
            for (number, etag) in parts {
                let part = &upload.parts[number];
                assert_eq!(&etag_of(part), etag, "part {number} of {key}");
                data.extend_from_slice(part);
            }
            Ok(state.put_object(bucket, key, data.into(), upload.request.metadata))
        })
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        self.call("AbortMultipartUpload", bucket, key, |state| {
            state
                .take_upload("AbortMultipartUpload", bucket, key, upload_id)
                .map(drop)
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.call("DeleteObject", bucket, key, |state| {
            state.objects.remove(&(bucket.to_owned(), key.to_owned()));
            Ok(())
        })
    }

    fn transfer(&self) -> Transfer {
        self.state().transfer
    }
}
