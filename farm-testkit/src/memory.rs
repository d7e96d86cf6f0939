//! In-memory implementations of the farm's ports: [`MemoryStorage`] and [`MemoryScheduler`].
//!
//! They are real backends held to the same conformance suites as the adapters they stand in
//! for (`farm-io/tests/conformance.rs` and `farm-io/tests/scheduler_conformance.rs`), so a unit
//! test over them sees what S3 and Batch would do: ETags that change with the content, metadata,
//! listings in byte order, uploads invisible until finished, an atomic `create_if_absent`, jobs
//! that keep their state once cancelled. Clones share their state, so a test keeps a handle to
//! inspect what the code under test did. Wrap them in [`Faulty`](crate::Faulty) to inject
//! failures.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use farm_core::scheduler::{
    ArrayProgress, JobSpec, JobState, JobStatus, Scheduler, SchedulerError, SchedulerLimits,
};
use farm_core::storage::{
    Metadata, ObjectMeta, PutOptions, StorageError, StorageResult, StreamUpload, Tags,
};
use farm_core::Storage;
use sha2::{Digest, Sha256};

/// Locks a mutex, ignoring poisoning: a panicking test must not hide its cause behind others.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// One object of a [`MemoryStorage`], as a test seeds or inspects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub body: Bytes,
    /// The ETag as `head` returns it, quotes included (`"…"`).
    pub etag: String,
    pub content_type: Option<String>,
    pub metadata: Metadata,
    /// The object's tags, in the order they were set (S3 object tagging).
    pub tags: Vec<(String, String)>,
}

impl StoredObject {
    /// `body` with the ETag the store gives that content, and no content type, metadata or tags.
    pub fn new(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        Self {
            etag: etag_of(&body),
            body,
            content_type: None,
            metadata: Metadata::new(),
            tags: Vec::new(),
        }
    }

    /// Sets the ETag from its form in an S3 event record (no quotes), as if S3 had given the
    /// object that ETag.
    pub fn etag(mut self, unquoted: &str) -> Self {
        self.etag = format!("\"{unquoted}\"");
        self
    }

    /// Sets the object's tags.
    pub fn tags<K: Into<String>, V: Into<String>>(
        mut self,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.tags = tags
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    fn from_put(body: Bytes, options: &PutOptions) -> Self {
        Self {
            content_type: options.content_type.clone(),
            metadata: options.metadata.clone(),
            tags: options.tags.clone(),
            ..Self::new(body)
        }
    }

    fn meta(&self, key: &str, with_metadata: bool) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: self.body.len() as u64,
            etag: Some(self.etag.clone()),
            metadata: if with_metadata {
                self.metadata.clone()
            } else {
                Metadata::new()
            },
            version_id: None,
        }
    }
}

/// The ETag of `body`: the same content always gets the same ETag, other content another one
/// (the first 128 bits of its SHA-256, quoted like S3's).
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[derive(Debug, Default)]
struct StoreState {
    objects: BTreeMap<String, StoredObject>,
    /// Open streaming uploads: id to key.
    uploads: BTreeMap<u64, String>,
    next_upload: u64,
    largest_write: usize,
}

/// A bucket in memory. Writes are atomic and `create_if_absent` is one atomic check-and-insert,
/// as S3's `If-None-Match: *` is.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    state: Arc<Mutex<StoreState>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, StoreState> {
        lock(&self.state)
    }

    /// Stores `body` at `key` with no metadata (as a plain upload by someone else would) and
    /// returns its ETag.
    pub fn insert(&self, key: &str, body: impl Into<Bytes>) -> String {
        let object = StoredObject::new(body);
        let etag = object.etag.clone();
        self.insert_object(key, object);
        etag
    }

    /// Stores `object` at `key` exactly as given (its ETag and tags included).
    pub fn insert_object(&self, key: &str, object: StoredObject) {
        self.state().objects.insert(key.to_owned(), object);
    }

    /// The object at `key`, if any.
    pub fn object(&self, key: &str) -> Option<StoredObject> {
        self.state().objects.get(key).cloned()
    }

    /// The body of the object at `key`, if any.
    pub fn body(&self, key: &str) -> Option<Bytes> {
        self.state().objects.get(key).map(|o| o.body.clone())
    }

    /// Every key, in order.
    pub fn keys(&self) -> Vec<String> {
        self.state().objects.keys().cloned().collect()
    }

    /// Removes the object at `key`, if any.
    pub fn remove(&self, key: &str) {
        self.state().objects.remove(key);
    }

    /// Replaces the tags of the object at `key` (S3 PutObjectTagging: the content and ETag stay).
    ///
    /// # Panics
    /// If there is no object at `key`.
    pub fn set_tags<K: Into<String>, V: Into<String>>(
        &self,
        key: &str,
        tags: impl IntoIterator<Item = (K, V)>,
    ) {
        let mut state = self.state();
        let object = state
            .objects
            .get_mut(key)
            .unwrap_or_else(|| panic!("no object `{key}` to tag"));
        object.tags = tags
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
    }

    /// The tags of the object at `key` (S3 GetObjectTagging); `None` if there is no object.
    pub fn tags(&self, key: &str) -> Option<Vec<(String, String)>> {
        self.state().objects.get(key).map(|o| o.tags.clone())
    }

    /// The largest piece one [`StreamUpload::write`] handed over so far.
    pub fn largest_write(&self) -> usize {
        self.state().largest_write
    }

    fn read(&self, key: &str) -> StorageResult<StoredObject> {
        self.object(key).ok_or_else(|| StorageError::NotFound {
            key: key.to_owned(),
        })
    }
}

