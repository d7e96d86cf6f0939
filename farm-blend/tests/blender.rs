//! The reader against Blender itself: files saved by Blender 3.4 (Debian), 4.2 LTS and 5.0
//! (the official `bpy` modules), plain and compressed, and every fact compared with what that
//! Blender prints for the same file.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;

use common::Blender;
use farm_blend::{BlendInfo, Compression};
use serde_json::Value;

fn check(blender: &Blender, compress: bool, expect_version: &str, expect_compression: Compression) {
    let dir = tempfile::tempdir().unwrap();
    let file = blender.make_fixture(dir.path(), compress);
    let facts = blender.facts(&file);

    let seeking = farm_blend::read_seekable(File::open(&file).unwrap()).unwrap();
    let streamed = farm_blend::read(BufReader::new(File::open(&file).unwrap())).unwrap();
    assert_eq!(
        seeking, streamed,
        "seeking and streaming read the same facts"
    );
    compare(&seeking, &facts);
    assert_eq!(seeking.version.to_string(), expect_version);
    // The trigger reads the version from the first 256 KiB alone.
    let bytes = std::fs::read(&file).unwrap();
    let prefix = &bytes[..bytes.len().min(256 * 1024)];
    assert_eq!(farm_blend::read_version(prefix).unwrap(), seeking.version);
    assert_eq!(seeking.compression, expect_compression);
}

/// Every fact the reader reports, against Blender's.
fn compare(info: &BlendInfo, blender: &Value) {
    assert_eq!(
        info.version.to_string(),
        blender["version"].as_str().unwrap()
    );
    assert_eq!(
        info.scene.as_deref(),
        blender["scene"].as_str(),
        "active scene"
    );
    let theirs = blender["scenes"].as_array().unwrap();
    assert_eq!(info.scenes.len(), theirs.len(), "scene count");
    for expected in theirs {
        let name = expected["name"].as_str().unwrap();
        let scene = info
            .scenes
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("the reader misses scene {name}"));
        let int = |key: &str| expected[key].as_i64().unwrap();
        assert_eq!(i64::from(scene.frame_start), int("frame_start"), "{name}");
        assert_eq!(i64::from(scene.frame_end), int("frame_end"), "{name}");
        assert_eq!(i64::from(scene.frame_step), int("frame_step"), "{name}");
        let fps = expected["fps"].as_f64().unwrap();
        assert!(
            (scene.fps - fps).abs() < 1e-9,
            "{name}: fps {} vs {fps}",
            scene.fps
        );
        assert_eq!(
            serde_json::to_value(scene.resolution).unwrap(),
            expected["resolution"],
            "{name}"
        );
        assert_eq!(
            i64::from(scene.resolution_percentage),
            int("resolution_percentage"),
            "{name}"
        );
        assert_eq!(scene.engine, expected["engine"].as_str().unwrap(), "{name}");
        assert_eq!(
            scene.output_format,
            expected["output_format"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            scene.camera.as_deref(),
            expected["camera"].as_str(),
            "{name}"
        );
    }
    type FileFacts = (
        String,
        String,
        bool,
        Option<String>,
        Vec<i64>,
        Vec<(i64, i64, i64, bool)>,
    );
    let ours: BTreeSet<FileFacts> = info
        .files
        .iter()
        .map(|f| {
            (
                f.kind.as_str().to_owned(),
                f.path.clone(),
                f.packed,
                f.source.clone(),
                f.tiles.iter().map(|&t| i64::from(t)).collect(),
                f.sequence_uses
                    .iter()
                    .map(|u| {
                        (
                            i64::from(u.frame_duration),
                            i64::from(u.frame_start),
                            i64::from(u.frame_offset),
                            u.cyclic,
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let theirs: BTreeSet<FileFacts> = blender["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
                f["packed"].as_bool().unwrap(),
                f["source"].as_str().map(str::to_owned),
                f["tiles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_i64().unwrap())
                    .collect(),
                f["sequence_uses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| {
                        let u = u.as_array().unwrap();
                        (
                            u[0].as_i64().unwrap(),
                            u[1].as_i64().unwrap(),
                            u[2].as_i64().unwrap(),
                            u[3].as_bool().unwrap(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(ours, theirs, "external files");
    // The fixture really has what the comparison is about.
    for kind in ["image", "library", "sound", "movie", "volume"] {
        assert!(ours.iter().any(|f| f.0 == kind), "no {kind} in the fixture");
    }
    assert!(ours.iter().any(|f| f.2), "no packed file in the fixture");
    assert!(ours
        .iter()
        .any(|f| f.3.as_deref() == Some("TILED") && f.4 == [1001, 1002]));
    assert!(ours
        .iter()
        .any(|f| f.3.as_deref() == Some("SEQUENCE") && f.5 == [(3, 5, 7, true)]));
    assert_ne!(
        info.scene.as_deref(),
        info.scenes.first().map(|s| s.name.as_str()),
        "the active scene is not the first one in the file"
    );
}

#[test]
fn blender_3_4_plain_and_zstd() {
    let blender = Blender::debian();
    check(&blender, false, "3.4", Compression::None);
    check(&blender, true, "3.4", Compression::Zstd);
}

#[test]
fn blender_4_2_plain_and_zstd() {
    let blender = Blender::bpy("4.2.23");
    check(&blender, false, "4.2", Compression::None);
    check(&blender, true, "4.2", Compression::Zstd);
}

#[test]
fn blender_5_0_plain_and_zstd() {
    let blender = Blender::bpy("5.0.1");
    check(&blender, false, "5.0", Compression::None);
    check(&blender, true, "5.0", Compression::Zstd);
}
