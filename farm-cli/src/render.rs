//! `farm render`: the farm on this machine.
//!
//! The same pieces as on AWS, over a local folder ([`LocalStorage`] with [`JobKeys::root`]):
//! 1. check the scene is a .blend, read the frames (`--frames`, or the active scene's own range
//!    and step, read from the file by `farm-blend` without starting Blender) and plan chunks
//!    with [`Plan::new`], as the trigger does;
//! 2. find the frames still missing for this content of the .blend (its SHA-256 is the source
//!    tag stored with every frame, so a changed scene renders again);
//! 3. render up to `--workers` chunks at once with [`renderer::render_frames`], one Blender per
//!    chunk, each with `max(1, CPUs / workers)` threads and its own work folder;
//! 4. zip the frames with [`zipper::zip_frames_until`] into `OUT/frames.zip`.
//!
//! Ctrl-C or SIGTERM fires one shared shutdown signal: every `render_frames` kills its Blender,
//! uploads in flight are dropped (the local storage renames whole files into place, so only
//! whole frames are ever visible), and the command exits 130.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use farm_core::blender::{Blender, OutputFormat};
use farm_core::frames::{compact, DEFAULT_MAX_FRAMES};
use farm_core::plan::{PlanError, MAX_ARRAY_SIZE};
use farm_core::{FrameList, JobKeys, Plan, Storage};
use farm_io::LocalStorage;
use futures::StreamExt;
use renderer::{BlenderSetup, ChunkReport, ChunkSpec, FrameEvent, RenderError};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::cli::RenderArgs;
use crate::{progress, Interrupted};

/// CPUs per Blender process when `--workers` is not given.
pub const CPUS_PER_WORKER: usize = 4;

/// Default `--workers`: one Blender per [`CPUS_PER_WORKER`] CPUs, at least one. On the 2-CPU
/// benchmark machine one Blender with both threads beat two with one each, because Blender's
/// start-up is paid per process (see the `farm render` section of BENCHMARKS.md).
pub fn default_workers() -> u16 {
    let workers = (renderer::config::available_cpus() / CPUS_PER_WORKER).max(1);
    u16::try_from(workers).unwrap_or(u16::MAX)
}

/// Suffix of the default output folder: `shot.blend` renders into `shot.farm/`.
pub const OUT_SUFFIX: &str = "farm";

/// Default `--chunk`: the frames shared evenly between the workers, so each Blender process
/// starts once (the benchmark's smaller chunks were slower: each one starts Blender again).
pub fn default_chunk(frames: usize, workers: usize) -> u32 {
    let chunk = frames.div_ceil(workers.max(1)).max(1);
    u32::try_from(chunk).unwrap_or(u32::MAX)
}

/// Blender threads for each of `workers` processes running at once on `cpus` CPUs.
pub fn threads_per_worker(cpus: usize, workers: usize) -> usize {
    (cpus / workers.max(1)).max(1)
}

/// The default output folder: `<scene stem>.farm/` beside the scene.
pub fn default_out(scene: &Path) -> PathBuf {
    let stem = scene
        .file_stem()
        .map_or_else(|| "scene".into(), |s| s.to_string_lossy());
    scene
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(format!("{stem}.{OUT_SUFFIX}"))
}

