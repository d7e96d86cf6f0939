//! Unit tests of the dependency rules.

use super::*;

#[test]
fn a_lists_version_is_the_name_it_is_stored_under() {
    let list = DependencyList {
        files: vec![Dependency {
            key: "p/tex/a.png".to_owned(),
            kind: "image".to_owned(),
            path: "//tex/a.png".to_owned(),
            from: "p/a.blend".to_owned(),
            etag: "\"e\"".to_owned(),
            size: 3,
        }],
    };
    let key = crate::JobKeys::new("p/a.blend").dependency_list(&list.to_body().unwrap());
    assert_eq!(list_version(&key), list.version().unwrap());
}

#[test]
fn relative_paths_resolve_against_the_blend_key() {
    assert_eq!(
        resolve("proj/shots/a.blend", "//tex/wood.png").unwrap(),
        "proj/shots/tex/wood.png"
    );
    assert_eq!(
        resolve("proj/shots/a.blend", "//../assets/x.png").unwrap(),
        "proj/assets/x.png"
    );
    assert_eq!(
        resolve("proj/shots/a.blend", "//./tex//./a b.png").unwrap(),
        "proj/shots/tex/a b.png"
    );
    assert_eq!(resolve("a.blend", "//tex/x.png").unwrap(), "tex/x.png");
    assert_eq!(
        resolve("proj/shots/a.blend", "//..\\..\\lib\\tree.blend").unwrap(),
        "lib/tree.blend"
    );
}

#[test]
fn nothing_resolves_above_the_bucket_root() {
    assert_eq!(
        resolve("proj/a.blend", "//../../x.png"),
        Err(PathError::AboveRoot {
            path: "//../../x.png".into(),
            from: "proj/a.blend".into()
        })
    );
    assert!(matches!(
        resolve("a.blend", "//../x.png"),
        Err(PathError::AboveRoot { .. })
    ));
    assert!(matches!(
        resolve("a.blend", "//"),
        Err(PathError::Empty { .. })
    ));
    assert!(matches!(
        resolve("a.blend", "//tex/"),
        Err(PathError::Empty { .. })
    ));
}

#[test]
fn absolute_paths_are_refused_with_the_hint() {
    for path in [
        "/home/me/tex/wood.png",
        "C:\\tex\\wood.png",
        "c:/tex/wood.png",
        "\\\\server\\share\\wood.png",
        "tex/wood.png",
    ] {
        let err = resolve("proj/a.blend", path).unwrap_err();
        assert_eq!(
            err,
            PathError::Absolute {
                path: path.to_owned()
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("File > External Data > Make Paths Relative"),
            "{text}"
        );
        assert!(text.contains("Pack"), "{text}");
    }
}

#[test]
fn local_paths_never_leave_the_folder() {
    assert_eq!(
        local_relative_path("proj/./shots//a.blend"),
        Some(std::path::PathBuf::from("proj/shots/a.blend"))
    );
    assert_eq!(local_relative_path("../a.blend"), None);
    assert_eq!(local_relative_path("a/../../b"), None);
    assert_eq!(local_relative_path(""), None);
}

#[test]
fn udim_and_uvtile_tokens_name_each_tile() {
    assert_eq!(
        tile_keys("p/tex/skin.<UDIM>.png", &[1002, 1001, 1011]),
        vec![
            "p/tex/skin.1001.png",
            "p/tex/skin.1002.png",
            "p/tex/skin.1011.png"
        ]
    );
    assert_eq!(tile_key("skin.<UVTILE>.exr", 1001), "skin.u1_v1.exr");
    assert_eq!(tile_key("skin.<UVTILE>.exr", 1012), "skin.u2_v2.exr");
    assert_eq!(tile_key("skin.<UVTILE>.exr", 1020), "skin.u10_v2.exr");
    assert!(is_tiled("a.<UDIM>.png") && is_tiled("a.<UVTILE>.png") && !is_tiled("a.png"));
}

#[test]
fn sequence_names_split_on_the_last_number_of_the_file_name() {
    let p = SequencePattern::parse("p/v2/seq/render_0007.png").unwrap();
    assert_eq!(p.head, "p/v2/seq/render_");
    assert_eq!((p.digits, p.number), (4, 7));
    assert_eq!(p.tail, ".png");
    assert_eq!(p.key(12), "p/v2/seq/render_0012.png");
    assert_eq!(p.key(12345), "p/v2/seq/render_12345.png");
    assert_eq!(p.key(-3), "p/v2/seq/render_0000.png");
    assert_eq!(p.number_of("p/v2/seq/render_0012.png"), Some(12));
    assert_eq!(p.number_of("p/v2/seq/render_12.png"), None);
    assert_eq!(p.number_of("p/v2/seq/render_0012.jpg"), None);
    // Digits in the extension or the folders are not the number.
    let p = SequencePattern::parse("p/2/a7b.mp4").unwrap();
    assert_eq!(
        (p.head.as_str(), p.number, p.tail.as_str()),
        ("p/2/a", 7, "b.mp4")
    );
    assert_eq!(SequencePattern::parse("p/2/still.png"), None);
}

#[test]
fn sequence_frames_follow_blenders_image_user() {
    // 10 files from scene frame 5, numbered from 101: frame 5 loads 101.
    let user = ImageUser {
        frame_duration: 10,
        frame_start: 5,
        frame_offset: 100,
        cyclic: false,
    };
    assert_eq!(image_user_frame(&user, 5), Some(101));
    assert_eq!(image_user_frame(&user, 14), Some(110));
    // Past the end: the last file; before the start: file `offset + 0`.
    assert_eq!(image_user_frame(&user, 30), Some(110));
    assert_eq!(image_user_frame(&user, 4), Some(100));
    assert_eq!(image_user_frame(&user, -50), Some(100));
    let cyclic = ImageUser {
        cyclic: true,
        ..user
    };
    assert_eq!(image_user_frame(&cyclic, 15), Some(101));
    assert_eq!(image_user_frame(&cyclic, 14), Some(110));
    assert_eq!(image_user_frame(&cyclic, 4), Some(110));
    let none = ImageUser {
        frame_duration: 0,
        ..user
    };
    assert_eq!(image_user_frame(&none, 5), None);
    let p = SequencePattern::parse("s/f_001.png").unwrap();
    let keys = sequence_keys(&p, &user, [5, 6, 30]);
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        vec!["s/f_101.png", "s/f_102.png", "s/f_110.png"]
    );
}

#[test]
fn the_missing_tag_is_read_loosely() {
    assert!(allows_missing([("missing", "ok")]));
    assert!(allows_missing([("frame", "1"), (" missing ", " OK ")]));
    assert!(!allows_missing([("missing", "no")]));
    assert!(!allows_missing([("frame", "1")]));
}

#[test]
fn the_rejection_names_each_file_and_key() {
    let record = DependencyRecord {
        missing: vec![MissingDependency {
            key: Some("p/tex/wood.png".into()),
            kind: "image".into(),
            path: "//tex/wood.png".into(),
            from: "p/a.blend".into(),
            reason: MissingReason::NotFound,
            message: "not found at `p/tex/wood.png`".into(),
        }],
        ..DependencyRecord::default()
    };
    let text = record.missing_message();
    assert!(
        text.starts_with("1 file the .blend needs is missing"),
        "{text}"
    );
    assert!(
        text.contains("image `//tex/wood.png` (in `p/a.blend`): not found at `p/tex/wood.png`"),
        "{text}"
    );
    assert!(text.contains("missing=ok"), "{text}");
    assert_eq!(record.summary(), "0 files, 0.0 MiB; 1 missing");
}
