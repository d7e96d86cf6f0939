//! Untrusted input: truncated, corrupted, re-compressed and foreign files give an error (or,
//! for a corrupted byte the reader does not depend on, the facts), never a panic.

mod common;

use std::io::{Cursor, Write};
use std::sync::OnceLock;

use common::Blender;
use farm_blend::{BlendError, Compression};

/// A plain and a zstd file saved by Blender 3.4, made once for every test here.
fn fixtures() -> &'static (Vec<u8>, Vec<u8>) {
    static FIXTURES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let blender = Blender::debian();
        let plain_dir = tempfile::tempdir().unwrap();
        let zstd_dir = tempfile::tempdir().unwrap();
        let plain = std::fs::read(blender.make_fixture(plain_dir.path(), false)).unwrap();
        let zstd = std::fs::read(blender.make_fixture(zstd_dir.path(), true)).unwrap();
        (plain, zstd)
    })
}

fn both(bytes: &[u8]) -> [Result<farm_blend::BlendInfo, BlendError>; 2] {
    [
        farm_blend::read_seekable(Cursor::new(bytes)),
        farm_blend::read(bytes),
    ]
}

/// Cut points: every byte of the first and last KiB, and 400 spread over the rest.
fn cuts(len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..len.min(1024)).collect();
    cuts.extend(len.saturating_sub(1024)..len);
    cuts.extend((0..400).map(|i| i * len / 400));
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|&c| c < len);
    cuts
}

