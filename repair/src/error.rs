//! The one error type of the `repair` crate.

use std::path::PathBuf;

/// What can go wrong while targeting, patching, measuring or storing repairs.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The model failed (bad prompt, context overflow, shape mismatch ...).
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// A repair case cannot be used as given.
    #[error("repair case {case}: {reason}")]
    Case {
        /// The case's id.
        case: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written, or does not hold what it should.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A patch set was made for another model, or the model's weights changed since.
    #[error("the patch set does not fit this model: {0}")]
    Mismatch(String),
    /// Settings that cannot work (a zero budget, an empty set of unrelated prompts ...).
    #[error("invalid settings: {0}")]
    Settings(String),
}

impl From<models::tch::TchError> for RepairError {
    fn from(e: models::tch::TchError) -> Self {
        RepairError::Model(e.into())
    }
}

impl RepairError {
    /// A file error from an I/O or parse error.
    pub fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        RepairError::File { path: path.to_path_buf(), reason: reason.to_string() }
    }
}

/// Result type of the `repair` crate.
pub type Result<T, E = RepairError> = std::result::Result<T, E>;
