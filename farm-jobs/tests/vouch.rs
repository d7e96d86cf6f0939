//! The frame scan given the job's task records: frames a record of the job's version vouches
//! for are current without a HEAD; every other case is read (HEAD) as before, and no frame is
//! counted current that the HEAD would not count current for the bytes it holds
//! (RELIABILITY.md, "Frames vouched for by task records").

use std::path::Path;

use farm_core::storage::{PutOptions, Storage};
use farm_core::tasks::{FrameTiming, TaskRecord, UploadedFrame};
use farm_core::JobKeys;
use farm_jobs::{scan_chunk_frames, scan_frames, FrameScan, OutputVersion};
use farm_testkit::{Faulty, MemoryStorage, Op};

type Store = Faulty<MemoryStorage>;

fn keys() -> JobKeys {
    JobKeys::new("shots/a.blend")
}

fn old() -> OutputVersion {
    OutputVersion::new(Some("\"e1\""), None).with_dependencies(Some("00aa11bb22cc33dd"))
}

fn new() -> OutputVersion {
    OutputVersion::new(Some("\"e2\""), None).with_dependencies(Some("00aa11bb22cc33dd"))
}

fn png(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.push(seed);
    bytes
}

/// An attempt of `version` uploading `frames` (frame, bytes) the way the renderer does (the
/// version's metadata on each, `upload_file`), and the record it writes of them.
async fn attempt(
    storage: &Store,
    dir: &Path,
    version: &OutputVersion,
    frames: &[(i32, Vec<u8>)],
) -> TaskRecord {
    let options = PutOptions {
        metadata: version.metadata(),
        ..PutOptions::default()
    };
    let mut timings = Vec::new();
    for (frame, bytes) in frames {
        let path = dir.join(format!("{frame}.png"));
        std::fs::write(&path, bytes).unwrap();
        let key = keys().frame(*frame, "png");
        let etag = storage.upload_file(&key, &path, &options).await.unwrap();
        timings.push(FrameTiming {
            frame: *frame,
            render_seconds: Some(1.0),
            upload_seconds: 0.1,
            object: etag.map(|etag| UploadedFrame {
                key,
                etag,
                size: bytes.len() as u64,
            }),
        });
    }
    TaskRecord {
        frames: timings,
        frame_metadata: Some(version.metadata()),
        ..farm_testkit::render_record(0, version.source_tag.as_deref(), 1.0)
    }
}

/// The scan of frames 1-4 for `version` with `records`, and the HEADs it made.
async fn scan(
    storage: &Store,
    version: &OutputVersion,
    records: &[TaskRecord],
) -> (FrameScan, usize) {
    let heads = || storage.calls().iter().filter(|c| c.op == Op::Head).count();
    let before = heads();
    let scan = scan_frames(storage, &keys(), &[1, 2, 3, 4], version, records)
        .await
        .unwrap();
    (scan, heads() - before)
}

fn current(scan: &FrameScan) -> Vec<i32> {
    scan.current.iter().map(|o| o.frame).collect()
}

#[tokio::test]
async fn vouched_frames_need_no_head_and_unvouched_ones_one_each() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(MemoryStorage::new());
    let frames: Vec<(i32, Vec<u8>)> = (1..=3).map(|f| (f, png(f as u8))).collect();
    let record = attempt(&storage, dir.path(), &new(), &frames).await;
    // Frame 4 was uploaded by an attempt whose record was never written (killed).
    attempt(&storage, dir.path(), &new(), &[(4, png(4))]).await;

    let (with, heads) = scan(&storage, &new(), std::slice::from_ref(&record)).await;
    assert_eq!(current(&with), [1, 2, 3, 4]);
    assert_eq!(heads, 1, "only frame 4, which no record names");
    let (without, heads) = scan(&storage, &new(), &[]).await;
    assert_eq!(
        without, with,
        "the records change what is read, not the verdict"
    );
    assert_eq!(heads, 4);

    // A chunk's scan follows the same rule.
    let before = storage.calls().len();
    let chunk = scan_chunk_frames(&storage, &keys(), &[2], &new(), &[record])
        .await
        .unwrap();
    assert_eq!(current(&chunk), [2]);
    assert!(storage.calls()[before..].iter().all(|c| c.op != Op::Head));
}

