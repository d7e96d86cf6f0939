//! The contact sheet, `<key>/preview.jpg`, made from the frames as the archive streams them.
//!
//! The zip writer hands each sampled frame's bytes ([`farm_core::preview::sample`]) to a
//! [`Feed`]: a whole prefetched frame as one piece, a streamed frame chunk by chunk as it goes
//! into its entry. Nothing is downloaded twice. One decoder thread reads the pieces through a
//! forward-only reader and shrinks the frame into its thumbnail as it decodes, so it never holds
//! a decoded frame: PNG row by row, OpenEXR block by block (scene-linear, clipped and sRGB
//! encoded), JPEG at the smallest DCT scale that still covers the thumbnail. Other formats
//! (TIFF, BMP, Targa, HDR, WebP) and frames that do not decode get a grey placeholder tile with
//! their label, and a log line. The preview never fails the zip.
//!
//! The pieces travel through a bounded channel: when the decoder falls behind, the writer waits
//! (memory stays bounded by the zip's own window); the thread runs on the other core meanwhile.
//! After the archive is finished, [`Feed::finish`] encodes the sheet as a JPEG and the caller
//! writes it with one `put`, so a reader sees the previous sheet or the new one, never half.

use std::thread;

use bytes::{Bytes, BytesMut};
use farm_core::preview::{sample, Layout, Sheet, MAX_TILES};
use farm_jobs::FrameObject;
use tokio::sync::{mpsc, oneshot};

mod decode;
mod pieces;

use decode::thumbnail;
use pieces::Pieces;

/// Content type of the sheet.
pub const PREVIEW_CONTENT_TYPE: &str = "image/jpeg";

/// JPEG quality of the sheet: thumbnails stay crisp at a few hundred KiB for 64 tiles.
const QUALITY: u8 = 85;

/// Largest frame width and pixel count decoded (a 65,536-pixel-wide row of 16-bit RGBA is
/// 512 KiB of row buffer); larger frames get a placeholder.
const MAX_WIDTH: usize = 1 << 16;
const MAX_PIXELS: usize = 1 << 28;

/// Messages in flight between the writer and the decoder (a frame is at least three).
const CHANNEL: usize = 8;

/// A streamed frame arrives in network-sized chunks (often 16 KiB): they are gathered into
/// pieces of this size before being handed over, so the writer and the decoder thread do not
/// wake each other a thousand times per frame. At most `CHANNEL` pieces wait: 2 MiB.
const PIECE_BYTES: usize = 256 * 1024;

enum Message {
    /// The next sampled frame begins: its tile, number and extension.
    Begin {
        tile: usize,
        frame: i32,
        extension: String,
    },
    /// Bytes of the current frame, in order.
    Piece(Bytes),
    /// The current frame is complete.
    End,
    /// The archive is finished: encode the sheet.
    Finish,
}

/// The writer's end: which frames to hand over, and the channel to the decoder thread.
#[derive(Debug)]
pub(crate) struct Feed {
    /// Positions (in the archive's frame order) of the sampled frames, ascending, paired with
    /// their tile; empty when the preview is off.
    tiles: Vec<usize>,
    sender: Option<mpsc::Sender<Message>>,
    result: Option<oneshot::Receiver<Option<Vec<u8>>>>,
    /// Whether the current frame is being handed over.
    current: bool,
    /// Small chunks of the current frame not handed over yet.
    pending: BytesMut,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Begin { tile, frame, .. } => write!(f, "Begin(tile {tile}, frame {frame})"),
            Self::Piece(bytes) => write!(f, "Piece({} bytes)", bytes.len()),
            Self::End => f.write_str("End"),
            Self::Finish => f.write_str("Finish"),
        }
    }
}

impl Feed {
    /// A feed that takes nothing (the preview is off).
    pub(crate) fn off() -> Self {
        Self {
            tiles: Vec::new(),
            sender: None,
            result: None,
            current: false,
            pending: BytesMut::new(),
        }
    }

