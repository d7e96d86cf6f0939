//! A [`Storage`] wrapper that injects writes of another party between the calls of the code
//! under test: an upload that replaces the `.blend` while a job renders it, say.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use farm_core::storage::{ByteChunks, ObjectMeta, PutOptions, StorageResult, Tags};
use farm_core::Storage;
use tokio::sync::Mutex;

/// Wraps a storage; [`Intercept::put_after_download`] arms a write that happens once the code
/// under test has downloaded something, just before its next `head`: for the renderer, after it
/// fetched the `.blend` and before it checks the source ahead of its first frame upload, as if
/// someone re-uploaded the key while Blender rendered. Tied to calls, not to time, so the test
/// does not depend on how fast Blender renders.
#[derive(Debug)]
pub struct Intercept<S> {
    inner: S,
    downloaded: AtomicBool,
    after_download: Mutex<Vec<(String, Bytes)>>,
}

impl<S: Storage> Intercept<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            downloaded: AtomicBool::new(false),
            after_download: Mutex::new(Vec::new()),
        }
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// After the next `download`, before the `head` that follows it, `key` is overwritten with
    /// `body`.
    pub fn put_after_download(&self, key: &str, body: impl Into<Bytes>) {
        self.after_download
            .try_lock()
            .expect("armed before the code under test runs")
            .push((key.to_owned(), body.into()));
    }
}

impl<S: Storage> Storage for Intercept<S> {
    type Upload = S::Upload;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        if self.downloaded.load(Ordering::SeqCst) {
            // Held across the writes: a concurrent `head` waits for them, so no caller can see
            // the store as it was before the injected write once it has happened for another.
            let mut armed = self.after_download.lock().await;
            for (other, body) in std::mem::take(&mut *armed) {
                self.inner.put(&other, body, &PutOptions::default()).await?;
            }
        }
        self.inner.head(key).await
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        self.inner.get(key).await
    }

    async fn get_stream(&self, key: &str) -> StorageResult<ByteChunks> {
        self.inner.get_stream(key).await
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> StorageResult<Bytes> {
        self.inner.get_range(key, offset, len, if_match).await
    }

    async fn download(
        &self,
        key: &str,
        dest: &Path,
        if_match: Option<&str>,
    ) -> StorageResult<ObjectMeta> {
        let downloaded = self.inner.download(key, dest, if_match).await;
        self.downloaded.store(true, Ordering::SeqCst);
        downloaded
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> StorageResult<()> {
        self.inner.put(key, body, options).await
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> StorageResult<Option<String>> {
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

    async fn get_tags(&self, key: &str, version_id: Option<&str>) -> StorageResult<Option<Tags>> {
        self.inner.get_tags(key, version_id).await
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> StorageResult<()> {
        self.inner.put_tags(key, tags).await
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
