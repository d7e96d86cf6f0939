//! Streaming uploads to S3: one PutObject while small, a multipart upload past one part.

use std::fmt;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use farm_core::storage::{PutOptions, StorageError, StorageResult};
use farm_core::StreamUpload;
use tokio::task::JoinSet;

use crate::aws_error::Failure;
use crate::s3::{storage_error, tagging, user_metadata};

const MIB: usize = 1024 * 1024;

/// S3's smallest part (all parts but the last).
const MIN_PART_SIZE: usize = 5 * MIB;

/// S3's largest number of parts in one multipart upload.
const MAX_PARTS: i32 = 10_000;

/// How many parts go at the same size before the part size grows by one base size.
const PARTS_PER_SIZE_STEP: usize = 1_000;

/// Sizes and concurrency of uploads to S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadTuning {
    /// Base part size, and the size past which a streaming upload goes multipart (default
    /// 8 MiB, at least 5 MiB: S3's minimum for every part but the last).
    ///
    /// Part `n` (0-based) is `part_size * (1 + n / 1000)` bytes: parts 0-999 are one base size,
    /// parts 1000-1999 two, and so on, so the 10,000 parts S3 allows hold 55,000 base sizes
    /// (about 430 GiB with the 8 MiB default) while small uploads keep small parts. Writing past
    /// part 10,000 fails the upload.
    pub part_size: usize,
    /// Parts uploaded concurrently (default 3, 1 to 16). Memory use is about
    /// `part_size * (parts_in_flight + 1)`.
    pub parts_in_flight: usize,
    /// Largest file [`Storage::upload_file`](farm_core::Storage::upload_file) sends in a single
    /// PutObject (default 64 MiB); larger files go up in parts.
    pub single_put_max: u64,
}

impl Default for UploadTuning {
    fn default() -> Self {
        Self {
            part_size: 8 * MIB,
            parts_in_flight: 3,
            single_put_max: 64 * MIB as u64,
        }
    }
}

impl UploadTuning {
    /// The same tuning brought within S3's limits.
    pub(crate) fn sanitized(self) -> Self {
        Self {
            part_size: self.part_size.max(MIN_PART_SIZE),
            parts_in_flight: self.parts_in_flight.clamp(1, 16),
            single_put_max: self.single_put_max,
        }
    }

    /// The parts a streaming upload ([`S3Upload`]) of `size` bytes is sent in, in order; `None`
    /// when it goes in one PutObject (smaller than one part). S3's ETag of a multipart upload
    /// depends on them (see [`crate::etag`]).
    pub fn part_lengths(&self, size: u64) -> Option<Vec<u64>> {
        let tuning = self.sanitized();
        if size < tuning.part_size as u64 {
            return None;
        }
        let mut parts = Vec::new();
        let mut left = size;
        while left > 0 {
            let next = tuning.part_size_after(i32::try_from(parts.len()).unwrap_or(i32::MAX));
            let part = left.min(next as u64);
            parts.push(part);
            left -= part;
        }
        Some(parts)
    }

    /// Size of the part that follows `parts_so_far` parts.
    fn part_size_after(&self, parts_so_far: i32) -> usize {
        let step = usize::try_from(parts_so_far).unwrap_or(0) / PARTS_PER_SIZE_STEP;
        self.part_size.saturating_mul(1 + step)
    }
}

/// A streaming upload to S3, from [`S3Storage::start_upload`](farm_core::Storage::start_upload).
///
/// Writes are buffered. Below one part, [`StreamUpload::finish`] sends a single PutObject. Once a
/// part fills, a multipart upload starts and each full part is sent while later writes go on
/// (up to [`UploadTuning::parts_in_flight`] at once); `finish` sends the rest and completes it.
/// Any failure aborts the multipart upload before the error is returned; dropping the upload
/// without `finish` or `abort` spawns the abort on the current tokio runtime.
pub struct S3Upload {
    client: Client,
    bucket: String,
    key: String,
    options: PutOptions,
    tuning: UploadTuning,
    buffer: BytesMut,
    written: u64,
    multipart: Option<Multipart>,
    failed: bool,
}

/// A multipart upload in progress.
struct Multipart {
    upload_id: String,
    parts_sent: i32,
    in_flight: JoinSet<StorageResult<CompletedPart>>,
    completed: Vec<CompletedPart>,
}

impl fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Upload")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("written", &self.written)
            .field(
                "upload_id",
                &self.multipart.as_ref().map(|m| m.upload_id.as_str()),
            )
            .finish_non_exhaustive()
    }
}

