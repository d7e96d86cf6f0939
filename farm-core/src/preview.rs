//! The contact sheet (`<key>/preview.jpg`): which frames it shows, where each thumbnail goes,
//! how a thumbnail is shrunk from decoded pixels, and the frame-number labels. Pure pixel
//! arithmetic on RGB buffers: decoding the frames and encoding the JPEG are the zipper's.
//!
//! A sheet holds up to [`MAX_TILES`] tiles in frame order, evenly sampled over the job's frames
//! when there are more ([`sample`]), on a grid of at most [`MAX_COLUMNS`] columns ([`Layout`]).
//! Each tile is a [`THUMB_WIDTH`] x [`THUMB_HEIGHT`] area holding the frame fitted inside it
//! (aspect kept, centred), above a strip with the frame number in a built-in digit font. A frame
//! that could not be shown is a grey tile with a cross, still labelled.

/// Most thumbnails on a sheet.
pub const MAX_TILES: usize = 64;
/// Most tiles in a row.
pub const MAX_COLUMNS: usize = 8;
/// Width of a tile's picture area, in pixels.
pub const THUMB_WIDTH: usize = 256;
/// Height of a tile's picture area (16:9 at [`THUMB_WIDTH`]).
pub const THUMB_HEIGHT: usize = 144;
/// Height of the label strip under each picture.
pub const LABEL_HEIGHT: usize = 16;
/// Space around and between tiles.
pub const GAP: usize = 4;

/// Sheet background, between tiles and behind letterboxed thumbnails.
pub const BACKGROUND: [u8; 3] = [24, 24, 24];
/// Picture area of a frame that could not be shown.
pub const PLACEHOLDER: [u8; 3] = [128, 128, 128];
const PLACEHOLDER_CROSS: [u8; 3] = [96, 96, 96];
const LABEL_COLOUR: [u8; 3] = [230, 230, 230];

/// The positions (indices into a list of `count` frames in frame order) a sheet shows: all of
/// them when `count <= max`, else `max` evenly spaced ones, the first and last included, in
/// order and without repeats.
pub fn sample(count: usize, max: usize) -> Vec<usize> {
    if count <= max {
        return (0..count).collect();
    }
    if max == 0 {
        return Vec::new();
    }
    if max == 1 {
        return vec![0];
    }
    // i * (count - 1) / (max - 1): strictly increasing because count > max.
    (0..max).map(|i| i * (count - 1) / (max - 1)).collect()
}

/// Where the tiles of a sheet go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of tiles.
    pub tiles: usize,
    /// Tiles per row.
    pub columns: usize,
    /// Rows of tiles.
    pub rows: usize,
}

impl Layout {
    /// The layout for `tiles` tiles (at least one): a near-square grid, at most
    /// [`MAX_COLUMNS`] wide (64 tiles: 8 x 8; 10 tiles: 4 x 3).
    pub fn for_tiles(tiles: usize) -> Self {
        let tiles = tiles.max(1);
        let mut columns = 1;
        while columns * columns < tiles && columns < MAX_COLUMNS {
            columns += 1;
        }
        Self {
            tiles,
            columns,
            rows: tiles.div_ceil(columns),
        }
    }

    /// Width of the sheet in pixels.
    pub fn width(&self) -> usize {
        GAP + self.columns * (THUMB_WIDTH + GAP)
    }

    /// Height of the sheet in pixels.
    pub fn height(&self) -> usize {
        GAP + self.rows * (THUMB_HEIGHT + LABEL_HEIGHT + GAP)
    }

    /// Top-left corner of tile `index`'s picture area.
    pub fn origin(&self, index: usize) -> (usize, usize) {
        let (column, row) = (index % self.columns, index / self.columns);
        (
            GAP + column * (THUMB_WIDTH + GAP),
            GAP + row * (THUMB_HEIGHT + LABEL_HEIGHT + GAP),
        )
    }
}

/// The size a `width` x `height` frame gets inside a tile: as large as fits, aspect kept.
pub fn thumb_size(width: usize, height: usize) -> (usize, usize) {
    let (width, height) = (width.max(1), height.max(1));
    if width * THUMB_HEIGHT >= height * THUMB_WIDTH {
        let h = (height * THUMB_WIDTH + width / 2) / width;
        (THUMB_WIDTH, h.clamp(1, THUMB_HEIGHT))
    } else {
        let w = (width * THUMB_HEIGHT + height / 2) / height;
        (w.clamp(1, THUMB_WIDTH), THUMB_HEIGHT)
    }
}

