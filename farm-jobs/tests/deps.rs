//! The dependency check over a real store (a local folder), counting the requests it makes.

use bytes::Bytes;
use farm_blend::{BlendInfo, BlenderVersion, Compression, ExternalFile, FileKind};
use farm_core::storage::{PutOptions, Storage};
use farm_core::JobKeys;
use farm_io::LocalStorage;
use farm_jobs::deps::{check, read_dependency_list, write_dependency_list, Preflight};
use farm_testkit::{Faulty, Op};

/// A local store whose calls are logged.
type Counting = Faulty<LocalStorage>;

fn heads(storage: &Counting) -> usize {
    storage.calls().iter().filter(|c| c.op == Op::Head).count()
}

fn lists(storage: &Counting) -> Vec<String> {
    storage
        .calls()
        .into_iter()
        .filter(|c| c.op == Op::List)
        .map(|c| c.key)
        .collect()
}

fn file(kind: FileKind, path: &str, source: Option<&str>, tiles: &[i32]) -> ExternalFile {
    ExternalFile {
        kind,
        path: path.to_owned(),
        name: path.to_owned(),
        packed: false,
        source: source.map(str::to_owned),
        tiles: tiles.to_vec(),
        sequence_uses: Vec::new(),
    }
}

fn info(files: Vec<ExternalFile>) -> BlendInfo {
    BlendInfo {
        version: BlenderVersion { major: 4, minor: 2 },
        compression: Compression::None,
        scene: None,
        scenes: Vec::new(),
        files,
        cameras: Vec::new(),
    }
}

const BLEND: &str = "proj/shots/a.blend";

async fn project() -> (tempfile::TempDir, Counting) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(LocalStorage::new(dir.path()));
    for key in [
        "proj/shots/tex/wood.png",
        "proj/assets/x.png",
        "proj/shots/tex/skin.1001.png",
        "proj/shots/seq/f_001.png",
        "proj/shots/seq/f_002.png",
        "proj/shots/seq/f_010.png",
        "proj/shots/seq/other.png",
    ] {
        storage
            .put(key, Bytes::from(key.to_owned()), &PutOptions::default())
            .await
            .unwrap();
    }
    for i in 0..30 {
        let key = format!("proj/many/t{i:02}.png");
        storage
            .put(&key, Bytes::from(key.clone()), &PutOptions::default())
            .await
            .unwrap();
    }
    (dir, storage)
}

fn blend_files() -> Vec<ExternalFile> {
    let mut files = vec![
        file(FileKind::Image, "//tex/wood.png", Some("FILE"), &[]),
        file(FileKind::Image, "//..\\assets\\x.png", Some("FILE"), &[]),
        file(
            FileKind::Image,
            "//tex/skin.<UDIM>.png",
            Some("TILED"),
            &[1001, 1002],
        ),
        file(FileKind::Image, "//seq/f_001.png", Some("SEQUENCE"), &[]),
        file(
            FileKind::Image,
            "C:\\Users\\me\\wood.png",
            Some("FILE"),
            &[],
        ),
        file(FileKind::Sound, "//audio/beep.wav", None, &[]),
        file(FileKind::Library, "//../lib/props.blend", None, &[]),
        ExternalFile {
            packed: true,
            ..file(FileKind::Image, "//tex/packed.png", Some("FILE"), &[])
        },
    ];
    for i in 0..30 {
        files.push(file(
            FileKind::Image,
            &format!("//../many/t{i:02}.png"),
            Some("FILE"),
            &[],
        ));
    }
    files
}

#[tokio::test]
async fn every_missing_file_is_named_with_the_key_looked_at() {
    let (_dir, storage) = project().await;
    let Preflight::Missing(record) =
        check(&storage, BLEND, &info(blend_files()), None, false, None)
            .await
            .unwrap()
    else {
        panic!("files are missing");
    };
    let missing: Vec<(Option<&str>, &str)> = record
        .missing
        .iter()
        .map(|m| (m.key.as_deref(), m.path.as_str()))
        .collect();
    assert_eq!(
        missing,
        [
            (None, "C:\\Users\\me\\wood.png"),
            (Some("proj/lib/props.blend"), "//../lib/props.blend"),
            (
                Some("proj/shots/tex/skin.1002.png"),
                "//tex/skin.<UDIM>.png"
            ),
        ]
    );
    assert!(record.missing[0].message.contains("Make Paths Relative"));
    // A missing sound is a warning, not a rejection.
    assert_eq!(record.warnings.len(), 1, "{:?}", record.warnings);
    assert!(record.warnings[0].contains("proj/shots/audio/beep.wav"));
    assert_eq!(record.packed, 1);

    let found: Vec<&str> = record.files.iter().map(|f| f.key.as_str()).collect();
    assert!(found.contains(&"proj/shots/tex/wood.png"));
    assert!(
        found.contains(&"proj/assets/x.png"),
        "backslashes separate folders"
    );
    assert!(found.contains(&"proj/shots/tex/skin.1001.png"));
    // Every file of the sequence, none of its neighbours.
    for key in ["f_001.png", "f_002.png", "f_010.png"] {
        assert!(
            found.contains(&format!("proj/shots/seq/{key}").as_str()),
            "{key}"
        );
    }
    assert!(!found.contains(&"proj/shots/seq/other.png"));
    assert_eq!(found.len(), 2 + 1 + 3 + 30, "{found:?}");
    assert!(record.files.iter().all(|f| f.etag.starts_with('"')));
    assert_eq!(
        record.bytes,
        record.files.iter().map(|f| f.size).sum::<u64>()
    );

    // A folder of 30 wanted files is listed once, not HEAD-ed 30 times.
    let lists = lists(&storage);
    assert!(lists.contains(&"proj/many/".to_owned()), "{lists:?}");
    assert!(lists.contains(&"proj/shots/seq/f_".to_owned()), "{lists:?}");
    let heads = heads(&storage);
    assert!(heads <= 6, "{heads} HEAD requests");
}

