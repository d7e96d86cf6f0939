//! A stereo scene saving each view to its own file, through the production path: the trigger
//! reads the views from the upload and tells the jobs (`FARM_VIEWS`), the real `renderer`
//! binaries upload both view files of every frame (`frames/0001_L.png`, `frames/0001_R.png`),
//! and the real `zipper` archives all of them; a frame with one view file gone is missing, and
//! `missing.json` names the view.

use farm_core::{env, exit, JobKeys};
use farm_e2e::{bins, read_zip, Farm, SceneOptions};

const BUCKET: &str = "farm-renders";

#[tokio::test(flavor = "multi_thread")]
async fn a_stereo_scene_keeps_both_views_of_every_frame() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let scene = farm.scene(
        "stereo",
        &SceneOptions {
            end: 3,
            stereo: true,
            ..SceneOptions::default()
        },
    );
    let key = "shots/stereo.blend";
    farm.upload_tagged(key, &scene, "frames=1-3&chunk=2").await;
    farm.deliver().await.unwrap();
    let (render, zip) = farm.jobs_of(key).await.unwrap();
    assert_eq!(render.var(env::VIEWS), Some("_L,_R"));
    assert_eq!(zip.var(env::VIEWS), Some("_L,_R"));

    let aws = farm.moto.env();
    for child in farm.run_render(&render, &aws, &[]).await {
        child.assert_code(exit::SUCCESS);
    }
    let keys = JobKeys::new(key);
    let expected: Vec<String> = (1..=3)
        .flat_map(|frame| ["_L", "_R"].map(|view| format!("{frame:04}{view}.png")))
        .collect();
    let objects = farm.objects(&keys.frames_prefix()).await.unwrap();
    let names: Vec<&str> = objects
        .keys()
        .map(|k| k.strip_prefix(&keys.frames_prefix()).unwrap())
        .collect();
    assert_eq!(names, expected);

    farm.run_zip(&zip, &aws).await.assert_code(exit::SUCCESS);
    let archive = farm.path("frames.zip");
    std::fs::write(&archive, farm.get(&keys.zip()).await.unwrap()).unwrap();
    let entries: Vec<String> = read_zip(&archive)
        .await
        .unwrap()
        .into_iter()
        .map(|(name, bytes)| {
            assert!(farm_testkit::pixel(&bytes, 0, 0).is_ok(), "{name}: a PNG");
            name
        })
        .collect();
    assert_eq!(entries, expected, "every view of every frame, in order");

    // One view file gone: its frame is missing, and the zip job says which view.
    farm.aws()
        .run(&[
            "s3",
            "rm",
            &format!("s3://{BUCKET}/{}", keys.view_frame(2, "_R", "png")),
        ])
        .await
        .unwrap();
    let failed = farm.run_zip(&zip, &aws).await;
    assert_ne!(failed.code, Some(exit::SUCCESS), "{}", failed.log);
    assert!(
        failed.log.contains("frame 2 has no view file _R"),
        "{}",
        failed.log
    );
    let missing: serde_json::Value =
        serde_json::from_slice(&farm.get(&keys.missing()).await.unwrap()).unwrap();
    assert_eq!(missing["missing"], serde_json::json!([2]), "{missing}");
    assert_eq!(
        missing["missing_views"],
        serde_json::json!([{"frame": 2, "views": ["_R"]}]),
        "{missing}"
    );
    assert!(farm.get(&keys.zip()).await.is_err(), "no stale archive");
}
