//! Projects, not just files: a Blender project synced to S3 with the AWS CLI (`aws s3 sync`),
//! its shot tagged (`aws s3api put-object-tagging`), the trigger's dependency gate on moto, and
//! the real renderer with Debian's Blender bringing the project down beside the `.blend`.
//!
//! The project (made by Blender at test time, `tests/projects/make_project.py`): a shot whose
//! left half is a plane showing `//tex/red.png`, whose right half is a plane linked from
//! `//../lib/props.blend` showing that library's own `//../shared/green.png`; a `<UDIM>` set and
//! an image sequence beside it; and the same shot with the texture's path made absolute.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use farm_core::manifest::{JobManifest, ManifestStatus};
use farm_core::{env, exit, JobKeys};
use farm_e2e::{bins, Farm, SubmittedJob};
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
    let blender = farm_testkit::blender().expect("Debian's blender");
    let config = serde_json::json!({ "dir": dir }).to_string();
    let out = Command::new(blender)
        .args([
            "-b",
            "--factory-startup",
            "--python-exit-code",
            "1",
            "--python",
            script,
            "--",
        ])
        .arg(config)
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
    let mut decoder = png::Decoder::new(Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let at = (y * info.width as usize + x) * channels;
    [pixels[at], pixels[at + 1], pixels[at + 2]]
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
