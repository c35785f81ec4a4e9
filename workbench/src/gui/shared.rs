//! What the views share, at the bottom of the app: the model, its summary, the applied patches, the one running
//! job's progress (for the status bar; the job itself belongs to the view that started it), the last failure,
//! the loaded sparse dictionary, and a neuron or feature one view asks another to open. Views import this and
//! nothing above it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use models::Model;
use repair::patchset::PatchSet;
use serde::{Deserialize, Serialize};

use super::job::{Job, JobContext, JobProgress, Message};

/// The views of the side bar, in the order of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum View {
    /// Open a model; its summary.
    #[default]
    Model,
    /// One prompt from the inside.
    Inspector,
    /// Linear probes per layer.
    Probes,
    /// One neuron: examples, description, function.
    Neurons,
    /// A sparse dictionary: train or load, metrics, a feature's page.
    Features,
    /// MINT repair.
    Repair,
    /// Benchmarks before and after patches.
    Benchmarks,
    /// Experiment specs, past runs, export.
    Experiments,
}

impl View {
    /// Every view, in side-bar order.
    pub const ALL: [View; 8] = [
        View::Model,
        View::Inspector,
        View::Probes,
        View::Neurons,
        View::Features,
        View::Repair,
        View::Benchmarks,
        View::Experiments,
    ];

    /// The side bar's name of the view.
    pub fn title(self) -> &'static str {
        match self {
            View::Model => "Model",
            View::Inspector => "Prompt inspector",
            View::Probes => "Probes",
            View::Neurons => "Neurons",
            View::Features => "Features",
            View::Repair => "Repair",
            View::Benchmarks => "Benchmarks",
            View::Experiments => "Experiments",
        }
    }
}

/// What the Model view and the status bar show of a loaded model, read once when it loads.
pub struct ModelSummary {
    /// Its name.
    pub name: String,
    /// Blocks.
    pub n_layers: usize,
    /// Rows of the summary table: what and its value.
    pub rows: Vec<(&'static str, String)>,
}

impl ModelSummary {
    /// The summary of `model`.
    pub fn of(model: &Model) -> Self {
        let shape = model.shape();
        let rows = vec![
            ("file", format!("{} ({:?})", model.source.path.display(), model.source.format)),
            ("architecture", shape.architecture.clone()),
            ("layers", shape.n_layers.to_string()),
            ("d_model", shape.d_model.to_string()),
            ("neurons per layer", format!("{} ({} in all)", shape.d_mlp, shape.d_mlp * shape.n_layers)),
            (
                "attention heads",
                format!("{} query, {} key/value, {} wide", shape.n_heads, shape.n_kv_heads, shape.head_dim),
            ),
            ("vocabulary", shape.vocab_size.to_string()),
            ("context", shape.context_length.to_string()),
            ("embeddings", if shape.tied_embeddings { "tied" } else { "untied" }.to_string()),
            ("parameters", model.parameter_count().to_string()),
            ("memory", format!("{:.1} MiB as {:?}", model.parameter_bytes() as f64 / 1048576.0, model.kind)),
            ("device", format!("{:?}", model.device)),
        ];
        let name = model.source.display_name.clone().unwrap_or_else(|| model.source.spec.clone());
        ModelSummary { name, n_layers: shape.n_layers, rows }
    }
}

/// The job that runs now, as the status bar shows it.
pub struct RunningJob {
    /// The view that started it.
    pub view: View,
    /// What it does.
    pub name: String,
    /// Its progress (and its Cancel).
    pub progress: Arc<JobProgress>,
    /// When it started.
    pub started: Instant,
}

/// What the views share.
#[derive(Default)]
pub struct Shared {
    /// The loaded model; a job holds its lock while it runs (tch tensors may not be shared between threads).
    pub model: Option<Arc<Mutex<Model>>>,
    /// What the Model view and the status bar show of it, read once at load.
    pub summary: Option<ModelSummary>,
    /// The repairs applied to the model now, oldest first (empty until a model is loaded).
    pub patches: Option<Arc<Mutex<PatchSet>>>,
    /// The one job running now (jobs take turns: they share the model).
    pub running: Option<RunningJob>,
    /// The last failed job: the view that started it and the error.
    pub failure: Option<(View, String)>,
    /// A neuron another view asked to open in the Neurons view.
    pub open_neuron: Option<models::Neuron>,
    /// The sparse dictionary loaded in the Features view (a SAELens folder): the Prompt inspector shows its
    /// features beside the neurons.
    pub dictionary: Option<PathBuf>,
    /// A feature of that dictionary another view asked to open in the Features view.
    pub open_feature: Option<usize>,
}

impl Shared {
    /// Whether a job is running (views disable their run buttons then).
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Starts `work` as the job of `view`, unless a job is already running; the view keeps the job.
    pub fn start<T: Send + 'static>(
        &mut self,
        ctx: &egui::Context,
        view: View,
        name: &str,
        work: impl FnOnce(&JobContext<T>) -> anyhow::Result<T> + Send + 'static,
    ) -> Option<Job<T>> {
        if self.busy() {
            return None;
        }
        self.failure = None;
        let job = Job::spawn(ctx, name, work);
        self.running =
            Some(RunningJob { view, name: job.name.clone(), progress: job.progress.clone(), started: job.started });
        Some(job)
    }

