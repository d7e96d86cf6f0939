//! The file header and the block headers: what a .blend says about itself before its blocks.

use std::io;

use crate::source::Source;
use crate::{BlendError, BlenderVersion};

#[derive(Debug, Clone, Copy)]
pub(crate) enum HeadKind {
    /// `code, len: i32, old: u32, sdna: i32, nr: i32` (20 bytes): a 32-bit Blender's file.
    Small4,
    /// `code, len: i32, old: u64, sdna: i32, nr: i32` (24 bytes).
    Small,
    /// `code, sdna: i32, old: u64, len: i64, nr: i64` (32 bytes), Blender 5.0 and later.
    Large,
}

pub(crate) struct Header {
    pub(crate) version: BlenderVersion,
    pub(crate) head: HeadKind,
}

pub(crate) fn io_error(err: io::Error, what: &str) -> BlendError {
    if let Some(passed) = crate::bound::passed(&err) {
        return BlendError::TooLarge {
            decompressed: passed.decompressed,
            compressed: passed.compressed,
        };
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof => BlendError::Truncated(format!("it ends inside {what}")),
        io::ErrorKind::InvalidData | io::ErrorKind::Other => {
            BlendError::Corrupt(format!("its compressed data is damaged ({err})"))
        }
        _ => BlendError::Io(err),
    }
}

/// The version in the file header, and nothing else.
pub(crate) fn version(src: &mut impl Source) -> Result<BlenderVersion, BlendError> {
    read_header(src).map(|header| header.version)
}

pub(crate) fn read_header(src: &mut impl Source) -> Result<Header, BlendError> {
    let mut head = [0u8; 12];
    src.fill(&mut head).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            BlendError::NotBlend("it is shorter than a Blender file header".into())
        }
        _ => io_error(e, "the file header"),
    })?;
    if !head.starts_with(b"BLENDER") {
        return Err(BlendError::NotBlend(format!(
            "it starts with {}, not `BLENDER`",
            crate::sniff::describe(&head)
        )));
    }
    let bad = || {
        BlendError::NotBlend(format!(
            "its header {} is not one Blender writes",
            crate::sniff::describe(&head)
        ))
    };
    let digits = |b: &[u8]| -> Option<u16> {
        if b.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(b).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (pointer, endian, version, mut kind) = if head[7].is_ascii_digit() {
        // Blender 5.0+: `BLENDER17-01v0500`: header size, pointer size, format, endian, version.
        let size = digits(&head[7..9]).ok_or_else(bad)?;
        if size != 17 {
            return Err(bad());
        }
        let mut rest = [0u8; 5];
        src.fill(&mut rest)
            .map_err(|e| io_error(e, "the file header"))?;
        let format = digits(&head[10..12]).ok_or_else(bad)?;
        let kind = match format {
            0 => HeadKind::Small,
            1 => HeadKind::Large,
            _ => {
                return Err(BlendError::NotBlend(format!(
                "its block format {format} is newer than this reader knows (format 1, Blender 5.x)"
            )))
            }
        };
        let version = digits(&rest[1..5]).ok_or_else(bad)?;
        (head[9], rest[0], version, kind)
    } else {
        let version = digits(&head[9..12]).ok_or_else(bad)?;
        (head[7], head[8], version, HeadKind::Small)
    };
    match (pointer, kind) {
        (b'-', _) => {}
        (b'_', HeadKind::Small) => kind = HeadKind::Small4,
        _ => return Err(bad()),
    }
    match endian {
        b'v' => {}
        b'V' => return Err(BlendError::BigEndian),
        _ => return Err(bad()),
    }
    let version = BlenderVersion {
        major: version / 100,
        minor: version % 100,
    };
    Ok(Header {
        version,
        head: kind,
    })
}

pub(crate) struct BHead {
    pub(crate) code: [u8; 4],
    pub(crate) sdna: usize,
    pub(crate) old: u64,
    pub(crate) len: u64,
}

pub(crate) fn read_bhead(src: &mut impl Source, kind: HeadKind) -> Result<BHead, BlendError> {
    let i32_at = |b: &[u8], at: usize| i32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let u64_at = |b: &[u8], at: usize| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(v)
    };
    let (code, sdna, old, len) = match kind {
        HeadKind::Small4 | HeadKind::Small => {
            // `old` is the pointer: 4 bytes in a 32-bit Blender's file, else 8.
            let wide = matches!(kind, HeadKind::Small);
            let mut b = [0u8; 24];
            let size = if wide { 24 } else { 20 };
            src.fill(&mut b[..size])
                .map_err(|e| io_error(e, "a block header"))?;
            let (old, sdna_at) = if wide {
                (u64_at(&b, 8), 16)
            } else {
                (
                    u64::from(u32::from_le_bytes([b[8], b[9], b[10], b[11]])),
                    12,
                )
            };
            (
                [b[0], b[1], b[2], b[3]],
                i64::from(i32_at(&b, sdna_at)),
                old,
                i64::from(i32_at(&b, 4)),
            )
        }
        HeadKind::Large => {
            let mut b = [0u8; 32];
            src.fill(&mut b)
                .map_err(|e| io_error(e, "a block header"))?;
            (
                [b[0], b[1], b[2], b[3]],
                i64::from(i32_at(&b, 4)),
                u64_at(&b, 8),
                u64_at(&b, 16) as i64,
            )
        }
    };
    let len = u64::try_from(len).map_err(|_| {
        BlendError::Corrupt(format!(
            "block `{}` has a negative length",
            String::from_utf8_lossy(&code)
        ))
    })?;
    Ok(BHead {
        code,
        sdna: usize::try_from(sdna).unwrap_or(usize::MAX),
        old,
        len,
    })
}