/// A record written before records named their frames vouches for nothing.
#[tokio::test]
async fn an_old_record_vouches_for_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(MemoryStorage::new());
    let mut record = attempt(&storage, dir.path(), &new(), &[(1, png(1)), (2, png(2))]).await;
    let json = serde_json::json!({
        "task": "render", "index": 0, "attempt": 1, "source_etag": "\"e2\"",
        "started": "2026-12-07T00:00:00Z", "ended": "2026-12-07T00:01:00Z",
        "exit_code": 0, "cpus": 2,
        "frames": [{"frame": 1, "upload_seconds": 0.1}, {"frame": 2, "upload_seconds": 0.1}],
    });
    let old_record: TaskRecord = serde_json::from_value(json).unwrap();
    let (scan_old, heads) = scan(&storage, &new(), &[old_record]).await;
    assert_eq!((current(&scan_old), heads), (vec![1, 2], 2));
    // Frames named but no version recorded: the same.
    record.frame_metadata = None;
    let (_, heads) = scan(&storage, &new(), &[record]).await;
    assert_eq!(heads, 2);
}

/// A late attempt of the older version overwrites a frame of the newer one with other bytes:
/// the listing's ETag is no longer the one the newer record names, so the frame is read, and
/// it is stale, with or without the late attempt's record.
#[tokio::test]
async fn a_stale_attempt_uploading_after_a_newer_one_is_read_and_stale() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(MemoryStorage::new());
    let frames = [(1, png(1)), (2, png(2))];
    let newer = attempt(&storage, dir.path(), &new(), &frames).await;
    let late = attempt(&storage, dir.path(), &old(), &[(2, png(20))]).await;
    for records in [vec![newer.clone(), late], vec![newer]] {
        let (scan, heads) = scan(&storage, &new(), &records).await;
        assert_eq!(current(&scan), [1]);
        assert_eq!(scan.stale, [2]);
        assert_eq!(heads, 1, "frame 2 only");
    }
}

/// The same bytes uploaded again by an attempt of another version have the same ETag. With
/// both records at the key the object's metadata is not known from them: it is read, and
/// stale when the late upload's metadata won. Without the late record (an attempt killed
/// between its upload and its record) the frame counts current: its bytes are exactly the
/// bytes the current version's attempt uploaded, which is what the archive takes.
#[tokio::test]
async fn a_frame_re_uploaded_with_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(MemoryStorage::new());
    let newer = attempt(&storage, dir.path(), &new(), &[(1, png(1))]).await;
    let late = attempt(&storage, dir.path(), &old(), &[(1, png(1))]).await;
    assert_eq!(
        newer.frames[0].object.as_ref().map(|o| &o.etag),
        late.frames[0].object.as_ref().map(|o| &o.etag),
        "identical bytes, one ETag"
    );
    let (scan_both, heads) = scan(&storage, &new(), &[newer.clone(), late]).await;
    assert_eq!((scan_both.stale.as_slice(), heads), ([1].as_slice(), 1));

    let (scan_newer, heads) = scan(&storage, &new(), std::slice::from_ref(&newer)).await;
    assert_eq!((current(&scan_newer), heads), (vec![1], 0));
    let stored = storage.get(&keys().frame(1, "png")).await.unwrap();
    assert_eq!(
        stored.as_ref(),
        png(1),
        "the bytes the newer attempt uploaded"
    );

    // The same version uploading the same bytes again (a retried attempt) agrees with itself.
    let retried = attempt(&storage, dir.path(), &new(), &[(1, png(1))]).await;
    let (scan_retried, heads) = scan(&storage, &new(), &[newer, retried]).await;
    assert_eq!((current(&scan_retried), heads), (vec![1], 0));
}

/// A record's frame overwritten later (by hand, another tool): the listing's ETag differs
/// from the record's, so the object is read, and judged by its own metadata.
#[tokio::test]
async fn a_recorded_frame_overwritten_later_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(MemoryStorage::new());
    let record = attempt(&storage, dir.path(), &new(), &[(1, png(1)), (2, png(2))]).await;
    let planted = dir.path().join("planted.png");
    std::fs::write(&planted, png(9)).unwrap();
    storage
        .upload_file(&keys().frame(1, "png"), &planted, &PutOptions::default())
        .await
        .unwrap();
    let (scan, heads) = scan(&storage, &new(), &[record]).await;
    assert_eq!(current(&scan), [2]);
    assert_eq!(scan.stale, [1]);
    assert_eq!(heads, 1);
}

/// A record of another version vouches for nothing of this one, though it names the objects.
#[tokio::test]
async fn a_record_of_another_version_vouches_for_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(MemoryStorage::new());
    let record = attempt(&storage, dir.path(), &old(), &[(1, png(1))]).await;
    let (scan, heads) = scan(&storage, &new(), &[record]).await;
    assert_eq!((scan.stale.as_slice(), heads), ([1].as_slice(), 1));
}
