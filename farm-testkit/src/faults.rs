//! Failure injection over any [`Storage`] or [`Scheduler`]: [`Faulty`] wraps one and makes the
//! calls a [`Fault`] matches fail (or wait) the way the real service would, so a test can say
//! "the 3rd `put` of this key fails transiently" or "SubmitJob of the zip job is refused".
//!
//! ```
//! # async fn example() {
//! use farm_testkit::{Fault, Faulty, MemoryStorage, Op};
//! let storage = Faulty::new(MemoryStorage::new());
//! storage.inject(Fault::on(Op::Put).key("k.blend/job.json").nth(2));
//! # }
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use farm_core::scheduler::{
    JobKind, JobSpec, JobStatus, Scheduler, SchedulerError, SchedulerLimits, SchedulerRecord,
};
use farm_core::series::SeriesChoice;
use farm_core::storage::{
    ByteChunks, ObjectMeta, PutOptions, StorageError, StorageResult, StreamUpload, Tags,
};
use farm_core::{BlenderSeries, Storage};
use tokio::sync::Barrier;

mod op;
pub use op::Op;

/// The error an injected failure returns. Its message says `injected failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// [`StorageError::Transient`], [`SchedulerError::Transient`]: worth retrying.
    Transient,
    /// [`StorageError::Permanent`], [`SchedulerError::Rejected`].
    Permanent,
    /// [`StorageError::AccessDenied`] ([`SchedulerError::Rejected`] for the scheduler).
    AccessDenied,
}

const MESSAGE: &str = "injected failure";

impl Failure {
    fn storage(self, op: Op, key: &str) -> StorageError {
        let (operation, key, message) = (op.name(), key.to_owned(), MESSAGE.to_owned());
        match self {
            Failure::Transient => StorageError::Transient {
                operation,
                key,
                message,
            },
            Failure::Permanent => StorageError::Permanent {
                operation,
                key,
                message,
            },
            Failure::AccessDenied => StorageError::AccessDenied { key, message },
        }
    }

    fn scheduler(self, op: Op) -> SchedulerError {
        let (operation, message) = (op.name(), MESSAGE.to_owned());
        match self {
            Failure::Transient => SchedulerError::Transient { operation, message },
            Failure::Permanent | Failure::AccessDenied => {
                SchedulerError::Rejected { operation, message }
            }
        }
    }
}

/// What a matched call meets.
#[derive(Debug, Clone)]
enum Effect {
    Fail(Failure),
    /// Waits, then goes through.
    Delay(Duration),
    /// Waits until as many calls as the barrier has parties meet it, then goes through: calls
    /// that meet there run the operation at the same moment.
    Barrier(Arc<Barrier>),
}

#[derive(Debug, Clone)]
enum KeyMatch {
    Any,
    Exact(String),
    Prefix(String),
}

/// Which calls to disturb and how. By default every call of the operations fails with a
/// transient error; narrow it down with the builder methods.
#[derive(Debug, Clone)]
pub struct Fault {
    ops: Vec<Op>,
    key: KeyMatch,
    kind: Option<JobKind>,
    after_bytes: Option<u64>,
    skip: usize,
    times: Option<usize>,
    effect: Effect,
}

impl Fault {
    /// Calls of `op`.
    pub fn on(op: Op) -> Self {
        Self::on_any([op])
    }

    /// Calls of any of `ops` (e.g. [`Op::READS`]).
    pub fn on_any(ops: impl IntoIterator<Item = Op>) -> Self {
        Self {
            ops: ops.into_iter().collect(),
            key: KeyMatch::Any,
            kind: None,
            after_bytes: None,
            skip: 0,
            times: None,
            effect: Effect::Fail(Failure::Transient),
        }
    }

    /// Only calls on exactly this key (job name for `Submit` and `FindByName`, job id for
    /// `Cancel`).
    pub fn key(mut self, key: &str) -> Self {
        self.key = KeyMatch::Exact(key.to_owned());
        self
    }

