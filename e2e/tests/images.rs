//! The production images run as AWS Batch runs them. `infra/images.sh build` builds
//! `localhost/farm-renderer:dev` (Blender 4.2 LTS from PyPI) and `localhost/farm-zipper:dev`
//! from the repository's Dockerfiles with buildah; podman then runs the renderer image once per
//! array index of a job the real trigger submitted to moto, with the render job definition's
//! environment from `infra/farm.yaml` plus the job's overrides and Batch's own variables, the
//! image's own entrypoint and user, on the host network (moto listens on 127.0.0.1). The frames
//! must land in moto and match what bare `bpy` 4.2 renders from the same file; the zipper image
//! then writes `frames.zip`. A SIGTERM to a running renderer container ends it with 143 and
//! Blender gone.
//!
//! Needs buildah, podman and debootstrap (scripts/setup-images.sh) and `scripts/bpy-venv.sh`.
//! The first build takes minutes (base image, bpy download); later ones reuse buildah's layer
//! cache and ~/.cache/blender-farm.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use farm_core::{env, exit, JobKeys};
use farm_e2e::{assert_frames, bins, read_zip, Farm, SceneOptions, SubmittedJob};

const RENDERER_IMAGE: &str = "localhost/farm-renderer:dev";
const ZIPPER_IMAGE: &str = "localhost/farm-zipper:dev";
const BPY: &str = "4.2.23";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate is in the workspace")
        .to_path_buf()
}

/// Builds both images once per test process from the binaries this test run built.
fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let binaries = bins()
            .renderer
            .parent()
            .expect("binaries are in a folder")
            .to_path_buf();
        let started = Instant::now();
        let status = Command::new(repo().join("infra/images.sh"))
            .args(["build", "--binaries"])
            .arg(&binaries)
            .current_dir(repo())
            .stdin(Stdio::null())
            .status()
            .expect("running infra/images.sh");
        assert!(status.success(), "infra/images.sh build failed: {status}");
        eprintln!("images: built in {:?}", started.elapsed());
    });
}

/// The `Environment` of a job definition in `infra/farm.yaml`, as Batch gives it to the
/// container of a stack deployed with the default parameters (an `Fn::If` list, such as the zip
/// job's price overrides, takes its `else` branch).
fn job_definition_env(resource: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("infra/farm.yaml")).unwrap();
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut environment =
        &template["Resources"][resource]["Properties"]["ContainerProperties"]["Environment"];
    if let Some(branches) = environment.get("Fn::If") {
        environment = &branches[2];
    }
    let list = environment
        .as_sequence()
        .unwrap_or_else(|| panic!("{resource} has no Environment list: {environment:?}"));
    // A value may be a stack parameter (`!Ref FrameTimeoutSeconds`): its default, as a stack
    // created without it would set.
    let value_of = |value: &serde_yaml_ng::Value| -> Option<String> {
        if let Some(text) = value.as_str() {
            return Some(text.to_owned());
        }
        let parameter = value.get("Ref")?.as_str()?;
        let default = &template["Parameters"][parameter]["Default"];
        default
            .as_str()
            .map(str::to_owned)
            .or_else(|| default.as_u64().map(|n| n.to_string()))
    };
    list.iter()
        .map(|pair| {
            let name = pair["Name"].as_str().expect("a Name");
            let value = value_of(&pair["Value"]).unwrap_or_else(|| {
                panic!(
                    "{resource}: {name} is neither a plain string nor a parameter with a default"
                )
            });
            (name.to_owned(), value)
        })
        .collect()
}

/// The hard limit of open files here: podman's default (1048576) cannot be set on this machine,
/// so containers get the host's (Fargate's default is 65535).
fn ulimit_args() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1024)
        .min(65_535);
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        "nproc=4096:4096".into(),
    ]
}

/// A container started with `podman run`; removed when dropped.
struct Container {
    name: String,
    run: Option<tokio::process::Child>,
}

