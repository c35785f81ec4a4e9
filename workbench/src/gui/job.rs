//! Long work off the UI thread. A job runs on its own thread, reports progress through [`models::Progress`]
//! (drawn as a progress bar), can be cancelled, may send partial results of its own type `T` while it runs (probe
//! layers as they finish, an interpreter's calls), and ends with a result or an error; a panic in a job becomes an
//! error too. The view that starts a job owns it and takes its results.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use models::{CancelToken, Progress};

/// Progress of a running job, shared between the job's thread and the UI.
pub struct JobProgress {
    stage: Mutex<String>,
    total: AtomicU64,
    done: AtomicU64,
    cancel: CancelToken,
    repaint: egui::Context,
}

impl JobProgress {
    /// The current stage's name.
    pub fn stage(&self) -> String {
        self.stage.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Fraction of the current stage done, when its size is known.
    pub fn fraction(&self) -> Option<f32> {
        let total = self.total.load(Ordering::Relaxed);
        (total > 0).then(|| self.done.load(Ordering::Relaxed) as f32 / total as f32)
    }

    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Progress for JobProgress {
    fn begin(&self, stage: &str, total: u64) {
        if let Ok(mut s) = self.stage.lock() {
            *s = stage.to_string();
        }
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.repaint.request_repaint();
    }

    fn advance(&self, steps: u64) {
        self.done.fetch_add(steps, Ordering::Relaxed);
        self.repaint.request_repaint();
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// What a job's thread hands the UI.
pub enum Message<T> {
    /// A partial result; the job goes on.
    Partial(T),
    /// The final result.
    Done(T),
    /// The job failed (or was cancelled, or panicked); the text says why.
    Failed(String),
}

/// What a running job may use: its progress, and a way to send partial results.
pub struct JobContext<T> {
    progress: Arc<JobProgress>,
    sender: Sender<Message<T>>,
}

impl<T> JobContext<T> {
    /// The job's progress, to pass to the crates' long functions.
    pub fn progress(&self) -> &JobProgress {
        &self.progress
    }

    /// Sends a partial result to the UI.
    pub fn send(&self, output: T) {
        // The UI may have dropped the job (the app is closing); then nobody needs the result.
        let _ = self.sender.send(Message::Partial(output));
        self.progress.repaint.request_repaint();
    }
}

/// A job started from a view.
pub struct Job<T> {
    /// What the job does, for the status bar.
    pub name: String,
    /// Its progress.
    pub progress: Arc<JobProgress>,
    /// When it started.
    pub started: Instant,
    receiver: Receiver<Message<T>>,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work` on a new thread.
    pub fn spawn(
        ctx: &egui::Context,
        name: &str,
        work: impl FnOnce(&JobContext<T>) -> anyhow::Result<T> + Send + 'static,
    ) -> Job<T> {
        let progress = Arc::new(JobProgress {
            stage: Mutex::new(name.to_string()),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            cancel: CancelToken::default(),
            repaint: ctx.clone(),
        });
        let (sender, receiver) = channel();
        let context = JobContext { progress: progress.clone(), sender: sender.clone() };
        let repaint = ctx.clone();
        let failure = sender.clone();
        let spawned = std::thread::Builder::new().name(format!("job: {name}")).spawn(move || {
            let message = match catch_unwind(AssertUnwindSafe(|| work(&context))) {
                Ok(Ok(output)) => Message::Done(output),
                Ok(Err(err)) => Message::Failed(format!("{err:#}")),
                Err(panic) => Message::Failed(format!("the job panicked: {}", panic_text(panic.as_ref()))),
            };
            let _ = sender.send(message);
            repaint.request_repaint();
        });
        if let Err(err) = spawned {
            let _ = failure.send(Message::Failed(format!("the job's thread could not start: {err}")));
        }
        Job { name: name.to_string(), progress, started: Instant::now(), receiver }
    }

    /// Every message that arrived since the last call, without waiting.
    pub fn poll(&self) -> Vec<Message<T>> {
        self.receiver.try_iter().collect()
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}
