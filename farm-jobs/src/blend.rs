//! Reading an uploaded `.blend` where it lies, with ranged reads: nothing is downloaded whole.
//!
//! The trigger Lambda has 512 MiB of `/tmp` and little memory, and a project's `.blend` can be
//! several GiB. `farm-blend` needs only the file header, the block headers and the few blocks
//! that hold the facts (and, in a zstd file, its seek table and the frames holding those): it
//! seeks past everything else. [`read_blend`] gives it a `Read + Seek` view of the object whose
//! reads become [`Storage::get_range`] calls, each conditional on the object's ETag, so every
//! byte comes from the version the event named.
//!
//! Windows start at [`MIN_WINDOW`] where the reader jumps and double, up to [`MAX_WINDOW`],
//! while it reads straight on (a gzip file, which has no index, is streamed through that way,
//! in bounded memory). The reader runs on a blocking thread; its reads are answered by the
//! async side, so this works on any Tokio runtime and borrows the storage.

use std::io::{self, Read, Seek, SeekFrom};

use bytes::Bytes;
use farm_blend::{BlendError, BlendInfo};
use farm_core::storage::StorageError;
use farm_core::Storage;
use tokio::sync::{mpsc, oneshot};

/// The range asked for where the reader jumps: the block headers near each other share it.
pub const MIN_WINDOW: u64 = 256 << 10;

/// The largest range asked for, reached by reading straight on.
pub const MAX_WINDOW: u64 = 16 << 20;

/// Reads the `.blend` at `key`, of `size` bytes, only while it still has `etag`.
///
/// `Ok(Err(reason))` when the file cannot be read as a .blend (the reader's error, for the
/// user; [`farm_blend::BlendError::TooLarge`] for a decompression bomb); `Err` for storage failures: [`StorageError::Changed`] when the object was replaced
/// while it was read, [`StorageError::NotFound`] when it was deleted.
pub async fn read_blend<S: Storage>(
    storage: &S,
    key: &str,
    etag: &str,
    size: u64,
) -> Result<Result<BlendInfo, BlendError>, StorageError> {
    read_blend_from(storage, key, etag, size, Bytes::new()).await
}

/// [`read_blend`] for a caller that already read the object's first bytes, `head` (at
/// `etag`): the reader starts from them instead of reading them again.
pub async fn read_blend_from<S: Storage>(
    storage: &S,
    key: &str,
    etag: &str,
    size: u64,
    head: Bytes,
) -> Result<Result<BlendInfo, BlendError>, StorageError> {
    let (requests, mut asked) = mpsc::channel::<RangeRequest>(1);
    let reader = RangedReader::new(size, head, requests);
    let parse = tokio::task::spawn_blocking(move || farm_blend::read_seekable(reader));
    let mut failed = None;
    while let Some(request) = asked.recv().await {
        let answer = match failed {
            Some(_) => Err(io::Error::other("an earlier read of the object failed")),
            None => storage
                .get_range(key, request.offset, request.len, Some(etag))
                .await
                .map_err(|err| {
                    let io = io::Error::other(err.to_string());
                    failed = Some(err);
                    io
                }),
        };
        // The reader stops waiting only by ending; then nobody needs the answer.
        let _ = request.reply.send(answer);
    }
    let read = match parse.await {
        Ok(read) => read,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    };
    match failed {
        Some(err) => Err(err),
        None => Ok(read),
    }
}

/// One ranged read the reader waits for.
struct RangeRequest {
    offset: u64,
    len: u64,
    reply: oneshot::Sender<io::Result<Bytes>>,
}

/// A `Read + Seek` view of an object, for a blocking thread: each read outside the bytes held
/// asks the async side for the next window.
struct RangedReader {
    size: u64,
    pos: u64,
    window: Bytes,
    window_start: u64,
    window_len: u64,
    requests: mpsc::Sender<RangeRequest>,
}

impl RangedReader {
    fn new(size: u64, head: Bytes, requests: mpsc::Sender<RangeRequest>) -> Self {
        Self {
            size,
            pos: 0,
            window: head,
            window_start: 0,
            window_len: MIN_WINDOW,
            requests,
        }
    }

    fn window_end(&self) -> u64 {
        self.window_start + self.window.len() as u64
    }

