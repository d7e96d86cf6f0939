//! Talking to Blender: a pure argv and environment builder and a pure parser of its log lines.
//!
//! Blender runs one way or another (see [`Blender`]): the executable, or a Python in which
//! `import bpy` works (the official builds on PyPI). Either way it runs the same script,
//! `render_script.py`, which opens the .blend with its scripts disabled, makes every known way a
//! .blend runs code or writes files harmless (or refuses the file, printing [`REFUSED_MARKER`]),
//! and renders each frame to an exact file name. That script is the only Python that runs.
//!
//! Frames are always absolute. Blender reads `-f -5` and `-s -5` as "5 before the end" and
//! `-f +5` as "5 after the start", and a scene's own range cannot go below 0, so frame numbers are
//! never put on Blender's command line: the script sets each frame with `frame_set`.
//!
//! Blender sees no credentials: [`blender_env`] keeps only the variables it needs.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::engine::Engine;
use crate::image::ImageFile;

/// Prefix of the line printed before each frame renders: `FARM_FRAME 12`.
pub const FRAME_MARKER: &str = "FARM_FRAME ";
/// Prefix of the line the scene query prints.
pub const SCENE_INFO_MARKER: &str = "FARM_SCENE_INFO ";
/// Prefix of the line the script prints when it will not render a file, followed by the reason.
pub const REFUSED_MARKER: &str = "FARM_REFUSED ";
/// Prefix of the line the script prints when it changed the scene (to keep it harmless, or to
/// turn persistent data on).
pub const NOTE_MARKER: &str = "FARM_NOTE ";
/// Exit code of the script after [`REFUSED_MARKER`].
pub const REFUSED_EXIT: i32 = 3;
/// File name prefix of Blender's output inside the work folder: `frame_<N>.<ext>`.
pub const OUTPUT_PREFIX: &str = "frame_";

/// The farm's only Python inside Blender.
const SCRIPT: &str = include_str!("render_script.py");

/// How Blender is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blender {
    /// The `blender` executable (`BLENDER`).
    Executable(PathBuf),
    /// A Python interpreter in which `import bpy` works (`FARM_BLENDER_PYTHON`).
    PythonModule(PathBuf),
}

impl Blender {
    /// The program to start.
    pub fn program(&self) -> &Path {
        match self {
            Self::Executable(path) | Self::PythonModule(path) => path,
        }
    }

    /// Arguments running the farm's script with `config` (a JSON object).
    fn script_args(&self, threads: usize, config: &serde_json::Value) -> Vec<OsString> {
        let mut args: Vec<OsString> = match self {
            // `--disable-autoexec` also stops preferences from turning auto-execution back on;
            // `--factory-startup` ignores any user preferences and add-ons.
            Self::Executable(_) => [
                "--background",
                "--factory-startup",
                "--disable-autoexec",
                "--threads",
                &threads.max(1).to_string(),
                "--python-exit-code",
                "1",
                "--python-expr",
            ]
            .map(OsString::from)
            .to_vec(),
            // `-I`: no PYTHON* variables, no user site-packages, not the current folder.
            Self::PythonModule(_) => ["-I", "-c"].map(OsString::from).to_vec(),
        };
        args.push(SCRIPT.into());
        args.push("--".into());
        args.push(config.to_string().into());
        args
    }
}

/// Variables Blender may inherit; everything else (AWS credentials, the container credentials
/// URI, the job's settings) is withheld. `LC_*` are kept too.
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "OCIO",
    "OMP_NUM_THREADS",
    "TBB_NUM_THREADS",
];

