//! The real app in a real window: `workbench gui --screenshots` on a virtual X display (Xvfb, installed by
//! `./x setup`) with Mesa's software OpenGL loads the default model, shows every view and saves a screenshot of
//! each under `runs/gui-screenshots/`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Xvfb on a free display number, stopped when dropped.
struct VirtualDisplay {
    process: Child,
    name: String,
}

impl VirtualDisplay {
    fn start() -> Self {
        for number in 90..120 {
            if std::path::Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
                continue;
            }
            let name = format!(":{number}");
            let display = VirtualDisplay {
                process: Command::new("Xvfb")
                    .args([name.as_str(), "-screen", "0", "1440x900x24", "-nolisten", "tcp"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("Xvfb runs (./x setup installs it)"),
                name,
            };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                if std::path::Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
                    return display;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("Xvfb did not open display {}", display.name);
        }
        panic!("no free X display number");
    }
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

#[test]
fn the_real_app_shows_every_view_and_saves_screenshots() {
    let display = VirtualDisplay::start();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runs/gui-screenshots");
    let _ = std::fs::remove_dir_all(&out);
    let config = tempfile::tempdir().unwrap();
    // The app's standard error (the tour says where it stands) goes to a file shown when the test fails.
    let log_path = config.path().join("app.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let app_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut app = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["gui", "--model", "smollm2-135m-instruct", "--screenshots"])
        .arg(&out)
        .env("DISPLAY", &display.name)
        .env_remove("WAYLAND_DISPLAY")
        // The app's stored settings go to a fresh place, so the test starts from the defaults.
        .env("XDG_DATA_HOME", config.path())
        .env("HOME", config.path())
        .stderr(log)
        .spawn()
        .expect("workbench runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = app.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(720) {
            let _ = app.kill();
            panic!(
                "the app did not finish its screenshots in 12 minutes (about 2.5 alone on 2 cores); its log:\n{}",
                app_log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "the app exited with {status}; its log:\n{}", app_log());
    let names = [
        "1-model",
        "2-prompt-inspector",
        "3-probes",
        "4-neurons",
        "5-features",
        "6-repair",
        "7-benchmarks",
        "8-experiments",
    ];
    let mut previous: Option<Vec<u8>> = None;
    for name in names {
        let path = out.join(format!("{name}.png"));
        let image = image::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; the app's log:\n{}", path.display(), app_log()))
            .to_rgba8();
        assert!(image.width() >= 800 && image.height() >= 600, "{name}: {}x{}", image.width(), image.height());
        let mut colours: Vec<[u8; 4]> = image.pixels().map(|p| p.0).collect();
        colours.sort();
        colours.dedup();
        assert!(colours.len() > 20, "{name} shows something ({} colours)", colours.len());
        let pixels = image.into_raw();
        assert_ne!(previous.as_ref(), Some(&pixels), "{name} differs from the view before it");
        previous = Some(pixels);
    }
}
