//! The one error type of the `find` crate.

/// What can go wrong while building suites, interpreting functions or describing neurons.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// A file or folder could not be read or written.
    #[error(transparent)]
    File(#[from] models::files::FileError),
    /// A value could not be written or read as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The inputs cannot be used (a neuron out of range, a template without `{x}`, a malformed suite ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// Result type of the `find` crate.
pub type Result<T, E = FindError> = std::result::Result<T, E>;
