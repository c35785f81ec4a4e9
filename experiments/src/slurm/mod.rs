//! The Slurm backend: a run's steps as array jobs on a cluster, one task per shard of a step's units (see
//! [`crate::units`]), each step's merge as a job that waits for its array (`--dependency=afterok`), and each step's
//! array waiting for the merge of the step before. Every job runs the workbench on the run folder (which the nodes
//! must share), so a cluster run writes what a local run writes and its results are the same. What was submitted is
//! recorded in the run folder's `slurm/jobs.json`; [`status`] reads it beside the done markers.

mod scheduler;
mod script;
pub mod status;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::runner::StepPlan;
use crate::units::Shard;
pub use scheduler::JobId;
use script::Job;

/// How a run is submitted: the spec's `slurm: (...)`, each field overridden by the command line's flag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmSettings {
    /// The partition (`--partition`); the cluster's default when unset.
    pub partition: Option<String>,
    /// The most shards a step is split into (the array's size); 16 when unset.
    pub array_max: Option<usize>,
    /// The most shards of a step running at once (`--array=...%P`); no limit when unset.
    pub parallelism: Option<usize>,
    /// Each job's time limit (`--time`, e.g. `30` minutes or `2:00:00`).
    pub time: Option<String>,
    /// CPUs per shard (`--cpus-per-task`; the shard's torch threads too).
    pub cpus: Option<usize>,
    /// Memory per shard (`--mem`, e.g. `8G`).
    pub mem: Option<String>,
    /// GPUs per shard (`--gpus`).
    pub gpus: Option<usize>,
    /// More `#SBATCH` options, written as given (`--qos=high`).
    pub sbatch_args: Vec<String>,
    /// The workbench the jobs run, as the compute nodes see it (a wrapper script that loads modules first, say);
    /// the submitting binary when unset.
    pub workbench: Option<PathBuf>,
    /// Whether to check with a tiny job that a compute node can write the run folder before submitting (default
    /// true).
    pub probe: Option<bool>,
}

impl SlurmSettings {
    /// These settings, with the unset ones taken from `spec`.
    pub fn over(&self, spec: &SlurmSettings) -> SlurmSettings {
        SlurmSettings {
            partition: self.partition.clone().or_else(|| spec.partition.clone()),
            array_max: self.array_max.or(spec.array_max),
            parallelism: self.parallelism.or(spec.parallelism),
            time: self.time.clone().or_else(|| spec.time.clone()),
            cpus: self.cpus.or(spec.cpus),
            mem: self.mem.clone().or_else(|| spec.mem.clone()),
            gpus: self.gpus.or(spec.gpus),
            sbatch_args: [spec.sbatch_args.clone(), self.sbatch_args.clone()].concat(),
            workbench: self.workbench.clone().or_else(|| spec.workbench.clone()),
            probe: self.probe.or(spec.probe),
        }
    }

    fn array_max(&self) -> usize {
        self.array_max.unwrap_or(16).max(1)
    }
}

/// What one submission did for one step: its array (the shards that were not done) and its merge job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepJobs {
    /// The step.
    pub step: usize,
    /// How many shards the step's units are split into.
    pub shards: usize,
    /// The shards submitted (all, or on a resume those not done).
    pub submitted: Vec<usize>,
    /// The array job of the submitted shards (none when every shard was done).
    pub array_job: Option<JobId>,
    /// The merge job.
    pub merge_job: JobId,
}

/// The file in a run folder that records every submission, oldest first.
const JOBS_FILE: &str = "slurm/jobs.json";

