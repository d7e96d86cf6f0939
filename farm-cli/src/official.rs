//! The farm's own Blender on this machine: the official `bpy` build of each series the cloud
//! runs, hash-pinned in `infra/bpy/<series>.txt` (compiled into this binary, so the locks are
//! never read from a repository at run time), installed once into a virtual environment under
//! the user's cache and used by `farm render` and `farm estimate` when no Blender is named.
//!
//! Layout: `<cache>/bpy-<version>/` (the cache is `FARM_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/blender-farm`, else `~/.cache/blender-farm`), a virtual environment whose
//! `bin/python` imports `bpy`, finished when its `.farm-ready` stamp exists: the layout
//! `scripts/bpy-venv.sh` makes, so either reuses the other's environments. An install is built in
//! a temporary folder beside it and renamed into place when `import bpy` works there, so an
//! interrupted install is never half used.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, bail, Context};
use farm_core::series::{BlenderSeries, FARM_SERIES};

use crate::cli::{BlenderAction, BlenderCommand};

/// The lock of each series the farm runs, as `infra/bpy/lock.sh` wrote it.
const LOCKS: [(&str, &str); 4] = [
    ("4.2", include_str!("../../infra/bpy/4.2.txt")),
    ("4.5", include_str!("../../infra/bpy/4.5.txt")),
    ("5.0", include_str!("../../infra/bpy/5.0.txt")),
    ("5.3", include_str!("../../infra/bpy/5.3.txt")),
];

/// The file inside a finished environment (the one `scripts/bpy-venv.sh` writes too).
const STAMP: &str = ".farm-ready";

/// One official build: a series, its pinned `bpy` release and the lock pip installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Build {
    pub(crate) series: BlenderSeries,
    /// The pinned release, e.g. `4.2.23`.
    pub(crate) version: String,
    lock: &'static str,
}

impl Build {
    /// The official build of `series`, if the farm runs it.
    pub(crate) fn of(series: BlenderSeries) -> Option<Self> {
        let (_, lock) = LOCKS.iter().find(|(s, _)| s.parse() == Ok(series))?;
        let version = pinned_version(lock)?;
        Some(Self {
            series,
            version,
            lock,
        })
    }

    /// Every official build, oldest series first.
    pub(crate) fn all() -> Vec<Self> {
        FARM_SERIES.iter().filter_map(|s| Self::of(*s)).collect()
    }

    /// The CPython the wheel is built for: 3.11 up to bpy 5.0, 3.13 from 5.1.
    pub(crate) fn python(&self) -> &'static str {
        if self.series <= BlenderSeries::new(5, 0) {
            "python3.11"
        } else {
            "python3.13"
        }
    }

    fn dir(&self, cache: &Path) -> PathBuf {
        cache.join(format!("bpy-{}", self.version))
    }

    /// The environment's Python, when the build is installed under `cache`.
    pub(crate) fn installed(&self, cache: &Path) -> Option<PathBuf> {
        let dir = self.dir(cache);
        let python = dir.join("bin/python");
        (dir.join(STAMP).is_file() && python.exists()).then_some(python)
    }
}

/// The wheel's size a lock records (`# download: N bytes`, written by `infra/bpy/lock.sh`).
fn download_bytes(lock: &str) -> Option<u64> {
    lock.lines()
        .find_map(|line| line.strip_prefix("# download: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|bytes| bytes.parse().ok())
}

/// `a download of 350 MB` (decimal megabytes, as pip counts them), or of an unknown size.
fn download_words(lock: &str) -> String {
    match download_bytes(lock) {
        Some(bytes) => format!("a download of {} MB", (bytes + 500_000) / 1_000_000),
        None => "a download of several hundred MB".to_owned(),
    }
}

/// `bpy==X.Y.Z` of a lock.
fn pinned_version(lock: &str) -> Option<String> {
    lock.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| line.trim().strip_prefix("bpy=="))
        .map(|rest| rest.trim_end_matches('\\').trim().to_owned())
}

/// Where the builds live: `FARM_CACHE_DIR`, else `$XDG_CACHE_HOME/blender-farm`, else
/// `~/.cache/blender-farm`.
pub(crate) fn cache_dir() -> anyhow::Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(farm_core::env::CACHE_DIR) {
        return Ok(dir.into());
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(Path::new(&dir).join("blender-farm"));
    }
    var("HOME")
        .map(|home| Path::new(&home).join(".cache/blender-farm"))
        .ok_or_else(|| {
            anyhow!(
                "no cache folder for the farm's Blender: set {} (or XDG_CACHE_HOME, or HOME)",
                farm_core::env::CACHE_DIR
            )
        })
}

