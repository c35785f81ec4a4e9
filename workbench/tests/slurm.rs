//! The Slurm backend on a real Slurm: each test starts a single-node cluster on this machine (munge and Slurm's
//! daemons, everything under a temporary folder; `tests/slurm/cluster.sh`, which `./x test` can run because it
//! installs Debian's slurmctld, slurmd, slurm-client and munge), runs `workbench run --slurm` against it, and tears it
//! down. A shard that must fail or be cancelled runs through a wrapper given as `--workbench`, the way a cluster
//! user wraps the binary to load modules first.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

mod cluster;
mod results;
use cluster::{small_spec_steps, write_spec as spec, Cluster};
use results::results;

fn succeed(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The one run folder under `runs`.
fn run_folder(runs: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(runs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.remove(0)
}

/// Runs `spec` here and returns its run folder.
fn run_locally(cluster: &Cluster, spec: &Path, runs: &Path) -> PathBuf {
    succeed(cluster.workbench(&["run", spec.to_str().unwrap(), "--runs", runs.to_str().unwrap()]));
    run_folder(runs)
}

/// Submits `spec` with `flags` and returns its run folder.
fn submit(cluster: &Cluster, spec: &Path, runs: &Path, flags: &[&str]) -> PathBuf {
    let args = [&["run", spec.to_str().unwrap(), "--runs", runs.to_str().unwrap(), "--slurm"], flags].concat();
    succeed(cluster.workbench(&args));
    run_folder(runs)
}

/// `workbench status` of `run`: whether it succeeded, and what it printed.
fn status(cluster: &Cluster, run: &Path, watch: bool) -> (bool, String) {
    let args: Vec<&str> = ["status", run.to_str().unwrap()].into_iter().chain(watch.then_some("--watch")).collect();
    let output = cluster.workbench(&args);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Polls `status` until `ready` holds of its text (at most five minutes).
fn wait_for(cluster: &Cluster, run: &Path, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let (_, text) = status(cluster, run, false);
        if ready(&text) {
            return text;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "still not there after 5 minutes:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every results.json of a run (top level and steps) by folder relative to the run, timings dropped.
fn all_results(run: &Path) -> Vec<(String, Value)> {
    let mut folders = vec![run.to_path_buf()];
    for entry in std::fs::read_dir(run).unwrap() {
        let step = entry.unwrap().path();
        if step.join("results.json").exists() {
            folders.push(step);
        }
    }
    folders.sort();
    folders.iter().map(|f| (f.strip_prefix(run).unwrap().display().to_string(), results(f))).collect()
}

/// The jobs the backend recorded for `run`.
fn jobs(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("slurm/jobs.json")).unwrap()).unwrap()
}

/// A wrapper around the workbench that first runs `before` when its arguments hold `--shard K/`.
fn wrapper(dir: &Path, shard: usize, before: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("workbench-wrapper");
    let text = format!(
        "#!/bin/sh\ncase \"$*\" in *\"--shard {shard}/\"*) {before} ;; esac\nexec '{}' \"$@\"\n",
        env!("CARGO_BIN_EXE_workbench")
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_small_spec_on_slurm_gives_the_results_of_the_local_run() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), &small_spec_steps());
    let local = run_locally(&cluster, &spec, &dir.path().join("local"));
    // Two CPUs per shard: the threads of the local run, so the numbers can be compared bit for bit.
    let run = submit(&cluster, &spec, &dir.path().join("cluster"), &["--array-max", "4", "--cpus", "2"]);
    let (finished, text) = status(&cluster, &run, true);
    assert!(finished, "{text}");
    assert!(text.contains("step 1 (step-01-humaneval): 4/4 units; shards: 4 done"), "{text}");

    let shards: Vec<u64> = jobs(&run).as_array().unwrap().iter().map(|j| j["shards"].as_u64().unwrap()).collect();
    assert_eq!(shards, [2, 4, 1], "4 layers 2 a unit, 8 problems 2 a batch, the repairs whole");
    for shard in 0..4 {
        let log =
            run.join("step-01-humaneval/slurm").join(format!("shard-{shard}-job-{}.log", jobs(&run)[1]["array_job"]));
        assert!(log.exists(), "{}", log.display());
    }
    let script = std::fs::read_to_string(run.join("step-01-humaneval/slurm/shards.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --cpus-per-task=2") && script.contains("--shard \"$SLURM_ARRAY_TASK_ID/4\""),
        "{script}"
    );
    assert!(run.join("report.md").exists());
    let (local, cluster_run) = (all_results(&local), all_results(&run));
    assert_eq!(local.len(), 4, "{local:?}");
    assert_eq!(local, cluster_run);
}

#[test]
fn a_cancelled_shard_is_the_only_one_a_resume_submits_again() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "Perplexity(files: 4, tokens: 48)");
    let local = run_locally(&cluster, &spec, &dir.path().join("local"));
    let slow = wrapper(dir.path(), 1, "sleep 600");
    let run = submit(&cluster, &spec, &dir.path().join("cluster"), &["--workbench", slow.to_str().unwrap()]);
    let array = jobs(&run)[0]["array_job"].as_u64().unwrap();
    wait_for(&cluster, &run, |text| text.contains("3/4 units; shards: 3 done, 0 waiting, 1 running"));
    let units = run.join("step-00-perplexity/units");
    let written =
        |unit: usize| std::fs::metadata(units.join(format!("unit-{unit:05}.json"))).unwrap().modified().unwrap();
    let before: Vec<_> = [0, 2, 3].map(written).to_vec();
    succeed(cluster.command("scancel").arg(format!("{array}_1")).output().unwrap());
    let text = wait_for(&cluster, &run, |text| text.contains("1 failed"));
    assert!(text.contains("shard 1 failed: CANCELLED"), "{text}");
    assert!(!run.join("step-00-perplexity/done.json").exists());

    succeed(cluster.workbench(&["run", "--resume", run.to_str().unwrap(), "--slurm"]));
    let records = jobs(&run);
    assert_eq!(records.as_array().unwrap().len(), 2, "{records}");
    assert_eq!(records[1]["submitted"], serde_json::json!([1]), "only the cancelled shard: {records}");
    assert_eq!(records[1]["shards"], 4);
    let (finished, text) = status(&cluster, &run, true);
    assert!(finished, "{text}");
    assert_eq!([0, 2, 3].map(written).to_vec(), before, "the done shards' units were not written again");
    let logs = run.join("step-00-perplexity/slurm");
    let resubmitted = records[1]["array_job"].as_u64().unwrap();
    assert!(logs.join(format!("shard-1-job-{resubmitted}.log")).exists());
    assert!(!logs.join(format!("shard-0-job-{resubmitted}.log")).exists());
    assert_eq!(all_results(&local), all_results(&run));
    assert!(cluster.queue().iter().all(|line| !line.ends_with("PENDING") && !line.ends_with("RUNNING")));
}

