//! A hostile .blend can do nothing (RELIABILITY.md, "Hostile .blend").
//!
//! One scene per vector, made at test time by the Blender under test (Debian's 3.4 executable
//! and each official bpy module under test: 4.2.23 and 5.0.1 by default, any others with
//! `FARM_TEST_BPY`, see `scripts/test-series.sh`): Freestyle in Python Scripting mode, a registered text
//! block, a Python driver expression, File Output nodes at an absolute path, at `//../..` and
//! posing as the renderer's `frame_` files. Each goes through `farm render` and through the
//! `renderer` binary (against moto), both with fake AWS credentials in their environment. A run
//! fails the test if a marker file appears, if any file appears in the test's folder outside the
//! run's output and work folders, or if a frame differs from Blender's own render of the scene
//! (made from the same scene without the hostile part, by the same Blender).
//!
//! A last test replaces Blender by a probe that runs as code from a .blend would, and shows it
//! finds no credentials: not in its environment, and not in its parent's `/proc/<pid>/environ`
//! when read without `CAP_SYS_PTRACE` (as the container's user reads it; the tests run as root).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use farm_core::blender::Blender;
use farm_core::JobKeys;
use farm_io::S3Storage;
use farm_testkit::{make_scene_with, FileOutput, Moto, Pipe, SceneOptions, TestBlender};

const BUCKET: &str = "hostile";
const KEY: &str = "uploads/hostile.blend";
/// Credentials a compromised Blender must not see (moto's own are fake as well).
const FAKE_SECRETS: [(&str, &str); 2] = [
    ("AWS_SESSION_TOKEN", "fake-session-token-that-must-not-leak"),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "/v2/credentials/fake-uri-that-must-not-leak",
    ),
];

/// One test's folder: everything a run may touch is under it, so any file that appears is seen.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// The renderer's work folder (FARM_WORK_DIR); it downloads the scene to `scene.blend` in it.
    fn renderer_work(&self) -> PathBuf {
        self.path("r/w/work")
    }
    fn markers(&self) -> PathBuf {
        self.path("markers")
    }
    /// Every file under the root.
    fn files(&self) -> BTreeSet<PathBuf> {
        fn walk(dir: &Path, into: &mut BTreeSet<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&path, into);
                } else {
                    into.insert(path);
                }
            }
        }
        let mut files = BTreeSet::new();
        walk(self.dir.path(), &mut files);
        files
    }
}

/// The hostile part of a scene, given the test's folder.
type Vector = fn(&Root) -> SceneOptions;

fn freestyle(root: &Root) -> SceneOptions {
    SceneOptions {
        freestyle_marker: Some(root.markers().join("freestyle ran")),
        ..small()
    }
}
fn text_block(root: &Root) -> SceneOptions {
    SceneOptions {
        autorun_marker: Some(root.markers().join("text block ran")),
        ..small()
    }
}
fn driver(root: &Root) -> SceneOptions {
    SceneOptions {
        driver_marker: Some(root.markers().join("driver ran")),
        ..small()
    }
}
fn file_output(base_path: String, slot: &str) -> SceneOptions {
    SceneOptions {
        file_outputs: vec![FileOutput {
            base_path,
            slot: slot.to_owned(),
        }],
        ..small()
    }
}
fn file_output_absolute(root: &Root) -> SceneOptions {
    file_output(format!("{}/", root.path("escaped").display()), "absolute_")
}
fn file_output_up(_: &Root) -> SceneOptions {
    file_output("//../..".to_owned(), "up/../../up_")
}
/// Into the renderer's own output folder as `frame_0001.png`, an inverted image: before the fix
/// the renderer took it for frame 1. (Under `farm render` that folder is outside its folders.)
fn file_output_posing_as_a_frame(root: &Root) -> SceneOptions {
    file_output(
        format!("{}/", root.renderer_work().join("out").display()),
        "frame_",
    )
}

fn small() -> SceneOptions {
    SceneOptions {
        start: 1,
        end: 2,
        width: 16,
        height: 12,
        samples: 1,
        ..SceneOptions::default()
    }
}

/// The same scene without its hostile part.
fn clean(options: &SceneOptions) -> SceneOptions {
    SceneOptions {
        autorun_marker: None,
        freestyle_marker: None,
        driver_marker: None,
        file_outputs: Vec::new(),
        ..options.clone()
    }
}

/// Pixels of a PNG, to compare renders by content.
fn pixels(png: &[u8]) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    buf
}

/// Blender's own render of frame 1 of `scene`, opened with its scripts disabled.
fn own_render(blender: &TestBlender, scene: &Path, out: &Path) -> Vec<u8> {
    let output = own_render_output(blender, scene, out);
    assert!(output.status.success(), "{}", text(&output));
    pixels(&std::fs::read(out.join("frame_1.png")).unwrap())
}

/// Blender rendering frame 1 of `scene` itself (scripts disabled) into `out/frame_1.png`.
fn own_render_output(blender: &TestBlender, scene: &Path, out: &Path) -> Output {
    std::fs::create_dir_all(out).unwrap();
    let script = out.join("own_render.py");
    std::fs::write(
        &script,
        "import sys, bpy\n\
         scene_path, out = sys.argv[sys.argv.index('--') + 1:]\n\
         bpy.ops.wm.open_mainfile(filepath=scene_path, load_ui=False, use_scripts=False)\n\
         s = bpy.context.scene\n\
         s.frame_set(1)\n\
         s.render.filepath = out\n\
         bpy.ops.render.render(write_still=True)\n\
         sys.stdout.flush()\n\
         __import__('os')._exit(0)\n",
    )
    .unwrap();
    let target = out.join("frame_1");
    blender
        .script(
            &script,
            &[scene.to_str().unwrap(), target.to_str().unwrap()],
        )
        .output()
        .unwrap()
}