/// Blender's whole environment: the [`INHERITED_ENV`] variables of `inherited` (and `LC_*`),
/// `HOME` and `TMPDIR` set to folders of the job's work folder, and `XDG_CACHE_HOME` to
/// `<home>/.cache`: Mesa, which EEVEE and Workbench render through (llvmpipe over EGL, no
/// display; nothing else needs setting), keeps its shader cache there. Without it Mesa finds the
/// user's home from the password database, ignoring `HOME`, and writes outside the work folder.
pub fn blender_env(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    home: &Path,
    tmp: &Path,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .into_iter()
        .filter(|(name, _)| is_inherited(name))
        .collect();
    env.push(("HOME".into(), home.into()));
    env.push(("TMPDIR".into(), tmp.into()));
    env.push(("XDG_CACHE_HOME".into(), home.join(".cache").into()));
    env.sort();
    env
}

/// Image formats the farm can ask Blender for (`-F`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Png,
    Jpeg,
    OpenExr,
    OpenExrMultilayer,
    Tiff,
    Bmp,
    Targa,
    Hdr,
    Webp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an output format: use one of PNG, JPEG, OPEN_EXR, OPEN_EXR_MULTILAYER, TIFF, BMP, TARGA, HDR, WEBP")]
pub struct UnknownFormat(pub String);

impl OutputFormat {
    const ALL: [Self; 9] = [
        Self::Png,
        Self::Jpeg,
        Self::OpenExr,
        Self::OpenExrMultilayer,
        Self::Tiff,
        Self::Bmp,
        Self::Targa,
        Self::Hdr,
        Self::Webp,
    ];

    /// Blender's name, as `-F` and `image_settings.file_format` spell it.
    pub fn blender_name(self) -> &'static str {
        match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::OpenExr => "OPEN_EXR",
            Self::OpenExrMultilayer => "OPEN_EXR_MULTILAYER",
            Self::Tiff => "TIFF",
            Self::Bmp => "BMP",
            Self::Targa => "TARGA",
            Self::Hdr => "HDR",
            Self::Webp => "WEBP",
        }
    }

    /// The type of file Blender writes in this format: its row of the one table of image files
    /// (extension, magic bytes, content type, preview decoder).
    pub fn file(self) -> ImageFile {
        match self {
            Self::Png => ImageFile::Png,
            Self::Jpeg => ImageFile::Jpeg,
            Self::OpenExr | Self::OpenExrMultilayer => ImageFile::Exr,
            Self::Tiff => ImageFile::Tiff,
            Self::Bmp => ImageFile::Bmp,
            Self::Targa => ImageFile::Targa,
            Self::Hdr => ImageFile::Hdr,
            Self::Webp => ImageFile::Webp,
        }
    }

    /// The extension Blender gives the file.
    pub fn extension(self) -> &'static str {
        self.file().extension()
    }
}

impl FromStr for OutputFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_uppercase();
        let alias = match wanted.as_str() {
            "JPG" => "JPEG",
            "EXR" => "OPEN_EXR",
            "TIF" => "TIFF",
            "TGA" => "TARGA",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|f| f.blender_name() == alias)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.blender_name())
    }
}

/// Blender's names of the scene output formats that write one movie file, not an image per
/// frame (`FFMPEG`; `AVI_JPEG` and `AVI_RAW` before 4.0; older names in 2.7x files).
pub const MOVIE_FORMATS: &[&str] = &[
    "FFMPEG",
    "AVI_JPEG",
    "AVI_RAW",
    "H264",
    "XVID",
    "THEORA",
    "FRAMESERVER",
];

/// The format a job's frames are saved in: the one asked for (`format=`); PNG when the scene
/// writes a movie (Blender cannot write a movie a frame at a time: the frames are rendered as
/// stills, and the movie is made from them); `None` otherwise, the scene's own format.
/// Blender keeps the scene's colour mode and depth where PNG has them.
pub fn stills_format(
    asked: Option<OutputFormat>,
    scene_format: Option<&str>,
) -> Option<OutputFormat> {
    asked.or_else(|| {
        scene_format
            .is_some_and(|f| MOVIE_FORMATS.contains(&f))
            .then_some(OutputFormat::Png)
    })
}

