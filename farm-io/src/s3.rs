//! [`Storage`] on an S3 bucket.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use farm_core::storage::{
    ByteChunks, Metadata, ObjectMeta, PutOptions, StorageError, StorageResult, Tags,
};
use farm_core::{Storage, StreamUpload};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::aws_error::Failure;
use crate::s3_upload::{S3Upload, UploadTuning};
use crate::temp::TempFile;

/// Attempts of a conditional create that S3 answers with 409 `ConditionalRequestConflict`
/// (another conditional write to the key was in progress).
const CONFLICT_ATTEMPTS: u32 = 4;

/// Bytes read from a file per [`StreamUpload::write`] when a large file goes up in parts.
const FILE_READ_CHUNK: usize = 1024 * 1024;

/// [`Storage`] on one S3 bucket.
///
/// Errors are classified into [`StorageError`]: `NoSuchKey`/404 is `NotFound`, 403 is
/// `AccessDenied`, throttling, 5xx, timeouts and transport failures are `Transient` (after the
/// SDK's own retries), any other 4xx is `Permanent`. Without `s3:ListBucket`, S3 answers 403
/// for a missing key, so `head` then fails with `AccessDenied` instead of returning `None`.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    tuning: UploadTuning,
}

impl S3Storage {
    /// Storage on `bucket` through an already configured client.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            tuning: UploadTuning::default(),
        }
    }

    /// Storage on `bucket` with a client from the farm's one client builder
    /// ([`crate::AwsClients`]: configuration from the environment, every request bounded by
    /// timeouts and retried in standard mode).
    pub async fn from_env(bucket: impl Into<String>) -> Self {
        Self::new(crate::AwsClients::load().await.s3(), bucket)
    }

    /// Replaces the part sizes and thresholds of uploads (see [`UploadTuning`]).
    #[must_use]
    pub fn with_upload_tuning(mut self, tuning: UploadTuning) -> Self {
        self.tuning = tuning.sanitized();
        self
    }

    /// The bucket this storage works on.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn get_object(
        &self,
        operation: &'static str,
        key: &str,
        range: Option<String>,
        if_match: Option<&str>,
    ) -> StorageResult<Option<GetObjectOutput>> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output)),
            Err(err) => {
                let failure = Failure::of(&err);
                if failure.has_status(416) {
                    // A range on an empty object: there is nothing to return.
                    return Ok(None);
                }
                if let Some(expected) = if_match {
                    if failure.has_status(412) || failure.has_code("PreconditionFailed") {
                        return Err(StorageError::Changed {
                            key: key.to_owned(),
                            expected: expected.to_owned(),
                        });
                    }
                }
                Err(storage_error(operation, key, &failure))
            }
        }
    }

    async fn put_object(
        &self,
        key: &str,
        body: ByteStream,
        options: &PutOptions,
        if_none_match: bool,
    ) -> Result<Option<String>, SdkError<PutObjectError, HttpResponse>> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body)
            .set_content_type(options.content_type.clone())
            .set_metadata(user_metadata(&options.metadata))
            .set_tagging(tagging(&options.tags))
            .set_if_none_match(if_none_match.then(|| "*".to_owned()))
            .send()
            .await
            .map(|out| out.e_tag().map(str::to_owned))
    }

    async fn upload_in_parts(
        &self,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> StorageResult<Option<String>> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        let mut upload = self.start_upload(key, options.clone());
        loop {
            let mut chunk = BytesMut::with_capacity(FILE_READ_CHUNK);
            let read = match file.read_buf(&mut chunk).await {
                Ok(read) => read,
                Err(err) => {
                    // The read error is the one worth reporting; the abort is best effort.
                    let _ = upload.abort().await;
                    return Err(StorageError::io(path, err));
                }
            };
            if read == 0 {
                break;
            }
            upload.write(chunk.freeze()).await?;
        }
        // A multipart ETag is no digest of the bytes: the caller gets none.
        upload.finish().await.map(|_| None)
    }
}

