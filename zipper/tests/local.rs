//! The zipper over a local folder, as `farm render` runs it.

mod common;

use std::sync::Mutex;

use bytes::Bytes;
use farm_core::frames::DEFAULT_MAX_FRAMES;
use farm_core::storage::Storage;
use farm_core::{FrameList, JobKeys};
use farm_io::LocalStorage;
use farm_jobs::OutputVersion;
use zipper::{zip_frames, ZipError, ZipOptions, ZipProgress};

use common::{check_archive, check_extracted, expected_entries, frame_bytes};

fn write_frames(root: &std::path::Path, frames: &[i32], len: usize) -> Vec<(i32, Bytes)> {
    std::fs::create_dir_all(root.join("frames")).expect("frames folder");
    frames
        .iter()
        .map(|&frame| {
            let body = frame_bytes(frame, len);
            let name = farm_core::layout::frame_file_name(frame, "png");
            std::fs::write(root.join("frames").join(name), &body).expect("frame");
            (frame, body)
        })
        .collect()
}

#[tokio::test]
async fn a_local_output_folder_zips_into_frames_zip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let frames = write_frames(dir.path(), &[-1, 0, 1, 2, 3], 300_000);
    write_frames(dir.path(), &[4], 10);
    let storage = LocalStorage::new(dir.path());
    let keys = JobKeys::root();
    let list = FrameList::parse("-1-3", DEFAULT_MAX_FRAMES).expect("list");
    let seen = Mutex::new(Vec::new());
    let progress = |p: ZipProgress| seen.lock().expect("lock").push(p.frames_done);

    let summary = zip_frames(
        &storage,
        &keys,
        &list,
        &OutputVersion::default(),
        &ZipOptions::default(),
        &progress,
    )
    .await
    .expect("zipped");
    assert_eq!((summary.frames, summary.ignored), (5, 1));
    assert_eq!(*seen.lock().expect("lock"), [0, 1, 2, 3, 4, 5]);
    let archive = dir.path().join("frames.zip");
    let expected = expected_entries(&frames);
    check_archive(&archive, &expected);
    check_extracted(&archive, &expected);
    assert!(storage
        .open_uploads("")
        .await
        .expect("open uploads")
        .is_empty());
}

#[tokio::test]
async fn missing_local_frames_leave_missing_json_and_no_archive() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_frames(dir.path(), &[1, 3], 100);
    let storage = LocalStorage::new(dir.path());
    let list = FrameList::parse("1-3", DEFAULT_MAX_FRAMES).expect("list");
    let error = zip_frames(
        &storage,
        &JobKeys::root(),
        &list,
        &OutputVersion::default(),
        &ZipOptions::default(),
        &|_| {},
    )
    .await
    .expect_err("frame 2 is missing");
    assert!(
        matches!(error, ZipError::Missing { ref missing, .. } if missing == &[2]),
        "{error}"
    );
    assert!(!dir.path().join("frames.zip").exists());
    let report = std::fs::read_to_string(dir.path().join("missing.json")).expect("missing.json");
    assert!(report.contains("\"ranges\": \"2\""), "{report}");
}
