//! Blender's names (its Python enum identifiers) for codes stored in a .blend.

/// The engine Blender 2.80 and later render a scene with whose stored engine is `stored`: files
/// from before 2.5 have no engine member (Blender Internal), and Blender's versioning for 2.80
/// turns Blender Internal and the Game Engine into EEVEE (`versioning_280`, "Blender Internal
/// removal").
pub(crate) fn engine_as_opened(stored: Option<&str>) -> String {
    match stored {
        None | Some("" | "BLENDER_RENDER" | "BLENDER_GAME") => "BLENDER_EEVEE".to_owned(),
        Some(engine) => engine.to_owned(),
    }
}

/// Blender's name (its Python enum identifier) for an `Image.source` code.
pub fn image_source_name(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "FILE",
        2 => "SEQUENCE",
        3 => "MOVIE",
        4 => "GENERATED",
        5 => "VIEWER",
        6 => "TILED",
        _ => return None,
    })
}

/// Blender's name (`scene.render.image_settings.file_format`) for an `ImageFormatData.imtype`.
pub fn output_format_name(imtype: i64) -> String {
    let name = match imtype {
        0 => "TARGA",
        1 => "IRIS",
        4 => "JPEG",
        7 => "IRIZ",
        14 => "TARGA_RAW",
        15 => "AVI_RAW",
        16 => "AVI_JPEG",
        17 => "PNG",
        20 => "BMP",
        21 => "HDR",
        22 => "TIFF",
        23 => "OPEN_EXR",
        24 => "FFMPEG",
        26 => "CINEON",
        27 => "DPX",
        28 => "OPEN_EXR_MULTILAYER",
        29 => "DDS",
        30 => "JPEG2000",
        31 => "H264",
        32 => "XVID",
        33 => "THEORA",
        34 => "PSD",
        35 => "WEBP",
        36 => "AV1",
        37 => "AVIF",
        other => return format!("UNKNOWN_{other}"),
    };
    name.to_owned()
}
