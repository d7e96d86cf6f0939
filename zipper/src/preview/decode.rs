//! A frame's thumbnail, decoded as the frame streams in: PNG row by row, OpenEXR block by block,
//! JPEG at a reduced DCT scale (the table of image files says which decoder a type has).

use std::io::{BufRead, Read, Seek};

use farm_core::image::{Decoder, ImageFile};
use farm_core::preview::{display_from_linear, display_from_unit, thumb_size, Thumbnail};

use super::{MAX_PIXELS, MAX_WIDTH};

/// Why a frame has no thumbnail.
#[derive(Debug, thiserror::Error)]
pub(super) enum ThumbError {
    #[error("`.{0}` frames are not previewed (PNG, JPEG and OpenEXR are)")]
    Unsupported(String),
    #[error("{width} x {height} pixels is too large to preview")]
    TooLarge { width: usize, height: usize },
    #[error("{0}")]
    Decode(String),
}

fn decode_error(error: impl std::fmt::Display) -> ThumbError {
    ThumbError::Decode(error.to_string())
}

type Thumb = ((usize, usize), Vec<u8>);

/// Decodes one frame from `reader` into its thumbnail's size and RGB bytes.
pub(super) fn thumbnail<R: BufRead + Seek>(
    extension: &str,
    reader: R,
) -> Result<Thumb, ThumbError> {
    match ImageFile::from_extension(extension).and_then(ImageFile::decoder) {
        Some(Decoder::Png) => png_thumbnail(reader),
        Some(Decoder::Jpeg) => jpeg_thumbnail(reader),
        Some(Decoder::Exr) => exr_thumbnail(reader),
        None => Err(ThumbError::Unsupported(extension.to_ascii_lowercase())),
    }
}

fn check_size(width: usize, height: usize) -> Result<(), ThumbError> {
    if width == 0 || height == 0 || width > MAX_WIDTH || width.saturating_mul(height) > MAX_PIXELS {
        return Err(ThumbError::TooLarge { width, height });
    }
    Ok(())
}

/// PNG, row by row, as 8-bit (16-bit is stripped, palettes expanded); alpha over black.
fn png_thumbnail<R: BufRead + Seek>(reader: R) -> Result<Thumb, ThumbError> {
    let mut decoder = png::Decoder::new(reader);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(decode_error)?;
    let info = reader.info();
    let (width, height) = (info.width as usize, info.height as usize);
    check_size(width, height)?;
    if info.interlaced {
        return Err(ThumbError::Decode(
            "interlaced PNGs are not previewed".into(),
        ));
    }
    let (colour, _) = reader.output_color_type();
    let channels = colour.samples();
    let mut thumb = Thumbnail::new(width, height);
    let unit = |v: u8| f32::from(v) / 255.0;
    let mut y = 0;
    while let Some(row) = reader.next_row().map_err(decode_error)? {
        let pixels = row.data().chunks_exact(channels).map(|p| match p {
            [l] => [unit(*l); 3],
            [l, a] => [unit(*l) * unit(*a); 3],
            [r, g, b] => [unit(*r), unit(*g), unit(*b)],
            [r, g, b, a, ..] => {
                let a = unit(*a);
                [unit(*r) * a, unit(*g) * a, unit(*b) * a]
            }
            [] => [0.0; 3],
        });
        thumb.add_row(y, 0, pixels);
        y += 1;
    }
    Ok((thumb.size(), thumb.finish(display_from_unit)))
}

/// JPEG, decoded at the smallest DCT scale (1/8 to 1) that still covers the thumbnail.
fn jpeg_thumbnail<R: Read>(reader: R) -> Result<Thumb, ThumbError> {
    let mut decoder = jpeg_decoder::Decoder::new(reader);
    decoder.read_info().map_err(decode_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| decode_error("no JPEG header"))?;
    let (width, height) = (usize::from(info.width), usize::from(info.height));
    check_size(width, height)?;
    let (want_w, want_h) = thumb_size(width, height);
    let (scaled_w, scaled_h) = decoder
        .scale(
            u16::try_from(want_w).unwrap_or(u16::MAX),
            u16::try_from(want_h).unwrap_or(u16::MAX),
        )
        .map_err(decode_error)?;
    let pixels = decoder.decode().map_err(decode_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| decode_error("no JPEG header"))?;
    let (scaled_w, scaled_h) = (usize::from(scaled_w).max(1), usize::from(scaled_h).max(1));
    let unit = |v: u8| f32::from(v) / 255.0;
    let mut thumb = Thumbnail::new(scaled_w, scaled_h);
    match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            for (y, row) in pixels.chunks_exact(scaled_w).enumerate() {
                thumb.add_row(y, 0, row.iter().map(|&l| [unit(l); 3]));
            }
        }
        jpeg_decoder::PixelFormat::RGB24 => {
            for (y, row) in pixels.chunks_exact(scaled_w * 3).enumerate() {
                let rgb = row
                    .chunks_exact(3)
                    .map(|p| [unit(p[0]), unit(p[1]), unit(p[2])]);
                thumb.add_row(y, 0, rgb);
            }
        }
        other => return Err(decode_error(format!("{other:?} JPEGs are not previewed"))),
    }
    Ok((thumb.size(), thumb.finish(display_from_unit)))
}

