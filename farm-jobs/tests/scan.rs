//! The frame scan over a real store (a local folder, which keeps metadata like S3).

use bytes::Bytes;
use farm_core::blender::OutputFormat;
use farm_core::storage::{PutOptions, Storage};
use farm_core::JobKeys;
use farm_io::LocalStorage;
use farm_jobs::{scan_chunk_frames, scan_frames, FrameState, OutputVersion};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nrest";

async fn put(storage: &LocalStorage, key: &str, version: Option<&OutputVersion>) {
    let options = PutOptions {
        content_type: None,
        metadata: version.map(OutputVersion::metadata).unwrap_or_default(),
        ..PutOptions::default()
    };
    storage
        .put(key, Bytes::from_static(PNG), &options)
        .await
        .unwrap();
}

#[tokio::test]
async fn every_expected_frame_is_current_stale_or_missing() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    let keys = JobKeys::new("shots/a.blend");
    let old = OutputVersion::new(Some("\"e1\""), None);
    let new = OutputVersion::new(Some("\"e2\""), None);
    let jpeg = OutputVersion::new(Some("\"e2\""), Some(OutputFormat::Jpeg));

    put(&storage, &keys.frame(1, "png"), Some(&new)).await; // current
    put(&storage, &keys.frame(2, "png"), Some(&old)).await; // older upload
    put(&storage, &keys.frame(3, "jpg"), Some(&jpeg)).await; // other format
    put(&storage, &keys.frame(3, "png"), Some(&old)).await;
    put(&storage, &keys.frame(4, "blend"), None).await; // planted by hand
    put(&storage, &keys.frame(6, "png"), Some(&new)).await; // current
    put(&storage, &keys.frame(6, "jpg"), Some(&jpeg)).await; // format change beside it
    put(&storage, &keys.frame(9, "png"), Some(&new)).await; // not expected

    let few = [1, 2, 3, 4, 5, 6];
    let many: Vec<i32> = (1..=6).chain(10..=30).collect();
    let scans = [
        scan_frames(&storage, &keys, &few, &new, &[]).await.unwrap(),
        scan_chunk_frames(&storage, &keys, &few, &new, &[])
            .await
            .unwrap(),
        scan_chunk_frames(&storage, &keys, &many, &new, &[])
            .await
            .unwrap(),
    ];
    assert_eq!(scans[0].ignored, 1, "frame 9 is not expected");
    // Per-frame listings (a chunk) and one whole listing agree.
    for scan in scans {
        let current: Vec<i32> = scan.current.iter().map(|o| o.frame).collect();
        assert_eq!(current, [1, 6]);
        assert_eq!(scan.current[1].key, keys.frame(6, "png"));
        assert_eq!(scan.stale, [2, 3, 4]);
        assert_eq!(scan.state(4), FrameState::Stale);
        assert_eq!(scan.state(5), FrameState::Missing);
        assert_eq!(scan.state(1), FrameState::Current);
        assert_eq!(scan.stale_objects.len(), 5, "{:?}", scan.stale_objects);
        assert!(scan.missing.starts_with(&[5]));
    }

    // The JPEG re-request of the same upload sees the other side.
    let scan = scan_frames(&storage, &keys, &[1, 3, 6], &jpeg, &[])
        .await
        .unwrap();
    let current: Vec<&str> = scan.current.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(current, [keys.frame(3, "jpg"), keys.frame(6, "jpg")]);
    assert_eq!(scan.stale, [1]);
}

#[tokio::test]
async fn a_multiview_frame_is_current_only_with_every_view_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    let keys = JobKeys::new("shots/stereo.blend");
    let views = farm_core::views::FrameViews::new(&["_L", "_R"]).unwrap();
    let job = OutputVersion {
        views: views.clone(),
        ..OutputVersion::new(Some("\"e2\""), None)
    };
    let old = OutputVersion::new(Some("\"e1\""), None);

    for suffix in ["_L", "_R"] {
        put(&storage, &keys.view_frame(1, suffix, "png"), Some(&job)).await;
    }
    put(&storage, &keys.view_frame(2, "_L", "png"), Some(&job)).await; // right view missing
    put(&storage, &keys.view_frame(3, "_L", "png"), Some(&job)).await;
    put(&storage, &keys.view_frame(3, "_R", "png"), Some(&old)).await; // right view stale
    put(&storage, &keys.frame(4, "png"), Some(&job)).await; // not a view file
    put(&storage, &keys.view_frame(10, "_L", "png"), Some(&job)).await; // not expected

    let frames = [1, 2, 3, 4, 5];
    for scan in [
        scan_frames(&storage, &keys, &frames, &job, &[])
            .await
            .unwrap(),
        scan_chunk_frames(&storage, &keys, &frames, &job, &[])
            .await
            .unwrap(),
    ] {
        let current: Vec<String> = scan.current.iter().map(|o| o.file_name()).collect();
        assert_eq!(current, ["0001_L.png", "0001_R.png"]);
        assert_eq!(scan.missing, [2, 5]);
        assert_eq!(scan.missing_views, [(2, vec!["_R".to_owned()])]);
        assert_eq!(scan.stale, [3, 4]);
    }
    // The same objects for a job of one file a frame: no view file is its frame.
    let single = OutputVersion::new(Some("\"e2\""), None);
    let scan = scan_frames(&storage, &keys, &frames, &single, &[])
        .await
        .unwrap();
    let current: Vec<i32> = scan.current.iter().map(|o| o.frame).collect();
    assert_eq!(current, [4]);
    assert_eq!(scan.stale, [1, 2, 3]);
}
