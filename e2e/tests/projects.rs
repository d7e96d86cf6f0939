//! Projects, not just files: a Blender project synced to S3 with the AWS CLI (`aws s3 sync`),
//! its shot tagged (`aws s3api put-object-tagging`), the trigger's dependency gate on moto, and
//! the real renderer with Debian's Blender bringing the project down beside the `.blend`.
//!
//! The project (made by Blender at test time, `tests/projects/make_project.py`): a shot whose
//! left half is a plane showing `//tex/red.png`, whose right half is a plane linked from
//! `//../lib/props.blend` showing that library's own `//../shared/green.png`; a `<UDIM>` set and
//! an image sequence beside it; and the same shot with the texture's path made absolute.

use std::path::{Path, PathBuf};
use std::process::Command;

use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::{env, exit, JobKeys};
use farm_e2e::{bins, Farm, SubmittedJob};
use farm_testkit::TestBlender;
use trigger_lambda::RecordOutcome;

const BUCKET: &str = "farm-projects";
const SHOT: &str = "proj/shots/shot.blend";
const ABSOLUTE: &str = "proj/shots/absolute.blend";

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
/// What Cycles shows for an image it cannot load.
const MAGENTA: [u8; 3] = [255, 0, 255];

/// Builds the project under `dir` with Debian's Blender; returns `<dir>/proj`.
fn make_project(dir: &Path) -> PathBuf {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/projects/make_project.py"
    );
    let config = serde_json::json!({ "dir": dir }).to_string();
    let out = TestBlender::executable()
        .expect("Debian's blender")
        .script(Path::new(script), &[&config])
        .output()
        .expect("running blender");
    assert!(
        out.status.success(),
        "make_project.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("proj")
}

/// The RGB of pixel (x, y) of a PNG.
fn pixel(png_bytes: &[u8], x: usize, y: usize) -> [u8; 3] {
    farm_testkit::pixel(png_bytes, x, y).unwrap()
}

async fn tag(farm: &Farm, key: &str, tags: &str) {
    farm.aws()
        .run(&[
            "s3api",
            "put-object-tagging",
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--tagging",
            tags,
        ])
        .await
        .unwrap();
}

/// Delivers the waiting events; returns the outcomes of the records about `key`.
async fn outcomes_for(farm: &Farm, key: &str) -> Vec<RecordOutcome> {
    let mut found = Vec::new();
    for (_, report) in farm.deliver().await.unwrap() {
        for outcome in report.records {
            let about = match &outcome {
                RecordOutcome::Submitted { key: k, .. }
                | RecordOutcome::Rejected { key: k, .. }
                | RecordOutcome::Duplicate { key: k, .. }
                | RecordOutcome::NoFrameTag { key: k, .. } => k == key,
                _ => false,
            };
            if about {
                found.push(outcome);
            }
        }
    }
    found
}

async fn manifest(farm: &Farm, key: &str) -> JobManifest {
    serde_json::from_slice(&farm.get(key).await.unwrap()).unwrap()
}

