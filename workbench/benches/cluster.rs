//! The Slurm backend's benchmark (`./x bench`), on a single-node cluster started on this machine:
//! - submission: `workbench run --slurm` of a run that needs 100 shards (100 HumanEval problems one at a time, one
//!   token each, `--array-max 100`), probe job included: target under 5 s;
//! - scheduler overhead per task: those 100 trivial units as a 100-task array plus the merge, run to the end; each task
//!   times itself (through a `--workbench` wrapper), and the overhead is the slot time no task used, per task:
//!   (slots x makespan - sum of task times) / tasks, with the makespan from the end of the submission to the merge's
//!   end: target under 1 s;
//! - the small spec of the tests (probe on 4 layers, 8 HumanEval problems, 4 repair cases) here and on the cluster.
//!
//! Writes `runs/bench/cluster.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "../tests/cluster/mod.rs"]
mod cluster;
use cluster::{small_spec_steps, write_spec, Cluster};

/// Runs `args` on the cluster, panicking with the output when it fails.
fn run(cluster: &Cluster, args: &[&str]) -> String {
    let output = cluster.workbench(args);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "workbench {args:?}:\n{text}");
    text
}

/// The one run folder under `runs`.
fn run_folder(runs: &Path) -> PathBuf {
    std::fs::read_dir(runs).unwrap().next().expect("a run folder").unwrap().path()
}

/// Submits `spec` with `flags`: the run folder and the seconds the command took.
fn submit(cluster: &Cluster, spec: &Path, runs: &Path, flags: &[&str]) -> (PathBuf, f64) {
    let started = Instant::now();
    run(cluster, &[&["run", spec.to_str().unwrap(), "--runs", runs.to_str().unwrap(), "--slurm"], flags].concat());
    (run_folder(runs), started.elapsed().as_secs_f64())
}

/// A wrapper that appends its start and end (seconds since the epoch) to `times/<job>`.
fn timing_wrapper(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let times = dir.join("times");
    std::fs::create_dir_all(&times).unwrap();
    let path = dir.join("timed-workbench");
    let text = format!(
        "#!/bin/sh\nstart=$(date +%s.%N)\n'{}' \"$@\"\nstatus=$?\necho \"$start $(date +%s.%N)\" > '{}'/\"$SLURM_JOB_ID\"\nexit $status\n",
        env!("CARGO_BIN_EXE_workbench"),
        times.display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Every job's (start, end) that the timing wrapper recorded.
fn task_times(dir: &Path) -> Vec<(f64, f64)> {
    std::fs::read_dir(dir.join("times"))
        .unwrap()
        .map(|entry| {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let numbers: Vec<f64> = text.split_whitespace().map(|n| n.parse().unwrap()).collect();
            (numbers[0], numbers[1])
        })
        .collect()
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn main() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let slots = std::thread::available_parallelism().map_or(1, usize::from);

    // 100 trivial units: one HumanEval problem, one token, each; one CPU (and one torch thread) per task.
    let hundred = dir.path().join("hundred");
    std::fs::create_dir_all(&hundred).unwrap();
    let spec = write_spec(&hundred, "HumanEval(protocol: Completion, limit: 100, batch: 1, max_tokens: 1)");
    let wrapper = timing_wrapper(&hundred);
    let flags = ["--array-max", "100", "--cpus", "1", "--workbench", wrapper.to_str().unwrap()];
    let (run100, submit_seconds) = submit(&cluster, &spec, &hundred.join("runs"), &flags);
    let submitted_at = now();
    run(&cluster, &["status", "--watch", run100.to_str().unwrap()]);
    let times = task_times(&hundred);
    let tasks = times.len() - 1; // the merge is timed too
    let makespan = times.iter().map(|t| t.1).fold(f64::MIN, f64::max) - submitted_at;
    let busy: f64 = times.iter().map(|t| t.1 - t.0).sum();
    let overhead = (slots as f64 * makespan - busy) / (tasks + 1) as f64;
    let mean_task = busy / (tasks + 1) as f64;

    // The small spec, here and on the cluster (2 CPUs per shard: the local run's threads).
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let spec = write_spec(&small, &small_spec_steps());
    let started = Instant::now();
    run(&cluster, &["run", spec.to_str().unwrap(), "--runs", small.join("local").to_str().unwrap()]);
    let local_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (small_run, small_submit) =
        submit(&cluster, &spec, &small.join("cluster"), &["--array-max", "4", "--cpus", "2"]);
    run(&cluster, &["status", "--watch", small_run.to_str().unwrap()]);
    let cluster_seconds = started.elapsed().as_secs_f64();

    println!("Slurm backend on a single-node cluster ({slots} CPUs)");
    println!("  submit a run of 100 shards (probe job included): {submit_seconds:.2} s (target < 5 s)");
    println!(
        "  100-task array + merge: makespan {makespan:.1} s, mean task {mean_task:.2} s, overhead {overhead:.3} s per task (target < 1 s)"
    );
    println!(
        "  small spec: here {local_seconds:.1} s, on the cluster {cluster_seconds:.1} s (submission {small_submit:.2} s)"
    );
    let report = serde_json::json!({
        "cpus": slots,
        "submit_100_shards_seconds": submit_seconds,
        "array_tasks": tasks,
        "array_makespan_seconds": makespan,
        "mean_task_seconds": mean_task,
        "overhead_per_task_seconds": overhead,
        "small_spec_local_seconds": local_seconds,
        "small_spec_cluster_seconds": cluster_seconds,
        "small_spec_submit_seconds": small_submit,
    });
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runs/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("cluster.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    assert_eq!(tasks, 100, "every task of the array ran once");
}
