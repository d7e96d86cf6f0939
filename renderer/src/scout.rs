//! A scout job (`estimate=N`, issue 27): one task downloads the job's .blend and dependencies
//! as a chunk would, measures it ([`measure`]: the profile pass over the job's frames at a
//! quarter of the resolution, then the sample frames at full quality, ADR 0016) in its own
//! scratch folder (never `frames/`: the job's frames are the job's), and writes
//! `<key>/estimate.json` ([`EstimateFile`], `estimated`): what it measured and the job projected
//! by [`Estimate::from_measurement`] over the cloud model at the farm's `MaxVcpus`, Blender's
//! start-up and the download measured here. It writes no task record: the job's receipt sums
//! the job's tasks only.
//!
//! [`measure`] is also `farm estimate`'s, on this machine.

use std::future::Future;
use std::path::Path;

use farm_core::engine::Engine;
use farm_core::estimate::profile::{place_samples, profile_frames};
use farm_core::estimate::{
    sample_frames, Estimate, EstimateFile, EstimateStatus, Measurement, Profile, SampledFrame,
    ESTIMATE_SCHEMA, PROFILE_RESOLUTION_PERCENT,
};
use farm_core::storage::put_json;
use farm_core::tasks::TaskRecord;
use farm_core::timeline::{CloudModel, DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR};
use farm_core::views::FrameViews;
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
    let version = ticket.version();
    let output = SampleOutput {
        engine: version.engine,
        views: &version.views,
    };
    let samples = usize::from(scout.samples);
    let mut measured = measure(&blend, frames, samples, &config.blender, output, shutdown).await?;
    measured.samples.download_seconds = clock.download_seconds();
    let model = CloudModel {
        spot_interruptions_per_hour: DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR,
        ..CloudModel::new(scout.max_vcpus, ASSUMED_BLENDER_START_SECONDS, prices)
    };
    // The samples as rendered, the profile's placed ones included, in frame order.
    let mut rendered: Vec<i32> = measured.samples.frames.iter().map(|f| f.frame).collect();
    rendered.sort_unstable();
    let measured_on = format!("a scout task ({} threads)", config.blender.threads);
    let estimate = Estimate::from_measurement(
        &measured,
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
        samples: rendered.clone(),
        max_vcpus: scout.max_vcpus,
        job_id: None,
        written: jiff::Timestamp::now(),
        estimate: Some(estimate),
    };
    put_json(storage, &ticket.keys.estimate(), &file).await?;
    info!(key = %ticket.keys.estimate(), "scout: estimate written");
    Ok(ChunkReport {
        rendered,
        skipped: Vec::new(),
    })
}

/// What the sample frames render as: the job's engine, and its views (a stereo scene saving
/// each view apart writes a file per view, and a frame is all of them).
#[derive(Debug, Clone, Copy)]
pub struct SampleOutput<'a> {
    pub engine: Engine,
    pub views: &'a FrameViews,
}

/// Measures the .blend at `scene` for an estimate of rendering `frames` (sorted; ADR 0016), in
/// `setup`'s work folder, each pass in one Blender with `setup`'s persistent data as the job's
/// chunks: the profile pass ([`profile_frames`] at [`PROFILE_RESOLUTION_PERCENT`] of the
/// resolution; none when every frame is a sample), then at full quality `samples` frames spread
/// evenly ([`sample_frames`]) and up to as many the profile finds unlike their neighbours
/// ([`place_samples`]). The samples' record times Blender's start-up from its own start.
pub async fn measure<F: Future<Output = ()> + Unpin>(
    scene: &Path,
    frames: &[i32],
    samples: usize,
    setup: &BlenderSetup,
    output: SampleOutput<'_>,
    mut shutdown: F,
) -> Result<Measurement, RenderError> {
    let base = sample_frames(frames, samples);
    let profile = if frames.len() > base.len() {
        let profiled = profile_frames(frames, &base);
        info!(frames = profiled.len(), "estimate: the profile pass");
        let percent = Some(PROFILE_RESOLUTION_PERCENT);
        let record = render_pass(scene, &profiled, setup, output, percent, &mut shutdown).await?;
        Some(Profile {
            resolution_percent: PROFILE_RESOLUTION_PERCENT,
            frames: SampledFrame::timed(&record),
            seconds: record.seconds(),
        })
    } else {
        None
    };
    let chosen = match &profile {
        Some(profile) => place_samples(&base, &profile.steady(), samples),
        None => base.clone(),
    };
    let placed: Vec<i32> = chosen
        .iter()
        .filter(|f| !base.contains(f))
        .copied()
        .collect();
    info!(samples = ?chosen, placed = ?placed, "estimate: rendering the sample frames");
    let record = render_pass(scene, &chosen, setup, output, None, &mut shutdown).await?;
    Ok(Measurement {
        profile,
        samples: record,
        placed,
    })
}

/// Renders `frames` of the .blend at `scene` in one Blender (at `resolution_percent` of its
/// resolution when given) into `<work_dir>/samples`, timed from Blender's start; returns the
/// record of the render.
async fn render_pass<F: Future<Output = ()> + Unpin>(
    scene: &Path,
    frames: &[i32],
    setup: &BlenderSetup,
    output: SampleOutput<'_>,
    resolution_percent: Option<u8>,
    shutdown: F,
) -> Result<TaskRecord, RenderError> {
    let storage = LocalStorage::new(setup.work_dir.join("samples"));
    let keys = JobKeys::root();
    // Samples of no job: any version of the scene, in its own format, on the engine and with
    // the views the job renders (a frame is every file of its views).
    let mut version = farm_jobs::OutputVersion::default().with_engine(Some(output.engine));
    version.views = output.views.clone();
    let spec = ChunkSpec {
        keys: &keys,
        frames,
        version: &version,
        recheck_source: false,
        resolution_percent,
    };
    let clock = TaskClock::start();
    clock.downloaded();
    let result = render_frames(&storage, &spec, scene, setup, frames, shutdown, &|event| {
        clock.event(&event)
    })
    .await;
    let record = clock.finish(0, 1, None, &result);
    result?;
    Ok(record)
}
