//! `farm estimate`: the cost and time of a job on the farm before rendering it.
//!
//! Renders the sample frames ([`farm_core::estimate::sample_frames`]) with the renderer's own
//! code ([`renderer::render_frames`], the same hostile-file rules and cleared environment as
//! `farm render`) into a temporary folder, timed by the renderer's task clock, then projects the
//! job with [`farm_core::estimate::Estimate`] over the cloud model ([`farm_core::timeline`]).

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use farm_core::estimate::{sample_frames, Estimate};
use farm_core::receipt::Prices;
use farm_core::tasks::TaskRecord;
use farm_core::timeline::{CloudModel, Projection};
use farm_core::JobKeys;
use farm_io::LocalStorage;
use renderer::{BlenderSetup, ChunkSpec};

use crate::cli::EstimateArgs;
use crate::progress;
use crate::render::{asked_frames, check_scene, scene_frames};
use crate::shutdown::Shutdown;

/// Runs `farm estimate`.
pub async fn run(args: &EstimateArgs) -> anyhow::Result<()> {
    let prices = Prices::for_region(&args.region, None, None).ok_or_else(|| {
        anyhow!(
            "no Fargate prices for region `{}`: use one of {}",
            args.region,
            farm_core::receipt::FARGATE_PRICES
                .iter()
                .map(|(r, _)| *r)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if !(args.spot_interruptions >= 0.0 && args.spot_interruptions.is_finite()) {
        bail!(
            "invalid --spot-interruptions {}: use a rate of 0 or more per task-hour",
            args.spot_interruptions
        );
    }
    let model = CloudModel {
        spot_interruptions_per_hour: args.spot_interruptions,
        ..CloudModel::new(args.max_vcpus, args.blender_start, prices)
    };
    let asked = asked_frames(args.frames.as_deref())?;
    if let Some(each) = args.seconds_per_frame {
        if !(each > 0.0 && each.is_finite()) {
            bail!("invalid --seconds-per-frame {each}: use a number of seconds above 0");
        }
        let frames = asked.ok_or_else(|| anyhow!("--seconds-per-frame needs --frames"))?;
        let projection = model.best_chunk(&vec![each; frames.len()]);
        return print_projection(args, &projection, None);
    }
    let path = args
        .scene
        .as_deref()
        .ok_or_else(|| anyhow!("name the .blend to sample, or give --seconds-per-frame"))?;
    let scene = check_scene(path).await?;
    let (frames, info) = scene_frames(&scene, path, asked).await?;
    let samples = sample_frames(frames.as_slice(), usize::from(args.samples));
    let threads = args
        .threads
        .map_or_else(renderer::config::available_cpus, usize::from);
    eprintln!(
        "rendering {} sample frame(s) ({}) of {} with {threads} thread(s)...",
        samples.len(),
        farm_core::frames::compact(&samples, " "),
        path.display()
    );
    let engine = farm_jobs::scene::choose_engine(None, info.as_ref()).engine;
    let record = render_samples(args, &scene, &samples, threads, engine).await?;
    let measured_on = format!("this machine ({threads} threads)");
    let estimate =
        Estimate::from_samples(&record, threads, frames.as_slice(), &model, &measured_on)
            .ok_or_else(|| {
                anyhow!("Blender rendered the sample frames but printed no render time for them")
            })?;
    print_projection(args, &estimate.projection, Some(&estimate))
}

/// Renders `samples` in one Blender, without persistent data (each sample stands for a frame
/// rendered after a scene sync), and returns the renderer's task record of it.
async fn render_samples(
    args: &EstimateArgs,
    scene: &Path,
    samples: &[i32],
    threads: usize,
    engine: farm_core::engine::Engine,
) -> anyhow::Result<TaskRecord> {
    let work = tempfile::Builder::new()
        .prefix("farm-estimate-")
        .tempdir()
        .context("cannot create a temporary work folder (check TMPDIR)")?;
    let storage = LocalStorage::new(work.path().join("out"));
    let keys = JobKeys::root();
    // Samples of no job: any version of the scene, in its own format, on `engine`.
    let version = farm_jobs::OutputVersion::default().with_engine(Some(engine));
    let spec = ChunkSpec {
        keys: &keys,
        frames: samples,
        version: &version,
        recheck_source: false,
    };
    // The Blender `farm render` would pick for this file.
    let saved_by = std::fs::File::open(scene)
        .ok()
        .and_then(|file| farm_blend::read_version(file).ok())
        .map(|v| farm_core::BlenderSeries::new(v.major, v.minor));
    let chosen = crate::render::blenders::choose(&args.blender, saved_by).await?;
    if let Some(said) = &chosen.said {
        println!("{said}");
    }
    let setup = BlenderSetup {
        blender: chosen.blender,
        threads,
        work_dir: work.path().join("blender"),
        persistent: false,
        frame_timeout: None,
    };
    let shutdown = Shutdown::listen();
    let clock = renderer::record::TaskClock::start();
    clock.downloaded();
    let result = renderer::render_frames(
        &storage,
        &spec,
        scene,
        &setup,
        samples,
        shutdown.signal(),
        &|event| clock.event(&event),
    )
    .await;
    let record = clock.finish(0, 1, None, &result);
    result.context("rendering the sample frames")?;
    Ok(record)
}

fn secs(value: f64) -> String {
    progress::seconds(std::time::Duration::from_secs_f64(value.max(0.0)))
}

fn print_projection(
    args: &EstimateArgs,
    projection: &Projection,
    estimate: Option<&Estimate>,
) -> anyhow::Result<()> {
    if args.json {
        let value = match estimate {
            Some(estimate) => serde_json::to_value(estimate)?,
            None => serde_json::to_value(projection)?,
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    if let Some(estimate) = estimate {
        println!("measured on {}:", estimate.measured_on);
        for sample in &estimate.sampled {
            println!("  frame {:>6}  {}", sample.frame, secs(sample.seconds));
        }
        println!(
            "  Blender start-up {}; all {} frames on a 4-vCPU task: {}",
            secs(estimate.blender_startup_seconds),
            estimate.frames,
            secs(estimate.frame_seconds_total)
        );
    }
    let p = projection;
    println!(
        "on the farm (MaxVcpus {}: {} tasks at once; start-up {} a task):",
        args.max_vcpus,
        p.slots,
        secs(p.startup_seconds)
    );
    println!(
        "  chunk {} -> {} task(s) for {} frame(s)",
        p.chunk_size, p.tasks, p.frames
    );
    println!(
        "  on demand: {:.2} task-hours, ${:.2}, done in {}",
        p.task_hours,
        p.cost_usd,
        secs(p.wall_seconds)
    );
    println!(
        "  on Spot ({} interruptions a task-hour): {:.2} task-hours, ${:.2}, done in {}",
        args.spot_interruptions,
        p.spot_task_hours,
        p.spot_cost_usd,
        secs(p.spot_wall_seconds)
    );
    println!("  (submit with chunk={} to match)", p.chunk_size);
    Ok(())
}
