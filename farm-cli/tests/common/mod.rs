//! Helpers shared by the `farm` binary's tests: running it, reading its output, scenes.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use farm_testkit::{make_scene, SceneOptions};

/// The `farm` binary, with a clean environment: no AWS settings from the machine, no logging
/// overrides, Blender from the test kit.
pub fn farm() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_farm"));
    farm_env(&mut command);
    command
}

/// The environment [`farm`] runs `farm` in, for a command that runs it itself (the Blender
/// add-on's test).
pub fn farm_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("AWS_") || name.starts_with("FARM_") || name == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/farm-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/farm-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Progress lines (what a piped `farm` prints while it works) would interleave with the
        // one-line errors the tests read; the test of those lines asks for them.
        .env(farm_core::env::PROGRESS, "off");
    if let Ok(blender) = farm_testkit::blender() {
        command.env("BLENDER", blender);
    }
}

/// `farm render BLEND --out OUT` with `blender` (its `BLENDER` or `FARM_BLENDER_PYTHON`);
/// asserts it succeeded and returns its stdout.
pub fn farm_render_with(blender: &farm_testkit::TestBlender, blend: &Path, out: &Path) -> String {
    let (var, path) = blender.env();
    let result = run(farm()
        .env(var, path)
        .arg("render")
        .arg(blend)
        .arg("--out")
        .arg(out));
    result.ok().to_owned()
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: &Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts exit code 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "farm failed: {self:#?}");
        &self.stdout
    }

    /// Asserts a failure with exactly one line on stderr, `farm: error: ...`; returns it.
    pub fn one_line_error(&self) -> &str {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:#?}");
        assert!(
            lines[0].starts_with("farm: error: "),
            "unexpected stderr: {self:#?}"
        );
        lines[0]
    }
}

/// Runs a command to the end.
pub fn run(command: &mut Command) -> Run {
    Run::of(&command.output().expect("farm runs"))
}

/// A scene of `frames` 32x24 pixels, 2 samples, whose frames show their own number.
pub fn scene(dir: &Path, name: &str, start: i32, end: i32, step: u32) -> PathBuf {
    let options = SceneOptions {
        start,
        end,
        step,
        width: 32,
        height: 24,
        samples: 2,
        ..SceneOptions::default()
    };
    make_scene(dir, name, &options).expect("blender makes the test scene")
}

/// The frame files in `dir` (`0001.png` ...) as (frame, path), sorted; panics on any other
/// file, so partial files left behind are caught.
pub fn frame_files(dir: &Path) -> Vec<(i32, PathBuf)> {
    let mut frames: Vec<(i32, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let (frame, extension) = farm_core::layout::parse_frame_file_name(&name)
                .unwrap_or_else(|| panic!("unexpected file {name} in {}", dir.display()));
            assert_eq!(extension, "png", "{name}");
            (frame, path)
        })
        .collect();
    frames.sort();
    frames
}

/// Asserts every frame file decodes and shows its own frame number.
pub fn assert_frames_show_their_number(frames: &[(i32, PathBuf)]) {
    for (frame, path) in frames {
        let bytes = std::fs::read(path).expect("frame readable");
        let code = farm_testkit::frame_code(&bytes)
            .unwrap_or_else(|e| panic!("{} is not a whole PNG: {e}", path.display()));
        assert!(
            (code - frame).abs() <= 1,
            "{} shows frame {code}",
            path.display()
        );
    }
}

/// Asserts `zip` is a valid archive holding exactly `names`, checked by Python's zipfile.
pub fn assert_zip_holds(zip: &Path, names: &[String]) {
    let test = Command::new("python3")
        .args(["-m", "zipfile", "-t"])
        .arg(zip)
        .output()
        .expect("python3 runs");
    assert!(
        test.status.success(),
        "zip test failed: {}",
        String::from_utf8_lossy(&test.stderr)
    );
    let list = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(zip)
        .output()
        .expect("python3 runs");
    let listed: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, names);
}

/// `0001.png`-style names of frames.
pub fn names(frames: &[i32]) -> Vec<String> {
    frames
        .iter()
        .map(|f| farm_core::layout::frame_file_name(*f, "png"))
        .collect()
}

/// Pids of processes whose command line mentions `path` (Blender children of a render), read
/// from /proc.
pub fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let own = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
                return None;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(&needle).then_some(pid)
        })
        .collect()
}

/// The e2e fixture's project (`e2e/tests/projects/make_project.py`, made by Debian's Blender)
/// under `dir`; returns its `proj` folder (`shots/shot.blend` uses `tex/`, `seq/` and
/// `../lib/props.blend`, which uses `../shared/green.png`).
pub fn make_project(dir: &Path) -> PathBuf {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../e2e/tests/projects/make_project.py"
    );
    let config = serde_json::json!({ "dir": dir }).to_string();
    let out = farm_testkit::TestBlender::executable()
        .expect("Debian's blender")
        .script(Path::new(script), &[&config])
        .output()
        .expect("running blender");
    assert!(out.status.success(), "{out:?}");
    dir.join("proj")
}