/// The Python of `build`, installed first if this machine does not have it yet.
pub(crate) async fn ensure(build: &Build) -> anyhow::Result<PathBuf> {
    let cache = cache_dir()?;
    match build.installed(&cache) {
        Some(python) => Ok(python),
        None => install(build, &cache).await,
    }
}

/// Installs `build` under `cache`: a virtual environment, the locked wheel with pip
/// (`--require-hashes`, so only the pinned file is accepted), `import bpy` checked, then renamed
/// into place. pip's own download bar (with the file's size) shows on a terminal.
async fn install(build: &Build, cache: &Path) -> anyhow::Result<PathBuf> {
    let python = build.python();
    which(python).ok_or_else(|| {
        anyhow!(
            "Blender {} (bpy {}) runs on CPython {}, and `{python}` is not on PATH: install it \
             (with its venv module), or render with a Blender of your own (farm render \
             --blender or --blender-python)",
            build.series,
            build.version,
            &python["python".len()..]
        )
    })?;
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the cache folder {}", cache.display()))?;
    let target = build.dir(cache);
    eprintln!(
        "farm: installing Blender {} (the official bpy {} from PyPI, hash-pinned; {}, about 1 GB \
         installed) into {}, once",
        build.series,
        build.version,
        download_words(build.lock),
        target.display()
    );
    let partial = tempfile::Builder::new()
        .prefix(&format!(".bpy-{}-partial-", build.version))
        .tempdir_in(cache)
        .with_context(|| format!("cannot create a folder in {}", cache.display()))?;
    let venv = partial.path().join("venv");
    let lock = partial.path().join("bpy.txt");
    std::fs::write(&lock, build.lock).context("cannot write the lock for pip")?;
    step(
        "creating its virtual environment",
        tokio::process::Command::new(python)
            .args(["-m", "venv"])
            .arg(&venv),
    )
    .await?;
    let venv_python = venv.join("bin/python");
    step(
        "downloading and installing bpy with pip",
        tokio::process::Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--require-hashes",
                "--only-binary=:all:",
                "--no-deps",
                "-r",
            ])
            .arg(&lock),
    )
    .await?;
    step(
        "checking that bpy imports",
        tokio::process::Command::new(&venv_python).args(["-c", "import bpy"]),
    )
    .await?;
    std::fs::write(venv.join(STAMP), "").context("cannot mark the environment finished")?;
    // Another farm may have finished the same install meanwhile: its environment serves.
    if build.installed(cache).is_none() {
        if target.exists() {
            // An unfinished environment (no stamp), e.g. of an interrupted scripts/bpy-venv.sh.
            std::fs::remove_dir_all(&target)
                .with_context(|| format!("cannot replace {}", target.display()))?;
        }
        std::fs::rename(&venv, &target)
            .with_context(|| format!("cannot move the environment to {}", target.display()))?;
    }
    eprintln!("farm: Blender {} installed", build.series);
    build
        .installed(cache)
        .ok_or_else(|| anyhow!("{} is not a finished environment", target.display()))
}

/// Runs one step of an install with its output on stderr; a failure names the step.
async fn step(what: &str, command: &mut tokio::process::Command) -> anyhow::Result<()> {
    eprintln!("farm: {what}");
    // The farm's stdout is its result: the tools' own lines go to stderr.
    let status = command
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .await
        .with_context(|| format!("{what}: cannot start {:?}", command.as_std().get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}); its output is above; nothing was installed");
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// The build `farm blender install|remove` names: a series, or a release of one.
fn named(series: &str) -> anyhow::Result<Build> {
    let builds = Build::all();
    let list = || {
        builds
            .iter()
            .map(|b| format!("{} (bpy {})", b.series, b.version))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let parsed: Option<BlenderSeries> = series.parse().ok();
    builds
        .iter()
        .find(|b| parsed == Some(b.series) || b.version == series)
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "`{series}` is not a Blender the farm runs: it runs {}; name one of them",
                list()
            )
        })
}

