//! Byte sources for the block walk: plain (seeking past blocks when it can), gzip and zstd
//! (decoding past them), all read forward once.

use std::io::{self, BufRead, BufReader, Read, Seek};

/// What the block walk needs from the file's bytes.
pub(crate) trait Source {
    /// Fills `buf` completely, or fails (`UnexpectedEof` at the end of the data).
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()>;
    /// Moves `n` bytes forward without keeping them.
    fn skip(&mut self, n: u64) -> io::Result<()>;
    /// Reads exactly `n` bytes. The buffer grows with the bytes that actually arrive, so a
    /// lying length costs nothing before the data runs out.
    fn read_vec(&mut self, n: u64) -> io::Result<Vec<u8>>;
}

/// Any reader, skipped by reading.
pub(crate) struct Stream<R>(pub(crate) R);

impl<R: BufRead> Source for Stream<R> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf)
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let skipped = io::copy(&mut (&mut self.0).take(n), &mut io::sink())?;
        if skipped < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    fn read_vec(&mut self, n: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self.0).take(n).read_to_end(&mut out)?;
        if (out.len() as u64) < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(out)
    }
}

/// An uncompressed file that can seek: blocks we do not need are never read.
pub(crate) struct Seeking<R> {
    inner: BufReader<R>,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Seeking<R> {
    pub(crate) fn new(mut inner: R) -> io::Result<Self> {
        let pos = inner.stream_position()?;
        let len = inner.seek(io::SeekFrom::End(0))?;
        inner.seek(io::SeekFrom::Start(pos))?;
        Ok(Self {
            inner: BufReader::with_capacity(64 * 1024, inner),
            len,
            pos,
        })
    }
}

impl<R: Read + Seek> Source for Seeking<R> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let target = self.pos.checked_add(n).filter(|&t| t <= self.len);
        let Some(target) = target else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        let delta = i64::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        self.inner.seek_relative(delta)?;
        self.pos = target;
        Ok(())
    }

    fn read_vec(&mut self, n: u64) -> io::Result<Vec<u8>> {
        if self.pos.saturating_add(n) > self.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut out = Vec::new();
        (&mut self.inner).take(n).read_to_end(&mut out)?;
        self.pos += out.len() as u64;
        if (out.len() as u64) < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(out)
    }
}

/// A zstd stream of any number of frames (Blender writes many, then a skippable seek table).
pub(crate) struct MultiZstd<R: BufRead> {
    decoder:
        Option<ruzstd::decoding::StreamingDecoder<ChainMagic<R>, ruzstd::decoding::FrameDecoder>>,
    source: Option<R>,
}

impl<R: BufRead> MultiZstd<R> {
    pub(crate) fn new(source: R) -> Self {
        Self {
            decoder: None,
            source: Some(source),
        }
    }

    /// Starts the next data frame, skipping skippable ones. `Ok(false)` at the clean end.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            let Some(mut source) = self.source.take() else {
                return Ok(false);
            };
            if source.fill_buf()?.is_empty() {
                self.source = Some(source);
                return Ok(false);
            }
            let mut magic = [0u8; 4];
            source.read_exact(&mut magic)?;
            let magic_value = u32::from_le_bytes(magic);
            if magic_value & 0xFFFF_FFF0 == 0x184D_2A50 {
                let mut len = [0u8; 4];
                source.read_exact(&mut len)?;
                let len = u64::from(u32::from_le_bytes(len));
                let skipped = io::copy(&mut (&mut source).take(len), &mut io::sink())?;
                if skipped < len {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.source = Some(source);
                continue;
            }
            let chained = ChainMagic {
                magic,
                used: 0,
                inner: source,
            };
            return match ruzstd::decoding::StreamingDecoder::new(chained) {
                Ok(decoder) => {
                    self.decoder = Some(decoder);
                    Ok(true)
                }
                Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            };
        }
    }
}

/// Puts back the four magic bytes we peeked at.
pub(crate) struct ChainMagic<R> {
    magic: [u8; 4],
    used: usize,
    inner: R,
}

impl<R: Read> Read for ChainMagic<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.used < 4 {
            let n = (4 - self.used).min(buf.len());
            buf[..n].copy_from_slice(&self.magic[self.used..self.used + n]);
            self.used += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl<R: BufRead> Read for MultiZstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(decoder) = self.decoder.as_mut() {
                let n = decoder.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                let decoder = self.decoder.take();
                self.source = decoder.map(|d| d.into_inner().inner);
            }
            if !self.next_frame()? {
                return Ok(0);
            }
        }
    }
}
