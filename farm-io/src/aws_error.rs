//! What an AWS SDK error says, reduced to what the ports classify on.

use std::error::Error;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Where a failed call went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The request could not be built: a bug or a bad input, never worth retrying.
    Construction,
    /// Timeout, connection failure or unreadable response: the service may not have seen it.
    Transport,
    /// The service answered with an error.
    Service,
}

/// The facts of one failed SDK call.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) origin: Origin,
    pub(crate) status: Option<u16>,
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

/// Error codes AWS services use for throttling and transient server trouble.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "ServerException",
];

impl Failure {
    /// Reads status, code and the full message chain of an SDK error.
    pub(crate) fn of<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        let origin = match err {
            SdkError::ConstructionFailure(_) => Origin::Construction,
            SdkError::ServiceError(_) => Origin::Service,
            _ => Origin::Transport,
        };
        Self {
            origin,
            status: err.raw_response().map(|r| r.status().as_u16()),
            code: err.code().map(str::to_owned),
            message: DisplayErrorContext(err).to_string(),
        }
    }

    /// Whether the service answered with this error code.
    pub(crate) fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// Whether the service answered with this HTTP status.
    pub(crate) fn has_status(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    /// Throttling, server errors, timeouts and transport failures: another attempt may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        match self.origin {
            Origin::Construction => false,
            Origin::Transport => true,
            Origin::Service => {
                self.status.is_some_and(|s| s >= 500 || s == 429)
                    || self
                        .code
                        .as_deref()
                        .is_some_and(|code| TRANSIENT_CODES.contains(&code))
            }
        }
    }
}
