//! A movie scene through the production path (ADR 0012): the trigger submits a render, a zip
//! and a movie job; the real `renderer` binaries render the stills, the real `zipper` archives
//! them, and the `renderer` run as the movie job (on the render job definition, told
//! `FARM_MOVIE`) writes `<key>/<stem>.mkv` beside `frames.zip` from the frames with Debian's
//! Blender, checked with `ffprobe`.

use std::time::Instant;

use farm_core::receipt::{Prices, Receipt, MINIMUM_BILLED_SECONDS, RENDER_TASK_MEMORY_GB};
use farm_core::tasks::{TaskKind, TaskRecord};
use farm_core::{env, exit, JobKeys};
use farm_e2e::{bins, Farm, SceneOptions};

const BUCKET: &str = "farm-renders";

#[tokio::test(flavor = "multi_thread")]
async fn a_movie_scene_gets_its_movie_beside_frames_zip() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let scene = farm.scene(
        "film",
        &SceneOptions {
            end: 4,
            movie_fps: Some(12),
            ..SceneOptions::default()
        },
    );
    let key = "shots/film.blend";
    farm.upload_tagged(key, &scene, "frames=1-4&chunk=2").await;
    farm.deliver().await.unwrap();

    let (render, zip) = farm.jobs_of(key).await.unwrap();
    let movie = farm.movie_job_of(key).await.unwrap().expect("a movie job");
    assert_eq!(farm.jobs().await.unwrap().len(), 3);
    assert_eq!(movie.depends_on, std::slice::from_ref(&zip.id));
    assert_eq!(movie.definition, render.definition, "the renderer's image");
    assert_eq!(movie.array_size, None);
    assert_eq!(movie.var(env::MOVIE), Some("mkv"));
    assert_eq!(render.var(env::MOVIE), None);
    assert_eq!(render.var(env::FORMAT), Some("PNG"), "stills");

    let aws = farm.moto.env();
    let started = Instant::now();
    for child in farm.run_render(&render, &aws, &[]).await {
        child.assert_code(exit::SUCCESS);
    }
    let rendered = started.elapsed();
    farm.run_zip(&zip, &aws).await.assert_code(exit::SUCCESS);
    let zipped = started.elapsed() - rendered;
    let keys = JobKeys::new(key);
    let movie_key = keys.movie("mkv");
    assert_eq!(movie_key, "shots/film.blend/film.mkv");
    assert!(
        farm.get(&movie_key).await.is_err(),
        "no movie before its job"
    );
    let receipt_of_zip: Receipt =
        serde_json::from_slice(&farm.get(&keys.receipt()).await.unwrap()).unwrap();

    let movie_started = Instant::now();
    farm.spawn(&bins().renderer, &movie, None, &aws, &[])
        .wait()
        .await
        .assert_code(exit::SUCCESS);
    let made = movie_started.elapsed();
    // For BENCHMARKS.md ("movies"), with --nocapture; nothing depends on it.
    eprintln!(
        "movie job {:.1} s of {:.1} s (render job {:.1} s, zip job {:.1} s, movie job {:.1} s)",
        made.as_secs_f64(),
        (rendered + zipped + made).as_secs_f64(),
        rendered.as_secs_f64(),
        zipped.as_secs_f64(),
        made.as_secs_f64()
    );
    let objects = farm.objects(&movie_key).await.unwrap();
    let size = u64::try_from(objects[&movie_key].size).unwrap();
    assert!(farm.open_uploads().await.unwrap().is_empty());

    let download = farm.path("download");
    std::fs::create_dir_all(&download).unwrap();
    farm.aws()
        .run_in(
            &download,
            &["s3", "cp", &format!("s3://{BUCKET}/{movie_key}"), "./"],
        )
        .await
        .unwrap();
    let probe = farm_testkit::probe_movie(&download.join("film.mkv")).unwrap();
    assert_eq!(probe["format"]["format_name"], "matroska,webm", "{probe}");
    let streams = probe["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "video only: {probe}");
    let video = &streams[0];
    assert_eq!(video["codec_type"], "video", "{probe}");
    assert_eq!(video["codec_name"], "h264", "{probe}");
    assert_eq!(video["nb_read_frames"], "4", "{probe}");
    assert_eq!(video["r_frame_rate"], "12/1", "{probe}");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(32), Some(24))
    );

    let receipt: Receipt =
        serde_json::from_slice(&farm.get(&keys.receipt()).await.unwrap()).unwrap();
    let named = receipt.movie.as_ref().expect("the receipt names the movie");
    assert_eq!((named.key.as_str(), named.size), (movie_key.as_str(), size));

    // The movie job's task record, counted in the receipt at the render definition's size.
    let record: TaskRecord =
        serde_json::from_slice(&farm.get(&keys.movie_task_record(1)).await.unwrap()).unwrap();
    assert_eq!(
        (record.task, record.exit_code),
        (TaskKind::Movie, exit::SUCCESS)
    );
    assert_eq!(
        (receipt.frames, receipt.tasks, receipt.attempts),
        (
            receipt_of_zip.frames,
            receipt_of_zip.tasks + 1,
            receipt_of_zip.attempts + 1
        )
    );
    let seconds = receipt.task_seconds - receipt_of_zip.task_seconds;
    assert!((seconds - record.seconds()).abs() < 0.002, "{receipt:?}");
    let prices = Prices::for_region("us-east-1", None, None).unwrap();
    let hours = record.seconds().max(MINIMUM_BILLED_SECONDS) / 3600.0;
    let vcpus = f64::from(farm_core::plan::RENDER_TASK_VCPUS);
    let movie_cost = hours * (vcpus * prices.vcpu_hour + RENDER_TASK_MEMORY_GB * prices.gb_hour);
    let cost = receipt.cost_usd.unwrap() - receipt_of_zip.cost_usd.unwrap();
    assert!(
        (cost - movie_cost).abs() < 2e-4,
        "{cost} against {movie_cost}"
    );
    assert!(receipt.wall_seconds >= receipt_of_zip.wall_seconds + record.seconds() - 0.002);
}
