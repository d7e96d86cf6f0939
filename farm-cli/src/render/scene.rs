//! The scene file: is it a .blend, which frames does it hold, what is its content hash.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use farm_blend::BlendInfo;
use farm_core::blender::OutputFormat;
use farm_core::engine::Engine;
use farm_core::FrameList;
use renderer::RenderError;
use sha2::{Digest, Sha256};
use tracing::debug;

/// Checks the scene exists and is a .blend, and returns its absolute path.
pub async fn check_scene(path: &Path) -> anyhow::Result<PathBuf> {
    let shown = path.display();
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_dir() => bail!("{shown} is a folder, not a .blend file"),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{shown} does not exist: check the path of the .blend file")
        }
        Err(e) => bail!("cannot read {shown}: {e}"),
    }
    match renderer::check_blend(&shown.to_string(), path).await {
        Ok(()) => {}
        Err(RenderError::NotABlend { reason, .. }) => bail!("{shown} is {reason}"),
        Err(RenderError::WorkDir { source, .. }) => bail!("cannot read {shown}: {source}"),
        Err(other) => return Err(anyhow!(other)),
    }
    std::path::absolute(path).with_context(|| format!("cannot resolve the path {shown}"))
}

/// The active scene's own frames (its range and step), read from the .blend by `farm-blend`:
/// no Blender start, and what the reader found (`None`: it could not read the file). Refuses a
/// scene Blender cannot render (no camera), and prints what the farm does differently from the
/// scene's settings. With `--frames` the reader only adds those notes and the engine, and a file
/// it cannot read is left to Blender.
pub(crate) async fn scene_frames(
    scene: &Path,
    shown: &Path,
    asked: Option<FrameList>,
) -> anyhow::Result<(FrameList, Option<BlendInfo>)> {
    let path = scene.to_owned();
    let read = tokio::task::spawn_blocking(move || crate::inspect::read_blend(&path))
        .await
        .context("reading the scene")?;
    let read = crate::inspect::unless_refused(read)?;
    let info = match (read, asked) {
        (Ok(info), asked) => {
            if let Some(refusal) = farm_jobs::scene::cannot_render(&info) {
                bail!("{refusal}");
            }
            for note in crate::inspect::notes(&info) {
                println!("note: {note}");
            }
            match asked {
                Some(frames) => return Ok((frames, Some(info))),
                None => info,
            }
        }
        (Err(err), Some(frames)) => {
            debug!("{err:#}");
            return Ok((frames, None));
        }
        (Err(err), None) => {
            return Err(anyhow!(
                "{err:#}; or pass --frames to let Blender read it anyway"
            ))
        }
    };
    let active = info.active_scene().ok_or_else(|| {
        anyhow!(
            "{} names no active scene to take the frame range from; pass --frames",
            shown.display()
        )
    })?;
    debug!(scene = %active.name, start = active.frame_start, end = active.frame_end, step = active.frame_step, "scene frames");
    let frames = FrameList::from_frames(active.frames()).map_err(|e| {
        anyhow!(
            "the frame range {}-{} of scene `{}` is unusable: {e}; pass --frames",
            active.frame_start,
            active.frame_end,
            active.name
        )
    })?;
    Ok((frames, Some(info)))
}

/// The engine and the stills format the run renders with (the trigger's rules), printing why
/// when they are not the scene's own.
pub(super) fn engine_and_format(
    asked_engine: Option<Engine>,
    asked_format: Option<OutputFormat>,
    info: Option<&BlendInfo>,
) -> (Engine, Option<OutputFormat>) {
    let engine = farm_jobs::scene::choose_engine(asked_engine, info);
    // The reader's own notes (printed by `scene_frames`) already name an engine the farm lacks.
    if let Some(note) = engine
        .note
        .as_ref()
        .filter(|_| asked_engine.is_some() || info.is_none())
    {
        println!("note: {note}");
    }
    let (format, stills) = farm_jobs::scene::stills_format(asked_format, info);
    if let Some(note) = stills {
        println!("note: {note}");
    }
    (engine.engine, format)
}

/// The SHA-256 of a file, in hex: the source tag that tells one content of the scene from
/// another.
pub(super) async fn hash_file(path: &Path) -> anyhow::Result<String> {
    let path = path.to_owned();
    let hash = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let read = file.read(&mut buf)?;
            if read == 0 {
                break;
            }
            hasher.update(&buf[..read]);
        }
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    })
    .await
    .context("hashing the scene")?;
    hash.context("cannot read the scene to hash it")
}
