//! The storage port: the few object-store operations the pipeline needs.
//!
//! Two real implementations live in `farm-io`: S3 and a local folder. Both pass one conformance
//! suite (`farm-io/tests/conformance.rs`), so the local farm behaves like the cloud one; so does
//! the test kit's in-memory store (`farm_testkit::MemoryStorage`) that unit tests use.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

/// User metadata stored with an object (`x-amz-meta-*` in S3).
pub type Metadata = BTreeMap<String, String>;

/// An object's tags, `(name, value)` pairs in the store's order (S3 object tagging): the
/// trigger reads a request from an upload's tags.
pub type Tags = Vec<(String, String)>;

/// Metadata key of a frame recording the ETag of the `.blend` it was rendered from.
pub const SOURCE_ETAG_METADATA: &str = "farm-source-etag";

/// Metadata key of a frame recording the output format the job asked for (a Blender format
/// name), or [`SCENE_FORMAT`] when the scene's own format was used.
pub const FORMAT_METADATA: &str = "farm-format";

/// Metadata key of a frame recording the version of the dependency list (textures, libraries...)
/// it was rendered with ([`crate::deps::list_version`]); absent when the job had none.
pub const DEPENDENCIES_METADATA: &str = "farm-dependencies";

/// Metadata naming the engine a frame was rendered with ([`crate::engine::Engine::name`]), on
/// frames not rendered with Cycles; a frame without it was rendered with Cycles.
pub const ENGINE_METADATA: &str = "farm-engine";
/// [`FORMAT_METADATA`] of a frame rendered in the scene's own output format.
pub const SCENE_FORMAT: &str = "scene";

/// What a store knows of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Opaque version tag (S3 ETag, quotes included). Changes when the content changes.
    pub etag: Option<String>,
    /// User metadata. Filled by `head` and `download`; listings leave it empty.
    pub metadata: Metadata,
    /// The version of the object `head` and `download` saw, where the store keeps versions (a
    /// versioned S3 bucket); `None` in a store without versions, and in listings.
    pub version_id: Option<String>,
}

/// Options for writing an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub metadata: Metadata,
    /// Object tags (`name`, `value`), written with the object itself so it never exists
    /// without them: the trigger reads a request from an upload's tags
    /// ([`Storage::get_tags`]).
    pub tags: Tags,
}

impl PutOptions {
    pub fn content_type(content_type: &str) -> Self {
        Self {
            content_type: Some(content_type.to_owned()),
            ..Self::default()
        }
    }
}

/// A storage failure, classified so callers can tell retryable failures from permanent ones.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("object `{key}` does not exist")]
    NotFound { key: String },
    #[error("object `{key}` changed: expected ETag {expected}; it was replaced after the job was submitted")]
    Changed { key: String, expected: String },
    #[error("`{key}` is not a valid key: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("access to `{key}` denied: {message}")]
    AccessDenied { key: String, message: String },
    /// The bucket itself does not exist.
    #[error("the bucket does not exist ({message})")]
    NoSuchBucket { message: String },
    /// No credentials were found, or the service refused them (expired, unknown): no retry helps
    /// until they are renewed.
    #[error("no usable credentials ({message})")]
    Credentials { message: String },
    /// The service refused the credentials as expired (a session token past its time): no
    /// retry helps until the user signs in again.
    #[error("the credentials have expired ({message})")]
    ExpiredCredentials { message: String },
    /// The bucket is in another region than the one the request went to; `region` is the
    /// bucket's when the service said it.
    #[error("the bucket is in another region{} ({message})", region.as_deref().map(|r| format!(", {r}")).unwrap_or_default())]
    WrongRegion {
        region: Option<String>,
        message: String,
    },
    #[error("{operation} `{key}` failed: {message}")]
    Transient {
        operation: &'static str,
        key: String,
        message: String,
    },
    #[error("{operation} `{key}` failed: {message}")]
    Permanent {
        operation: &'static str,
        key: String,
        message: String,
    },
    #[error("`{key}` does not hold valid JSON: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("local file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    /// Whether another attempt may succeed (network, throttling, server errors, local disk).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Io { .. })
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// An object's bytes as they arrive, from [`Storage::get_stream`].
pub type ByteChunks = Pin<Box<dyn Stream<Item = StorageResult<Bytes>> + Send>>;

/// An object store holding the `.blend` files and everything the farm writes.
///
/// Writes are atomic: an object is either there whole or not at all.
pub trait Storage: Send + Sync {
    /// A streaming upload started by [`Storage::start_upload`].
    type Upload: StreamUpload;

    /// The object's size, ETag and metadata; `None` if it does not exist.
    fn head(&self, key: &str) -> impl Future<Output = StorageResult<Option<ObjectMeta>>> + Send;

    /// The whole object, for small objects (manifests, frames being zipped).
    fn get(&self, key: &str) -> impl Future<Output = StorageResult<Bytes>> + Send;