/// Every step's jobs submitted so far for the run in `dir`, oldest first (none when it was never submitted).
pub fn submitted(dir: &Path) -> Result<Vec<StepJobs>> {
    let path = dir.join(JOBS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| ExperimentError::Data(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(models::files::at(&path)(e).into()),
    }
}

/// Submits every step of the run in `dir` that is not done, each as an array of its shards not done plus a merge
/// job, chained step after step; the jobs run `settings.workbench`, else `this_binary` (it must be where the nodes
/// find it). A resumed run keeps each step's number of shards and submits only the shards without done markers.
/// Refused, before anything is submitted, when the run folder is not writable here, when a compute node cannot
/// write it (the probe job; `probe: false` skips it), or while jobs of an earlier submission still run. Each step's
/// jobs are recorded as soon as they are submitted.
pub fn submit(dir: &Path, settings: &SlurmSettings, this_binary: &Path) -> Result<Vec<StepJobs>> {
    let dir = std::path::absolute(dir).map_err(models::files::at(dir))?;
    script::quoted(&dir)?;
    check_writable_here(&dir)?;
    let plan = crate::runner::plan(&dir)?;
    if plan.iter().all(|step| step.done) {
        return Err(ExperimentError::Cluster(format!("every step of {} is done: nothing to submit", dir.display())));
    }
    let mut recorded = submitted(&dir)?;
    clear_earlier_jobs(&recorded)?;
    let submitter = Submitter {
        dir: &dir,
        settings,
        workbench: settings.workbench.as_deref().unwrap_or(this_binary),
        name: job_name(&crate::spec::Spec::load(&dir.join("spec.ron"))?.name),
    };
    if settings.probe.unwrap_or(true) {
        submitter.probe_from_a_node()?;
    }
    let mut jobs = Vec::new();
    let mut after: Option<JobId> = None;
    for step in plan.iter().filter(|step| !step.done) {
        let earlier = recorded.iter().rev().find(|jobs| jobs.step == step.index);
        let shards = earlier.map_or_else(|| step.done_units.len().min(settings.array_max()), |jobs| jobs.shards);
        let todo: Vec<usize> = (0..shards).filter(|&index| !step.shard_done(Shard { index, of: shards })).collect();
        let submitted = submitter.step(step, shards, &todo, after)?;
        after = Some(submitted.merge_job);
        recorded.push(submitted.clone());
        crate::ops::write_json(&dir.join("slurm"), "jobs.json", &recorded)?;
        jobs.push(submitted);
    }
    Ok(jobs)
}

/// What every job of one submission shares.
struct Submitter<'a> {
    dir: &'a Path,
    settings: &'a SlurmSettings,
    workbench: &'a Path,
    name: String,
}