/// Fires once on SIGINT or SIGTERM; every clone of [`Shutdown::signal`] completes then.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Starts listening for SIGINT and SIGTERM. From now on they no longer kill the process:
    /// they ask the command to stop cleanly.
    pub fn listen() -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            farm_io::telemetry::sigterm().await;
            let _ = tx.send(true);
            // Keep the sender, so that waiting receivers see `true` and never a closed channel.
            std::future::pending::<()>().await;
        });
        Self { rx }
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// A future that completes when a stop is asked for.
    pub fn signal(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let mut rx = self.rx.clone();
        Box::pin(async move {
            if rx.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// Runs `farm render`.
pub async fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let shutdown = Shutdown::listen();
    let scene = check_scene(&args.scene).await?;
    crate::project::check_before_render(&scene, args.strict).await?;
    let format = args
        .format
        .as_deref()
        .map(|f| f.parse::<OutputFormat>())
        .transpose()
        .map_err(|e| anyhow!("invalid --format: {e}"))?;
    let asked = args
        .frames
        .as_deref()
        .map(|spec| {
            FrameList::parse(spec, DEFAULT_MAX_FRAMES)
                .map_err(|e| anyhow!("invalid --frames `{spec}`: {e}"))
        })
        .transpose()?;
    let frames = scene_frames(&scene, &args.scene, asked).await?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.scene));
    prepare_out(&out).await?;
    let source_tag = hash_file(&scene).await?;
    debug!(%source_tag, "scene content hash");
    let workers = usize::from(args.workers);
    let chunk = args
        .chunk
        .unwrap_or_else(|| default_chunk(frames.len(), workers));
    let plan = Plan::new(frames, chunk).map_err(|e| match e {
        // The plan's limit is the cloud's array size; say it in this command's words.
        PlanError::TooManyChunks {
            frames,
            chunk_size,
            chunks,
            fitting,
        } => anyhow!(
            "invalid --chunk: {frames} frames in chunks of {chunk_size} make {chunks} chunks, \
             more than the {MAX_ARRAY_SIZE} a job may have: use --chunk {fitting} or more"
        ),
        other => anyhow!("invalid --chunk: {other}"),
    })?;

    let storage = LocalStorage::new(&out);
    let keys = JobKeys::root();
    let todo = plan_work(&storage, &keys, &plan, format, &source_tag).await?;
    let to_render: usize = todo.iter().map(|w| w.todo.len()).sum();
    let already = plan.frames().len() - to_render;
    let running = workers.min(todo.len()).max(1);
    let threads = args.threads.map_or_else(
        || threads_per_worker(renderer::config::available_cpus(), running),
        usize::from,
    );
    info!(
        frames = plan.frames().len(),
        chunks = plan.chunk_count(),
        to_render,
        workers = running,
        threads,
        "planned"
    );

    let blender = renderer::config::blender_from(args.blender.clone(), args.blender_python.clone());
    let work_root = tempfile::Builder::new()
        .prefix("farm-render-")
        .tempdir()
        .context("cannot create a temporary work folder (check TMPDIR)")?;
    let context = ChunkContext {
        storage: &storage,
        keys: &keys,
        scene: &scene,
        blender: &blender,
        work_root: work_root.path(),
        threads,
        format,
        source_tag: &source_tag,
        shutdown: &shutdown,
    };
    let rendered = render_all(&context, todo, workers, to_render).await;
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(err) => return Err(explain(err, &out, &args.scene)),
    };

    let zip_bar = progress::bytes(0, "zipping");
    let on_zip = |p: zipper::ZipProgress| {
        zip_bar.set_length(p.bytes_total);
        zip_bar.set_position(p.bytes_done);
    };
    let version = farm_jobs::OutputVersion::new(Some(&source_tag), format);
    let summary = zipper::zip_frames_until(
        &storage,
        &keys,
        plan.frames(),
        &version,
        &zipper::ZipOptions::default(),
        &on_zip,
        shutdown.signal(),
    )
    .await;
    zip_bar.finish_and_clear();
    let summary = match summary {
        Ok(summary) => summary,
        Err(zipper::ZipError::Interrupted) => {
            return Err(Interrupted(format!(
                "stopped while zipping; all {} frames are in {}: rerun to make the archive",
                plan.frames().len(),
                out.join("frames").display()
            ))
            .into())
        }
        Err(err) => return Err(anyhow!(err).context("zipping the frames")),
    };

    if rendered == 0 {
        println!(
            "rendered 0 frame(s) ({already} already done): every frame was already rendered from this content of the scene"
        );
    } else {
        println!(
            "rendered {rendered} frame(s) ({already} already done) in {}: {} worker(s), {} frame(s) per chunk, {threads} thread(s) each",
            seconds(started.elapsed()),
            running,
            plan.chunk_size(),
        );
    }
    println!(
        "frames:  {}/ ({} frames, {})",
        out.join("frames").display(),
        summary.frames,
        compact(plan.frames().as_slice(), " ")
    );
    println!(
        "archive: {} ({})",
        out.join("frames.zip").display(),
        human_bytes(summary.archive_bytes)
    );
    let earlier = frames_outside(&storage, &keys, &plan).await?;
    if !earlier.is_empty() {
        println!(
            "note:    frames/ also holds {} frame(s) of earlier runs, not in this run nor in frames.zip: {}",
            earlier.len(),
            compact(&earlier, " ")
        );
    }
    Ok(())
}

