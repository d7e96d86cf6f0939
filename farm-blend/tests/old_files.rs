//! Files other people saved with Blender 2.41 to 2.79 (`tests/old/`, see its README), read by
//! the reader and compared fact by fact with what Blender itself (Debian's 3.4, which opens
//! them as the farm's Blenders do) sees in the same file. They are stored gzip-compressed, as
//! Blender's own "Compress File" wrote them; each is read compressed (streamed) and plain
//! (seeking).

mod common;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use common::Blender;
use farm_blend::{BlendError, BlendInfo, Compression, FileKind};

fn old(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/old")
        .join(format!("{name}.blend.gz"))
}

/// The file as Blender saved it, uncompressed, in `dir`.
fn plain(name: &str, dir: &Path) -> PathBuf {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(File::open(old(name)).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let path = dir.join(format!("{name}.blend"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Reads `name` both ways and checks every fact against Blender's; returns the facts.
fn read_and_compare(blender: &Blender, name: &str, dir: &Path) -> BlendInfo {
    let file = plain(name, dir);
    let seeking = farm_blend::read_seekable(File::open(&file).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let streamed = farm_blend::read(BufReader::new(File::open(old(name)).unwrap()))
        .unwrap_or_else(|e| panic!("{name} (gzip): {e}"));
    assert_eq!(seeking.compression, Compression::None, "{name}");
    assert_eq!(streamed.compression, Compression::Gzip, "{name}");
    assert_eq!(
        BlendInfo {
            compression: Compression::None,
            ..streamed
        },
        seeking,
        "{name}: the compressed and the plain file give the same facts"
    );
    let before_2_50 = seeking.version.major == 2 && seeking.version.minor < 50;
    common::compare(&seeking, &blender.facts(&file), before_2_50);
    seeking
}

#[test]
fn files_saved_by_blender_2_41_to_2_79_read_as_blender_reads_them() {
    let blender = Blender::debian();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // (file, the version that saved it, its output format)
        ("fleurOptonl_241", "2.41", "PNG"),
        ("TexturedPlane_ImageUvPacked_248", "2.48", "JPEG"),
        ("HUMAN", "2.49", "JPEG"),
        ("BlenderDefault_250", "2.52", "PNG"),
        ("BlenderDefault_262", "2.62", "PNG"),
        ("BlenderDefault_276", "2.76", "PNG"),
        ("plane_2_textures_2_texcoords_279", "2.79", "PNG"),
    ];
    for (name, version, format) in cases {
        let info = read_and_compare(&blender, name, dir.path());
        assert_eq!(info.version.to_string(), version, "{name}");
        let scene = info.active_scene().expect("an active scene");
        // Blender Internal, as every one of these was set, opens as EEVEE.
        assert_eq!(scene.engine, "BLENDER_EEVEE", "{name}");
        assert_eq!(scene.output_format, format, "{name}");
        assert_eq!(scene.camera.as_deref(), Some("Camera"), "{name}");
    }
}

#[test]
fn old_files_external_files_are_found() {
    let blender = Blender::debian();
    let dir = tempfile::tempdir().unwrap();
    // 2.48, saved by a 32-bit Blender: one packed image.
    let packed = read_and_compare(&blender, "TexturedPlane_ImageUvPacked_248", dir.path());
    assert!(
        matches!(&packed.files[..], [f] if f.kind == FileKind::Image && f.packed),
        "{:?}",
        packed.files
    );
    // 2.49, 32-bit: an image at an absolute Windows path, not packed.
    let human = read_and_compare(&blender, "HUMAN", dir.path());
    assert!(
        matches!(&human.files[..], [f] if f.path.starts_with("C:\\Users\\") && !f.packed),
        "{:?}",
        human.files
    );
    // 2.79: two relative textures.
    let textures = read_and_compare(&blender, "plane_2_textures_2_texcoords_279", dir.path());
    let paths: Vec<&str> = textures.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["//DROPLETS.tga", "//rgb_test.png"]);
}

#[test]
fn a_big_endian_file_is_refused_with_what_to_do() {
    let err = farm_blend::read(BufReader::new(File::open(old("yxa_1")).unwrap())).unwrap_err();
    assert!(matches!(err, BlendError::BigEndian), "{err}");
    let message = err.to_string();
    assert!(message.contains("big-endian"), "{message}");
    assert!(message.contains("save it again"), "{message}");
}
