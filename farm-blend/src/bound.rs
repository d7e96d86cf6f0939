//! How far a compressed .blend may decompress: a ratio to its compressed size and an absolute
//! cap, checked as the walk moves through the decompressed bytes (read or skipped), so a
//! decompression bomb (a small file padded with zeros, compressed) stops early with an error
//! naming both bounds instead of being walked to its end.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::source::Source;

/// Most decompressed bytes per compressed byte. Blender's own zstd and gzip files of real scenes
/// stay far below it (meshes, node trees and packed PNGs compress a few times, not hundreds).
pub const MAX_RATIO: u64 = 128;
/// Most decompressed bytes of any compressed .blend, whatever its compressed size.
pub const MAX_DECOMPRESSED: u64 = 16 << 30;
/// Compressed bytes granted before any are read, so that a stream's first bytes may run ahead
/// of the ratio (a stream's compressed size is known only as it is read).
const STREAM_HEAD: u64 = 1 << 20;

/// The bound a walk passed, for [`crate::BlendError::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decompression bound passed at {decompressed} bytes of {compressed} compressed")]
pub(crate) struct Passed {
    pub(crate) decompressed: u64,
    pub(crate) compressed: u64,
}

/// Compressed bytes: known up front (a file), or counted as a stream is read.
#[derive(Debug, Clone)]
pub(crate) enum Compressed {
    Known(u64),
    Counted(Rc<Cell<u64>>),
}

impl Compressed {
    fn bytes(&self) -> u64 {
        match self {
            Self::Known(n) => *n,
            Self::Counted(n) => n.get().saturating_add(STREAM_HEAD),
        }
    }
}

/// A source whose position may not pass [`MAX_RATIO`] x the compressed size, nor
/// [`MAX_DECOMPRESSED`].
pub(crate) struct Bounded<S> {
    inner: S,
    compressed: Compressed,
    pos: u64,
}

impl<S: Source> Bounded<S> {
    pub(crate) fn new(inner: S, compressed: Compressed) -> Self {
        Self {
            inner,
            compressed,
            pos: 0,
        }
    }

    /// Moves the position `n` bytes on, failing past the bound before any byte is decoded.
    fn advance(&mut self, n: u64) -> io::Result<()> {
        let pos = self.pos.saturating_add(n);
        let compressed = self.compressed.bytes();
        let allowed = compressed.saturating_mul(MAX_RATIO).min(MAX_DECOMPRESSED);
        if pos > allowed {
            return Err(io::Error::other(Passed {
                decompressed: pos,
                compressed: match &self.compressed {
                    Compressed::Known(n) => *n,
                    Compressed::Counted(n) => n.get(),
                },
            }));
        }
        self.pos = pos;
        Ok(())
    }
}

impl<S: Source> Source for Bounded<S> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.advance(buf.len() as u64)?;
        self.inner.fill(buf)
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        self.advance(n)?;
        self.inner.skip(n)
    }

    fn read_vec(&mut self, n: u64) -> io::Result<Vec<u8>> {
        self.advance(n)?;
        self.inner.read_vec(n)
    }
}

/// A reader counting the bytes read through it.
pub(crate) struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> Counting<R> {
    pub(crate) fn new(inner: R) -> (Self, Compressed) {
        let count = Rc::new(Cell::new(0));
        (
            Self {
                inner,
                count: Rc::clone(&count),
            },
            Compressed::Counted(count),
        )
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// The bound `err` reports, if it is one.
pub(crate) fn passed(err: &io::Error) -> Option<Passed> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<Passed>())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Stream;

    #[test]
    fn the_position_may_not_pass_the_ratio_nor_the_cap() {
        let zeros = vec![0u8; 4096];
        let mut src = Bounded::new(Stream(&zeros[..]), Compressed::Known(10));
        src.skip(10 * MAX_RATIO).unwrap();
        let err = src.fill(&mut [0u8; 1]).unwrap_err();
        assert_eq!(
            passed(&err),
            Some(Passed {
                decompressed: 10 * MAX_RATIO + 1,
                compressed: 10
            })
        );
        let mut src = Bounded::new(Stream(&zeros[..]), Compressed::Known(u64::MAX / 2));
        let err = src.skip(MAX_DECOMPRESSED + 1).unwrap_err();
        assert!(passed(&err).is_some(), "{err}");
    }
}
