//! Small Blender scenes whose frames show their own frame number.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};
use farm_core::blender::Blender;

/// The script that builds a scene (see its docstring for the frame code).
const MAKE_SCENE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenes/make_scene.py");

/// Red value of frame 0 in a rendered frame; frame `n` is `n + 128`, clamped to 0..=255.
const CODE_OFFSET: i32 = 128;

/// What [`make_scene`] builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneOptions {
    /// First frame of the scene's range (Blender clamps a negative start to 0).
    pub start: i32,
    /// Last frame of the scene's range.
    pub end: i32,
    /// Frame step of the scene's range.
    pub step: u32,
    /// Resolution in pixels, rendered at 100 %.
    pub width: u32,
    /// Resolution in pixels, rendered at 100 %.
    pub height: u32,
    /// Cycles samples per pixel.
    pub samples: u32,
    /// If set, the scene holds a registered text block `autorun.py` writing this file when it
    /// runs: Blender runs it on load only when auto-execution is enabled.
    pub autorun_marker: Option<PathBuf>,
    /// Save the .blend compressed (zstd on Blender 3.0 and later).
    pub compress: bool,
    /// If set, Freestyle is on in Python Scripting mode with a style module (a text block) that
    /// writes this file, holding the environment it sees, when it runs.
    pub freestyle_marker: Option<PathBuf>,
    /// If set, a Python driver expression on the cube writes this file when it is evaluated.
    pub driver_marker: Option<PathBuf>,
    /// Compositor File Output nodes (the render layer's image into each), in this order.
    pub file_outputs: Vec<FileOutput>,
    /// No camera object at all: Blender cannot render the scene.
    pub no_camera: bool,
    /// Timeline markers switch the camera: the scene's own from its first frame, and from this
    /// frame on a camera looking away from the cube (the image's centre shows background).
    pub camera_switch_at: Option<i32>,
    /// The scene's output is a movie: MKV, H.264 (CRF `HIGH`), no audio, at this frame rate.
    pub movie_fps: Option<u32>,
    /// Stereoscopy on: left and right views, each saved to its own file (`_L`, `_R`).
    pub stereo: bool,
}

/// A compositor File Output node: Blender writes `<base_path><slot><frame, 4 digits>.png`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutput {
    /// The node's folder: absolute, or relative to the .blend (`//../..`).
    pub base_path: String,
    /// The slot's file name prefix (may hold `/` and `..`).
    pub slot: String,
}

impl Default for SceneOptions {
    /// Frames 1 to 24, 32x24 pixels, 2 samples: a 24-frame render takes a few seconds.
    fn default() -> Self {
        Self {
            start: 1,
            end: 24,
            step: 1,
            width: 32,
            height: 24,
            samples: 2,
            autorun_marker: None,
            compress: false,
            freestyle_marker: None,
            driver_marker: None,
            file_outputs: Vec::new(),
            no_camera: false,
            camera_switch_at: None,
            movie_fps: None,
            stereo: false,
        }
    }
}

/// The Blender executable: `$BLENDER`, or `blender` on `PATH`.
pub fn blender() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("BLENDER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if path.components().count() > 1 {
            return if path.is_file() {
                Ok(path)
            } else {
                Err(anyhow!("BLENDER={} does not exist", path.display()))
            };
        }
        return find_on_path(&path.to_string_lossy());
    }
    find_on_path("blender")
}

fn find_on_path(name: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            anyhow!("`{name}` is not on PATH: install it with `apt-get install -y blender` (or set BLENDER)")
        })
}

/// Version of the official `bpy` module the tests run besides Debian's executable: the LTS
/// production runs (`scripts/bpy-venv.sh` makes its virtual environment).
pub const BPY_VERSION: &str = "4.2.23";

/// The bpy versions the tests run on by default, one per series CI checks: the LTS production
/// runs by default, and 5.0, the first of the 5.x API (the compositor as a node group, layered
/// actions, media types). Both run on CPython 3.11, which Debian 12 ships.
pub const DEFAULT_TEST_BPY: &[&str] = &[BPY_VERSION, "5.0.1"];

/// `FARM_TEST_BPY`: the bpy versions to test on instead (space- or comma-separated), e.g.
/// `4.5.15 5.3.0` for the series CI leaves out (`scripts/test-series.sh`).
pub const TEST_BPY_ENV: &str = farm_core::env::TEST_BPY;

