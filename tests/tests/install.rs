//! `./x`'s Debian step, run for real (`source x; setup_apt`) with stand-ins for `dpkg`, `id`, `apt-get` and
//! `sudo` on a PATH that holds nothing else: each stand-in writes the command line it was given (and the
//! `DEBIAN_FRONTEND` it saw) to a log, so the test reads the exact install commands that would run as root, as a
//! user with sudo, and as a user without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A folder of stand-ins. `dpkg -s P` fails for the packages in `$MISSING`; `id -u` prints `$FAKE_UID`.
struct StandIns {
    dir: tempfile::TempDir,
}

impl StandIns {
    fn new(with_sudo: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let log = log.display();
        let mut scripts = vec![
            ("dpkg", "case \" $MISSING \" in *\" $2 \"*) exit 1 ;; esac\nexit 0".to_string()),
            ("id", "echo \"$FAKE_UID\"".to_string()),
            ("apt-get", format!("echo \"apt-get $* [DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}}]\" >> {log}")),
        ];
        if with_sudo {
            scripts.push(("sudo", format!("echo \"sudo $*\" >> {log}\nexec \"$@\"")));
        }
        for (name, body) in scripts {
            write_executable(&dir.path().join(name), &format!("#!/bin/sh\n{body}\n"));
        }
        // The only real programs the step and the top of `x` use besides the stand-ins.
        for tool in ["env", "dirname"] {
            let real = which(tool);
            std::os::unix::fs::symlink(&real, dir.path().join(tool)).unwrap();
        }
        StandIns { dir }
    }

    /// Runs `setup_apt` from the real `x` as user `uid` with `missing` packages not installed.
    fn setup_apt(&self, uid: u32, missing: &str) -> (Output, Vec<String>) {
        self.run_x("setup_apt", uid, missing)
    }

    /// Runs `script` after `source x` as user `uid` with `missing` packages not installed.
    fn run_x(&self, script: &str, uid: u32, missing: &str) -> (Output, Vec<String>) {
        let x = Path::new(env!("CARGO_MANIFEST_DIR")).join("../x");
        let output = Command::new(which("bash"))
            .arg("-c")
            .arg(format!("source \"$1\" && {script}"))
            .arg("bash")
            .arg(&x)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("PATH", self.dir.path())
            .env("FAKE_UID", uid.to_string())
            .env("MISSING", missing)
            .output()
            .unwrap();
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        (output, log.lines().map(str::to_string).collect())
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn which(tool: &str) -> PathBuf {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{tool} not found"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn as_root_the_missing_packages_are_installed_directly() {
    let stand_ins = StandIns::new(false);
    let (output, log) = stand_ins.setup_apt(0, "xvfb shellcheck");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        log,
        [
            "apt-get update -qq [DEBIAN_FRONTEND=]",
            "apt-get install -y -qq xvfb shellcheck [DEBIAN_FRONTEND=noninteractive]",
        ]
    );
}

#[test]
fn a_user_installs_through_sudo() {
    let stand_ins = StandIns::new(true);
    let (output, log) = stand_ins.setup_apt(1000, "libgl1");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        log,
        [
            "sudo apt-get update -qq",
            "apt-get update -qq [DEBIAN_FRONTEND=]",
            "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgl1",
            "apt-get install -y -qq libgl1 [DEBIAN_FRONTEND=noninteractive]",
        ]
    );
}

#[test]
fn a_user_without_sudo_is_told_what_to_install() {
    let stand_ins = StandIns::new(false);
    let (output, log) = stand_ins.setup_apt(1000, "xvfb");
    assert!(!output.status.success());
    assert!(log.is_empty(), "nothing may run: {log:?}");
    let message = stderr(&output);
    assert!(message.contains("no sudo") && message.contains("xvfb"), "{message}");
}

#[test]
fn nothing_runs_when_every_package_is_there() {
    let stand_ins = StandIns::new(true);
    let (output, log) = stand_ins.setup_apt(0, "");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(log.is_empty(), "{log:?}");
}

#[test]
fn the_test_set_up_installs_slurm_and_munge_and_the_run_set_up_does_not() {
    let stand_ins = StandIns::new(false);
    let missing = "slurmctld slurm-client munge";
    let (output, log) = stand_ins.run_x("with_cluster_packages && setup_apt", 0, missing);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(log[1], "apt-get install -y -qq slurmctld slurm-client munge [DEBIAN_FRONTEND=noninteractive]");
    let stand_ins = StandIns::new(false);
    let (output, log) = stand_ins.setup_apt(0, missing);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(log.is_empty(), "./x run installs no scheduler: {log:?}");
}

/// `./x gpu-check` refuses on a machine without CUDA, before it installs or runs anything, and says why: no GPU
/// that nvidia-smi lists, or one that the venv's torch cannot use.
#[test]
fn the_gpu_check_refuses_clearly_without_cuda() {
    let stand_ins = StandIns::new(false);
    std::os::unix::fs::symlink(which("grep"), stand_ins.dir.path().join("grep")).unwrap();
    let (output, _) = stand_ins.run_x("require_cuda", 0, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("nvidia-smi lists no NVIDIA GPU"), "{}", stderr(&output));

    write_executable(&stand_ins.dir.path().join("nvidia-smi"), "#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: x)'\n");
    let venv = stand_ins.dir.path().join(".cache/mintbench/venv/bin");
    std::fs::create_dir_all(&venv).unwrap();
    write_executable(&venv.join("python"), "#!/bin/sh\nexit 1\n");
    let (output, _) = stand_ins.run_x("require_cuda", 0, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("torch.cuda.is_available() is False"), "{}", stderr(&output));

    write_executable(&venv.join("python"), "#!/bin/sh\nexit 0\n");
    let (output, _) = stand_ins.run_x("require_cuda", 0, "");
    assert!(output.status.success(), "a GPU torch can use is accepted: {}", stderr(&output));
}