/// A thumbnail being made from a frame's rows as a decoder produces them, so the frame is never
/// held whole: each source pixel is added to the thumbnail pixels it covers (a box filter when
/// shrinking, nearest when enlarging) and [`Thumbnail::finish`] averages.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    source: (usize, usize),
    size: (usize, usize),
    /// For each source column, the range of thumbnail columns it covers.
    columns: Vec<(usize, usize)>,
    sums: Vec<[f32; 3]>,
    counts: Vec<u32>,
}

/// Thumbnail cells `[start, end)` covered by source cell `i` of `from` when scaling to `to`.
fn cover(i: usize, from: usize, to: usize) -> (usize, usize) {
    let start = (i * to / from).min(to - 1);
    let end = ((i + 1) * to).div_ceil(from).clamp(start + 1, to);
    (start, end)
}

impl Thumbnail {
    /// A thumbnail of a `width` x `height` frame, sized by [`thumb_size`].
    pub fn new(width: usize, height: usize) -> Self {
        let (width, height) = (width.max(1), height.max(1));
        let size = thumb_size(width, height);
        Self {
            source: (width, height),
            size,
            columns: (0..width).map(|x| cover(x, width, size.0)).collect(),
            sums: vec![[0.0; 3]; size.0 * size.1],
            counts: vec![0; size.0 * size.1],
        }
    }

    /// The thumbnail's size in pixels.
    pub fn size(&self) -> (usize, usize) {
        self.size
    }

    /// Adds `pixels`, the source pixels of row `y` from column `x` on. Pixels outside the frame
    /// are ignored.
    pub fn add_row(&mut self, y: usize, x: usize, pixels: impl IntoIterator<Item = [f32; 3]>) {
        if y >= self.source.1 {
            return;
        }
        let (rows_start, rows_end) = cover(y, self.source.1, self.size.1);
        for (pixel, &(start, end)) in pixels.into_iter().zip(self.columns.iter().skip(x)) {
            for row in rows_start..rows_end {
                let line = row * self.size.0;
                for cell in line + start..line + end {
                    let sum = &mut self.sums[cell];
                    sum[0] += pixel[0];
                    sum[1] += pixel[1];
                    sum[2] += pixel[2];
                    self.counts[cell] += 1;
                }
            }
        }
    }

    /// The thumbnail as RGB bytes, each averaged value mapped by `encode` (e.g.
    /// [`display_from_unit`] or [`display_from_linear`]). Pixels no row reached are black.
    pub fn finish(&self, encode: impl Fn(f32) -> u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.sums.len() * 3);
        for (sum, &count) in self.sums.iter().zip(&self.counts) {
            let n = count.max(1) as f32;
            out.extend(sum.iter().map(|&v| encode(v / n)));
        }
        out
    }
}

/// A display value in 0..=1 (an 8- or 16-bit image's, already sRGB) as a byte.
pub fn display_from_unit(value: f32) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// A scene-linear value (an EXR's) as an sRGB byte, clipped at 1 like Blender's "Standard" view
/// transform.
pub fn display_from_linear(value: f32) -> u8 {
    let v = if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    };
    let encoded = if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    };
    display_from_unit(encoded)
}

/// A contact sheet being filled: RGB, 8 bits per channel, row after row.
#[derive(Debug, Clone)]
pub struct Sheet {
    layout: Layout,
    pixels: Vec<u8>,
}

impl Sheet {
    /// An empty sheet (background colour) for `layout`.
    pub fn new(layout: Layout) -> Self {
        let pixels = BACKGROUND.repeat(layout.width() * layout.height());
        Self { layout, pixels }
    }

