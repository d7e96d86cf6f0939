//! Talking to Blender: a pure argv builder and a pure parser of its log lines.
//!
//! Frames are always absolute. Blender reads `-f -5` and `-s -5` as "5 before the end" and
//! `-f +5` as "5 after the start", and a scene's own range cannot go below 0, so frame numbers are
//! never put on Blender's command line: a short `--python-expr` sets each frame with
//! `frame_set` and renders it to an exact file name. `--disable-autoexec` comes before the file,
//! so Python stored in a .blend never runs; our expression is the only Python that does.

use std::ffi::OsString;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Prefix of the line printed before each frame renders: `FARM_FRAME 12`.
pub const FRAME_MARKER: &str = "FARM_FRAME ";
/// Prefix of the line the scene query prints.
pub const SCENE_INFO_MARKER: &str = "FARM_SCENE_INFO ";
/// File name prefix of Blender's output inside the work folder: `frame_<N>.<ext>`.
pub const OUTPUT_PREFIX: &str = "frame_";

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

    /// The extension Blender gives the file.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::OpenExr | Self::OpenExrMultilayer => "exr",
            Self::Tiff => "tif",
            Self::Bmp => "bmp",
            Self::Targa => "tga",
            Self::Hdr => "hdr",
            Self::Webp => "webp",
        }
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

/// One Blender process rendering a chunk of frames.
#[derive(Debug, Clone)]
pub struct RenderCommand<'a> {
    pub blend: &'a Path,
    /// Sorted absolute frames.
    pub frames: &'a [i32],
    pub threads: usize,
    /// Folder Blender writes `frame_<N>.<ext>` into.
    pub output_dir: &'a Path,
    pub format: Option<OutputFormat>,
}

impl RenderCommand<'_> {
    /// Blender's arguments (without the executable).
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--background".into(), "--disable-autoexec".into()];
        args.push(self.blend.into());
        args.extend(["--engine", "CYCLES", "--threads"].map(OsString::from));
        args.push(self.threads.max(1).to_string().into());
        if let Some(format) = self.format {
            args.push("--render-format".into());
            args.push(format.blender_name().into());
        }
        args.extend(
            [
                "--use-extension",
                "1",
                "--python-exit-code",
                "1",
                "--python-expr",
            ]
            .map(OsString::from),
        );
        args.push(self.script().into());
        args
    }

    /// The Python that renders each frame to `<output_dir>/frame_<N>.<ext>`. Frame numbers and
    /// the folder are written as JSON literals, which Python reads as the same values.
    fn script(&self) -> String {
        let dir = serde_json::to_string(&self.output_dir.to_string_lossy()).unwrap_or_default();
        let frames = serde_json::to_string(self.frames).unwrap_or_default();
        format!(
            "import bpy, os\n\
             s = bpy.context.scene\n\
             s.render.use_placeholder = False\n\
             s.render.use_overwrite = True\n\
             for f in {frames}:\n\
             \x20   print({FRAME_MARKER:?} + str(f), flush=True)\n\
             \x20   s.frame_set(f)\n\
             \x20   s.render.filepath = os.path.join({dir}, {OUTPUT_PREFIX:?} + str(f))\n\
             \x20   bpy.ops.render.render(write_still=True)\n"
        )
    }
}

