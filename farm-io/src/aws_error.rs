//! The farm's one reading of AWS SDK errors: what a failed call says, reduced to what the
//! ports classify on ([`crate::S3Storage`] into `StorageError`, [`crate::BatchScheduler`] into
//! `SchedulerError`), with a message a person can read (no SDK debug dump).

use std::error::Error;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

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
    /// No credentials were found, or AWS refused them (expired, unknown key, bad signature).
    pub(crate) credentials: bool,
}

/// Error codes AWS answers when the credentials themselves are the problem.
const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "TokenRefreshRequired",
];

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
    /// Reads status, code and message of an SDK error: the service's `code: message` when it
    /// answered, else the chain of causes (`dispatch failure: io error: ... Connection
    /// refused`).
    pub(crate) fn of<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        let origin = match err {
            SdkError::ConstructionFailure(_) => Origin::Construction,
            SdkError::ServiceError(_) => Origin::Service,
            _ => Origin::Transport,
        };
        let code = err.code().map(str::to_owned);
        let message = match (origin, code.as_deref(), err.message()) {
            (Origin::Service, Some(code), Some(message)) => format!("{code}: {message}"),
            (Origin::Service, Some(code), None) => code.to_owned(),
            _ => causes(err),
        };
        let credentials = code
            .as_deref()
            .is_some_and(|code| CREDENTIAL_CODES.contains(&code))
            || caused_by_credentials(err);
        Self {
            origin,
            status: err.raw_response().map(|r| r.status().as_u16()),
            code,
            message,
            credentials,
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
        if self.credentials {
            return false;
        }
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

/// Whether the SDK found no usable credentials (none in the chain, a misconfigured profile):
/// the request never left, and no retry helps until the user signs in. A provider that timed
/// out or failed (the task role's endpoint, an SSO call) stays a transient failure.
fn caused_by_credentials(err: &(dyn Error + 'static)) -> bool {
    use aws_credential_types::provider::error::CredentialsError;
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(credentials) = err.downcast_ref::<CredentialsError>() {
            return matches!(
                credentials,
                CredentialsError::CredentialsNotLoaded(_)
                    | CredentialsError::InvalidConfiguration(_)
            );
        }
        next = err.source();
    }
    false
}

/// An error and its sources, `: `-separated, each said once.
fn causes(err: &dyn Error) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err.to_string();
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
        next = err.source();
    }
    said.join(": ")
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    #[test]
    fn a_service_error_says_its_code_and_message() {
        let meta = ErrorMetadata::builder()
            .code("AccessDenied")
            .message("Access Denied")
            .build();
        let raw = HttpResponse::new(403.try_into().unwrap(), SdkBody::empty());
        let err: SdkError<PutObjectError, HttpResponse> =
            SdkError::service_error(PutObjectError::generic(meta), raw);
        let failure = Failure::of(&err);
        assert_eq!(failure.message, "AccessDenied: Access Denied");
        assert!(failure.has_status(403) && failure.has_code("AccessDenied"));
    }

    #[test]
    fn a_transport_error_says_its_causes_without_the_sdk_debug_dump() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let err: SdkError<PutObjectError, HttpResponse> = SdkError::timeout_error(refused);
        let failure = Failure::of(&err);
        assert_eq!(failure.origin, Origin::Transport);
        assert!(
            failure.message.ends_with("Connection refused"),
            "{}",
            failure.message
        );
        assert!(
            !failure.message.contains("TimeoutError("),
            "{}",
            failure.message
        );
        assert!(failure.is_transient());
        assert!(!failure.credentials);
    }

    #[test]
    fn expired_or_unknown_credentials_are_credential_failures_never_retried() {
        for (code, status) in [("ExpiredToken", 400), ("InvalidAccessKeyId", 403)] {
            let meta = ErrorMetadata::builder().code(code).message("no").build();
            let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
            let err: SdkError<PutObjectError, HttpResponse> =
                SdkError::service_error(PutObjectError::generic(meta), raw);
            let failure = Failure::of(&err);
            assert!(failure.credentials, "{code}");
            assert!(!failure.is_transient(), "{code}");
        }
    }

    #[test]
    fn no_credentials_in_the_chain_is_a_credential_failure() {
        let missing = aws_credential_types::provider::error::CredentialsError::not_loaded(
            "no credentials found in chain",
        );
        let err: SdkError<PutObjectError, HttpResponse> = SdkError::dispatch_failure(
            aws_sdk_s3::error::ConnectorError::other(Box::new(missing), None),
        );
        let failure = Failure::of(&err);
        assert!(failure.credentials, "{}", failure.message);
        assert!(!failure.is_transient());

        // A provider that timed out (the task role's endpoint) is worth another attempt.
        let timed_out = aws_credential_types::provider::error::CredentialsError::provider_timed_out(
            std::time::Duration::from_secs(5),
        );
        let err: SdkError<PutObjectError, HttpResponse> = SdkError::dispatch_failure(
            aws_sdk_s3::error::ConnectorError::other(Box::new(timed_out), None),
        );
        let failure = Failure::of(&err);
        assert!(!failure.credentials, "{}", failure.message);
        assert!(failure.is_transient());
    }
}
