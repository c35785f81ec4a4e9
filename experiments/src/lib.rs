//! Benchmarks and experiments: the sandboxed executor for model-written code, HumanEval with pass@k. Specs in
//! RON, the runner and reports come with the rest of the benchmarks issue.

pub mod code_metrics;
pub mod error;
pub mod humaneval;
pub mod runner;
pub mod sandbox;
pub mod spec;

pub use error::{ExperimentError, Result};
