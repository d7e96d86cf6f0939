//! `farm estimate`: the cost and time of a job on the farm before rendering it.
//!
//! Measures the scene with the scout job's own code ([`renderer::scout::measure`]: the profile
//! pass over the frames at a quarter of the resolution, then the sample frames at full quality,
//! ADR 0016; the same hostile-file rules and cleared environment as `farm render`) in a
//! temporary folder, then projects the job with [`farm_core::estimate::Estimate`] over the
//! cloud model ([`farm_core::timeline`]).

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use farm_core::estimate::{sample_frames, Estimate, Measurement};
use farm_core::receipt::Prices;
use farm_core::timeline::{CloudModel, Projection};
use renderer::scout::SampleOutput;
use renderer::BlenderSetup;

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
        "profiling {} frame(s) of {}, then rendering {} sample frame(s) ({}) and any the profile finds unlike their neighbours, with {threads} thread(s)...",
        frames.len(),
        path.display(),
        samples.len(),
        farm_core::frames::compact(&samples, " "),
    );
    let engine = farm_jobs::scene::choose_engine(None, info.as_ref()).engine;
    let views = farm_jobs::scene::frame_views(info.as_ref()).map_err(|e| anyhow!(e))?;
    let output = SampleOutput {
        engine,
        views: &views,
    };
    let measured = measure(args, &scene, frames.as_slice(), threads, output).await?;
    let measured_on = format!("this machine ({threads} threads)");
    let estimate =
        Estimate::from_measurement(&measured, threads, frames.as_slice(), &model, &measured_on)
            .ok_or_else(|| {
                anyhow!("Blender rendered the sample frames but printed no render time for them")
            })?;
    print_projection(args, &estimate.projection, Some(&estimate))
}

/// Measures `frames` of the scene with the scout job's code ([`renderer::scout::measure`]:
/// with persistent data, as the farm's chunks render by default).
async fn measure(
    args: &EstimateArgs,
    scene: &Path,
    frames: &[i32],
    threads: usize,
    output: SampleOutput<'_>,
) -> anyhow::Result<Measurement> {
    let work = tempfile::Builder::new()
        .prefix("farm-estimate-")
        .tempdir()
        .context("cannot create a temporary work folder (check TMPDIR)")?;
    // The Blender `farm render` would pick for this file.
    let saved_by = std::fs::File::open(scene)
        .ok()
        .and_then(|file| farm_blend::read_version(file).ok())
        .map(|v| farm_core::BlenderSeries::new(v.major, v.minor));
    let chosen = crate::render::blenders::choose(&args.blender, saved_by).await?;
    // On stderr, as the progress line: `--json` keeps standard output the document alone.
    if let Some(said) = &chosen.said {
        eprintln!("{said}");
    }
    let setup = BlenderSetup {
        blender: chosen.blender,
        threads,
        work_dir: work.path().join("blender"),
        persistent: true,
        frame_timeout: None,
    };
    let shutdown = Shutdown::listen();
    let samples = usize::from(args.samples);
    renderer::scout::measure(scene, frames, samples, &setup, output, shutdown.signal())
        .await
        .context("measuring the scene (profile and sample frames)")
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
    print_estimate(
        estimate,
        projection,
        args.max_vcpus,
        args.spot_interruptions,
    );
    Ok(())
}

/// Prints what the samples measured (if any) and `p`, the job on a farm of `max_vcpus` with
/// `spot_interruptions` a task-hour (`farm estimate`, `farm submit --estimate`).
pub(crate) fn print_estimate(
    estimate: Option<&Estimate>,
    p: &Projection,
    max_vcpus: u32,
    spot_interruptions: f64,
) {
    if let Some(estimate) = estimate {
        println!("measured on {}:", estimate.measured_on);
        if let Some(profile) = &estimate.profile {
            println!(
                "  profile: {} frame(s) at {} % of the resolution in {}",
                profile.frames.len(),
                profile.resolution_percent,
                secs(profile.seconds)
            );
        }
        for sample in &estimate.sampled {
            let why = if sample.placed_by_profile {
                "  (the profile found it unlike its neighbours)"
            } else {
                ""
            };
            println!("  frame {:>6}  {}{why}", sample.frame, secs(sample.seconds));
        }
        println!(
            "  start-up {}, first frame's extra {}; all {} frames on a 4-vCPU task: {}",
            secs(estimate.blender_startup_seconds),
            secs(estimate.first_frame_extra_seconds),
            estimate.frames,
            secs(estimate.frame_seconds_total)
        );
    }
    println!(
        "on the farm (MaxVcpus {max_vcpus}: {} tasks at once; start-up {} a task):",
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
        "  on Spot ({spot_interruptions} interruptions a task-hour): {:.2} task-hours, ${:.2}, done in {}",
        p.spot_task_hours,
        p.spot_cost_usd,
        secs(p.spot_wall_seconds)
    );
    println!("  (submit with chunk={} to match)", p.chunk_size);
}
