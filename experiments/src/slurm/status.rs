//! Where a run submitted to Slurm stands: per step, each shard done (by its units' done markers, whatever the
//! scheduler says), waiting, running or failed (from `squeue`, or `sacct` when the cluster keeps accounting), and the
//! step's merge; a failed job comes with the last lines of its log.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use models::Progress;

use super::scheduler::{self, JobId, JobState};
use super::{submitted, StepJobs};
use crate::error::{ExperimentError, Result};
use crate::runner::StepPlan;
use crate::units::Shard;

/// How many lines of a failed job's log a status shows.
const TAIL_LINES: usize = 12;

/// Where one shard (or a step's merge) stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    /// Its units are done (for a merge: the step is).
    Done,
    /// Queued; Slurm's reason (`Priority`, `Dependency`, `DependencyNeverSatisfied` ...).
    Waiting(String),
    /// Running now.
    Running,
    /// Ended without finishing: Slurm's state and reason (or that the scheduler no longer knows the job), its log
    /// and the log's last lines.
    Failed {
        /// What the scheduler said.
        state: String,
        /// The job's log.
        log: PathBuf,
        /// Its last lines.
        tail: Vec<String>,
    },
    /// Never submitted.
    NotSubmitted,
}

/// Where one step stands.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatus {
    /// The step's index.
    pub index: usize,
    /// Its folder.
    pub folder: String,
    /// Units done, and all its units (1 for a step without units).
    pub units: (usize, usize),
    /// Its shards, by index.
    pub shards: Vec<JobStatus>,
    /// Its merge.
    pub merge: JobStatus,
}

/// Where a run stands, step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    /// The steps, in order.
    pub steps: Vec<StepStatus>,
}

impl RunStatus {
    /// Whether every step is done.
    pub fn finished(&self) -> bool {
        self.steps.iter().all(|step| step.merge == JobStatus::Done)
    }

    /// The failed jobs: (step, shard index, or `None` for the merge).
    pub fn failed(&self) -> Vec<(usize, Option<usize>)> {
        let mut out = Vec::new();
        for step in &self.steps {
            let shards = step.shards.iter().enumerate().map(|(i, s)| (Some(i), s));
            for (shard, status) in shards.chain([(None, &step.merge)]) {
                if matches!(status, JobStatus::Failed { .. }) {
                    out.push((step.index, shard));
                }
            }
        }
        out
    }

    /// Whether a job runs, or waits for something other than a job it depends on (which may never come).
    pub fn moving(&self) -> bool {
        self.steps.iter().flat_map(|step| step.shards.iter().chain([&step.merge])).any(|status| match status {
            JobStatus::Running => true,
            JobStatus::Waiting(reason) => !reason.starts_with("Dependency"),
            _ => false,
        })
    }

    /// Units done, and all units, over the steps.
    pub fn units(&self) -> (usize, usize) {
        self.steps.iter().fold((0, 0), |(done, all), step| (done + step.units.0, all + step.units.1))
    }
}

/// Where the run in `dir` stands.
pub fn status(dir: &Path) -> Result<RunStatus> {
    let plan = crate::runner::plan(dir)?;
    let jobs = submitted(dir)?;
    let ids: Vec<JobId> = jobs.iter().flat_map(|j| j.array_job.into_iter().chain([j.merge_job])).collect();
    let states = if ids.is_empty() { Vec::new() } else { scheduler::states(&ids)? };
    Ok(RunStatus { steps: plan.iter().map(|step| step_status(dir, step, &jobs, &states)).collect() })
}

/// Polls the run in `dir` every `every` until every step is done (its status returned) or a job failed and the
/// others have stopped moving (an error that shows the status), with the units done on `progress`.
pub fn watch(dir: &Path, every: Duration, progress: &dyn Progress) -> Result<RunStatus> {
    let mut shown = None;
    loop {
        progress.check()?;
        let status = status(dir)?;
        let (done, all) = status.units();
        if shown.is_none() {
            progress.begin("units done", all as u64);
        }
        progress.advance(done.saturating_sub(shown.unwrap_or(0)) as u64);
        shown = Some(done);
        if status.finished() {
            return Ok(status);
        }
        if !status.failed().is_empty() && !status.moving() {
            return Err(ExperimentError::Cluster(format!("a job of the run failed\n{status}")));
        }
        std::thread::sleep(every);
    }
}

