//! Reads what a `.blend` asks for, without Blender: the version that saved it, its scenes (frame
//! range and step, fps, resolution, engine, output format, camera), the active scene, and the
//! external files it can load.
//!
//! Bytes in, facts out: no Blender, no AWS, no async runtime. Every field is found through the
//! file's own struct catalogue (SDNA) by struct and member name, never at a fixed offset, so the
//! same code reads files from Blender 2.4x to 5.x, saved by 64-bit or 32-bit Blenders. Facts
//! that older files keep elsewhere (the output format before 2.62, the engine before 2.5) are
//! read where that version kept them, and a scene is reported as Blender 2.80 and later open it
//! (Blender Internal and the Game Engine became EEVEE). Big-endian files (PowerPC and SPARC
//! machines) are not read.
//!
//! The file is read forward once. The catalogue comes near the end, so the blocks that may be
//! needed (file globals, scenes, objects' ID headers, and the ID blocks of external files) are
//! kept as they pass; mesh data, images' pixels and everything else is skipped, by seeking when
//! the file is plain ([`read_seekable`]) or by decoding past it when compressed. Memory grows
//! with the number of those IDs, never with the size of the file.
//!
//! [`sniff`] tells from a file's first bytes whether it is a .blend at all, before anything pays
//! for a render (the trigger, the renderer); the readers decide by the same magic numbers.
//!
//! The input is untrusted: every length is checked against what the data really holds, every
//! buffer grows only with bytes that arrived, and nothing panics on a truncated or corrupt file.

mod blocks;
mod bound;
mod caches;
mod facts;
mod movie;
mod names;
mod sdna;
mod sniff;
mod source;
mod views;

use std::io::{self, BufRead, BufReader, Read, Seek};

use serde::Serialize;

pub use bound::{MAX_DECOMPRESSED, MAX_RATIO};
pub use caches::WRITTEN;
pub use movie::{movie_content_type, Movie, MOVIE_EXTENSIONS};
pub use names::{image_source_name, output_format_name};
pub use sniff::{sniff, NotABlend, SNIFF_LEN};
pub use views::{Multiview, RenderView};

use bound::{Bounded, Compressed, Counting};

/// How the .blend is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain: starts with `BLENDER`.
    None,
    /// gzip, as Blender wrote compressed files before 3.0.
    Gzip,
    /// zstd, as Blender writes compressed files since 3.0.
    Zstd,
}

impl Compression {
    /// `none`, `gzip` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

/// The Blender version that saved the file, from its header (`v402` is 4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BlenderVersion {
    pub major: u16,
    pub minor: u16,
}

impl std::fmt::Display for BlenderVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One scene's render settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scene {
    /// The scene's name (without Blender's `SC` prefix).
    pub name: String,
    pub frame_start: i32,
    pub frame_end: i32,
    pub frame_step: i32,
    /// Frames per second: `fps / fps_base`.
    pub fps: f64,
    /// Resolution in pixels at 100 %.
    pub resolution: [i32; 2],
    pub resolution_percentage: i32,
    /// Blender's identifier: `CYCLES`, `BLENDER_EEVEE`, `BLENDER_EEVEE_NEXT`, `BLENDER_WORKBENCH`.
    /// A file saved before 2.80 with Blender Internal or the Game Engine (`BLENDER_RENDER`,
    /// `BLENDER_GAME`) reads as `BLENDER_EEVEE`, which is what Blender opens it with.
    pub engine: String,
    /// Blender's name for the output file format: `PNG`, `OPEN_EXR`, `JPEG`, `FFMPEG`...
    pub output_format: String,
    /// The output path (`Render Output`), as stored.
    pub output_path: String,
    /// The active camera object's name.
    pub camera: Option<String>,
    /// Objects bound to the scene's timeline markers (camera switches), by name, sorted.
    pub marker_cameras: Vec<String>,
    /// Whether the scene renders its sequencer (Post Processing > Sequencer on, and strips).
    pub sequencer: bool,
    /// Whether the scene composites with a node tree (Post Processing > Compositing on).
    pub compositor: bool,
    /// The view layers it renders (`use` on), in order.
    pub view_layers: Vec<String>,
    /// The movie the scene asks for when its output is FFmpeg (`output_format` `FFMPEG`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movie: Option<Movie>,
    /// Multiview (stereo) output, when Stereoscopy is on (`render.use_multiview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiview: Option<Multiview>,
}