/// Runs every child of the render job; returns their exits.
async fn render(farm: &Farm, job: &SubmittedJob) -> Vec<farm_e2e::Exited> {
    farm.run_render(job, &farm.moto.env(), &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_synced_project_renders_with_its_textures_and_libraries() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let project = make_project(&farm.path("artist"));
    let target = format!("s3://{BUCKET}/proj/");
    farm.aws()
        .run(&["s3", "sync", project.to_str().unwrap(), &target])
        .await
        .unwrap();
    // Untagged uploads submit nothing.
    for outcome in outcomes_for(&farm, SHOT).await {
        assert!(
            matches!(outcome, RecordOutcome::NoFrameTag { .. }),
            "{outcome:?}"
        );
    }

    tag(&farm, SHOT, "TagSet=[{Key=frame,Value=1}]").await;
    let outcomes = outcomes_for(&farm, SHOT).await;
    assert!(
        matches!(outcomes.as_slice(), [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
    let keys = JobKeys::new(SHOT);
    let job = manifest(&farm, &keys.manifest()).await;
    assert_eq!(job.status, ManifestStatus::Submitted);
    let deps = job
        .dependencies
        .clone()
        .expect("job.json records the dependencies");
    let listed: Vec<&str> = deps.files.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        listed,
        [
            "proj/lib/props.blend",
            "proj/shared/green.png",
            // Frame 1 loads only the first file of the sequence.
            "proj/shots/seq/f_0001.png",
            "proj/shots/tex/red.png",
            "proj/shots/tex/skin.1001.png",
            "proj/shots/tex/skin.1002.png",
        ],
        "{deps:#?}"
    );
    // Each is bound to the version in the bucket.
    let objects = farm.objects("proj/").await.unwrap();
    for file in &deps.files {
        assert_eq!(file.etag, objects[&file.key].etag, "{}", file.key);
    }
    assert_eq!(
        deps.files
            .iter()
            .find(|f| f.key == "proj/shared/green.png")
            .unwrap()
            .from,
        "proj/lib/props.blend"
    );
    assert!(
        deps.missing.is_empty() && deps.warnings.is_empty(),
        "{deps:#?}"
    );
    let (render_job, _) = farm.jobs_of(SHOT).await.unwrap();
    assert_eq!(render_job.var(env::DEPENDENCIES), deps.list.as_deref());

    for child in render(&farm, &render_job).await {
        child.assert_code(exit::SUCCESS);
    }
    let frame = farm.get(&keys.frame(1, "png")).await.unwrap();
    assert_eq!(
        pixel(&frame, 4, 12),
        RED,
        "the shot's own texture, not magenta"
    );
    assert_eq!(
        pixel(&frame, 28, 12),
        GREEN,
        "the linked library's texture from ../shared, not magenta"
    );

    // A dependency replaced after the check stops the job as superseded.
    tag(&farm, SHOT, "TagSet=[{Key=frames,Value=2}]").await;
    let outcomes = outcomes_for(&farm, SHOT).await;
    assert!(
        matches!(outcomes.as_slice(), [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
    let (render_job, _) = farm.jobs_of(SHOT).await.unwrap();
    farm.aws()
        .run(&[
            "s3",
            "cp",
            project.join("shots/tex/red.png").to_str().unwrap(),
            &format!("s3://{BUCKET}/proj/shared/green.png"),
        ])
        .await
        .unwrap();
    for child in render(&farm, &render_job).await {
        child.assert_code(exit::SUPERSEDED);
        assert!(child.log.contains("proj/shared/green.png"), "{}", child.log);
    }
    assert!(
        farm.get(&keys.frame(2, "png")).await.is_err(),
        "no frame from a superseded job"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_dependencies_are_named_before_any_job() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let project = make_project(&farm.path("artist"));
    farm.aws()
        .run(&[
            "s3",
            "sync",
            project.to_str().unwrap(),
            &format!("s3://{BUCKET}/proj/"),
        ])
        .await
        .unwrap();
    farm.deliver().await.unwrap();
    // One UDIM tile, one sequence file and the library's own texture are not uploaded.
    for key in [
        "proj/shots/tex/skin.1002.png",
        "proj/shots/seq/f_0002.png",
        "proj/shared/green.png",
    ] {
        farm.aws()
            .run(&["s3", "rm", &format!("s3://{BUCKET}/{key}")])
            .await
            .unwrap();
    }

    // Frame 2 loads f_0002.
    tag(&farm, SHOT, "TagSet=[{Key=frames,Value=2}]").await;
    let outcomes = outcomes_for(&farm, SHOT).await;
    let [RecordOutcome::Rejected { message, .. }] = outcomes.as_slice() else {
        panic!("expected a rejection: {outcomes:?}");
    };
    assert!(farm.jobs().await.unwrap().is_empty(), "no job submitted");
    let keys = JobKeys::new(SHOT);
    let job = manifest(&farm, &keys.manifest()).await;
    assert_eq!(job.status, ManifestStatus::Rejected);
    assert_eq!(job.message.as_deref(), Some(message.as_str()));
    let deps = job
        .dependencies
        .expect("the rejection lists the dependencies");
    let missing: Vec<(Option<&str>, &str, &str)> = deps
        .missing
        .iter()
        .map(|m| (m.key.as_deref(), m.path.as_str(), m.from.as_str()))
        .collect();
    assert_eq!(
        missing,
        [
            (
                Some("proj/shared/green.png"),
                "//../shared/green.png",
                "proj/lib/props.blend"
            ),
            (Some("proj/shots/seq/f_0002.png"), "//seq/f_0001.png", SHOT),
            (
                Some("proj/shots/tex/skin.1002.png"),
                "//tex/skin.<UDIM>.png",
                SHOT
            ),
        ],
        "{deps:#?}"
    );
    for key in [
        "proj/shared/green.png",
        "proj/shots/seq/f_0002.png",
        "proj/shots/tex/skin.1002.png",
    ] {
        assert!(
            message.contains(&format!("not found at `{key}`")),
            "{message}"
        );
    }

    // `missing=ok` renders anyway, with the list as warnings: the library's plane is magenta.
    tag(
        &farm,
        SHOT,
        "TagSet=[{Key=frame,Value=1},{Key=missing,Value=ok}]",
    )
    .await;
    let outcomes = outcomes_for(&farm, SHOT).await;
    assert!(
        matches!(outcomes.as_slice(), [RecordOutcome::Submitted { .. }]),
        "{outcomes:?}"
    );
    let job = manifest(&farm, &keys.manifest()).await;
    let deps = job.dependencies.expect("dependencies recorded");
    assert_eq!(deps.warnings.len(), 2, "{deps:#?}");
    assert!(
        deps.warnings
            .iter()
            .any(|w| w.contains("proj/shared/green.png")),
        "{deps:#?}"
    );
    assert!(
        deps.warnings
            .iter()
            .any(|w| w.contains("proj/shots/tex/skin.1002.png")),
        "{deps:#?}"
    );
    let (render_job, _) = farm.jobs_of(SHOT).await.unwrap();
    for child in render(&farm, &render_job).await {
        child.assert_code(exit::SUCCESS);
    }
    let frame = farm.get(&keys.frame(1, "png")).await.unwrap();
    assert_eq!(pixel(&frame, 4, 12), RED);
    assert_eq!(
        pixel(&frame, 28, 12),
        MAGENTA,
        "rendered without the missing texture"
    );

    // An absolute path cannot be found on a farm: rejected with the hint.
    tag(&farm, ABSOLUTE, "TagSet=[{Key=frame,Value=1}]").await;
    let outcomes = outcomes_for(&farm, ABSOLUTE).await;
    let [RecordOutcome::Rejected { message, .. }] = outcomes.as_slice() else {
        panic!("expected a rejection: {outcomes:?}");
    };
    assert!(message.contains("is an absolute path"), "{message}");
    assert!(
        message.contains("File > External Data > Make Paths Relative"),
        "{message}"
    );
    assert!(message.contains("shots/tex/red.png"), "{message}");
    let job = manifest(&farm, &JobKeys::new(ABSOLUTE).manifest()).await;
    assert_eq!(job.status, ManifestStatus::Rejected);
    let deps = job.dependencies.unwrap();
    let absolute: Vec<_> = deps.missing.iter().filter(|m| m.key.is_none()).collect();
    assert_eq!(absolute.len(), 1, "{deps:#?}");
    assert!(absolute[0].path.ends_with("shots/tex/red.png"), "{deps:#?}");
    assert_eq!(
        farm.jobs_of(ABSOLUTE).await.ok().map(|j| j.0.id),
        None,
        "no job for it"
    );
}

/// `farm submit ARGS --bucket BUCKET` against moto, run in the folder `cwd` (the project root
/// when the .blend lies below it).
fn farm_submit(farm: &Farm, cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(&bins().farm)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(farm.moto.env())
        .arg("submit")
        .args(args)
        .args(["--bucket", BUCKET])
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Delivers the waiting events: every `(event, key)` S3 sent about a `.blend` (the farm's
/// notification filter), sorted, and what the trigger made of the records about `key`.
async fn events_for(farm: &Farm, key: &str) -> (Vec<(String, String)>, Vec<RecordOutcome>) {
    let mut events = Vec::new();
    let mut outcomes = Vec::new();
    for (event, report) in farm.deliver().await.unwrap() {
        for record in &event.records {
            events.push((
                record.event_name.clone().unwrap_or_default(),
                record
                    .s3
                    .object
                    .key
                    .clone()
                    .unwrap_or_default()
                    .replace("%2F", "/"),
            ));
        }
        for outcome in report.records {
            let about = match &outcome {
                RecordOutcome::Submitted { key: k, .. }
                | RecordOutcome::Rejected { key: k, .. }
                | RecordOutcome::Duplicate { key: k, .. }
                | RecordOutcome::NoFrameTag { key: k, .. } => k == key,
                _ => false,
            };
            if about {
                outcomes.push(outcome);
            }
        }
    }
    events.sort();
    events.dedup();
    (events, outcomes)
}

/// Whether the trigger submitted exactly one job; moto also sends `ObjectTagging:Put` for an
/// upload carrying tags, which the trigger finds a duplicate of it.
fn one_submission(outcomes: &[RecordOutcome]) -> bool {
    let submitted = outcomes
        .iter()
        .filter(|o| matches!(o, RecordOutcome::Submitted { .. }))
        .count();
    submitted == 1
        && outcomes.iter().all(|o| {
            matches!(
                o,
                RecordOutcome::Submitted { .. } | RecordOutcome::Duplicate { .. }
            )
        })
}

/// How many versions of each object under `prefix` the (versioned) bucket holds: one more
/// for every upload, none for a tagging. The farm's own records of the jobs are left out.
async fn versions(farm: &Farm, prefix: &str) -> std::collections::BTreeMap<String, usize> {
    let listed = farm
        .aws()
        .json(&[
            "s3api",
            "list-object-versions",
            "--bucket",
            BUCKET,
            "--prefix",
            prefix,
        ])
        .await
        .unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for version in listed["Versions"].as_array().into_iter().flatten() {
        let key = version["Key"].as_str().unwrap().to_owned();
        if !key.contains(".blend/") {
            *counts.entry(key).or_insert(0) += 1;
        }
    }
    counts
}

fn once_each(keys: &[&str]) -> std::collections::BTreeMap<String, usize> {
    keys.iter().map(|k| ((*k).to_owned(), 1)).collect()
}

/// The project files the shot needs for frames 1-3, by key.
const SHOT_FILES: [&str; 8] = [
    "proj/lib/props.blend",
    "proj/shared/green.png",
    "proj/shots/seq/f_0001.png",
    "proj/shots/seq/f_0002.png",
    "proj/shots/seq/f_0003.png",
    "proj/shots/tex/red.png",
    "proj/shots/tex/skin.1001.png",
    "proj/shots/tex/skin.1002.png",
];

#[tokio::test(flavor = "multi_thread")]
async fn farm_submit_uploads_the_project_then_only_what_changed() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    // Versioning counts uploads: an upload of the same bytes is a new version.
    farm.aws()
        .run(&[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            BUCKET,
            "--versioning-configuration",
            "Status=Enabled",
        ])
        .await
        .unwrap();
    let project = make_project(&farm.path("artist"));
    let local = |key: &str| project.join(key.strip_prefix("proj/").unwrap());
    let shot = local(SHOT);
    let shot = shot.to_str().unwrap();
    let submit_shot = [shot, "--key", SHOT, "--frames", "1-3", "--chunk", "3"];

    // An absolute path: refused with the trigger's hint, nothing uploaded.
    let out = farm_submit(
        &farm,
        &project,
        &[
            local(ABSOLUTE).to_str().unwrap(),
            "--key",
            ABSOLUTE,
            "--frame",
            "1",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("absolute path"), "{stderr}");
    assert!(stderr.contains(farm_core::deps::ABSOLUTE_HINT), "{stderr}");
    assert!(stderr.contains("shots/tex/red.png"), "{stderr}");
    assert!(stderr.contains("nothing was uploaded"), "{stderr}");

    // A missing UDIM tile: refused, naming it, nothing uploaded.
    let tile = local("proj/shots/tex/skin.1002.png");
    let aside = farm.path("skin.1002.png");
    std::fs::rename(&tile, &aside).unwrap();
    let out = farm_submit(&farm, &project, &submit_shot);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} does not exist", tile.display())),
        "{stderr}"
    );
    assert!(stderr.contains("--missing-ok"), "{stderr}");
    std::fs::rename(&aside, &tile).unwrap();
    assert!(versions(&farm, "").await.is_empty(), "nothing uploaded");
    assert_eq!(events_for(&farm, SHOT).await, (Vec::new(), Vec::new()));

    // The whole project lands beside the shot's key, the shot last with its tags: one job,
    // bound to every file, rendering the textures.
    let out = farm_submit(&farm, &project, &submit_shot);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("project: uploaded 8 of 8 file(s)"),
        "{stdout}"
    );
    let mut everything = SHOT_FILES.to_vec();
    everything.push(SHOT);
    assert_eq!(versions(&farm, "").await, once_each(&everything));
    for key in &everything {
        assert_eq!(
            farm.get(key).await.unwrap(),
            std::fs::read(local(key)).unwrap(),
            "{key}"
        );
    }
    let (events, outcomes) = events_for(&farm, SHOT).await;
    assert!(
        events.contains(&("ObjectCreated:Put".to_owned(), SHOT.to_owned())),
        "{events:?}"
    );
    assert!(one_submission(&outcomes), "{outcomes:?}");
    let keys = JobKeys::new(SHOT);
    let job = manifest(&farm, &keys.manifest()).await;
    let deps = job.dependencies.expect("dependencies recorded");
    let bound: Vec<&str> = deps.files.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(bound, SHOT_FILES);
    let (render_job, _) = farm.jobs_of(SHOT).await.unwrap();
    for child in render(&farm, &render_job).await {
        child.assert_code(exit::SUCCESS);
    }
    let frame = farm.get(&keys.frame(1, "png")).await.unwrap();
    assert_eq!(pixel(&frame, 4, 12), RED);
    assert_eq!(pixel(&frame, 28, 12), GREEN);

    // Again, nothing changed: nothing uploaded, the shot only tagged; the trigger keeps its
    // job.
    let out = farm_submit(&farm, &project, &submit_shot);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("project: uploaded 0 of 8 file(s)"),
        "{stdout}"
    );
    assert_eq!(versions(&farm, "").await, once_each(&everything));
    let (events, outcomes) = events_for(&farm, SHOT).await;
    assert_eq!(events, [("ObjectTagging:Put".to_owned(), SHOT.to_owned())]);
    assert!(
        matches!(outcomes.as_slice(), [RecordOutcome::Duplicate { .. }]),
        "{outcomes:?}"
    );

    // One texture changed: only it goes up, and the new job is bound to it.
    std::fs::copy(
        local("proj/shared/green.png"),
        local("proj/shots/tex/red.png"),
    )
    .unwrap();
    let out = farm_submit(&farm, &project, &submit_shot);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("project: uploaded 1 of 8 file(s)"),
        "{stdout}"
    );
    let mut expected = once_each(&everything);
    expected.insert("proj/shots/tex/red.png".to_owned(), 2);
    assert_eq!(versions(&farm, "").await, expected);
    let (events, outcomes) = events_for(&farm, SHOT).await;
    assert_eq!(events, [("ObjectTagging:Put".to_owned(), SHOT.to_owned())]);
    assert!(
        matches!(outcomes.as_slice(), [RecordOutcome::Submitted { .. }]),
        "a changed dependency is a new request: {outcomes:?}"
    );
    // The new job is bound to the new texture.
    let job = manifest(&farm, &keys.manifest()).await;
    let red = job
        .dependencies
        .expect("dependencies recorded")
        .files
        .into_iter()
        .find(|f| f.key == "proj/shots/tex/red.png")
        .unwrap();
    assert_eq!(
        red.etag,
        farm.objects("proj/shots/tex/").await.unwrap()["proj/shots/tex/red.png"].etag
    );
    assert_eq!(
        farm.get(&red.key).await.unwrap(),
        std::fs::read(local(&red.key)).unwrap()
    );
    // Its render draws the new texture: the frame rendered with the old one is not this job's.
    let (render_job, _) = farm.jobs_of(SHOT).await.unwrap();
    for child in render(&farm, &render_job).await {
        child.assert_code(exit::SUCCESS);
    }
    let frame = farm.get(&keys.frame(1, "png")).await.unwrap();
    assert_eq!(
        pixel(&frame, 4, 12),
        GREEN,
        "rendered again with the new texture"
    );

    // A project synced with the AWS CLI is not sent again: only the tag goes.
    farm.aws()
        .run(&[
            "s3",
            "sync",
            project.to_str().unwrap(),
            &format!("s3://{BUCKET}/synced/"),
        ])
        .await
        .unwrap();
    farm.deliver().await.unwrap();
    let synced_before = versions(&farm, "synced/").await;
    let synced = "synced/shots/shot.blend";
    let out = farm_submit(&farm, &project, &[shot, "--key", synced, "--frame", "1"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("project: uploaded 0 of 6 file(s)"),
        "{stdout}"
    );
    assert_eq!(versions(&farm, "synced/").await, synced_before);
    let (events, _) = events_for(&farm, synced).await;
    assert_eq!(
        events,
        [("ObjectTagging:Put".to_owned(), synced.to_owned())]
    );

    // `--missing-ok`: the rest goes up and the shot is tagged `missing=ok`.
    std::fs::remove_file(local("proj/shared/green.png")).unwrap();
    let other = "other/shots/shot.blend";
    let out = farm_submit(
        &farm,
        &project,
        &[shot, "--key", other, "--frame", "1", "--missing-ok"],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("shared/green.png"), "{stderr}");
    assert!(stdout.contains("missing=ok"), "{stdout}");
    assert_eq!(
        versions(&farm, "other/").await,
        once_each(&[
            "other/lib/props.blend",
            "other/shots/seq/f_0001.png",
            "other/shots/shot.blend",
            "other/shots/tex/red.png",
            "other/shots/tex/skin.1001.png",
            "other/shots/tex/skin.1002.png",
        ])
    );
    let (_, outcomes) = events_for(&farm, other).await;
    assert!(one_submission(&outcomes), "{outcomes:?}");

    // `--strict` turns that warning into a refusal: nothing goes up.
    let strict = "strict/shots/shot.blend";
    let out = farm_submit(
        &farm,
        &project,
        &[
            shot,
            "--key",
            strict,
            "--frame",
            "1",
            "--missing-ok",
            "--strict",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--strict") && stderr.contains("shared/green.png"),
        "{stderr}"
    );
    assert!(versions(&farm, "strict/").await.is_empty());
}

#[tokio::test]
async fn farm_submit_refuses_a_scene_without_a_camera_before_uploading() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let blend = farm.scene(
        "nocam",
        &farm_testkit::SceneOptions {
            no_camera: true,
            ..farm_testkit::SceneOptions::default()
        },
    );
    let out = farm_submit(
        &farm,
        blend.parent().unwrap(),
        &[
            blend.to_str().unwrap(),
            "--key",
            "nocam/nocam.blend",
            "--frame",
            "1",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("scene `Scene` has no camera"), "{stderr}");
    assert!(
        versions(&farm, "nocam/").await.is_empty(),
        "nothing uploaded"
    );
    assert!(farm.jobs().await.unwrap().is_empty(), "no job submitted");
}

/// `farm submit` sends nothing from outside the project (RELIABILITY.md, "Hostile .blend"): a
/// texture path climbing out of it (to `../.aws/credentials` beside it, which `--key` at the
/// bucket's top would map to `.aws/credentials`), a texture shipped as a symlink to a file
/// elsewhere and a hidden folder are each refused by name, with the flag that widens the root,
/// and the bucket stays empty.
#[tokio::test(flavor = "multi_thread")]
async fn farm_submit_never_sends_a_file_from_outside_the_project() {
    bins();
    let farm = Farm::start(BUCKET).await.unwrap();
    let project = make_project(&farm.path("artist"));
    let artist = farm.path("artist");
    std::fs::create_dir_all(artist.join(".aws")).unwrap();
    std::fs::write(
        artist.join(".aws/credentials"),
        "aws_secret_access_key = fake",
    )
    .unwrap();
    let climbs = project.join("shots/climbs.blend");
    let climbs = climbs.to_str().unwrap();
    let refused = |out: &std::process::Output, needles: &[&str]| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}{}", text(&out.stdout));
        assert!(stderr.contains("nothing was uploaded"), "{stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{needle}: {stderr}");
        }
    };

    // The project is the current folder: the credentials climb out of it.
    let credentials = artist.join(".aws/credentials");
    let out = farm_submit(
        &farm,
        &project,
        &[climbs, "--key", "a/b/c.blend", "--frame", "1"],
    );
    refused(
        &out,
        &[
            &format!("{} is outside the project", credentials.display()),
            "climbs out of it",
            "--project DIR",
        ],
    );
    // Widened to the folder above, the credentials are in a hidden folder.
    let out = farm_submit(
        &farm,
        &project,
        &[
            climbs,
            "--key",
            "a/b/c.blend",
            "--frame",
            "1",
            "--project",
            "..",
        ],
    );
    refused(
        &out,
        &["is hidden (`.aws`)", "--include-hidden .aws/credentials"],
    );

    // The red texture shipped as a symlink to a file outside the project.
    let outside = artist.join("elsewhere.png");
    let red = project.join("shots/tex/red.png");
    std::fs::rename(&red, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &red).unwrap();
    let shot = project.join("shots/shot.blend");
    let out = farm_submit(
        &farm,
        &project,
        &[shot.to_str().unwrap(), "--key", SHOT, "--frame", "1"],
    );
    refused(
        &out,
        &[&format!(
            "{} is outside the project (a symlink to {})",
            red.display(),
            outside.canonicalize().unwrap().display()
        )],
    );
    // Run from a folder not above it, the project is the .blend's folder: `//../lib` climbs
    // out of it.
    let out = farm_submit(
        &farm,
        &project.join("shots/seq"),
        &[shot.to_str().unwrap(), "--key", SHOT, "--frame", "1"],
    );
    refused(
        &out,
        &["props.blend is outside the project", "--project DIR"],
    );
    assert!(versions(&farm, "").await.is_empty(), "nothing uploaded");

    // A symlink inside the project to a file inside it goes, as the file, and the plan is
    // printed before the upload.
    std::fs::remove_file(&red).unwrap();
    std::fs::copy(&outside, project.join("shots/tex/real-red.png")).unwrap();
    std::os::unix::fs::symlink("real-red.png", &red).unwrap();
    let out = farm_submit(
        &farm,
        &project,
        &[shot.to_str().unwrap(), "--key", SHOT, "--frame", "1"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let plan = stdout
        .find("plan (nothing is uploaded yet):")
        .expect(&stdout);
    assert!(plan < stdout.find("project: uploaded 6 of 6").expect(&stdout));
    assert!(stdout.contains("project:   6 file(s)"), "{stdout}");
    let root = project.canonicalize().unwrap();
    assert!(
        stdout.contains(&format!(
            "root:      {} (the current folder)",
            root.display()
        )),
        "{stdout}"
    );
    assert_eq!(
        farm.get("proj/shots/tex/red.png").await.unwrap(),
        std::fs::read(&outside).unwrap()
    );
}