/// One Blender process rendering a chunk of frames.
#[derive(Debug, Clone)]
pub struct RenderCommand<'a> {
    pub blend: &'a Path,
    /// Sorted absolute frames.
    pub frames: &'a [i32],
    pub threads: usize,
    /// Folder Blender writes `frame_<N>.<ext>` into.
    pub output_dir: &'a Path,
    /// Folder the scene's File Output nodes are redirected into (`<node>/<file>`).
    pub outputs_dir: &'a Path,
    /// Folder simulation caches that would be written during the render are redirected into.
    pub caches_dir: &'a Path,
    pub format: Option<OutputFormat>,
    /// The job allows Cycles' persistent data (not `persistent=off`); see
    /// [`Self::persistent_data`].
    pub persistent: bool,
    pub engine: Engine,
    /// Render at this percent of the scene's resolution (the estimate's profile pass, ADR
    /// 0016); `None` for a job's frames.
    pub resolution_percent: Option<u8>,
}

impl RenderCommand<'_> {
    /// Whether Blender renders the chunk with `render.use_persistent_data` (ADR 0015): only a
    /// chunk of more than one frame gains from it (the first frame pays the full scene sync, the
    /// next ones only what changed), and only when the job allows it. The script leaves it off
    /// for scenes where it is not safe.
    pub fn persistent_data(&self) -> bool {
        self.persistent && self.frames.len() > 1
    }

    /// Blender's arguments (without the program). Paths and frames reach the script as JSON.
    pub fn args(&self, blender: &Blender) -> Vec<OsString> {
        let config = serde_json::json!({
            "mode": "render",
            "blend": self.blend.to_string_lossy(),
            "frames": self.frames,
            "threads": self.threads.max(1),
            "out": self.output_dir.to_string_lossy(),
            "outputs": self.outputs_dir.to_string_lossy(),
            "caches": self.caches_dir.to_string_lossy(),
            "format": self.format.map(OutputFormat::blender_name),
            "persistent": self.persistent_data(),
            "engine": self.engine.blender_ids(),
            "resolution_percent": self.resolution_percent,
        });
        blender.script_args(self.threads, &config)
    }
}

/// One Blender process writing the movie a scene set to FFmpeg output asks for, from frames
/// already rendered: the sequencer shows them (with the scene's sound strips) and Blender encodes
/// them with the scene's settings. Nothing is rendered again.
#[derive(Debug, Clone)]
pub struct MovieCommand<'a> {
    pub blend: &'a Path,
    /// The rendered frames' files, in frame order (one folder).
    pub frames: &'a [PathBuf],
    /// The first frame's number: the movie starts there, so sound strips keep their timing.
    pub first: i32,
    pub threads: usize,
    /// An empty folder Blender writes the movie into (one file).
    pub output_dir: &'a Path,
}

impl MovieCommand<'_> {
    /// Blender's arguments (without the program).
    pub fn args(&self, blender: &Blender) -> Vec<OsString> {
        let frames: Vec<_> = self.frames.iter().map(|f| f.to_string_lossy()).collect();
        let config = serde_json::json!({
            "mode": "movie",
            "blend": self.blend.to_string_lossy(),
            "frames": frames,
            "first": self.first,
            "threads": self.threads.max(1),
            "out": self.output_dir.to_string_lossy(),
        });
        blender.script_args(self.threads, &config)
    }
}

/// Arguments that print the scene's own frame range and format on a [`SCENE_INFO_MARKER`] line.
pub fn scene_info_args(blender: &Blender, blend: &Path) -> Vec<OsString> {
    let config = serde_json::json!({"mode": "info", "blend": blend.to_string_lossy()});
    blender.script_args(1, &config)
}

/// Whether a variable of this name is passed on to Blender.
pub fn is_inherited(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|name| INHERITED_ENV.contains(&name) || name.starts_with("LC_"))
}

