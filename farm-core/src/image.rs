//! The one table of image files a job may write: for each type, its extension, its magic
//! bytes (telling a finished image from an empty or foreign file), the `Content-Type` a frame is
//! stored with and the decoder the contact sheet reads it with. [`OutputFormat`] (what a job
//! asks Blender for) names its row ([`OutputFormat::file`]); a scene's own format may be any row.
//!
//! [`OutputFormat`]: crate::blender::OutputFormat
//! [`OutputFormat::file`]: crate::blender::OutputFormat::file

/// How many leading bytes [`looks_like_image`] reads.
pub const IMAGE_SNIFF_LEN: usize = 16;

/// A type of image file Blender writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFile {
    Png,
    Jpeg,
    Exr,
    Tiff,
    Bmp,
    Targa,
    Hdr,
    Webp,
    Jp2,
}

/// The decoder the zipper's contact sheet reads a frame with (`zipper::preview`); types without
/// one get a placeholder tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Png,
    Jpeg,
    Exr,
}

/// One row of the table.
struct Row {
    file: ImageFile,
    /// Blender's extension first, then the others the type is known by.
    extensions: &'static [&'static str],
    /// Whether the first bytes are this type's; a type without a magic number (TGA) accepts any.
    magic: fn(&[u8]) -> bool,
    content_type: &'static str,
    decoder: Option<Decoder>,
}

const TABLE: [Row; 9] = [
    Row {
        file: ImageFile::Png,
        extensions: &["png"],
        magic: |h| h.starts_with(b"\x89PNG\r\n\x1a\n"),
        content_type: "image/png",
        decoder: Some(Decoder::Png),
    },
    Row {
        file: ImageFile::Jpeg,
        extensions: &["jpg", "jpeg"],
        magic: |h| h.starts_with(&[0xff, 0xd8, 0xff]),
        content_type: "image/jpeg",
        decoder: Some(Decoder::Jpeg),
    },
    Row {
        file: ImageFile::Exr,
        extensions: &["exr"],
        magic: |h| h.starts_with(&[0x76, 0x2f, 0x31, 0x01]),
        content_type: "image/x-exr",
        decoder: Some(Decoder::Exr),
    },
    Row {
        file: ImageFile::Tiff,
        extensions: &["tif", "tiff"],
        magic: |h| h.starts_with(b"II*\0") || h.starts_with(b"MM\0*"),
        content_type: "image/tiff",
        decoder: None,
    },
    Row {
        file: ImageFile::Bmp,
        extensions: &["bmp"],
        magic: |h| h.starts_with(b"BM"),
        content_type: "image/bmp",
        decoder: None,
    },
    Row {
        file: ImageFile::Targa,
        extensions: &["tga"],
        magic: |_| true,
        // TGA has no registered media type.
        content_type: "application/octet-stream",
        decoder: None,
    },
    Row {
        file: ImageFile::Hdr,
        extensions: &["hdr"],
        magic: |h| h.starts_with(b"#?"),
        content_type: "image/vnd.radiance",
        decoder: None,
    },
    Row {
        file: ImageFile::Webp,
        extensions: &["webp"],
        magic: |h| h.len() >= 12 && h.starts_with(b"RIFF") && &h[8..12] == b"WEBP",
        content_type: "image/webp",
        decoder: None,
    },
    Row {
        file: ImageFile::Jp2,
        extensions: &["jp2"],
        magic: |h| h.len() >= 12 && &h[4..8] == b"jP  ",
        content_type: "image/jp2",
        decoder: None,
    },
];

impl ImageFile {
    fn row(self) -> &'static Row {
        TABLE
            .iter()
            .find(|row| row.file == self)
            .expect("every image file has a row")
    }

    /// The type of a file with this extension (any case), if the farm knows it.
    pub fn from_extension(extension: &str) -> Option<Self> {
        let extension = extension.to_ascii_lowercase();
        TABLE
            .iter()
            .find(|row| row.extensions.contains(&extension.as_str()))
            .map(|row| row.file)
    }

    /// The extension Blender gives the file.
    pub fn extension(self) -> &'static str {
        self.row().extensions[0]
    }

    /// Whether `head`, the first bytes of a file, starts like this type.
    pub fn looks_like(self, head: &[u8]) -> bool {
        !head.is_empty() && (self.row().magic)(head)
    }

    /// The `Content-Type` a frame of this type is stored with.
    pub fn content_type(self) -> &'static str {
        self.row().content_type
    }

    /// The decoder the contact sheet reads this type with, if it has one.
    pub fn decoder(self) -> Option<Decoder> {
        self.row().decoder
    }
}

/// Whether `head`, the first bytes of a file Blender wrote with `extension`, starts like an
/// image of that type. Types without a magic number (TGA), and extensions the table does not
/// know, only need to be non-empty.
pub fn looks_like_image(extension: &str, head: &[u8]) -> bool {
    match ImageFile::from_extension(extension) {
        Some(file) => file.looks_like(head),
        None => !head.is_empty(),
    }
}

/// The `Content-Type` a frame with this extension is stored with.
pub fn content_type(extension: &str) -> &'static str {
    ImageFile::from_extension(extension).map_or("application/octet-stream", ImageFile::content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_formats_need_their_magic() {
        assert!(looks_like_image("png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!looks_like_image("png", b"\0\0\0\0\0\0\0\0"));
        assert!(!looks_like_image("png", b""));
        assert!(looks_like_image(
            "exr",
            &[0x76, 0x2f, 0x31, 0x01, 2, 0, 0, 0]
        ));
        assert!(looks_like_image("JPG", &[0xff, 0xd8, 0xff, 0xe0]));
        assert!(!looks_like_image("exr", b"\x89PNG\r\n\x1a\n"));
        assert!(looks_like_image("tga", b"\0\0\x02"));
        assert!(!looks_like_image("tga", b""));
        assert!(looks_like_image("jp2", b"\0\0\0\x0cjP  \r\n\x87\n"));
        assert!(!looks_like_image("jp2", b"\x89PNG\r\n\x1a\n\0\0\0\0"));
    }

    #[test]
    fn every_type_is_found_by_each_of_its_extensions_and_has_one_row() {
        for row in &TABLE {
            for extension in row.extensions {
                assert_eq!(ImageFile::from_extension(extension), Some(row.file));
                assert_eq!(
                    ImageFile::from_extension(&extension.to_ascii_uppercase()),
                    Some(row.file)
                );
            }
            assert_eq!(
                TABLE.iter().filter(|other| other.file == row.file).count(),
                1
            );
        }
        assert_eq!(ImageFile::from_extension("blend"), None);
        assert_eq!(content_type("JPEG"), "image/jpeg");
        assert_eq!(content_type("jp2"), "image/jp2");
        assert_eq!(content_type("dpx"), "application/octet-stream");
        assert_eq!(content_type("tga"), "application/octet-stream");
    }

    #[test]
    fn png_jpeg_and_exr_have_a_decoder_the_others_none() {
        let decoded: Vec<ImageFile> = TABLE
            .iter()
            .filter(|row| row.file.decoder().is_some())
            .map(|row| row.file)
            .collect();
        assert_eq!(decoded, [ImageFile::Png, ImageFile::Jpeg, ImageFile::Exr]);
    }
}
