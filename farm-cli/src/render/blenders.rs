//! Which Blender `farm render` and `farm estimate` run: the one the user names (`--blender`,
//! `--blender-python`, or their variables), else the cloud's own: the series the farm's rule
//! picks for the file ([`SeriesChoice::choose`] over the series the farm runs, `--series`,
//! default `auto`), as its official build, installed once ([`crate::official`]).

use anyhow::anyhow;
use farm_core::blender::Blender;
use farm_core::series::{BlenderSeries, SeriesChoice};

use crate::cli::BlenderArgs;
use crate::official::{self, Build};

/// The Blender to run and, when the farm chose it, which and why.
pub(crate) struct Chosen {
    pub(crate) blender: Blender,
    pub(crate) said: Option<String>,
}

/// Picks the Blender for a scene saved by `saved_by` (from its header, when read), installing
/// the farm's build of its series if this machine does not have it yet.
pub(crate) async fn choose(
    args: &BlenderArgs,
    saved_by: Option<BlenderSeries>,
) -> anyhow::Result<Chosen> {
    match pick(args, saved_by)? {
        Pick::Named(blender) => Ok(Chosen {
            blender,
            said: None,
        }),
        Pick::Official { build, said } => {
            let python = official::ensure(&build).await?;
            Ok(Chosen {
                blender: Blender::PythonModule(python),
                said: Some(said),
            })
        }
    }
}

/// Which Blender [`choose`] would run, in one line, installing nothing (`--dry-run`).
pub(crate) fn describe(
    args: &BlenderArgs,
    saved_by: Option<BlenderSeries>,
) -> anyhow::Result<String> {
    Ok(match pick(args, saved_by)? {
        Pick::Named(blender) => format!("{} (named)", blender.program().display()),
        Pick::Official { build, said } => {
            let installed = official::cache_dir()
                .ok()
                .and_then(|cache| build.installed(&cache));
            match installed {
                Some(_) => format!("{said}; installed"),
                None => format!(
                    "{said}; not installed yet: the first render installs it (`farm blender install {}`)",
                    build.series
                ),
            }
        }
    })
}

/// The Blender the user named, or the farm's build of the series its rule picks.
enum Pick {
    Named(Blender),
    Official { build: Build, said: String },
}

fn pick(args: &BlenderArgs, saved_by: Option<BlenderSeries>) -> anyhow::Result<Pick> {
    let python = args
        .blender_python
        .clone()
        .filter(|p| !p.as_os_str().is_empty());
    if args.blender.is_some() || python.is_some() {
        return Ok(Pick::Named(renderer::config::blender_from(
            args.blender.clone().unwrap_or_else(|| "blender".into()),
            python,
        )));
    }
    let chosen = SeriesChoice::deployed()
        .choose(args.series, saved_by)
        .map_err(|e| anyhow!("{e}"))?;
    let build = Build::of(chosen.series).ok_or_else(|| {
        anyhow!(
            "the farm has no official build of Blender {}",
            chosen.series
        )
    })?;
    let mut said = format!(
        "Blender {} (bpy {}): {}",
        chosen.series, build.version, chosen.reason
    );
    if let Some(warning) = chosen.warning {
        said = format!("{said}; warning: {warning}");
    }
    Ok(Pick::Official { build, said })
}
