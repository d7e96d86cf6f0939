//! The zipper archives only the current frames of its own job (issue 12): never a frame of an
//! older upload, of another format, or a file planted under `frames/`.

use bytes::Bytes;
use farm_core::blender::OutputFormat;
use farm_core::frames::DEFAULT_MAX_FRAMES;
use farm_core::storage::{PutOptions, Storage};
use farm_core::{FrameList, JobKeys};
use farm_io::LocalStorage;
use farm_jobs::OutputVersion;
use zipper::{zip_frames, ZipError, ZipOptions};

fn png(tag: u8) -> Bytes {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend([tag; 32]);
    Bytes::from(bytes)
}

async fn put(storage: &LocalStorage, key: &str, body: Bytes, version: Option<&OutputVersion>) {
    let options = PutOptions {
        content_type: None,
        metadata: version.map(OutputVersion::metadata).unwrap_or_default(),
        ..PutOptions::default()
    };
    storage.put(key, body, &options).await.unwrap();
}

async fn zip(
    storage: &LocalStorage,
    keys: &JobKeys,
    frames: &str,
    version: &OutputVersion,
) -> Result<zipper::ZipSummary, ZipError> {
    let frames = FrameList::parse(frames, DEFAULT_MAX_FRAMES).unwrap();
    zip_frames(
        storage,
        keys,
        &frames,
        version,
        &ZipOptions::default(),
        &|_| {},
    )
    .await
}

/// Names and contents of the archive's entries.
fn entries(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let out = std::process::Command::new("unzip")
        .arg("-Z1")
        .arg(path)
        .output()
        .expect("unzip is installed (scripts/setup.sh)");
    let names = String::from_utf8(out.stdout).unwrap();
    names
        .lines()
        .map(|name| {
            let data = std::process::Command::new("unzip")
                .args(["-p"])
                .arg(path)
                .arg(name)
                .output()
                .unwrap()
                .stdout;
            (name.to_owned(), data)
        })
        .collect()
}

#[tokio::test]
async fn a_format_change_then_zip_archives_the_new_format_only() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    let keys = JobKeys::new("x.blend");
    let png_job = OutputVersion::new(Some("\"e1\""), None);
    let jpeg_job = OutputVersion::new(Some("\"e1\""), Some(OutputFormat::Jpeg));
    for frame in 1..=2 {
        put(&storage, &keys.frame(frame, "png"), png(1), Some(&png_job)).await;
        let jpg = Bytes::from_static(b"\xff\xd8\xff\xe0jpeg");
        put(&storage, &keys.frame(frame, "jpg"), jpg, Some(&jpeg_job)).await;
    }
    // Before: "frame 1 is present more than once", exit 3, for good.
    let summary = zip(&storage, &keys, "1-2", &jpeg_job).await.unwrap();
    assert_eq!((summary.frames, summary.ignored), (2, 2));
    let names: Vec<String> = entries(&dir.path().join("x.blend/frames.zip"))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["0001.jpg", "0002.jpg"]);
}

#[tokio::test]
async fn a_planted_blend_under_frames_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    let keys = JobKeys::new("x.blend");
    let job = OutputVersion::new(Some("\"e1\""), None);
    put(&storage, &keys.frame(1, "png"), png(1), Some(&job)).await;
    put(&storage, "x.blend/frames/0001.blend", png(9), None).await;
    let summary = zip(&storage, &keys, "1", &job).await.unwrap();
    assert_eq!(summary.frames, 1);
    let got = entries(&dir.path().join("x.blend/frames.zip"));
    assert_eq!(got, [("0001.png".to_owned(), png(1).to_vec())]);
}

#[tokio::test]
async fn a_frame_of_an_older_upload_is_never_archived() {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path());
    let keys = JobKeys::new("x.blend");
    let old = OutputVersion::new(Some("\"e1\""), None);
    let new = OutputVersion::new(Some("\"e2\""), None);
    put(&storage, &keys.frame(1, "png"), png(2), Some(&new)).await;
    // The old job's late child overwrote frame 2 after the re-upload's job rendered it.
    put(&storage, &keys.frame(2, "png"), png(1), Some(&old)).await;
    let error = zip(&storage, &keys, "1-2", &new).await.unwrap_err();
    match &error {
        ZipError::Missing { missing, stale, .. } => {
            assert_eq!(missing, &[2]);
            assert_eq!(*stale, 1);
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("another upload"), "{error}");
    assert!(!dir.path().join("x.blend/frames.zip").exists());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("x.blend/missing.json")).unwrap())
            .unwrap();
    assert_eq!(report["stale"], serde_json::json!([2]));
}