    /// Only calls on keys starting with `prefix`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.key = KeyMatch::Prefix(prefix.to_owned());
        self
    }

    /// Only submissions of this kind of job.
    pub fn job_kind(mut self, kind: JobKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only upload writes that take the upload past `bytes` in all.
    pub fn after_bytes(mut self, bytes: u64) -> Self {
        self.after_bytes = Some(bytes);
        self
    }

    /// Only the `n`th matching call (1-based); the others go through.
    pub fn nth(mut self, n: usize) -> Self {
        assert!(n >= 1, "calls are counted from 1");
        self.skip = n - 1;
        self.times = Some(1);
        self
    }

    /// Lets the first `n` matching calls through.
    pub fn skip(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    /// Disturbs at most `n` matching calls (after those skipped), then none.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Fails with `failure` instead of a transient error.
    pub fn error(mut self, failure: Failure) -> Self {
        self.effect = Effect::Fail(failure);
        self
    }

    /// Delays matching calls by `delay` instead of failing them.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.effect = Effect::Delay(delay);
        self
    }

    /// Holds matching calls until `parties` of them are waiting, then lets them all go at once
    /// (a race, made certain instead of likely). Give it a [`times`](Self::times) or a key
    /// that exactly `parties` calls meet, or later calls wait for company that never comes.
    pub fn barrier(mut self, parties: usize) -> Self {
        self.effect = Effect::Barrier(Arc::new(Barrier::new(parties)));
        self
    }

    fn matches(&self, call: &Call<'_>) -> bool {
        self.ops.contains(&call.op)
            && match &self.key {
                KeyMatch::Any => true,
                KeyMatch::Exact(key) => call.key == key,
                KeyMatch::Prefix(prefix) => call.key.starts_with(prefix.as_str()),
            }
            && self.kind.is_none_or(|kind| call.kind == Some(kind))
            && self
                .after_bytes
                .is_none_or(|limit| call.bytes.is_some_and(|total| total > limit))
    }
}

/// One call of the port, as faults see it.
struct Call<'a> {
    op: Op,
    key: &'a str,
    kind: Option<JobKind>,
    /// For an upload write: the upload's size once this write is added; for a ranged read: the
    /// length asked for.
    bytes: Option<u64>,
}

/// A call the wrapper passed on (or failed), as [`Faulty::calls`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub op: Op,
    pub key: String,
    /// For an upload write: the upload's size once the write is added; for a ranged read: the
    /// length asked for.
    pub bytes: Option<u64>,
}

impl<'a> Call<'a> {
    fn new(op: Op, key: &'a str) -> Self {
        Self {
            op,
            key,
            kind: None,
            bytes: None,
        }
    }
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    /// Matching calls seen so far.
    seen: usize,
}

#[derive(Debug, Clone, Default)]
struct Faults {
    armed: Arc<Mutex<Vec<Armed>>>,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl Faults {
    /// What the faults do to `call`: waits first, then the first failure (if any).
    async fn apply(&self, call: &Call<'_>) -> Option<Failure> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Logged {
                op: call.op,
                key: call.key.to_owned(),
                bytes: call.bytes,
            });
        let effects: Vec<Effect> = {
            let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
            armed
                .iter_mut()
                .filter(|armed| armed.fault.matches(call))
                .filter_map(|armed| {
                    armed.seen += 1;
                    let fault = &armed.fault;
                    let past_skip = armed.seen > fault.skip;
                    let within = fault.times.is_none_or(|n| armed.seen <= fault.skip + n);
                    (past_skip && within).then(|| fault.effect.clone())
                })
                .collect()
        };
        let mut failure = None;
        for effect in effects {
            match effect {
                Effect::Delay(delay) => tokio::time::sleep(delay).await,
                Effect::Barrier(barrier) => {
                    barrier.wait().await;
                }
                Effect::Fail(f) => {
                    failure.get_or_insert(f);
                }
            }
        }
        failure
    }

    async fn storage(&self, call: Call<'_>) -> StorageResult<()> {
        match self.apply(&call).await {
            Some(failure) => Err(failure.storage(call.op, call.key)),
            None => Ok(()),
        }
    }

    async fn scheduler(&self, call: Call<'_>) -> Result<(), SchedulerError> {
        match self.apply(&call).await {
            Some(failure) => Err(failure.scheduler(call.op)),
            None => Ok(()),
        }
    }
}

/// A [`Storage`] or [`Scheduler`] that disturbs the calls its [`Fault`]s match and passes
/// everything else to the wrapped one. Clones share the faults (and the inner state if the
/// inner type's clones share it, as the in-memory ones do).
#[derive(Debug, Clone)]
pub struct Faulty<T> {
    inner: T,
    faults: Faults,
}

