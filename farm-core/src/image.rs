//! Telling a finished image file from an empty or foreign one by its first bytes.

/// How many leading bytes [`looks_like_image`] reads.
pub const IMAGE_SNIFF_LEN: usize = 16;

/// Whether `head`, the first bytes of a file Blender wrote with `extension`, starts like an
/// image of that type. Formats without a magic number (TGA) only need to be non-empty.
pub fn looks_like_image(extension: &str, head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    match extension.to_ascii_lowercase().as_str() {
        "png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" | "jpeg" => head.starts_with(&[0xff, 0xd8, 0xff]),
        "exr" => head.starts_with(&[0x76, 0x2f, 0x31, 0x01]),
        "tif" | "tiff" => head.starts_with(b"II*\0") || head.starts_with(b"MM\0*"),
        "bmp" => head.starts_with(b"BM"),
        "hdr" => head.starts_with(b"#?"),
        "webp" => head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP",
        "jp2" => head.len() >= 12 && &head[4..8] == b"jP  ",
        _ => true,
    }
}

/// The `Content-Type` a frame is stored with.
pub fn content_type(extension: &str) -> &'static str {
    match extension.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "exr" => "image/x-exr",
        "tif" | "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        "webp" => "image/webp",
        "hdr" => "image/vnd.radiance",
        "jp2" => "image/jp2",
        _ => "application/octet-stream",
    }
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
    }
}
