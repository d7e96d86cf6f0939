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
//! 4. zip the frames with [`zipper::zip_frames_until`] into `OUT/frames.zip`, with the contact
//!    sheet `OUT/preview.jpg`.
//!
//! Ctrl-C or SIGTERM fires one shared shutdown signal: every `render_frames` kills its Blender,
//! uploads in flight are dropped (the local storage renames whole files into place, so only
//! whole frames are ever visible), and the command exits 130.

pub(crate) mod blenders;
mod chunks;
mod dry_run;
mod movie;
mod scene;

pub use scene::check_scene;
pub(crate) use scene::scene_frames;

use self::chunks::{explain, frames_outside, plan_work, render_all, ChunkContext};
use self::scene::{engine_and_format, hash_file};
use crate::out::{default_out, prepare_out};
use crate::progress::{human_bytes, seconds};
use crate::shutdown::Shutdown;

use std::num::NonZeroUsize;
use std::time::Instant;

use anyhow::{anyhow, Context};
use farm_core::blender::OutputFormat;
use farm_core::frames::{compact, DEFAULT_MAX_FRAMES};
use farm_core::plan::{auto_chunk_size, Chunking, PlanError, MAX_ARRAY_SIZE};
use farm_core::{FrameList, JobKeys, Plan};
use farm_io::LocalStorage;
use farm_jobs::JobTicket;
use tracing::{debug, info};

use crate::cli::RenderArgs;
use crate::{progress, Interrupted};

/// Default `--chunk` (and `--chunk auto`): the frames shared evenly between the workers, so
/// each Blender process starts once (the benchmark's smaller chunks were slower: each one starts
/// Blender again). The workers are the local farm's task slots: the trigger's `chunk=auto`.
pub fn default_chunk(frames: usize, workers: usize) -> u32 {
    auto_chunk_size(frames, NonZeroUsize::new(workers.max(1)))
}

/// Blender threads for each of `workers` processes running at once on `cpus` CPUs.
pub fn threads_per_worker(cpus: usize, workers: usize) -> usize {
    (cpus / workers.max(1)).max(1)
}

/// The `--frames` list, when given, parsed with the local limit.
pub(crate) fn asked_frames(spec: Option<&str>) -> anyhow::Result<Option<FrameList>> {
    spec.map(|spec| {
        FrameList::parse(spec, DEFAULT_MAX_FRAMES)
            .map_err(|e| anyhow!("invalid --frames `{spec}`: {e}"))
    })
    .transpose()
}

/// Runs `farm render`.
pub async fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let shutdown = Shutdown::listen();
    let LocalJob {
        scene,
        info,
        out,
        engine,
        format,
        ticket,
    } = local_job(args).await?;
    let (plan, version) = (&ticket.plan, ticket.version());
    let (workers, persistent) = (usize::from(args.workers), ticket.persistent);

    let storage = LocalStorage::new(&out);
    let keys = JobKeys::root();
    let planned = work_to_do(args.dry_run, &storage, &keys, plan, &version, &out).await?;
    let todo = planned.work;
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

    let saved_by = saved_by(&scene);
    if args.dry_run {
        let workers_used = (running, threads);
        return print_dry_run(args, plan, to_render, workers_used, engine, &out, saved_by);
    }
    chunks::remove_stale(&storage, &planned.stale).await?;
    let chosen = blenders::choose(&args.blender, saved_by).await?;
    if let Some(said) = &chosen.said {
        println!("{said}");
    }
    let blender = chosen.blender;
    let work_root = work_root()?;
    let records = std::sync::Mutex::new(Vec::new());
    let context = ChunkContext {
        storage: &storage,
        keys: &keys,
        scene: &scene,
        blender: &blender,
        work_root: work_root.path(),
        threads,
        version: &version,
        persistent,
        frame_timeout: args.frame_timeout.map(std::time::Duration::from_secs),
        shutdown: &shutdown,
        records: &records,
    };
    let rendered = render_all(&context, todo, workers, to_render).await;
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(err) => return Err(explain(err, &out, &args.scene)),
    };

    let summary = zip_local(&storage, &keys, &ticket, &out, &shutdown).await?;

    let workers_used = (running, threads);
    say_rendered(
        rendered,
        already,
        engine,
        started,
        workers_used,
        plan.chunk_size(),
    );
    let records = records.into_inner().unwrap_or_else(|e| e.into_inner());
    say_outputs(&out, &keys, plan, &summary, &records);
    if let Some(movie) = info
        .as_ref()
        .and_then(|i| i.active_scene())
        .and_then(|s| s.movie.as_ref())
    {
        movie::write_and_say(
            &blender,
            &scene,
            &out,
            plan.frames().as_slice(),
            format,
            movie,
        )
        .await?;
    }
    say_earlier_frames(&storage, &keys, plan).await
}