/// Frames in the output folder that are not in this run's plan: left by an earlier run that
/// asked for other frames. They are kept (they are the user's), and named in the summary.
async fn frames_outside(
    storage: &LocalStorage,
    keys: &JobKeys,
    plan: &Plan,
) -> anyhow::Result<Vec<i32>> {
    let planned: BTreeSet<i32> = plan.frames().as_slice().iter().copied().collect();
    let found: BTreeSet<i32> = storage
        .list(&keys.frames_prefix())
        .await
        .context("listing the output folder's frames")?
        .iter()
        .filter_map(|o| keys.parse_frame_key(&o.key).map(|(frame, _)| frame))
        .filter(|frame| !planned.contains(frame))
        .collect();
    Ok(found.into_iter().collect())
}

/// One chunk of the plan and the frames of it still to render.
#[derive(Debug, Clone)]
struct ChunkWork {
    index: usize,
    frames: Vec<i32>,
    todo: Vec<i32>,
}

/// What every chunk shares.
struct ChunkContext<'a> {
    storage: &'a LocalStorage,
    keys: &'a JobKeys,
    scene: &'a Path,
    blender: &'a Blender,
    work_root: &'a Path,
    threads: usize,
    format: Option<OutputFormat>,
    source_tag: &'a str,
    shutdown: &'a Shutdown,
}

/// Finds, chunk by chunk, the frames not yet in the folder for this scene content, and deletes
/// stale files of those frames (another extension, another scene content), so the archive never
/// sees a frame twice.
async fn plan_work(
    storage: &LocalStorage,
    keys: &JobKeys,
    plan: &Plan,
    format: Option<OutputFormat>,
    source_tag: &str,
) -> anyhow::Result<Vec<ChunkWork>> {
    let listing = storage
        .list(&keys.frames_prefix())
        .await
        .context("listing the frames already rendered")?;
    let present: BTreeSet<i32> = listing
        .iter()
        .filter_map(|o| keys.parse_frame_key(&o.key).map(|(frame, _)| frame))
        .collect();
    let mut work = Vec::new();
    for (index, frames) in plan.chunks().enumerate() {
        // Only frames with a file need the renderer's check; the others are missing anyway.
        let candidates: Vec<i32> = frames
            .iter()
            .copied()
            .filter(|f| present.contains(f))
            .collect();
        let spec = ChunkSpec {
            keys,
            frames: &candidates,
            format,
            source_tag: Some(source_tag),
            recheck_source: false,
        };
        let stale: BTreeSet<i32> = renderer::pending_frames(storage, &spec)
            .await
            .context("checking the frames already rendered")?
            .into_iter()
            .collect();
        let todo: Vec<i32> = frames
            .iter()
            .copied()
            .filter(|f| !present.contains(f) || stale.contains(f))
            .collect();
        if !todo.is_empty() {
            work.push(ChunkWork {
                index,
                frames: frames.to_vec(),
                todo,
            });
        }
    }
    let todo: BTreeSet<i32> = work.iter().flat_map(|w| w.todo.iter().copied()).collect();
    for object in &listing {
        if let Some((frame, _)) = keys.parse_frame_key(&object.key) {
            if todo.contains(&frame) {
                storage
                    .delete(&object.key)
                    .await
                    .with_context(|| format!("removing the stale frame file `{}`", object.key))?;
            }
        }
    }
    Ok(work)
}

