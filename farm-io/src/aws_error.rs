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
    /// AWS refused the credentials as expired (a session token past its time, a request
    /// signed too long ago): signing in again helps.
    pub(crate) expired: bool,
    /// The request went to the wrong region for the bucket (S3's 301 `PermanentRedirect`, or
    /// `AuthorizationHeaderMalformed` naming the region it expected).
    pub(crate) wrong_region: bool,
    /// The bucket's region, when S3 said it (`x-amz-bucket-region`, or "expecting 'R'").
    pub(crate) bucket_region: Option<String>,
}

/// Error codes AWS answers for credentials that have expired.
const EXPIRED_CODES: &[&str] = &["ExpiredToken", "ExpiredTokenException", "RequestExpired"];

/// Error codes S3 answers a request sent to another region than the bucket's.
const WRONG_REGION_CODES: &[&str] = &[
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
];

/// Error codes AWS answers when the credentials themselves are the problem.
const CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
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
            // A HEAD's error has no body, so no code: the status says what there is. (A 2xx
            // answer the SDK could not read keeps its causes: they say what was wrong.)
            (Origin::Service, None, _)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() >= 300) =>
            {
                let status = err.raw_response().map_or(0, |r| r.status().as_u16());
                format!("HTTP status {status} without an error code")
            }
            _ => causes(err),
        };
        let credentials = code
            .as_deref()
            .is_some_and(|code| CREDENTIAL_CODES.contains(&code))
            || caused_by_credentials(err);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let has = |codes: &[&str]| code.as_deref().is_some_and(|c| codes.contains(&c));
        let header_region = err
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(str::to_owned);
        // A HEAD gets no body: a 400 with S3's region header and no code is the same answer.
        let wrong_region = origin == Origin::Service
            && (status == Some(301)
                || has(WRONG_REGION_CODES)
                || (status == Some(400) && code.is_none() && header_region.is_some()));
        Self {
            origin,
            status,
            expired: has(EXPIRED_CODES),
            wrong_region,
            bucket_region: header_region
                .or_else(|| expected_region(&message))
                .filter(|_| wrong_region),
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

/// The region in S3's "the region 'us-east-1' is wrong; expecting 'eu-west-1'".
fn expected_region(message: &str) -> Option<String> {
    let rest = &message[message.find("expecting '")? + "expecting '".len()..];
    let region = &rest[..rest.find('\'')?];
    let valid = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    valid.then(|| region.to_owned())
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

    /// A service error built from S3's response: its status, headers and XML body, as the
    /// SDK parses them.
    fn s3_answer(status: u16, headers: &[(&str, &str)], body: &str) -> Failure {
        let mut raw = HttpResponse::new(
            status.try_into().unwrap(),
            SdkBody::from(body.as_bytes().to_vec()),
        );
        for (name, value) in headers {
            raw.headers_mut()
                .insert(name.to_string(), value.to_string());
        }
        let meta = xml_meta(body);
        let err: SdkError<PutObjectError, HttpResponse> =
            SdkError::service_error(PutObjectError::generic(meta), raw);
        Failure::of(&err)
    }

    /// The code and message of an S3 error body, as the SDK reads them.
    fn xml_meta(body: &str) -> ErrorMetadata {
        let tag = |name: &str| {
            let open = format!("<{name}>");
            let start = body.find(&open)? + open.len();
            Some(body[start..start + body[start..].find('<')?].to_owned())
        };
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = tag("Code") {
            meta = meta.code(code);
        }
        if let Some(message) = tag("Message") {
            meta = meta.message(message);
        }
        meta.build()
    }

    #[test]
    fn a_bucket_in_another_region_is_told_with_its_region() {
        let redirect = s3_answer(
            301,
            &[("x-amz-bucket-region", "eu-west-1")],
            "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>",
        );
        assert!(redirect.wrong_region);
        assert_eq!(redirect.bucket_region.as_deref(), Some("eu-west-1"));
        let malformed = s3_answer(
            400,
            &[],
            "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'ap-southeast-2'</Message></Error>",
        );
        assert!(malformed.wrong_region && !malformed.is_transient());
        assert_eq!(malformed.bucket_region.as_deref(), Some("ap-southeast-2"));
        // A HEAD's answer: no body, the header only.
        let head = s3_answer(400, &[("x-amz-bucket-region", "us-west-2")], "");
        assert!(head.wrong_region, "{head:?}");
        assert_eq!(head.message, "HTTP status 400 without an error code");
        assert_eq!(head.bucket_region.as_deref(), Some("us-west-2"));
        // Another 400 is not about regions.
        let other = s3_answer(400, &[], "<Error><Code>InvalidArgument</Code></Error>");
        assert!(!other.wrong_region && other.bucket_region.is_none());
    }

    #[test]
    fn expired_tokens_and_requests_are_expired_credentials() {
        for code in ["ExpiredToken", "ExpiredTokenException", "RequestExpired"] {
            let body = format!("<Error><Code>{code}</Code><Message>expired</Message></Error>");
            let failure = s3_answer(400, &[], &body);
            assert!(failure.expired && failure.credentials, "{code}");
            assert!(!failure.is_transient(), "{code}");
        }
        let unknown = s3_answer(403, &[], "<Error><Code>InvalidAccessKeyId</Code></Error>");
        assert!(unknown.credentials && !unknown.expired);
    }
}
