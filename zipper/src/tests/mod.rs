//! Unit tests of the pipeline against the test kit's in-memory store, with failures injected
//! by its `Faulty` wrapper.

// The in-memory reader is deprecated in favour of `read1`, which needs a seekable buffered
// reader; for reading back small archives in tests the old one is simpler.
#![allow(deprecated)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_zip::base::read::mem::ZipFileReader;
use async_zip::Compression;
use bytes::Bytes;
use farm_core::exit::FailureClass;
use farm_core::frames::DEFAULT_MAX_FRAMES;
use farm_core::layout::frame_file_name;
use farm_testkit::{Fault, Faulty, MemoryStorage, Op};
use tokio::sync::Notify;

use super::*;

/// The in-memory store, wrapped so that a test can inject failures and delays.
type Store = Faulty<MemoryStorage>;

fn store() -> Store {
    Faulty::new(MemoryStorage::new())
}

/// Uploads started and neither finished nor aborted.
async fn open_uploads(storage: &Store) -> usize {
    storage.inner().open_uploads("").await.unwrap().len()
}

fn list(spec: &str) -> FrameList {
    FrameList::parse(spec, DEFAULT_MAX_FRAMES).unwrap()
}

/// Deterministic bytes that differ per frame.
fn frame_bytes(frame: i32, len: usize) -> Bytes {
    let mut state = (frame as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn store_frames(storage: &Store, keys: &JobKeys, frames: &[i32], len: usize) {
    for &frame in frames {
        storage
            .inner()
            .insert(&keys.frame(frame, "png"), frame_bytes(frame, len));
    }
}

fn no_progress(_: ZipProgress) {}

/// The archive's entries: name, compression and content (CRC checked).
async fn entries(archive: Bytes) -> Vec<(String, Compression, Vec<u8>)> {
    let reader = ZipFileReader::new(archive.to_vec()).await.unwrap();
    let mut out = Vec::new();
    for (index, entry) in reader.file().entries().iter().enumerate() {
        let name = entry.filename().as_str().unwrap().to_owned();
        let compression = entry.compression();
        let mut data = Vec::new();
        let mut entry_reader = reader.reader_with_entry(index).await.unwrap();
        entry_reader.read_to_end_checked(&mut data).await.unwrap();
        out.push((name, compression, data));
    }
    out
}

async fn zip(storage: &Store, keys: &JobKeys, frames: &FrameList) -> Result<ZipSummary, ZipError> {
    zip_frames(
        storage,
        keys,
        frames,
        &OutputVersion::default(),
        &ZipOptions::default(),
        &no_progress,
    )
    .await
}

#[tokio::test]
async fn frames_are_stored_in_frame_order_with_their_names() {
    let storage = store();
    let keys = JobKeys::new("shots/a b.blend");
    let frames = [-2, 1, 7, 10_000];
    store_frames(&storage, &keys, &frames, 3000);
    let summary = zip(&storage, &keys, &list("-2 1 7 10000")).await.unwrap();

    let archive = storage.inner().body(&keys.zip()).unwrap();
    assert_eq!(summary.archive_bytes, archive.len() as u64);
    assert_eq!((summary.frames, summary.frame_bytes), (4, 12_000));
    assert_eq!(
        storage
            .inner()
            .object(&keys.zip())
            .and_then(|o| o.content_type)
            .as_deref(),
        Some(ZIP_CONTENT_TYPE)
    );
    let got = entries(archive).await;
    let names: Vec<&str> = got.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(names, ["-0002.png", "0001.png", "0007.png", "10000.png"]);
    for ((_, compression, data), frame) in got.iter().zip(frames) {
        assert_eq!(*compression, Compression::Stored);
        assert_eq!(data[..], frame_bytes(frame, 3000)[..]);
    }
    assert_eq!(open_uploads(&storage).await, 0);
}

#[tokio::test]
async fn missing_frames_write_a_report_and_no_archive() {
    let storage = store();
    let keys = JobKeys::new("k.blend");
    store_frames(&storage, &keys, &[1, 4, 6], 10);
    storage
        .inner()
        .insert(&keys.zip(), "an archive of an earlier run");

    let error = zip(&storage, &keys, &list("1-7")).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("4 of 7 expected frames are missing: 2-3, 5, 7;"),
        "{error}"
    );
    assert_eq!(error.class(), FailureClass::BadInput);
    assert_eq!(
        storage.inner().body(&keys.zip()),
        None,
        "a stale archive is removed"
    );
    assert_eq!(open_uploads(&storage).await, 0);
    let report: serde_json::Value =
        serde_json::from_slice(&storage.inner().body(&keys.missing()).unwrap()).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"missing": [2, 3, 5, 7], "ranges": "2-3, 5, 7", "expected": 7, "stale": []})
    );
}

