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

/// Largest decompressed frame [`SeekableZstd`] holds; a seek table naming a larger one is not
/// used (the stream is then decoded from the start instead), so memory stays bounded.
const MAX_SEEKABLE_FRAME: u64 = 16 * 1024 * 1024;
/// `Seekable_Magic_Number` closing a zstd seek table.
const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// The skippable-frame magic number the seek table is stored under.
const SEEK_TABLE_FRAME_MAGIC: u32 = 0x184D_2A5E;
/// Seek table footer: frame count (4), descriptor (1), magic (4).
const SEEK_FOOTER_LEN: u64 = 9;

/// One frame of a seekable zstd stream.
#[derive(Debug, Clone, Copy)]
struct ZstdFrame {
    compressed_offset: u64,
    compressed_len: u64,
    start: u64,
    len: u64,
}

/// A zstd file in the seekable format Blender writes (independent frames, then a seek table):
/// a block that is not needed is skipped without decoding the frames that lie wholly inside
/// it. Holds one decoded frame at a time.
pub(crate) struct SeekableZstd<R> {
    inner: R,
    frames: Vec<ZstdFrame>,
    total: u64,
    pos: u64,
    /// The decoded frame `pos` is in, if loaded: its index and bytes.
    current: Option<(usize, Vec<u8>)>,
}

