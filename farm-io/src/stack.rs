//! The farm's CloudFormation stack, read by name: its outputs (`infra/farm.yaml`, `Outputs`),
//! so `farm --stack NAME` needs no bucket name copied by hand, and the parameters the trigger
//! is configured from (`SharedPrefixes`), so `farm submit` applies the trigger's own rules.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};

/// The stack output naming the farm's bucket (`infra/farm.yaml`).
pub const BUCKET_OUTPUT: &str = "BucketName";
/// The stack parameter the trigger's `FARM_SHARED_PREFIXES` is set from (`infra/farm.yaml`).
pub const SHARED_PREFIXES_PARAMETER: &str = "SharedPrefixes";

/// Why a stack's outputs could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// No stack of that name in the configured account and region.
    #[error("no CloudFormation stack `{stack}` in {region}: check the name (`aws cloudformation describe-stacks` lists them) and AWS_REGION / AWS_PROFILE")]
    NotFound { stack: String, region: String },
    /// The stack exists but has not (or no longer) the output.
    #[error("stack `{stack}` ({status}) has no `{output}` output (it has: {present}); is it the farm's stack (infra/farm.yaml), and is it created?")]
    MissingOutput {
        stack: String,
        status: String,
        output: String,
        present: String,
    },
    /// Any other failure of `DescribeStacks` (access denied, network).
    #[error("reading stack `{stack}` (cloudformation:DescribeStacks): {message}")]
    Aws { stack: String, message: String },
}

/// A stack's outputs, by output key, and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOutputs {
    stack: String,
    status: String,
    outputs: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
}

impl StackOutputs {
    /// Reads the outputs of the stack `name` (a name or a stack id) with one `DescribeStacks`.
    pub async fn read(
        client: &aws_sdk_cloudformation::Client,
        name: &str,
    ) -> Result<Self, StackError> {
        let region = client
            .config()
            .region()
            .map_or_else(|| "(no region)".to_owned(), ToString::to_string);
        let described = match client.describe_stacks().stack_name(name).send().await {
            Ok(described) => described,
            // CloudFormation answers a missing stack with a ValidationError, "Stack with id X
            // does not exist".
            Err(SdkError::ServiceError(service))
                if service
                    .err()
                    .message()
                    .is_some_and(|m| m.contains("does not exist")) =>
            {
                return Err(StackError::NotFound {
                    stack: name.to_owned(),
                    region,
                })
            }
            Err(err) => {
                return Err(StackError::Aws {
                    stack: name.to_owned(),
                    message: sdk_message(&err),
                })
            }
        };
        let Some(stack) = described.stacks().first() else {
            return Err(StackError::NotFound {
                stack: name.to_owned(),
                region,
            });
        };
        let outputs = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        let parameters = stack
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    p.parameter_value().unwrap_or_default().to_owned(),
                ))
            })
            .collect();
        Ok(Self {
            stack: name.to_owned(),
            status: stack
                .stack_status()
                .map_or_else(String::new, |s| s.as_str().to_owned()),
            outputs,
            parameters,
        })
    }

    /// The output `key`'s value.
    pub fn get(&self, key: &str) -> Result<&str, StackError> {
        self.outputs
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| StackError::MissingOutput {
                stack: self.stack.clone(),
                status: self.status.clone(),
                output: key.to_owned(),
                present: if self.outputs.is_empty() {
                    "none".to_owned()
                } else {
                    self.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })
    }

    /// The farm's bucket: the [`BUCKET_OUTPUT`] output.
    pub fn bucket(&self) -> Result<&str, StackError> {
        self.get(BUCKET_OUTPUT)
    }

    /// The prefixes the stack shares with every upload, as its trigger reads them: the
    /// [`SHARED_PREFIXES_PARAMETER`] parameter's value, empty for a stack without it.
    pub fn shared_prefixes(&self) -> &str {
        self.parameters
            .get(SHARED_PREFIXES_PARAMETER)
            .map_or("", String::as_str)
    }
}

/// An SDK error in one line: the service's code and message, else the transport's cause.
fn sdk_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(service) = err {
        let inner = service.err();
        return format!(
            "{}: {}",
            inner.code().unwrap_or("error"),
            inner.message().unwrap_or("no message")
        );
    }
    let mut cause = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}
