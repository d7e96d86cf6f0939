//! Deployment of the render farm to AWS.
//!
//! This crate holds no runtime code. It exists so that `cargo test` checks the CloudFormation
//! template `infra/farm.yaml` against the rest of the workspace: `tests/template.rs` reads the
//! template and asserts what `cfn-lint` and `checkov` cannot see, such as the S3 event filter,
//! the job sizes, the Batch retry rules matching the binaries' exit codes (`farm_core::exit`) and the
//! trigger's environment. `infra/check.sh` runs the linters and creates the stack in moto.

/// Path of the template, relative to this crate's directory.
pub const TEMPLATE_PATH: &str = "farm.yaml";