/// The bpy versions the tests run on: [`TEST_BPY_ENV`], else [`DEFAULT_TEST_BPY`].
pub fn test_bpy_versions() -> Vec<String> {
    let asked = std::env::var(TEST_BPY_ENV).unwrap_or_default();
    let asked: Vec<String> = asked
        .split([' ', ','])
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if asked.is_empty() {
        DEFAULT_TEST_BPY.iter().map(|v| (*v).to_owned()).collect()
    } else {
        asked
    }
}

/// A Blender the tests run on, with a name for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestBlender {
    pub name: String,
    pub blender: Blender,
    /// The series of a bpy module; `None` for Debian's executable (3.4, older than them all).
    pub series: Option<farm_core::BlenderSeries>,
}

impl TestBlender {
    /// Debian's executable ([`blender`]).
    pub fn executable() -> anyhow::Result<Self> {
        Ok(Self {
            name: "blender executable".into(),
            blender: Blender::Executable(blender()?),
            series: None,
        })
    }

    /// The official `bpy` module of `version` in its cached virtual environment.
    pub fn bpy(version: &str) -> anyhow::Result<Self> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bpy-venv.sh");
        let output = Command::new(script)
            .arg(version)
            .output()
            .with_context(|| format!("running {script}"))?;
        if !output.status.success() {
            bail!(
                "{script} {version} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let python = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let series = version
            .rsplit_once('.')
            .and_then(|(series, _)| series.parse().ok());
        Ok(Self {
            name: format!("bpy {version}"),
            blender: Blender::PythonModule(python),
            series,
        })
    }

    /// Every Blender the tests run on: Debian's executable and each bpy of [`test_bpy_versions`].
    pub fn all() -> anyhow::Result<Vec<Self>> {
        let mut all = vec![Self::executable()?];
        for version in test_bpy_versions() {
            all.push(Self::bpy(&version)?);
        }
        Ok(all)
    }

    /// The variable that makes the farm's binaries use this Blender.
    pub fn env(&self) -> (&'static str, &Path) {
        match &self.blender {
            Blender::Executable(path) => (farm_core::env::BLENDER, path),
            Blender::PythonModule(python) => (farm_core::env::BLENDER_PYTHON, python),
        }
    }

    /// A command running a Python script file in this Blender, with `args` after `--`.
    pub fn script(&self, script: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(self.blender.program());
        match &self.blender {
            Blender::Executable(_) => {
                command.args([
                    "-b",
                    "--factory-startup",
                    "--python-exit-code",
                    "1",
                    "--python",
                ]);
            }
            Blender::PythonModule(_) => {
                command.arg("-I");
            }
        }
        command.arg(script).arg("--").args(args);
        command
    }
}

/// The script that builds a geometry-heavy scene (see its docstring for the kinds).
const GEOMETRY_SCENE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenes/geometry_scene.py");

/// What [`make_geometry_scene`] builds: subdivided monkeys, a moving cube and camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeometryScene {
    /// `static` (only the cube and camera move), `deforming` (every monkey bends, motion
    /// blur), `spike` (one frame of 8x the samples) or `rising` (samples rising to 4x).
    pub kind: &'static str,
    /// Frames 1..=end.
    pub end: u32,
    pub width: u32,
    pub height: u32,
    pub samples: u32,
    /// How many monkeys.
    pub objects: u32,
    /// Their render subdivision level.
    pub levels: u32,
}

/// Writes `<dir>/<name>.blend`, a [`GeometryScene`], with `blender`.
pub fn make_geometry_scene(
    blender: &TestBlender,
    dir: &Path,
    name: &str,
    scene: &GeometryScene,
) -> anyhow::Result<PathBuf> {
    let output = dir.join(format!("{name}.blend"));
    let json = serde_json::json!({
        "output": output,
        "kind": scene.kind,
        "end": scene.end,
        "width": scene.width,
        "height": scene.height,
        "samples": scene.samples,
        "objects": scene.objects,
        "levels": scene.levels,
    });
    run_maker(blender, Path::new(GEOMETRY_SCENE), &json, &output)?;
    Ok(output)
}

