//! The AWS Batch worker: renders one chunk of a job's frames with Blender Cycles.
//!
//! # Layout
//! - [`config`]: flags and environment variables, validated once into a [`Config`].
//! - [`render`]: one Blender process per chunk; frames are uploaded as Blender saves them, and
//!   nothing counts as done until every frame of the chunk is in the store.
//! - [`error`]: [`RenderError`] and the exit code each failure leaves with.
//! - [`sandbox`]: Blender without a network and able to write only its work folder, where the
//!   platform allows.
//! - [`project`]: the job's dependencies (textures, libraries...) downloaded beside the .blend
//!   in the bucket's layout before Blender starts.
//! - [`record`]: the attempt's task record, `<key>/tasks/<index>-<attempt>.json`.
//! - [`movie`]: the movie job (a ticket with a movie): the movie a movie scene asks for, made
//!   by Blender from the job's frames, and the same Blender step for `farm render`.
//! - [`scout`]: a scout job (`estimate=N`): sample frames rendered on one task, projected into
//!   `<key>/estimate.json`; also `farm estimate`'s samples.
//!
//! [`run`] is the whole worker over any [`Storage`] (S3 in a Batch container, a local folder
//! under `farm render`), and the one dispatch over the job a ticket names: a render chunk, a
//! scout or the movie job.

pub mod config;
pub mod error;
pub mod movie;
pub mod project;
pub mod record;
pub mod render;
pub mod sandbox;
pub mod scout;

use std::future::Future;
use std::path::{Path, PathBuf};

use farm_blend::{sniff, SNIFF_LEN};
use farm_core::receipt::MovieObject;
use farm_core::storage::{ObjectMeta, StorageError};
use farm_core::tasks::TaskKind;
use farm_core::Storage;
use tracing::info;

pub use config::{Args, Config};
pub use error::RenderError;
pub use render::{pending_frames, render_frames, BlenderSetup, ChunkReport, ChunkSpec, FrameEvent};

/// What one run of the renderer did, by the job its ticket names.
#[derive(Debug)]
pub enum Done {
    /// A render chunk: its frames rendered and uploaded, or found already there.
    Chunk(ChunkReport),
    /// A scout job (`estimate=N`): its sample frames, rendered into its scratch folder.
    Scout(ChunkReport),
    /// The movie job: the movie, uploaded.
    Movie(MovieObject),
}