#[test]
fn a_failed_shard_is_named_with_its_log_and_the_merge_does_not_run_until_a_resume() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "Perplexity(files: 4, tokens: 48), Lines(files: 2, context: 64, lines: 2)");
    let runs = dir.path().join("cluster");
    // Shard 2 leaves a half-written unit (as a shard killed while writing would) and exits with status 3; the
    // wrapper's $3 is the run folder (`run --resume DIR ...`).
    let failing = wrapper(
        dir.path(),
        2,
        "units=\"$3/step-00-perplexity/units\"; mkdir -p \"$units\" && echo '{\"half' > \"$units/.unit-00002.json.1.tmp\"; \
         echo 'injected failure of shard 2' >&2; exit 3",
    );
    let run = submit(&cluster, &spec, &runs, &["--workbench", failing.to_str().unwrap()]);
    let (finished, text) = status(&cluster, &run, true);
    assert!(!finished, "{text}");
    assert!(text.contains("shard 2 failed: FAILED (NonZeroExitCode)"), "{text}");
    assert!(text.contains("| injected failure of shard 2"), "the log's last lines: {text}");
    // The reason turns from Dependency to DependencyNeverSatisfied at the scheduler's next pass.
    assert!(text.contains("3/4 units") && text.contains("merge: waiting (Dependency"), "{text}");
    let step = run.join("step-00-perplexity");
    assert!(step.join("units/.unit-00002.json.1.tmp").exists(), "the wrapper wrote its half file");
    assert!(!step.join("units/unit-00002.json").exists());
    assert!(!step.join("done.json").exists() && !run.join("results.json").exists(), "the merge did not run");
    let merge_log = step.join(format!("slurm/merge-job-{}.log", jobs(&run)[0]["merge_job"]));
    assert!(!merge_log.exists(), "{}", merge_log.display());
    assert!(text.contains("step 1 (step-01-lines): 0/2 units; shards: 0 done, 2 waiting"), "{text}");
    let (ok, again) = status(&cluster, &run, false);
    assert!(!ok && again.contains("1 job(s) failed"), "{again}");

    // A resume cancels the jobs left waiting on the failed shard and submits what is not done, with this binary.
    succeed(cluster.workbench(&["run", "--resume", run.to_str().unwrap(), "--slurm"]));
    assert_eq!(jobs(&run).as_array().unwrap()[2]["submitted"], serde_json::json!([2]), "{}", jobs(&run));
    let (finished, text) = status(&cluster, &run, true);
    assert!(finished, "{text}");
    let local = run_locally(&cluster, &spec, &dir.path().join("local"));
    assert_eq!(all_results(&local), all_results(&run));
    let cancelled = cluster.queue();
    assert!(cancelled.iter().filter(|line| line.ends_with("CANCELLED")).count() >= 3, "{cancelled:?}");
}

