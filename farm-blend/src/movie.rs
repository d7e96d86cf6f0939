//! The movie a scene set to FFmpeg output asks for (`RenderData.ffcodecdata`, Blender's
//! `scene.render.ffmpeg`): container, codecs and quality, named as Blender's Python API names
//! them. The farm renders such a scene's frames as stills and writes the movie from them.

use serde::Serialize;

use crate::sdna::View;

/// `ImageFormatData.imtype` of FFmpeg output (`FFMPEG`).
const IMTYPE_FFMPEG: i64 = 24;

/// A scene's movie settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Movie {
    /// The container (`scene.render.ffmpeg.format`): `MPEG1`, `MPEG2`, `MPEG4`, `AVI`,
    /// `QUICKTIME`, `DV`, `OGG`, `MKV`, `FLASH`, `WEBM`...
    pub container: String,
    /// The extension Blender gives the file (`mkv`, `mp4`...).
    pub extension: String,
    /// The video codec (`ffmpeg.codec`): `H264`, `MPEG4`, `PNG`, `FFV1`..., `NONE` for none.
    pub codec: String,
    /// Constant rate factor (`ffmpeg.constant_rate_factor` as a number: 23 is `MEDIUM`);
    /// `None` when the bitrate rules (`NONE`).
    pub crf: Option<i64>,
    /// Video bitrate in kbit/s (`ffmpeg.video_bitrate`), used when `crf` is `None`.
    pub video_bitrate: i64,
    /// Keyframe interval in frames (`ffmpeg.gopsize`).
    pub gop_size: i64,
    /// The audio codec (`ffmpeg.audio_codec`): `AAC`, `MP3`, `FLAC`...; `None`: no audio.
    pub audio_codec: Option<String>,
    /// Audio bitrate in kbit/s, sample rate in Hz and channel count.
    pub audio_bitrate: i64,
    pub audio_mixrate: i64,
    pub audio_channels: i64,
}

/// The movie a scene's `RenderData` (`r`) asks for; `None` unless its output is FFmpeg.
pub(crate) fn movie(r: &View<'_>) -> Option<Movie> {
    let imtype = r.sub("im_format").and_then(|f| f.int("imtype"))?;
    if imtype != IMTYPE_FFMPEG {
        return None;
    }
    let ff = r.sub("ffcodecdata")?;
    let container = ff.int("type").unwrap_or(-1);
    let (container, extension) = container_name(container);
    // Blender 5 names the member `codec_id`.
    let codec = ff.int("codec").or_else(|| ff.int("codec_id")).unwrap_or(0);
    let crf = ff
        .int("constant_rate_factor")
        .filter(|&crf| crf >= 0 && uses_crf(codec));
    let audio = ff.int("audio_codec").unwrap_or(0);
    Some(Movie {
        container,
        extension: extension.to_owned(),
        codec: codec_name(codec),
        crf,
        video_bitrate: ff.int("video_bitrate").unwrap_or(0),
        gop_size: ff.int("gop_size").unwrap_or(0),
        audio_codec: (audio != 0).then(|| codec_name(audio)),
        audio_bitrate: ff.int("audio_bitrate").unwrap_or(0),
        audio_mixrate: ff.int("audio_mixrate").unwrap_or(0),
        audio_channels: ff.int("audio_channels").unwrap_or(0),
    })
}

/// Every extension [`Movie::extension`] can be, with the content type of its container: the
/// movie job writes only these (the render role's policy names each, `infra/farm.yaml`).
const MOVIE_FILES: [(&str, &str); 10] = [
    ("mpg", "video/mpeg"),
    ("dvd", "video/mpeg"),
    ("mp4", "video/mp4"),
    ("avi", "video/x-msvideo"),
    ("mov", "video/quicktime"),
    ("dv", "video/dv"),
    ("flv", "video/x-flv"),
    ("mkv", "video/x-matroska"),
    ("ogv", "video/ogg"),
    ("webm", "video/webm"),
];

/// The extensions of [`MOVIE_FILES`].
const EXTENSIONS: [&str; MOVIE_FILES.len()] = {
    let mut extensions = [""; MOVIE_FILES.len()];
    let mut i = 0;
    while i < MOVIE_FILES.len() {
        extensions[i] = MOVIE_FILES[i].0;
        i += 1;
    }
    extensions
};

/// Every extension [`Movie::extension`] can be: the movie job writes only these.
pub const MOVIE_EXTENSIONS: &[&str] = &EXTENSIONS;

/// The content type of a movie file Blender writes with `extension` (one of
/// [`MOVIE_EXTENSIONS`]).
pub fn movie_content_type(extension: &str) -> Option<&'static str> {
    MOVIE_FILES
        .iter()
        .find(|(ext, _)| *ext == extension)
        .map(|(_, content_type)| *content_type)
}

/// Blender's name and first extension of an `FFMpegCodecData.type` (`BKE_ffmpeg` lists).
fn container_name(value: i64) -> (String, &'static str) {
    let (name, extension) = match value {
        0 => ("MPEG1", "mpg"),
        1 => ("MPEG2", "dvd"),
        2 => ("MPEG4", "mp4"),
        3 => ("AVI", "avi"),
        4 => ("QUICKTIME", "mov"),
        5 => ("DV", "dv"),
        6 => ("H264", "avi"),
        7 => ("XVID", "avi"),
        8 => ("FLASH", "flv"),
        9 => ("MKV", "mkv"),
        10 => ("OGG", "ogv"),
        12 => ("WEBM", "webm"),
        13 => ("AV1", "mp4"),
        other => return (format!("UNKNOWN_{other}"), "mkv"),
    };
    (name.to_owned(), extension)
}

/// Whether the codec takes a constant rate factor (Blender shows it for these).
fn uses_crf(codec: i64) -> bool {
    matches!(codec, 27 | 167 | 173 | 226)
}

/// Blender's name of an FFmpeg `AVCodecID` it offers (`IMB_Ffmpeg_Codec_ID`).
fn codec_name(id: i64) -> String {
    let name = match id {
        0 => "NONE",
        1 => "MPEG1",
        2 => "MPEG2",
        12 => "MPEG4",
        21 => "FLASH",
        24 => "DV",
        25 => "HUFFYUV",
        27 => "H264",
        30 => "THEORA",
        33 => "FFV1",
        55 => "QTRLE",
        61 => "PNG",
        99 => "DNXHD",
        167 => "WEBM",
        173 => "H265",
        226 => "AV1",
        65536 => "PCM",
        86016 => "MP2",
        86017 => "MP3",
        86018 => "AAC",
        86019 => "AC3",
        86021 => "VORBIS",
        86028 => "FLAC",
        86076 => "OPUS",
        other => return format!("UNKNOWN_{other}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_containers_extension_is_listed() {
        for value in -1..=20 {
            let (name, extension) = container_name(value);
            assert!(MOVIE_EXTENSIONS.contains(&extension), "{name}: {extension}");
            assert!(
                movie_content_type(extension).is_some_and(|t| t.starts_with("video/")),
                "{name}: {extension}"
            );
        }
    }
}