impl Submitter<'_> {
    /// Writes `job`'s batch script as `file` in `folder`; its path.
    fn script(&self, folder: &Path, file: &str, job: &Job) -> Result<PathBuf> {
        let text = script::batch_script(job, self.settings, self.workbench, self.dir, &self.name)?;
        crate::ops::write_file(folder, file, text.as_bytes())?;
        Ok(folder.join(file))
    }

    /// Writes step `step`'s scripts and submits its shards `todo` (of `shards`) after job `after`, then its merge.
    fn step(&self, step: &StepPlan, shards: usize, todo: &[usize], after: Option<JobId>) -> Result<StepJobs> {
        let folder = self.dir.join(&step.folder).join("slurm");
        let dependency = |job: Option<JobId>| job.map(|id| format!("--dependency=afterok:{id}")).into_iter();
        let array_job = if todo.is_empty() {
            None
        } else {
            let job = Job::Shards { step: step.index, folder: &step.folder, shards };
            let script = self.script(&folder, "shards.sbatch", &job)?;
            let indices: Vec<String> = todo.iter().map(usize::to_string).collect();
            let limit = self.settings.parallelism.map(|p| format!("%{}", p.max(1))).unwrap_or_default();
            let mut options = vec![format!("--array={}{limit}", indices.join(","))];
            options.extend(dependency(after));
            Some(scheduler::sbatch(&script, &options)?)
        };
        let script = self.script(&folder, "merge.sbatch", &Job::Merge { step: step.index, folder: &step.folder })?;
        let merge_job = scheduler::sbatch(&script, &dependency(array_job.or(after)).collect::<Vec<_>>())?;
        Ok(StepJobs { step: step.index, shards, submitted: todo.to_vec(), array_job, merge_job })
    }

    /// Submits a tiny job that writes a file into the run folder and waits (up to a minute) for it to appear here: a
    /// run folder the nodes do not share, or cannot write, is refused with what the probe saw.
    fn probe_from_a_node(&self) -> Result<()> {
        let folder = self.dir.join("slurm");
        let file = folder.join(format!("probe-{}", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let job = scheduler::sbatch(&self.script(&folder, "probe.sbatch", &Job::Probe { file: &file })?, &[])?;
        let arrived = || {
            let here = file.exists();
            if here {
                let _ = std::fs::remove_file(&file);
            }
            here
        };
        let started = Instant::now();
        loop {
            if arrived() {
                return Ok(());
            }
            // Right after submission squeue may not list the job yet: unknown counts as ended only after a while.
            let states = scheduler::states(&[job])?;
            let ended = if states.is_empty() {
                started.elapsed() > Duration::from_secs(10)
            } else {
                states.iter().all(|s| !s.is_active())
            };
            if ended {
                // The file may land a moment after the job ends on a network filesystem.
                std::thread::sleep(Duration::from_secs(2));
                if arrived() {
                    return Ok(());
                }
                let log = folder.join(format!("probe-job-{job}.log"));
                let said = std::fs::read_to_string(&log)
                    .map_or_else(|_| "not here either".into(), |t| format!("{:?}", t.trim()));
                return Err(ExperimentError::Cluster(format!(
                    "the probe job {job} ended but its file {} is not here: the run folder must be on a filesystem the \
                     compute nodes share and can write (its log {}: {said}); nothing else was submitted",
                    file.display(),
                    log.display()
                )));
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = scheduler::scancel(&[job]);
                return Err(ExperimentError::Cluster(format!(
                    "the probe job {job} did not run within 60 s (a busy queue?); nothing else was submitted. Skip the \
                     check with --no-probe (probe: false in the spec's slurm settings)"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A spec's name as a job name: letters, digits, `-` and `_`.
fn job_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Refuses a run folder this process cannot write (read-only, full, not ours) before anything is submitted.
fn check_writable_here(dir: &Path) -> Result<()> {
    let name = format!(".writable-{}", std::process::id());
    let written = crate::ops::write_file(&dir.join("slurm"), &name, b"");
    let _ = std::fs::remove_file(dir.join("slurm").join(&name));
    written.map_err(|e| {
        ExperimentError::Cluster(format!(
            "the run folder {} is not writable ({e}); the shards write their results there, so nothing was submitted",
            dir.display()
        ))
    })
}

/// Earlier submissions' jobs: those still waiting on a dependency (a merge after a failed shard, the later steps'
/// jobs after it) are cancelled, since what is not done is submitted again; a job still running, or waiting for
/// anything else, is an error (submitting its shard again would run it twice).
fn clear_earlier_jobs(earlier: &[StepJobs]) -> Result<()> {
    let ids: Vec<JobId> = earlier.iter().flat_map(|jobs| jobs.array_job.into_iter().chain([jobs.merge_job])).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let states = scheduler::states(&ids)?;
    let (waiting, busy): (Vec<_>, Vec<_>) = states
        .iter()
        .filter(|s| s.is_active())
        .partition(|s| s.state == "PENDING" && s.reason.starts_with("Dependency"));
    if let Some(job) = busy.first() {
        return Err(ExperimentError::Cluster(format!(
            "{} job(s) of this run are still queued or running (job {}{}: {}, {}); wait for them or scancel them first",
            busy.len(),
            job.job,
            job.task.map(|t| format!("_{t}")).unwrap_or_default(),
            job.state,
            job.reason
        )));
    }
    let mut stale: Vec<JobId> = waiting.iter().map(|s| s.job).collect();
    stale.dedup();
    scheduler::scancel(&stale)
}