#[test]
fn a_shard_past_its_time_limit_is_named_and_its_units_are_not_done() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "Perplexity(files: 2, tokens: 48)");
    let slow = wrapper(dir.path(), 1, "echo 'shard 1 sleeps past its limit' >&2; sleep 600");
    // Slurm's shortest limit is a minute; it ends the job within its next check after that.
    let flags = ["--time", "1", "--workbench", slow.to_str().unwrap()];
    let run = submit(&cluster, &spec, &dir.path().join("cluster"), &flags);
    let (finished, text) = status(&cluster, &run, true);
    assert!(!finished, "{text}");
    assert!(text.contains("shard 1 failed: TIMEOUT"), "{text}");
    assert!(text.contains("| shard 1 sleeps past its limit"), "{text}");
    assert!(text.contains("1/2 units"), "{text}");
    assert!(!run.join("step-00-perplexity/units/unit-00001.json").exists());
}

/// A node that goes down while a shard runs on it: Slurm ends the job (`NODE_FAIL`); with `--no-requeue` (without it
/// Slurm puts the job back in the queue and it runs again once a node is up) the shard is shown failed with its log,
/// its unit is not done, and a resume reruns that shard alone.
#[test]
fn a_shard_on_a_node_that_fails_is_named_and_a_resume_reruns_it() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "Perplexity(files: 2, tokens: 48)");
    let slow = wrapper(dir.path(), 1, "echo 'shard 1 started' >&2; sleep 600");
    let flags = ["--sbatch-arg=--no-requeue", "--workbench", slow.to_str().unwrap()];
    let run = submit(&cluster, &spec, &dir.path().join("cluster"), &flags);
    wait_for(&cluster, &run, |text| text.contains("1/2 units; shards: 1 done, 0 waiting, 1 running"));
    let node = succeed(cluster.command("sinfo").args(["-h", "-o", "%N"]).output().unwrap());
    let update = |state: &str| {
        cluster
            .command("scontrol")
            .args(["update", &format!("NodeName={}", node.trim()), &format!("State={state}")])
            .args((state == "DOWN").then_some("Reason=test-node-failure"))
            .output()
            .unwrap()
    };
    succeed(update("DOWN"));
    let text = wait_for(&cluster, &run, |text| text.contains("1 failed"));
    assert!(text.contains("shard 1 failed: NODE_FAIL (NodeDown)"), "{text}");
    assert!(text.contains("| shard 1 started") && text.contains("DUE TO NODE FAILURE"), "the log's last lines: {text}");
    assert!(!run.join("step-00-perplexity/units/unit-00001.json").exists());
    assert!(!run.join("step-00-perplexity/done.json").exists());
    // The node comes back (ReturnToService=2 brings it back when its slurmd registers; RESUME otherwise).
    let _ = update("RESUME");

    succeed(cluster.workbench(&["run", "--resume", run.to_str().unwrap(), "--slurm"]));
    assert_eq!(jobs(&run)[1]["submitted"], serde_json::json!([1]), "{}", jobs(&run));
    let (finished, text) = status(&cluster, &run, true);
    assert!(finished, "{text}");
    let local = run_locally(&cluster, &spec, &dir.path().join("local"));
    assert_eq!(all_results(&local), all_results(&run));
}

#[test]
fn a_run_folder_that_is_not_writable_is_refused_before_anything_is_submitted() {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::copy(spec(dir.path(), "Perplexity(files: 4, tokens: 48)"), run.join("spec.ron")).unwrap();
    // Root writes through permissions, so the folder becomes a read-only bind mount of itself.
    let read_only = |on: bool| {
        let args: Vec<&str> = if on {
            vec!["-o", "bind,ro", run.to_str().unwrap(), run.to_str().unwrap()]
        } else {
            vec![run.to_str().unwrap()]
        };
        let program = if on { "mount" } else { "umount" };
        let output = Command::new(program).args(&args).output().unwrap();
        assert!(output.status.success(), "{program}: {}", String::from_utf8_lossy(&output.stderr));
    };
    read_only(true);
    let output = cluster.workbench(&["run", "--resume", run.to_str().unwrap(), "--slurm"]);
    let queue = cluster.queue();
    read_only(false);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("is not writable") && message.contains("nothing was submitted"), "{message}");
    assert!(queue.is_empty(), "jobs were submitted: {queue:?}");
    assert!(!run.join("slurm").exists());
}

/// A run folder on a disk the node does not share (here a folder the node sees as an empty tmpfs of its own): the
/// probe job's file never shows up, and the run is refused with what the probe saw before any step is submitted.
#[test]
fn a_run_folder_the_nodes_do_not_share_is_refused_before_any_step_is_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let local_disk = dir.path().join("local-disk");
    std::fs::create_dir(&local_disk).unwrap();
    let cluster = Cluster::start_with_node_local(&local_disk);
    let spec = spec(dir.path(), "Perplexity(files: 4, tokens: 48)");
    let runs = local_disk.join("runs");
    let output = cluster.workbench(&["run", spec.to_str().unwrap(), "--runs", runs.to_str().unwrap(), "--slurm"]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("is not here: the run folder must be on a filesystem the compute nodes share")
            && message.contains("nothing else was submitted"),
        "{message}"
    );
    let run = run_folder(&runs);
    assert!(!run.join("step-00-perplexity/slurm").exists() && !run.join("slurm/jobs.json").exists());
    assert_eq!(cluster.queue().len(), 1, "only the probe job: {:?}", cluster.queue());
}