    /// Starts `work` on the loaded model as the job of `view` (the job holds the model while it runs); without a
    /// model, the view shows an error saying to load one.
    pub fn start_with_model<T: Send + 'static>(
        &mut self,
        ctx: &egui::Context,
        view: View,
        name: &str,
        work: impl FnOnce(&Model, &JobContext<T>) -> anyhow::Result<T> + Send + 'static,
    ) -> Option<Job<T>> {
        let Some(model) = self.model.clone() else {
            self.failure = Some((view, "no model is loaded: open one in the Model view".into()));
            return None;
        };
        self.start(ctx, view, name, move |job| {
            let model = model.lock().map_err(|_| anyhow::anyhow!("an earlier job failed while holding the model"))?;
            work(&model, job)
        })
    }

    /// Takes everything `view`'s job sent since the last frame. When the job ended, the slot is free again (before
    /// its result is handed back, so the view may start the next job from it) and a failure is kept for `view`'s
    /// error panel; while it runs, frames keep coming so its progress stays current.
    pub fn poll<T: Send + 'static>(&mut self, ctx: &egui::Context, view: View, job: &mut Option<Job<T>>) -> Vec<T> {
        let Some(running) = job else { return Vec::new() };
        let messages = running.poll();
        let ended = messages.iter().any(|m| !matches!(m, Message::Partial(_)));
        if ended {
            *job = None;
            self.running = None;
        } else {
            ctx.request_repaint_after(std::time::Duration::from_millis(250));
        }
        let mut outputs = Vec::new();
        for message in messages {
            match message {
                Message::Partial(output) | Message::Done(output) => outputs.push(output),
                Message::Failed(error) => self.failure = Some((view, error)),
            }
        }
        outputs
    }

    /// The model for a quick change on the UI thread (applying or reverting a patch), when no job holds it.
    pub fn model_now(&self) -> anyhow::Result<MutexGuard<'_, Model>> {
        let model = self.model.as_ref().ok_or_else(|| anyhow::anyhow!("no model is loaded"))?;
        model.try_lock().map_err(|_| anyhow::anyhow!("a job is using the model; wait for it or cancel it"))
    }

    /// How many repairs are applied now.
    pub fn applied_count(&self) -> usize {
        self.patches.as_ref().and_then(|p| p.try_lock().ok().map(|p| p.patches.len())).unwrap_or(0)
    }

    /// Shows the last failure if `view` started the job that failed.
    pub fn error_panel(&mut self, ui: &mut egui::Ui, view: View) {
        let Some((failed, message)) = &self.failure else { return };
        if *failed != view {
            return;
        }
        let mut dismissed = false;
        egui::Frame::group(ui.style()).fill(ui.visuals().error_fg_color.gamma_multiply(0.15)).show(ui, |ui| {
            ui.colored_label(ui.visuals().error_fg_color, "The job failed");
            ui.label(message.as_str());
            dismissed = ui.button("Dismiss").clicked();
        });
        if dismissed {
            self.failure = None;
        }
    }
}

/// The patch set, locked (a job that panicked while holding it leaves it unusable: that is an error).
pub fn lock_patches(patches: &Mutex<PatchSet>) -> anyhow::Result<MutexGuard<'_, PatchSet>> {
    patches.lock().map_err(|_| anyhow::anyhow!("the patch set is poisoned"))
}
