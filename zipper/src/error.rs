//! Why a zip run failed, and how that failure leaves the process.

use farm_core::exit::FailureClass;
use farm_core::frames::compact;
use farm_core::storage::StorageError;

/// A failed zip run. Whatever the variant, no `frames.zip` was made visible by this run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZipError {
    /// The configuration is unusable (an empty key, a malformed frame list, a zero window).
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Expected frames are not under the frames prefix; `missing.json` lists them.
    #[error(
        "{} of {expected} expected frames are missing{}: {}{}; render them again (farm retry), \
         then rerun the zipper (they are also listed in `{report}`)",
        .missing.len(),
        if *.stale > 0 { format!(" ({stale} of them only from another upload or format)") } else { String::new() },
        compact(.missing, ", "),
        .views.as_ref().map(|views| format!(" ({views})")).unwrap_or_default()
    )]
    Missing {
        /// The frames not rendered for this job, sorted.
        missing: Vec<i32>,
        /// The views missing beside current ones (`frame 2 has no view file _R`).
        views: Option<String>,
        /// How many of them have only an object of another upload or format.
        stale: usize,
        /// How many frames the job expects.
        expected: usize,
        /// Key of the `missing.json` written for this run.
        report: String,
    },
    /// One expected frame exists twice, both claiming to be this job's.
    #[error(
        "frame {frame} is present more than once ({}): delete all but one, then rerun the zipper",
        .keys.join(", ")
    )]
    Ambiguous {
        /// The frame number.
        frame: i32,
        /// Every key holding it.
        keys: Vec<String>,
    },
    /// A storage operation failed.
    #[error("{action}: {source}")]
    Storage {
        /// What the zipper was doing, e.g. `listing the frames`.
        action: String,
        /// The storage failure, which decides whether a retry can help.
        #[source]
        source: StorageError,
    },
    /// Writing the archive failed (the zip writer or the pipe to the upload reported an error).
    #[error("writing the archive failed: {source}; rerun the zipper")]
    Archive {
        /// The writer's error.
        #[source]
        source: std::io::Error,
    },
    /// Stopped by a shutdown request (SIGTERM) before the archive was finished.
    #[error(
        "interrupted before the archive was finished: the partial upload was discarded; rerun \
         the zipper"
    )]
    Interrupted,
}

impl From<farm_jobs::TicketError> for ZipError {
    /// An unreadable frame list by reference is the store's failure; anything else is a bad
    /// configuration.
    fn from(error: farm_jobs::TicketError) -> Self {
        match error {
            farm_jobs::TicketError::FrameList { key, source } => {
                Self::storage(format!("reading the frame list `{key}`"), source)
            }
            other => Self::config(other.to_string()),
        }
    }
}

impl ZipError {
    /// Wraps a storage failure with what the zipper was doing.
    pub fn storage(action: impl Into<String>, source: StorageError) -> Self {
        Self::Storage {
            action: action.into(),
            source,
        }
    }

    /// Wraps a failure of the zip writer.
    pub fn archive(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Archive {
            source: std::io::Error::other(source),
        }
    }

    /// A configuration error with a message saying what to fix.
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config {
            message: message.into(),
        }
    }

    /// How this failure leaves the process: bad input is final, transient failures and
    /// interruptions are worth another attempt.
    pub fn class(&self) -> FailureClass {
        match self {
            Self::Config { .. } => FailureClass::Usage,
            Self::Missing { .. } | Self::Ambiguous { .. } => FailureClass::BadInput,
            Self::Storage { source, .. } => storage_class(source),
            Self::Archive { .. } => FailureClass::Transient,
            Self::Interrupted => FailureClass::Interrupted,
        }
    }

    /// The process exit code for this failure (see `farm_core::exit`).
    pub fn exit_code(&self) -> i32 {
        self.class().exit_code()
    }
}

/// Network, throttling and local I/O errors are transient; so is an object that vanished or
/// changed between the listing and the download, which a fresh run sees consistently. Denied
/// access, invalid keys and other permanent refusals are bad input no retry fixes.
fn storage_class(error: &StorageError) -> FailureClass {
    if error.is_transient()
        || matches!(
            error,
            StorageError::NotFound { .. } | StorageError::Changed { .. }
        )
    {
        FailureClass::Transient
    } else {
        FailureClass::BadInput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_frames_are_listed_as_ranges() {
        let error = ZipError::Missing {
            missing: vec![1, 2, 3, 7],
            views: None,
            stale: 0,
            expected: 10,
            report: "k/missing.json".into(),
        };
        let message = error.to_string();
        assert!(
            message.starts_with("4 of 10 expected frames are missing: 1-3, 7;"),
            "{message}"
        );
        assert!(message.contains("k/missing.json"), "{message}");
        assert_eq!(error.class(), FailureClass::BadInput);
        assert_eq!(error.exit_code(), farm_core::exit::BAD_INPUT);
    }

    #[test]
    fn failures_are_classified() {
        let transient = ZipError::storage(
            "downloading",
            StorageError::Transient {
                operation: "get",
                key: "k".into(),
                message: "timeout".into(),
            },
        );
        assert_eq!(transient.class(), FailureClass::Transient);
        let denied = ZipError::storage(
            "listing",
            StorageError::AccessDenied {
                key: "k".into(),
                message: "no".into(),
            },
        );
        assert_eq!(denied.class(), FailureClass::BadInput);
        let vanished = ZipError::storage("downloading", StorageError::NotFound { key: "k".into() });
        assert_eq!(vanished.class(), FailureClass::Transient);
        assert_eq!(ZipError::config("x").class(), FailureClass::Usage);
        assert_eq!(ZipError::Interrupted.exit_code(), 143);
        let ambiguous = ZipError::Ambiguous {
            frame: 4,
            keys: vec!["f/0004.png".into(), "f/0004.exr".into()],
        };
        assert_eq!(ambiguous.class(), FailureClass::BadInput);
        assert!(ambiguous.to_string().contains("f/0004.png, f/0004.exr"));
    }
}
