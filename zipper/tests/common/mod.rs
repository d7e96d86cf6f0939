//! Helpers shared by the integration tests: frame contents and archive checks with the tools
//! users have (`unzip`, Python's `zipfile`), independent of the zip writer under test.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use farm_core::layout::frame_file_name;
use sha2::{Digest, Sha256};

/// Deterministic pseudo-random bytes, different for every frame (the zipper never decodes them).
pub(crate) fn frame_bytes(frame: i32, len: usize) -> Bytes {
    let mut state = (i64::from(frame) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// The entries an archive of these PNG frames must hold, in order.
pub(crate) fn expected_entries(frames: &[(i32, Bytes)]) -> Vec<(String, Bytes)> {
    frames
        .iter()
        .map(|(frame, body)| (frame_file_name(*frame, "png"), body.clone()))
        .collect()
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Lists `name method sha256` per entry, in archive order, with Python's zipfile.
const LIST_ENTRIES: &str = r#"
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        digest = hashlib.sha256(z.read(info)).hexdigest()
        print(info.filename, info.compress_type, digest)
"#;

/// Checks that `python3 -m zipfile -t` and `unzip -t` accept the archive and that it holds
/// exactly `expected`, in order, STORED, byte for byte.
pub(crate) fn check_archive(path: &Path, expected: &[(String, Bytes)]) {
    run(Command::new("python3")
        .args(["-m", "zipfile", "-t"])
        .arg(path));
    let tested = run(Command::new("unzip").arg("-t").arg(path));
    assert!(tested.contains("No errors detected"), "{tested}");
    let listed = run(Command::new("python3").args(["-c", LIST_ENTRIES]).arg(path));
    let want: Vec<String> = expected
        .iter()
        .map(|(name, body)| format!("{name} 0 {:x}", Sha256::digest(body)))
        .collect();
    let got: Vec<&str> = listed.lines().collect();
    assert_eq!(got.len(), want.len(), "entry count");
    for (got, want) in got.iter().zip(&want) {
        assert_eq!(got, want);
    }
}

/// Extracts the archive with `unzip` and compares every file with `expected`.
pub(crate) fn check_extracted(path: &Path, expected: &[(String, Bytes)]) {
    let dir = tempfile::tempdir().expect("temp dir");
    run(Command::new("unzip")
        .arg("-q")
        .arg(path)
        .arg("-d")
        .arg(dir.path()));
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read extracted")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let mut want: Vec<&String> = expected.iter().map(|(name, _)| name).collect();
    want.sort();
    assert_eq!(names.iter().collect::<Vec<_>>(), want);
    for (name, body) in expected {
        let got = std::fs::read(dir.path().join(name)).expect("extracted frame");
        assert!(got == body[..], "{name} differs");
    }
}