/// Runs `farm blender`.
pub async fn run(args: &BlenderCommand) -> anyhow::Result<()> {
    let cache = cache_dir()?;
    match &args.action {
        BlenderAction::List => {
            for build in Build::all() {
                let state = match build.installed(&cache) {
                    Some(_) => format!("installed in {}", build.dir(&cache).display()),
                    None => format!("not installed (needs {})", build.python()),
                };
                println!("{}  bpy {:<7}  {state}", build.series, build.version);
            }
        }
        BlenderAction::Install { series } => {
            for build in series
                .iter()
                .map(|s| named(s))
                .collect::<anyhow::Result<Vec<_>>>()?
            {
                match build.installed(&cache) {
                    Some(_) => println!(
                        "Blender {} (bpy {}) is installed already",
                        build.series, build.version
                    ),
                    None => {
                        install(&build, &cache).await?;
                    }
                }
            }
        }
        BlenderAction::Remove { series } => {
            for build in series
                .iter()
                .map(|s| named(s))
                .collect::<anyhow::Result<Vec<_>>>()?
            {
                let dir = build.dir(&cache);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot remove {}", dir.display()))?;
                    println!("removed Blender {} ({})", build.series, dir.display());
                } else {
                    println!("Blender {} is not installed", build.series);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_farm_series_has_its_pinned_build() {
        let builds = Build::all();
        let series: Vec<BlenderSeries> = builds.iter().map(|b| b.series).collect();
        assert_eq!(series, FARM_SERIES);
        for build in &builds {
            assert!(
                build.version.starts_with(&format!("{}.", build.series)),
                "{build:?}"
            );
            assert!(build.lock.contains("--hash=sha256:"), "{build:?}");
        }
        assert_eq!(LOCKS.len(), FARM_SERIES.len());
    }

    /// The install says the download's size before it starts: every lock records its wheel's.
    #[test]
    fn every_lock_says_its_download_size() {
        for build in Build::all() {
            let bytes = download_bytes(build.lock).unwrap_or_default();
            assert!(bytes > 100_000_000, "{build:?}");
        }
        let lock_42 = Build::of(BlenderSeries::new(4, 2)).unwrap().lock;
        assert_eq!(download_words(lock_42), "a download of 350 MB");
        assert_eq!(
            download_words("bpy==1.0"),
            "a download of several hundred MB"
        );
    }

    #[test]
    fn the_wheel_s_python_follows_the_series() {
        let of = |s| Build::of(s).unwrap().python();
        assert_eq!(of(BlenderSeries::new(4, 2)), "python3.11");
        assert_eq!(of(BlenderSeries::new(5, 0)), "python3.11");
        assert_eq!(of(BlenderSeries::new(5, 3)), "python3.13");
    }

    #[test]
    fn a_lock_s_pin_is_read_past_its_comments() {
        let lock = "# bpy==0.0.1 in a comment\nbpy==4.2.23 \\\n    --hash=sha256:00\n";
        assert_eq!(pinned_version(lock).as_deref(), Some("4.2.23"));
        assert_eq!(pinned_version("# nothing\n"), None);
    }

    #[test]
    fn an_install_names_a_series_or_its_release() {
        assert_eq!(named("5.0").unwrap().version, "5.0.1");
        assert_eq!(named("4.2.23").unwrap().series, BlenderSeries::new(4, 2));
        let error = named("3.6").unwrap_err().to_string();
        assert!(
            error.contains("`3.6` is not a Blender the farm runs"),
            "{error}"
        );
    }

    #[test]
    fn finished_environments_only_count() {
        let cache = tempfile::tempdir().unwrap();
        let build = Build::of(BlenderSeries::new(4, 2)).unwrap();
        let dir = cache.path().join(format!("bpy-{}", build.version));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/python"), "").unwrap();
        assert_eq!(build.installed(cache.path()), None);
        std::fs::write(dir.join(STAMP), "").unwrap();
        assert_eq!(build.installed(cache.path()), Some(dir.join("bin/python")));
    }
}
