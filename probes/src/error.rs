//! The one error type of the `probes` crate.

/// What can go wrong while building datasets or fitting probes.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// A file or folder could not be read or written.
    #[error(transparent)]
    File(#[from] models::files::FileError),
    /// A value could not be written or read as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Arrays of mismatched shapes.
    #[error("array shape: {0}")]
    Shape(#[from] ndarray::ShapeError),
    /// The inputs cannot be used (empty dataset, mismatched lengths, one class only ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The probe's optimiser failed.
    #[error("fitting the probe failed: {0}")]
    Fit(String),
}

/// Result type of the `probes` crate.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;