impl Storage for MemoryStorage {
    type Upload = MemoryUpload;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        Ok(self.state().objects.get(key).map(|o| o.meta(key, true)))
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        Ok(self.read(key)?.body)
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> StorageResult<Bytes> {
        let object = self.read(key)?;
        if let Some(expected) = if_match {
            if object.etag != expected {
                return Err(StorageError::Changed {
                    key: key.to_owned(),
                    expected: expected.to_owned(),
                });
            }
        }
        let body = object.body;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(body.len());
        let end = start
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(body.len());
        Ok(body.slice(start..end))
    }

    async fn download(
        &self,
        key: &str,
        dest: &Path,
        if_match: Option<&str>,
    ) -> StorageResult<ObjectMeta> {
        let object = self.read(key)?;
        if let Some(expected) = if_match {
            if object.etag != expected {
                return Err(StorageError::Changed {
                    key: key.to_owned(),
                    expected: expected.to_owned(),
                });
            }
        }
        // Written beside `dest` and renamed over it: `dest` is whole or untouched.
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let io = |err| StorageError::io(dest, err);
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        temp.write_all(&object.body).map_err(io)?;
        temp.persist(dest).map_err(|err| io(err.error))?;
        Ok(object.meta(key, true))
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> StorageResult<()> {
        self.insert_object(key, StoredObject::from_put(body, options));
        Ok(())
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> StorageResult<Option<String>> {
        let body = std::fs::read(path).map_err(|err| StorageError::io(path, err))?;
        let object = StoredObject::from_put(body.into(), options);
        let etag = object.etag.clone();
        self.insert_object(key, object);
        Ok(Some(etag))
    }

    async fn create_if_absent(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> StorageResult<bool> {
        let mut state = self.state();
        if state.objects.contains_key(key) {
            return Ok(false);
        }
        state
            .objects
            .insert(key.to_owned(), StoredObject::from_put(body, options));
        Ok(true)
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        // `String` orders by bytes, as S3 lists keys.
        let state = self.state();
        Ok(state
            .objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, object)| object.meta(key, false))
            .collect())
    }

    async fn get_tags(&self, key: &str, _version_id: Option<&str>) -> StorageResult<Option<Tags>> {
        Ok(self.tags(key))
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> StorageResult<()> {
        match self.state().objects.get_mut(key) {
            Some(object) => {
                object.tags = tags.to_vec();
                Ok(())
            }
            None => Err(StorageError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.remove(key);
        Ok(())
    }

    fn start_upload(&self, key: &str, options: PutOptions) -> MemoryUpload {
        let mut state = self.state();
        let id = state.next_upload;
        state.next_upload += 1;
        state.uploads.insert(id, key.to_owned());
        MemoryUpload {
            storage: self.clone(),
            key: key.to_owned(),
            id,
            options,
            body: Vec::new(),
            open: true,
        }
    }

    async fn open_uploads(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let mut keys: Vec<String> = self
            .state()
            .uploads
            .values()
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// A [`MemoryStorage`] upload: holds its bytes apart until `finish` publishes them at once.
/// Dropping it unfinished discards them, like an aborted multipart upload.
#[derive(Debug)]
pub struct MemoryUpload {
    storage: MemoryStorage,
    key: String,
    id: u64,
    options: PutOptions,
    body: Vec<u8>,
    open: bool,
}

impl MemoryUpload {
    /// Closes the upload; with `publish`, atomically with storing `object` at its key.
    fn close(&mut self, publish: Option<StoredObject>) {
        self.open = false;
        let mut state = self.storage.state();
        state.uploads.remove(&self.id);
        if let Some(object) = publish {
            state.objects.insert(self.key.clone(), object);
        }
    }
}

impl StreamUpload for MemoryUpload {
    async fn write(&mut self, data: Bytes) -> StorageResult<()> {
        {
            let mut state = self.storage.state();
            state.largest_write = state.largest_write.max(data.len());
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(mut self) -> StorageResult<u64> {
        let body = Bytes::from(std::mem::take(&mut self.body));
        let size = body.len() as u64;
        let object = StoredObject::from_put(body, &self.options);
        self.close(Some(object));
        Ok(size)
    }

    async fn abort(mut self) -> StorageResult<()> {
        self.close(None);
        Ok(())
    }
}

impl Drop for MemoryUpload {
    fn drop(&mut self) {
        if self.open {
            self.close(None);
        }
    }
}

/// A job a [`MemoryScheduler`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedJob {
    pub id: String,
    pub spec: JobSpec,
    pub state: JobState,
    pub reason: Option<String>,
}

impl SubmittedJob {
    fn status(&self) -> JobStatus {
        JobStatus {
            id: self.id.clone(),
            name: self.spec.name.clone(),
            state: self.state.clone(),
            reason: self.reason.clone(),
            array: self.spec.array_size.map(|size| progress(size, &self.state)),
        }
    }
}

/// An array's children as Batch counts them, all in the parent's state.
fn progress(size: usize, state: &JobState) -> ArrayProgress {
    let mut progress = ArrayProgress {
        size,
        ..ArrayProgress::default()
    };
    match state {
        JobState::Succeeded => progress.succeeded = size,
        JobState::Failed => progress.failed = size,
        JobState::Starting | JobState::Running => progress.running = size,
        JobState::Submitted | JobState::Pending | JobState::Runnable => progress.pending = size,
        JobState::Unknown | JobState::Other(_) => {}
    }
    progress
}

#[derive(Debug, Default)]
struct SchedulerState {
    jobs: Vec<SubmittedJob>,
    cancelled: Vec<String>,
}

/// A scheduler in memory. Jobs get ids `job-1`, `job-2`, … in submission order and stay
/// `Submitted` until [`MemoryScheduler::set_state`] moves them on (nothing runs); `cancel`
/// fails a job that has not finished, as Batch's TerminateJob does.
#[derive(Debug, Clone, Default)]
pub struct MemoryScheduler {
    state: Arc<Mutex<SchedulerState>>,
}

impl MemoryScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, SchedulerState> {
        lock(&self.state)
    }

    /// Every job submitted, `(id, spec)`, in submission order.
    pub fn jobs(&self) -> Vec<(String, JobSpec)> {
        self.state()
            .jobs
            .iter()
            .map(|job| (job.id.clone(), job.spec.clone()))
            .collect()
    }

    /// The job with id `id`, if it was submitted.
    pub fn job(&self, id: &str) -> Option<SubmittedJob> {
        self.state().jobs.iter().find(|job| job.id == id).cloned()
    }

    /// The ids of accepted `cancel` calls, in call order (unknown ids and repeats included).
    pub fn cancelled(&self) -> Vec<String> {
        self.state().cancelled.clone()
    }

    /// Moves a job on, as Batch would (`Running`, `Succeeded`, …).
    ///
    /// # Panics
    /// If no job has id `id`.
    pub fn set_state(&self, id: &str, state: JobState) {
        let mut jobs = self.state();
        let job = jobs
            .jobs
            .iter_mut()
            .find(|job| job.id == id)
            .unwrap_or_else(|| panic!("no job `{id}`"));
        job.state = state;
    }
}

fn rejected(operation: &'static str, message: String) -> SchedulerError {
    SchedulerError::Rejected { operation, message }
}

impl Scheduler for MemoryScheduler {
    /// AWS Batch's limits, so a unit test's job is refused where Batch would refuse it (the
    /// scheduler conformance suite, `farm-io/tests/scheduler_conformance.rs`, holds both
    /// schedulers to them).
    fn limits(&self) -> SchedulerLimits {
        farm_io::BATCH_LIMITS
    }

    async fn submit(&self, job: &JobSpec) -> Result<String, SchedulerError> {
        self.limits()
            .check(job)
            .map_err(|over| rejected("submit job", over.to_string()))?;
        let mut state = self.state();
        let id = format!("job-{}", state.jobs.len() + 1);
        state.jobs.push(SubmittedJob {
            id: id.clone(),
            spec: job.clone(),
            state: JobState::Submitted,
            reason: None,
        });
        Ok(id)
    }

    async fn describe(&self, ids: &[String]) -> Result<Vec<JobStatus>, SchedulerError> {
        let state = self.state();
        Ok(ids
            .iter()
            .filter_map(|id| state.jobs.iter().find(|job| job.id == *id))
            .map(SubmittedJob::status)
            .collect())
    }

    async fn find_by_name(&self, name: &str) -> Result<Vec<JobStatus>, SchedulerError> {
        // Newest first, as Batch's ListJobs answers.
        Ok(self
            .state()
            .jobs
            .iter()
            .rev()
            .filter(|job| job.spec.name == name)
            .map(SubmittedJob::status)
            .collect())
    }

    async fn cancel(&self, id: &str, reason: &str) -> Result<(), SchedulerError> {
        if reason.is_empty() {
            return Err(rejected(
                "terminate job",
                "a reason is required to terminate a job".to_owned(),
            ));
        }
        let mut state = self.state();
        state.cancelled.push(id.to_owned());
        if let Some(job) = state.jobs.iter_mut().find(|job| job.id == id) {
            if !job.state.is_done() {
                job.state = JobState::Failed;
                job.reason = Some(reason.to_owned());
            }
        }
        Ok(())
    }
}