/// OpenEXR, block by block in file order (no seeking): the first part's red, green and blue
/// channels (Blender's multilayer files: the first view layer's `Combined` pass), scene-linear,
/// averaged, then clipped and sRGB encoded. Only full-resolution blocks are used.
fn exr_thumbnail<R: Read + Seek>(reader: R) -> Result<Thumb, ThumbError> {
    use exr::block::chunk::Chunk;
    use exr::block::reader::ChunksReader as _;
    use exr::block::UncompressedBlock;
    use exr::meta::attribute::SampleType;

    let reader = exr::block::read(reader, false).map_err(decode_error)?;
    let header = reader
        .headers()
        .first()
        .ok_or_else(|| decode_error("no EXR header"))?;
    let (width, height) = (header.layer_size.width(), header.layer_size.height());
    check_size(width, height)?;
    let channel_list = header.channels.clone();
    let channels = &channel_list.list;
    let names: Vec<String> = channels.iter().map(|c| c.name.to_string()).collect();
    let rgb = rgb_channels(&names)
        .ok_or_else(|| decode_error(format!("no red, green and blue channels in {names:?}")))?;
    if rgb
        .iter()
        .any(|&c| channels[c].sampling != exr::math::Vec2(1, 1))
    {
        return Err(decode_error("subsampled EXR channels are not previewed"));
    }
    let mut thumb = Thumbnail::new(width, height);
    let chunks = reader.all_chunks(false).map_err(decode_error)?;
    let meta = chunks.meta_data().clone();
    let mut row: Vec<[f32; 3]> = Vec::new();
    for chunk in chunks {
        let chunk: Chunk = chunk.map_err(decode_error)?;
        if chunk.layer_index != 0 {
            continue;
        }
        let block =
            UncompressedBlock::decompress_chunk(chunk, &meta, false).map_err(decode_error)?;
        if block.index.level != exr::math::Vec2(0, 0) {
            continue;
        }
        let (x0, block_width) = (block.index.pixel_position.x(), block.index.pixel_size.x());
        let mut current: Option<usize> = None;
        for line in block.lines(&channel_list) {
            let y = line.location.position.y();
            if current != Some(y) {
                if let Some(done) = current {
                    thumb.add_row(done, x0, row.iter().copied());
                }
                row.clear();
                row.resize(block_width, [0.0; 3]);
                current = Some(y);
            }
            for (slot, &wanted) in rgb.iter().enumerate() {
                if wanted != line.location.channel {
                    continue;
                }
                let sample_type = channels[line.location.channel].sample_type;
                let values: Vec<f32> = match sample_type {
                    SampleType::F16 => line
                        .read_samples::<exr::prelude::f16>()
                        .map(|v| v.map(f32::from))
                        .collect::<Result<_, _>>(),
                    SampleType::F32 => line.read_samples::<f32>().collect::<Result<_, _>>(),
                    SampleType::U32 => line
                        .read_samples::<u32>()
                        .map(|v| v.map(|v| v as f32))
                        .collect::<Result<_, _>>(),
                }
                .map_err(decode_error)?;
                for (pixel, value) in row.iter_mut().zip(values) {
                    pixel[slot] = value;
                }
            }
        }
        if let Some(done) = current {
            thumb.add_row(done, x0, row.iter().copied());
        }
    }
    Ok((thumb.size(), thumb.finish(display_from_linear)))
}

/// Indices of the red, green and blue channels: `R`, `G`, `B` of an image, else a layer's
/// (`<layer>.R` ...; Blender's multilayer files name them `ViewLayer.Combined.R`: a `Combined`
/// pass first, else the first layer with all three), else a luminance `Y` as grey.
pub(super) fn rgb_channels(names: &[String]) -> Option<[usize; 3]> {
    let find = |name: &str| names.iter().position(|n| n == name);
    let layer = |prefix: &str| {
        let sep = if prefix.is_empty() { "" } else { "." };
        let get = |c: &str| find(&format!("{prefix}{sep}{c}"));
        Some([get("R")?, get("G")?, get("B")?])
    };
    if let Some(rgb) = layer("") {
        return Some(rgb);
    }
    let mut layers: Vec<&str> = names.iter().filter_map(|n| n.strip_suffix(".R")).collect();
    // Stable: a `Combined` pass first, otherwise file order.
    layers.sort_by_key(|l| !l.ends_with("Combined"));
    layers
        .into_iter()
        .find_map(layer)
        .or_else(|| find("Y").map(|y| [y; 3]))
}
