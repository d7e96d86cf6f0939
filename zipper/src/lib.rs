//! The zipper: streams every expected frame of a render job into `<key>/frames.zip`.
//!
//! [`zip_frames`] works over any [`Storage`]: the `zipper` binary runs it against S3 as the
//! Batch job that follows the render array job, and `farm render` against a local folder.
//!
//! 1. Scan `<key>/frames/` for the job's [`FrameList`] with the job model's one frame scan
//!    ([`farm_jobs::scan_frames`]): every expected frame must be there exactly once *for this
//!    job* (rendered from the job's version of the .blend, in its format). Objects of another
//!    upload or format, files planted by hand and frames the job does not expect are left out.
//!    If any expected frame is not current, write `<key>/missing.json`, remove a stale
//!    `frames.zip` and `preview.jpg`, and fail with [`ZipError::Missing`].
//! 2. Download the frames a bounded window ahead, write them in frame order as STORED entries
//!    into an `async_zip` writer whose output streams into [`Storage::start_upload`] of
//!    `<key>/frames.zip` (multipart past the store's threshold). A frame larger than the window
//!    is streamed from storage into its entry when its turn comes, never held whole.
//! 3. Finish the upload only after the archive was closed and every byte handed over; on any
//!    error or interruption abort it, so a truncated archive is never visible. On success remove
//!    a stale `missing.json`.
//! 4. Meanwhile up to 64 of the frames, evenly sampled, are shrunk into a contact sheet from the
//!    bytes the archive streams (see `preview`); after the archive, it is written to
//!    `<key>/preview.jpg` in one `put` (best effort: never fails the run).
//!
//! 5. [`run`] (the zip job) reads the key's task records once, before the scan: the frames they
//!    vouch for are not read again (step 1), and after a finished archive the job's
//!    `<key>/receipt.json` is summed from the records of the job's version of the .blend by
//!    [`farm_jobs::receipt::write`] (the one writer, which the movie job uses too). It writes its
//!    own task record, `<key>/tasks/zip-<attempt>.json` (best effort: the records and the
//!    receipt never change the outcome).
//!
//! Memory is bounded by [`ZipOptions`] (the prefetch window and the pipe chunk) and the
//! upload's part buffers, not by the number of frames; nothing touches the local disk.

mod archive;
pub mod config;
pub mod error;
mod preview;
mod receipt;

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use farm_core::frames::compact;
use farm_core::storage::{put_json, PutOptions, Storage, StreamUpload};
use farm_core::tasks::TaskRecord;
use farm_core::{FrameList, JobKeys};
use farm_jobs::{scan_frames, FrameScan, OutputVersion};

pub use config::{Cli, Config};
pub use error::ZipError;
pub use farm_jobs::FrameObject;
pub use preview::PREVIEW_CONTENT_TYPE;

/// Content type of the archive.
pub const ZIP_CONTENT_TYPE: &str = "application/zip";

const MIB: u64 = 1024 * 1024;

/// Tuning of the streaming pipeline. The defaults keep the zipper's peak memory well under
/// 64 MiB for any number of frames of any size (see `BENCHMARKS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipOptions {
    /// Most bytes of frames downloaded ahead of the writer. The window is this divided by the
    /// largest frame, so it is at least one frame. A frame larger than this is not downloaded
    /// ahead: the writer streams it from storage into its entry in chunks.
    pub prefetch_bytes: u64,
    /// Most frames downloaded at once.
    pub max_prefetch_frames: usize,
    /// Size of the pipe between the zip writer and the upload, and of each piece handed to
    /// [`StreamUpload::write`].
    pub chunk_bytes: usize,
    /// Whether to write the contact sheet, `<key>/preview.jpg`, with the archive.
    pub preview: bool,
}

impl Default for ZipOptions {
    /// 4 MiB (at most 4 frames) downloaded ahead, 1 MiB pieces, a contact sheet: the downloads
    /// stay ahead of the upload against S3 and moto (see `BENCHMARKS.md`) at a few MiB of memory.
    fn default() -> Self {
        Self {
            prefetch_bytes: 4 * MIB,
            max_prefetch_frames: 4,
            chunk_bytes: MIB as usize,
            preview: true,
        }
    }
}

