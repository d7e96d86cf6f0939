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
    #[error("`{key}` cannot be rendered: {reason}")]
    NotABlend {
        key: String,
        reason: farm_core::blend::NotABlend,
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
    #[error("blender was killed ({exit}) while rendering frame {frame}: probably out of memory or a crash; another attempt may pass")]
    BlenderKilled { frame: i32, exit: String },
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
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("interrupted: blender stopped and open uploads abandoned")]
    Interrupted,
}

impl RenderError {
    /// How this failure leaves the process; the exit code drives Batch's retry rules.
    pub fn class(&self) -> FailureClass {
        match self {
            Self::Config(_) | Self::BlenderMissing { .. } => FailureClass::Usage,
            Self::Plan(_)
            | Self::SourceMissing { .. }
            | Self::SourceChanged { .. }
            | Self::NotABlend { .. }
            | Self::SceneUnreadable { .. }
            | Self::Refused { .. }
            | Self::FrameFailed { .. } => FailureClass::BadInput,
            Self::BlenderKilled { .. } | Self::WorkDir { .. } => FailureClass::Transient,
            Self::Storage(e) if e.is_transient() => FailureClass::Transient,
            Self::Storage(_) => FailureClass::BadInput,
            Self::Interrupted => FailureClass::Interrupted,
        }
    }
}
