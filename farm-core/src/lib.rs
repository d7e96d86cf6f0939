//! The render farm's domain, with no I/O: nothing here touches the network, the disk or a
//! process, and nothing depends on an AWS SDK (a test reads `cargo metadata` to keep it so).
//!
//! # Layout
//! - [`frames`]: the `frame=N` / `frames=<list>` syntax and the canonical [`FrameList`].
//! - [`plan`]: cutting a frame list into array children ([`Plan`]).
//! - [`request`]: turning an upload's tags into a validated [`RenderRequest`].
//! - [`series`]: the Blender series a job runs (`blender=4.5`) and the farm's set of them.
//! - [`layout`]: every key a job reads or writes ([`JobKeys`]); [`etag`]: ETag quoting.
//! - [`manifest`]: the `<key>/job.json` document.
//! - [`blender`]: Blender's argv and log lines.
//! - [`engine`]: the render engine a job runs (the scene's own, or `engine=`).
//! - [`deps`]: where the files a `.blend` loads live in the bucket, and what a job records of them.
//! - [`image`]: recognising a finished image by its first bytes (a .blend is `farm-blend`'s).
//! - [`storage`] and [`scheduler`]: the ports the adapters in `farm-io` implement.
//! - [`tasks`] and [`receipt`]: what each task attempt did, and the job's receipt summed from it.
//! - [`estimate`]: sample frames and the estimate made from them.
//! - [`timeline`]: a model of a job on Batch over Fargate (launch rate, slots, start-up, billing,
//!   Spot), for estimates.
//! - [`exit`] and [`env`]: the exit codes and environment variables shared by the binaries and
//!   the infrastructure.

pub mod blender;
pub mod deps;
pub mod engine;
pub mod env;
pub mod estimate;
pub mod etag;
pub mod exit;
pub mod frames;
pub mod image;
pub mod layout;
pub mod manifest;
pub mod memory;
pub mod plan;
pub mod preview;
pub mod receipt;
pub mod request;
pub mod scheduler;
pub mod series;
pub mod shell;
pub mod storage;
pub mod tasks;
pub mod timeline;
pub mod views;

pub use frames::FrameList;
pub use layout::JobKeys;
pub use plan::Plan;
pub use request::RenderRequest;
pub use series::BlenderSeries;
pub use storage::{Storage, StreamUpload};
