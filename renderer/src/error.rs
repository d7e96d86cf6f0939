//! Everything that can stop a chunk, and how each leaves the process.

use std::path::PathBuf;

use farm_core::exit::FailureClass;
use farm_core::storage::StorageError;

/// Why a chunk did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Plan(#[from] farm_core::plan::PlanError),
    #[error("the .blend `{key}` does not exist: upload it again or check the job's FARM_KEY")]
    SourceMissing { key: String },
    #[error("the .blend `{key}` was replaced after the job was submitted (ETag {found}, job is for {expected}); the new upload gets its own job")]
    SourceChanged {
        key: String,
        expected: String,
        found: String,
    },
    #[error("the .blend `{key}` was replaced while this job rendered it (ETag now {found}, job is for {expected}): stopped before an upload could mix versions; the new upload gets its own job")]
    Superseded {
        key: String,
        expected: String,
        found: String,
    },
    #[error("dependency `{dependency}` of `{key}` was replaced or deleted after the job was submitted (the job is bound to ETag {expected}): stopped so the frames do not mix versions; tag the .blend again to render the project as it is now")]
    DependencyChanged {
        key: String,
        dependency: String,
        expected: String,
    },
    #[error("dependency `{dependency}` cannot be placed in the work folder: its key climbs above the bucket's root")]
    DependencyPath { dependency: String },
    #[error("`{key}` cannot be rendered: {reason}")]
    NotABlend {
        key: String,
        reason: farm_blend::NotABlend,
    },
    #[error("`{key}` was refused: {reason}")]
    Refused { key: String, reason: String },
    #[error("blender could not open `{key}`: {message}; save the scene again in Blender and re-upload it")]
    SceneUnreadable { key: String, message: String },
    #[error("frame {frame} failed to render ({failed} of {total} frames missing after blender {exit}): {message}; log at `{log_key}`")]
    FrameFailed {
        frame: i32,
        failed: usize,
        total: usize,
        exit: String,
        message: String,
        log_key: String,
    },
    #[error("frame {frame} ran past the per-frame time limit of {} s (--frame-timeout, FARM_FRAME_TIMEOUT), so Blender was stopped: lower the frame's samples or resolution, or raise the limit", .limit.as_secs())]
    FrameTimeout {
        frame: i32,
        limit: std::time::Duration,
    },
    #[error("{}", killed_message(*.frame, .exit, *.signal))]
    BlenderKilled {
        frame: i32,
        exit: String,
        /// The signal that ended Blender.
        signal: i32,
    },
    #[error("cannot run blender at {}: {source}; install Blender or set BLENDER to its path", path.display())]
    BlenderMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("work folder {}: {source}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the movie of `{key}` was not made: {} of its frames are missing or not this job's ({}); run farm retry to render them, then the movie is made again", .missing.len(), farm_core::frames::compact(.missing, ", "))]
    MovieFramesMissing { key: String, missing: Vec<i32> },
    #[error(
        "blender did not write the scene's movie ({exit}; {written} file(s) written): {message}"
    )]
    MovieFailed {
        exit: String,
        /// The signal that ended Blender, if one did.
        signal: Option<i32>,
        written: usize,
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("interrupted: blender stopped and open uploads abandoned")]
    Interrupted,
}

/// The signal the OOM killer (and `kill -9`) sends.
const SIGKILL: i32 = 9;

fn killed_message(frame: i32, exit: &str, signal: i32) -> String {
    if signal == SIGKILL {
        format!("blender was killed ({exit}) while rendering frame {frame}: probably out of memory; another attempt may pass, else use a larger task or lower the scene's memory use")
    } else {
        format!("blender crashed ({exit}) while rendering frame {frame}: the scene crashes Blender, so no retry; open it in Blender to find the cause")
    }
}

impl From<farm_jobs::TicketError> for RenderError {
    /// An unreadable frame list by reference is the store's failure; anything else is a bad
    /// configuration.
    fn from(error: farm_jobs::TicketError) -> Self {
        match error {
            farm_jobs::TicketError::FrameList { source, .. } => Self::Storage(source),
            other => Self::Config(other.to_string()),
        }
    }
}

impl RenderError {
    /// How this failure leaves the process; the exit code drives Batch's retry rules.
    pub fn class(&self) -> FailureClass {
        match self {
            Self::Config(_) | Self::BlenderMissing { .. } => FailureClass::Usage,
            Self::Plan(_)
            | Self::SourceMissing { .. }
            | Self::NotABlend { .. }
            | Self::SceneUnreadable { .. }
            | Self::Refused { .. }
            | Self::FrameFailed { .. }
            | Self::FrameTimeout { .. }
            | Self::MovieFramesMissing { .. } => FailureClass::BadInput,
            Self::MovieFailed {
                signal: Some(SIGKILL),
                ..
            } => FailureClass::Transient,
            Self::MovieFailed { .. } => FailureClass::BadInput,
            Self::SourceChanged { .. }
            | Self::Superseded { .. }
            | Self::DependencyChanged { .. } => FailureClass::Superseded,
            Self::DependencyPath { .. } => FailureClass::BadInput,
            // The kernel's OOM killer sends SIGKILL: another attempt (on a less busy host, with
            // the task's memory to itself) may pass. A crash (SIGSEGV, SIGABRT, ...) is the
            // scene's: it crashes again, so retrying only costs money.
            Self::BlenderKilled { signal, .. } if *signal != SIGKILL => FailureClass::BadInput,
            Self::BlenderKilled { .. } | Self::WorkDir { .. } => FailureClass::Transient,
            Self::Storage(e) if e.is_transient() => FailureClass::Transient,
            Self::Storage(_) => FailureClass::BadInput,
            Self::Interrupted => FailureClass::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn killed(signal: i32) -> RenderError {
        RenderError::BlenderKilled {
            frame: 3,
            exit: format!("signal {signal}"),
            signal,
        }
    }

    #[test]
    fn a_blender_crash_is_not_retried_but_an_oom_kill_is() {
        // SIGSEGV, SIGABRT, SIGBUS: the scene crashes Blender every time.
        for signal in [11, 6, 7] {
            assert_eq!(killed(signal).class(), FailureClass::BadInput, "{signal}");
            assert!(killed(signal).to_string().contains("no retry"));
        }
        assert_eq!(killed(SIGKILL).class(), FailureClass::Transient);
    }

    /// The movie job: Blender refusing the movie (or crashing) is the scene's, no retry; an
    /// OOM kill is retried.
    #[test]
    fn a_movie_blender_refuses_is_not_retried_but_an_oom_kill_is() {
        let failed = |signal| RenderError::MovieFailed {
            exit: "exit status: 1".into(),
            signal,
            written: 0,
            message: "Error: Could not initialize streams".into(),
        };
        for signal in [None, Some(11)] {
            assert_eq!(
                failed(signal).class().exit_code(),
                farm_core::exit::BAD_INPUT
            );
        }
        assert_eq!(
            failed(Some(SIGKILL)).class().exit_code(),
            farm_core::exit::TRANSIENT
        );
    }

    #[test]
    fn a_replaced_blend_is_superseded_not_bad_input() {
        for error in [
            RenderError::SourceChanged {
                key: "k".into(),
                expected: "a".into(),
                found: "b".into(),
            },
            RenderError::Superseded {
                key: "k".into(),
                expected: "a".into(),
                found: "b".into(),
            },
            RenderError::DependencyChanged {
                key: "k".into(),
                dependency: "tex/a.png".into(),
                expected: "a".into(),
            },
        ] {
            assert_eq!(error.class().exit_code(), farm_core::exit::SUPERSEDED);
        }
    }
}