    /// Fetches the window starting at the current position.
    fn fetch(&mut self) -> io::Result<()> {
        let straight_on = !self.window.is_empty() && self.pos == self.window_end();
        self.window_len = if straight_on {
            (self.window_len * 2).min(MAX_WINDOW)
        } else {
            MIN_WINDOW
        };
        let len = self.window_len.min(self.size - self.pos);
        let (reply, answer) = oneshot::channel();
        let request = RangeRequest {
            offset: self.pos,
            len,
            reply,
        };
        let abandoned = || io::Error::other("the read of the object was abandoned");
        self.requests
            .blocking_send(request)
            .map_err(|_| abandoned())?;
        let bytes = answer.blocking_recv().map_err(|_| abandoned())??;
        if bytes.is_empty() {
            // The object is shorter than its size said.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.window = bytes;
        self.window_start = self.pos;
        Ok(())
    }
}

impl Read for RangedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        if self.pos < self.window_start || self.pos >= self.window_end() {
            self.fetch()?;
        }
        let at = usize::try_from(self.pos - self.window_start)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let held = &self.window[at..];
        let n = buf.len().min(held.len());
        buf[..n].copy_from_slice(&held[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the object",
            )
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers the reader's requests from `body` on a thread, recording them.
    fn serve(body: Vec<u8>) -> (RangedReader, std::thread::JoinHandle<Vec<(u64, u64)>>) {
        let (requests, mut asked) = mpsc::channel::<RangeRequest>(1);
        let size = body.len() as u64;
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(request) = asked.blocking_recv() {
                seen.push((request.offset, request.len));
                let start = usize::try_from(request.offset).unwrap().min(body.len());
                let end = (start + usize::try_from(request.len).unwrap()).min(body.len());
                let _ = request
                    .reply
                    .send(Ok(Bytes::copy_from_slice(&body[start..end])));
            }
            seen
        });
        (RangedReader::new(size, Bytes::new(), requests), server)
    }

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn reading_straight_on_doubles_the_window_up_to_the_largest() {
        let len = 3 * MAX_WINDOW as usize;
        let (mut reader, server) = serve(body(len));
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, body(len));
        drop(reader);
        let seen = server.join().unwrap();
        let lens: Vec<u64> = seen.iter().map(|&(_, len)| len).collect();
        assert_eq!(
            lens[..4],
            [MIN_WINDOW, 2 * MIN_WINDOW, 4 * MIN_WINDOW, 8 * MIN_WINDOW]
        );
        assert!(lens.iter().all(|&l| l <= MAX_WINDOW));
        assert!(
            lens.iter().filter(|&&l| l == MAX_WINDOW).count() >= 2,
            "{lens:?}"
        );
        // Each range starts where the last one ended.
        for pair in seen.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + pair[0].1);
        }
    }

    #[test]
    fn a_jump_reads_a_small_window_and_a_read_inside_it_asks_nothing() {
        let len = 64 * MIN_WINDOW as usize;
        let (mut reader, server) = serve(body(len));
        let mut four = [0u8; 4];
        reader.seek(SeekFrom::End(-4)).unwrap();
        reader.read_exact(&mut four).unwrap();
        assert_eq!(four[..], body(len)[len - 4..]);
        let middle = 20 * MIN_WINDOW;
        reader.seek(SeekFrom::Start(middle)).unwrap();
        reader.read_exact(&mut four).unwrap();
        reader.seek(SeekFrom::Current(100)).unwrap();
        reader.read_exact(&mut four).unwrap();
        assert_eq!(
            four[..],
            body(len)[middle as usize + 104..middle as usize + 108]
        );
        // Past the end: nothing, and no request.
        reader.seek(SeekFrom::Start(len as u64 + 10)).unwrap();
        assert_eq!(reader.read(&mut four).unwrap(), 0);
        assert!(reader.seek(SeekFrom::Current(-(len as i64) - 100)).is_err());
        drop(reader);
        assert_eq!(
            server.join().unwrap(),
            [(len as u64 - 4, 4), (middle, MIN_WINDOW)]
        );
    }

    #[test]
    fn an_object_shorter_than_its_size_is_an_unexpected_end() {
        let (requests, mut asked) = mpsc::channel::<RangeRequest>(1);
        let server = std::thread::spawn(move || {
            while let Some(request) = asked.blocking_recv() {
                let _ = request.reply.send(Ok(Bytes::new()));
            }
        });
        let mut reader = RangedReader::new(100, Bytes::new(), requests);
        let err = reader.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(reader);
        server.join().unwrap();
    }
}