impl Scene {
    /// The frames `blender -b file -a` renders: start to end by step.
    pub fn frames(&self) -> impl Iterator<Item = i32> {
        let step = usize::try_from(self.frame_step.max(1)).unwrap_or(1);
        (self.frame_start..=self.frame_end).step_by(step)
    }
}

/// The kind of an external file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Image,
    Library,
    Sound,
    Movie,
    Font,
    Cache,
    Volume,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Library => "library",
            Self::Sound => "sound",
            Self::Movie => "movie",
            Self::Font => "font",
            Self::Cache => "cache",
            Self::Volume => "volume",
        }
    }
}

/// A file outside the .blend that the file can load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternalFile {
    pub kind: FileKind,
    /// The path as stored: `//` starts a path relative to the .blend's folder.
    pub path: String,
    /// The data-block's name (without its two-letter prefix).
    pub name: String,
    /// The data is packed into the .blend: the path is not read.
    pub packed: bool,
    /// How an image is read: `FILE`, `SEQUENCE`, `MOVIE` or `TILED` (a `<UDIM>` set);
    /// for a volume, `SEQUENCE` when it is a sequence of files; for a cache, [`WRITTEN`] when
    /// it is a folder Blender writes and clears while rendering (an unbaked external point
    /// cache on disk, a Mantaflow cache directory in Replay mode or with nothing baked).
    pub source: Option<String>,
    /// A `TILED` image's tile numbers (`1001`, `1002`...), sorted: each is a file, the path's
    /// `<UDIM>` replaced by the number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiles: Vec<i32>,
    /// How the image texture nodes that show a `SEQUENCE` image use it (Blender's `ImageUser`):
    /// which file each scene frame loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence_uses: Vec<SequenceUse>,
}

/// An image texture node's use of an image sequence (Blender's `ImageUser`): `frame_duration`
/// files from scene frame `frame_start`, numbered from `frame_offset + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SequenceUse {
    pub frame_duration: i32,
    pub frame_start: i32,
    pub frame_offset: i32,
    pub cyclic: bool,
}

impl ExternalFile {
    /// Whether the path is relative to the .blend's folder (starts with `//`).
    pub fn is_relative(&self) -> bool {
        self.path.starts_with("//")
    }

    /// Each file's tiles and sequence uses sorted and unique, and the files in a stable order
    /// (kind, path, name).
    pub(crate) fn tidy(files: &mut [ExternalFile]) {
        for file in files.iter_mut() {
            file.tiles.sort_unstable();
            file.tiles.dedup();
            file.sequence_uses.sort_unstable();
            file.sequence_uses.dedup();
        }
        files.sort_by(|a, b| (a.kind, &a.path, &a.name).cmp(&(b.kind, &b.path, &b.name)));
    }
}

/// Everything the reader found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlendInfo {
    pub version: BlenderVersion,
    pub compression: Compression,
    /// The scene `blender -b file` renders (`FileGlobal.curscene`), if the file names one.
    pub scene: Option<String>,
    pub scenes: Vec<Scene>,
    /// Sorted by kind, then path.
    pub files: Vec<ExternalFile>,
    /// The file's own camera objects (not linked from a library), by name, sorted: Blender
    /// renders a scene without an active camera through the first camera it finds in it.
    pub cameras: Vec<String>,
}