impl<T> Faulty<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            faults: Faults::default(),
        }
    }

    /// The wrapped storage or scheduler.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Arms `fault` for the calls from now on.
    pub fn inject(&self, fault: Fault) {
        self.faults
            .armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Armed { fault, seen: 0 });
    }

    /// Every call made through this wrapper (and its clones) so far, in order.
    pub fn calls(&self) -> Vec<Logged> {
        self.faults
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Disarms every fault: calls go through again.
    pub fn clear(&self) {
        self.faults
            .armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl<S: Storage> Storage for Faulty<S> {
    type Upload = FaultyUpload<S::Upload>;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        self.faults.storage(Call::new(Op::Head, key)).await?;
        self.inner.head(key).await
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        self.faults.storage(Call::new(Op::Get, key)).await?;
        self.inner.get(key).await
    }

    /// Forwarded, so a wrapped store that streams keeps streaming (the trait's default would
    /// read the whole object through [`Faulty::get`]).
    async fn get_stream(&self, key: &str) -> StorageResult<ByteChunks> {
        self.faults.storage(Call::new(Op::GetStream, key)).await?;
        self.inner.get_stream(key).await
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> StorageResult<Bytes> {
        let call = Call {
            bytes: Some(len),
            ..Call::new(Op::GetRange, key)
        };
        self.faults.storage(call).await?;
        self.inner.get_range(key, offset, len, if_match).await
    }

    async fn download(
        &self,
        key: &str,
        dest: &Path,
        if_match: Option<&str>,
    ) -> StorageResult<ObjectMeta> {
        self.faults.storage(Call::new(Op::Download, key)).await?;
        self.inner.download(key, dest, if_match).await
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> StorageResult<()> {
        self.faults.storage(Call::new(Op::Put, key)).await?;
        self.inner.put(key, body, options).await
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> StorageResult<Option<String>> {
        self.faults.storage(Call::new(Op::UploadFile, key)).await?;
        self.inner.upload_file(key, path, options).await
    }

    async fn create_if_absent(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> StorageResult<bool> {
        self.faults
            .storage(Call::new(Op::CreateIfAbsent, key))
            .await?;
        self.inner.create_if_absent(key, body, options).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.faults.storage(Call::new(Op::List, prefix)).await?;
        self.inner.list(prefix).await
    }

    async fn get_tags(&self, key: &str, version_id: Option<&str>) -> StorageResult<Option<Tags>> {
        self.faults.storage(Call::new(Op::GetTags, key)).await?;
        self.inner.get_tags(key, version_id).await
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> StorageResult<()> {
        self.faults.storage(Call::new(Op::PutTags, key)).await?;
        self.inner.put_tags(key, tags).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.faults.storage(Call::new(Op::Delete, key)).await?;
        self.inner.delete(key).await
    }

    fn start_upload(&self, key: &str, options: PutOptions) -> Self::Upload {
        FaultyUpload {
            inner: self.inner.start_upload(key, options),
            key: key.to_owned(),
            written: 0,
            faults: self.faults.clone(),
        }
    }

    async fn open_uploads(&self, prefix: &str) -> StorageResult<Vec<String>> {
        self.faults
            .storage(Call::new(Op::OpenUploads, prefix))
            .await?;
        self.inner.open_uploads(prefix).await
    }
}

/// An upload of a [`Faulty`] storage. A failed write leaves the upload open: the caller aborts
/// it (or drops it), as after a failed part upload.
#[derive(Debug)]
pub struct FaultyUpload<U> {
    inner: U,
    key: String,
    written: u64,
    faults: Faults,
}

impl<U: StreamUpload> StreamUpload for FaultyUpload<U> {
    async fn write(&mut self, data: Bytes) -> StorageResult<()> {
        let total = self.written + data.len() as u64;
        self.faults
            .storage(Call {
                bytes: Some(total),
                ..Call::new(Op::UploadWrite, &self.key)
            })
            .await?;
        self.inner.write(data).await?;
        self.written = total;
        Ok(())
    }

    async fn finish(self) -> StorageResult<u64> {
        self.faults
            .storage(Call::new(Op::UploadFinish, &self.key))
            .await?;
        self.inner.finish().await
    }

    async fn abort(self) -> StorageResult<()> {
        self.inner.abort().await
    }
}

impl<B: Scheduler> Scheduler for Faulty<B> {
    fn limits(&self) -> SchedulerLimits {
        self.inner.limits()
    }

    fn record(&self, blender: Option<BlenderSeries>) -> Option<SchedulerRecord> {
        self.inner.record(blender)
    }

    fn blender(&self) -> Option<SeriesChoice> {
        self.inner.blender()
    }

    async fn submit(&self, job: &JobSpec) -> Result<String, SchedulerError> {
        self.faults
            .scheduler(Call {
                kind: Some(job.kind),
                ..Call::new(Op::Submit, &job.name)
            })
            .await?;
        self.inner.submit(job).await
    }

    async fn describe(&self, ids: &[String]) -> Result<Vec<JobStatus>, SchedulerError> {
        self.faults.scheduler(Call::new(Op::Describe, "")).await?;
        self.inner.describe(ids).await
    }

    async fn find_by_name(&self, name: &str) -> Result<Vec<JobStatus>, SchedulerError> {
        self.faults
            .scheduler(Call::new(Op::FindByName, name))
            .await?;
        self.inner.find_by_name(name).await
    }

    async fn cancel(&self, id: &str, reason: &str) -> Result<(), SchedulerError> {
        self.faults.scheduler(Call::new(Op::Cancel, id)).await?;
        self.inner.cancel(id, reason).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{MemoryScheduler, MemoryStorage};

    async fn put(storage: &Faulty<MemoryStorage>, key: &str) -> StorageResult<()> {
        storage
            .put(key, Bytes::from_static(b"x"), &PutOptions::default())
            .await
    }

    #[tokio::test]
    async fn nth_fails_only_that_call_of_that_key() {
        let storage = Faulty::new(MemoryStorage::new());
        storage.inject(Fault::on(Op::Put).key("a").nth(2));
        assert!(put(&storage, "a").await.is_ok());
        assert!(
            put(&storage, "b").await.is_ok(),
            "other keys are not counted"
        );
        let second = put(&storage, "a").await;
        assert!(
            matches!(&second, Err(e @ StorageError::Transient { operation: "put", .. }) if e.to_string().contains("injected failure")),
            "{second:?}"
        );
        assert!(put(&storage, "a").await.is_ok());
        assert_eq!(storage.inner().keys(), ["a", "b"]);
    }

    #[tokio::test]
    async fn skip_times_prefix_and_error_kinds() {
        let storage = Faulty::new(MemoryStorage::new());
        storage.inject(
            Fault::on_any(Op::WRITES)
                .prefix("frames/")
                .skip(1)
                .times(2)
                .error(Failure::AccessDenied),
        );
        let mut results = Vec::new();
        for i in 0..5 {
            results.push(put(&storage, &format!("frames/{i}")).await.map_err(|e| {
                assert!(matches!(e, StorageError::AccessDenied { .. }), "{e:?}");
            }));
        }
        assert_eq!(results, [Ok(()), Err(()), Err(()), Ok(()), Ok(())]);
        assert!(put(&storage, "logs/0").await.is_ok());

        storage.inject(Fault::on(Op::Head).error(Failure::Permanent));
        let head = storage.head("frames/0").await;
        assert!(
            matches!(head, Err(StorageError::Permanent { .. })),
            "{head:?}"
        );
        storage.clear();
        assert!(storage.head("frames/0").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_write_past_the_limit_fails_and_the_upload_can_be_aborted() {
        let storage = Faulty::new(MemoryStorage::new());
        storage.inject(Fault::on(Op::UploadWrite).after_bytes(10));
        let mut upload = storage.start_upload("zip", PutOptions::default());
        upload
            .write(Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        let failed = upload.write(Bytes::from_static(b"a")).await;
        assert!(
            matches!(
                failed,
                Err(StorageError::Transient {
                    operation: "upload part",
                    ..
                })
            ),
            "{failed:?}"
        );
        assert_eq!(storage.open_uploads("").await.unwrap(), ["zip"]);
        upload.abort().await.unwrap();
        assert!(storage.open_uploads("").await.unwrap().is_empty());
        assert!(storage.head("zip").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn submissions_of_one_kind_are_refused() {
        let scheduler = Faulty::new(MemoryScheduler::new());
        scheduler.inject(
            Fault::on(Op::Submit)
                .job_kind(JobKind::Zip)
                .error(Failure::Permanent),
        );
        let job = |kind| JobSpec {
            kind,
            name: "shot-job".to_owned(),
            array_size: None,
            depends_on: Vec::new(),
            env: Vec::new(),
            tags: BTreeMap::new(),
            blender: None,
        };
        let render = scheduler.submit(&job(JobKind::Render)).await.unwrap();
        let zip = scheduler.submit(&job(JobKind::Zip)).await;
        assert!(
            matches!(
                &zip,
                Err(SchedulerError::Rejected {
                    operation: "submit job",
                    ..
                })
            ),
            "{zip:?}"
        );
        let jobs = scheduler.inner().jobs();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].0, render);
    }

    #[tokio::test]
    async fn a_barrier_holds_calls_until_all_parties_arrive() {
        let storage = Faulty::new(MemoryStorage::new());
        storage.inject(Fault::on(Op::CreateIfAbsent).times(2).barrier(2));
        let options = PutOptions::default();
        let create =
            |byte: u8| storage.create_if_absent("marker", Bytes::from(vec![byte]), &options);
        let (first, second) = tokio::join!(create(0), create(1));
        assert!(
            first.unwrap() ^ second.unwrap(),
            "exactly one of the pair creates it"
        );
        // Past `times`, calls no longer wait for company.
        assert!(!create(2).await.unwrap());

        // Alone, a call waits for its party and does nothing meanwhile.
        let storage = Faulty::new(MemoryStorage::new());
        storage.inject(Fault::on(Op::Put).barrier(2));
        let alone = tokio::time::timeout(Duration::from_millis(50), put(&storage, "k")).await;
        assert!(alone.is_err(), "{alone:?}");
        assert!(storage.inner().keys().is_empty());
    }
}