/// Arguments that print the scene's own frame range and format on a [`SCENE_INFO_MARKER`] line.
pub fn scene_info_args(blend: &Path) -> Vec<OsString> {
    let expr = format!(
        "import bpy, json; s = bpy.context.scene; print({SCENE_INFO_MARKER:?} + json.dumps(dict(\
         start=s.frame_start, end=s.frame_end, step=s.frame_step, \
         format=s.render.image_settings.file_format, engine=s.render.engine, scene=s.name)), flush=True)"
    );
    vec![
        "--background".into(),
        "--disable-autoexec".into(),
        blend.into(),
        "--python-expr".into(),
        expr.into(),
    ]
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

/// The frame number in a file name Blender wrote for [`RenderCommand`]: `frame_-5.png` is -5.
pub fn output_frame(file_name: &str) -> Option<(i32, &str)> {
    let rest = file_name.strip_prefix(OUTPUT_PREFIX)?;
    let (number, extension) = rest.split_once('.')?;
    Some((number.parse().ok()?, extension))
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
    /// An error Blender reported; it may still exit 0.
    Error {
        message: &'a str,
    },
    Other,
}

/// Reads one line of Blender's output (3.x, 4.x and 5.x spellings).
pub fn parse_log_line(line: &str) -> LogEvent<'_> {
    let line = line.trim_end();
    let trimmed = line.trim_start();
    if let Some(frame) = trimmed
        .strip_prefix(FRAME_MARKER)
        .and_then(|f| f.trim().parse().ok())
    {
        return LogEvent::FrameStart { frame };
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

    #[test]
    fn argv_uses_absolute_frames_and_disables_autoexec_before_loading() {
        let cmd = RenderCommand {
            blend: Path::new("/work/scene.blend"),
            frames: &[-5, 0, 3, 4],
            threads: 4,
            output_dir: Path::new("/work/out dir"),
            format: None,
        };
        let args = cmd.args();
        let args = strings(&args);
        assert_eq!(
            &args[..12],
            &[
                "--background",
                "--disable-autoexec",
                "/work/scene.blend",
                "--engine",
                "CYCLES",
                "--threads",
                "4",
                "--use-extension",
                "1",
                "--python-exit-code",
                "1",
                "--python-expr",
            ]
        );
        assert_eq!(args.len(), 13);
        let script = args[12];
        assert!(script.contains("for f in [-5,0,3,4]:"), "{script}");
        assert!(
            script.contains("os.path.join(\"/work/out dir\", \"frame_\" + str(f))"),
            "{script}"
        );
        assert!(script.contains("    s.frame_set(f)\n"), "{script}");
        assert!(
            script.contains("bpy.ops.render.render(write_still=True)"),
            "{script}"
        );
        assert!(
            script.contains("print(\"FARM_FRAME \" + str(f), flush=True)"),
            "{script}"
        );
        assert!(
            !args.iter().any(
                |a| ["-f", "-s", "-e", "--frame-start", "--render-frame"].contains(a)
                    || a.starts_with('+')
            ),
            "no frame numbers on Blender's command line: {args:?}"
        );
    }

    #[test]
    fn format_override_comes_before_the_script() {
        let cmd = RenderCommand {
            blend: Path::new("s.blend"),
            frames: &[1],
            threads: 2,
            output_dir: Path::new("out"),
            format: Some(OutputFormat::OpenExr),
        };
        let args = cmd.args();
        let args = strings(&args);
        let f = args.iter().position(|a| *a == "--render-format").unwrap();
        assert_eq!(args[f + 1], "OPEN_EXR");
        assert!(f < args.iter().position(|a| *a == "--python-expr").unwrap());
    }

    #[test]
    fn zero_threads_still_asks_for_one() {
        let cmd = RenderCommand {
            blend: Path::new("s.blend"),
            frames: &[1],
            threads: 0,
            output_dir: Path::new("o"),
            format: None,
        };
        let args = cmd.args();
        let t = args.iter().position(|a| a == "--threads").unwrap();
        assert_eq!(args[t + 1], "1");
    }

    #[test]
    fn output_file_names_give_their_frame() {
        assert_eq!(output_frame("frame_12.png"), Some((12, "png")));
        assert_eq!(output_frame("frame_-5.exr"), Some((-5, "exr")));
        assert_eq!(output_frame("frame_0.jpg"), Some((0, "jpg")));
        assert_eq!(output_frame("frame_x.png"), None);
        assert_eq!(output_frame("other_1.png"), None);
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
        let args = scene_info_args(Path::new("/x.blend"));
        assert_eq!(args[1], "--disable-autoexec");
        assert!(args[4].to_str().unwrap().contains(SCENE_INFO_MARKER.trim()));
    }
}