fn step_status(dir: &Path, step: &StepPlan, jobs: &[StepJobs], states: &[JobState]) -> StepStatus {
    let records: Vec<&StepJobs> = jobs.iter().filter(|j| j.step == step.index).collect();
    let shards = records.last().map_or(1, |j| j.shards);
    let logs = dir.join(&step.folder).join("slurm");
    let shard_status = |index: usize| {
        if step.shard_done(Shard { index, of: shards }) {
            return JobStatus::Done;
        }
        let Some(array) = records.iter().rev().find(|j| j.submitted.contains(&index)).and_then(|j| j.array_job) else {
            return JobStatus::NotSubmitted;
        };
        let state = states.iter().find(|s| s.job == array && s.task == Some(index));
        job_status(state, array, logs.join(format!("shard-{index}-job-{array}.log")))
    };
    let merge = match records.last() {
        None if step.done => JobStatus::Done,
        None => JobStatus::NotSubmitted,
        Some(j) => {
            let state = states.iter().find(|s| s.job == j.merge_job && s.task.is_none());
            match state {
                // The step's done.json is written before the merge goes on to the run's report.
                Some(s) if step.done && s.is_active() => JobStatus::Running,
                _ if step.done => JobStatus::Done,
                _ => job_status(state, j.merge_job, logs.join(format!("merge-job-{}.log", j.merge_job))),
            }
        }
    };
    let all = step.done_units.len();
    let done = if step.done { all } else { step.done_units.iter().filter(|&&d| d).count() };
    StepStatus {
        index: step.index,
        folder: step.folder.clone(),
        units: (done, all),
        shards: (0..shards).map(shard_status).collect(),
        merge,
    }
}

/// A job that is not done, from what the scheduler knows of it.
fn job_status(state: Option<&JobState>, job: JobId, log: PathBuf) -> JobStatus {
    match state {
        Some(s) if s.state == "PENDING" => JobStatus::Waiting(s.reason.clone()),
        Some(s) if s.is_active() => JobStatus::Running,
        Some(s) => JobStatus::Failed { state: format!("{} ({})", s.state, s.reason), tail: tail(&log), log },
        None => JobStatus::Failed {
            state: format!("job {job} ended without finishing and the scheduler no longer knows it"),
            tail: tail(&log),
            log,
        },
    }
}

/// The last lines of `log` (none when it cannot be read).
fn tail(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].iter().map(|l| l.to_string()).collect()
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobStatus::Done => write!(f, "done"),
            JobStatus::Waiting(reason) => write!(f, "waiting ({reason})"),
            JobStatus::Running => write!(f, "running"),
            JobStatus::Failed { state, .. } => write!(f, "failed: {state}"),
            JobStatus::NotSubmitted => write!(f, "not submitted"),
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            let count = |wanted: fn(&JobStatus) -> bool| step.shards.iter().filter(|s| wanted(s)).count();
            writeln!(
                f,
                "step {} ({}): {}/{} units; shards: {} done, {} waiting, {} running, {} failed, {} not submitted; merge: {}",
                step.index,
                step.folder,
                step.units.0,
                step.units.1,
                count(|s| *s == JobStatus::Done),
                count(|s| matches!(s, JobStatus::Waiting(_))),
                count(|s| *s == JobStatus::Running),
                count(|s| matches!(s, JobStatus::Failed { .. })),
                count(|s| *s == JobStatus::NotSubmitted),
                step.merge
            )?;
            let shards = step.shards.iter().enumerate().map(|(i, s)| (format!("shard {i}"), s));
            for (what, status) in shards.chain([("merge".to_string(), &step.merge)]) {
                if let JobStatus::Failed { state, log, tail } = status {
                    writeln!(f, "  {what} failed: {state}; last lines of {}:", log.display())?;
                    for line in tail {
                        writeln!(f, "    | {line}")?;
                    }
                }
            }
        }
        Ok(())
    }
}