impl ZipOptions {
    /// How many frames to download at once for frames of these sizes.
    pub fn window_for(&self, sizes: impl IntoIterator<Item = u64>) -> usize {
        let largest = sizes.into_iter().max().unwrap_or(0).max(1);
        let by_bytes = usize::try_from(self.prefetch_bytes / largest).unwrap_or(usize::MAX);
        by_bytes.clamp(1, self.max_prefetch_frames.max(1))
    }

    fn validate(&self) -> Result<(), ZipError> {
        if self.chunk_bytes == 0 {
            return Err(ZipError::config("the chunk size must be at least one byte"));
        }
        Ok(())
    }
}

/// Part size and concurrency of the archive's multipart upload to S3: S3's smallest part, one
/// at a time (the frame downloads go on meanwhile). With the default [`ZipOptions`] the binary
/// peaks under 50 MiB for any number of frames (see `BENCHMARKS.md`); each extra part in flight
/// costs about 5-10 MiB.
#[cfg(feature = "aws")]
pub fn upload_tuning() -> farm_io::UploadTuning {
    farm_io::UploadTuning {
        part_size: 5 * MIB as usize,
        parts_in_flight: 1,
        ..farm_io::UploadTuning::default()
    }
}

/// Progress of a run, reported after the listing and after each frame written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipProgress {
    /// Frames written into the archive so far.
    pub frames_done: usize,
    /// Frames the archive will hold.
    pub frames_total: usize,
    /// Bytes of frames written so far.
    pub bytes_done: u64,
    /// Bytes of all frames, from the listing.
    pub bytes_total: u64,
}

/// What a successful run made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// Key of the archive.
    pub key: String,
    /// Frames in the archive.
    pub frames: usize,
    /// Frame objects under the prefix left out: frames the job does not expect, and objects of
    /// expected frames from another upload or format.
    pub ignored: usize,
    /// Bytes of frames in the archive.
    pub frame_bytes: u64,
    /// Size of the archive.
    pub archive_bytes: u64,
    /// Key of the contact sheet, when one was written.
    pub preview: Option<String>,
    /// Time from the listing to the finished upload (and the contact sheet).
    pub elapsed: Duration,
}

/// Zips every frame of `frames` found under `keys.frames_prefix()` into `keys.zip()`.
///
/// `progress` is called after the listing and after each frame (an indicatif bar can follow
/// it). See the crate documentation for what happens on missing frames and on errors.
pub async fn zip_frames<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    frames: &FrameList,
    version: &OutputVersion,
    options: &ZipOptions,
    progress: &(dyn Fn(ZipProgress) + Sync),
) -> Result<ZipSummary, ZipError> {
    zip_frames_until(
        storage,
        keys,
        frames,
        version,
        options,
        progress,
        std::future::pending(),
    )
    .await
}

/// [`zip_frames`], stopped by `shutdown`: when it completes first, the write to the upload in
/// progress (at most one part) is let finish, the upload is aborted and the run fails with
/// [`ZipError::Interrupted`]. Prefer this to dropping the future: dropping also discards the
/// upload, through the upload's own drop, but may cancel a write halfway.
pub async fn zip_frames_until<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    frames: &FrameList,
    version: &OutputVersion,
    options: &ZipOptions,
    progress: &(dyn Fn(ZipProgress) + Sync),
    shutdown: impl Future<Output = ()>,
) -> Result<ZipSummary, ZipError> {
    let job = JobFrames {
        keys,
        frames,
        version,
        records: &[],
    };
    zip_job_frames(storage, &job, options, progress, shutdown).await
}

/// The frames of a job the zipper archives, and the task records that vouch for them (the
/// frame scan reads only the frames they do not vouch for: [`farm_jobs::scan_frames`]).
struct JobFrames<'a> {
    keys: &'a JobKeys,
    frames: &'a FrameList,
    version: &'a OutputVersion,
    records: &'a [TaskRecord],
}

