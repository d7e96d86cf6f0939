//! Test support shared by every crate's integration tests.
//!
//! - [`Moto`]: a `moto_server` on a free 127.0.0.1 port, with clients and environment for it,
//!   buckets and a Batch setup ([`BatchEnv`]).
//! - [`unique_prefix`]: a random key prefix per test.
//! - [`blender`], [`make_scene`], [`frame_code`]: small Blender scenes whose frames show their
//!   own frame number.
//!
//! Missing tools are errors, with the command that installs them: tests fail, never skip.

mod http;
mod moto;
mod scene;

pub use moto::{BatchEnv, Moto};
pub use scene::{
    blender, frame_code, make_scene, make_scene_with, FileOutput, SceneOptions, TestBlender,
    BPY_VERSION,
};

/// A key prefix of its own for one test: `t-<name>-<8 hex digits>/`.
pub fn unique_prefix(name: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{name}-{}/", &id[..8])
}
