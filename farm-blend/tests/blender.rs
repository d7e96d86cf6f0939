//! The reader against Blender itself: files saved by Blender 3.4 (Debian), 4.2 LTS and 5.0
//! (the official `bpy` modules), plain and compressed, and every fact compared with what that
//! Blender prints for the same file.

mod common;

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

/// Every fact the reader reports, against Blender's, and the fixture has what the comparison is
/// about.
fn compare(info: &BlendInfo, blender: &Value) {
    let ours = common::compare(info, blender, false);
    // The fixture really has what the comparison is about.
    for kind in ["image", "library", "sound", "movie", "volume"] {
        assert!(ours.iter().any(|f| f.0 == kind), "no {kind} in the fixture");
    }
    assert!(ours.iter().any(|f| f.2), "no packed file in the fixture");
    // Both cache folders Blender writes, and not the disk cache beside the .blend.
    let written: Vec<&str> = ours
        .iter()
        .filter(|f| f.3.as_deref() == Some(farm_blend::WRITTEN))
        .map(|f| f.1.as_str())
        .collect();
    assert_eq!(written, ["//fluid_cache/", "/farm-test/escaped/"]);
    assert!(ours
        .iter()
        .any(|f| f.3.as_deref() == Some("TILED") && f.4 == [1001, 1002]));
    assert!(ours
        .iter()
        .any(|f| f.3.as_deref() == Some("SEQUENCE") && f.5 == [(3, 5, 7, true)]));
    // ... and the scene facts that decide whether and how it renders.
    let scene = |name: &str| info.scenes.iter().find(|s| s.name == name).unwrap();
    assert_eq!(scene("Shot").marker_cameras, ["Hero Cam", "Side Cam"]);
    assert_eq!(scene("Shot").view_layers, ["Main", "Background"]);
    assert!(scene("Eevee").sequencer && scene("Eevee").camera.is_none());
    assert!(!scene("Alpha").sequencer);
    assert!(scene("Bench").compositor && !scene("Shot").compositor);
    let shot = scene("Shot").multiview.as_ref().expect("Shot is multiview");
    assert_eq!(
        (shot.setup.as_str(), shot.image_views.as_str()),
        ("STEREO_3D", "INDIVIDUAL")
    );
    assert_eq!(shot.views.len(), 3);
    let alpha = scene("Alpha")
        .multiview
        .as_ref()
        .expect("Alpha is multiview");
    assert_eq!(alpha.stereo_mode.as_deref(), Some("SIDEBYSIDE"));
    assert!(alpha.views.iter().any(|v| v.name == "right" && !v.enabled));
    assert!(scene("Eevee").multiview.is_none());
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