/// Renders every chunk, `workers` at once. After a chunk fails no new chunk starts (the running
/// ones finish); after a shutdown every Blender is stopped. Returns the frames rendered.
async fn render_all(
    context: &ChunkContext<'_>,
    work: Vec<ChunkWork>,
    workers: usize,
    to_render: usize,
) -> Result<usize, RenderFailure> {
    if work.is_empty() {
        return Ok(0);
    }
    let bar = progress::frames(to_render as u64);
    bar.set_prefix("rendering");
    let in_progress = Mutex::new(BTreeSet::new());
    let on_event = |event: FrameEvent| {
        let mut current = in_progress.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            FrameEvent::Started { frame } => {
                current.insert(frame);
            }
            FrameEvent::Uploaded { frame, render, .. } => {
                current.remove(&frame);
                bar.inc(1);
                info!(
                    frame,
                    render_seconds = render.map(|d| d.as_secs_f64()),
                    "frame done"
                );
            }
        }
        let frames: Vec<String> = current.iter().map(i32::to_string).collect();
        bar.set_message(match frames.len() {
            0 => String::new(),
            1 => format!("(frame {})", frames[0]),
            _ => format!("(frames {})", frames.join(", ")),
        });
    };
    let failed = AtomicBool::new(false);
    let results: Vec<(ChunkWork, Option<Result<ChunkReport, RenderError>>)> =
        futures::stream::iter(work)
            .map(|chunk| {
                let (failed, on_event) = (&failed, &on_event);
                async move {
                    if failed.load(Ordering::SeqCst) || context.shutdown.requested() {
                        return (chunk, None);
                    }
                    let result = render_chunk(context, &chunk, on_event).await;
                    if result.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    (chunk, Some(result))
                }
            })
            .buffer_unordered(workers.max(1))
            .collect()
            .await;
    bar.finish_and_clear();
    let rendered = results
        .iter()
        .filter_map(|(_, r)| r.as_ref()?.as_ref().ok())
        .map(|report| report.rendered.len())
        .sum();
    if context.shutdown.requested() {
        return Err(RenderFailure::Interrupted { rendered });
    }
    let first_error = results
        .into_iter()
        .filter_map(|(chunk, r)| Some((chunk, r?.err()?)))
        .min_by_key(|(chunk, _)| chunk.index);
    match first_error {
        Some((chunk, error)) => Err(RenderFailure::Chunk {
            chunk,
            error,
            rendered,
        }),
        None => Ok(rendered),
    }
}

async fn render_chunk(
    context: &ChunkContext<'_>,
    chunk: &ChunkWork,
    on_event: &(dyn Fn(FrameEvent) + Sync),
) -> Result<ChunkReport, RenderError> {
    let spec = ChunkSpec {
        keys: context.keys,
        frames: &chunk.frames,
        format: context.format,
        source_tag: Some(context.source_tag),
        recheck_source: false,
    };
    let setup = BlenderSetup {
        blender: context.blender.clone(),
        threads: context.threads,
        work_dir: context.work_root.join(format!("chunk-{}", chunk.index)),
    };
    debug!(chunk = chunk.index, frames = %compact(&chunk.todo, " "), "chunk starts");
    renderer::render_frames(
        context.storage,
        &spec,
        context.scene,
        &setup,
        &chunk.todo,
        context.shutdown.signal(),
        on_event,
    )
    .await
}

/// Why rendering stopped.
#[derive(Debug)]
enum RenderFailure {
    Interrupted {
        rendered: usize,
    },
    Chunk {
        chunk: ChunkWork,
        error: RenderError,
        rendered: usize,
    },
}