impl Storage for S3Storage {
    type Upload = S3Upload;

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: size_of(out.content_length()),
                etag: out.e_tag().map(str::to_owned),
                metadata: metadata_of(out.metadata()),
                version_id: out.version_id().map(str::to_owned),
            })),
            Err(err) => match storage_error("head", key, &Failure::of(&err)) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        match self.get_object("get", key, None, None).await? {
            Some(output) => collect("get", key, output).await,
            None => Ok(Bytes::new()),
        }
    }

    async fn get_stream(&self, key: &str) -> StorageResult<ByteChunks> {
        let Some(output) = self.get_object("get", key, None, None).await? else {
            return Ok(Box::pin(futures::stream::empty()));
        };
        let key = key.to_owned();
        let chunks = futures::stream::unfold(Some(output.body), move |body| {
            let key = key.clone();
            async move {
                let mut body = body?;
                match body.try_next().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
                    Ok(None) => None,
                    Err(err) => Some((Err(body_error("get", &key, &err)), None)),
                }
            }
        });
        Ok(Box::pin(chunks))
    }

    async fn get_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        if_match: Option<&str>,
    ) -> StorageResult<Bytes> {
        if len == 0 {
            // `bytes=0--1` is no range; still report a missing (or replaced) object.
            return match self.head(key).await? {
                Some(meta) => match if_match {
                    Some(expected) if meta.etag.as_deref() != Some(expected) => {
                        Err(StorageError::Changed {
                            key: key.to_owned(),
                            expected: expected.to_owned(),
                        })
                    }
                    _ => Ok(Bytes::new()),
                },
                None => Err(not_found(key)),
            };
        }
        let last = offset.saturating_add(len - 1);
        let range = format!("bytes={offset}-{last}");
        match self.get_object("get", key, Some(range), if_match).await? {
            Some(output) => {
                let ranged = output.content_range().is_some();
                let mut body = collect("get", key, output).await?;
                if !ranged {
                    // A server ignoring the range sends everything: keep what was asked for.
                    let start = usize::try_from(offset)
                        .unwrap_or(usize::MAX)
                        .min(body.len());
                    body = body.slice(start..);
                }
                body.truncate(usize::try_from(len).unwrap_or(usize::MAX));
                Ok(body)
            }
            // 416: the range starts at or past the end.
            None => Ok(Bytes::new()),
        }
    }

    async fn download(
        &self,
        key: &str,
        dest: &Path,
        if_match: Option<&str>,
    ) -> StorageResult<ObjectMeta> {
        let output = self
            .get_object("download", key, None, if_match)
            .await?
            .ok_or_else(|| not_found(key))?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: size_of(output.content_length()),
            etag: output.e_tag().map(str::to_owned),
            metadata: metadata_of(output.metadata()),
            version_id: output.version_id().map(str::to_owned),
        };
        let temp = TempFile::beside(dest);
        stream_to_file(key, output.body, temp.path()).await?;
        temp.persist(dest).await?;
        Ok(meta)
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> StorageResult<()> {
        self.put_object(key, ByteStream::from(body), options, false)
            .await
            .map(|_| ())
            .map_err(|err| storage_error("put", key, &Failure::of(&err)))
    }

    async fn upload_file(
        &self,
        key: &str,
        path: &Path,
        options: &PutOptions,
    ) -> StorageResult<Option<String>> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| StorageError::io(path, e))?
            .len();
        if size > self.tuning.single_put_max {
            return self.upload_in_parts(key, path, options).await;
        }
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StorageError::Io {
                path: path.to_owned(),
                source: std::io::Error::other(e),
            })?;
        self.put_object(key, body, options, false)
            .await
            .map_err(|err| storage_error("upload", key, &Failure::of(&err)))
    }

    async fn create_if_absent(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> StorageResult<bool> {
        let mut attempt = 1;
        loop {
            let result = self
                .put_object(key, ByteStream::from(body.clone()), options, true)
                .await;
            let Err(err) = result else {
                return Ok(true);
            };
            let failure = Failure::of(&err);
            if failure.has_status(412) || failure.has_code("PreconditionFailed") {
                return Ok(false);
            }
            let conflict =
                failure.has_status(409) || failure.has_code("ConditionalRequestConflict");
            if !conflict || attempt >= CONFLICT_ATTEMPTS {
                return Err(storage_error("create", key, &failure));
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            attempt += 1;
        }
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| storage_error("list", prefix, &Failure::of(&err)))?;
            objects.extend(page.contents().iter().filter_map(|object| {
                Some(ObjectMeta {
                    key: object.key()?.to_owned(),
                    size: size_of(object.size()),
                    etag: object.e_tag().map(str::to_owned),
                    metadata: Metadata::new(),
                    version_id: None,
                })
            }));
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn get_tags(&self, key: &str, version_id: Option<&str>) -> StorageResult<Option<Tags>> {
        let result = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output
                    .tag_set()
                    .iter()
                    .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                    .collect(),
            )),
            // `NoSuchKey`, or `NoSuchVersion` for a version deleted since the event.
            Err(err) => match storage_error("get tags", key, &Failure::of(&err)) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn put_tags(&self, key: &str, tags: &[(String, String)]) -> StorageResult<()> {
        let invalid = |message: String| StorageError::Permanent {
            operation: "put tags",
            key: key.to_owned(),
            message,
        };
        let tag_set = tags
            .iter()
            .map(|(name, value)| Tag::builder().key(name).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| storage_error("put tags", key, &Failure::of(&err)))
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let result = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match storage_error("delete", key, &Failure::of(&err)) {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    fn start_upload(&self, key: &str, options: PutOptions) -> S3Upload {
        S3Upload::new(
            self.client.clone(),
            self.bucket.clone(),
            key.to_owned(),
            options,
            self.tuning,
        )
    }

    async fn open_uploads(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut upload_id_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_id_marker.take())
                .send()
                .await
                .map_err(|err| storage_error("list uploads", prefix, &Failure::of(&err)))?;
            keys.extend(
                page.uploads()
                    .iter()
                    .filter_map(|upload| upload.key().map(str::to_owned)),
            );
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            upload_id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && upload_id_marker.is_none() {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// Classifies a failed S3 call on `key`.
pub(crate) fn storage_error(operation: &'static str, key: &str, failure: &Failure) -> StorageError {
    let key = key.to_owned();
    let message = failure.message.clone();
    if failure.expired {
        return StorageError::ExpiredCredentials { message };
    }
    if failure.credentials {
        return StorageError::Credentials { message };
    }
    if failure.wrong_region {
        return StorageError::WrongRegion {
            region: failure.bucket_region.clone(),
            message,
        };
    }
    if failure.has_code("NoSuchBucket") {
        return StorageError::NoSuchBucket { message };
    }
    if failure.has_status(404) || failure.has_code("NoSuchKey") || failure.has_code("NotFound") {
        return StorageError::NotFound { key };
    }
    if failure.has_status(403) || failure.has_code("AccessDenied") {
        return StorageError::AccessDenied { key, message };
    }
    if failure.is_transient() {
        return StorageError::Transient {
            operation,
            key,
            message,
        };
    }
    StorageError::Permanent {
        operation,
        key,
        message,
    }
}

fn not_found(key: &str) -> StorageError {
    StorageError::NotFound {
        key: key.to_owned(),
    }
}

fn size_of(length: Option<i64>) -> u64 {
    length.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}

fn metadata_of(metadata: Option<&std::collections::HashMap<String, String>>) -> Metadata {
    metadata
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// User metadata as the SDK wants it; `None` when there is none (no empty header map).
pub(crate) fn user_metadata(
    metadata: &Metadata,
) -> Option<std::collections::HashMap<String, String>> {
    (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect())
}

/// Characters left as they are in a tagging query string: RFC 3986's unreserved set.
const TAG_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL-encoded tagging header of a write (`frames=1-10%2020&chunk=2`), if it has tags.
pub(crate) fn tagging(tags: &[(String, String)]) -> Option<String> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|(name, value)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(name, TAG_ENCODE),
                    utf8_percent_encode(value, TAG_ENCODE)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

async fn collect(
    operation: &'static str,
    key: &str,
    output: GetObjectOutput,
) -> StorageResult<Bytes> {
    output
        .body
        .collect()
        .await
        .map(|data| data.into_bytes())
        .map_err(|err| body_error(operation, key, &err))
}

/// A body that broke off while being read: a dropped connection, a read timeout.
fn body_error(operation: &'static str, key: &str, err: &dyn std::fmt::Display) -> StorageError {
    StorageError::Transient {
        operation,
        key: key.to_owned(),
        message: format!("reading the body: {err}"),
    }
}

async fn stream_to_file(key: &str, mut body: ByteStream, path: &Path) -> StorageResult<()> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| StorageError::io(path, e))?;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|err| body_error("download", key, &err))?
    {
        file.write_all(&chunk)
            .await
            .map_err(|e| StorageError::io(path, e))?;
    }
    file.flush().await.map_err(|e| StorageError::io(path, e))
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    #[test]
    fn tags_are_url_encoded_for_the_tagging_header() {
        let tags = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(tagging(&[]), None);
        assert_eq!(
            tagging(&tags(&[
                ("frames", "1-10 20"),
                ("chunk", "2"),
                ("format", "OPEN_EXR")
            ]))
            .as_deref(),
            Some("frames=1-10%2020&chunk=2&format=OPEN_EXR")
        );
        assert_eq!(
            tagging(&tags(&[("frames", "-3--1 4-10:3")])).as_deref(),
            Some("frames=-3--1%204-10%3A3")
        );
        assert_eq!(
            tagging(&tags(&[("note", "a&b=c/ü")])).as_deref(),
            Some("note=a%26b%3Dc%2F%C3%BC")
        );
    }

    fn service_failure(status: u16, code: Option<&str>) -> Failure {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        let err: SdkError<PutObjectError, HttpResponse> =
            SdkError::service_error(PutObjectError::generic(meta.build()), raw);
        Failure::of(&err)
    }

    fn classify(status: u16, code: Option<&str>) -> StorageError {
        storage_error("put", "k", &service_failure(status, code))
    }

    #[test]
    fn missing_objects_are_not_found_but_missing_buckets_are_permanent() {
        assert!(matches!(classify(404, None), StorageError::NotFound { .. }));
        assert!(matches!(
            classify(404, Some("NoSuchKey")),
            StorageError::NotFound { .. }
        ));
        assert!(matches!(
            classify(404, Some("NoSuchBucket")),
            StorageError::NoSuchBucket { .. }
        ));
    }

    #[test]
    fn forbidden_is_access_denied() {
        assert!(matches!(
            classify(403, Some("AccessDenied")),
            StorageError::AccessDenied { .. }
        ));
    }

    #[test]
    fn throttling_server_errors_and_timeouts_are_transient() {
        for (status, code) in [
            (503, Some("SlowDown")),
            (503, None),
            (500, Some("InternalError")),
            (400, Some("RequestTimeout")),
            (429, None),
        ] {
            let err = classify(status, code);
            assert!(err.is_transient(), "{status} {code:?}: {err:?}");
        }
        let timeout: SdkError<PutObjectError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert!(storage_error("put", "k", &Failure::of(&timeout)).is_transient());
    }

    #[test]
    fn other_client_errors_are_permanent() {
        for (status, code) in [(400, Some("InvalidArgument")), (400, None), (409, None)] {
            assert!(
                matches!(classify(status, code), StorageError::Permanent { .. }),
                "{status} {code:?}"
            );
        }
        let construction: SdkError<PutObjectError, HttpResponse> =
            SdkError::construction_failure("missing key");
        assert!(matches!(
            storage_error("put", "k", &Failure::of(&construction)),
            StorageError::Permanent { .. }
        ));
    }

    #[test]
    fn precondition_failures_are_recognised_by_status_or_code() {
        // What a conditional PutObject losing to an existing object looks like: an unmodelled
        // error with code `PreconditionFailed`, status 412.
        let failure = service_failure(412, Some("PreconditionFailed"));
        assert!(failure.has_status(412) && failure.has_code("PreconditionFailed"));
        assert!(!failure.is_transient());
    }
}