#[test]
fn every_truncation_is_an_error() {
    let (plain, zstd) = fixtures();
    assert!(farm_blend::read(&plain[..]).is_ok());
    for cut in cuts(plain.len()) {
        for result in both(&plain[..cut]) {
            let err = result.expect_err("a truncated file is refused");
            assert!(
                matches!(err, BlendError::Truncated(_) | BlendError::NotBlend(_)),
                "cut at {cut}: {err}"
            );
        }
    }
    assert!(farm_blend::read(&zstd[..]).is_ok());
    // Blender ends a zstd file with a skippable frame (the seek table); a cut inside it loses
    // nothing the reader needs. Every cut before it is an error.
    let seek_table = zstd
        .windows(4)
        .rposition(|w| w == [0x5e, 0x2a, 0x4d, 0x18])
        .expect("Blender writes a seek table");
    for cut in cuts(zstd.len()).into_iter().step_by(4) {
        for result in both(&zstd[..cut]) {
            assert!(
                result.is_err() || cut >= seek_table,
                "zstd cut at {cut} (seek table at {seek_table}) was read"
            );
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let (plain, zstd) = fixtures();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for round in 0..200 {
        let source = if round % 3 == 0 { zstd } else { plain };
        let mut bytes = source.clone();
        for _ in 0..(1 + next() % 8) {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        // Aim some rounds at the block headers' lengths and the catalogue, where lies hurt.
        if round % 2 == 1 {
            let at = 12 + (next() % 64) as usize;
            bytes[at..at + 4].copy_from_slice(&(next() as u32).to_le_bytes());
        }
        for result in both(&bytes) {
            errors += usize::from(result.is_err());
        }
    }
    assert!(errors > 0, "some corruptions are noticed");
}

#[test]
fn gzip_files_read_like_plain_ones() {
    let (plain, _) = fixtures();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(plain).unwrap();
    let gzip = encoder.finish().unwrap();
    let from_plain = farm_blend::read(&plain[..]).unwrap();
    for result in both(&gzip) {
        let info = result.unwrap();
        assert_eq!(info.compression, Compression::Gzip);
        assert_eq!(info.scenes, from_plain.scenes);
        assert_eq!(info.files, from_plain.files);
    }
    let cut = &gzip[..gzip.len() / 2];
    for result in both(cut) {
        assert!(
            matches!(result, Err(BlendError::Truncated(_))),
            "{result:?}"
        );
    }
}

#[test]
fn foreign_files_are_not_blends() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let zip = b"PK\x03\x04\x14\0\0\0".to_vec();
    let text = b"hello, this is not a scene".to_vec();
    for bytes in [png, zip, text, Vec::new(), b"BLENDER".to_vec()] {
        for result in both(&bytes) {
            let err = result.expect_err("refused");
            assert!(matches!(err, BlendError::NotBlend(_)), "{err}");
            assert!(err.to_string().starts_with("not a .blend file"), "{err}");
        }
    }
}

#[test]
fn unsupported_headers_are_named() {
    let (plain, _) = fixtures();
    let mut big = plain.clone();
    big[8] = b'V';
    for result in both(&big) {
        let err = result.expect_err("refused");
        assert!(matches!(err, BlendError::BigEndian), "{err}");
        assert!(err.to_string().contains("big-endian"), "{err}");
    }
    // A 64-bit file whose header claims 4-byte pointers: its blocks do not fit a 32-bit layout.
    let mut p32 = plain.clone();
    p32[7] = b'_';
    for result in both(&p32) {
        let err = result.expect_err("refused");
        assert!(
            matches!(err, BlendError::Corrupt(_) | BlendError::Truncated(_)),
            "{err}"
        );
    }
    // Old versions are read (tests/old_files.rs reads real ones): the header's version is
    // reported.
    let mut old = plain.clone();
    old[9..12].copy_from_slice(b"279");
    for result in both(&old) {
        assert_eq!(result.expect("read").version.to_string(), "2.79");
    }
}

#[test]
fn the_version_alone_reads_from_the_header_of_any_encoding() {
    let (plain, zstd) = fixtures();
    let version = farm_blend::read_version(&plain[..]).unwrap();
    assert_eq!(version.to_string(), "3.4");
    assert_eq!(farm_blend::read_version(&zstd[..4096]).unwrap(), version);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(plain).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(farm_blend::read_version(&gz[..]).unwrap(), version);
    // Blender 5's longer header, and a newer 4.x.
    let five = farm_blend::read_version(&b"BLENDER17-01v0500 rest of the file"[..]).unwrap();
    assert_eq!(five.to_string(), "5.0");
    let four = farm_blend::read_version(&b"BLENDER-v405REND"[..]).unwrap();
    assert_eq!(four.to_string(), "4.5");
    // Older versions, and 32-bit ones.
    let old = farm_blend::read_version(&b"BLENDER-v279REND"[..]).unwrap();
    assert_eq!(old.to_string(), "2.79");
    let old = farm_blend::read_version(&b"BLENDER_v248REND"[..]).unwrap();
    assert_eq!(old.to_string(), "2.48");
    for (bytes, want) in [
        (&b"BLENDER-v"[..], "shorter than a Blender file header"),
        (&b"PK\x03\x04 zip"[..], "not"),
        (&b"BLENDER-V260REND"[..], "big-endian"),
    ] {
        let err = farm_blend::read_version(bytes).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
}

/// A decompression bomb: Blender's file with 32 GiB of zeros (empty block headers) before its
/// `ENDB`, compressed to about 1 MiB, is refused naming both bounds, by every reader; the same
/// file with 1 MiB of them reads.
#[test]
fn a_decompression_bomb_is_refused_naming_both_bounds() {
    use farm_testkit::{
        zstd_frame,
        ZstdPart::{Bytes, Zeros},
    };
    let (plain, _) = fixtures();
    let (body, endb) = plain.split_at(plain.len() - 24);
    assert_eq!(&endb[..4], b"ENDB");
    // Whole empty block headers (24 bytes each), 32 GiB of them.
    let bomb = zstd_frame(&[Bytes(body), Zeros((32 << 30) / 24 * 24), Bytes(endb)]);
    assert!(bomb.len() < plain.len() + (2 << 20), "{}", bomb.len());
    for result in both(&bomb) {
        let err = result.expect_err("a bomb is refused");
        assert!(matches!(err, BlendError::TooLarge { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "{} times its compressed size",
                farm_blend::MAX_RATIO
            )),
            "{message}"
        );
        assert!(message.contains("never past 16 GiB"), "{message}");
    }
    let padded = zstd_frame(&[Bytes(body), Zeros((1 << 20) / 24 * 24), Bytes(endb)]);
    let from_plain = farm_blend::read(&plain[..]).unwrap();
    for result in both(&padded) {
        assert_eq!(result.unwrap().files, from_plain.files);
    }
}
