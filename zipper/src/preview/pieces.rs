//! The frame's pieces, as the decoder thread reads them.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Message;

/// The frame's pieces as one forward-only byte stream, read from the channel as the writer
/// sends them. Seeking is only supported to where the stream already is (the decoders need the
/// `Seek` bound but read straight through).
pub(super) struct Pieces<'r> {
    receiver: &'r mut mpsc::Receiver<Message>,
    piece: Bytes,
    position: u64,
    /// The frame's [`Message::End`] was seen (or the channel closed).
    ended: bool,
    /// The channel closed or a [`Message::Finish`] came before the frame's end: the feed is
    /// over.
    broken: bool,
}

impl<'r> Pieces<'r> {
    pub(super) fn new(receiver: &'r mut mpsc::Receiver<Message>) -> Self {
        Self {
            receiver,
            piece: Bytes::new(),
            position: 0,
            ended: false,
            broken: false,
        }
    }

    /// Makes `piece` non-empty unless the frame ended.
    fn refill(&mut self) {
        while self.piece.is_empty() && !self.ended {
            match self.receiver.blocking_recv() {
                Some(Message::Piece(bytes)) => self.piece = bytes,
                Some(Message::End) => self.ended = true,
                // The writer never starts a frame before ending the last: it stopped.
                Some(Message::Begin { .. } | Message::Finish) | None => {
                    self.ended = true;
                    self.broken = true;
                }
            }
        }
    }

    /// Skips the rest of the frame. `false` when the feed is over.
    pub(super) fn drain(mut self) -> bool {
        while !self.ended {
            self.piece = Bytes::new();
            self.refill();
        }
        !self.broken
    }
}

impl Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Pieces<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.refill();
        Ok(&self.piece)
    }

    fn consume(&mut self, amount: usize) {
        let amount = amount.min(self.piece.len());
        let _ = self.piece.split_to(amount);
        self.position += amount as u64;
    }
}

impl Seek for Pieces<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(n) => self.position.checked_add_signed(n),
            SeekFrom::End(_) => None,
        };
        match target {
            Some(target) if target >= self.position => {
                let skip = target - self.position;
                io::copy(&mut self.by_ref().take(skip), &mut io::sink())?;
                Ok(self.position)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a streamed frame cannot be read backwards",
            )),
        }
    }
}
