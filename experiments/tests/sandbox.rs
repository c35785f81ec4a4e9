//! Hostile programs in the sandbox: each is contained and reported as failed or timed out, and the machine is
//! unharmed (files outside stay, no connection arrives, no process is left). Some run without the audit-hook
//! guard to show that the outer walls (limits, user, network namespace) hold on their own.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use experiments::sandbox::{Execution, Limits, Outcome, Sandbox};

/// The tests run one at a time, so that counting the sandbox user's processes sees only one test's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sandbox(guarded: bool) -> Sandbox {
    let limits = Limits { wall: Duration::from_secs(3), cpu_seconds: 2, audit_guard: guarded, ..Limits::default() };
    Sandbox::new(&Sandbox::default_python(), limits).unwrap()
}

fn run(guarded: bool, program: &str) -> Execution {
    sandbox(guarded).run(program).unwrap()
}

/// Processes of the sandbox user (`nobody`) still running (zombies, already dead and waiting for this
/// container's init to reap them, do not count).
fn nobody_processes() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("status")).ok())
        .filter(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("65534")))
        .filter(|s| !s.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
        .count()
}

#[test]
fn ordinary_programs_pass_or_fail_with_their_output() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let ok = run(true, "print(sum(range(10)))");
    assert_eq!((ok.outcome, ok.stdout.trim()), (Outcome::Passed, "45"));
    let failed = run(true, "assert 1 + 1 == 3, 'arithmetic'");
    assert!(failed.outcome == Outcome::Failed && failed.stderr.contains("AssertionError"));
    let env = run(true, "import os; print(sorted(k for k in os.environ if k not in ('LC_CTYPE',)))");
    assert_eq!(env.stdout.trim(), "['HOME', 'PATH', 'PYTHONDONTWRITEBYTECODE']", "the environment is cleared");
    let programs: Vec<String> = (0..8).map(|i| format!("print({i} * {i})")).collect();
    let all = sandbox(true).run_all(&programs, 4);
    let outputs: Vec<String> = all.into_iter().map(|r| r.unwrap().stdout.trim().to_string()).collect();
    assert_eq!(outputs, ["0", "1", "4", "9", "16", "25", "36", "49"]);
}

#[test]
fn a_fork_bomb_is_contained_by_the_guard_and_by_the_process_limit() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for guarded in [true, false] {
        let started = Instant::now();
        let e =
            run(guarded, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n");
        assert_ne!(e.outcome, Outcome::Passed, "guarded {guarded}: {e:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(nobody_processes(), 0, "the bomb's processes are gone");
}

#[test]
fn infinite_loops_and_huge_allocations_are_stopped() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let e = run(true, "while True:\n    pass\n");
    assert!(
        matches!(e.outcome, Outcome::TimedOut | Outcome::Failed) && started.elapsed() < Duration::from_secs(6),
        "{e:?}"
    );
    let e = run(false, "x = bytearray(50 * 2**30)\nprint('allocated')");
    assert!(e.outcome == Outcome::Failed && e.stderr.contains("MemoryError"), "{e:?}");
    let e = run(true, "import time\ntime.sleep(60)");
    assert_eq!(e.outcome, Outcome::TimedOut);
}

#[test]
fn files_outside_the_sandbox_are_safe() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let outside = tempfile::tempdir().unwrap();
    let canary = outside.path().join("canary.txt");
    std::fs::write(&canary, "keep me").unwrap();
    let target = outside.path().join("written.txt");
    let programs = [
        format!("import os\nos.remove({:?})", canary.to_str().unwrap()),
        format!("import shutil\nshutil.rmtree({:?})", outside.path().to_str().unwrap()),
        "import os, shutil\nshutil.rmtree('/root')".to_string(),
        format!("open({:?}, 'w').write('escaped')", target.to_str().unwrap()),
        "open('/tmp/sandbox-escape.txt', 'w').write('escaped')".to_string(),
    ];
    for program in &programs {
        let e = run(true, program);
        assert_eq!(e.outcome, Outcome::Failed, "{program}: {e:?}");
        assert!(e.stderr.contains("sandbox:") || e.stderr.contains("Permission"), "{program}: {}", e.stderr);
    }
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "keep me");
    assert!(!target.exists() && !std::path::Path::new("/tmp/sandbox-escape.txt").exists());
    // Inside its own directory the program may write.
    assert_eq!(
        run(true, "open('scratch.txt', 'w').write('ok'); print(open('scratch.txt').read())").stdout.trim(),
        "ok"
    );
}

#[test]
fn sockets_are_refused_and_the_network_is_isolated() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let program =
        format!("import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')");
    for guarded in [true, false] {
        let e = run(guarded, &program);
        assert_eq!(e.outcome, Outcome::Failed, "guarded {guarded}: {e:?}");
        if !guarded {
            // Without the guard only the network namespace stands in the way; say so when there is none.
            assert!(e.network_isolated, "no network namespace here: the result must say so ({e:?})");
        }
    }
    assert!(listener.accept().is_err(), "no connection reached the host");
}

#[test]
fn megabytes_of_output_are_capped() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let e = run(true, "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 100000)\n");
    assert!(e.truncated && e.stdout.len() == 64 << 10, "{} bytes kept", e.stdout.len());
}
