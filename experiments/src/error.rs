//! The one error type of the `experiments` crate.

/// What can go wrong while running benchmarks and experiments.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] models::ModelError),
    /// The sandbox could not run a program (not: the program failed).
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// A file or folder could not be read or written.
    #[error(transparent)]
    File(#[from] models::files::FileError),
    /// A value could not be written or read as JSON.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A data file is missing or malformed.
    #[error("{0}")]
    Data(String),
    /// An experiment spec is malformed (the message names the file, line and field).
    #[error("spec {0}")]
    Spec(String),
    /// A probing step failed.
    #[error(transparent)]
    Probe(#[from] probes::ProbeError),
    /// An interpretation step failed.
    #[error(transparent)]
    Find(#[from] find::FindError),
    /// The cluster scheduler refused or failed (the message says what to do).
    #[error("Slurm: {0}")]
    Cluster(String),
    /// A repair failed.
    #[error(transparent)]
    Repair(#[from] repair::RepairError),
}

/// Result type of the `experiments` crate.
pub type Result<T, E = ExperimentError> = std::result::Result<T, E>;
