//! Benchmarks and experiments: the sandboxed executor for model-written code, HumanEval with pass@k, line
//! completion and perplexity on held-out code, repair cases mined from the model's failures and the repair study,
//! every operation's one home (`ops`), experiment specs in RON, and the runner that writes reports, locally or as Slurm array jobs.

pub mod code_metrics;
pub mod error;
pub mod humaneval;
pub mod journal;
pub mod ops;
pub mod repair_cases;
pub mod repair_study;
pub mod runner;
pub mod runs;
pub mod sandbox;
pub mod slurm;
pub mod spec;
pub mod units;

pub use error::{ExperimentError, Result};
