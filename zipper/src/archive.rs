//! The streaming pipeline: frames are downloaded a bounded window ahead, written in frame order
//! as STORED entries by `async_zip`, and the archive bytes are pumped into a [`StreamUpload`].
//!
//! ```text
//! download (window) --mpsc(1)--> zip writer --duplex pipe--> pump --> upload.write
//!                                    ^
//!        frames larger than the window: Storage::get_stream, chunk by chunk
//! ```
//!
//! A frame of at most [`ZipOptions::prefetch_bytes`] is downloaded whole, ahead of its turn, and
//! written with its size and CRC in its local header. A larger one (a multilayer EXR) is never
//! held: when its turn comes the writer streams it from storage into its entry, which then
//! carries its CRC and sizes in a data descriptor after the data (and a Zip64 field), as zip
//! tools expect of streamed entries. Memory stays bounded by the window, whatever a frame's size.
//!
//! The three stages run concurrently in one task (`try_join!`), so a slow upload never stalls
//! the downloads already in flight, and nothing needs `'static` borrows. None of the stages
//! finishes the upload: the caller does, only after all three succeeded.

use std::future::Future;
use std::io;
use std::pin::Pin;

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTime, ZipDateTimeBuilder, ZipEntryBuilder};
use bytes::{Bytes, BytesMut};
use farm_core::storage::{Storage, StreamUpload};
use futures::{stream, AsyncWriteExt as _, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::error::ZipError;
use crate::preview::Feed;
use crate::{ZipOptions, ZipProgress};
use farm_jobs::FrameObject;

/// `-rw-r--r--`, regular file: what `unzip` gives extracted frames.
const FILE_MODE: u16 = 0o100_644;

/// Streams `objects` into `upload` as a zip archive and returns how many bytes were written.
/// The sampled frames' bytes also go to `preview` as they are written.
/// On error, or [`ZipError::Interrupted`] once `shutdown` completes, the upload is left
/// unfinished for the caller to abort.
pub(crate) async fn stream_archive<S: Storage>(
    storage: &S,
    upload: &mut S::Upload,
    objects: &[FrameObject],
    options: &ZipOptions,
    progress: &(dyn Fn(ZipProgress) + Sync),
    preview: &mut Feed,
    shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<u64, ZipError> {
    let (zip_end, pump_end) = tokio::io::duplex(options.chunk_bytes);
    let (frames_tx, frames_rx) = mpsc::channel(1);
    let whole_limit = options.prefetch_bytes;
    let window = options.window_for(
        objects
            .iter()
            .map(|object| object.size)
            .filter(|&size| size <= whole_limit),
    );
    let ((), (), written) = tokio::try_join!(
        download(storage, objects, whole_limit, window, frames_tx),
        write_zip(storage, zip_end, frames_rx, objects, progress, preview),
        pump(pump_end, upload, options.chunk_bytes, shutdown),
    )?;
    Ok(written)
}

/// A frame's bytes as the downloads hand them to the writer.
enum Body {
    /// Downloaded ahead.
    Whole(Bytes),
    /// Too large to hold: the writer streams it from storage.
    Streamed,
}

/// Downloads the frames of at most `whole_limit` bytes in order, at most `window` at once, and
/// hands them to the writer; larger frames are passed on as [`Body::Streamed`].
async fn download<S: Storage>(
    storage: &S,
    objects: &[FrameObject],
    whole_limit: u64,
    window: usize,
    frames: mpsc::Sender<Body>,
) -> Result<(), ZipError> {
    let mut bodies = stream::iter(objects)
        .map(|object| async move {
            if object.size > whole_limit {
                Ok(Body::Streamed)
            } else {
                fetch(storage, object).await.map(Body::Whole)
            }
        })
        .buffered(window);
    while let Some(body) = bodies.next().await {
        if frames.send(body?).await.is_err() {
            // The writer stopped; its own result says why.
            break;
        }
    }
    Ok(())
}

async fn fetch<S: Storage>(storage: &S, object: &FrameObject) -> Result<Bytes, ZipError> {
    storage
        .get(&object.key)
        .await
        .map_err(|source| ZipError::storage(format!("downloading frame {}", object.frame), source))
}

/// Writes one STORED entry per frame, in frame order, then the central directory. `async_zip`
/// switches to Zip64 by itself when an offset or size passes 4 GiB or entries pass 65,535.
async fn write_zip<S: Storage>(
    storage: &S,
    out: DuplexStream,
    mut frames: mpsc::Receiver<Body>,
    objects: &[FrameObject],
    progress: &(dyn Fn(ZipProgress) + Sync),
    preview: &mut Feed,
) -> Result<(), ZipError> {
    let mut zip = ZipFileWriter::with_tokio(out);
    let modified = now_dos_time();
    let mut report = ZipProgress {
        frames_done: 0,
        frames_total: objects.len(),
        bytes_done: 0,
        bytes_total: objects.iter().map(|object| object.size).sum(),
    };
    progress(report);
    for (position, object) in objects.iter().enumerate() {
        let body = frames.recv().await.ok_or_else(|| ZipError::Archive {
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the frame downloads ended early",
            ),
        })?;
        let entry = ZipEntryBuilder::new(object.file_name().into(), Compression::Stored)
            .last_modification_date(modified)
            .unix_permissions(FILE_MODE);
        preview.begin(position, object).await;
        let written = match body {
            Body::Whole(data) => {
                preview.piece(&data).await;
                zip.write_entry_whole(entry, &data)
                    .await
                    .map_err(ZipError::archive)?;
                data.len() as u64
            }
            Body::Streamed => {
                let mut chunks = storage.get_stream(&object.key).await.map_err(|source| {
                    ZipError::storage(format!("downloading frame {}", object.frame), source)
                })?;
                let mut writer = zip
                    .write_entry_stream(entry)
                    .await
                    .map_err(ZipError::archive)?;
                let mut written = 0;
                while let Some(chunk) = chunks.try_next().await.map_err(|source| {
                    ZipError::storage(format!("downloading frame {}", object.frame), source)
                })? {
                    preview.piece(&chunk).await;
                    writer
                        .write_all(&chunk)
                        .await
                        .map_err(|source| ZipError::Archive { source })?;
                    written += chunk.len() as u64;
                }
                writer.close().await.map_err(ZipError::archive)?;
                written
            }
        };
        preview.end().await;
        report.frames_done += 1;
        report.bytes_done += written;
        progress(report);
    }
    let mut out = zip.close().await.map_err(ZipError::archive)?.into_inner();
    out.shutdown()
        .await
        .map_err(|source| ZipError::Archive { source })
}

/// Reads the archive from the pipe in `chunk`-sized pieces and appends them to the upload.
/// Returns the byte count at end of stream; reaching it says nothing about success.
///
/// `shutdown` is only watched between writes: a write cancelled halfway could drop the id of a
/// multipart upload it was creating, leaving an upload nobody can abort.
async fn pump<U: StreamUpload>(
    mut from: DuplexStream,
    upload: &mut U,
    chunk: usize,
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> Result<u64, ZipError> {
    let mut written = 0;
    loop {
        let (piece, end) = tokio::select! {
            biased;
            () = &mut shutdown => return Err(ZipError::Interrupted),
            piece = read_piece(&mut from, chunk) => piece?,
        };
        if !piece.is_empty() {
            written += piece.len() as u64;
            upload
                .write(piece)
                .await
                .map_err(|source| ZipError::storage("uploading the archive", source))?;
        }
        if end {
            return Ok(written);
        }
    }
}

/// Fills up to `chunk` bytes; `true` when the pipe reached its end.
async fn read_piece(from: &mut DuplexStream, chunk: usize) -> Result<(Bytes, bool), ZipError> {
    let mut piece = BytesMut::with_capacity(chunk);
    while piece.len() < chunk {
        let read = from
            .read_buf(&mut piece)
            .await
            .map_err(|source| ZipError::Archive { source })?;
        if read == 0 {
            return Ok((piece.freeze(), true));
        }
    }
    Ok((piece.freeze(), false))
}

/// The current UTC time as an MS-DOS date and time, for the entries' modification date.
fn now_dos_time() -> ZipDateTime {
    let now = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now());
    ZipDateTimeBuilder::new()
        .year(i32::from(now.year()))
        .month(now.month().unsigned_abs().into())
        .day(now.day().unsigned_abs().into())
        .hour(now.hour().unsigned_abs().into())
        .minute(now.minute().unsigned_abs().into())
        .second(now.second().unsigned_abs().into())
        .build()
}
