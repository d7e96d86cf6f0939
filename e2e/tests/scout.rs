//! A scout job end to end (issue 27, `estimate=N`): the AWS CLI uploads a scene tagged
//! `estimate=3` to S3 (moto), the trigger's handler submits the scout job alone, the real
//! `renderer` binary runs it as Batch would (Debian's Blender), and its `estimate.json` is
//! checked against the model it projects with.

use farm_core::estimate::profile::{first_frame_extra, profiled_seconds};
use farm_core::estimate::{EstimateFile, EstimateStatus};
use farm_core::receipt::Prices;
use farm_core::timeline::{CloudModel, DEFAULT_MAX_VCPUS, DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR};
use farm_core::{env, exit, JobKeys};
use farm_e2e::{bins, env_value, Farm, SceneOptions};
use trigger_lambda::RecordOutcome;

const BUCKET: &str = "farm-scouts";

#[tokio::test(flavor = "multi_thread")]
async fn an_estimate_upload_runs_one_scout_whose_estimate_holds_together() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let scene = farm.scene(
        "scout",
        &SceneOptions {
            end: 12,
            ..SceneOptions::default()
        },
    );
    let key = "shots/scout.blend";
    farm.upload_tagged(key, &scene, "frames=1-12&chunk=4&estimate=3")
        .await;
    let etag = farm.objects(key).await.unwrap()[key].etag.clone();
    let delivered = farm.deliver().await.unwrap();
    let scouted: Vec<&RecordOutcome> = delivered
        .iter()
        .flat_map(|(_, report)| &report.records)
        .filter(|o| matches!(o, RecordOutcome::Scouted { .. }))
        .collect();
    assert_eq!(scouted.len(), 1, "{delivered:#?}");

    // One job: the scout, a plain job on the render job definition.
    let jobs = farm.jobs().await.unwrap();
    assert_eq!(jobs.len(), 1, "no render or zip job: {jobs:#?}");
    let scout = &jobs[0];
    assert_eq!(scout.array_size, None);
    assert_eq!(scout.definition, farm.batch_env.render_definition);
    assert_eq!(scout.var(env::ESTIMATE), Some("3"));

    let env = farm.moto.env();
    let exited = farm.run_render(scout, &env, &[]).await;
    assert_eq!(exited.len(), 1);
    exited[0].assert_code(exit::SUCCESS);

    // It wrote its estimate, and nothing of the job: no frame, no task record.
    let keys = JobKeys::new(key);
    assert!(farm
        .objects(&keys.frames_prefix())
        .await
        .unwrap()
        .is_empty());
    assert!(farm.objects(&keys.tasks_prefix()).await.unwrap().is_empty());
    let file: EstimateFile =
        serde_json::from_slice(&farm.get(&keys.estimate()).await.unwrap()).unwrap();
    assert_eq!(file.status, EstimateStatus::Estimated);
    assert_eq!(file.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(file.frames, "1-12");
    assert_eq!(file.max_vcpus, DEFAULT_MAX_VCPUS);
    let estimate = file.estimate.expect("an estimate");
    let sampled: Vec<i32> = estimate.sampled.iter().map(|s| s.frame).collect();
    assert_eq!(sampled, file.samples);
    // First, middle and last, and any frame the profile found unlike its neighbours.
    let base: Vec<i32> = estimate
        .sampled
        .iter()
        .filter(|s| !s.placed_by_profile)
        .map(|s| s.frame)
        .collect();
    assert_eq!(base, [1, 7, 12], "{estimate:?}");
    let profile = estimate
        .profile
        .clone()
        .expect("a profile of the 12 frames");
    let profiled: Vec<i32> = profile.frames.iter().map(|s| s.frame).collect();
    assert_eq!(profiled, (1..=12).collect::<Vec<_>>());
    assert!(
        estimate.sampled.iter().all(|s| s.seconds > 0.0),
        "{estimate:?}"
    );
    assert!(estimate.blender_startup_seconds > 0.0, "{estimate:?}");
    // Farm::spawn gives a container one thread, as FARM_THREADS=1.
    assert_eq!(estimate.threads, 1);
    assert_eq!(estimate.frames, 12);

    // The projection is the samples' seconds (scaled from one thread to a 4-vCPU task, the
    // first without the first frame's extra the profile measured, between the samples shaped
    // by the profile) over all 12 frames, through the model at the stack's MaxVcpus with the
    // start-up the scout measured and the first frame's extra once per task.
    let extra = first_frame_extra(&profile.frames).min(estimate.sampled[0].seconds);
    assert!((estimate.first_frame_extra_seconds - extra / 4.0).abs() < 1e-9);
    let mut scaled: Vec<(i32, f64)> = estimate
        .sampled
        .iter()
        .map(|s| (s.frame, s.seconds / 4.0))
        .collect();
    scaled[0].1 -= extra / 4.0;
    let frames: Vec<i32> = (1..=12).collect();
    let seconds = profiled_seconds(&scaled, &profile.steady(), &frames);
    let total: f64 = seconds.iter().sum();
    assert!(
        (estimate.frame_seconds_total - total).abs() < 1e-6,
        "{estimate:?}"
    );
    let region = env_value(&env, "AWS_REGION").unwrap_or_default();
    let prices = Prices::for_region(region, None, None).expect("moto's region is priced");
    let model = CloudModel {
        spot_interruptions_per_hour: DEFAULT_SPOT_INTERRUPTIONS_PER_HOUR,
        first_frame_extra_seconds: estimate.first_frame_extra_seconds,
        ..CloudModel::new(DEFAULT_MAX_VCPUS, estimate.blender_startup_seconds, prices)
    };
    let projection = estimate.projection;
    let expected = model.best_chunk(&seconds);
    // Equal but for the last bit a JSON round trip may change.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert_eq!(
        (projection.chunk_size, projection.tasks, projection.slots),
        (expected.chunk_size, expected.tasks, expected.slots)
    );
    for (got, want) in [
        (projection.startup_seconds, expected.startup_seconds),
        (projection.wall_seconds, expected.wall_seconds),
        (projection.task_hours, expected.task_hours),
        (projection.cost_usd, expected.cost_usd),
        (projection.spot_wall_seconds, expected.spot_wall_seconds),
        (projection.spot_task_hours, expected.spot_task_hours),
        (projection.spot_cost_usd, expected.spot_cost_usd),
    ] {
        assert!(close(got, want), "{projection:?} against {expected:?}");
    }
    assert_eq!(projection.frames, 12);
    assert!(projection.task_hours > 0.0 && projection.cost_usd > 0.0);
    assert!(projection.spot_cost_usd > 0.0 && projection.spot_cost_usd < projection.cost_usd);
    assert!(projection.wall_seconds >= model.startup_seconds() + total / projection.tasks as f64);
}
