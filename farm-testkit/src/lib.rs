//! Test support shared by every crate's integration tests.
//!
//! - [`Moto`]: a `moto_server` on a free 127.0.0.1 port, with clients and environment for it,
//!   buckets and a Batch setup ([`BatchEnv`]).
//! - [`MemoryStorage`], [`MemoryScheduler`]: the ports in memory, held to the same conformance
//!   suites as S3, the local folder and Batch, for unit tests.
//! - [`Faulty`]: a wrapper over any storage or scheduler that fails (or delays, or lines up) the
//!   calls a [`Fault`] matches.
//! - [`Intercept`]: a storage wrapper that injects another party's writes mid-run.
//! - [`BlackHole`], [`run_bounded`]: an endpoint that never answers, to prove calls time out.
//! - [`Pipe`]: a named pipe a stand-in Blender reports through from inside its sandbox.
//! - [`unique_prefix`]: a random key prefix per test.
//! - [`zstd_frame`], [`zstd_blend_bomb`]: decompression bombs made in the test.
//! - [`blender`], [`make_scene`], [`frame_code`]: small Blender scenes whose frames show their
//!   own frame number.
//!
//! Missing tools are errors, with the command that installs them: tests fail, never skip.

mod blackhole;
mod bomb;
mod docker;
mod faults;
mod http;
mod memory;
mod moto;
mod pipe;
mod scene;
mod storage;
mod stub;

pub use blackhole::{run_bounded, BlackHole, BoundedRun};
pub use bomb::{zstd_blend_bomb, zstd_frame, ZstdPart};
pub use docker::FakeDocker;
pub use faults::{Failure, Fault, Faulty, FaultyUpload, Logged, Op};
pub use memory::{MemoryScheduler, MemoryStorage, MemoryUpload, StoredObject, SubmittedJob};
pub use moto::{BatchEnv, Moto};
pub use pipe::Pipe;
pub use scene::{
    blender, decode_png, frame_code, make_geometry_scene, make_scene, make_scene_with, pixel,
    probe_movie, test_bpy_versions, DecodedPng, FileOutput, GeometryScene, SceneOptions,
    TestBlender, BPY_VERSION, DEFAULT_TEST_BPY, TEST_BPY_ENV,
};
pub use storage::Intercept;
pub use stub::CannedEndpoint;

/// A key prefix of its own for one test: `t-<name>-<8 hex digits>/`.
pub fn unique_prefix(name: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{name}-{}/", &id[..8])
}

/// A render task's record of one frame, as the renderer writes it after an attempt that
/// succeeded: task `index` rendered frame `index + 1` in `render_seconds` (4 vCPUs, 95 s of task
/// time), for the upload of `source_etag`. For benches and tests of a job's records.
pub fn render_record(
    index: usize,
    source_etag: Option<&str>,
    render_seconds: f64,
) -> farm_core::tasks::TaskRecord {
    let record = serde_json::json!({
        "task": "render", "index": index, "attempt": 1, "source_etag": source_etag,
        "started": "1970-01-01T00:00:00Z", "ended": "1970-01-01T00:01:35Z", "exit_code": 0,
        "cpus": 4, "download_seconds": 1.5, "blender_startup_seconds": 3.2,
        "frames": [{"frame": index + 1, "render_seconds": render_seconds, "upload_seconds": 0.2}],
    });
    serde_json::from_value(record).expect("a task record's fields")
}
