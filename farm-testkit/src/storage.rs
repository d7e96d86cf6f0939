//! A [`Storage`] wrapper that injects writes of another party between the calls of the code
//! under test: an upload that replaces the `.blend` while a job renders it, say.

use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use farm_core::storage::{ObjectMeta, PutOptions, StorageResult};
use farm_core::Storage;

/// Wraps a storage; [`Intercept::put_before_upload`] arms a write that happens just before the
/// next `upload_file`, as if someone else made it at that moment.
#[derive(Debug)]
pub struct Intercept<S> {
    inner: S,
    before_upload: Mutex<Vec<(String, Bytes)>>,
}

impl<S: Storage> Intercept<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            before_upload: Mutex::new(Vec::new()),
        }
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Before the next `upload_file`, `key` is overwritten with `body`.
    pub fn put_before_upload(&self, key: &str, body: impl Into<Bytes>) {
        self.before_upload
            .lock()
            .expect("lock")
            .push((key.to_owned(), body.into()));
    }
}

impl<S: Storage> Storage for Intercept<S> {
    type Upload = S::Upload;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        self.inner.head(key).await
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        self.inner.get(key).await
    }

    async fn get_prefix(&self, key: &str, len: u64) -> StorageResult<Bytes> {
        self.inner.get_prefix(key, len).await
    }

    async fn download(
        &self,
        key: &str,
        dest: &Path,
        if_match: Option<&str>,
    ) -> StorageResult<ObjectMeta> {
        self.inner.download(key, dest, if_match).await
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> StorageResult<()> {
        self.inner.put(key, body, options).await
    }

    async fn upload_file(&self, key: &str, path: &Path, options: &PutOptions) -> StorageResult<()> {
        let armed = std::mem::take(&mut *self.before_upload.lock().expect("lock"));
        for (other, body) in armed {
            self.inner.put(&other, body, &PutOptions::default()).await?;
        }
        self.inner.upload_file(key, path, options).await
    }

    async fn create_if_absent(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> StorageResult<bool> {
        self.inner.create_if_absent(key, body, options).await
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.inner.delete(key).await
    }

    fn start_upload(&self, key: &str, options: PutOptions) -> Self::Upload {
        self.inner.start_upload(key, options)
    }

    async fn open_uploads(&self, prefix: &str) -> StorageResult<Vec<String>> {
        self.inner.open_uploads(prefix).await
    }
}
