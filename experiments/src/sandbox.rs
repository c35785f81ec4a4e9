//! The sandboxed executor for model-written code: every program runs in its own `python3` process, never in
//! this one, inside walls that do not depend on the program's good will:
//! - a fresh temporary directory as working directory and HOME, and a cleared environment;
//! - limits on CPU time, address space, file size, open files and processes, and a wall-clock timeout after
//!   which the whole process group is killed;
//! - when run as root: the unprivileged user `nobody`, so nothing outside the directory is writable;
//! - a new network namespace when the system allows one (the result says whether it did);
//! - an audit hook (`python/guard.py`) that refuses sockets, subprocesses, native libraries and writes outside
//!   the directory;
//! - output capped (the rest is read and dropped, so a chatty program cannot block or flood memory).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{ExperimentError, Result};

/// The guard that runs before every program.
const GUARD: &str = include_str!("../python/guard.py");

/// The uid and gid of `nobody`.
const NOBODY: u32 = 65534;

/// The limits of one execution.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU seconds.
    pub cpu_seconds: u64,
    /// Address space in bytes.
    pub memory_bytes: u64,
    /// Largest file the program may write, in bytes.
    pub file_bytes: u64,
    /// Most processes (of the sandbox user).
    pub processes: u64,
    /// Bytes of stdout and of stderr kept.
    pub output_bytes: usize,
    /// Run the audit-hook guard before the program (turn off only to test the outer walls).
    pub audit_guard: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_bytes: 1 << 30,
            file_bytes: 10 << 20,
            processes: 32,
            output_bytes: 64 << 10,
            audit_guard: true,
        }
    }
}

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit status 0.
    Passed,
    /// A non-zero exit status or a signal (an exception, a failed assertion, a limit hit).
    Failed,
    /// Killed at the wall-clock limit.
    TimedOut,
}

/// What one program did.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    /// How it ended.
    pub outcome: Outcome,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Signal that ended it, if any.
    pub signal: Option<i32>,
    /// The first `output_bytes` of stdout.
    pub stdout: String,
    /// The first `output_bytes` of stderr.
    pub stderr: String,
    /// Whether output was cut.
    pub truncated: bool,
    /// Seconds it ran.
    pub seconds: f64,
    /// Whether it ran in its own network namespace.
    pub network_isolated: bool,
    /// Whether it ran as `nobody`.
    pub unprivileged: bool,
}

/// Runs programs in sandboxed `python3` processes.
#[derive(Debug, Clone)]
pub struct Sandbox {
    python: PathBuf,
    /// The limits of each program.
    pub limits: Limits,
    isolate_network: bool,
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: setrlimit only reads the struct passed by reference.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reads all of `from`, keeping the first `keep` bytes.
fn drain(mut from: impl Read, keep: usize) -> (Vec<u8>, bool) {
    let (mut kept, mut buffer, mut truncated) = (Vec::new(), [0u8; 8192], false);
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 {
            break;
        }
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
        truncated |= n > room;
    }
    (kept, truncated)
}

