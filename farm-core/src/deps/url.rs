//! Paths that name a network resource rather than a file: Blender hands movie, sound and image
//! sequence paths to FFmpeg, which opens `http://...`, `concat:a|b`, `subfile,,start,...:x` and
//! any other protocol it was built with. The farm never lets a render reach the network, so such
//! a path is refused before any compute, whatever `missing=ok` says.

/// Characters FFmpeg accepts in a protocol name (`URL_SCHEME_CHARS` in libavformat/avio.c).
fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// The protocol `path` names, as FFmpeg finds it (`url_find_protocol`): a run of scheme
/// characters followed by `:` or `,` (protocol options), except a DOS drive letter (`C:`).
/// Blender-relative paths (`//...`) become absolute file paths (starting with `/`) before
/// FFmpeg sees them, so they never name a protocol.
pub fn url_scheme(path: &str) -> Option<&str> {
    let path = path.trim_start();
    let len = path.find(|c: char| !is_scheme_char(c))?;
    if len == 0 {
        return None;
    }
    let next = path[len..].chars().next()?;
    if next != ':' && next != ',' {
        return None;
    }
    let dos_drive = len == 1 && next == ':' && path.as_bytes()[0].is_ascii_alphabetic();
    (!dos_drive).then(|| &path[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ffmpeg_protocol_form_is_a_url_and_files_are_not() {
        for (path, scheme) in [
            ("http://example.com/a.mp4", "http"),
            ("https://example.com/a.mp4", "https"),
            ("HTTP://example.com/a.mp4", "HTTP"),
            ("ftp://host/a.wav", "ftp"),
            ("rtmp://host/live", "rtmp"),
            ("tcp://127.0.0.1:9/", "tcp"),
            ("udp://127.0.0.1:9", "udp"),
            ("concat:/a.mp4|/b.mp4", "concat"),
            ("subfile,,start,0,end,10,,:/etc/passwd", "subfile"),
            ("data:video/mp4;base64,AAAA", "data"),
            ("file:/etc/passwd", "file"),
            ("crypto+http://x/y", "crypto+http"),
            ("  http://leading.space/", "http"),
            ("hls,opts:x", "hls"),
        ] {
            assert_eq!(url_scheme(path), Some(scheme), "{path}");
        }
        for path in [
            "//tex/a.png",
            "//http://not-a-url-once-made-absolute",
            "/home/me/a.png",
            "C:/tex/a.png",
            "c:\\tex\\a.png",
            "\\\\server\\share\\a.png",
            "tex/a.png",
            "",
            ":x",
            "a.png",
        ] {
            assert_eq!(url_scheme(path), None, "{path}");
        }
    }
}
