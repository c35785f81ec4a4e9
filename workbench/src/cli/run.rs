//! `workbench run` (an experiment spec, or the resumption of a run) and `workbench gui`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::args::Bar;

/// `workbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The spec file (experiments/specs/*.ron).
    spec: Option<PathBuf>,
    /// Resume the run in this folder instead (steps already done are kept).
    #[arg(long, conflicts_with = "spec")]
    resume: Option<PathBuf>,
    /// Where new runs go.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
}

/// Runs (or resumes) a spec and prints each step's summary.
pub fn run_spec(args: &RunArgs) -> Result<()> {
    let dir = match (&args.resume, &args.spec) {
        (Some(dir), _) => dir.clone(),
        (None, Some(spec)) => experiments::runner::create_run(spec, &args.runs)?,
        (None, None) => anyhow::bail!("give a spec file, or --resume DIR"),
    };
    println!("run folder: {}", dir.display());
    let bar = Bar::new();
    let steps = experiments::runner::run(&dir, &bar);
    bar.0.finish_and_clear();
    for step in &steps? {
        println!("step {} {} ({:.1} s)", step.index, step.kind, step.seconds);
        for line in &step.lines {
            println!("  {line}");
        }
    }
    println!("report: {}", dir.join("report.md").display());
    Ok(())
}

/// `workbench gui`.
#[derive(Debug, Args)]
pub struct GuiArgs {
    /// Load this model at start (catalogue name, .gguf file or Hugging Face folder).
    #[arg(long)]
    model: Option<String>,
    /// Load the model, save a screenshot of every view into this folder, then quit.
    #[arg(long)]
    screenshots: Option<PathBuf>,
}

/// Opens the desktop app.
pub fn gui(args: GuiArgs) -> Result<()> {
    workbench::gui::run(workbench::gui::GuiOptions { model: args.model, screenshots: args.screenshots })
}