#[tokio::test]
async fn missing_ok_renders_with_the_list_as_warnings_and_binds_the_versions() {
    let (_dir, storage) = project().await;
    let Preflight::Ready(mut record) =
        check(&storage, BLEND, &info(blend_files()), None, true, None)
            .await
            .unwrap()
    else {
        panic!("missing=ok renders anyway");
    };
    assert_eq!(record.missing.len(), 3);
    assert_eq!(record.warnings.len(), 4, "{:?}", record.warnings);
    assert!(record
        .warnings
        .iter()
        .any(|w| w.contains("proj/shots/tex/skin.1002.png") && w.contains("missing=ok")));

    let keys = JobKeys::new(BLEND);
    let list = write_dependency_list(&storage, &keys, &mut record)
        .await
        .unwrap()
        .unwrap();
    assert!(list.starts_with("proj/shots/a.blend/deps/") && list.ends_with(".json"));
    assert_eq!(record.list.as_deref(), Some(list.as_str()));
    let read = read_dependency_list(&storage, &list).await.unwrap();
    assert_eq!(read.files, record.files);
    // Named by its content: the same files give the same key.
    let mut again = record.clone();
    assert_eq!(
        write_dependency_list(&storage, &keys, &mut again)
            .await
            .unwrap(),
        Some(list)
    );
}

#[tokio::test]
async fn a_sequence_shown_by_a_node_needs_the_files_the_frames_load() {
    let (_dir, storage) = project().await;
    // 10 files from scene frame 1, numbered from 1: frames 1-3 load f_001..f_003, frame 10 f_010.
    let sequence = ExternalFile {
        sequence_uses: vec![farm_blend::SequenceUse {
            frame_duration: 10,
            frame_start: 1,
            frame_offset: 0,
            cyclic: false,
        }],
        ..file(FileKind::Image, "//seq/f_001.png", Some("SEQUENCE"), &[])
    };
    let blend = info(vec![sequence]);
    let Preflight::Missing(record) =
        check(&storage, BLEND, &blend, Some(&[1, 2, 3, 10]), false, None)
            .await
            .unwrap()
    else {
        panic!("f_003 is missing");
    };
    let missing: Vec<Option<&str>> = record.missing.iter().map(|m| m.key.as_deref()).collect();
    assert_eq!(missing, [Some("proj/shots/seq/f_003.png")]);
    let found: Vec<&str> = record.files.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        found,
        [
            "proj/shots/seq/f_001.png",
            "proj/shots/seq/f_002.png",
            "proj/shots/seq/f_010.png"
        ]
    );
    // Frames 1-2 only need what is there; the other files are not bound to the job.
    let Preflight::Ready(record) = check(&storage, BLEND, &blend, Some(&[1, 2]), false, None)
        .await
        .unwrap()
    else {
        panic!("frames 1-2 have their files");
    };
    assert_eq!(record.files.len(), 2);
}