    /// Starts the decoder thread for a sheet of `objects` (the archive's frames, in order).
    pub(crate) fn start(objects: &[FrameObject]) -> Self {
        if objects.is_empty() {
            return Self::off();
        }
        let tiles = sample(objects.len(), MAX_TILES);
        let layout = Layout::for_tiles(tiles.len());
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let (result_tx, result_rx) = oneshot::channel();
        let spawned = thread::Builder::new()
            .name("preview".into())
            .spawn(move || {
                let _ = result_tx.send(make_sheet(layout, receiver));
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start the preview thread: no preview.jpg");
            return Self::off();
        }
        Self {
            tiles,
            sender: Some(sender),
            result: Some(result_rx),
            current: false,
            pending: BytesMut::new(),
        }
    }

    /// Called before the frame at `position` (in archive order) is written: whether its bytes
    /// are wanted, announcing it to the decoder if so.
    pub(crate) async fn begin(&mut self, position: usize, object: &FrameObject) -> bool {
        self.current = false;
        self.pending.clear();
        let Ok(tile) = self.tiles.binary_search(&position) else {
            return false;
        };
        self.current = self
            .send(Message::Begin {
                tile,
                frame: object.frame,
                extension: object.extension.clone(),
            })
            .await;
        self.current
    }

    /// Hands over the next piece of the current frame: a large one as a cheap
    /// reference-counted clone, small ones gathered into [`PIECE_BYTES`].
    pub(crate) async fn piece(&mut self, bytes: &Bytes) {
        if !self.current {
            return;
        }
        if self.pending.is_empty() && bytes.len() >= PIECE_BYTES {
            self.current = self.send(Message::Piece(bytes.clone())).await;
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= PIECE_BYTES {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.current && !self.pending.is_empty() {
            let piece = self.pending.split().freeze();
            self.current = self.send(Message::Piece(piece)).await;
        }
        self.pending.clear();
    }

    /// The current frame is complete.
    pub(crate) async fn end(&mut self) {
        self.flush().await;
        if self.current {
            self.send(Message::End).await;
            self.current = false;
        }
    }

    /// After the archive is finished: the sheet as JPEG bytes, or `None` when the preview is
    /// off or could not be made (already logged).
    pub(crate) async fn finish(mut self) -> Option<Vec<u8>> {
        if !self.send(Message::Finish).await {
            return None;
        }
        self.sender = None;
        self.result.take()?.await.ok().flatten()
    }

    async fn send(&mut self, message: Message) -> bool {
        let Some(sender) = &self.sender else {
            return false;
        };
        if sender.send(message).await.is_err() {
            tracing::warn!("the preview thread stopped: no preview.jpg");
            self.sender = None;
            return false;
        }
        true
    }
}

/// The decoder thread: fills a sheet from the frames it is fed, then encodes it. `None` when
/// the feed ended without [`Message::Finish`] (the archive failed) or encoding failed.
fn make_sheet(layout: Layout, mut receiver: mpsc::Receiver<Message>) -> Option<Vec<u8>> {
    let mut sheet = Sheet::new(layout);
    loop {
        match receiver.blocking_recv()? {
            Message::Begin {
                tile,
                frame,
                extension,
            } => {
                let mut reader = Pieces::new(&mut receiver);
                match thumbnail(&extension, &mut reader) {
                    Ok((size, rgb)) => sheet.place(tile, frame, size, &rgb),
                    Err(error) => {
                        tracing::warn!(frame, %error, "frame not shown in preview.jpg: a placeholder tile instead");
                        sheet.placeholder(tile, frame);
                    }
                }
                if !reader.drain() {
                    return None;
                }
            }
            Message::Finish => return encode(&sheet),
            // Pieces of a frame the decoder already finished with are drained above.
            Message::Piece(_) | Message::End => {}
        }
    }
}

fn encode(sheet: &Sheet) -> Option<Vec<u8>> {
    let (width, height) = sheet.size();
    let mut jpeg = Vec::new();
    let encoded = jpeg_encoder::Encoder::new(&mut jpeg, QUALITY).encode(
        sheet.pixels(),
        u16::try_from(width).ok()?,
        u16::try_from(height).ok()?,
        jpeg_encoder::ColorType::Rgb,
    );
    match encoded {
        Ok(()) => Some(jpeg),
        Err(error) => {
            tracing::warn!(%error, "could not encode preview.jpg");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode::{rgb_channels, ThumbError};
    use super::*;
    use std::io::{Cursor, Read, Seek, SeekFrom};

    fn centre((width, height): (usize, usize), rgb: &[u8]) -> [u8; 3] {
        let at = ((height / 2) * width + width / 2) * 3;
        [rgb[at], rgb[at + 1], rgb[at + 2]]
    }

    fn close(got: [u8; 3], want: [u8; 3]) -> bool {
        got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 4)
    }

    #[test]
    fn a_jpeg_is_decoded_at_a_reduced_scale_into_its_thumbnail() {
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 95)
            .encode(
                &[200, 40, 90].repeat(1920 * 1080),
                1920,
                1080,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        let (size, rgb) = thumbnail("JPG", Cursor::new(&jpeg)).unwrap();
        assert_eq!(size, (256, 144));
        assert!(
            close(centre(size, &rgb), [200, 40, 90]),
            "{:?}",
            centre(size, &rgb)
        );
    }

    #[test]
    fn a_sixteen_bit_png_with_alpha_is_shown_over_black() {
        let mut png_bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut png_bytes, 300, 200);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Sixteen);
        let mut writer = encoder.write_header().unwrap();
        // Red 100 %, green 50 %, blue 0, alpha 50 %.
        let pixel = [0xff, 0xff, 0x80, 0x00, 0, 0, 0x80, 0x00];
        writer.write_image_data(&pixel.repeat(300 * 200)).unwrap();
        writer.finish().unwrap();
        let (size, rgb) = thumbnail("png", Cursor::new(&png_bytes)).unwrap();
        assert_eq!(size, (216, 144));
        assert!(
            close(centre(size, &rgb), [128, 64, 0]),
            "{:?}",
            centre(size, &rgb)
        );
    }

    #[test]
    fn other_formats_and_broken_files_have_no_thumbnail() {
        let tif = thumbnail("tif", Cursor::new(b"II*\0")).unwrap_err();
        assert!(matches!(tif, ThumbError::Unsupported(_)), "{tif}");
        let broken = thumbnail("png", Cursor::new(b"\x89PNG\r\n\x1a\n\0\0")).unwrap_err();
        assert!(matches!(broken, ThumbError::Decode(_)), "{broken}");
        let broken = thumbnail("exr", Cursor::new(b"v/1\x01")).unwrap_err();
        assert!(matches!(broken, ThumbError::Decode(_)), "{broken}");
    }

    #[test]
    fn pieces_read_across_messages_forward_only_and_drain_to_the_end() {
        let (sender, mut receiver) = mpsc::channel(16);
        for message in [
            Message::Piece(Bytes::from_static(b"abc")),
            Message::Piece(Bytes::from_static(b"defgh")),
            Message::Piece(Bytes::from_static(b"ij")),
            Message::End,
            Message::Finish,
        ] {
            sender.try_send(message).unwrap();
        }
        let mut pieces = Pieces::new(&mut receiver);
        let mut first = [0; 5];
        pieces.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"abcde");
        assert_eq!(pieces.stream_position().unwrap(), 5);
        assert_eq!(pieces.seek(SeekFrom::Start(7)).unwrap(), 7);
        assert!(pieces.seek(SeekFrom::Start(2)).is_err(), "no way back");
        let mut next = [0; 1];
        pieces.read_exact(&mut next).unwrap();
        assert_eq!(&next, b"h");
        // The decoder stops early: the rest of the frame is skipped, the next message is intact.
        assert!(pieces.drain());
        assert!(matches!(receiver.try_recv(), Ok(Message::Finish)));
    }

    #[test]
    fn channels_of_plain_and_multilayer_files() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(rgb_channels(&names(&["A", "B", "G", "R"])), Some([3, 2, 1]));
        assert_eq!(
            rgb_channels(&names(&[
                "ViewLayer.Depth.Z",
                "ViewLayer.Combined.A",
                "ViewLayer.Combined.B",
                "ViewLayer.Combined.G",
                "ViewLayer.Combined.R",
            ])),
            Some([4, 3, 2])
        );
        assert_eq!(rgb_channels(&names(&["Y", "Z"])), Some([0, 0, 0]));
        assert_eq!(rgb_channels(&names(&["Z"])), None);
    }
}