    /// The sheet's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.layout.width(), self.layout.height())
    }

    /// The RGB bytes, row by row.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Puts a `width` x `height` RGB thumbnail (from [`Thumbnail::finish`]) centred in tile
    /// `index`'s picture area, labelled `frame`.
    pub fn place(&mut self, index: usize, frame: i32, (width, height): (usize, usize), rgb: &[u8]) {
        if index >= self.layout.tiles {
            return;
        }
        let (width, height) = (width.min(THUMB_WIDTH), height.min(THUMB_HEIGHT));
        let (x0, y0) = self.layout.origin(index);
        let (x0, y0) = (
            x0 + (THUMB_WIDTH - width) / 2,
            y0 + (THUMB_HEIGHT - height) / 2,
        );
        for (row, source) in rgb.chunks_exact(width * 3).take(height).enumerate() {
            let start = ((y0 + row) * self.layout.width() + x0) * 3;
            self.pixels[start..start + width * 3].copy_from_slice(source);
        }
        self.label(index, frame);
    }

    /// Marks tile `index` as a frame that could not be shown: grey with a cross, labelled.
    pub fn placeholder(&mut self, index: usize, frame: i32) {
        if index >= self.layout.tiles {
            return;
        }
        let (x0, y0) = self.layout.origin(index);
        for y in 0..THUMB_HEIGHT {
            for x in 0..THUMB_WIDTH {
                // Two diagonals, three pixels thick.
                let (a, b) = (x * THUMB_HEIGHT, y * THUMB_WIDTH);
                let near = |d: usize| d <= 2 * THUMB_WIDTH;
                let on_cross =
                    near(a.abs_diff(b)) || near(a.abs_diff((THUMB_HEIGHT - y) * THUMB_WIDTH));
                let colour = if on_cross {
                    PLACEHOLDER_CROSS
                } else {
                    PLACEHOLDER
                };
                self.set(x0 + x, y0 + y, colour);
            }
        }
        self.label(index, frame);
    }

    fn set(&mut self, x: usize, y: usize, colour: [u8; 3]) {
        let at = (y * self.layout.width() + x) * 3;
        self.pixels[at..at + 3].copy_from_slice(&colour);
    }

    /// Writes `frame` in the label strip under tile `index`'s picture.
    fn label(&mut self, index: usize, frame: i32) {
        let (x0, y0) = self.layout.origin(index);
        let top = y0 + THUMB_HEIGHT + (LABEL_HEIGHT - GLYPH_HEIGHT * SCALE) / 2;
        let mut x = x0 + 2;
        for c in frame.to_string().chars() {
            let Some(rows) = glyph(c) else { continue };
            for (gy, bits) in rows.iter().enumerate() {
                for gx in 0..GLYPH_WIDTH {
                    if bits & (1 << (GLYPH_WIDTH - 1 - gx)) == 0 {
                        continue;
                    }
                    for (dx, dy) in (0..SCALE).flat_map(|dx| (0..SCALE).map(move |dy| (dx, dy))) {
                        self.set(x + gx * SCALE + dx, top + gy * SCALE + dy, LABEL_COLOUR);
                    }
                }
            }
            x += (GLYPH_WIDTH + 1) * SCALE;
        }
    }
}

const GLYPH_WIDTH: usize = 3;
const GLYPH_HEIGHT: usize = 5;
/// Each font pixel is drawn as a `SCALE` x `SCALE` square.
const SCALE: usize = 2;

