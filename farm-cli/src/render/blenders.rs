//! Which Blender `farm render` runs: the one the user names (`--blender`, `--blender-python`, or
//! their variables), else the farm's own rule ([`SeriesChoice::choose`], `--series`, default
//! `auto`) among the official bpy builds this machine has (the virtual environments
//! `scripts/bpy-venv.sh` makes under `FARM_CACHE_DIR`, default `~/.cache/blender-farm`), else
//! `blender` on `PATH`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use farm_core::blender::Blender;
use farm_core::series::{BlenderPick, BlenderSeries, SeriesChoice};

use crate::cli::BlenderArgs;

/// The Blender to run and, when it was chosen among several, which and why.
pub(crate) struct Chosen {
    pub(crate) blender: Blender,
    pub(crate) said: Option<String>,
}

/// Picks the Blender for `scene`, saved by `saved_by` (from its header, when read).
pub(crate) fn choose(
    args: &BlenderArgs,
    saved_by: Option<BlenderSeries>,
) -> anyhow::Result<Chosen> {
    let named = renderer::config::blender_from(
        args.blender.clone().unwrap_or_else(|| "blender".into()),
        args.blender_python.clone(),
    );
    if args.blender.is_some() || matches!(named, Blender::PythonModule(_)) {
        return Ok(Chosen {
            blender: named,
            said: None,
        });
    }
    let local = cache_dir().map(|dir| installed(&dir)).unwrap_or_default();
    let Some(choice) = SeriesChoice::new(BlenderPick::Auto, local.keys().copied()) else {
        return Ok(Chosen {
            blender: named,
            said: None,
        });
    };
    let chosen = choice
        .choose(args.series, saved_by)
        .map_err(|e| anyhow!("{e} (the Blenders of this machine: bpy builds in its cache; scripts/bpy-venv.sh VERSION adds one)"))?;
    let (version, python) = &local[&chosen.series];
    let mut said = format!(
        "Blender {} (bpy {version}): {}",
        chosen.series, chosen.reason
    );
    if let Some(warning) = chosen.warning {
        said = format!("{said}; warning: {warning}");
    }
    Ok(Chosen {
        blender: Blender::PythonModule(python.clone()),
        said: Some(said),
    })
}

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os(farm_core::env::CACHE_DIR).filter(|v| !v.is_empty()) {
        Some(dir) => Some(dir.into()),
        None => std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/blender-farm")),
    }
}

/// The finished bpy environments under `dir` (`bpy-<X.Y.Z>/` with the script's stamp), the
/// newest release of each series: series -> (release, its Python).
pub(super) fn installed(dir: &Path) -> BTreeMap<BlenderSeries, (String, PathBuf)> {
    let mut found: BTreeMap<BlenderSeries, (u32, String, PathBuf)> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = name.strip_prefix("bpy-") else {
            continue;
        };
        let Some((series, patch)) = version.rsplit_once('.') else {
            continue;
        };
        let (Ok(series), Ok(patch)) = (series.parse::<BlenderSeries>(), patch.parse::<u32>())
        else {
            continue;
        };
        let python = entry.path().join("bin/python");
        if !entry.path().join(".farm-ready").is_file() || !python.exists() {
            continue;
        }
        if found
            .get(&series)
            .is_none_or(|(newest, _, _)| patch > *newest)
        {
            found.insert(series, (patch, version.to_owned(), python));
        }
    }
    found
        .into_iter()
        .map(|(series, (_, version, python))| (series, (version, python)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_environments_are_found_newest_release_per_series() {
        let dir = tempfile::tempdir().unwrap();
        for (name, ready) in [
            ("bpy-4.2.23", true),
            ("bpy-4.2.9", true),
            ("bpy-5.0.1", true),
            ("bpy-5.3.0", false),
            ("bpy-latest", true),
            ("tools", true),
        ] {
            let venv = dir.path().join(name);
            std::fs::create_dir_all(venv.join("bin")).unwrap();
            std::fs::write(venv.join("bin/python"), "").unwrap();
            if ready {
                std::fs::write(venv.join(".farm-ready"), "").unwrap();
            }
        }
        let found = installed(dir.path());
        let summary: Vec<(String, String)> = found
            .iter()
            .map(|(s, (v, _))| (s.to_string(), v.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("4.2".to_owned(), "4.2.23".to_owned()),
                ("5.0".to_owned(), "5.0.1".to_owned())
            ]
        );
        assert_eq!(
            found[&BlenderSeries::new(5, 0)].1,
            dir.path().join("bpy-5.0.1/bin/python")
        );
    }
}
