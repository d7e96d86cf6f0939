//! Adapters of the ports defined in `farm-core`: thin, and tested against real backends.
//!
//! - [`S3Storage`]: [`Storage`](farm_core::Storage) on an S3 bucket (`aws-sdk-s3`).
//! - [`LocalStorage`]: [`Storage`](farm_core::Storage) on a local folder, used by `farm render`.
//! - [`BatchScheduler`]: [`Scheduler`](farm_core::scheduler::Scheduler) on AWS Batch.
//! - [`clients`]: the one AWS client builder ([`AwsClients`]): timeouts and retries for all.
//! - [`stack`]: the farm's CloudFormation stack's outputs ([`StackOutputs`]), for `--stack`.
//! - [`etag`]: whether a local file holds an S3 object's bytes, from its ETag.
//! - [`telemetry`]: logging and signal handling shared by the binaries.
//! - `aws_error`: the one reading of AWS SDK errors, which both AWS adapters classify into the
//!   ports' errors; no code outside this crate sees an SDK error.
//!
//! Both storages pass one conformance suite (`tests/conformance.rs`), the S3 one on `moto_server`.

#[cfg(feature = "aws")]
pub mod clients;
#[cfg(feature = "aws")]
pub mod etag;
#[cfg(feature = "aws")]
pub mod stack;
pub mod telemetry;

#[cfg(feature = "aws")]
mod aws_error;
#[cfg(feature = "aws")]
mod batch;
mod local;
#[cfg(feature = "aws")]
mod s3;
#[cfg(feature = "aws")]
mod s3_upload;
mod temp;

#[cfg(feature = "aws")]
pub use batch::{definition_name, BatchScheduler, BatchTargets, BATCH_LIMITS};
#[cfg(feature = "aws")]
pub use clients::{AwsClients, ClientSettings};
pub use local::{LocalStorage, LocalUpload};
#[cfg(feature = "aws")]
pub use s3::S3Storage;
#[cfg(feature = "aws")]
pub use s3_upload::{S3Upload, UploadTuning};
#[cfg(feature = "aws")]
pub use stack::{StackError, StackOutputs};