impl S3Upload {
    pub(crate) fn new(
        client: Client,
        bucket: String,
        key: String,
        options: PutOptions,
        tuning: UploadTuning,
    ) -> Self {
        Self {
            client,
            bucket,
            key,
            options,
            tuning,
            buffer: BytesMut::new(),
            written: 0,
            multipart: None,
            failed: false,
        }
    }

    fn ensure_usable(&self) -> StorageResult<()> {
        if self.failed {
            return Err(StorageError::Permanent {
                operation: "upload",
                key: self.key.clone(),
                message: "the upload already failed and was aborted".to_owned(),
            });
        }
        Ok(())
    }

    fn next_part_size(&self) -> usize {
        let parts_so_far = self.multipart.as_ref().map_or(0, |m| m.parts_sent);
        self.tuning.part_size_after(parts_so_far)
    }

    /// Sends every full part of the buffer.
    async fn send_full_parts(&mut self) -> StorageResult<()> {
        while self.buffer.len() >= self.next_part_size() {
            let size = self.next_part_size();
            let part = self.buffer.split_to(size).freeze();
            self.send_part(part).await?;
        }
        Ok(())
    }

    /// Starts the multipart upload if needed, waits for a free slot and spawns the part.
    async fn send_part(&mut self, part: Bytes) -> StorageResult<()> {
        if self.multipart.is_none() {
            let upload_id = self.create_multipart().await?;
            self.multipart = Some(Multipart {
                upload_id,
                parts_sent: 0,
                in_flight: JoinSet::new(),
                completed: Vec::new(),
            });
        }
        let Some(multipart) = self.multipart.as_mut() else {
            return Err(self.permanent("the multipart upload was not started"));
        };
        if multipart.parts_sent >= MAX_PARTS {
            return Err(self.permanent("the object needs more than 10,000 parts"));
        }
        while multipart.in_flight.len() >= self.tuning.parts_in_flight {
            multipart.collect_one(&self.key).await?;
        }
        multipart.parts_sent += 1;
        multipart.in_flight.spawn(upload_part(
            self.client.clone(),
            self.bucket.clone(),
            self.key.clone(),
            multipart.upload_id.clone(),
            multipart.parts_sent,
            part,
        ));
        Ok(())
    }

    async fn create_multipart(&self) -> StorageResult<String> {
        let output = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .set_content_type(self.options.content_type.clone())
            .set_metadata(user_metadata(&self.options.metadata))
            .set_tagging(tagging(&self.options.tags))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|err| storage_error("start upload", &self.key, &Failure::of(&err)))?;
        output
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| self.permanent("CreateMultipartUpload returned no upload id"))
    }

    /// Sends what is left, waits for every part and completes the multipart upload.
    async fn complete(&mut self) -> StorageResult<()> {
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer).freeze();
            self.send_part(last).await?;
        }
        let Some(multipart) = self.multipart.as_mut() else {
            return Err(self.permanent("the multipart upload was not started"));
        };
        while !multipart.in_flight.is_empty() {
            multipart.collect_one(&self.key).await?;
        }
        let mut parts = std::mem::take(&mut multipart.completed);
        parts.sort_by_key(|part| part.part_number());
        let upload_id = multipart.upload_id.clone();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|err| storage_error("complete upload", &self.key, &Failure::of(&err)))?;
        self.multipart = None;
        Ok(())
    }

    async fn put_whole(&mut self) -> StorageResult<()> {
        let body = std::mem::take(&mut self.buffer).freeze();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .body(ByteStream::from(body))
            .set_content_type(self.options.content_type.clone())
            .set_metadata(user_metadata(&self.options.metadata))
            .set_tagging(tagging(&self.options.tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| storage_error("upload", &self.key, &Failure::of(&err)))
    }

    /// Marks the upload failed, aborts any multipart upload and hands back `err`.
    async fn fail(&mut self, err: StorageError) -> StorageError {
        self.failed = true;
        self.buffer = BytesMut::new();
        if let Err(abort_err) = self.abort_multipart().await {
            tracing::warn!(key = %self.key, error = %abort_err, "aborting a failed upload failed");
        }
        err
    }

    async fn abort_multipart(&mut self) -> StorageResult<()> {
        let Some(mut multipart) = self.multipart.take() else {
            return Ok(());
        };
        multipart.in_flight.shutdown().await;
        abort_request(&self.client, &self.bucket, &self.key, &multipart.upload_id).await
    }

    fn permanent(&self, message: &str) -> StorageError {
        StorageError::Permanent {
            operation: "upload",
            key: self.key.clone(),
            message: message.to_owned(),
        }
    }
}