/// A scene's own settings, as the scene query reports them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SceneInfo {
    pub start: i32,
    pub end: i32,
    pub step: u32,
    pub format: String,
    pub engine: String,
    pub scene: String,
}

impl SceneInfo {
    /// Finds and reads the scene query's line in Blender's output.
    pub fn from_output(output: &str) -> Option<Self> {
        output
            .lines()
            .find_map(|line| line.strip_prefix(SCENE_INFO_MARKER))
            .and_then(|json| serde_json::from_str(json).ok())
    }
}

/// The frame number, view suffix and extension of a file name Blender wrote for
/// [`RenderCommand`]: `frame_-5.png` is frame -5; `frame_12_L.png` is view `_L` of frame 12
/// (Blender puts a view's suffix before the extension, [`crate::views`]).
pub fn output_frame(file_name: &str) -> Option<(i32, &str, &str)> {
    let rest = file_name.strip_prefix(OUTPUT_PREFIX)?;
    let (frame, _, suffix, extension) = crate::layout::split_view_name(rest)?;
    Some((frame, suffix, extension))
}

/// What one line of Blender's output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent<'a> {
    /// `FARM_FRAME 12`: the render script starts on a frame; later lines belong to it.
    FrameStart {
        frame: i32,
    },
    /// `Fra:12 Mem:...`: Blender is working on a frame.
    Progress {
        frame: i32,
    },
    /// `Saved: '/out/frame_12.png'`: a frame's file is complete on disk.
    Saved {
        path: &'a str,
    },
    /// ` Time: 00:01.25 (Saving: 00:00.01)`: the frame just saved took this long.
    FrameTime {
        render: Duration,
    },
    /// `FARM_REFUSED <reason>`: the script will not render this file.
    Refused {
        reason: &'a str,
    },
    /// `FARM_NOTE <text>`: the script changed the scene (see [`NOTE_MARKER`]).
    Note {
        text: &'a str,
    },
    /// An error Blender reported; it may still exit 0.
    Error {
        message: &'a str,
    },
    Other,
}

/// Blender 5 starts its log lines with the time and a category,
/// `00:00.963  render           | Saved: '/out/frame_1.png'` (seen on bpy 5.0.1 and 5.3.0):
/// the text after them, or the whole line.
fn without_log_prefix(line: &str) -> &str {
    let Some((head, rest)) = line.split_once(" | ") else {
        return line;
    };
    let mut words = head.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(time), Some(_category), None)
            if time.contains(':')
                && time
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b':' || b == b'.') =>
        {
            rest
        }
        _ => line,
    }
}

/// Reads one line of Blender's output (3.x, 4.x and 5.x spellings).
pub fn parse_log_line(line: &str) -> LogEvent<'_> {
    let line = without_log_prefix(line.trim_end());
    let trimmed = line.trim_start();
    if let Some(frame) = trimmed
        .strip_prefix(FRAME_MARKER)
        .and_then(|f| f.trim().parse().ok())
    {
        return LogEvent::FrameStart { frame };
    }
    if let Some(reason) = trimmed.strip_prefix(REFUSED_MARKER) {
        return LogEvent::Refused { reason };
    }
    if let Some(text) = trimmed.strip_prefix(NOTE_MARKER) {
        return LogEvent::Note { text };
    }
    if let Some(rest) = trimmed.strip_prefix("Saved: ") {
        let path = rest.trim();
        let unquoted = ['\'', '"']
            .into_iter()
            .find_map(|q| path.strip_prefix(q).and_then(|p| p.strip_suffix(q)));
        return LogEvent::Saved {
            path: unquoted.unwrap_or(path),
        };
    }
    if let Some(rest) = trimmed.strip_prefix("Fra:") {
        let number: String = rest
            .chars()
            .enumerate()
            .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && c == '-'))
            .map(|(_, c)| c)
            .collect();
        if let Ok(frame) = number.parse() {
            return LogEvent::Progress { frame };
        }
    }
    if let Some(rest) = trimmed.strip_prefix("Time: ") {
        let clock = rest.split_whitespace().next().unwrap_or("");
        if let Some(render) = parse_clock(clock) {
            return LogEvent::FrameTime { render };
        }
    }
    for prefix in [
        "Error: ",
        "ERROR: ",
        "ERROR ",
        "Error ",
        "Traceback (most recent call last)",
        "Python: Traceback",
    ] {
        if trimmed.starts_with(prefix) {
            return LogEvent::Error { message: trimmed };
        }
    }
    if trimmed.contains("Error: ")
        || trimmed.starts_with("Warning: Unable to open")
        || trimmed.starts_with("Unable to open")
    {
        return LogEvent::Error { message: trimmed };
    }
    LogEvent::Other
}

