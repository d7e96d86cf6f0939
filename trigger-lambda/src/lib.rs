//! The farm's trigger: an AWS Lambda (`provided.al2023`) that turns a tagged `.blend` upload into
//! an AWS Batch render job (an array job, one child per chunk of frames) and a zip job that
//! depends on it.
//!
//! # Layout
//! - [`event`]: reading S3 notification records (event kinds, URL-decoded keys).
//! - [`handler`]: [`handle_event`], what the Lambda does with one S3 event.
//! - [`preflight`]: the dependency gate: textures, libraries and their files must be packed or
//!   in the bucket before any job.
//!
//! Submission itself ([`submit_request`]) is the job model's, in `farm-jobs`.
//! - [`config`]: the environment the binary reads.
//!
//! The binary (`src/main.rs`) only wires these to `farm_io::S3Storage`, `farm_io::BatchScheduler`
//! and `lambda_runtime`.

pub mod config;
pub mod error;
pub mod event;
pub mod handler;
pub mod preflight;

pub use config::{Config, ConfigError};
pub use error::TriggerError;
pub use event::{parse_event, BlendRecord, EventKind};
pub use farm_jobs::submit::{
    submit_request, write_rejection, MarkerState, RequestMarker, SourceObject, Submission,
    SubmitError, PENDING_MARKER_TAKEOVER,
};
pub use handler::{
    handle_event, process_event, Buckets, Deps, EventReport, RecordOutcome, READ_BUDGET,
};