impl Container {
    /// `podman run` of `image` with exactly `env` (no entrypoint, user or command given: the
    /// image's own), on the host network.
    fn start(image: &str, env: &[(String, String)]) -> Container {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "farm-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut command = tokio::process::Command::new("podman");
        command
            .args(["run", "--rm", "--name", &name, "--network", "host"])
            .args(ulimit_args());
        for (k, v) in env {
            command.arg("--env").arg(format!("{k}={v}"));
        }
        let run = command
            .arg(image)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting podman run");
        Container {
            name,
            run: Some(run),
        }
    }

    /// Waits for the container to exit: its exit code and its log (stderr, JSON lines).
    async fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let name = self.name.clone();
        let run = self.run.take().expect("waited for once");
        let output = tokio::time::timeout(limit, run.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("container {name} still running after {limit:?}"))
            .expect("waiting for podman run");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Host PIDs and command lines of the container's processes (`podman top`).
    fn processes(&self) -> Vec<(u32, String)> {
        let out = Command::new("podman")
            .args(["top", &self.name, "hpid", "args"])
            .output()
            .expect("podman top");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (pid, args) = line.trim().split_once(char::is_whitespace)?;
                Some((pid.parse().ok()?, args.trim().to_owned()))
            })
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--time", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Batch's environment for one child of `job` under `definition`: the job definition's
/// variables, the submitted overrides (which win), Batch's own, and the task role's credentials
/// (here moto's, with its endpoint).
fn batch_env(
    farm: &Farm,
    definition: &str,
    job: &SubmittedJob,
    index: Option<usize>,
) -> Vec<(String, String)> {
    let mut vars = job_definition_env(definition);
    for (k, v) in &job.env {
        vars.retain(|(name, _)| name != k);
        vars.push((k.clone(), v.clone()));
    }
    let id = match index {
        Some(i) => format!("{}:{i}", job.id),
        None => job.id.clone(),
    };
    vars.push((env::BATCH_JOB_ID.to_owned(), id));
    if let Some(i) = index {
        vars.push((env::ARRAY_INDEX.to_owned(), i.to_string()));
    }
    vars.extend(farm.moto.env());
    vars
}

/// Uploads `scene` tagged `tagging` with the AWS CLI and hands the events to the trigger;
/// returns the render and zip jobs it submitted.
async fn submit(
    farm: &Farm,
    scene: &Path,
    key: &str,
    tagging: &str,
) -> (SubmittedJob, SubmittedJob) {
    farm.upload_tagged(key, scene, tagging).await;
    farm.deliver().await.unwrap();
    farm.jobs_of(key).await.unwrap()
}