/// A 3 x 5 bitmap of a digit or minus sign, one row per byte, the high bit of three on the left.
fn glyph(c: char) -> Option<[u8; GLYPH_HEIGHT]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_every_frame_up_to_the_limit() {
        assert_eq!(sample(0, 64), Vec::<usize>::new());
        assert_eq!(sample(1, 64), [0]);
        assert_eq!(sample(64, 64), (0..64).collect::<Vec<_>>());
    }

    #[test]
    fn sampling_spreads_evenly_with_first_and_last() {
        let picked = sample(1_500, 64);
        assert_eq!(picked.len(), 64);
        assert_eq!(picked[0], 0);
        assert_eq!(picked[63], 1_499);
        assert!(picked.windows(2).all(|w| w[0] < w[1]), "{picked:?}");
        // Evenly: every gap is 23 or 24 frames (1,499 / 63 = 23.8).
        assert!(
            picked
                .windows(2)
                .all(|w| (23..=24).contains(&(w[1] - w[0]))),
            "{picked:?}"
        );
        assert_eq!(sample(65, 64).len(), 64);
        assert_eq!(sample(65, 64)[63], 64);
        assert_eq!(sample(10, 1), [0]);
        assert_eq!(sample(10, 2), [0, 9]);
    }

    #[test]
    fn layouts_are_near_square_and_at_most_eight_wide() {
        let grid = |n| {
            let l = Layout::for_tiles(n);
            (l.columns, l.rows)
        };
        assert_eq!(grid(64), (8, 8));
        assert_eq!(grid(10), (4, 3));
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(2), (2, 1));
        assert_eq!(grid(9), (3, 3));
        assert_eq!(grid(0), (1, 1));
        let layout = Layout::for_tiles(64);
        assert_eq!(layout.width(), 4 + 8 * 260);
        assert_eq!(layout.height(), 4 + 8 * 164);
        assert_eq!(layout.origin(0), (4, 4));
        assert_eq!(layout.origin(9), (4 + 260, 4 + 164));
    }

    #[test]
    fn thumbnails_fit_their_tile_with_the_aspect_kept() {
        assert_eq!(thumb_size(1920, 1080), (256, 144));
        assert_eq!(thumb_size(160, 90), (256, 144));
        assert_eq!(thumb_size(1000, 1000), (144, 144));
        assert_eq!(thumb_size(4096, 1024), (256, 64));
        assert_eq!(thumb_size(1, 10_000), (1, 144));
    }

    #[test]
    fn a_thumbnail_averages_what_it_covers() {
        // 512 x 288, left half red, right half blue: the thumbnail's halves are the same.
        let mut thumb = Thumbnail::new(512, 288);
        for y in 0..288 {
            let row = (0..512).map(|x| {
                if x < 256 {
                    [1.0, 0.0, 0.0]
                } else {
                    [0.0, 0.0, 1.0]
                }
            });
            thumb.add_row(y, 0, row);
        }
        let rgb = thumb.finish(display_from_unit);
        assert_eq!(thumb.size(), (256, 144));
        assert_eq!(&rgb[..3], [255, 0, 0]);
        assert_eq!(&rgb[(255 + 143 * 256) * 3..][..3], [0, 0, 255]);
        // Enlarging a 2 x 1 frame: every thumbnail pixel takes its nearest source pixel.
        let mut thumb = Thumbnail::new(2, 1);
        thumb.add_row(0, 0, [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]);
        let rgb = thumb.finish(display_from_unit);
        assert_eq!(thumb.size(), (256, 128));
        assert_eq!(&rgb[..3], [0, 0, 0]);
        assert_eq!(&rgb[rgb.len() - 3..], [255, 255, 255]);
    }

    #[test]
    fn linear_values_are_clipped_and_srgb_encoded() {
        assert_eq!(display_from_linear(0.0), 0);
        assert_eq!(display_from_linear(1.0), 255);
        assert_eq!(display_from_linear(8.0), 255);
        assert_eq!(display_from_linear(-1.0), 0);
        assert_eq!(display_from_linear(f32::NAN), 0);
        assert_eq!(display_from_linear(0.2), 124);
        assert_eq!(display_from_linear(0.5), 188);
    }

    #[test]
    fn tiles_are_placed_labelled_or_marked() {
        let layout = Layout::for_tiles(3);
        let mut sheet = Sheet::new(layout);
        let green = [0, 200, 0].repeat(256 * 144);
        sheet.place(1, 42, (256, 144), &green);
        sheet.placeholder(2, -7);
        let px = |x: usize, y: usize| {
            let at = (y * layout.width() + x) * 3;
            sheet.pixels()[at..at + 3].to_vec()
        };
        let (x1, y1) = layout.origin(1);
        assert_eq!(px(x1 + 128, y1 + 72), [0, 200, 0]);
        let (x2, y2) = layout.origin(2);
        assert_eq!(px(x2 + 128, y2 + 20), PLACEHOLDER);
        assert_eq!(px(x2 + 128, y2 + 72), PLACEHOLDER_CROSS);
        // Tile 0 was never filled: background.
        let (x0, y0) = layout.origin(0);
        assert_eq!(px(x0 + 128, y0 + 72), BACKGROUND);
        // Labels: the strip under tiles 1 and 2 holds label pixels, the one under tile 0 none.
        let strip_has_label = |x0: usize, y0: usize| {
            (y0 + THUMB_HEIGHT..y0 + THUMB_HEIGHT + LABEL_HEIGHT)
                .any(|y| (x0..x0 + THUMB_WIDTH).any(|x| px(x, y) == LABEL_COLOUR))
        };
        assert!(strip_has_label(x1, y1));
        assert!(strip_has_label(x2, y2));
        assert!(!strip_has_label(x0, y0));
    }
}
