//! One home per operation. Each operation is a settings type (the fields of its spec step, filled by the command
//! line's arguments or a view's controls) whose [`Operation::run`] returns a report with a [`Report::summary`]
//! and a [`Report::write`]. The spec runner, the command line and the app all call these, so the same settings
//! give the same numbers through every front-end.

pub mod dictionary;
pub mod export;
pub mod features;
pub mod humaneval;
pub mod interpret;
pub mod lens;
pub mod lines;
pub mod pages;
pub mod perplexity;
pub mod probe;
pub mod repair;
pub mod repair_sequence;
pub mod repair_set;
pub mod repair_study;

use std::path::Path;

use models::{Model, Progress};
use serde::Serialize;

use crate::error::Result;

/// What every operation gets besides its settings.
pub struct Context<'a> {
    /// Seed of everything random (splits, control tasks, generated suites and programs, sampling).
    pub seed: u64,
    /// Where progress goes (and where cancellation comes from).
    pub progress: &'a dyn Progress,
    /// The folder the report is written to; operations that journal as they go (the repair study) write there
    /// while they run.
    pub out: &'a Path,
}

/// A path as a spec names it: taken from the run folder (the parent of `out`) when it is relative and something
/// there has that name, so that a step can name an earlier step's output (`step-00-train-dictionary/dictionary`);
/// else as given.
pub fn in_run(out: &Path, path: &Path) -> std::path::PathBuf {
    match out.parent().map(|run| run.join(path)) {
        Some(inside) if path.is_relative() && inside.exists() => inside,
        _ => path.to_path_buf(),
    }
}

/// Settings of every repair method with the transcoder's path taken from the run folder when it names an earlier
/// step's dictionary ([`features_in_run`]).
pub fn repair_config_in_run(config: &::repair::RepairConfig, out: &Path) -> ::repair::RepairConfig {
    ::repair::RepairConfig { features: features_in_run(&config.features, out), ..config.clone() }
}

/// Feature settings with the transcoder's path taken from the run folder when it names an earlier step's dictionary
/// ([`in_run`]).
pub fn features_in_run(features: &::repair::FeatureConfig, out: &Path) -> ::repair::FeatureConfig {
    let transcoder = features.transcoder.as_deref().map(|path| in_run(out, path));
    ::repair::FeatureConfig { transcoder, ..features.clone() }
}

/// An operation: its settings are `self`.
pub trait Operation {
    /// What it found.
    type Report: Report;
    /// Runs it on `model`. The model is left as it was, unless the operation says otherwise.
    fn run(&self, model: &Model, context: &Context) -> Result<Self::Report>;
}

/// What an operation found.
pub trait Report: Serialize {
    /// The headline numbers, one line each (printed by the command line, listed in report.md).
    fn summary(&self) -> Vec<String>;
    /// Writes `results.json` and the operation's other files into `dir`; returns the names of what it wrote,
    /// plots first.
    fn write(&self, dir: &Path) -> Result<Vec<String>>;
}

/// What [`run`] returns: the summary lines and the files written.
pub type Outcome = (Vec<String>, Vec<String>);

/// Runs `operation` and writes its report into `context.out` (created if needed).
pub fn run<O: Operation>(operation: &O, model: &Model, context: &Context) -> Result<Outcome> {
    let (report, files) = run_report(operation, model, context)?;
    Ok((report.summary(), files))
}

/// [`run`], handing back the report itself with the files written.
pub fn run_report<O: Operation>(operation: &O, model: &Model, context: &Context) -> Result<(O::Report, Vec<String>)> {
    std::fs::create_dir_all(context.out).map_err(models::files::at(context.out))?;
    let report = operation.run(model, context)?;
    let files = report.write(context.out)?;
    Ok((report, files))
}

/// Writes `value` as pretty JSON to `dir/name`, atomically.
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    write_file(dir, name, &serde_json::to_vec_pretty(value)?)
}

/// Writes `bytes` to `dir/name`, atomically, creating `dir`.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(models::files::at(dir))?;
    models::files::write_atomically(&dir.join(name), bytes)?;
    Ok(())
}

/// The names of files, as owned strings.
fn names(files: &[&str]) -> Vec<String> {
    files.iter().map(|f| f.to_string()).collect()
}
