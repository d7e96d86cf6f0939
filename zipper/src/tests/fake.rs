//! An in-memory [`Storage`] for the unit tests, with failure and delay injection. The real
//! adapters are tested against moto and a local folder in `zipper/tests/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use farm_core::storage::{
    ObjectMeta, PutOptions, Storage, StorageError, StorageResult, StreamUpload,
};

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, (Bytes, PutOptions)>,
    open: BTreeSet<(String, u64)>,
    next_upload: u64,
    fail_get: BTreeSet<String>,
    fail_upload_after: Option<u64>,
    get_delay: Option<Duration>,
    largest_write: usize,
}

/// Objects in a map; uploads become visible on `finish`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeStorage {
    state: Arc<Mutex<State>>,
}

impl FakeStorage {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(crate) fn insert(&self, key: &str, body: impl Into<Bytes>) {
        self.state()
            .objects
            .insert(key.to_owned(), (body.into(), PutOptions::default()));
    }

    pub(crate) fn object(&self, key: &str) -> Option<Bytes> {
        self.state().objects.get(key).map(|(body, _)| body.clone())
    }

    pub(crate) fn content_type(&self, key: &str) -> Option<String> {
        self.state()
            .objects
            .get(key)
            .and_then(|(_, options)| options.content_type.clone())
    }

    pub(crate) fn open_upload_count(&self) -> usize {
        self.state().open.len()
    }

    /// `get` of this key fails with a transient error.
    pub(crate) fn fail_get(&self, key: &str) {
        self.state().fail_get.insert(key.to_owned());
    }

    /// Upload writes fail once this many bytes were written.
    pub(crate) fn fail_upload_after(&self, bytes: u64) {
        self.state().fail_upload_after = Some(bytes);
    }

    /// Every `get` sleeps this long first.
    pub(crate) fn delay_gets(&self, delay: Duration) {
        self.state().get_delay = Some(delay);
    }

    /// The largest piece handed to one `StreamUpload::write`.
    pub(crate) fn largest_write(&self) -> usize {
        self.state().largest_write
    }

    fn missing(key: &str) -> StorageError {
        StorageError::NotFound {
            key: key.to_owned(),
        }
    }

    fn unsupported(key: &str) -> StorageError {
        StorageError::Permanent {
            operation: "fake",
            key: key.to_owned(),
            message: "not supported by the fake".to_owned(),
        }
    }
}

impl Storage for FakeStorage {
    type Upload = FakeUpload;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        Ok(self.state().objects.get(key).map(|(body, _)| ObjectMeta {
            key: key.to_owned(),
            size: body.len() as u64,
            etag: None,
            metadata: BTreeMap::new(),
        }))
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        let delay = self.state().get_delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let state = self.state();
        if state.fail_get.contains(key) {
            return Err(StorageError::Transient {
                operation: "get",
                key: key.to_owned(),
                message: "injected failure".to_owned(),
            });
        }
        state
            .objects
            .get(key)
            .map(|(body, _)| body.clone())
            .ok_or_else(|| Self::missing(key))
    }

    async fn get_prefix(&self, key: &str, len: u64) -> StorageResult<Bytes> {
        let body = self.get(key).await?;
        Ok(body.slice(..body.len().min(len as usize)))
    }

    async fn download(
        &self,
        key: &str,
        _dest: &Path,
        _if_match: Option<&str>,
    ) -> StorageResult<ObjectMeta> {
        Err(Self::unsupported(key))
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> StorageResult<()> {
        self.state()
            .objects
            .insert(key.to_owned(), (body, options.clone()));
        Ok(())
    }

    async fn upload_file(
        &self,
        key: &str,
        _path: &Path,
        _options: &PutOptions,
    ) -> StorageResult<()> {
        Err(Self::unsupported(key))
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
            .insert(key.to_owned(), (body, options.clone()));
        Ok(true)
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        Ok(self
            .state()
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, (body, _))| ObjectMeta {
                key: key.clone(),
                size: body.len() as u64,
                etag: None,
                metadata: BTreeMap::new(),
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.state().objects.remove(key);
        Ok(())
    }

    fn start_upload(&self, key: &str, options: PutOptions) -> FakeUpload {
        let mut state = self.state();
        let id = state.next_upload;
        state.next_upload += 1;
        state.open.insert((key.to_owned(), id));
        FakeUpload {
            storage: self.clone(),
            key: key.to_owned(),
            id,
            options,
            body: Vec::new(),
            done: false,
        }
    }

    async fn open_uploads(&self, prefix: &str) -> StorageResult<Vec<String>> {
        Ok(self
            .state()
            .open
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect())
    }
}

/// A [`FakeStorage`] upload: collects bytes, publishes them on `finish`.
#[derive(Debug)]
pub(crate) struct FakeUpload {
    storage: FakeStorage,
    key: String,
    id: u64,
    options: PutOptions,
    body: Vec<u8>,
    done: bool,
}

impl FakeUpload {
    fn close(&mut self) {
        self.done = true;
        self.storage
            .state()
            .open
            .remove(&(self.key.clone(), self.id));
    }
}

impl StreamUpload for FakeUpload {
    async fn write(&mut self, data: Bytes) -> StorageResult<()> {
        let limit = {
            let mut state = self.storage.state();
            state.largest_write = state.largest_write.max(data.len());
            state.fail_upload_after
        };
        if limit.is_some_and(|limit| (self.body.len() + data.len()) as u64 > limit) {
            return Err(StorageError::Transient {
                operation: "upload part",
                key: self.key.clone(),
                message: "injected failure".to_owned(),
            });
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(mut self) -> StorageResult<u64> {
        self.close();
        let body = Bytes::from(std::mem::take(&mut self.body));
        let size = body.len() as u64;
        self.storage
            .state()
            .objects
            .insert(self.key.clone(), (body, self.options.clone()));
        Ok(size)
    }

    async fn abort(mut self) -> StorageResult<()> {
        self.close();
        Ok(())
    }
}

impl Drop for FakeUpload {
    fn drop(&mut self) {
        if !self.done {
            self.close();
        }
    }
}