    /// The object's bytes as a stream of chunks, for objects too large to hold in memory (a
    /// 1 GiB frame going into an archive). The default reads the whole object with
    /// [`Storage::get`]: stores that can stream override it.
    fn get_stream(&self, key: &str) -> impl Future<Output = StorageResult<ByteChunks>> + Send {
        async move {
            let whole = self.get(key).await?;
            Ok(Box::pin(OneChunk(Some(whole))) as ByteChunks)
        }
    }

    /// Up to `len` bytes of the object from byte `offset`: fewer where the object ends, none
    /// from its end on. With `if_match`, fails with [`StorageError::Changed`] unless the object
    /// still has that ETag, so ranges read one after another all come from one version.
    fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> impl Future<Output = StorageResult<Bytes>> + Send;

    /// Streams the object into the file `dest` (never holding it in memory). With `if_match`,
    /// fails with [`StorageError::Changed`] unless the object still has that ETag.
    fn download(
        &self,
        key: &str,
        dest: &Path,
        if_match: Option<&str>,
    ) -> impl Future<Output = StorageResult<ObjectMeta>> + Send;

    /// Writes a small object in one request, replacing any object at `key`.
    fn put(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> impl Future<Output = StorageResult<()>> + Send;

    /// Uploads a file, replacing any object at `key`; large files go up in parts. Returns the
    /// ETag the store gave the object written (the one [`Storage::head`] and [`Storage::list`]
    /// show for it until it is replaced), or `None` where the store did not say one (S3: a file
    /// sent in parts).
    fn upload_file(
        &self,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> impl Future<Output = StorageResult<Option<String>>> + Send;

    /// Creates the object only if nothing is at `key` (`If-None-Match: *`). `Ok(false)`: it
    /// already existed and nothing was written.
    fn create_if_absent(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> impl Future<Output = StorageResult<bool>> + Send;

    /// Every object under `prefix`, in key order, across as many pages as it takes.
    fn list(&self, prefix: &str) -> impl Future<Output = StorageResult<Vec<ObjectMeta>>> + Send;

    /// The object's tags; `Ok(None)` if the object does not exist (deleted since an event
    /// named it). With `version_id`, the tags of that version (`Ok(None)` if it is gone); stores
    /// without versions (the local folder, memory) have only the current object and ignore it.
    fn get_tags(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = StorageResult<Option<Tags>>> + Send;

    /// Replaces the object's tags, keeping its content, ETag and metadata (S3's
    /// PutObjectTagging, whose `ObjectTagging:Put` event starts a job as an upload's does).
    /// Fails with [`StorageError::NotFound`] if there is no object at `key`.
    fn put_tags(
        &self,
        key: &str,
        tags: &[(String, String)],
    ) -> impl Future<Output = StorageResult<()>> + Send;

    /// Removes the object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = StorageResult<()>> + Send;

    /// Starts a streaming upload to `key`: one request if it stays small, multipart past a
    /// threshold. Nothing is visible at `key` until [`StreamUpload::finish`].
    fn start_upload(&self, key: &str, options: PutOptions) -> Self::Upload;

    /// Keys under `prefix` with an upload started and neither finished nor aborted.
    fn open_uploads(&self, prefix: &str)
        -> impl Future<Output = StorageResult<Vec<String>>> + Send;
}

/// A stream of one chunk: the default [`Storage::get_stream`].
struct OneChunk(Option<Bytes>);

impl Stream for OneChunk {
    type Item = StorageResult<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

/// A streaming upload in progress. Dropping it without `finish` aborts it.
pub trait StreamUpload: Send {
    /// Appends bytes; full parts are uploaded as they fill.
    fn write(&mut self, data: Bytes) -> impl Future<Output = StorageResult<()>> + Send;

    /// Makes the object visible and returns its size.
    fn finish(self) -> impl Future<Output = StorageResult<u64>> + Send;

    /// Discards everything written; no object appears.
    fn abort(self) -> impl Future<Output = StorageResult<()>> + Send;
}

/// Reads and decodes a small JSON object.
pub async fn get_json<T: serde::de::DeserializeOwned>(
    storage: &impl Storage,
    key: &str,
) -> StorageResult<T> {
    let body = storage.get(key).await?;
    serde_json::from_slice(&body).map_err(|source| StorageError::Json {
        key: key.to_owned(),
        source,
    })
}

/// Encodes and writes a small JSON object.
pub async fn put_json<T: serde::Serialize>(
    storage: &impl Storage,
    key: &str,
    value: &T,
) -> StorageResult<()> {
    let body = serde_json::to_vec_pretty(value).map_err(|source| StorageError::Json {
        key: key.to_owned(),
        source,
    })?;
    storage
        .put(
            key,
            Bytes::from(body),
            &PutOptions::content_type("application/json"),
        )
        .await
}
