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
    /// Only this step of the run given by --resume (with --shard or --merge).
    #[arg(long, requires = "resume")]
    step: Option<usize>,
    /// Run only the share K/N of the step's units not done yet (unit u when u mod N = K; a step without units
    /// runs whole in shard 0), e.g. one array task of a cluster job per shard.
    #[arg(long, value_name = "K/N", requires = "step", value_parser = parse_shard)]
    shard: Option<experiments::units::Shard>,
    /// Build the step's report from its units once every shard is done.
    #[arg(long, requires = "step", conflicts_with = "shard")]
    merge: bool,
    /// Submit to Slurm instead of running here.
    #[command(flatten)]
    cluster: super::cluster::SlurmArgs,
}

/// Reads `K/N` as shard K of N.
fn parse_shard(text: &str) -> Result<experiments::units::Shard> {
    let (index, of) = text.split_once('/').ok_or_else(|| anyhow::anyhow!("a shard is K/N, e.g. 0/4"))?;
    Ok(experiments::units::Shard::new(index.trim().parse()?, of.trim().parse()?)?)
}

/// Runs (or resumes) a spec and prints each step's summary.
pub fn run_spec(args: &RunArgs) -> Result<()> {
    let dir = match (&args.resume, &args.spec) {
        (Some(dir), _) => dir.clone(),
        (None, Some(spec)) => experiments::runner::create_run(spec, &args.runs)?,
        (None, None) => anyhow::bail!("give a spec file, or --resume DIR"),
    };
    println!("run folder: {}", dir.display());
    if args.cluster.slurm {
        anyhow::ensure!(args.step.is_none(), "--slurm submits every step not done; it takes no --step");
        return super::cluster::submit(&dir, &args.cluster);
    }
    if let Some(step) = args.step {
        return run_part(&dir, step, args);
    }
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

/// `--step` with `--shard` or `--merge`: one shard of a step, or its merge.
fn run_part(dir: &std::path::Path, step: usize, args: &RunArgs) -> Result<()> {
    let bar = Bar::new();
    let done = match (args.shard, args.merge) {
        (Some(shard), _) => experiments::runner::run_shard(dir, step, shard, &bar),
        (None, true) => experiments::runner::merge_step(dir, step, &bar).map(Some),
        (None, false) => anyhow::bail!("--step needs --shard K/N or --merge"),
    };
    bar.0.finish_and_clear();
    match done? {
        Some(summary) => {
            println!("step {} {} done ({:.1} s)", summary.index, summary.kind, summary.seconds);
            summary.lines.iter().for_each(|line| println!("  {line}"));
        }
        None => println!("step {step}: the shard's units are done"),
    }
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