/// The chunks still to render in `out` (every chunk for a dry run into a folder not made yet).
async fn work_to_do(
    dry_run: bool,
    storage: &LocalStorage,
    keys: &JobKeys,
    plan: &Plan,
    version: &farm_jobs::OutputVersion,
    out: &std::path::Path,
) -> anyhow::Result<chunks::PlannedWork> {
    if dry_run && !out.is_dir() {
        // Nothing rendered there yet: every chunk is to do, and the folder is not made.
        return Ok(chunks::PlannedWork {
            work: chunks::every_chunk(plan),
            stale: Vec::new(),
        });
    }
    plan_work(storage, keys, plan, version).await
}

/// Prints what a run would do (`--dry-run`): `(workers, threads)` each.
fn print_dry_run(
    args: &RenderArgs,
    plan: &Plan,
    to_render: usize,
    (running, threads): (usize, usize),
    engine: farm_core::engine::Engine,
    out: &std::path::Path,
    saved_by: Option<farm_core::BlenderSeries>,
) -> anyhow::Result<()> {
    let blender = blenders::describe(&args.blender, saved_by)?;
    let dry = dry_run::DryRun {
        plan,
        to_render,
        workers: running,
        threads,
        blender: &blender,
        engine,
        out,
    };
    print!("{}", dry.text());
    Ok(())
}

/// The Blender that saved the scene, from its header, when it can be read.
fn saved_by(scene: &std::path::Path) -> Option<farm_core::BlenderSeries> {
    std::fs::File::open(scene)
        .ok()
        .and_then(|file| farm_blend::read_version(file).ok())
        .map(|v| farm_core::BlenderSeries::new(v.major, v.minor))
}

/// The run's scratch folder (each chunk works in its own folder under it).
fn work_root() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("farm-render-")
        .tempdir()
        .context("cannot create a temporary work folder (check TMPDIR)")
}

/// Prints what the run rendered: `(workers, threads)` each, `chunk_size` frames per chunk.
fn say_rendered(
    rendered: usize,
    already: usize,
    engine: farm_core::engine::Engine,
    started: Instant,
    (running, threads): (usize, usize),
    chunk_size: u32,
) {
    if rendered == 0 {
        println!(
            "rendered 0 frame(s) ({already} already done): every frame was already rendered from this content of the scene"
        );
    } else {
        println!(
            "rendered {rendered} frame(s) with {} ({already} already done) in {}: {} worker(s), {} frame(s) per chunk, {threads} thread(s) each",
            engine.label(),
            seconds(started.elapsed()),
            running,
            chunk_size,
        );
    }
}

/// Notes the frames of earlier runs `frames/` holds besides this run's.
async fn say_earlier_frames(
    storage: &LocalStorage,
    keys: &JobKeys,
    plan: &Plan,
) -> anyhow::Result<()> {
    let earlier = frames_outside(storage, keys, plan).await?;
    if !earlier.is_empty() {
        println!(
            "note:    frames/ also holds {} frame(s) of earlier runs, not in this run nor in frames.zip: {}",
            earlier.len(),
            compact(&earlier, " ")
        );
    }
    Ok(())
}

/// What `farm render` renders: the scene checked, its frames, engine and format resolved
/// against the command line, and the local job's ticket.
struct LocalJob {
    scene: std::path::PathBuf,
    info: Option<farm_blend::BlendInfo>,
    out: std::path::PathBuf,
    engine: farm_core::engine::Engine,
    format: Option<OutputFormat>,
    ticket: JobTicket,
}