#[tokio::test]
async fn a_complete_run_removes_the_missing_report_and_replaces_the_archive() {
    let storage = store();
    let keys = JobKeys::root();
    store_frames(&storage, &keys, &[1, 2], 10);
    assert!(zip(&storage, &keys, &list("1-3")).await.is_err());
    assert!(storage.inner().body(&keys.missing()).is_some());

    store_frames(&storage, &keys, &[3], 10);
    zip(&storage, &keys, &list("1-3")).await.unwrap();
    assert_eq!(storage.inner().body(&keys.missing()), None);
    assert_eq!(
        entries(storage.inner().body(&keys.zip()).unwrap())
            .await
            .len(),
        3
    );

    storage.inner().insert(&keys.frame(2, "png"), "re-rendered");
    zip(&storage, &keys, &list("1-3")).await.unwrap();
    let got = entries(storage.inner().body(&keys.zip()).unwrap()).await;
    assert_eq!(got[1].2, b"re-rendered");
}

#[tokio::test]
async fn stale_frames_are_left_out() {
    let storage = store();
    let keys = JobKeys::new("k.blend");
    store_frames(&storage, &keys, &[1, 2, 3, 4], 10);
    let summary = zip(&storage, &keys, &list("1-2")).await.unwrap();
    assert_eq!((summary.frames, summary.ignored), (2, 2));
    let got = entries(storage.inner().body(&keys.zip()).unwrap()).await;
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn a_frame_with_two_extensions_fails_before_uploading() {
    let storage = store();
    let keys = JobKeys::new("k.blend");
    store_frames(&storage, &keys, &[1, 2], 10);
    storage.inner().insert(&keys.frame(2, "exr"), "x");
    let error = zip(&storage, &keys, &list("1-2")).await.unwrap_err();
    assert!(
        matches!(error, ZipError::Ambiguous { frame: 2, .. }),
        "{error}"
    );
    assert_eq!(error.class(), FailureClass::BadInput);
    assert_eq!(storage.inner().body(&keys.zip()), None);
}

#[tokio::test]
async fn a_failed_download_aborts_the_upload() {
    let storage = store();
    let keys = JobKeys::new("k.blend");
    store_frames(&storage, &keys, &(1..=50).collect::<Vec<_>>(), 100_000);
    storage.inject(Fault::on_any(Op::READS).key(&keys.frame(40, "png")));
    let error = zip(&storage, &keys, &list("1-50")).await.unwrap_err();
    assert!(error.to_string().contains("frame 40"), "{error}");
    assert_eq!(error.class(), FailureClass::Transient);
    assert_eq!(storage.inner().body(&keys.zip()), None);
    assert_eq!(open_uploads(&storage).await, 0);
}

#[tokio::test]
async fn a_failed_upload_write_aborts_the_upload() {
    let storage = store();
    let keys = JobKeys::new("k.blend");
    store_frames(&storage, &keys, &(1..=20).collect::<Vec<_>>(), 1_000_000);
    storage.inject(Fault::on(Op::UploadWrite).after_bytes(5_000_000));
    let error = zip(&storage, &keys, &list("1-20")).await.unwrap_err();
    assert!(
        error.to_string().starts_with("uploading the archive"),
        "{error}"
    );
    assert_eq!(error.class(), FailureClass::Transient);
    assert_eq!(storage.inner().body(&keys.zip()), None);
    assert_eq!(open_uploads(&storage).await, 0);
}

#[tokio::test]
async fn shutdown_midway_aborts_the_upload() {
    let storage = store();
    let keys = JobKeys::new("k.blend");
    store_frames(&storage, &keys, &(1..=30).collect::<Vec<_>>(), 10_000);
    storage.inject(Fault::on_any(Op::READS).delay(Duration::from_millis(5)));
    let stop = Notify::new();
    let seen = AtomicUsize::new(0);
    let progress = |p: ZipProgress| {
        seen.store(p.frames_done, Ordering::SeqCst);
        if p.frames_done == 10 {
            stop.notify_one();
        }
    };
    let error = zip_frames_until(
        &storage,
        &keys,
        &list("1-30"),
        &OutputVersion::default(),
        &ZipOptions::default(),
        &progress,
        stop.notified(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, ZipError::Interrupted), "{error}");
    assert_eq!(error.exit_code(), 143);
    assert!(seen.load(Ordering::SeqCst) < 30);
    assert_eq!(storage.inner().body(&keys.zip()), None);
    assert_eq!(open_uploads(&storage).await, 0);
}

#[tokio::test]
async fn dropping_the_run_discards_the_upload() {
    let storage = store();
    let keys = JobKeys::new("k.blend");
    store_frames(&storage, &keys, &(1..=30).collect::<Vec<_>>(), 10_000);
    storage.inject(Fault::on_any(Op::READS).delay(Duration::from_millis(200)));
    let frames = list("1-30");
    let run = zip(&storage, &keys, &frames);
    assert!(tokio::time::timeout(Duration::from_millis(100), run)
        .await
        .is_err());
    assert_eq!(storage.inner().body(&keys.zip()), None);
    assert_eq!(open_uploads(&storage).await, 0);
}

#[tokio::test]
async fn progress_reaches_the_total_and_pieces_stay_small() {
    let storage = store();
    let keys = JobKeys::root();
    store_frames(&storage, &keys, &(1..=12).collect::<Vec<_>>(), 700_000);
    let last = Arc::new(std::sync::Mutex::new(None));
    let progress = {
        let last = Arc::clone(&last);
        move |p: ZipProgress| {
            *last.lock().unwrap() = Some(p);
        }
    };
    let options = ZipOptions {
        chunk_bytes: 256 * 1024,
        ..ZipOptions::default()
    };
    zip_frames(
        &storage,
        &keys,
        &list("1-12"),
        &OutputVersion::default(),
        &options,
        &progress,
    )
    .await
    .unwrap();
    let last = last.lock().unwrap().unwrap();
    assert_eq!((last.frames_done, last.frames_total), (12, 12));
    assert_eq!(last.bytes_done, 12 * 700_000);
    assert!(storage.inner().largest_write() <= 256 * 1024);
}

#[tokio::test]
async fn more_than_65535_entries_make_a_zip64_archive() {
    let storage = store();
    let keys = JobKeys::root();
    let count = 70_000;
    store_frames(&storage, &keys, &(1..=count).collect::<Vec<_>>(), 3);
    let options = ZipOptions {
        max_prefetch_frames: 64,
        ..ZipOptions::default()
    };
    zip_frames(
        &storage,
        &keys,
        &list("1-70000"),
        &OutputVersion::default(),
        &options,
        &no_progress,
    )
    .await
    .unwrap();
    let archive = storage.inner().body(&keys.zip()).unwrap();
    let reader = ZipFileReader::new(archive.to_vec()).await.unwrap();
    assert!(reader.file().zip64());
    let entries = reader.file().entries();
    assert_eq!(entries.len(), count as usize);
    assert_eq!(
        entries[69_999].filename().as_str().unwrap(),
        frame_file_name(70_000, "png")
    );
}

#[test]
fn the_window_is_bounded_by_bytes_and_frames() {
    let options = ZipOptions {
        prefetch_bytes: 16 << 20,
        max_prefetch_frames: 8,
        chunk_bytes: 1,
        preview: false,
    };
    assert_eq!(options.window_for([1 << 20, 1 << 20]), 8);
    assert_eq!(options.window_for([1 << 20, 4 << 20]), 4);
    assert_eq!(options.window_for([100 << 20]), 1);
    assert_eq!(options.window_for([]), 8);
    assert_eq!(options.window_for([0]), 8);
}

#[tokio::test]
async fn a_zero_chunk_is_a_usage_error() {
    let storage = store();
    let options = ZipOptions {
        chunk_bytes: 0,
        ..ZipOptions::default()
    };
    let error = zip_frames(
        &storage,
        &JobKeys::root(),
        &list("1"),
        &OutputVersion::default(),
        &options,
        &no_progress,
    )
    .await
    .unwrap_err();
    assert_eq!(error.class(), FailureClass::Usage);
}