/// The whole worker, and the one place that decides which job a ticket asks for: the movie job
/// (a ticket with a movie, [`movie`]), a scout job (a ticket with a scout, [`scout`]), or
/// otherwise the render chunk of `config.index`: the frames still missing for this version of
/// the .blend, downloaded once, rendered by one Blender process and each uploaded as it is
/// written. A render chunk and the movie job write their attempt's task record ([`record`]),
/// whatever the outcome.
pub async fn run<S: Storage>(
    storage: &S,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<Done, RenderError> {
    let clock = record::TaskClock::start();
    let ticket = &config.ticket;
    let done = if ticket.movie.is_some() {
        movie::run(storage, config, shutdown, &clock)
            .await
            .map(Done::Movie)
    } else if let Some(scout) = ticket.scout {
        scout::run(storage, config, scout, shutdown, &clock)
            .await
            .map(Done::Scout)
    } else {
        let result = run_chunk(storage, config, shutdown, &clock).await;
        record::write_record(storage, config, &clock, TaskKind::Render, &result).await;
        result.map(Done::Chunk)
    }?;
    match &done {
        Done::Chunk(report) => info!(
            rendered = report.rendered.len(),
            skipped = report.skipped.len(),
            "chunk done"
        ),
        Done::Scout(report) => info!(samples = ?report.rendered, "scout done"),
        Done::Movie(movie) => info!(key = movie.key, bytes = movie.size, "movie written"),
    }
    Ok(done)
}

async fn run_chunk<S: Storage>(
    storage: &S,
    config: &Config,
    shutdown: impl Future<Output = ()>,
    clock: &record::TaskClock,
) -> Result<ChunkReport, RenderError> {
    tokio::pin!(shutdown);
    let ticket = &config.ticket;
    let frames = ticket.plan.chunk(config.index)?;
    let key = ticket.keys.source();
    let source = check_source(storage, ticket).await?;
    let source_tag = source.etag.as_deref();
    let version = ticket.version_at(source_tag);
    clock.rendering_for(&version);
    let spec = ChunkSpec {
        keys: &ticket.keys,
        frames,
        version: &version,
        recheck_source: true,
        resolution_percent: None,
    };
    let todo = pending_frames(storage, &spec).await?;
    let skipped: Vec<i32> = frames
        .iter()
        .copied()
        .filter(|f| !todo.contains(f))
        .collect();
    info!(
        index = config.index,
        frames = frames.len(),
        pending = todo.len(),
        "chunk planned"
    );
    if todo.is_empty() {
        info!("every frame of the chunk is already rendered");
        return Ok(ChunkReport {
            rendered: Vec::new(),
            skipped,
        });
    }

    clock.downloading();
    let blend = tokio::select! {
        () = &mut shutdown => return Err(RenderError::Interrupted),
        blend = fetch_blend(storage, config, source_tag) => blend?,
    };
    clock.downloaded();
    check_scene_file(key, &blend).await?;
    let mut report = render_frames(
        storage,
        &spec,
        &blend,
        &config.blender,
        &todo,
        shutdown,
        &|event| clock.event(&event),
    )
    .await?;
    report.skipped = skipped;
    Ok(report)
}

/// The job's .blend as it is now (`HEAD`), refused when it is gone or is not the version the
/// job was submitted for.
pub async fn check_source<S: Storage>(
    storage: &S,
    ticket: &farm_jobs::JobTicket,
) -> Result<ObjectMeta, RenderError> {
    let key = ticket.keys.source();
    let source = storage
        .head(key)
        .await?
        .ok_or_else(|| RenderError::SourceMissing {
            key: key.to_owned(),
        })?;
    let found = source.etag.clone().unwrap_or_default();
    if let Some(expected) = &ticket.source_etag {
        if *expected != found {
            return Err(RenderError::SourceChanged {
                key: key.to_owned(),
                expected: expected.clone(),
                found,
            });
        }
    }
    Ok(source)
}

/// Downloads the job's .blend (at `source_tag`) and its dependencies into the work folder and
/// checks it is a .blend; returns its path. A job with dependencies places the .blend at its own
/// key in a folder mirroring the bucket, so its relative paths find the files downloaded beside
/// it.
pub async fn fetch_blend<S: Storage>(
    storage: &S,
    config: &Config,
    source_tag: Option<&str>,
) -> Result<PathBuf, RenderError> {
    let ticket = &config.ticket;
    let key = ticket.keys.source();
    let project = project::project_dir(&config.blender.work_dir);
    let blend = match &ticket.dependencies {
        Some(_) => project::local_path(&project, key)?,
        None => config.blender.work_dir.join("scene.blend"),
    };
    let blend_dir = blend
        .parent()
        .unwrap_or(&config.blender.work_dir)
        .to_owned();
    tokio::fs::create_dir_all(&blend_dir)
        .await
        .map_err(|source| RenderError::WorkDir {
            path: blend_dir.clone(),
            source,
        })?;
    if let Some(list) = &ticket.dependencies {
        project::download_dependencies(storage, key, list, &project).await?;
    }
    match storage.download(key, &blend, source_tag).await {
        Ok(_) => {}
        Err(StorageError::NotFound { .. }) => {
            return Err(RenderError::SourceMissing {
                key: key.to_owned(),
            })
        }
        Err(StorageError::Changed { expected, .. }) => {
            return Err(RenderError::SourceChanged {
                key: key.to_owned(),
                expected,
                found: "a newer upload".to_owned(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    check_blend(key, &blend).await?;
    Ok(blend)
}

/// Refuses a file that is not a .blend before Blender sees it.
pub async fn check_blend(key: &str, path: &Path) -> Result<(), RenderError> {
    let prefix = render::read_head(path, SNIFF_LEN).await?;
    sniff(&prefix)
        .map(|_| ())
        .map_err(|reason| RenderError::NotABlend {
            key: key.to_owned(),
            reason,
        })
}

/// Refuses, as the trigger's pre-flight does (so a job that did not come through the trigger is
/// held to the same rules), a .blend whose scene cannot render
/// ([`farm_jobs::scene::cannot_render`]: no camera, frame buffers past a task's memory) or that
/// makes Blender write a cache folder outside its own folder
/// ([`farm_jobs::deps::written_refusal`]: Blender writes and clears it on opening the file,
/// before the render script can move it). A file the reader cannot read is left to Blender,
/// which says why.
async fn check_scene_file(key: &str, path: &Path) -> Result<(), RenderError> {
    let file = path.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        std::fs::File::open(&file)
            .map_err(farm_blend::BlendError::Io)
            .and_then(|f| farm_blend::read_seekable(std::io::BufReader::new(f)))
    })
    .await;
    let Ok(Ok(info)) = read else {
        return Ok(());
    };
    let refused: Vec<String> = farm_jobs::scene::cannot_render(&info)
        .into_iter()
        .chain(
            info.files
                .iter()
                .filter_map(|file| farm_jobs::deps::written_refusal(key, file))
                .map(|m| m.describe()),
        )
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(RenderError::Refused {
        key: key.to_owned(),
        reason: refused.join("; "),
    })
}
