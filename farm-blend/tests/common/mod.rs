//! Test files made by Blender itself: Debian's `blender` executable and the official `bpy`
//! modules from PyPI (in virtual environments made by `scripts/bpy-venv.sh`, cached in
//! `~/.cache/blender-farm`).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

const MAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/blender/make_fixture.py");
const DUMP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/blender/dump_facts.py");
const BPY_VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bpy-venv.sh");

/// One way to run Blender.
#[derive(Debug, Clone)]
pub enum Blender {
    /// An executable, run as `blender -b`.
    Executable(PathBuf),
    /// A Python with the `bpy` module.
    Module(PathBuf),
}

impl Blender {
    /// Debian's executable: `$BLENDER` or `blender` on PATH.
    pub fn debian() -> Self {
        let path = std::env::var_os("BLENDER")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("blender"), PathBuf::from);
        Self::Executable(path)
    }

    /// The official `bpy` module of this version, in its cached virtual environment.
    pub fn bpy(version: &str) -> Self {
        let out = Command::new("bash")
            .arg(BPY_VENV)
            .arg(version)
            .output()
            .expect("running scripts/bpy-venv.sh");
        assert!(
            out.status.success(),
            "scripts/bpy-venv.sh {version} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self::Module(PathBuf::from(python))
    }

    fn run(&self, script: &str, arg: &str, open: Option<&Path>) -> String {
        let mut cmd = match self {
            Self::Executable(blender) => {
                let mut cmd = Command::new(blender);
                cmd.arg("-b");
                match open {
                    Some(file) => cmd.arg(file),
                    None => cmd.arg("--factory-startup"),
                };
                cmd.args(["--python-exit-code", "1", "--python", script, "--"]);
                if !arg.is_empty() {
                    cmd.arg(arg);
                }
                cmd
            }
            Self::Module(python) => {
                let mut cmd = Command::new(python);
                cmd.arg(script);
                match open {
                    Some(file) => cmd.arg(file),
                    None => cmd.arg(arg),
                };
                cmd
            }
        };
        let out = cmd.output().expect("starting Blender");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "Blender failed running {script} ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Makes `<dir>/shot.blend` (and `<dir>/lib/lib.blend`) with `make_fixture.py`.
    pub fn make_fixture(&self, dir: &Path, compress: bool) -> PathBuf {
        let config = serde_json::json!({ "dir": dir, "compress": compress }).to_string();
        let stdout = self.run(MAKE, &config, None);
        let path = stdout
            .lines()
            .find_map(|l| l.strip_prefix("FIXTURE="))
            .unwrap_or_else(|| panic!("make_fixture.py printed no FIXTURE= line:\n{stdout}"));
        PathBuf::from(path)
    }

    /// What Blender itself sees in `file` (`dump_facts.py`).
    pub fn facts(&self, file: &Path) -> serde_json::Value {
        let stdout = self.run(DUMP, "", Some(file));
        let json = stdout
            .lines()
            .find_map(|l| l.strip_prefix("FACTS="))
            .unwrap_or_else(|| panic!("dump_facts.py printed no FACTS= line:\n{stdout}"));
        serde_json::from_str(json).expect("FACTS= is JSON")
    }
}