/// Turns a failure into the error the user sees: what failed, where its log is, what to do.
fn explain(failure: RenderFailure, out: &Path, scene: &Path) -> anyhow::Error {
    match failure {
        RenderFailure::Interrupted { rendered } => Interrupted(format!(
            "blender stopped; {rendered} frame(s) finished in this run are kept in {}: rerun the same command to render the rest",
            out.join("frames").display()
        ))
        .into(),
        RenderFailure::Chunk {
            chunk,
            error,
            rendered,
        } => {
            let resume = format!(
                "({rendered} frame(s) rendered in this run are kept; rerun to resume)"
            );
            let what = match error {
                RenderError::FrameFailed {
                    frame,
                    failed,
                    total,
                    exit,
                    message,
                    log_key,
                } => format!(
                    "frame {frame} failed to render ({failed} of {total} frames of the chunk missing after blender {exit}): {message}; log in {}",
                    out.join(log_key).display()
                ),
                RenderError::BlenderMissing { path, source } => format!(
                    "cannot run blender at `{}`: {source}; install Blender, or pass --blender PATH (or set BLENDER)",
                    path.display()
                ),
                RenderError::SceneUnreadable { message, .. } => format!(
                    "blender could not open {}: {message}; check that it opens in Blender",
                    scene.display()
                ),
                other => other.to_string(),
            };
            anyhow!(
                "chunk {} (frames {}) failed: {what} {resume}",
                chunk.index,
                compact(&chunk.frames, " ")
            )
        }
    }
}

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
/// no Blender start. Also prints what the farm does differently from the scene's settings.
/// With `--frames` the reader only adds those notes, and a file it cannot read is left to
/// Blender.
async fn scene_frames(
    scene: &Path,
    shown: &Path,
    asked: Option<FrameList>,
) -> anyhow::Result<FrameList> {
    let path = scene.to_owned();
    let read = tokio::task::spawn_blocking(move || crate::inspect::read_blend(&path))
        .await
        .context("reading the scene")?;
    let info = match (read, asked) {
        (Ok(info), asked) => {
            for note in crate::inspect::notes(&info) {
                println!("note: {note}");
            }
            match asked {
                Some(frames) => return Ok(frames),
                None => info,
            }
        }
        (Err(err), Some(frames)) => {
            debug!("{err:#}");
            return Ok(frames);
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
    FrameList::from_frames(active.frames()).map_err(|e| {
        anyhow!(
            "the frame range {}-{} of scene `{}` is unusable: {e}; pass --frames",
            active.frame_start,
            active.frame_end,
            active.name
        )
    })
}

/// Creates the output folder and checks a file can be written in it.
pub async fn prepare_out(out: &Path) -> anyhow::Result<()> {
    let shown = out.display();
    let advice = "choose another folder with --out";
    if tokio::fs::metadata(out).await.is_ok_and(|m| !m.is_dir()) {
        bail!("output folder {shown} is a file: {advice}");
    }
    tokio::fs::create_dir_all(out)
        .await
        .map_err(|e| anyhow!("cannot create the output folder {shown}: {e}; {advice}"))?;
    let probe = out.join(format!(".farm-write-test-{}", std::process::id()));
    tokio::fs::write(&probe, b"")
        .await
        .map_err(|e| anyhow!("cannot write in the output folder {shown}: {e}; {advice}"))?;
    let _ = tokio::fs::remove_file(&probe).await;
    Ok(())
}

/// The SHA-256 of a file, in hex: the source tag that tells one content of the scene from
/// another.
pub async fn hash_file(path: &Path) -> anyhow::Result<String> {
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

/// `1.2 s`, `3 min 4 s`.
fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = duration.as_secs();
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chunks_share_frames_evenly() {
        assert_eq!(default_chunk(24, 2), 12);
        assert_eq!(default_chunk(25, 2), 13);
        assert_eq!(default_chunk(1, 4), 1);
        assert_eq!(default_chunk(3, 8), 1);
    }

    #[test]
    fn threads_are_shared_and_never_zero() {
        assert_eq!(threads_per_worker(2, 2), 1);
        assert_eq!(threads_per_worker(8, 3), 2);
        assert_eq!(threads_per_worker(1, 4), 1);
        assert_eq!(threads_per_worker(4, 0), 4);
    }

    #[test]
    fn the_output_folder_sits_beside_the_scene() {
        assert_eq!(
            default_out(Path::new("examples/bounce.blend")),
            PathBuf::from("examples/bounce.farm")
        );
        assert_eq!(default_out(Path::new("a.blend")), PathBuf::from("a.farm"));
    }

    #[test]
    fn sizes_read_plainly() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12 * 1024 * 1024), "12.0 MiB");
    }
}