async fn zip_job_frames<S: Storage>(
    storage: &S,
    job: &JobFrames<'_>,
    options: &ZipOptions,
    progress: &(dyn Fn(ZipProgress) + Sync),
    shutdown: impl Future<Output = ()>,
) -> Result<ZipSummary, ZipError> {
    let (keys, frames) = (job.keys, job.frames);
    options.validate()?;
    let started = Instant::now();
    let mut shutdown = pin!(shutdown);
    let scan = tokio::select! {
        biased;
        () = &mut shutdown => return Err(ZipError::Interrupted),
        scan = scan(storage, job) => scan?,
    };
    if !scan.is_complete() {
        return Err(report_missing(storage, keys, frames, &scan).await);
    }
    if !scan.stale_objects.is_empty() {
        tracing::warn!(
            stale = scan.stale_objects.len(),
            first = %scan.stale_objects[0].key,
            "left out frame objects of another upload or format"
        );
    }
    let ignored = scan.ignored + scan.stale_objects.len();
    let objects = scan.current;
    let mut preview = if options.preview {
        preview::Feed::start(&objects)
    } else {
        preview::Feed::off()
    };
    let mut upload = storage.start_upload(&keys.zip(), PutOptions::content_type(ZIP_CONTENT_TYPE));
    // On the heap: the archive writer's state is some 17 KiB, too much for callers' stacks.
    let streamed = Box::pin(archive::stream_archive(
        storage,
        &mut upload,
        &objects,
        options,
        progress,
        &mut preview,
        shutdown.as_mut(),
    ))
    .await;
    if let Err(error) = streamed {
        abort(upload, &keys.zip()).await;
        return Err(error);
    }
    let archive_bytes = upload
        .finish()
        .await
        .map_err(|source| ZipError::storage("finishing the archive upload", source))?;
    remove_stale(storage, &keys.missing()).await;
    let preview = write_preview(storage, keys, preview, options.preview).await;
    Ok(ZipSummary {
        key: keys.zip(),
        // Every expected frame is in the archive: one file each, or one a view.
        frames: frames.len(),
        ignored,
        frame_bytes: objects.iter().map(|object| object.size).sum(),
        archive_bytes,
        preview,
        elapsed: started.elapsed(),
    })
}

/// Writes the contact sheet the archive's frames made, in one `put` (a reader sees the old
/// sheet or the new one). With the preview off, or no sheet made, removes an older run's sheet,
/// which would show other frames. Best effort: a failure is logged and the archive stands.
async fn write_preview<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    feed: preview::Feed,
    wanted: bool,
) -> Option<String> {
    let key = keys.preview();
    if !wanted {
        remove_stale(storage, &key).await;
        return None;
    }
    let Some(jpeg) = feed.finish().await else {
        remove_stale(storage, &key).await;
        return None;
    };
    let bytes = jpeg.len();
    match storage
        .put(
            &key,
            jpeg.into(),
            &PutOptions::content_type(PREVIEW_CONTENT_TYPE),
        )
        .await
    {
        Ok(()) => {
            tracing::info!(key, bytes, "preview.jpg written");
            Some(key)
        }
        Err(error) => {
            tracing::warn!(key, %error, "could not write preview.jpg");
            None
        }
    }
}

