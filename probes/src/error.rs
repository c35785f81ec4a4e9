//! The one error type of the `probes` crate.

/// What can go wrong while building datasets or fitting probes.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// The inputs cannot be used (empty dataset, mismatched lengths, one class only ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The probe's optimiser failed.
    #[error("fitting the probe failed: {0}")]
    Fit(String),
}

/// Result type of the `probes` crate.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;