/// `MM:SS.cc` or `HH:MM:SS.cc`, as Blender prints render times.
fn parse_clock(clock: &str) -> Option<Duration> {
    let mut seconds = 0.0f64;
    for part in clock.split(':') {
        let value: f64 = part.parse().ok()?;
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        seconds = seconds * 60.0 + value;
    }
    clock
        .contains(':')
        .then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    fn command<'a>(frames: &'a [i32], format: Option<OutputFormat>) -> RenderCommand<'a> {
        RenderCommand {
            blend: Path::new("/work/scene.blend"),
            frames,
            threads: 4,
            output_dir: Path::new("/work/out dir"),
            outputs_dir: Path::new("/work/outputs"),
            caches_dir: Path::new("/work/caches"),
            format,
            persistent: true,
            engine: Engine::Cycles,
            resolution_percent: None,
        }
    }

    /// The JSON after `--` that the script reads.
    fn config(args: &[&str]) -> serde_json::Value {
        let dash = args.iter().position(|a| *a == "--").unwrap();
        assert_eq!(args.len(), dash + 2, "the JSON is the last argument");
        serde_json::from_str(args[dash + 1]).unwrap()
    }

    #[test]
    fn the_executable_runs_the_script_with_autoexec_off_and_no_file_on_its_command_line() {
        let blender = Blender::Executable("/usr/bin/blender".into());
        let args = command(&[-5, 0, 3, 4], None).args(&blender);
        let args = strings(&args);
        assert_eq!(
            &args[..9],
            &[
                "--background",
                "--factory-startup",
                "--disable-autoexec",
                "--threads",
                "4",
                "--python-exit-code",
                "1",
                "--python-expr",
                SCRIPT,
            ]
        );
        // The .blend is opened by the script (with use_scripts=False), never by Blender's
        // command line, where nothing would disable its scripts in the bpy module.
        assert!(!args.contains(&"/work/scene.blend"), "{args:?}");
        let config = config(&args);
        assert_eq!(config["mode"], "render");
        assert_eq!(config["blend"], "/work/scene.blend");
        assert_eq!(config["frames"], serde_json::json!([-5, 0, 3, 4]));
        assert_eq!(config["out"], "/work/out dir");
        assert_eq!(config["outputs"], "/work/outputs");
        assert_eq!(config["caches"], "/work/caches");
        assert_eq!(config["format"], serde_json::Value::Null);
        assert_eq!(config["persistent"], true);
        assert_eq!(config["engine"], serde_json::json!(["CYCLES"]));
        assert!(
            !args.iter().any(
                |a| ["-f", "-s", "-e", "--frame-start", "--render-frame"].contains(a)
                    || a.starts_with('+')
            ),
            "no frame numbers on Blender's command line: {args:?}"
        );
    }

    #[test]
    fn the_python_module_runs_the_same_script_isolated() {
        let blender = Blender::PythonModule("/venv/bin/python".into());
        let args = command(&[1], Some(OutputFormat::OpenExr)).args(&blender);
        let args = strings(&args);
        assert_eq!(&args[..3], &["-I", "-c", SCRIPT]);
        assert_eq!(config(&args)["format"], "OPEN_EXR");
        assert_eq!(
            config(&args)["persistent"],
            false,
            "one frame gains nothing"
        );
        assert_eq!(blender.program(), Path::new("/venv/bin/python"));
        let info = scene_info_args(&blender, Path::new("/x.blend"));
        let info = strings(&info);
        assert_eq!(config(&info)["mode"], "info");
    }

    #[test]
    fn persistent_data_needs_several_frames_and_the_jobs_consent() {
        let blender = Blender::Executable("/usr/bin/blender".into());
        for (frames, allowed, expected) in [
            (&[1, 2][..], true, true),
            (&[1, 2][..], false, false),
            (&[7][..], true, false),
            (&[7][..], false, false),
        ] {
            let command = RenderCommand {
                persistent: allowed,
                ..command(frames, None)
            };
            assert_eq!(command.persistent_data(), expected, "{frames:?} {allowed}");
            let args = command.args(&blender);
            assert_eq!(config(&strings(&args))["persistent"], expected);
        }
    }

    #[test]
    fn a_profile_pass_tells_the_script_its_resolution_percent() {
        let blender = Blender::Executable("/usr/bin/blender".into());
        let full = command(&[1, 2], None).args(&blender);
        assert_eq!(
            config(&strings(&full))["resolution_percent"],
            serde_json::Value::Null
        );
        let profile = RenderCommand {
            resolution_percent: Some(25),
            ..command(&[1, 2], None)
        };
        let args = profile.args(&blender);
        assert_eq!(config(&strings(&args))["resolution_percent"], 25);
    }

    #[test]
    fn the_script_opens_the_file_with_scripts_disabled_and_closes_each_vector() {
        for needle in [
            "use_scripts=False",
            "use_scripts_auto_execute = False",
            "def neutralise_freestyle",
            "is_simple_expression",
            "use_module = False",
            "load_ui=False",
            "ShaderNodeScript",
            "CompositorNodeOutputFile",
            "def redirect_caches",
            "os._exit(REFUSED_EXIT)",
        ] {
            assert!(SCRIPT.contains(needle), "{needle}");
        }
        assert!(SCRIPT.contains(&format!("REFUSED_EXIT = {REFUSED_EXIT}")));
        // Every step runs before the first frame renders.
        let render = SCRIPT.find("def render():").unwrap();
        let first_frame = SCRIPT[render..].find("bpy.ops.render.render").unwrap();
        for step in [
            "neutralise_freestyle()",
            "neutralise_texts()",
            "neutralise_osl()",
            "redirect_file_outputs(",
            "redirect_caches(",
        ] {
            let at = SCRIPT[render..].find(step).unwrap();
            assert!(at < first_frame, "{step}");
        }
    }

    #[test]
    fn blender_inherits_no_credentials() {
        let inherited = [
            ("PATH", "/usr/bin"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C"),
            ("OCIO", "/ocio/config.ocio"),
            ("HOME", "/root"),
            ("TMPDIR", "/tmp"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
            ("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/x"),
            ("AWS_PROFILE", "prod"),
            (crate::env::BUCKET, "b"),
            ("PYTHONPATH", "/evil"),
            ("LD_PRELOAD", "/evil.so"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = blender_env(inherited, Path::new("/w/home"), Path::new("/w/tmp"));
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            env,
            [
                ("HOME", "/w/home"),
                ("LANG", "C.UTF-8"),
                ("LC_ALL", "C"),
                ("OCIO", "/ocio/config.ocio"),
                ("PATH", "/usr/bin"),
                ("TMPDIR", "/w/tmp"),
                ("XDG_CACHE_HOME", "/w/home/.cache"),
            ]
        );
    }

    #[test]
    fn format_override_reaches_the_script() {
        let blender = Blender::Executable("blender".into());
        let args = command(&[1], Some(OutputFormat::Png)).args(&blender);
        assert_eq!(config(&strings(&args))["format"], "PNG");
    }

    #[test]
    fn the_engine_reaches_the_script_as_blenders_identifiers() {
        let mut cmd = command(&[1], None);
        cmd.engine = Engine::Eevee;
        let args = cmd.args(&Blender::Executable("blender".into()));
        assert_eq!(
            config(&strings(&args))["engine"],
            serde_json::json!(["BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"])
        );
    }

    #[test]
    fn zero_threads_still_asks_for_one() {
        let mut cmd = command(&[1], None);
        cmd.threads = 0;
        let args = cmd.args(&Blender::Executable("blender".into()));
        let t = args.iter().position(|a| a == "--threads").unwrap();
        assert_eq!(args[t + 1], "1");
        assert_eq!(config(&strings(&args))["threads"], 1);
    }

    #[test]
    fn output_file_names_give_their_frame() {
        assert_eq!(output_frame("frame_12.png"), Some((12, "", "png")));
        assert_eq!(output_frame("frame_-5.exr"), Some((-5, "", "exr")));
        assert_eq!(output_frame("frame_0.jpg"), Some((0, "", "jpg")));
        assert_eq!(output_frame("frame_12_L.png"), Some((12, "_L", "png")));
        assert_eq!(output_frame("frame_-5_R.exr"), Some((-5, "_R", "exr")));
        assert_eq!(output_frame("frame_x.png"), None);
        assert_eq!(output_frame("frame_1_L.x.png"), None);
        assert_eq!(output_frame("other_1.png"), None);
    }

    #[test]
    fn a_movie_scene_renders_png_stills_unless_a_format_is_asked() {
        assert_eq!(stills_format(None, Some("FFMPEG")), Some(OutputFormat::Png));
        assert_eq!(
            stills_format(None, Some("AVI_JPEG")),
            Some(OutputFormat::Png)
        );
        assert_eq!(
            stills_format(Some(OutputFormat::OpenExr), Some("FFMPEG")),
            Some(OutputFormat::OpenExr)
        );
        assert_eq!(stills_format(None, Some("OPEN_EXR")), None);
        assert_eq!(stills_format(None, None), None);
    }

    #[test]
    fn formats_parse_by_blender_name_and_common_alias() {
        assert_eq!("png".parse(), Ok(OutputFormat::Png));
        assert_eq!("EXR".parse(), Ok(OutputFormat::OpenExr));
        assert_eq!("jpg".parse::<OutputFormat>().unwrap().extension(), "jpg");
        assert_eq!(
            "OPEN_EXR_MULTILAYER"
                .parse::<OutputFormat>()
                .unwrap()
                .extension(),
            "exr"
        );
        assert!("gif"
            .parse::<OutputFormat>()
            .unwrap_err()
            .to_string()
            .contains("OPEN_EXR"));
    }

    #[test]
    fn log_lines_of_blender_3_4() {
        // Literal lines from Debian's Blender 3.4.1.
        let cases: &[(&str, LogEvent<'_>)] = &[
            (
                "Fra:3 Mem:15.37M (Peak 15.66M) | Time:00:00.08 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Synchronizing object | Cube",
                LogEvent::Progress { frame: 3 },
            ),
            ("Saved: '/tmp/out/frame_3.png'", LogEvent::Saved { path: "/tmp/out/frame_3.png" }),
            (" Time: 00:00.62 (Saving: 00:00.00)", LogEvent::FrameTime { render: Duration::from_millis(620) }),
            (
                "Error: Cannot read file '/tmp/missing.blend': No such file or directory",
                LogEvent::Error { message: "Error: Cannot read file '/tmp/missing.blend': No such file or directory" },
            ),
            (
                "Error: File format is not supported in file '/tmp/x.blend'",
                LogEvent::Error { message: "Error: File format is not supported in file '/tmp/x.blend'" },
            ),
            ("Blender quit", LogEvent::Other),
            ("Blender 3.4.1", LogEvent::Other),
            ("FARM_FRAME -5", LogEvent::FrameStart { frame: -5 }),
            (
                "Error: Failed to read blend file '/tmp/bt/trunc.blend': Missing DNA block",
                LogEvent::Error { message: "Error: Failed to read blend file '/tmp/bt/trunc.blend': Missing DNA block" },
            ),
            ("Fra:-5 Mem:1.0M (Peak 1.0M) | Time:00:00.01 | Rendering 1 / 16 samples", LogEvent::Progress { frame: -5 }),
        ];
        for (line, want) in cases {
            assert_eq!(&parse_log_line(line), want, "{line}");
        }
    }

    #[test]
    fn log_lines_of_blender_4_and_5() {
        let cases: &[(&str, LogEvent<'_>)] = &[
            (
                "Fra:1 Mem:9.46M (Peak 9.57M) | Time:00:00.07 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Sample 16/16",
                LogEvent::Progress { frame: 1 },
            ),
            ("Saved: \"/tmp/out/frame_1.png\"", LogEvent::Saved { path: "/tmp/out/frame_1.png" }),
            // Blender 5's log prefix (bpy 5.0.1, 5.3.0).
            ("00:00.963  render           | Saved: '/tmp/out/frame_1.png'", LogEvent::Saved { path: "/tmp/out/frame_1.png" }),
            ("00:00.849  blend            | Read blend: \"/tmp/s.blend\"", LogEvent::Other),
            ("12:00.1  render | Fra:3 Mem:1M", LogEvent::Progress { frame: 3 }),
            ("Time: 01:02:03.50 (Saving: 00:00.01)", LogEvent::FrameTime { render: Duration::from_secs_f64(3723.5) }),
            (
                "Error: Cannot read file \"/tmp/missing.blend\": No such file or directory",
                LogEvent::Error { message: "Error: Cannot read file \"/tmp/missing.blend\": No such file or directory" },
            ),
            (
                "Error: Failed to read blend file \"/tmp/t.blend\": Unable to read",
                LogEvent::Error { message: "Error: Failed to read blend file \"/tmp/t.blend\": Unable to read" },
            ),
            ("Traceback (most recent call last):", LogEvent::Error { message: "Traceback (most recent call last):" }),
            ("Blender 4.2.3 LTS (hash 2f8f7b4f1b14 built 2024-10-14 00:45:40)", LogEvent::Other),
            ("FARM_REFUSED Freestyle on view layer \"V\"", LogEvent::Refused { reason: "Freestyle on view layer \"V\"" }),
            ("FARM_NOTE File Output node \"F\" writes into /w/outputs/F", LogEvent::Note { text: "File Output node \"F\" writes into /w/outputs/F" }),
        ];
        for (line, want) in cases {
            assert_eq!(&parse_log_line(line), want, "{line}");
        }
    }

    #[test]
    fn scene_info_is_read_from_its_marker_line() {
        let out = "Blender 3.4.1\nRead blend: /x.blend\nFARM_SCENE_INFO {\"start\": -2, \"end\": 30, \"step\": 2, \"format\": \"PNG\", \"engine\": \"CYCLES\", \"scene\": \"Scene\"}\n\nBlender quit\n";
        let info = SceneInfo::from_output(out).unwrap();
        assert_eq!((info.start, info.end, info.step), (-2, 30, 2));
        assert_eq!(info.format, "PNG");
        assert_eq!(SceneInfo::from_output("Blender quit"), None);
        let args = scene_info_args(
            &Blender::Executable("blender".into()),
            Path::new("/x.blend"),
        );
        assert!(args.iter().any(|a| a == "--disable-autoexec"));
        assert!(SCRIPT.contains(SCENE_INFO_MARKER.trim()));
    }
}