impl Sandbox {
    /// A sandbox running `python` (a `python3` executable) with `limits`. It checks once whether a network
    /// namespace can be made here.
    pub fn new(python: &Path, limits: Limits) -> Result<Self> {
        if !python.exists() && which(python).is_none() {
            return Err(ExperimentError::Sandbox(format!("no Python at {}", python.display())));
        }
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let probe = Command::new("unshare").args(["-n", "true"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let isolate_network = root && probe.is_ok_and(|s| s.success());
        // Orphans of sandboxed programs (a fork bomb's children) become this process's children, so they can be
        // reaped here instead of piling up as zombies that count against the sandbox user's process limit.
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag on this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        Ok(Sandbox { python: python.to_path_buf(), limits, isolate_network })
    }

    /// The sandbox every benchmark uses: [`Sandbox::default_python`] with the default [`Limits`].
    pub fn standard() -> Result<Self> {
        Sandbox::new(&Sandbox::default_python(), Limits::default())
    }

    /// The system's `/usr/bin/python3` (readable by `nobody`, unlike a venv under a private HOME), else
    /// `python3` on the PATH. Programs need only the standard library.
    pub fn default_python() -> PathBuf {
        let system = PathBuf::from("/usr/bin/python3");
        if system.exists() {
            system
        } else {
            PathBuf::from("python3")
        }
    }

    /// Runs one program to its end or its limits.
    pub fn run(&self, program: &str) -> Result<Execution> {
        let dir = tempfile::Builder::new()
            .prefix("sandbox-")
            .tempdir()
            .map_err(|e| ExperimentError::Sandbox(e.to_string()))?;
        std::fs::write(dir.path().join("guard.py"), GUARD).map_err(|e| ExperimentError::Sandbox(e.to_string()))?;
        std::fs::write(dir.path().join("program.py"), program).map_err(|e| ExperimentError::Sandbox(e.to_string()))?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes())
                .map_err(|e| ExperimentError::Sandbox(e.to_string()))?;
            // SAFETY: the path is a valid NUL-terminated string; chown only changes ownership of that directory.
            unsafe { libc::chown(path.as_ptr(), NOBODY, NOBODY) };
            for file in ["guard.py", "program.py"] {
                let path = std::ffi::CString::new(dir.path().join(file).as_os_str().as_encoded_bytes())
                    .map_err(|e| ExperimentError::Sandbox(e.to_string()))?;
                // SAFETY: as above.
                unsafe { libc::chown(path.as_ptr(), NOBODY, NOBODY) };
            }
        }
        let mut command = Command::new(&self.python);
        command
            .args(["-I", "-S", "-B"])
            .args(if self.limits.audit_guard { &["guard.py", "program.py"][..] } else { &["program.py"][..] })
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (limits, isolate) = (self.limits.clone(), self.isolate_network);
        // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe system calls
        // (setsid, setrlimit, unshare, setgroups, setgid, setuid); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                libc::setsid();
                if isolate && libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                set_limit(libc::RLIMIT_CPU, limits.cpu_seconds)?;
                set_limit(libc::RLIMIT_AS, limits.memory_bytes)?;
                set_limit(libc::RLIMIT_FSIZE, limits.file_bytes)?;
                set_limit(libc::RLIMIT_NOFILE, 64)?;
                set_limit(libc::RLIMIT_CORE, 0)?;
                if root
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(NOBODY) != 0
                        || libc::setuid(NOBODY) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                set_limit(libc::RLIMIT_NPROC, limits.processes)?;
                Ok(())
            });
        }
        let start = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| ExperimentError::Sandbox(format!("starting {}: {e}", self.python.display())))?;
        let pid = child.id() as i32;
        let keep = self.limits.output_bytes;
        let stdout = child.stdout.take().map(|s| std::thread::spawn(move || drain(s, keep)));
        let stderr = child.stderr.take().map(|s| std::thread::spawn(move || drain(s, keep)));
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| ExperimentError::Sandbox(e.to_string()))? {
                break status;
            }
            if start.elapsed() > self.limits.wall {
                timed_out = true;
                // SAFETY: kills the process group the child leads (it called setsid), nothing else.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                break child.wait().map_err(|e| ExperimentError::Sandbox(e.to_string()))?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // Whatever the program left running in its group goes too, and is reaped.
        // SAFETY: as above.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        reap_orphans(pid);
        let seconds = start.elapsed().as_secs_f64();
        let collect =
            |h: Option<std::thread::JoinHandle<(Vec<u8>, bool)>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        let ((out, cut_out), (err, cut_err)) = (collect(stdout), collect(stderr));
        use std::os::unix::process::ExitStatusExt;
        let outcome = if timed_out {
            Outcome::TimedOut
        } else if status.success() {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        Ok(Execution {
            outcome,
            exit_code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            truncated: cut_out || cut_err,
            seconds,
            network_isolated: self.isolate_network,
            unprivileged: root,
        })
    }

    /// Runs `programs` on `workers` threads, each program in its own process; results in input order.
    pub fn run_all(&self, programs: &[String], workers: usize) -> Vec<Result<Execution>> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<Result<Execution>>>> =
            programs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers.max(1) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= programs.len() {
                        break;
                    }
                    let result = self.run(&programs[i]);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|m| {
                m.into_inner().ok().flatten().unwrap_or_else(|| Err(ExperimentError::Sandbox("a worker died".into())))
            })
            .collect()
    }
}

/// Waits for the processes of process group `group` (one program's descendants, handed to this process when
/// their parent died) so they do not linger as zombies; gives up after a second if some are still dying.
/// Other programs' processes, in other groups, are left to their own runs.
fn reap_orphans(group: i32) {
    let started = Instant::now();
    loop {
        let mut pending = 0;
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // Fields after the command name (which is in parentheses): state, ppid, pgrp, ...
            let fields: Vec<&str> =
                stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
            if pid == group || fields.get(2).and_then(|g| g.parse::<i32>().ok()) != Some(group) {
                continue;
            }
            // SAFETY: waits only for this specific process, without blocking; it fails harmlessly if the process
            // is not this process's child.
            if unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0 {
                pending += 1;
            }
        }
        if pending == 0 || started.elapsed() > Duration::from_secs(1) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn which(program: &Path) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.exists()))
}