/// Blender's own render of the scene without its hostile part, made once per Blender and scene
/// settings for the whole test process.
fn reference(blender: &TestBlender, options: &SceneOptions) -> Vec<u8> {
    static CACHE: Mutex<Vec<(String, String, Vec<u8>)>> = Mutex::new(Vec::new());
    let settings = format!("{options:?}");
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, pixels)) = cache
        .iter()
        .find(|(name, s, _)| *name == blender.name && *s == settings)
    {
        return pixels.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let scene = make_scene_with(blender, dir.path(), "clean", options).unwrap();
    let pixels = own_render(blender, &scene, &dir.path().join("own"));
    cache.push((blender.name.clone(), settings, pixels.clone()));
    pixels
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Adds the Blender under test, fake credentials and nothing else of ours to a command.
fn with_blender_and_secrets(command: &mut Command, blender: &TestBlender) {
    let (var, value) = blender.env();
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(FAKE_SECRETS)
        .env(var, value)
        .stdin(Stdio::null());
}

/// What a run of one vector must show.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused with a message holding this text; no frame.
    Refused(&'static str),
    /// Frame 1 rendered exactly as Blender renders the clean scene.
    Renders,
}

/// Runs `vector` on every Blender under test through both paths.
async fn check(vector: Vector, expect: Expect) {
    for blender in TestBlender::all().unwrap() {
        let started = Instant::now();
        check_one(&blender, vector, expect).await;
        eprintln!("{}: checked in {:?}", blender.name, started.elapsed());
    }
}

async fn check_one(blender: &TestBlender, vector: Vector, expect: Expect) {
    let root = Root::new();
    std::fs::create_dir_all(root.markers()).unwrap();
    let options = vector(&root);
    let scenes = root.path("scenes/a/b");
    std::fs::create_dir_all(&scenes).unwrap();
    let scene = make_scene_with(blender, &scenes, "hostile", &options).unwrap();
    let reference = match expect {
        Expect::Renders => Some(reference(blender, &clean(&options))),
        Expect::Refused(_) => None,
    };
    let name = &blender.name;

    // farm render, with TMPDIR inside the root so its work folder is seen too.
    let before = root.files();
    let out = root.path("f/out");
    let tmp = root.path("f/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut farm = Command::new(&farm_e2e::bins().farm);
    with_blender_and_secrets(&mut farm, blender);
    let output = farm
        .env("TMPDIR", &tmp)
        .arg("render")
        .arg(&scene)
        .args(["--frames", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let farm_text = text(&output);
    assert_no_markers(&root, &format!("{name}, farm render"), &farm_text);
    assert_only_new_files_under(
        &root,
        &before,
        &[&out, &tmp],
        &format!("{name}, farm render"),
        &farm_text,
    );
    match (expect, reference.as_ref()) {
        (Expect::Refused(needle), _) => {
            assert_eq!(output.status.code(), Some(1), "{name}: {farm_text}");
            assert!(farm_text.contains(needle), "{name}: {farm_text}");
            assert!(!out.join("frames/0001.png").exists(), "{name}: {farm_text}");
        }
        (Expect::Renders, Some(reference)) => {
            assert!(output.status.success(), "{name}: {farm_text}");
            let frame = std::fs::read(out.join("frames/0001.png")).unwrap();
            assert!(
                pixels(&frame) == *reference,
                "{name}: farm render's frame 1 differs from Blender's own render\n{farm_text}"
            );
        }
        (Expect::Renders, None) => unreachable!(),
    }

    // The renderer binary against moto, with the environment of a Batch child.
    let moto = Moto::start().await.unwrap();
    moto.bucket(BUCKET).await.unwrap();
    let storage = S3Storage::new(moto.s3(), BUCKET);
    use farm_core::Storage;
    storage
        .upload_file(KEY, &scene, &Default::default())
        .await
        .unwrap();
    let before = root.files();
    let work = root.renderer_work();
    let mut renderer = Command::new(&farm_e2e::bins().renderer);
    with_blender_and_secrets(&mut renderer, blender);
    let output = renderer
        .envs(moto.env())
        .env("FARM_BUCKET", BUCKET)
        .env("FARM_KEY", KEY)
        .env("FARM_FRAMES", "1")
        .env("FARM_WORK_DIR", &work)
        .env("FARM_THREADS", "2")
        .output()
        .unwrap();
    let renderer_text = text(&output);
    assert_no_markers(&root, &format!("{name}, renderer"), &renderer_text);
    assert_only_new_files_under(
        &root,
        &before,
        &[&work],
        &format!("{name}, renderer"),
        &renderer_text,
    );
    let uploaded: Vec<String> = storage
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k != KEY && !k.starts_with(&JobKeys::new(KEY).tasks_prefix()))
        .collect();
    match (expect, reference.as_ref()) {
        (Expect::Refused(needle), _) => {
            assert_eq!(
                output.status.code(),
                Some(farm_core::exit::BAD_INPUT),
                "{name}: {renderer_text}"
            );
            assert!(renderer_text.contains(needle), "{name}: {renderer_text}");
            assert!(uploaded.is_empty(), "{name}: {uploaded:?}");
        }
        (Expect::Renders, Some(reference)) => {
            assert!(output.status.success(), "{name}: {renderer_text}");
            assert_eq!(uploaded, [format!("{KEY}/frames/0001.png")], "{name}");
            let frame = storage.get(&uploaded[0]).await.unwrap();
            assert!(
                pixels(&frame) == *reference,
                "{name}: the renderer's frame 1 differs from Blender's own render\n{renderer_text}"
            );
        }
        (Expect::Renders, None) => unreachable!(),
    }
}

fn assert_no_markers(root: &Root, run: &str, output: &str) {
    let markers: Vec<PathBuf> = std::fs::read_dir(root.markers())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    if let Some(marker) = markers.first() {
        let content = std::fs::read_to_string(marker).unwrap_or_default();
        panic!(
            "{run}: code from the .blend ran ({}), and saw: {content}\n{output}",
            marker.display()
        );
    }
}

fn assert_only_new_files_under(
    root: &Root,
    before: &BTreeSet<PathBuf>,
    allowed: &[&Path],
    run: &str,
    output: &str,
) {
    let escaped: Vec<PathBuf> = root
        .files()
        .difference(before)
        .filter(|f| !allowed.iter().any(|dir| f.starts_with(dir)))
        .cloned()
        .collect();
    assert!(
        escaped.is_empty(),
        "{run}: files written outside the output and work folders: {escaped:?}\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_freestyle_python_style_module_is_refused_and_never_runs() {
    check(
        freestyle,
        Expect::Refused("Freestyle on view layer \"ViewLayer\" of scene \"Scene\""),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_text_block_never_runs() {
    check(text_block, Expect::Renders).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_driver_expression_never_runs() {
    check(driver, Expect::Renders).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_output_node_at_an_absolute_path_stays_in_the_work_folder() {
    check(file_output_absolute, Expect::Renders).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_output_node_climbing_out_of_the_scene_folder_stays_in_the_work_folder() {
    check(file_output_up, Expect::Renders).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_output_node_posing_as_a_frame_is_not_uploaded_as_one() {
    check(file_output_posing_as_a_frame, Expect::Renders).await;
}

/// A stand-in Blender doing what Python from a .blend would: writes out its environment and tries
/// to read its parent's (the renderer's or farm's); as a control, reads the environment of a
/// dumpable process of its own. Then exits 1. The test runs the binaries without capabilities,
/// as the container's non-root user runs (root's CAP_SYS_PTRACE reads any process).
fn probe(dir: &Path) -> PathBuf {
    let report = dir.join(PROBE_REPORT);
    executable(
        &dir.join("blender-probe"),
        &format!(
            r#"#!/usr/bin/env python3
import json, os, subprocess
import time
def readable(path):
    # A process that has just been started may still be finishing its exec: retry briefly.
    for _ in range(20):
        try:
            with open(path, "rb") as f:
                return len(f.read()) > 0
        except OSError:
            time.sleep(0.05)
    return False
status = open("/proc/self/status").read()
sibling = subprocess.Popen(["sleep", "5"])
report = dict(
    env=dict(os.environ),
    capabilities=[l.split()[1] for l in status.splitlines() if l.startswith(("CapEff", "CapPrm"))],
    parent_environ_readable=readable("/proc/%d/environ" % os.getppid()),
    dumpable_environ_readable=readable("/proc/%d/environ" % sibling.pid),
)
sibling.kill()
with open({report:?}, "w") as f:
    json.dump(report, f)
raise SystemExit(1)
"#,
            report = report.to_str().unwrap()
        ),
    )
}

/// A small scene with nothing hostile in it, saved by Debian's Blender.
fn plain_scene(root: &Root) -> PathBuf {
    make_scene_with(
        &TestBlender::executable().unwrap(),
        root.dir.path(),
        "plain",
        &small(),
    )
    .unwrap()
}

/// Writes an executable script at `path`.
fn executable(path: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_owned()
}

/// `farm render` of frame 1 of `scene` into `out`, without capabilities and with `blender` and
/// fake secrets (and `TMPDIR` if given).
fn farm_render(scene: &Path, blender: &TestBlender, out: &Path, tmp: Option<&Path>) -> Output {
    let mut farm = without_capabilities(&farm_e2e::bins().farm);
    with_blender_and_secrets(&mut farm, blender);
    if let Some(tmp) = tmp {
        farm.env("TMPDIR", tmp);
    }
    farm.arg("render")
        .arg(scene)
        .args(["--frames", "1", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

/// The `renderer` binary, without capabilities and with `blender` and fake secrets, rendering
/// frame 1 of `scene` uploaded to a fresh moto at [`KEY`], in the work folder `work`.
async fn run_renderer(scene: &Path, blender: &TestBlender, work: &Path) -> Output {
    run_renderer_with(scene, blender, work, &[]).await
}

/// [`run_renderer`] with more variables in the renderer's environment.
async fn run_renderer_with(
    scene: &Path,
    blender: &TestBlender,
    work: &Path,
    env: &[(&str, &str)],
) -> Output {
    let moto = Moto::start().await.unwrap();
    moto.bucket(BUCKET).await.unwrap();
    let storage = S3Storage::new(moto.s3(), BUCKET);
    use farm_core::Storage;
    storage
        .upload_file(KEY, scene, &Default::default())
        .await
        .unwrap();
    let mut renderer = without_capabilities(&farm_e2e::bins().renderer);
    with_blender_and_secrets(&mut renderer, blender);
    renderer
        .envs(moto.env())
        .env("FARM_BUCKET", BUCKET)
        .env("FARM_KEY", KEY)
        .env("FARM_FRAMES", "1")
        .env("FARM_WORK_DIR", work)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `program` run with no capabilities at all (same uid): what a container's non-root user has.
fn without_capabilities(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--ambient-caps=-all",
            "--",
        ])
        .arg(program);
    command
}

/// Where [`probe`] and [`network_probe`] write their reports, in their folder: a named pipe,
/// since Blender can write no file outside its work folder.
const PROBE_REPORT: &str = "probe-report.pipe";

fn read_probe(pipe: Pipe, run: &str, output: &Output) -> serde_json::Value {
    let report = pipe.read().unwrap();
    serde_json::from_slice(&report)
        .unwrap_or_else(|e| panic!("{run}: the probe did not run ({e}): {}", text(output)))
}

fn assert_probe_found_no_credentials(report: &serde_json::Value, run: &str, work: &Path) {
    let env = report["env"].as_object().unwrap();
    let names: Vec<&String> = env.keys().collect();
    for name in names.iter() {
        assert!(
            !name.starts_with("AWS_") && !name.starts_with("FARM_") && !name.starts_with("ECS_"),
            "{run}: blender saw {name}: {env:?}"
        );
    }
    let values = serde_json::to_string(env).unwrap();
    for (_, secret) in FAKE_SECRETS {
        assert!(!values.contains(secret), "{run}: {values}");
    }
    assert_eq!(
        report["capabilities"],
        serde_json::json!(["0000000000000000", "0000000000000000"]),
        "{run}: the probe must run without capabilities"
    );
    let home = env["HOME"].as_str().unwrap();
    assert!(Path::new(home).starts_with(work), "{run}: HOME={home}");
    assert_eq!(
        report["dumpable_environ_readable"], true,
        "{run}: the probe cannot read even a dumpable process's environ, so the check below proves nothing"
    );
    assert_eq!(
        report["parent_environ_readable"], false,
        "{run}: blender read its parent's /proc/<pid>/environ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn blender_finds_no_credentials_even_when_code_runs_in_it() {
    let root = Root::new();
    let blender = TestBlender {
        name: "probe".into(),
        blender: Blender::Executable(probe(root.dir.path())),
        series: None,
    };
    let scene = plain_scene(&root);

    // farm render: frames given, so the probe is the render itself.
    let tmp = root.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let pipe = Pipe::listen(&root.path(PROBE_REPORT)).unwrap();
    let output = farm_render(&scene, &blender, &root.path("out"), Some(&tmp));
    let report = read_probe(pipe, "farm render", &output);
    assert_probe_found_no_credentials(&report, "farm render", &tmp);

    let work = root.path("work");
    let pipe = Pipe::listen(&root.path(PROBE_REPORT)).unwrap();
    let output = run_renderer(&scene, &blender, &work).await;
    let report = read_probe(pipe, "renderer", &output);
    assert_probe_found_no_credentials(&report, "renderer", &work);
}

/// A stand-in Blender doing what FFmpeg does with a URL path: connects to `127.0.0.1:port`
/// (a listener of the test's), writes whether it could, then exits 1.
fn network_probe(dir: &Path, port: u16) -> PathBuf {
    let report = dir.join(PROBE_REPORT);
    executable(
        &dir.join("blender-network-probe"),
        &format!(
            r#"#!/usr/bin/env python3
import json, socket
s = socket.socket()
s.settimeout(2)
code = s.connect_ex(("127.0.0.1", {port}))
with open({report:?}, "w") as f:
    json.dump(dict(connect=code), f)
raise SystemExit(1)
"#,
            report = report.to_str().unwrap()
        ),
    )
}

/// Blender (here a stand-in connecting as FFmpeg would to a URL) cannot reach a listener on the
/// machine's own `127.0.0.1`, under `farm render` and the `renderer` binary, both run without
/// capabilities: it runs in a private network namespace (RELIABILITY.md, "Hostile .blend").
#[tokio::test(flavor = "multi_thread")]
async fn blender_cannot_connect_to_a_local_listener() {
    let root = Root::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let blender = TestBlender {
        name: "network probe".into(),
        blender: Blender::Executable(network_probe(root.dir.path(), port)),
        series: None,
    };
    let scene = plain_scene(&root);
    let report = |pipe: Pipe, run: &str, output: &Output| {
        let report = read_probe(pipe, run, output);
        assert_ne!(
            report["connect"], 0,
            "{run}: blender connected to 127.0.0.1:{port}"
        );
        assert!(
            listener.accept().is_err(),
            "{run}: the listener accepted a connection"
        );
    };

    let pipe = Pipe::listen(&root.path(PROBE_REPORT)).unwrap();
    let output = farm_render(&scene, &blender, &root.path("out"), None);
    report(pipe, "farm render", &output);

    let pipe = Pipe::listen(&root.path(PROBE_REPORT)).unwrap();
    let output = run_renderer(&scene, &blender, &root.path("work")).await;
    report(pipe, "renderer", &output);
}

/// A .blend whose movie path is a URL to a listener of the test's is refused before any compute,
/// naming the path: by `farm render` (Blender never starts), by `farm submit` against moto
/// (`--missing-ok` or not: nothing uploaded) and by the trigger (a recorded rejection, no job);
/// nothing connects to the listener. Scenes saved by both Blenders.
#[tokio::test(flavor = "multi_thread")]
async fn a_url_path_is_refused_before_any_compute() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/url_image.py");
    let farm = farm_e2e::Farm::start(BUCKET).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!(
        "http://127.0.0.1:{}/clip.mp4",
        listener.local_addr().unwrap().port()
    );
    for blender in TestBlender::all().unwrap() {
        let root = Root::new();
        let scene = root.path("remote.blend");
        let json = serde_json::json!({ "output": scene, "url": url }).to_string();
        let made = blender
            .script(Path::new(script), &[&json])
            .output()
            .unwrap();
        assert!(scene.is_file(), "{}: {}", blender.name, text(&made));
        // Making the scene may have tried the URL: only what the farm does counts.
        while listener.accept().is_ok() {}
        let run = |args: &[&str]| {
            let mut command = Command::new(&farm_e2e::bins().farm);
            with_blender_and_secrets(&mut command, &blender);
            command.envs(farm.moto.env()).args(args).output().unwrap()
        };
        let refused = |what: &str, output: &Output| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{}, {what}: {}",
                blender.name,
                text(output)
            );
            assert!(stderr.contains("are refused"), "{what}: {stderr}");
            assert!(
                stderr.contains(&format!("`{url}` is a `http:` URL")),
                "{what}: {stderr}"
            );
        };
        let path = scene.to_str().unwrap();
        let out = root.path("out");
        let output = run(&[
            "render",
            path,
            "--frames",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        refused("farm render", &output);
        assert!(!out.join("frames").exists(), "nothing rendered");
        let key = format!("{}/remote.blend", blender.name.replace(' ', "-"));
        for extra in [None, Some("--missing-ok")] {
            let mut args = vec![
                "submit", path, "--bucket", BUCKET, "--key", &key, "--frame", "1",
            ];
            args.extend(extra);
            refused("farm submit", &run(&args));
        }
        assert!(
            farm.objects("").await.unwrap().is_empty(),
            "nothing uploaded"
        );

        // Uploaded by other means and tagged: the trigger rejects it, recorded, no job.
        farm.upload_tagged(&key, &scene, "frame=1").await;
        let mut outcomes = Vec::new();
        for (_, report) in farm.deliver().await.unwrap() {
            outcomes.extend(report.records);
        }
        assert!(
            outcomes.iter().any(|o| matches!(o,
                trigger_lambda::RecordOutcome::Rejected { message, .. }
                    if message.contains(&format!("`{url}` is a `http:` URL")))),
            "{outcomes:?}"
        );
        assert!(farm.jobs().await.unwrap().is_empty(), "no job");
        farm.aws()
            .run(&["s3", "rm", "--recursive", &format!("s3://{BUCKET}/")])
            .await
            .unwrap();
        farm.deliver().await.unwrap();
        assert!(
            listener.accept().is_err(),
            "{}: something connected to {url}",
            blender.name
        );
    }
}

/// The files under `dir` and their contents.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Saves `scene` with an unbaked disk point cache named `escaped` (`point_cache.py`: external in
/// `folder`, or Blender's own `blendcache_<file>/` for `""`), then writes cache files of frames
/// 1, 2 and 5 into `cache` (after saving: Blender clears the folder as it saves); returns them.
fn point_cache_scene(
    blender: &TestBlender,
    scene: &Path,
    folder: &str,
    cache: &Path,
) -> Vec<(PathBuf, Vec<u8>)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/point_cache.py");
    let json = serde_json::json!({ "output": scene, "folder": folder }).to_string();
    let made = blender
        .script(Path::new(script), &[&json])
        .output()
        .unwrap();
    assert!(scene.is_file(), "{}: {}", blender.name, text(&made));
    std::fs::create_dir_all(cache).unwrap();
    for frame in [1, 2, 5] {
        std::fs::write(
            cache.join(format!("escaped_{frame:06}_00.bphys")),
            b"not ours",
        )
        .unwrap();
    }
    contents(cache)
}

/// A .blend whose unbaked particle cache is on disk and external, in an absolute folder holding
/// cache files of its name (Blender deletes those of later frames as it opens the file, and
/// writes new ones), is refused before Blender starts, naming the folder and the rule: by `farm
/// render`, by the renderer against moto (nothing uploaded), by `farm submit` (`--missing-ok`
/// too; nothing uploaded) and by the trigger (a recorded rejection, no job). The folder's files
/// are untouched and nothing appears outside the runs' folders. Scenes saved by each Blender.
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_folder_blender_writes_outside_the_blends_folder_is_refused() {
    let farm = farm_e2e::Farm::start(BUCKET).await.unwrap();
    for blender in TestBlender::all().unwrap() {
        let name = &blender.name;
        let root = Root::new();
        let escaped = root.path("escaped");
        let scene = root.path("scenes/cache.blend");
        std::fs::create_dir_all(scene.parent().unwrap()).unwrap();
        let folder = format!("{}/", escaped.display());
        let kept = point_cache_scene(&blender, &scene, &folder, &escaped);
        let needle = format!("`{}/` is a cache folder Blender writes", escaped.display());
        let refused = |run: &str, output: &Output, code: i32| {
            let all = text(output);
            assert_eq!(output.status.code(), Some(code), "{name}, {run}: {all}");
            assert!(all.contains(&needle), "{name}, {run}: {all}");
            assert!(
                all.contains("not relative to the .blend"),
                "{name}, {run}: {all}"
            );
            assert_eq!(
                contents(&escaped),
                kept,
                "{name}, {run}: the cache folder changed"
            );
        };

        let before = root.files();
        let out = root.path("f/out");
        let output = farm_render(&scene, &blender, &out, None);
        refused("farm render", &output, 1);
        assert_only_new_files_under(&root, &before, &[&out], name, &text(&output));
        assert!(!out.join("frames").exists(), "{name}: nothing rendered");

        let work = root.renderer_work();
        let output = run_renderer(&scene, &blender, &work).await;
        refused("renderer", &output, farm_core::exit::BAD_INPUT);
        assert_only_new_files_under(&root, &before, &[&out, &work], name, &text(&output));

        let key = format!("{}/cache.blend", name.replace(' ', "-"));
        for extra in [None, Some("--missing-ok")] {
            let mut command = Command::new(&farm_e2e::bins().farm);
            with_blender_and_secrets(&mut command, &blender);
            let mut args = vec!["submit", scene.to_str().unwrap(), "--bucket", BUCKET];
            args.extend(["--key", &key, "--frame", "1"]);
            args.extend(extra);
            let output = command.envs(farm.moto.env()).args(&args).output().unwrap();
            refused("farm submit", &output, 1);
        }
        assert!(
            farm.objects("").await.unwrap().is_empty(),
            "nothing uploaded"
        );

        trigger_rejects(&farm, &key, &scene, &needle, name).await;
    }
}

/// Blender clears a file's disk cache folders as it opens it, before any script of the farm runs.
/// Under `farm render` it runs where everything but its work folder is read-only
/// (`renderer::sandbox`), so a cache folder beside the .blend holding cache files of the scene's
/// name (Blender's own `blendcache_<file>/`, and an external `//cache/`) keeps them byte for byte,
/// no file appears outside the run's folders, and frame 1 equals Blender's own render of the
/// scene. Scenes saved by each Blender under test.
#[tokio::test(flavor = "multi_thread")]
async fn farm_render_never_writes_beside_the_blend() {
    for blender in TestBlender::all().unwrap() {
        for (folder, written) in [
            ("", "scenes/blendcache_cache"),
            ("//cache/", "scenes/cache"),
        ] {
            let run = format!("{}, cache folder {written}", blender.name);
            let root = Root::new();
            let scene = root.path("scenes/cache.blend");
            std::fs::create_dir_all(scene.parent().unwrap()).unwrap();
            let cache = root.path(written);
            let kept = point_cache_scene(&blender, &scene, folder, &cache);
            let before = root.files();
            let (out, tmp) = (root.path("f/out"), root.path("f/tmp"));
            std::fs::create_dir_all(&tmp).unwrap();
            let output = farm_render(&scene, &blender, &out, Some(&tmp));
            assert!(output.status.success(), "{run}: {}", text(&output));
            assert_eq!(contents(&cache), kept, "{run}: the cache folder changed");
            assert_only_new_files_under(&root, &before, &[&out, &tmp], &run, &text(&output));

            // Blender's own render, of a copy: it clears the copy's cache folder.
            let copy = root.path("own/cache.blend");
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(&scene, &copy).unwrap();
            let own = own_render(&blender, &copy, &root.path("own/out"));
            let frame = pixels(&std::fs::read(out.join("frames/0001.png")).unwrap());
            assert!(
                frame == own,
                "{run}: frame 1 differs from Blender's own render"
            );
        }
    }
}

/// Saves `scene` with `script` run by `blender`, given `{"output": scene}`.
fn save_scene(blender: &TestBlender, script: &str, scene: &Path) {
    let json = serde_json::json!({ "output": scene }).to_string();
    let made = blender
        .script(Path::new(script), &[&json])
        .output()
        .unwrap();
    assert!(scene.is_file(), "{}: {}", blender.name, text(&made));
}

/// `farm render` (exit 1) and the renderer against moto (exit 3) both refuse `scene` before a
/// frame, their messages holding each of `named`, and neither their output nor a file in their
/// folders shows `ran` (what the file's code prints when it runs).
async fn assert_refused_before_running(
    blender: &TestBlender,
    root: &Root,
    scene: &Path,
    named: &[&str],
    ran: &str,
) {
    let name = &blender.name;
    let out = root.path("out");
    let output = farm_render(scene, blender, &out, None);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{name}, farm render: {all}");
    assert!(named.iter().all(|n| all.contains(n)), "{name}: {all}");
    assert!(!all.contains(ran), "{name}, farm render ran it: {all}");
    assert!(!out.join("frames/0001.png").exists(), "{name}");

    let work = root.path("work");
    let output = run_renderer(scene, blender, &work).await;
    let all = text(&output);
    assert_eq!(
        output.status.code(),
        Some(farm_core::exit::BAD_INPUT),
        "{name}, renderer: {all}"
    );
    assert!(named.iter().all(|n| all.contains(n)), "{name}: {all}");
    assert!(!all.contains("frame uploaded"), "{name}: {all}");
    let logs: String = root
        .files()
        .into_iter()
        .filter(|f| f.starts_with(&work) || f.starts_with(&out))
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    assert!(
        !all.contains(ran) && !logs.contains(ran),
        "{name}, the renderer ran it"
    );
}

/// An OSL script node (OSL's `fprintf` writes files) in a scene rendering with Open Shading
/// Language is refused before a frame, the message naming OSL and the node: by `farm render`
/// (exit 1) and by the renderer against moto (exit 3, nothing uploaded). Scenes made by each
/// Blender under test; where that Blender has OSL (every bpy module) its own render of the same
/// file runs the script (the control). Debian's 3.4 is built without OSL: its node is saved
/// uncompiled and no Blender of that build runs it, but the farm refuses the scene all the same.
#[tokio::test(flavor = "multi_thread")]
async fn an_osl_script_node_is_refused_before_a_frame() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/osl_script.py");
    let ran = "osl script ran";
    let named = [
        "renders with Open Shading Language",
        "has an OSL script node \"Script\"",
    ];
    for blender in TestBlender::all().unwrap() {
        let name = &blender.name;
        let root = Root::new();
        let scene = root.path("osl.blend");
        save_scene(&blender, script, &scene);
        if blender.series.is_some() {
            let own = text(&own_render_output(&blender, &scene, &root.path("own")));
            assert!(
                own.contains(ran),
                "{name}: Blender's own render did not run the script: {own}"
            );
        }

        assert_refused_before_running(&blender, &root, &scene, &named, ran).await;
    }
}

/// A Blender 4.5+ custom camera (OSL bytecode stored in the .blend, which Cycles runs for every
/// camera ray even with SVM and no script node) never runs under the farm: `farm render` and the
/// renderer against moto refuse the scene naming the camera, before a frame, nothing uploaded;
/// Blender's own render of the same file runs it (the control). On bpy 4.5.15 and every series
/// after it under test.
#[tokio::test(flavor = "multi_thread")]
async fn a_custom_camera_never_runs_its_osl() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/hostile/custom_camera.py"
    );
    let since = farm_core::BlenderSeries::new(4, 5);
    let mut blenders = vec![TestBlender::bpy("4.5.15").unwrap()];
    blenders.extend(
        TestBlender::all()
            .unwrap()
            .into_iter()
            .filter(|b| b.series.is_some_and(|s| s > since)),
    );
    let ran = "custom camera ran";
    for blender in blenders {
        let name = &blender.name;
        let root = Root::new();
        let scene = root.path("camera.blend");
        save_scene(&blender, script, &scene);

        let own = text(&own_render_output(&blender, &scene, &root.path("own")));
        assert!(
            own.contains(ran),
            "{name}: Blender's own render did not run the camera: {own}"
        );

        let named = ["camera \"Camera\" is a custom camera"];
        assert_refused_before_running(&blender, &root, &scene, &named, ran).await;
    }
}

/// Another uploader's files are never bound to a job: with `SharedPrefixes` `library/`, an upload
/// under `alice/` naming `//../bob/secret.png` is rejected by the trigger against moto, the
/// rejection naming the key and the rule, and no job is submitted; the same upload naming only
/// its own folder and `library/` is submitted with both files bound to the job (what the
/// renderer downloads). A scene saved by Debian's Blender (the rule reads only keys).
#[tokio::test(flavor = "multi_thread")]
async fn another_uploaders_files_are_never_bound_to_a_job() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/image_paths.py");
    let mut farm = farm_e2e::Farm::start(BUCKET).await.unwrap();
    farm.trigger.shared_prefixes = farm_core::deps::SharedPrefixes::parse("library/").unwrap();
    let blender = TestBlender::executable().unwrap();
    let root = Root::new();
    let texture = root.path("texture.png");
    std::fs::write(&texture, b"not really a png").unwrap();
    for key in ["bob/secret.png", "library/wood.png", "alice/tex/a.png"] {
        farm.aws()
            .run(&[
                "s3",
                "cp",
                texture.to_str().unwrap(),
                &format!("s3://{BUCKET}/{key}"),
            ])
            .await
            .unwrap();
    }
    let scene = |name: &str, paths: &[&str]| {
        let scene = root.path(name);
        let json = serde_json::json!({ "output": scene, "paths": paths }).to_string();
        let made = blender
            .script(Path::new(script), &[&json])
            .output()
            .unwrap();
        assert!(scene.is_file(), "{}", text(&made));
        scene
    };
    let outcomes = |delivered: Vec<(_, trigger_lambda::handler::EventReport)>| {
        delivered
            .into_iter()
            .flat_map(|(_, report)| report.records)
            .collect::<Vec<_>>()
    };

    let greedy = scene(
        "greedy.blend",
        &[
            "//tex/a.png",
            "//../library/wood.png",
            "//../bob/secret.png",
        ],
    );
    farm.upload_tagged("alice/greedy.blend", &greedy, "frame=1")
        .await;
    let records = outcomes(farm.deliver().await.unwrap());
    let rejected = records.iter().find_map(|o| match o {
        trigger_lambda::RecordOutcome::Rejected { message, .. } => Some(message.clone()),
        _ => None,
    });
    let message = rejected.unwrap_or_else(|| panic!("not rejected: {records:?}"));
    assert!(
        message.contains("`bob/secret.png` is outside what this upload may use")
            && message
                .contains("may use only files under `alice/` and the shared prefixes (library/)"),
        "{message}"
    );
    assert!(
        !message.contains("wood.png") && !message.contains("tex/a.png"),
        "{message}"
    );
    assert!(farm.jobs().await.unwrap().is_empty(), "no job");

    let fair = scene("fair.blend", &["//tex/a.png", "//../library/wood.png"]);
    farm.upload_tagged("alice/fair.blend", &fair, "frame=1")
        .await;
    let records = outcomes(farm.deliver().await.unwrap());
    assert!(
        records
            .iter()
            .any(|o| matches!(o, trigger_lambda::RecordOutcome::Submitted { .. })),
        "{records:?}"
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &farm
            .get(&JobKeys::new("alice/fair.blend").manifest())
            .await
            .unwrap(),
    )
    .unwrap();
    let bound: Vec<&str> = manifest["dependencies"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(bound, ["alice/tex/a.png", "library/wood.png"], "{manifest}");
}

/// A frame whose buffers cannot fit in a render task's memory (20000 x 20000 pixels: at least
/// 23.8 GiB by `farm_core::memory`) is refused before Blender starts, naming memory: by `farm
/// render` (exit 1), by the renderer against moto (exit 3, nothing uploaded), by `farm submit`
/// (nothing uploaded) and by the trigger (a recorded rejection, no job). Scenes saved by each
/// Blender under test.
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_past_a_tasks_memory_is_refused_naming_memory() {
    let farm = farm_e2e::Farm::start(BUCKET).await.unwrap();
    let options = SceneOptions {
        width: 20_000,
        height: 20_000,
        ..small()
    };
    for blender in TestBlender::all().unwrap() {
        let name = &blender.name;
        let root = Root::new();
        std::fs::create_dir_all(root.path("scenes")).unwrap();
        let scene = make_scene_with(&blender, &root.path("scenes"), "huge", &options).unwrap();
        let needle = "need at least 23.8 GiB of memory";
        let refused = |run: &str, output: &Output, code: i32| {
            let all = text(output);
            assert_eq!(output.status.code(), Some(code), "{name}, {run}: {all}");
            assert!(
                all.contains(needle) && all.contains("20000 x 20000"),
                "{name}, {run}: {all}"
            );
        };
        let out = root.path("out");
        refused("farm render", &farm_render(&scene, &blender, &out, None), 1);
        assert!(!out.join("frames").exists(), "{name}: nothing rendered");
        let output = run_renderer(&scene, &blender, &root.path("work")).await;
        refused("renderer", &output, farm_core::exit::BAD_INPUT);

        let key = format!("{}/huge.blend", name.replace(' ', "-"));
        let mut command = Command::new(&farm_e2e::bins().farm);
        with_blender_and_secrets(&mut command, &blender);
        let args = [
            "submit",
            scene.to_str().unwrap(),
            "--bucket",
            BUCKET,
            "--key",
            &key,
            "--frame",
            "1",
        ];
        let output = command.envs(farm.moto.env()).args(args).output().unwrap();
        refused("farm submit", &output, 1);
        assert!(
            farm.objects("").await.unwrap().is_empty(),
            "nothing uploaded"
        );

        trigger_rejects(&farm, &key, &scene, needle, name).await;
    }
}

/// A frame that never ends (a stand-in Blender that starts frame 1 and sleeps) fails at the
/// per-frame time limit, naming it, and Blender is stopped: `farm render --frame-timeout 2`
/// exits 1 (no frame written) and the renderer with `FARM_FRAME_TIMEOUT=2` exits 3 (bad input,
/// not retried), each well before the stand-in would end.
#[tokio::test(flavor = "multi_thread")]
async fn a_frame_past_the_per_frame_time_limit_fails_naming_it() {
    let root = Root::new();
    let blender = TestBlender {
        name: "endless frame".into(),
        blender: Blender::Executable(executable(
            &root.path("blender-endless"),
            "#!/usr/bin/env python3\nimport time\nprint('FARM_FRAME 1', flush=True)\ntime.sleep(120)\n",
        )),
        series: None,
    };
    let scene = plain_scene(&root);
    let limit = "frame 1 ran past the per-frame time limit of 2 s";
    // Built before the clocks start.
    let bins = farm_e2e::bins();
    let check = |run: &str, output: &Output, code: i32, took: std::time::Duration| {
        let all = text(output);
        assert_eq!(output.status.code(), Some(code), "{run}: {all}");
        assert!(all.contains(limit), "{run}: {all}");
        assert!(
            took < std::time::Duration::from_secs(60),
            "{run} took {took:?}"
        );
    };

    let started = Instant::now();
    let mut farm = without_capabilities(&bins.farm);
    with_blender_and_secrets(&mut farm, &blender);
    let output = farm
        .arg("render")
        .arg(&scene)
        .args(["--frames", "1", "--frame-timeout", "2", "--out"])
        .arg(root.path("out"))
        .output()
        .unwrap();
    check("farm render", &output, 1, started.elapsed());
    assert!(!root.path("out/frames/0001.png").exists());

    let started = Instant::now();
    let output = run_renderer_with(
        &scene,
        &blender,
        &root.path("work"),
        &[("FARM_FRAME_TIMEOUT", "2")],
    )
    .await;
    check(
        "renderer",
        &output,
        farm_core::exit::BAD_INPUT,
        started.elapsed(),
    );
}

/// `scene` uploaded to `key` with a frame tag is rejected by the trigger (a recorded rejection
/// holding `needle`, no job); the bucket is emptied again afterwards.
async fn trigger_rejects(farm: &farm_e2e::Farm, key: &str, scene: &Path, needle: &str, name: &str) {
    farm.upload_tagged(key, scene, "frame=1").await;
    let mut outcomes = Vec::new();
    for (_, report) in farm.deliver().await.unwrap() {
        outcomes.extend(report.records);
    }
    assert!(
        outcomes.iter().any(|o| matches!(o,
            trigger_lambda::RecordOutcome::Rejected { message, .. } if message.contains(needle))),
        "{name}: {outcomes:?}"
    );
    assert!(farm.jobs().await.unwrap().is_empty(), "{name}: no job");
    farm.aws()
        .run(&["s3", "rm", "--recursive", &format!("s3://{BUCKET}/")])
        .await
        .unwrap();
    farm.deliver().await.unwrap();
}