/// A URL in any kind of path (FFmpeg would fetch it) is refused, `missing=ok` or not, and the
/// rejection names each path; a sound with a URL too, though a missing sound is only a warning.
#[tokio::test]
async fn url_paths_are_refused_whatever_missing_ok_says() {
    let (_dir, storage) = project().await;
    let files = vec![
        file(FileKind::Image, "//tex/wood.png", Some("FILE"), &[]),
        file(
            FileKind::Movie,
            "http://127.0.0.1:9/clip.mp4",
            Some("MOVIE"),
            &[],
        ),
        file(FileKind::Sound, "concat:/a.wav|/b.wav", None, &[]),
        file(
            FileKind::Image,
            "subfile,,start,0,end,9,,:/etc/passwd",
            Some("MOVIE"),
            &[],
        ),
        file(FileKind::Font, "/absolute/font.ttf", None, &[]),
    ];
    for record in refused_either_way(&storage, BLEND, &files, None).await {
        assert_eq!(record.refused.len(), 3, "{record:?}");
        let message = record.missing_message();
        for needle in [
            "3 path(s) in the .blend are refused",
            "`http:` URL",
            "`concat:` URL",
            "`subfile:` URL",
            "missing=ok does not change that",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        assert_eq!(record.files.len(), 1, "{record:?}");
    }
}

/// A cache folder Blender writes while rendering (`farm_blend::WRITTEN`) is refused outside the
/// .blend's folder, `missing=ok` or not, naming it and why; inside it, it is neither looked for
/// nor bound to the job (Blender makes it).
#[tokio::test]
async fn cache_folders_blender_writes_are_refused_outside_the_blends_folder() {
    let (_dir, storage) = project().await;
    let written = |path: &str| file(FileKind::Cache, path, Some(farm_blend::WRITTEN), &[]);
    // Only a folder Blender writes is held to the rule: a texture climbing out is looked up.
    let texture = file(FileKind::Image, "//../assets/x.png", Some("FILE"), &[]);
    assert_eq!(farm_jobs::deps::written_refusal(BLEND, &texture), None);
    assert!(farm_jobs::deps::written_refusal(BLEND, &written("/tmp/x/")).is_some());
    let files = vec![
        file(FileKind::Image, "//tex/wood.png", Some("FILE"), &[]),
        written("/tmp/escaped/"),
        written("//../elsewhere/"),
        written("//cache/"),
    ];
    for record in refused_either_way(&storage, BLEND, &files, None).await {
        assert_eq!(record.refused.len(), 2, "{record:?}");
        let message = record.missing_message();
        for needle in [
            "`/tmp/escaped/` is a cache folder Blender writes",
            "not relative to the .blend",
            "`//../elsewhere/` is a cache folder Blender writes",
            "climbs out of the .blend's folder",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        assert!(record.missing.is_empty(), "{record:?}");
        assert_eq!(record.files.len(), 1, "{record:?}");
    }
    let Ok(Preflight::Ready(record)) = check(
        &storage,
        BLEND,
        &info(vec![written("//cache/")]),
        Some(&[1]),
        false,
        None,
    )
    .await
    else {
        panic!("a folder inside the .blend's is fine");
    };
    assert!(record.files.is_empty() && record.missing.is_empty());
}

/// With shared prefixes (a bucket several uploaders share), a file outside the upload's own
/// top-level folder and those prefixes is refused naming its key and the rule, `missing=ok` or
/// not, and never read: another uploader's library is not followed. Files in the upload's folder
/// and in a shared prefix are bound.
#[tokio::test]
async fn files_outside_the_uploads_folder_and_the_shared_prefixes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Faulty::new(LocalStorage::new(dir.path()));
    for key in [
        "alice/tex/a.png",
        "library/wood.png",
        "bob/secret.png",
        "bob/lib.blend",
    ] {
        storage
            .put(key, Bytes::from_static(b"x"), &PutOptions::default())
            .await
            .unwrap();
    }
    let files = vec![
        file(FileKind::Image, "//tex/a.png", Some("FILE"), &[]),
        file(FileKind::Image, "//../library/wood.png", Some("FILE"), &[]),
        file(FileKind::Image, "//../bob/secret.png", Some("FILE"), &[]),
        file(FileKind::Library, "//../bob/lib.blend", None, &[]),
    ];
    let shared = farm_core::deps::SharedPrefixes::parse("library/").unwrap();
    for record in refused_either_way(&storage, "alice/a.blend", &files, Some(&shared)).await {
        let refused: Vec<_> = record.refused.iter().map(|m| m.key.as_deref()).collect();
        assert_eq!(
            refused,
            [Some("bob/lib.blend"), Some("bob/secret.png")],
            "{record:?}"
        );
        let message = record.missing_message();
        assert!(
            message.contains("`bob/secret.png` is outside what this upload may use")
                && message.contains(
                    "may use only files under `alice/` and the shared prefixes (library/)"
                ),
            "{message}"
        );
        let bound: Vec<&str> = record.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(bound, ["alice/tex/a.png", "library/wood.png"]);
    }
    assert!(
        !storage
            .calls()
            .iter()
            .any(|c| c.op != Op::Put && c.key.starts_with("bob/")),
        "nothing of bob's was looked at: {:?}",
        storage.calls()
    );
    // Without shared prefixes (farm render over this machine's folders) any key may be used.
    let Ok(Preflight::Ready(record)) = check(
        &storage,
        "alice/a.blend",
        &info(files[..3].to_vec()),
        Some(&[1]),
        false,
        None,
    )
    .await
    else {
        panic!("no scope, no refusal");
    };
    assert_eq!(record.files.len(), 3);
}

/// The check's record of `files` (of the .blend at `blend`) with and without `missing=ok`: a
/// rejection both times (a refused path is refused whatever `missing=ok` says).
async fn refused_either_way(
    storage: &Counting,
    blend: &str,
    files: &[ExternalFile],
    shared: Option<&farm_core::deps::SharedPrefixes>,
) -> Vec<farm_core::deps::DependencyRecord> {
    let mut records = Vec::new();
    for allow_missing in [false, true] {
        let Ok(Preflight::Missing(record)) = check(
            storage,
            blend,
            &info(files.to_vec()),
            Some(&[1]),
            allow_missing,
            shared,
        )
        .await
        else {
            panic!("refused (missing=ok: {allow_missing})");
        };
        records.push(record);
    }
    records
}
