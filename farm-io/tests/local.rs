//! What only a local folder can get wrong: keys reaching outside the root, partial files and
//! sidecars showing up as objects, files changed behind the store's back.

use std::path::Path;

use bytes::Bytes;
use farm_core::storage::{Metadata, PutOptions, StorageError};
use farm_core::{Storage, StreamUpload};
use farm_io::LocalStorage;

const BAD_KEYS: &[&str] = &[
    "",
    "/etc/passwd",
    "../outside",
    "a/../../outside",
    "a/./b",
    "a//b",
    "trailing/",
    "back\\slash",
    "nul\0byte",
    ".farm-meta/sidecar.json",
];

fn store() -> (tempfile::TempDir, LocalStorage) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let storage = LocalStorage::new(dir.path().join("store"));
    (dir, storage)
}

fn invalid<T: std::fmt::Debug>(result: &Result<T, StorageError>, key: &str, operation: &str) {
    assert!(
        matches!(result, Err(StorageError::InvalidKey { .. })),
        "{operation} {key:?}: {result:?}"
    );
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn keys_reaching_outside_the_root_are_refused_by_every_operation() {
    let (dir, s) = store();
    let source = dir.path().join("source.bin");
    std::fs::write(&source, b"data").unwrap();
    let dest = dir.path().join("dest.bin");
    let body = || Bytes::from_static(b"x");
    let options = PutOptions::default();
    for key in BAD_KEYS {
        invalid(&s.head(key).await, key, "head");
        invalid(&s.get(key).await, key, "get");
        invalid(&s.get_range(key, 0, 4, None).await, key, "get_range");
        invalid(&s.download(key, &dest, None).await, key, "download");
        invalid(&s.put(key, body(), &options).await, key, "put");
        invalid(
            &s.upload_file(key, &source, &options).await,
            key,
            "upload_file",
        );
        invalid(
            &s.create_if_absent(key, body(), &options).await,
            key,
            "create",
        );
        invalid(&s.delete(key).await, key, "delete");
        let mut upload = s.start_upload(key, PutOptions::default());
        invalid(&upload.write(body()).await, key, "write");
        invalid(&upload.finish().await, key, "finish");
    }
    for prefix in ["../", "/abs", "a//b", "a/../"] {
        invalid(&s.list(prefix).await, prefix, "list");
        invalid(&s.open_uploads(prefix).await, prefix, "open_uploads");
    }
    assert_eq!(
        tree(dir.path()),
        ["source.bin"],
        "nothing was written anywhere"
    );
}

#[tokio::test]
async fn partial_files_and_sidecars_are_invisible_to_list() {
    let (_dir, s) = store();
    s.put(
        "frames/0001.png",
        Bytes::from_static(b"one"),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    let mut upload = s.start_upload("frames/0002.png", PutOptions::default());
    upload.write(Bytes::from_static(b"two")).await.unwrap();
    // A partial file left by a crashed writer.
    std::fs::write(
        s.root()
            .join("frames/.0003.png.0b8c2a9e-1111-4222-8333-944445555666.partial"),
        b"three",
    )
    .unwrap();

    let listed: Vec<String> = s
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, ["frames/0001.png"]);
    assert_eq!(
        s.open_uploads("").await.unwrap(),
        ["frames/0002.png", "frames/0003.png"]
    );
    assert_eq!(
        s.open_uploads("frames/0002").await.unwrap(),
        ["frames/0002.png"]
    );
    assert!(s.root().join(".farm-meta/frames/0001.png.json").is_file());

    assert_eq!(upload.finish().await.unwrap(), 3);
    let listed: Vec<String> = s
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, ["frames/0001.png", "frames/0002.png"]);
    assert_eq!(s.open_uploads("").await.unwrap(), ["frames/0003.png"]);
}

#[tokio::test]
async fn a_file_replaced_behind_the_store_gets_a_new_etag_and_loses_its_metadata() {
    let (_dir, s) = store();
    let options = PutOptions {
        content_type: None,
        metadata: Metadata::from([("farm-source-etag".to_owned(), "\"e\"".to_owned())]),
        ..PutOptions::default()
    };
    s.put("scene.blend", Bytes::from_static(b"BLENDER-v1"), &options)
        .await
        .unwrap();
    let before = s.head("scene.blend").await.unwrap().unwrap();
    assert_eq!(before.metadata, options.metadata);

    std::fs::write(s.root().join("scene.blend"), b"BLENDER-v2 longer").unwrap();
    let after = s.head("scene.blend").await.unwrap().unwrap();
    assert_ne!(after.etag, before.etag);
    assert_eq!(after.size, 17);
    assert!(after.metadata.is_empty());

    let dest = s.root().parent().unwrap().join("copy.blend");
    let refused = s
        .download("scene.blend", &dest, before.etag.as_deref())
        .await;
    assert!(
        matches!(refused, Err(StorageError::Changed { .. })),
        "{refused:?}"
    );
    let meta = s
        .download("scene.blend", &dest, after.etag.as_deref())
        .await
        .unwrap();
    assert_eq!(meta.etag, after.etag);
    assert_eq!(std::fs::read(&dest).unwrap(), b"BLENDER-v2 longer");
}

#[tokio::test]
async fn files_dropped_into_the_folder_are_objects() {
    let (_dir, s) = store();
    std::fs::create_dir_all(s.root().join("shots")).unwrap();
    std::fs::write(s.root().join("shots/by hand.blend"), b"BLENDER").unwrap();
    let head = s.head("shots/by hand.blend").await.unwrap().unwrap();
    assert_eq!(head.size, 7);
    assert!(head.etag.is_some());
    assert_eq!(s.list("shots/").await.unwrap().len(), 1);
    // A folder is not an object.
    assert!(s.head("shots").await.unwrap().is_none());
    assert!(matches!(
        s.get("shots").await,
        Err(StorageError::NotFound { .. })
    ));
}

#[tokio::test]
async fn etags_are_content_hashes() {
    let (_dir, s) = store();
    let options = PutOptions::default();
    s.put("a", Bytes::from_static(b"same"), &options)
        .await
        .unwrap();
    s.put("b", Bytes::from_static(b"same"), &options)
        .await
        .unwrap();
    s.put("c", Bytes::from_static(b"diff"), &options)
        .await
        .unwrap();
    let etag = |key: &'static str| {
        let s = &s;
        async move { s.head(key).await.unwrap().unwrap().etag.unwrap() }
    };
    assert_eq!(etag("a").await, etag("b").await);
    assert_ne!(etag("a").await, etag("c").await);
    assert!(etag("a").await.starts_with('"') && etag("a").await.ends_with('"'));
}

#[tokio::test]
async fn delete_prunes_empty_folders_but_not_the_root() {
    let (_dir, s) = store();
    s.put(
        "a/b/c.png",
        Bytes::from_static(b"c"),
        &PutOptions::default(),
    )
    .await
    .unwrap();
    s.delete("a/b/c.png").await.unwrap();
    assert!(!s.root().join("a").exists());
    assert!(!s.root().join(".farm-meta/a").exists());
    assert!(s.root().is_dir());
}

#[tokio::test]
async fn an_object_cannot_also_be_a_folder() {
    let (_dir, s) = store();
    s.put("a", Bytes::from_static(b"file"), &PutOptions::default())
        .await
        .unwrap();
    let nested = s
        .put("a/b", Bytes::from_static(b"nested"), &PutOptions::default())
        .await;
    assert!(matches!(nested, Err(StorageError::Io { .. })), "{nested:?}");
    assert_eq!(s.get("a").await.unwrap(), Bytes::from_static(b"file"));
}
