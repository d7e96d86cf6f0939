//! Decompression bombs, made in a test: a zstd stream whose runs of zeros are RLE blocks (4
//! bytes per 128 KiB), so gigabytes of zeros compress to a few hundred KiB.

/// One part of a [`zstd_frame`].
#[derive(Debug, Clone, Copy)]
pub enum ZstdPart<'a> {
    /// Bytes stored as they are (raw blocks).
    Bytes(&'a [u8]),
    /// This many zero bytes (RLE blocks).
    Zeros(u64),
}

/// Largest block zstd allows.
const BLOCK: u64 = 128 * 1024;

/// A zstd stream of one frame (no content size, a 128 KiB window, no seek table) holding
/// `parts` in order.
pub fn zstd_frame(parts: &[ZstdPart<'_>]) -> Vec<u8> {
    // (block type, decoded size, body): 0 raw, 1 RLE.
    let mut blocks: Vec<(u32, u32, &[u8])> = Vec::new();
    for part in parts {
        match *part {
            ZstdPart::Bytes(bytes) => {
                for chunk in bytes.chunks(BLOCK as usize) {
                    blocks.push((0, chunk.len() as u32, chunk));
                }
            }
            ZstdPart::Zeros(mut left) => {
                while left > 0 {
                    let n = left.min(BLOCK);
                    blocks.push((1, n as u32, &[0]));
                    left -= n;
                }
            }
        }
    }
    // Magic; frame header descriptor 0 (no content size, no checksum); window 2^17 bytes.
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let last = blocks.len().saturating_sub(1);
    if blocks.is_empty() {
        blocks.push((0, 0, &[]));
    }
    for (i, (kind, size, body)) in blocks.into_iter().enumerate() {
        let header = u32::from(i == last) | kind << 1 | size << 3;
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(body);
    }
    out
}

/// A zstd .blend of `header` (a Blender file header, e.g. `BLENDER-v304`) followed by `zeros`
/// zero bytes: empty block headers a reader walks one by one, never reaching the end.
pub fn zstd_blend_bomb(header: &[u8], zeros: u64) -> Vec<u8> {
    zstd_frame(&[ZstdPart::Bytes(header), ZstdPart::Zeros(zeros)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_holds_its_parts_compressed() {
        let bomb = zstd_blend_bomb(b"BLENDER-v304", 1 << 30);
        assert!(bomb.len() < 40 * 1024, "{}", bomb.len());
        assert_eq!(&bomb[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    }
}
