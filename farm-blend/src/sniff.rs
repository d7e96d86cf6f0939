//! Recognising a `.blend` from its first bytes, before paying for a render (the trigger, the
//! renderer): its magic numbers, which the reader's own entry points also decide by.

use std::io::Read;

/// How many leading bytes [`sniff`] wants; fewer are fine for a short file.
pub const SNIFF_LEN: usize = 256 * 1024;

use crate::Compression;

const MAGIC: &[u8] = b"BLENDER";
/// What the reader decides a plain file by (the rest of `BLENDER` is checked as it reads).
const PLAIN_MAGIC: &[u8] = b"BLEN";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
pub(crate) const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How a file starting with `head` is stored, judged by its magic number alone; `None` if it
/// is no .blend (nor a gzip or zstd stream that could hold one).
pub(crate) fn storage_of(head: &[u8]) -> Option<Compression> {
    if head.starts_with(PLAIN_MAGIC) {
        Some(Compression::None)
    } else if head.starts_with(GZIP_MAGIC) {
        Some(Compression::Gzip)
    } else if head.starts_with(ZSTD_MAGIC) {
        Some(Compression::Zstd)
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotABlend {
    #[error("not a .blend file: it is empty")]
    Empty,
    #[error("not a .blend file: it starts with {found}, not `BLENDER` (nor a gzip or zstd stream of one); use a file saved by Blender")]
    Header { found: String },
    #[error("not a .blend file: its {encoding} stream does not hold a Blender file")]
    Compressed { encoding: &'static str },
}

/// Tells whether `prefix`, the first bytes of a file, is a .blend and how it is stored.
///
/// A compressed prefix is decompressed far enough to see Blender's header when it can be; a
/// prefix too short to decode is judged by its magic number alone.
pub fn sniff(prefix: &[u8]) -> Result<Compression, NotABlend> {
    if prefix.is_empty() {
        return Err(NotABlend::Empty);
    }
    match storage_of(prefix) {
        Some(Compression::None) if prefix.starts_with(MAGIC) => Ok(Compression::None),
        Some(Compression::Gzip) => {
            let decoder = flate2::read::GzDecoder::new(prefix);
            check_inner(decoder, "gzip").map(|()| Compression::Gzip)
        }
        Some(Compression::Zstd) => match ruzstd::decoding::StreamingDecoder::new(prefix) {
            Ok(decoder) => check_inner(decoder, "zstd").map(|()| Compression::Zstd),
            Err(_) => Err(NotABlend::Compressed { encoding: "zstd" }),
        },
        _ => Err(NotABlend::Header {
            found: describe(prefix),
        }),
    }
}

fn check_inner(mut decoder: impl Read, encoding: &'static str) -> Result<(), NotABlend> {
    let mut head = [0u8; MAGIC.len()];
    let mut filled = 0;
    while filled < head.len() {
        match decoder.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            // The prefix ended inside the first block: the magic number is all we can judge by.
            Err(_) if filled == 0 => return Ok(()),
            Err(_) => break,
        }
    }
    if filled == 0 {
        return Ok(());
    }
    if head[..filled] == MAGIC[..filled] && filled == MAGIC.len() {
        Ok(())
    } else {
        Err(NotABlend::Compressed { encoding })
    }
}

/// The first bytes of a file, as text if they read as text, else in hex.
pub(crate) fn describe(prefix: &[u8]) -> String {
    let head = &prefix[..prefix.len().min(8)];
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("`{}`", String::from_utf8_lossy(head))
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &[u8] = b"BLENDER-v304RENDH\x00\x00\x00";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    // A zstd frame holding `data` in one raw block: valid zstd without needing an encoder.
    fn zstd_raw(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x28, 0xb5, 0x2f, 0xfd];
        out.push(0x20); // frame header: single segment, 1-byte content size
        out.push(data.len() as u8);
        let block_header = ((data.len() as u32) << 3) | 1; // last block, raw
        out.extend_from_slice(&block_header.to_le_bytes()[..3]);
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn plain_gzip_and_zstd_blends_are_recognised() {
        assert_eq!(sniff(HEADER), Ok(Compression::None));
        assert_eq!(sniff(&gzip(HEADER)), Ok(Compression::Gzip));
        assert_eq!(sniff(&zstd_raw(HEADER)), Ok(Compression::Zstd));
    }

    #[test]
    fn other_files_are_refused_with_what_they_start_with() {
        let err = sniff(b"PK\x03\x04zipdata").unwrap_err();
        assert!(err.to_string().contains("bytes 50 4b 03 04"), "{err}");
        let err = sniff(b"hello world").unwrap_err();
        assert!(err.to_string().contains("`hello wo`"), "{err}");
        assert_eq!(sniff(b""), Err(NotABlend::Empty));
        assert_eq!(
            sniff(b"BLEND"),
            Err(NotABlend::Header {
                found: "`BLEND`".into()
            })
        );
    }

    #[test]
    fn compressed_files_that_hold_something_else_are_refused() {
        assert_eq!(
            sniff(&gzip(b"not a blend at all")),
            Err(NotABlend::Compressed { encoding: "gzip" })
        );
        assert_eq!(
            sniff(&zstd_raw(b"not a blend at all")),
            Err(NotABlend::Compressed { encoding: "zstd" })
        );
    }

    #[test]
    fn a_compressed_prefix_too_short_to_decode_is_judged_by_its_magic() {
        let full = gzip(HEADER);
        assert_eq!(sniff(&full[..4]), Ok(Compression::Gzip));
    }
}
