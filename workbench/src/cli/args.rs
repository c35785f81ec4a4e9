//! What every subcommand shares: the model arguments, the progress bar, output folders, and running an
//! operation with its summary printed.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use experiments::ops::features::UnitFunction;
use experiments::ops::{Context, Operation, Report};
use find::interpreters::InterpreterKind;
use indicatif::{ProgressBar, ProgressStyle};
use models::{LoadOptions, Model, Progress};

/// Which model to load and where to run it.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Catalogue name (smollm2-135m-instruct), a .gguf file, or a Hugging Face folder.
    #[arg(long, default_value = models::catalogue::DEFAULT_MODEL)]
    pub model: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// f32, bf16, f16, or for generation weights packed with f32 activations: bf16-weights or int8 (such a model
    /// cannot be patched).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The CPython files a page command reads: where top examples are searched and where simulation scores are
/// measured (shared by `interpret pages` and `features pages`).
#[derive(Debug, Args)]
pub struct PageFilesArgs {
    /// CPython files searched for top examples.
    #[arg(long, default_value_t = 20)]
    pub files: usize,
    /// Further (held-out) CPython files for the simulation scores.
    #[arg(long, default_value_t = 5)]
    pub held_out: usize,
    /// Tokens read per file.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
}

/// A paged unit also described by a FIND interpreter as a function of x written into a template (shared by
/// `interpret pages` and `features pages`).
#[derive(Debug, Args)]
pub struct UnitFunctionArgs {
    /// Also describe every paged unit with the FIND interpreter as a function of x written into this template
    /// ('x = {x}' for numbers, 'import {x}' with --token).
    #[arg(long)]
    pub template: Option<String>,
    /// x is a token, not a number.
    #[arg(long, requires = "template")]
    pub token: bool,
    /// Rounds of the interpreter (16 inputs each).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The interpreter (library: the scientist's family library alone, the baseline before its symbolic search).
    #[arg(long = "function-interpreter", value_parser = interpreter_parser(), default_value = "scientist")]
    pub interpreter: InterpreterKind,
}

impl UnitFunctionArgs {
    /// The settings, when a template was given.
    pub fn settings(&self) -> Option<UnitFunction> {
        self.template.as_ref().map(|template| UnitFunction {
            template: template.clone(),
            numeric: !self.token,
            rounds: self.rounds,
            interpreter: self.interpreter,
        })
    }
}

/// The parser of an interpreter's name.
pub fn interpreter_parser() -> impl TypedValueParser<Value = InterpreterKind> {
    PossibleValuesParser::new(InterpreterKind::ALL.map(InterpreterKind::name)).try_map(|s| s.parse::<InterpreterKind>())
}

impl ModelArgs {
    /// Loads the model with a progress bar.
    pub fn load(&self) -> Result<Model> {
        let options = LoadOptions::parse(&self.device, &self.dtype)?;
        let bar = Bar::new();
        let model = Model::load_with_progress(&self.model, options, &bar)
            .with_context(|| format!("loading model {}", self.model));
        bar.0.finish_and_clear();
        model
    }
}

/// The command line's drawing of [`Progress`]: an indicatif bar on stderr (hidden when it is not a terminal).
pub struct Bar(pub ProgressBar);

impl Bar {
    /// A bar with no stage yet.
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn begin(&self, stage: &str, total: u64) {
        self.0.set_message(stage.to_string());
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }
}

/// `--out`, or a new `runs/<time>-<what>` folder.
pub fn output_dir(out: &Option<PathBuf>, what: &str) -> Result<PathBuf> {
    match out {
        Some(dir) => Ok(dir.clone()),
        None => Ok(experiments::runs::new_run_dir(Path::new("runs"), what)?),
    }
}

/// Runs `operation` on `model` into `out` with a progress bar, then prints its summary (or, with `json`, its
/// results.json) and where the files are.
pub fn run_operation<O: Operation>(operation: &O, model: &Model, seed: u64, out: &Path, json: bool) -> Result<()> {
    run_operation_report(operation, model, seed, out, json).map(|_| ())
}

/// [`run_operation`], handing back the report for a command that says more about it.
pub fn run_operation_report<O: Operation>(
    operation: &O,
    model: &Model,
    seed: u64,
    out: &Path,
    json: bool,
) -> Result<O::Report> {
    let bar = Bar::new();
    let outcome = experiments::ops::run_report(operation, model, &Context { seed, progress: &bar, out });
    bar.0.finish_and_clear();
    let (report, _files) = outcome?;
    if json {
        let path = out.join("results.json");
        println!("{}", std::fs::read_to_string(&path).with_context(|| path.display().to_string())?);
        return Ok(report);
    }
    print_summary(&report, out);
    Ok(report)
}

/// Prints a report's summary lines and the folder its files are in.
pub fn print_summary(report: &impl Report, out: &Path) {
    for line in report.summary() {
        println!("{line}");
    }
    println!("results in {}", out.display());
}

impl Default for Bar {
    fn default() -> Self {
        Bar::new()
    }
}