impl<R: Read + Seek> SeekableZstd<R> {
    /// Reads the seek table at the end of `inner` (which starts at the stream's first byte).
    /// `Ok(None)` when there is none, or one that does not describe this file exactly, or one
    /// with a frame larger than [`MAX_SEEKABLE_FRAME`]: decode it as a stream then.
    pub(crate) fn open(mut inner: R) -> io::Result<Option<Self>> {
        let start = inner.stream_position()?;
        let end = inner.seek(io::SeekFrom::End(0))?;
        let file_len = end - start;
        if file_len < SEEK_FOOTER_LEN + 8 {
            return Ok(None);
        }
        let mut footer = [0u8; SEEK_FOOTER_LEN as usize];
        inner.seek(io::SeekFrom::Start(end - SEEK_FOOTER_LEN))?;
        inner.read_exact(&mut footer)?;
        let count = u64::from(u32::from_le_bytes([
            footer[0], footer[1], footer[2], footer[3],
        ]));
        let descriptor = footer[4];
        let magic = u32::from_le_bytes([footer[5], footer[6], footer[7], footer[8]]);
        if magic != SEEKABLE_MAGIC || descriptor & 0x7C != 0 {
            return Ok(None);
        }
        let entry_len: u64 = if descriptor & 0x80 != 0 { 12 } else { 8 };
        let table_len = count * entry_len + SEEK_FOOTER_LEN;
        if table_len + 8 > file_len {
            return Ok(None);
        }
        let table_start = end - table_len - 8;
        inner.seek(io::SeekFrom::Start(table_start))?;
        let mut header = [0u8; 8];
        inner.read_exact(&mut header)?;
        let frame_magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let frame_len = u64::from(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        if frame_magic != SEEK_TABLE_FRAME_MAGIC || frame_len != table_len {
            return Ok(None);
        }
        // The table's size was checked against the file's: it is at most the file's length.
        let mut table = vec![0u8; usize::try_from(count * entry_len).unwrap_or(0)];
        inner.read_exact(&mut table)?;
        let mut frames = Vec::with_capacity(table.len() / entry_len as usize);
        let (mut compressed_offset, mut decoded) = (start, 0u64);
        for entry in table.chunks_exact(entry_len as usize) {
            let compressed_len =
                u64::from(u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]));
            let len = u64::from(u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]));
            if len > MAX_SEEKABLE_FRAME {
                return Ok(None);
            }
            frames.push(ZstdFrame {
                compressed_offset,
                compressed_len,
                start: decoded,
                len,
            });
            compressed_offset += compressed_len;
            decoded += len;
        }
        // The frames must tile the file up to the table exactly.
        if compressed_offset != table_start {
            return Ok(None);
        }
        Ok(Some(Self {
            inner,
            frames,
            total: decoded,
            pos: 0,
            current: None,
        }))
    }

    /// The decoded frame holding `self.pos`, loading it if needed, and the offset in it.
    fn frame_at_pos(&mut self) -> io::Result<(&[u8], usize)> {
        let index = match &self.current {
            Some((index, _))
                if self.frames[*index].start + self.frames[*index].len > self.pos
                    && self.frames[*index].start <= self.pos =>
            {
                *index
            }
            _ => {
                let index = self.frames.partition_point(|f| f.start + f.len <= self.pos);
                let frame = *self
                    .frames
                    .get(index)
                    .ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))?;
                self.current = Some((index, self.decode(frame)?));
                index
            }
        };
        let frame = self.frames[index];
        let offset = usize::try_from(self.pos - frame.start).unwrap_or(usize::MAX);
        let bytes = self.current.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
        Ok((bytes, offset))
    }

    fn decode(&mut self, frame: ZstdFrame) -> io::Result<Vec<u8>> {
        self.inner
            .seek(io::SeekFrom::Start(frame.compressed_offset))?;
        let compressed = (&mut self.inner).take(frame.compressed_len);
        let mut decoder = ruzstd::decoding::StreamingDecoder::new(compressed)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut out = Vec::new();
        (&mut decoder).take(frame.len + 1).read_to_end(&mut out)?;
        if out.len() as u64 != frame.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a zstd frame does not decode to the size its seek table gives",
            ));
        }
        Ok(out)
    }

    /// Copies up to `buf.len()` bytes at `pos` (at least one unless at the end).
    fn copy_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.total {
            return Ok(0);
        }
        let (bytes, offset) = self.frame_at_pos()?;
        let n = buf.len().min(bytes.len() - offset);
        buf[..n].copy_from_slice(&bytes[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Source for SeekableZstd<R> {
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.copy_some(&mut buf[filled..])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        Ok(())
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let target = self.pos.checked_add(n).filter(|&t| t <= self.total);
        self.pos = target.ok_or(io::Error::from(io::ErrorKind::UnexpectedEof))?;
        Ok(())
    }

    fn read_vec(&mut self, n: u64) -> io::Result<Vec<u8>> {
        if self.pos.saturating_add(n) > self.total {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Grows with the bytes decoded, one frame (at most 16 MiB) at a time.
        let mut out = Vec::new();
        let mut left = n;
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            match self.copy_some(&mut chunk[..want])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                got => {
                    out.extend_from_slice(&chunk[..got]);
                    left -= got as u64;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};

    /// A seekable zstd stream of `frames`, the one at `garbage` replaced by bytes that do not
    /// decode (same length, so the seek table still tiles the file).
    fn seekable(frames: &[Vec<u8>], garbage: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut entries = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let mut compressed = compress_to_vec(&frame[..], CompressionLevel::Fastest);
            if Some(i) == garbage {
                compressed.iter_mut().for_each(|b| *b = 0xAB);
            }
            entries.push((compressed.len() as u32, frame.len() as u32));
            out.extend_from_slice(&compressed);
        }
        let table_len = entries.len() as u32 * 8 + 9;
        out.extend_from_slice(&SEEK_TABLE_FRAME_MAGIC.to_le_bytes());
        out.extend_from_slice(&table_len.to_le_bytes());
        for (compressed, decoded) in &entries {
            out.extend_from_slice(&compressed.to_le_bytes());
            out.extend_from_slice(&decoded.to_le_bytes());
        }
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.push(0);
        out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        out
    }

    fn frames() -> Vec<Vec<u8>> {
        (0..4u8)
            .map(|n| {
                (0..1000u32)
                    .map(|i| n.wrapping_mul(31) ^ (i % 251) as u8)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn frames_inside_a_skipped_range_are_never_decoded() {
        let frames = frames();
        let whole: Vec<u8> = frames.concat();
        // Frame 2 (bytes 2000..3000) does not decode: reading it would fail.
        let file = seekable(&frames, Some(2));
        let mut source = SeekableZstd::open(io::Cursor::new(file))
            .unwrap()
            .expect("a usable seek table");
        let mut head = [0u8; 10];
        source.fill(&mut head).unwrap();
        assert_eq!(head, whole[..10]);
        // Across the frame 0 / frame 1 boundary.
        source.skip(985).unwrap();
        assert_eq!(source.read_vec(30).unwrap(), whole[995..1025]);
        // Past frames 1 and 2 into frame 3, without decoding frame 2.
        source.skip(3005 - 1025).unwrap();
        source.fill(&mut head).unwrap();
        assert_eq!(head, whole[3005..3015]);
        assert!(source.skip(1000).is_err(), "past the end");

        // Reading into the broken frame does fail, so it was skipped above, not decoded.
        let mut source = SeekableZstd::open(io::Cursor::new(seekable(&frames, Some(2))))
            .unwrap()
            .unwrap();
        source.skip(2500).unwrap();
        assert!(source.fill(&mut head).is_err());
    }

    #[test]
    fn a_table_that_does_not_describe_the_file_is_not_used() {
        let frames = frames();
        let mut file = seekable(&frames, None);
        // One frame's compressed size off by one: the frames no longer tile the file.
        let entry = file.len() - 9 - 4 * 8;
        file[entry] = file[entry].wrapping_add(1);
        assert!(SeekableZstd::open(io::Cursor::new(file)).unwrap().is_none());
        // No table at all: a plain zstd stream.
        let plain = compress_to_vec(&frames.concat()[..], CompressionLevel::Fastest);
        assert!(SeekableZstd::open(io::Cursor::new(plain))
            .unwrap()
            .is_none());
    }
}