impl Multipart {
    /// Waits for one part in flight and records it.
    async fn collect_one(&mut self, key: &str) -> StorageResult<()> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(part))) => {
                self.completed.push(part);
                Ok(())
            }
            Some(Ok(Err(err))) => Err(err),
            Some(Err(join_err)) => Err(StorageError::Permanent {
                operation: "upload part",
                key: key.to_owned(),
                message: format!("the part task failed: {join_err}"),
            }),
            None => Ok(()),
        }
    }
}

impl StreamUpload for S3Upload {
    async fn write(&mut self, data: Bytes) -> StorageResult<()> {
        self.ensure_usable()?;
        self.written += data.len() as u64;
        self.buffer.extend_from_slice(&data);
        match self.send_full_parts().await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.fail(err).await),
        }
    }

    async fn finish(mut self) -> StorageResult<u64> {
        self.ensure_usable()?;
        let result = if self.multipart.is_none() {
            self.put_whole().await
        } else {
            self.complete().await
        };
        match result {
            Ok(()) => Ok(self.written),
            Err(err) => Err(self.fail(err).await),
        }
    }

    async fn abort(mut self) -> StorageResult<()> {
        self.buffer = BytesMut::new();
        self.abort_multipart().await
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        let Some(multipart) = self.multipart.take() else {
            return;
        };
        // Dropping the JoinSet cancels the parts in flight.
        drop(multipart.in_flight);
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        let upload_id = multipart.upload_id;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(err) = abort_request(&client, &bucket, &key, &upload_id).await {
                        tracing::warn!(%key, %upload_id, error = %err, "aborting a dropped upload failed");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(%key, %upload_id, "upload dropped outside a tokio runtime: the multipart upload stays open");
            }
        }
    }
}

async fn upload_part(
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    number: i32,
    body: Bytes,
) -> StorageResult<CompletedPart> {
    let output = client
        .upload_part()
        .bucket(bucket)
        .key(&key)
        .upload_id(upload_id)
        .part_number(number)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|err| storage_error("upload part", &key, &Failure::of(&err)))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(output.e_tag().map(str::to_owned))
        .set_checksum_crc32(output.checksum_crc32().map(str::to_owned))
        .build())
}

/// AbortMultipartUpload; an upload that is already gone is not an error.
async fn abort_request(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> StorageResult<()> {
    let result = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) => {
            let failure = Failure::of(&err);
            if failure.has_code("NoSuchUpload") || failure.has_status(404) {
                return Ok(());
            }
            Err(storage_error("abort upload", key, &failure))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_every_thousand_parts_and_fit_in_ten_thousand() {
        let tuning = UploadTuning::default();
        assert_eq!(tuning.part_size_after(0), 8 * MIB);
        assert_eq!(tuning.part_size_after(999), 8 * MIB);
        assert_eq!(tuning.part_size_after(1_000), 16 * MIB);
        assert_eq!(tuning.part_size_after(9_999), 80 * MIB);
        let total: u64 = (0..MAX_PARTS)
            .map(|n| tuning.part_size_after(n) as u64)
            .sum();
        assert_eq!(total, 55_000 * 8 * MIB as u64);
    }

    #[test]
    fn part_lengths_follow_the_uploads_own_split() {
        let tuning = UploadTuning {
            part_size: 5 * MIB,
            ..UploadTuning::default()
        };
        let mib = MIB as u64;
        assert_eq!(tuning.part_lengths(5 * mib - 1), None);
        assert_eq!(tuning.part_lengths(5 * mib), Some(vec![5 * mib]));
        assert_eq!(
            tuning.part_lengths(11 * mib),
            Some(vec![5 * mib, 5 * mib, mib])
        );
        let big = tuning.part_lengths(1_001 * 5 * mib + 3).unwrap();
        assert_eq!(big.len(), 1_001);
        assert_eq!(big[999], 5 * mib);
        assert_eq!(big[1_000], 5 * mib + 3);
    }

    #[test]
    fn tuning_is_kept_within_s3_limits() {
        let tuning = UploadTuning {
            part_size: 1,
            parts_in_flight: 0,
            single_put_max: 1,
        }
        .sanitized();
        assert_eq!(tuning.part_size, MIN_PART_SIZE);
        assert_eq!(tuning.parts_in_flight, 1);
    }
}