impl BlendInfo {
    /// The active scene's settings.
    pub fn active_scene(&self) -> Option<&Scene> {
        let name = self.scene.as_deref()?;
        self.scenes.iter().find(|s| s.name == name)
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlendError {
    #[error("not a .blend file: {0}")]
    NotBlend(String),
    #[error("the .blend is big-endian (saved on a PowerPC or SPARC machine, as some Blender 2.4x to 2.6x files were), which this reader does not read: open it in Blender on a PC and save it again")]
    BigEndian,
    #[error("the .blend is truncated ({0}): upload or copy the whole file again")]
    Truncated(String),
    #[error("the .blend is corrupt: {0}")]
    Corrupt(String),
    /// A compressed file decompressing past [`MAX_RATIO`] x its size or [`MAX_DECOMPRESSED`].
    #[error("the .blend decompresses past {decompressed} bytes from its first {compressed} compressed bytes: the farm reads a compressed .blend only up to {MAX_RATIO} times its compressed size (the ratio bound) and never past {} GiB (the absolute cap), so it looks like a decompression bomb; if the scene really is this large, save it uncompressed (File > Save As, Compress off)", MAX_DECOMPRESSED >> 30)]
    TooLarge { decompressed: u64, compressed: u64 },
    #[error("reading the .blend: {0}")]
    Io(#[source] io::Error),
}

/// Reads a .blend (plain, gzip or zstd) from a stream, forward only.
pub fn read(reader: impl Read) -> Result<BlendInfo, BlendError> {
    let mut reader = BufReader::with_capacity(128 * 1024, reader);
    let magic = peek_magic(&mut reader)?;
    match magic {
        Compression::None => facts::walk(&mut source::Stream(reader), Compression::None),
        Compression::Gzip => {
            let (reader, compressed) = Counting::new(reader);
            let decoder = BufReader::with_capacity(
                128 * 1024,
                flate2::bufread::MultiGzDecoder::new(BufReader::new(reader)),
            );
            let mut source = Bounded::new(source::Stream(decoder), compressed);
            facts::walk(&mut source, Compression::Gzip)
        }
        Compression::Zstd => {
            let (reader, compressed) = Counting::new(reader);
            let decoder = BufReader::with_capacity(
                128 * 1024,
                source::MultiZstd::new(BufReader::new(reader)),
            );
            let mut source = Bounded::new(source::Stream(decoder), compressed);
            facts::walk(&mut source, Compression::Zstd)
        }
    }
}

/// Reads only the header of a .blend (plain, gzip or zstd): the version of the Blender that
/// saved it. The first few KiB of the file are enough (the trigger passes the first 256 KiB).
pub fn read_version(reader: impl Read) -> Result<BlenderVersion, BlendError> {
    let mut reader = BufReader::with_capacity(8 * 1024, reader);
    match peek_magic(&mut reader)? {
        Compression::None => blocks::version(&mut source::Stream(reader)),
        Compression::Gzip => {
            let decoder = BufReader::new(flate2::bufread::MultiGzDecoder::new(reader));
            blocks::version(&mut source::Stream(decoder))
        }
        Compression::Zstd => {
            let decoder = BufReader::new(source::MultiZstd::new(reader));
            blocks::version(&mut source::Stream(decoder))
        }
    }
}

/// Reads a .blend from a file (or anything that seeks): blocks of a plain file that are not
/// needed are seeked past, never read.
pub fn read_seekable<R: Read + Seek>(mut reader: R) -> Result<BlendInfo, BlendError> {
    let start = reader.stream_position().map_err(BlendError::Io)?;
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic).map_err(BlendError::Io)?;
    reader
        .seek(io::SeekFrom::Start(start))
        .map_err(BlendError::Io)?;
    if got == 4 && sniff::storage_of(&magic) == Some(Compression::None) {
        let mut source = source::Seeking::new(reader).map_err(BlendError::Io)?;
        return facts::walk(&mut source, Compression::None);
    }
    if got == 4 && sniff::storage_of(&magic) == Some(Compression::Zstd) {
        // Blender's zstd files carry a seek table: frames wholly inside a block that is not
        // needed are never decoded. Without a usable table, decode the stream.
        let len = reader
            .seek(io::SeekFrom::End(0))
            .map_err(BlendError::Io)?
            .saturating_sub(start);
        reader
            .seek(io::SeekFrom::Start(start))
            .map_err(BlendError::Io)?;
        match source::SeekableZstd::open(&mut reader).map_err(BlendError::Io)? {
            Some(source) => {
                let mut source = Bounded::new(source, Compressed::Known(len));
                return facts::walk(&mut source, Compression::Zstd);
            }
            None => {
                reader
                    .seek(io::SeekFrom::Start(start))
                    .map_err(BlendError::Io)?;
            }
        }
    }
    read(reader)
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn peek_magic(reader: &mut impl BufRead) -> Result<Compression, BlendError> {
    // `fill_buf` may return fewer bytes than are coming; four are enough to decide and any
    // buffered reader of 128 KiB holds them unless the file is shorter.
    let head = reader.fill_buf().map_err(BlendError::Io)?;
    if head.is_empty() {
        return Err(BlendError::NotBlend("the file is empty".into()));
    }
    sniff::storage_of(head).ok_or_else(|| {
        BlendError::NotBlend(format!(
            "it starts with {}, not `BLENDER` (nor a gzip or zstd stream of one)",
            sniff::describe(head)
        ))
    })
}
