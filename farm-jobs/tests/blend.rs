//! Reading an uploaded `.blend` where it lies (`farm_jobs::blend::read_blend`): a file of
//! several GiB is read with a few ranged reads, and a file replaced while it is read is noticed.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use bytes::Bytes;
use farm_core::storage::{PutOptions, Storage, StorageError};
use farm_io::LocalStorage;
use farm_jobs::blend::{read_blend, MAX_WINDOW};
use farm_testkit::{make_scene, Faulty, MemoryStorage, Op, SceneOptions};

/// Padding blocks put in the file: each holds just under 2 GiB (a block's length is an `i32`).
const PAD_BLOCKS: u64 = 3;
const PAD_LEN: u32 = (2 << 30) - 4096;

/// Writes `big`: `scene` (a plain Blender 3.4 file, 12-byte header, 24-byte block headers) with
/// `PAD_BLOCKS` thumbnail (`TEST`) blocks of `PAD_LEN` zero bytes after the file header, as
/// holes in a sparse file. Blender skips such blocks; so must the reader.
fn pad(scene: &Path, big: &Path) {
    let bytes = std::fs::read(scene).unwrap();
    assert_eq!(
        &bytes[..9],
        b"BLENDER-v",
        "a plain 64-bit little-endian file"
    );
    let mut out = std::fs::File::create(big).unwrap();
    out.write_all(&bytes[..12]).unwrap();
    for _ in 0..PAD_BLOCKS {
        let mut head = Vec::with_capacity(24);
        head.extend_from_slice(b"TEST");
        head.extend_from_slice(&PAD_LEN.to_le_bytes());
        head.extend_from_slice(&0u64.to_le_bytes());
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&head).unwrap();
        out.seek(SeekFrom::Current(i64::from(PAD_LEN))).unwrap();
    }
    out.write_all(&bytes[12..]).unwrap();
}

#[tokio::test]
async fn a_file_of_several_gib_is_read_with_a_few_ranged_reads() {
    let dir = tempfile::tempdir().unwrap();
    let options = SceneOptions {
        start: 3,
        end: 41,
        step: 2,
        ..SceneOptions::default()
    };
    let scene = make_scene(dir.path(), "scene", &options).unwrap();
    let root = dir.path().join("bucket");
    std::fs::create_dir_all(root.join("proj")).unwrap();
    pad(&scene, &root.join("proj/big.blend"));
    std::fs::copy(&scene, root.join("proj/small.blend")).unwrap();

    let storage = Faulty::new(LocalStorage::new(&root));
    let big = storage.head("proj/big.blend").await.unwrap().unwrap();
    assert!(big.size > 6 << 30, "{} bytes", big.size);
    let small = storage.head("proj/small.blend").await.unwrap().unwrap();

    let read_small = read_blend(
        &storage,
        "proj/small.blend",
        small.etag.as_deref().unwrap(),
        small.size,
    )
    .await
    .unwrap()
    .unwrap();
    let before = storage.calls().len();
    let read_big = read_blend(
        &storage,
        "proj/big.blend",
        big.etag.as_deref().unwrap(),
        big.size,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(read_big, read_small);
    let scene = read_big.active_scene().unwrap();
    assert_eq!(
        (scene.frame_start, scene.frame_end, scene.frame_step),
        (3, 41, 2)
    );

    let calls = &storage.calls()[before..];
    assert!(calls.iter().all(|c| c.op == Op::GetRange), "{calls:?}");
    let asked: u64 = calls.iter().filter_map(|c| c.bytes).sum();
    eprintln!(
        "{} bytes read as {} ranges for a file of {} bytes ({} without the padding)",
        asked,
        calls.len(),
        big.size,
        small.size
    );
    assert!(
        asked <= small.size + 2 * MAX_WINDOW,
        "{asked} bytes asked for in {} reads",
        calls.len()
    );
    assert!(calls.len() < 40, "{} reads", calls.len());
}

#[tokio::test]
async fn a_file_replaced_while_it_is_read_is_changed_and_garbage_is_a_reason() {
    let storage = MemoryStorage::new();
    let options = PutOptions::default();
    storage
        .put(
            "a.blend",
            Bytes::from_static(b"not a blend at all"),
            &options,
        )
        .await
        .unwrap();
    let meta = storage.head("a.blend").await.unwrap().unwrap();
    let etag = meta.etag.unwrap();
    let read = read_blend(&storage, "a.blend", &etag, meta.size)
        .await
        .unwrap();
    let reason = read.unwrap_err().to_string();
    assert!(reason.contains("not a .blend"), "{reason}");

    storage
        .put(
            "a.blend",
            Bytes::from_static(b"BLENDER-v342 other"),
            &options,
        )
        .await
        .unwrap();
    let read = read_blend(&storage, "a.blend", &etag, meta.size).await;
    assert!(
        matches!(&read, Err(StorageError::Changed { key, .. }) if key == "a.blend"),
        "{read:?}"
    );
    storage.delete("a.blend").await.unwrap();
    let read = read_blend(&storage, "a.blend", &etag, meta.size).await;
    assert!(
        matches!(&read, Err(StorageError::NotFound { .. })),
        "{read:?}"
    );
}