fn run_maker(
    blender: &TestBlender,
    script: &Path,
    json: &serde_json::Value,
    output: &Path,
) -> anyhow::Result<()> {
    let result = blender
        .script(script, &[&json.to_string()])
        .output()
        .with_context(|| format!("running {}", blender.name))?;
    if !result.status.success() || !output.is_file() {
        bail!(
            "{} could not make {} ({}):\n{}\n{}",
            blender.name,
            output.display(),
            result.status,
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    Ok(())
}

/// Writes `<dir>/<name>.blend`: Cycles on the CPU, no denoising, raw colours, 8-bit RGB PNG
/// output, a small cube in the centre and a background whose red value encodes the frame
/// (read it back with [`frame_code`]). Made by Debian's executable.
pub fn make_scene(dir: &Path, name: &str, options: &SceneOptions) -> anyhow::Result<PathBuf> {
    make_scene_with(&TestBlender::executable()?, dir, name, options)
}

/// [`make_scene`] with the given Blender (a scene saved by bpy 4.2 is a 4.2 file).
pub fn make_scene_with(
    blender: &TestBlender,
    dir: &Path,
    name: &str,
    options: &SceneOptions,
) -> anyhow::Result<PathBuf> {
    let output = dir.join(format!("{name}.blend"));
    let json = serde_json::json!({
        "output": output,
        "start": options.start,
        "end": options.end,
        "step": options.step,
        "width": options.width,
        "height": options.height,
        "samples": options.samples,
        "autorun_marker": options.autorun_marker,
        "compress": options.compress,
        "freestyle_marker": options.freestyle_marker,
        "driver_marker": options.driver_marker,
        "file_outputs": options.file_outputs.iter().map(|f| serde_json::json!({
            "base_path": f.base_path,
            "slot": f.slot,
        })).collect::<Vec<_>>(),
        "no_camera": options.no_camera,
        "camera_switch_at": options.camera_switch_at,
        "movie_fps": options.movie_fps,
        "stereo": options.stereo,
    });
    run_maker(blender, Path::new(MAKE_SCENE), &json, &output)?;
    Ok(output)
}

/// A PNG decoded to 8-bit RGB or RGBA samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPng {
    pub width: usize,
    pub height: usize,
    /// Samples per pixel: 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// Row after row, `channels` bytes per pixel.
    pub samples: Vec<u8>,
}

/// Decodes an RGB or RGBA PNG (8-bit or 16-bit) to 8-bit samples: the image, without the
/// metadata (Blender stamps the render date into its PNGs, so files of the same pixels differ).
pub fn decode_png(png_bytes: &[u8]) -> anyhow::Result<DecodedPng> {
    let mut decoder = png::Decoder::new(Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().context("reading the PNG header")?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| anyhow!("the PNG is too large to decode"))?;
    let mut samples = vec![0; size];
    let info = reader
        .next_frame(&mut samples)
        .context("decoding the PNG")?;
    if !matches!(info.color_type, png::ColorType::Rgb | png::ColorType::Rgba) {
        bail!("expected an RGB PNG, got {:?}", info.color_type);
    }
    samples.truncate(info.buffer_size());
    Ok(DecodedPng {
        width: info.width as usize,
        height: info.height as usize,
        channels: info.color_type.samples(),
        samples,
    })
}

/// What `ffprobe` (Debian's ffmpeg, `scripts/setup.sh`) reads of a movie file: its container
/// (`format.format_name`) and each stream's type, codec, frames counted by decoding
/// (`nb_read_frames`), frame rate and size, as JSON.
pub fn probe_movie(path: &Path) -> anyhow::Result<serde_json::Value> {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("format=format_name:stream=codec_type,codec_name,nb_read_frames,r_frame_rate,width,height")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .map_err(|e| anyhow!("ffprobe (Debian's ffmpeg, scripts/setup.sh) does not run: {e}"))?;
    if !output.status.success() {
        return Err(anyhow!(
            "ffprobe {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The RGB colour of the pixel at (`x`, `y`) of a PNG (8-bit or 16-bit, RGB or RGBA).
pub fn pixel(png_bytes: &[u8], x: usize, y: usize) -> anyhow::Result<[u8; 3]> {
    let image = decode_png(png_bytes)?;
    if x >= image.width || y >= image.height {
        bail!(
            "({x}, {y}) is outside the {}x{} image",
            image.width,
            image.height
        );
    }
    let at = (y * image.width + x) * image.channels;
    Ok([
        image.samples[at],
        image.samples[at + 1],
        image.samples[at + 2],
    ])
}

/// The frame number a frame of a [`make_scene`] scene shows: its top-left pixel's red value
/// minus 128. Exact on the renders of Blender 3.4 and 4.x; compare with ±1 to be safe.
pub fn frame_code(png_bytes: &[u8]) -> anyhow::Result<i32> {
    let [red, _, _] = pixel(png_bytes, 0, 0)?;
    Ok(i32::from(red) - CODE_OFFSET)
}
