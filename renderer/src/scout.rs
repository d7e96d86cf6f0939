//! A scout job (`estimate=N`, issue 27): one task downloads the job's .blend and dependencies
//! as a chunk would, renders the sample frames
//! ([`farm_core::estimate::sample_frames`]) into its own scratch folder (never `frames/`: the
//! job's frames are the job's), and writes `<key>/estimate.json` ([`EstimateFile`],
//! `estimated`): the samples' seconds and the job projected by [`Estimate::from_samples`] over
//! the cloud model at the farm's `MaxVcpus`, Blender's start-up and the download measured here.
//! It writes no task record: the job's receipt sums the job's tasks only.
//!
//! [`render_samples`] is also `farm estimate`'s, on this machine.

use std::future::Future;
use std::path::Path;

use farm_core::engine::Engine;
use farm_core::estimate::{sample_frames, Estimate, EstimateFile, EstimateStatus, ESTIMATE_SCHEMA};
use farm_core::storage::put_json;
use farm_core::tasks::TaskRecord;
use farm_core::timeline::{CloudModel, DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR};
use farm_core::{JobKeys, Storage};
use farm_io::LocalStorage;
use farm_jobs::Scout;
use tracing::info;

use crate::error::RenderError;
use crate::record::TaskClock;
use crate::render::{render_frames, BlenderSetup, ChunkReport, ChunkSpec};
use crate::Config;

/// Blender's start-up the projection assumes when the samples measured none.
const ASSUMED_BLENDER_START_SECONDS: f64 = 5.0;

/// Runs the scout of `config.ticket`: renders its samples and writes `estimate.json`. The report
/// lists the sample frames as rendered (none of them was uploaded).
pub(crate) async fn run<S: Storage>(
    storage: &S,
    config: &Config,
    scout: Scout,
    shutdown: impl Future<Output = ()>,
    clock: &TaskClock,
) -> Result<ChunkReport, RenderError> {
    tokio::pin!(shutdown);
    let ticket = &config.ticket;
    let prices = config.prices.ok_or_else(|| {
        RenderError::Config(format!(
            "a scout job prices its estimate, but this task's region (AWS_REGION) has no Fargate prices in the farm's table: set the stack's PriceVcpuHourUsd and PriceGbHourUsd ({} and {} on the render job definitions)",
            farm_core::receipt::ENV_VCPU_HOUR_USD,
            farm_core::receipt::ENV_GB_HOUR_USD
        ))
    })?;
    let source_etag = crate::check_source(storage, ticket).await?.etag;
    clock.downloading();
    let blend = tokio::select! {
        () = &mut shutdown => return Err(RenderError::Interrupted),
        blend = crate::fetch_blend(storage, config, source_etag.as_deref()) => blend?,
    };
    clock.downloaded();
    crate::check_scene_file(ticket.keys.source(), &blend).await?;
    let frames = ticket.plan.frames().as_slice();
    let samples = sample_frames(frames, usize::from(scout.samples));
    info!(samples = ?samples, "scout: rendering the sample frames");
    let engine = ticket.version().engine;
    let record = render_samples(&blend, &samples, &config.blender, engine, shutdown, clock).await?;
    let model = CloudModel {
        spot_interruptions_per_hour: DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR,
        ..CloudModel::new(scout.max_vcpus, ASSUMED_BLENDER_START_SECONDS, prices)
    };
    let measured_on = format!("a scout task ({} threads)", config.blender.threads);
    let estimate = Estimate::from_samples(
        &record,
        config.blender.threads,
        frames,
        &model,
        &measured_on,
    )
    .ok_or_else(|| {
        RenderError::Config(
            "Blender rendered the sample frames but printed no render time for them".to_owned(),
        )
    })?;
    let file = EstimateFile {
        schema: ESTIMATE_SCHEMA,
        status: EstimateStatus::Estimated,
        key: ticket.keys.source().to_owned(),
        etag: source_etag,
        frames: ticket.plan.frames().canonical(),
        samples: samples.clone(),
        max_vcpus: scout.max_vcpus,
        job_id: None,
        written: jiff::Timestamp::now(),
        estimate: Some(estimate),
    };
    put_json(storage, &ticket.keys.estimate(), &file).await?;
    info!(key = %ticket.keys.estimate(), "scout: estimate written");
    Ok(ChunkReport {
        rendered: samples,
        skipped: Vec::new(),
    })
}

/// Renders `samples` of the .blend at `scene` in one Blender, without persistent data (each
/// sample stands for a frame rendered after a scene sync), into `<work_dir>/samples`, timed by
/// `clock` (whose download, if any, has ended); returns the record of the render.
pub async fn render_samples<F: Future<Output = ()> + Unpin>(
    scene: &Path,
    samples: &[i32],
    setup: &BlenderSetup,
    engine: Engine,
    shutdown: F,
    clock: &TaskClock,
) -> Result<TaskRecord, RenderError> {
    let storage = LocalStorage::new(setup.work_dir.join("samples"));
    let keys = JobKeys::root();
    // Samples of no job: any version of the scene, in its own format, on `engine`.
    let version = farm_jobs::OutputVersion::default().with_engine(Some(engine));
    let spec = ChunkSpec {
        keys: &keys,
        frames: samples,
        version: &version,
        recheck_source: false,
    };
    let setup = BlenderSetup {
        persistent: false,
        ..setup.clone()
    };
    let result = render_frames(
        &storage,
        &spec,
        scene,
        &setup,
        samples,
        shutdown,
        &|event| clock.event(&event),
    )
    .await;
    let record = clock.finish(0, 1, None, &result);
    result?;
    Ok(record)
}