/// Runs the zipper for a validated configuration, logging progress with `tracing`, until done
/// or until `shutdown` completes. The binary calls this with S3 storage and SIGTERM.
pub async fn run<S: Storage>(
    config: &Config,
    storage: &S,
    shutdown: impl Future<Output = ()>,
) -> Result<ZipSummary, ZipError> {
    let log_progress = |progress: ZipProgress| {
        // One line at the start and one per tenth of the frames.
        let tenth = |done: usize| done * 10 / progress.frames_total.max(1);
        let done = progress.frames_done;
        if done == 0 || tenth(done) != tenth(done - 1) {
            tracing::info!(
                frames_done = progress.frames_done,
                frames_total = progress.frames_total,
                bytes_done = progress.bytes_done,
                "zipping"
            );
        }
    };
    let started = jiff::Timestamp::now();
    let mut shutdown = pin!(shutdown);
    // Every task record at the key, read once: they vouch for the frames in the scan, and the
    // job's own make the receipt. Without them every frame is read.
    let records = tokio::select! {
        biased;
        () = &mut shutdown => None,
        read = farm_jobs::tasks::job_records(storage, &config.ticket.keys, None) => Some(read),
    };
    let Some(records) = records else {
        let result = Err(ZipError::Interrupted);
        receipt::finish(storage, config, started, &result, None).await;
        return result;
    };
    let records = records
        .inspect_err(|error| {
            tracing::warn!(%error, "could not read the task records: every frame is read");
        })
        .ok();
    let version = config.ticket.version();
    let job = JobFrames {
        keys: &config.ticket.keys,
        frames: config.ticket.plan.frames(),
        version: &version,
        records: records.as_deref().unwrap_or_default(),
    };
    let result = zip_job_frames(storage, &job, &config.options, &log_progress, shutdown).await;
    receipt::finish(storage, config, started, &result, records).await;
    result
}

async fn scan<S: Storage>(storage: &S, job: &JobFrames<'_>) -> Result<FrameScan, ZipError> {
    let keys = job.keys;
    scan_frames(
        storage,
        keys,
        job.frames.as_slice(),
        job.version,
        job.records,
    )
    .await
    .map_err(|error| match error {
        farm_jobs::ScanError::Storage(source) => {
            ZipError::storage(format!("scanning `{}`", keys.frames_prefix()), source)
        }
        farm_jobs::ScanError::Ambiguous { frame, keys } => ZipError::Ambiguous { frame, keys },
        other => ZipError::config(other.to_string()),
    })
}

/// The `missing.json` document.
#[derive(Debug, serde::Serialize)]
struct MissingReport<'a> {
    /// Every expected frame not rendered for this job, sorted.
    missing: &'a [i32],
    ranges: String,
    expected: usize,
    /// Of those, frames with only an object of another upload or format.
    stale: &'a [i32],
    /// Of those, frames with some of their view files current and these missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing_views: Vec<MissingViews<'a>>,
}

/// A frame of `missing.json` with some of its view files and not these.
#[derive(Debug, serde::Serialize)]
struct MissingViews<'a> {
    frame: i32,
    views: &'a [String],
}

/// Writes `missing.json`, removes a stale archive (it would not hold this job's frames) and
/// returns the [`ZipError::Missing`] to fail with.
async fn report_missing<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    frames: &FrameList,
    scan: &FrameScan,
) -> ZipError {
    let missing = scan.not_current();
    let report = MissingReport {
        missing: &missing,
        ranges: compact(&missing, ", "),
        expected: frames.len(),
        stale: &scan.stale,
        missing_views: scan
            .missing_views
            .iter()
            .map(|(frame, views)| MissingViews {
                frame: *frame,
                views,
            })
            .collect(),
    };
    if let Err(source) = put_json(storage, &keys.missing(), &report).await {
        return ZipError::storage(format!("writing `{}`", keys.missing()), source);
    }
    remove_stale(storage, &keys.zip()).await;
    remove_stale(storage, &keys.preview()).await;
    ZipError::Missing {
        missing,
        views: scan.missing_views_text(),
        stale: scan.stale.len(),
        expected: frames.len(),
        report: keys.missing(),
    }
}

/// Removes an object left by an earlier run. A failure is logged, not fatal: the run's own
/// outcome is what matters.
async fn remove_stale<S: Storage>(storage: &S, key: &str) {
    if let Err(error) = storage.delete(key).await {
        tracing::warn!(key, %error, "could not remove a stale object");
    }
}

/// Discards an unfinished archive upload. A failure is logged: the run already failed, and an
/// upload left open never becomes visible (a bucket lifecycle rule removes it).
async fn abort<U: StreamUpload>(upload: U, key: &str) {
    if let Err(error) = upload.abort().await {
        tracing::warn!(key, %error, "could not abort the archive upload");
    }
}

#[cfg(test)]
mod tests;