/// Reads the request of `farm render`: checks the scene and its files, resolves its frames,
/// engine and format, prepares the output folder (not for a dry run) and makes the ticket.
async fn local_job(args: &RenderArgs) -> anyhow::Result<LocalJob> {
    let scene = check_scene(&args.scene).await?;
    let dependencies = crate::project::check_before_render(&scene, args.strict).await?;
    let format = args
        .format
        .as_deref()
        .map(|f| f.parse::<OutputFormat>())
        .transpose()
        .map_err(|e| anyhow!("invalid --format: {e}"))?;
    let (frames, info) =
        scene_frames(&scene, &args.scene, asked_frames(args.frames.as_deref())?).await?;
    let (engine, format) = engine_and_format(args.engine, format, info.as_ref());
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.scene));
    if !args.dry_run {
        prepare_out(&out).await?;
    }
    let source_tag = hash_file(&scene).await?;
    debug!(%source_tag, "scene content hash");
    let plan = plan_chunks(frames, args.chunk, usize::from(args.workers))?;
    let persistent = !args.no_persistent;
    let deps = dependencies.as_deref();
    // `scene_frames` refused a scene whose views cannot be kept.
    let views = farm_jobs::scene::frame_views(info.as_ref()).map_err(|e| anyhow!(e))?;
    Ok(LocalJob {
        ticket: JobTicket {
            views,
            ..JobTicket::local(plan, &source_tag, format, engine, deps, persistent)
        },
        scene,
        info,
        out,
        engine,
        format,
    })
}

/// The chunks of `frames`: `--chunk`, or by default as many as there are workers.
fn plan_chunks(frames: FrameList, chunk: Option<Chunking>, workers: usize) -> anyhow::Result<Plan> {
    let chunk = match chunk.unwrap_or(Chunking::Auto) {
        Chunking::Frames(size) => size,
        Chunking::Auto => default_chunk(frames.len(), workers),
    };
    Plan::new(frames, chunk).map_err(|e| match e {
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
    })
}

/// Streams the local job's frames into `<out>/frames.zip` (and the contact sheet).
async fn zip_local(
    storage: &LocalStorage,
    keys: &JobKeys,
    ticket: &JobTicket,
    out: &std::path::Path,
    shutdown: &Shutdown,
) -> anyhow::Result<zipper::ZipSummary> {
    let plan = &ticket.plan;
    // Nothing until the listing gives the archive's length.
    let zip_bar = progress::LateBytes::new("zipping");
    let on_zip = |p: zipper::ZipProgress| zip_bar.update(p.bytes_done, p.bytes_total);
    let summary = zipper::zip_frames_until(
        storage,
        keys,
        plan.frames(),
        &ticket.version(),
        &zipper::ZipOptions::default(),
        &on_zip,
        shutdown.signal(),
    )
    .await;
    zip_bar.finish_and_clear();
    match summary {
        Ok(summary) => Ok(summary),
        Err(zipper::ZipError::Interrupted) => Err(Interrupted(format!(
            "stopped while zipping; all {} frames are in {}: rerun to make the archive",
            plan.frames().len(),
            out.join("frames").display()
        ))
        .into()),
        Err(err) => Err(anyhow!(err).context("zipping the frames")),
    }
}

/// Prints the run's receipt and where its frames, archive and contact sheet are.
fn say_outputs(
    out: &std::path::Path,
    keys: &JobKeys,
    plan: &Plan,
    summary: &zipper::ZipSummary,
    records: &[farm_core::tasks::TaskRecord],
) {
    if !records.is_empty() {
        let receipt = farm_core::receipt::Receipt::compute(records, summary.frames, None);
        print!("{}", crate::report::receipt_text(&receipt, false));
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
    if summary.preview.is_some() {
        println!(
            "preview: {} (contact sheet)",
            out.join(keys.preview()).display()
        );
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
        assert_eq!(default_chunk(30_000, 1), 30_000);
    }

    #[test]
    fn threads_are_shared_and_never_zero() {
        assert_eq!(threads_per_worker(2, 2), 1);
        assert_eq!(threads_per_worker(8, 3), 2);
        assert_eq!(threads_per_worker(1, 4), 1);
        assert_eq!(threads_per_worker(4, 0), 4);
    }
}
