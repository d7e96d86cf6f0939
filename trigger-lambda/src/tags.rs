//! Reading an object's tags: the one S3 call the [`Storage`](farm_core::Storage) port has no
//! place for.

use std::future::Future;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// A failed GetObjectTagging, after the SDK's own retries.
#[derive(Debug, thiserror::Error)]
#[error("reading the tags of `{key}` in bucket `{bucket}` failed: {message}")]
pub struct TagError {
    pub bucket: String,
    pub key: String,
    pub message: String,
}

/// Reads the tags of an object.
pub trait TagReader: Send + Sync {
    /// The object's tags as `(name, value)` pairs, in S3's order; `Ok(None)` if the object (or
    /// that version of it) does not exist, e.g. because it was deleted since the event.
    fn tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<Vec<(String, String)>>, TagError>> + Send;
}

impl TagReader for aws_sdk_s3::Client {
    async fn tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<Vec<(String, String)>>, TagError> {
        let result = self
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output
                    .tag_set()
                    .iter()
                    .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
                    .collect(),
            )),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(TagError {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                message: describe(&err),
            }),
        }
    }
}

fn is_missing<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some("NoSuchKey" | "NoSuchVersion" | "NotFound")
        ),
        _ => false,
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
) -> String {
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
            }
        }
        other => aws_sdk_s3::error::DisplayErrorContext(other).to_string(),
    }
}
