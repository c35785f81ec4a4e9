//! A single-node Slurm cluster on this machine for the cluster backend's tests and benchmark: munge and Slurm's
//! daemons with everything under a temporary folder (`tests/slurm/cluster.sh` at the repository's root, which needs
//! Debian's slurmctld, slurmd, slurm-client and munge: `./x test` and `./x bench` install them).

#![allow(dead_code)] // the tests and the benchmark each use a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One cluster at a time (each is the whole machine), and no other test's workbench beside it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running single-node cluster; stopped when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slurm/cluster.sh")
}

impl Cluster {
    /// Starts a cluster (waiting for another test's to stop first) once its node is idle.
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// [`Cluster::start`], with a node that sees `folder` as a disk of its own (an empty tmpfs only it sees).
    pub fn start_with_node_local(folder: &Path) -> Cluster {
        Cluster::start_with(&[folder])
    }

    fn start_with(node_local: &[&Path]) -> Cluster {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(cluster_script())
            .arg("start")
            .arg(dir.path())
            .args(node_local)
            .output()
            .expect("cluster.sh runs");
        assert!(output.status.success(), "the test cluster did not start: {}", String::from_utf8_lossy(&output.stderr));
        let conf = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        Cluster { dir, conf, _turn: turn }
    }

    /// A command with this cluster's `SLURM_CONF`.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf);
        command
    }

    pub fn workbench(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_workbench")).args(args).output().expect("workbench runs")
    }

    /// `squeue`'s jobs of this cluster, one line each (`id state`).
    pub fn queue(&self) -> Vec<String> {
        let output = self.command("squeue").args(["-h", "-t", "all", "-o", "%i %T"]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
    }
}

/// The steps of the small spec run both here and on the cluster: a probe on 4 layers in 2 units, 8 HumanEval problems
/// in 4 units, 4 repair cases.
pub fn small_spec_steps() -> String {
    let cases: Vec<String> = [
        ("import os\\nhome = os.path.", "expanduser"),
        ("import os\\npath = os.path.", "join"),
        ("import sys\\nargs = sys.", "argv"),
        ("import json\\ndata = json.", "loads"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (prompt, desired))| {
        format!(
            "(family: \"user\", id: \"c{i}\", example: (prompt: \"{prompt}\", desired: \"{desired}\"), variants: [])"
        )
    })
    .collect();
    format!(
        "Probe(task: Syntax, layers: [1, 3, 5, 7], files: 6, max_tokens: 64, seeds: 1, layers_per_unit: 2), \
         HumanEval(protocol: Completion, limit: 8, max_tokens: 32, batch: 2), \
         RepairCases(cases: [{}], unrelated: (prompts: 4, tokens: 24, positions: 4))",
        cases.join(", ")
    )
}

/// Writes a spec of `steps` on the default model into `dir` and returns its path.
pub fn write_spec(dir: &Path, steps: &str) -> PathBuf {
    let path = dir.join("spec.ron");
    let model = "smollm2-135m-instruct";
    std::fs::write(
        &path,
        format!("(name: \"cluster\", model: \"{model}\", device: \"cpu\", seed: 0, steps: [{steps}])"),
    )
    .unwrap();
    path
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script()).arg("stop").arg(self.dir.path()).output();
    }
}
