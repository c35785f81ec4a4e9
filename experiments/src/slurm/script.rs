//! The batch scripts the backend writes into a step's `slurm/` folder: one for the step's shards (an array job, a
//! task per shard) and one for its merge. Each runs the workbench itself on the run folder, so a job does exactly
//! what `workbench run --resume DIR --step S --shard K/N` (or `--merge`) does by hand.

use std::path::Path;

use super::SlurmSettings;
use crate::error::{ExperimentError, Result};

/// What a script is for.
pub enum Job<'a> {
    /// The array of `shards` shards of step `step` (in `folder`).
    Shards { step: usize, folder: &'a str, shards: usize },
    /// The merge of step `step` (in `folder`) and, after the last step, the run's report.
    Merge { step: usize, folder: &'a str },
    /// The check that the run folder is writable from a compute node: touches `file`.
    Probe { file: &'a Path },
}

/// The text of the batch script of `job` for the run in `dir` named `name`.
pub fn batch_script(job: &Job, settings: &SlurmSettings, workbench: &Path, dir: &Path, name: &str) -> Result<String> {
    let logs = |folder: &str| dir.join(folder).join("slurm");
    let (exe, run) = (quoted(workbench)?, quoted(dir)?);
    let (what, job_name, output, command) = match *job {
        Job::Shards { step, folder, shards } => (
            format!("shard $SLURM_ARRAY_TASK_ID of {shards} of step {step} ({folder})"),
            format!("wb-{name}-{step}"),
            logs(folder).join("shard-%a-job-%A.log"),
            format!("exec {exe} run --resume {run} --step {step} --shard \"$SLURM_ARRAY_TASK_ID/{shards}\""),
        ),
        Job::Merge { step, folder } => (
            format!("the merge of step {step} ({folder})"),
            format!("wb-{name}-{step}-merge"),
            logs(folder).join("merge-job-%j.log"),
            format!("exec {exe} run --resume {run} --step {step} --merge"),
        ),
        Job::Probe { file } => (
            "the check that compute nodes can write the run folder".into(),
            format!("wb-{name}-probe"),
            dir.join("slurm").join("probe-job-%j.log"),
            format!("test -d {run} && hostname > {}", quoted(file)?),
        ),
    };
    let mut text = format!(
        "#!/bin/bash\n# Written by `workbench run --slurm`: {what} of the run in {}.\n#SBATCH --job-name={}\n#SBATCH --output={}\n",
        dir.display(),
        job_name,
        output.display()
    );
    let mut option = |key: &str, value: &dyn std::fmt::Display| text.push_str(&format!("#SBATCH --{key}={value}\n"));
    if let Some(partition) = &settings.partition {
        option("partition", partition);
    }
    match job {
        Job::Probe { .. } => option("time", &"5"),
        _ => {
            if let Some(time) = &settings.time {
                option("time", time);
            }
            if let Some(cpus) = settings.cpus {
                option("cpus-per-task", &cpus);
            }
            if let Some(mem) = &settings.mem {
                option("mem", mem);
            }
        }
    }
    if let (Job::Shards { .. }, Some(gpus)) = (job, settings.gpus) {
        option("gpus", &gpus);
    }
    for arg in &settings.sbatch_args {
        text.push_str(&format!("#SBATCH {arg}\n"));
    }
    text.push_str("set -euo pipefail\n");
    if settings.cpus.is_some() && !matches!(job, Job::Probe { .. }) {
        text.push_str("export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK\n");
    }
    text.push_str(&command);
    text.push('\n');
    Ok(text)
}

/// `path` in single quotes for the shell; paths with characters Slurm's `#SBATCH` lines cannot hold are refused.
pub fn quoted(path: &Path) -> Result<String> {
    let text = path.to_str().ok_or_else(|| ExperimentError::Cluster(format!("{} is not UTF-8", path.display())))?;
    if text.chars().any(|c| c.is_whitespace() || c == '\'' || c == '"' || c == '%' || c == '\\') {
        return Err(ExperimentError::Cluster(format!(
            "{text}: a path in a batch script may not hold spaces, quotes, backslashes or '%'; move the run folder"
        )));
    }
    Ok(format!("'{text}'"))
}
