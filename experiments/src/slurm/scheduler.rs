//! The Slurm commands the backend calls (`sbatch`, `squeue`, `sacct`, `scancel`), with this process's environment
//! (`SLURM_CONF` included), and their answers parsed.

use std::path::Path;
use std::process::Command;

use crate::error::{ExperimentError, Result};

/// A job's id as `sbatch` prints it (for an array, the array's id).
pub type JobId = u64;

/// What the scheduler knows of one job, or one task of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// The job's id (the array's id for a task).
    pub job: JobId,
    /// The array task, for a task.
    pub task: Option<usize>,
    /// Slurm's state: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY ...
    pub state: String,
    /// Why (squeue's reason: `Dependency`, `DependencyNeverSatisfied`, `NonZeroExitCode` ...), or sacct's exit code.
    pub reason: String,
}

impl JobState {
    /// Whether the job waits or runs.
    pub fn is_active(&self) -> bool {
        matches!(self.state.as_str(), "PENDING" | "CONFIGURING" | "RUNNING" | "COMPLETING" | "SUSPENDED" | "REQUEUED")
    }
}

/// Runs `program` with `args`; its standard output, or an error with its standard error.
fn call(program: &str, args: &[String]) -> Result<String> {
    let output = Command::new(program).args(args).output().map_err(|e| {
        ExperimentError::Cluster(format!(
            "{program} could not be started ({e}): Slurm's client commands (Debian's slurm-client) must be on PATH"
        ))
    })?;
    if !output.status.success() {
        return Err(ExperimentError::Cluster(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Submits `script` with the command-line options `options` (which override its `#SBATCH` lines); its job id.
pub fn sbatch(script: &Path, options: &[String]) -> Result<JobId> {
    let mut args = vec!["--parsable".to_string()];
    args.extend(options.iter().cloned());
    args.push(script.display().to_string());
    let out = call("sbatch", &args)?;
    // `--parsable` prints `id` or `id;cluster`.
    out.trim()
        .split(';')
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ExperimentError::Cluster(format!("sbatch printed no job id: {out:?}")))
}

/// Cancels `jobs` (whole arrays included).
pub fn scancel(jobs: &[JobId]) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    call("scancel", &jobs.iter().map(JobId::to_string).collect::<Vec<_>>()).map(|_| ())
}

/// What the scheduler knows of `jobs` and their tasks: `squeue` (recently ended jobs too), then `sacct` for jobs
/// squeue has forgotten when the cluster keeps accounting. A job neither knows is missing from the answer.
pub fn states(jobs: &[JobId]) -> Result<Vec<JobState>> {
    let args = ["-h", "-t", "all", "-o", "%F|%K|%T|%r"].map(String::from);
    let mut states: Vec<JobState> =
        parse_squeue(&call("squeue", &args)?).into_iter().filter(|s| jobs.contains(&s.job)).collect();
    let forgotten: Vec<String> =
        jobs.iter().filter(|&&job| !states.iter().any(|s| s.job == job)).map(JobId::to_string).collect();
    if !forgotten.is_empty() {
        let args = ["-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j"].map(String::from);
        // Without accounting (no slurmdbd) sacct fails: then squeue and the done markers are all there is.
        if let Ok(out) = call("sacct", &[args.to_vec(), vec![forgotten.join(",")]].concat()) {
            states.extend(parse_sacct(&out));
        }
    }
    Ok(states)
}

/// Reads `squeue -o "%F|%K|%T|%r"`: array id (or job id), task ids (`N/A`, `3`, or a pending range like `2-5%2`
/// or `1,3`), state, reason.
fn parse_squeue(text: &str) -> Vec<JobState> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('|').collect();
            let [job, tasks, state, reason] = fields[..] else { return None };
            Some(expand(job.parse().ok()?, tasks, state, reason))
        })
        .flatten()
        .collect()
}

/// Reads `sacct -n -P -X -o JobID,State,ExitCode`: `7`, `6_1` or `6_[2-3]`, a state (`CANCELLED by 0`), `3:0`.
fn parse_sacct(text: &str) -> Vec<JobState> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('|').collect();
            let [id, state, exit] = fields[..] else { return None };
            let state = state.split_whitespace().next()?;
            let (job, tasks) = id.split_once('_').unwrap_or((id, "N/A"));
            Some(expand(job.parse().ok()?, tasks, state, &format!("exit code {exit}")))
        })
        .flatten()
        .collect()
}

/// One state per task of `tasks` (`N/A` for a job that is not an array).
fn expand(job: JobId, tasks: &str, state: &str, reason: &str) -> Vec<JobState> {
    let entry = |task| JobState { job, task, state: state.to_string(), reason: reason.to_string() };
    if tasks == "N/A" {
        return vec![entry(None)];
    }
    let tasks = tasks.trim_matches(|c| c == '[' || c == ']');
    let tasks = tasks.split('%').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in tasks.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) {
            out.extend((first..=last).map(|task| entry(Some(task))));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(job: JobId, task: Option<usize>, state: &str, reason: &str) -> JobState {
        JobState { job, task, state: state.into(), reason: reason.into() }
    }

    #[test]
    fn squeue_lines_give_one_state_per_task_with_pending_ranges_expanded() {
        // As squeue 22.05 printed them on a single-node cluster (`-h -t all -o "%F|%K|%T|%r"`).
        let text = "1|2-3%2|PENDING|JobArrayTaskLimit\n2|N/A|PENDING|Dependency\n1|0|RUNNING|None\n\
                    6|1|FAILED|NonZeroExitCode\n6|4,6|PENDING|Priority\nnot a line\n";
        assert_eq!(
            parse_squeue(text),
            [
                state(1, Some(2), "PENDING", "JobArrayTaskLimit"),
                state(1, Some(3), "PENDING", "JobArrayTaskLimit"),
                state(2, None, "PENDING", "Dependency"),
                state(1, Some(0), "RUNNING", "None"),
                state(6, Some(1), "FAILED", "NonZeroExitCode"),
                state(6, Some(4), "PENDING", "Priority"),
                state(6, Some(6), "PENDING", "Priority"),
            ]
        );
    }

    #[test]
    fn sacct_lines_give_the_state_word_and_the_exit_code() {
        let text = "7|COMPLETED|0:0\n6_1|FAILED|3:0\n6_2|CANCELLED by 0|0:15\n6_[3-4]|PENDING|0:0\n";
        assert_eq!(
            parse_sacct(text),
            [
                state(7, None, "COMPLETED", "exit code 0:0"),
                state(6, Some(1), "FAILED", "exit code 3:0"),
                state(6, Some(2), "CANCELLED", "exit code 0:15"),
                state(6, Some(3), "PENDING", "exit code 0:0"),
                state(6, Some(4), "PENDING", "exit code 0:0"),
            ]
        );
    }
}
