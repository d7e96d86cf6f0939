//! Planning the chunks still to render, and running them on up to `--workers` Blenders.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use farm_core::blender::Blender;
use farm_core::frames::compact;
use farm_core::{JobKeys, Plan, Storage};
use farm_io::LocalStorage;
use farm_jobs::{scan_frames, OutputVersion};
use futures::StreamExt;
use renderer::{BlenderSetup, ChunkReport, ChunkSpec, FrameEvent, RenderError};
use tracing::{debug, info};

use crate::shutdown::Shutdown;
use crate::{progress, Interrupted};

/// Frames in the output folder that are not in this run's plan: left by an earlier run that
/// asked for other frames. They are kept (they are the user's), and named in the summary.
pub(super) async fn frames_outside(
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
        .filter_map(|o| keys.parse_view_key(&o.key).map(|(frame, _, _)| frame))
        .filter(|frame| !planned.contains(frame))
        .collect();
    Ok(found.into_iter().collect())
}

/// One chunk of the plan and the frames of it still to render.
#[derive(Debug, Clone)]
pub(super) struct ChunkWork {
    pub(super) index: usize,
    pub(super) frames: Vec<i32>,
    pub(super) todo: Vec<i32>,
}

/// What every chunk shares.
pub(super) struct ChunkContext<'a> {
    pub(super) storage: &'a LocalStorage,
    pub(super) keys: &'a JobKeys,
    pub(super) scene: &'a Path,
    pub(super) blender: &'a Blender,
    pub(super) work_root: &'a Path,
    pub(super) threads: usize,
    /// What makes a frame this job's ([`farm_jobs::JobTicket::version`] of the local ticket).
    pub(super) version: &'a OutputVersion,
    /// Whether a chunk of several frames keeps Cycles' data between them (`--no-persistent`).
    pub(super) persistent: bool,
    /// Most time one frame may take (`--frame-timeout`).
    pub(super) frame_timeout: Option<std::time::Duration>,
    pub(super) shutdown: &'a Shutdown,
    /// Each chunk's task record, for the run's receipt.
    pub(super) records: &'a Mutex<Vec<farm_core::tasks::TaskRecord>>,
}

/// Finds, chunk by chunk, the frames not yet in the folder for this scene content (the one frame
/// scan, [`farm_jobs::scan_frames`], over the whole plan), and deletes stale files of those frames
/// (another extension, another scene content), so the archive never sees a frame twice.
pub(super) async fn plan_work(
    storage: &LocalStorage,
    keys: &JobKeys,
    plan: &Plan,
    version: &OutputVersion,
) -> anyhow::Result<PlannedWork> {
    let frames = plan.frames().as_slice();
    let scan = scan_frames(storage, keys, frames, version, &[])
        .await
        .context("checking the frames already rendered")?;
    let todo: BTreeSet<i32> = scan.not_current().into_iter().collect();
    let work = plan
        .chunks()
        .enumerate()
        .filter_map(|(index, frames)| {
            let chunk_todo: Vec<i32> = frames
                .iter()
                .copied()
                .filter(|f| todo.contains(f))
                .collect();
            (!chunk_todo.is_empty()).then(|| ChunkWork {
                index,
                frames: frames.to_vec(),
                todo: chunk_todo,
            })
        })
        .collect();
    let stale = scan
        .stale_objects
        .iter()
        .filter(|o| todo.contains(&o.frame))
        .map(|o| o.key.clone())
        .collect();
    Ok(PlannedWork { work, stale })
}

/// The chunks to render, and the stale files of their frames (another version's output),
/// removed before rendering ([`remove_stale`]; never by a dry run).
pub(super) struct PlannedWork {
    pub(super) work: Vec<ChunkWork>,
    pub(super) stale: Vec<String>,
}

/// Every chunk of `plan`, each with all its frames to render (nothing rendered yet).
pub(super) fn every_chunk(plan: &Plan) -> Vec<ChunkWork> {
    plan.chunks()
        .enumerate()
        .map(|(index, frames)| ChunkWork {
            index,
            frames: frames.to_vec(),
            todo: frames.to_vec(),
        })
        .collect()
}

/// Removes the stale frame files [`plan_work`] found for the frames about to render.
pub(super) async fn remove_stale(storage: &LocalStorage, stale: &[String]) -> anyhow::Result<()> {
    for key in stale {
        storage
            .delete(key)
            .await
            .with_context(|| format!("removing the stale frame file `{key}`"))?;
    }
    Ok(())
}

/// Renders every chunk, `workers` at once. After a chunk fails no new chunk starts (the running
/// ones finish); after a shutdown every Blender is stopped. Returns the frames rendered.
pub(super) async fn render_all(
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
    // The frames rendering now, and how long the last one took.
    let in_progress = Mutex::new((BTreeSet::new(), None));
    let on_event = |event: FrameEvent| {
        let mut guard = in_progress.lock().unwrap_or_else(|e| e.into_inner());
        let (current, last) = &mut *guard;
        match event {
            FrameEvent::Started { frame } => {
                current.insert(frame);
            }
            FrameEvent::Uploaded { frame, render, .. } => {
                current.remove(&frame);
                bar.inc(1);
                *last = render.or(*last);
                info!(
                    frame,
                    render_seconds = render.map(|d| d.as_secs_f64()),
                    "frame done"
                );
            }
        }
        let frames: Vec<String> = current.iter().map(i32::to_string).collect();
        let mut message = match frames.len() {
            0 => String::new(),
            1 => format!("frame {}", frames[0]),
            _ => format!("frames {}", frames.join(", ")),
        };
        if let Some(last) = last {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message += &format!("last took {}", progress::seconds(*last));
        }
        bar.set_message(if message.is_empty() {
            message
        } else {
            format!("({message})")
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

pub(super) async fn render_chunk(
    context: &ChunkContext<'_>,
    chunk: &ChunkWork,
    on_event: &(dyn Fn(FrameEvent) + Sync),
) -> Result<ChunkReport, RenderError> {
    let spec = ChunkSpec {
        keys: context.keys,
        frames: &chunk.frames,
        version: context.version,
        recheck_source: false,
        resolution_percent: None,
    };
    let setup = BlenderSetup {
        blender: context.blender.clone(),
        threads: context.threads,
        work_dir: context.work_root.join(format!("chunk-{}", chunk.index)),
        persistent: context.persistent,
        frame_timeout: context.frame_timeout,
    };
    debug!(chunk = chunk.index, frames = %compact(&chunk.todo, " "), "chunk starts");
    // Timed as a cloud task is, for the run's receipt (no download: Blender's clock starts now).
    let clock = renderer::record::TaskClock::start();
    clock.downloaded();
    clock.rendering_for(context.version);
    let result = renderer::render_frames(
        context.storage,
        &spec,
        context.scene,
        &setup,
        &chunk.todo,
        context.shutdown.signal(),
        &|event| {
            clock.event(&event);
            on_event(event);
        },
    )
    .await;
    let record = clock.finish(chunk.index, 1, context.version.source_tag.clone(), &result);
    context
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(record);
    result
}

/// Why rendering stopped.
#[derive(Debug)]
pub(super) enum RenderFailure {
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
pub(super) fn explain(failure: RenderFailure, out: &Path, scene: &Path) -> anyhow::Error {
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
