//! `workbench run --slurm` (a run's steps as Slurm array jobs) and `workbench status` (where such a run stands).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use experiments::slurm::{self, SlurmSettings};

use super::args::Bar;

/// The Slurm flags of `workbench run` (each overrides the spec's `slurm: (...)`).
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Submit the run to Slurm: per step an array job (a task per shard of its units) and a merge job that waits
    /// for it; with --resume, only the shards not done.
    #[arg(long)]
    pub slurm: bool,
    /// The partition.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// The most shards a step is split into (default 16).
    #[arg(long, requires = "slurm")]
    array_max: Option<usize>,
    /// The most shards of a step running at once.
    #[arg(long, requires = "slurm")]
    parallelism: Option<usize>,
    /// Each job's time limit (Slurm's --time: 30, 2:00:00 ...).
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// CPUs per shard.
    #[arg(long, requires = "slurm")]
    cpus: Option<usize>,
    /// Memory per shard (Slurm's --mem: 8G ...).
    #[arg(long, requires = "slurm")]
    mem: Option<String>,
    /// GPUs per shard.
    #[arg(long, requires = "slurm")]
    gpus: Option<usize>,
    /// One more sbatch option, written into the batch scripts as given (repeatable): --sbatch-arg=--qos=high.
    #[arg(long = "sbatch-arg", requires = "slurm", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// The workbench the jobs run, as the compute nodes see it (default: this binary).
    #[arg(long, requires = "slurm")]
    workbench: Option<PathBuf>,
    /// Skip the check that a compute node can write the run folder.
    #[arg(long, requires = "slurm")]
    no_probe: bool,
}

impl SlurmArgs {
    /// The settings these flags give.
    fn settings(&self) -> SlurmSettings {
        SlurmSettings {
            partition: self.partition.clone(),
            array_max: self.array_max,
            parallelism: self.parallelism,
            time: self.time.clone(),
            cpus: self.cpus,
            mem: self.mem.clone(),
            gpus: self.gpus,
            sbatch_args: self.sbatch_args.clone(),
            workbench: self.workbench.clone(),
            probe: self.no_probe.then_some(false),
        }
    }
}

/// Submits the run in `dir` (flags over the spec's settings) and prints its jobs.
pub fn submit(dir: &Path, args: &SlurmArgs) -> Result<()> {
    let spec = experiments::spec::Spec::load(&dir.join("spec.ron"))?;
    let settings = args.settings().over(&spec.slurm.unwrap_or_default());
    let started = std::time::Instant::now();
    let jobs = slurm::submit(dir, &settings, &std::env::current_exe()?)?;
    for step in &jobs {
        let array = step.array_job.map_or("every shard done".into(), |id| format!("array job {id}"));
        println!(
            "step {}: {} of {} shards submitted ({array}), merge job {}",
            step.step,
            step.submitted.len(),
            step.shards,
            step.merge_job
        );
    }
    println!(
        "submitted in {:.2} s; see where it stands with: workbench status {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// `workbench status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run folder.
    dir: PathBuf,
    /// Follow the run with a progress bar until every step is done (exit 0) or a job fails (exit 1).
    #[arg(long)]
    watch: bool,
}

/// Prints where a run submitted to Slurm stands.
pub fn status(args: &StatusArgs) -> Result<()> {
    let status = if args.watch {
        let bar = Bar::new();
        let status = slurm::status::watch(&args.dir, Duration::from_secs(2), &bar);
        bar.0.finish_and_clear();
        status?
    } else {
        slurm::status::status(&args.dir)?
    };
    print!("{status}");
    if status.finished() {
        println!("report: {}", args.dir.join("report.md").display());
    }
    let failed = status.failed();
    if !failed.is_empty() {
        anyhow::bail!(
            "{} job(s) failed; resubmit what is not done with: workbench run --resume {} --slurm",
            failed.len(),
            args.dir.display()
        );
    }
    Ok(())
}