/// RGB8 pixels and size of a PNG.
fn pixels(png_bytes: &[u8]) -> (Vec<u8>, (u32, u32)) {
    let mut decoder = png::Decoder::new(Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (buf, (info.width, info.height))
}

/// Renders `frames` of `scene` with bare `bpy` (scripts/bpy-venv.sh) into `out/NNNN.png`: what
/// Blender itself makes of the file, without the farm.
fn bpy_render(scene: &Path, frames: &[i32], out: &Path) {
    let venv = Command::new(repo().join("scripts/bpy-venv.sh"))
        .arg(BPY)
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/bpy-venv.sh");
    assert!(venv.status.success(), "scripts/bpy-venv.sh {BPY} failed");
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_owned();
    const SCRIPT: &str = "import sys, bpy\n\
        blend, out, *frames = sys.argv[1:]\n\
        bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False, use_scripts=False)\n\
        scene = bpy.context.scene\n\
        for f in frames:\n\
        \x20   scene.frame_set(int(f))\n\
        \x20   scene.render.filepath = f'{out}/{int(f):04d}.png'\n\
        \x20   bpy.ops.render.render(write_still=True)\n";
    std::fs::create_dir_all(out).unwrap();
    let rendered = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(scene)
        .arg(out)
        .args(frames.iter().map(i32::to_string))
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "bpy render failed: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_images_render_and_zip_a_job_as_batch_runs_them() {
    images();
    let farm = Farm::start("farm-images").await.unwrap();
    let scene = farm.scene(
        "scene",
        &SceneOptions {
            end: 4,
            ..SceneOptions::default()
        },
    );
    let key = "shots/in a container.blend";
    let (render, zip) = submit(&farm, &scene, key, "frames=1-4&chunk=2").await;
    assert_eq!(render.array_size, Some(2), "{render:?}");

    // Every child at once, as Batch starts them.
    let containers: Vec<(Option<usize>, Container)> = render
        .indexes()
        .into_iter()
        .map(|index| {
            let vars = batch_env(&farm, "RenderJobDefinition42", &render, index);
            (index, Container::start(RENDERER_IMAGE, &vars))
        })
        .collect();
    for (index, container) in containers {
        let (code, log) = container.wait(Duration::from_secs(600)).await;
        assert_eq!(
            code,
            Some(exit::SUCCESS),
            "renderer child {index:?}:\n{log}"
        );
    }

    // The frames in moto are what Blender itself renders from the same file.
    let frames = [1, 2, 3, 4];
    let reference = farm.path("bpy-reference");
    bpy_render(&scene, &frames, &reference);
    let keys = JobKeys::new(key);
    for frame in frames {
        let uploaded = farm.get(&keys.frame(frame, "png")).await.unwrap();
        let own = std::fs::read(reference.join(format!("{frame:04}.png"))).unwrap();
        let ((got, got_size), (want, want_size)) = (pixels(&uploaded), pixels(&own));
        assert_eq!(got_size, want_size, "frame {frame}: size");
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        assert!(
            worst <= 2,
            "frame {frame} differs from bpy's render by up to {worst}"
        );
    }

    let vars = batch_env(&farm, "ZipJobDefinition", &zip, None);
    let (code, log) = Container::start(ZIPPER_IMAGE, &vars)
        .wait(Duration::from_secs(300))
        .await;
    assert_eq!(code, Some(exit::SUCCESS), "zipper:\n{log}");
    let download = farm.path("frames.zip");
    std::fs::write(&download, farm.get(&keys.zip()).await.unwrap()).unwrap();
    let entries = read_zip(&download).await.unwrap();
    assert_frames(&entries, &frames, (32, 24));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_renderer_container_with_143_and_blender_gone() {
    images();
    let farm = Farm::start("farm-images-stop").await.unwrap();
    // Slow frames: Blender is still rendering the first when the signal comes.
    let scene = farm.scene(
        "slow",
        &SceneOptions {
            end: 2,
            width: 320,
            height: 240,
            samples: 100_000,
            ..SceneOptions::default()
        },
    );
    let key = "slow.blend";
    let (render, _) = submit(&farm, &scene, key, "frames=1-2&chunk=2").await;
    assert_eq!(render.array_size, None, "one chunk: a plain job");
    let vars = batch_env(&farm, "RenderJobDefinition42", &render, None);
    let container = Container::start(RENDERER_IMAGE, &vars);

    // Blender runs as the bpy Python in the image.
    let deadline = Instant::now() + Duration::from_secs(120);
    let blender = loop {
        let found = container
            .processes()
            .into_iter()
            .find(|(_, args)| args.contains("/opt/bpy/bin/python"));
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "Blender never started in the container"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    // What ECS does on a Batch cancel or a Spot reclaim: SIGTERM to the container's PID 1.
    let killed = Command::new("podman")
        .args(["kill", "--signal", "TERM", &container.name])
        .output()
        .unwrap();
    assert!(
        killed.status.success(),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let (code, log) = container.wait(Duration::from_secs(30)).await;
    assert_eq!(code, Some(exit::INTERRUPTED), "log:\n{log}");
    assert!(
        !Path::new(&format!("/proc/{}", blender.0)).exists(),
        "Blender ({blender:?}) outlived the container"
    );
    assert!(log.contains("interrupted"), "{log}");
    assert!(
        farm.objects(&JobKeys::new(key).frames_prefix())
            .await
            .unwrap()
            .is_empty(),
        "no frame was finished, none may be uploaded"
    );
}

/// `FARM_TEST_IMAGE_SERIES`: the renderer images the ignored test below runs, each `SERIES` (the
/// image `infra/images.sh build --blender SERIES` tags: `localhost/farm-renderer:dev-SERIES`) or
/// `SERIES=IMAGE`; default `5.3` (`scripts/test-series.sh --images`).
const IMAGE_SERIES_ENV: &str = "FARM_TEST_IMAGE_SERIES";

/// A `python` on the host that runs the bpy Python of `image` (as root, no network, the test's
/// folder and the test kit's scene scripts mounted at their own paths): the test kit's scene
/// scripts then save files with the image's own Blender.
fn image_python(image: &str, dir: &Path) -> PathBuf {
    let scripts = repo().join("farm-testkit/scenes");
    let wrapper = dir.join("image-python");
    let body = format!(
        "#!/bin/sh\nexec podman run --rm --network none --user 0:0 {limits} \
         --entrypoint /opt/bpy/bin/python -v '{s}:{s}:ro' -v '{d}:{d}' '{image}' \"$@\"\n",
        limits = ulimit_args().join(" "),
        s = scripts.display(),
        d = dir.display()
    );
    std::fs::write(&wrapper, body).unwrap();
    let mut permissions = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&wrapper, permissions).unwrap();
    wrapper
}

/// The renderer image of a series (built beforehand: about 1 GB each) renders, as Batch runs it,
/// a file saved by its own Blender (made inside the image) with Cycles, then with EEVEE through
/// Mesa's llvmpipe (`engine=eevee`): the frames land in moto, each showing its own frame number;
/// then a movie scene's movie job ([`movie_job_in_image`]). About 2 minutes per image on the
/// 2-CPU machine, most of it EEVEE compiling its shaders.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the series' renderer images: run by scripts/test-series.sh --images"]
async fn each_series_image_renders_a_file_saved_by_its_own_blender() {
    let asked = std::env::var(IMAGE_SERIES_ENV).unwrap_or_else(|_| "5.3".to_owned());
    for item in asked.split([' ', ',']).filter(|s| !s.is_empty()) {
        let started = Instant::now();
        let (series, image) = match item.split_once('=') {
            Some((series, image)) => (series, image.to_owned()),
            None => (item, format!("localhost/farm-renderer:dev-{item}")),
        };
        let parsed: farm_core::BlenderSeries = series.parse().unwrap();
        let exists = Command::new("podman")
            .args(["image", "exists", &image])
            .status()
            .unwrap();
        assert!(
            exists.success(),
            "{image} is missing: build it with infra/images.sh build --blender {series}"
        );
        let farm = Farm::start("farm-series-image").await.unwrap();
        let dir = farm.path("scenes");
        std::fs::create_dir_all(&dir).unwrap();
        // The image's build checked that its bpy is the series: the file is a `series` file.
        let blender = farm_testkit::TestBlender {
            name: format!("the bpy of {image}"),
            blender: farm_core::blender::Blender::PythonModule(image_python(&image, &dir)),
            series: Some(parsed),
        };
        let options = SceneOptions {
            end: 2,
            ..SceneOptions::default()
        };
        let scene = farm_testkit::make_scene_with(&blender, &dir, "saved", &options).unwrap();

        let definition = format!("RenderJobDefinition{}", series.replace('.', ""));
        for (engine, tagging, frames) in [
            ("cycles", "frames=1-2&chunk=2", &[1, 2][..]),
            ("eevee", "frames=1&engine=eevee", &[1][..]),
        ] {
            let key = format!("series/{series}-{engine}.blend");
            let (render, _) = submit(&farm, &scene, &key, tagging).await;
            let vars = batch_env(&farm, &definition, &render, None);
            let (code, log) = Container::start(&image, &vars)
                .wait(Duration::from_secs(900))
                .await;
            assert_eq!(code, Some(exit::SUCCESS), "{image}, {engine}:\n{log}");
            let keys = JobKeys::new(&key);
            for &frame in frames {
                let uploaded = farm.get(&keys.frame(frame, "png")).await.unwrap();
                assert_eq!(
                    farm_e2e::frame_code(&uploaded).unwrap(),
                    frame,
                    "{image}, {engine}"
                );
                assert_eq!(pixels(&uploaded).1, (32, 24), "{image}, {engine}: {frame}");
            }
            eprintln!("{image}: {engine} checked after {:?}", started.elapsed());
        }
        movie_job_in_image(&farm, &blender, &image, series, &definition).await;
        eprintln!("{image}: movie checked after {:?}", started.elapsed());
    }
}

/// The movie job in a renderer image (ADR 0012): a movie scene saved by the image's own Blender
/// (MKV, H.264, 12 fps) has its frames rendered in the image and zipped, then the movie job runs
/// in the image as Batch runs it and encodes them with the FFmpeg of the image's bpy (the wheel
/// as the Dockerfile trims it): `ffprobe` reads the container, codec and frames it asked for,
/// and the receipt counts the movie job.
async fn movie_job_in_image(
    farm: &Farm,
    blender: &farm_testkit::TestBlender,
    image: &str,
    series: &str,
    definition: &str,
) {
    let options = SceneOptions {
        end: 3,
        movie_fps: Some(12),
        ..SceneOptions::default()
    };
    let dir = farm.path("scenes");
    let scene = farm_testkit::make_scene_with(blender, &dir, "film", &options).unwrap();
    let key = format!("series/{series}-film.blend");
    let (render, zip) = submit(farm, &scene, &key, "frames=1-3&chunk=3").await;
    let movie = farm.movie_job_of(&key).await.unwrap().expect("a movie job");
    let vars = batch_env(farm, definition, &render, None);
    let (code, log) = Container::start(image, &vars)
        .wait(Duration::from_secs(900))
        .await;
    assert_eq!(code, Some(exit::SUCCESS), "{image}, movie scene:\n{log}");
    farm.run_zip(&zip, &farm.moto.env())
        .await
        .assert_code(exit::SUCCESS);

    let started = Instant::now();
    let vars = batch_env(farm, definition, &movie, None);
    let (code, log) = Container::start(image, &vars)
        .wait(Duration::from_secs(900))
        .await;
    assert_eq!(code, Some(exit::SUCCESS), "{image}, movie job:\n{log}");
    // For the report and BENCHMARKS.md, with --nocapture; nothing depends on it.
    eprintln!("{image}: movie job container {:?}", started.elapsed());

    let keys = JobKeys::new(&key);
    let file = dir.join(format!("{series}-film.mkv"));
    std::fs::write(&file, farm.get(&keys.movie("mkv")).await.unwrap()).unwrap();
    let probe = farm_testkit::probe_movie(&file).unwrap();
    assert_eq!(probe["format"]["format_name"], "matroska,webm", "{probe}");
    let video = &probe["streams"][0];
    assert_eq!(video["codec_name"], "h264", "{image}: {probe}");
    assert_eq!(video["nb_read_frames"], "3", "{image}: {probe}");
    assert_eq!(video["r_frame_rate"], "12/1", "{image}: {probe}");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(32), Some(24))
    );
    let receipt: farm_core::receipt::Receipt =
        serde_json::from_slice(&farm.get(&keys.receipt()).await.unwrap()).unwrap();
    assert!(receipt.movie.is_some(), "{receipt:?}");
    let record: farm_core::tasks::TaskRecord =
        serde_json::from_slice(&farm.get(&keys.movie_task_record(1)).await.unwrap()).unwrap();
    assert_eq!(record.exit_code, exit::SUCCESS, "{record:?}");
}
