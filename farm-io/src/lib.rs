//! Adapters of the ports defined in `farm-core`: thin, and tested against real backends.
//!
//! - [`S3Storage`]: [`Storage`](farm_core::Storage) on an S3 bucket (`aws-sdk-s3`).
//! - [`LocalStorage`]: [`Storage`](farm_core::Storage) on a local folder, used by `farm render`.
//! - [`BatchScheduler`]: [`Scheduler`](farm_core::scheduler::Scheduler) on AWS Batch.
//! - [`clients`]: the one AWS client builder ([`AwsClients`]): timeouts and retries for all.
//! - [`telemetry`]: logging and signal handling shared by the binaries.
//!
//! Both storages pass one conformance suite (`tests/conformance.rs`), the S3 one on `moto_server`.

pub mod clients;
pub mod telemetry;

mod aws_error;
mod batch;
mod local;
mod s3;
mod s3_upload;

pub use batch::{BatchScheduler, BatchTargets, MAX_ARRAY_SIZE, MIN_ARRAY_SIZE};
pub use clients::{AwsClients, ClientSettings};
pub use local::{LocalStorage, LocalUpload};
pub use s3::S3Storage;
pub use s3_upload::{S3Upload, UploadTuning};
