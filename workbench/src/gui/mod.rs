//! `workbench gui`: the desktop app (eframe, glow renderer) over the whole loop. One module per view; every
//! long step runs as a [`job::Job`] off the UI thread. The app holds no science: it calls the crates below.

pub mod heatmap;
pub mod job;
mod screenshots;
pub mod views;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use models::Model;
use repair::patchset::PatchSet;
use serde::{Deserialize, Serialize};

use job::{Job, JobContext, Message};
use views::{
    benchmarks::BenchmarksView, experiments::ExperimentsView, inspector::InspectorView, model::ModelView,
    neurons::NeuronsView, probes::ProbesView, repair::RepairView,
};

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
    /// MINT repair.
    Repair,
    /// Benchmarks before and after patches.
    Benchmarks,
    /// Experiment specs, past runs, export.
    Experiments,
}

impl View {
    /// Every view, in side-bar order.
    pub const ALL: [View; 7] =
        [View::Model, View::Inspector, View::Probes, View::Neurons, View::Repair, View::Benchmarks, View::Experiments];

    /// The side bar's name of the view.
    pub fn title(self) -> &'static str {
        match self {
            View::Model => "Model",
            View::Inspector => "Prompt inspector",
            View::Probes => "Probes",
            View::Neurons => "Neurons",
            View::Repair => "Repair",
            View::Benchmarks => "Benchmarks",
            View::Experiments => "Experiments",
        }
    }
}

/// A result of a job, routed to the view that started it.
pub enum Output {
    /// A model finished loading.
    Model(Box<views::model::Loaded>),
    /// An inspected prompt.
    Inspection(Box<probes::inspect::PromptInspection>),
    /// Generated text.
    Generation(String),
    /// One probed layer (sent while the sweep runs).
    ProbeLayer(Box<probes::protocol::PointResult>),
    /// The probe sweep finished.
    ProbesDone,
    /// A neuron page.
    NeuronPage(Box<probes::find::pages::NeuronPage>),
    /// One call the interpreter made: x and the neuron's activation.
    InterpreterCall(f64, f64),
    /// The interpreter's answer.
    InterpreterAnswer(Box<probes::find::session::Answer>),
    /// Repair cases (mined or loaded).
    Cases(Vec<repair::RepairCase>),
    /// A repair, measured and reverted (a preview).
    Repair(Box<views::repair::Outcome>),
    /// A benchmark before and after the applied patches.
    Benchmark(Box<views::benchmarks::Comparison>),
    /// An experiment spec ran into this folder.
    ExperimentDone(PathBuf),
    /// The model was exported; the text says where.
    Exported(String),
}

/// What the views share: the model, the one job slot, the patches applied now, and the last failure.
#[derive(Default)]
pub struct Shared {
    /// The loaded model; a job holds its lock while it runs (tch tensors may not be shared between threads).
    pub model: Option<Arc<Mutex<Model>>>,
    /// What the Model view and the status bar show of it, read once at load.
    pub summary: Option<views::model::Summary>,
    /// The repairs applied to the model now, oldest first (empty until a model is loaded).
    pub patches: Option<Arc<Mutex<PatchSet>>>,
    /// The running job and the view that started it.
    pub job: Option<(View, Job)>,
    /// The last failed job: the view that started it and the error.
    pub failure: Option<(View, String)>,
    /// A neuron another view asked to open in the Neurons view.
    pub open_neuron: Option<models::Neuron>,
}

impl Shared {
    /// Whether a job is running (views disable their run buttons then).
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Starts `work` as the job of `view`, unless a job is already running.
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        view: View,
        name: &str,
        work: impl FnOnce(&JobContext) -> anyhow::Result<Output> + Send + 'static,
    ) {
        if self.busy() {
            return;
        }
        self.failure = None;
        self.job = Some((view, Job::spawn(ctx, name, work)));
    }

    /// Starts `work` on the loaded model as the job of `view` (the job holds the model while it runs); without a
    /// model, the view shows an error saying to load one.
    pub fn start_with_model(
        &mut self,
        ctx: &egui::Context,
        view: View,
        name: &str,
        work: impl FnOnce(&Model, &JobContext) -> anyhow::Result<Output> + Send + 'static,
    ) {
        let Some(model) = self.model.clone() else {
            self.failure = Some((view, "no model is loaded: open one in the Model view".into()));
            return;
        };
        self.start(ctx, view, name, move |job| {
            let model = model.lock().map_err(|_| anyhow::anyhow!("an earlier job failed while holding the model"))?;
            work(&model, job)
        });
    }

    /// The model for a quick change on the UI thread (applying or reverting a patch), when no job holds it.
    pub fn model_now(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Model>> {
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
pub fn lock_patches(patches: &Mutex<PatchSet>) -> anyhow::Result<std::sync::MutexGuard<'_, PatchSet>> {
    patches.lock().map_err(|_| anyhow::anyhow!("the patch set is poisoned"))
}

/// The desktop app: the views (their settings are kept between launches) and what they share.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkbenchApp {
    /// The view shown.
    pub view: View,
    /// Model view.
    pub model: ModelView,
    /// Prompt inspector.
    pub inspector: InspectorView,
    /// Probes view.
    pub probes: ProbesView,
    /// Neurons view.
    pub neurons: NeuronsView,
    /// Repair view.
    pub repair: RepairView,
    /// Benchmarks view.
    pub benchmarks: BenchmarksView,
    /// Experiments view.
    pub experiments: ExperimentsView,
    /// Model, job, patches.
    #[serde(skip)]
    pub shared: Shared,
    #[serde(skip)]
    tour: Option<screenshots::Tour>,
}

/// How `workbench gui` starts.
#[derive(Debug, Clone, Default)]
pub struct GuiOptions {
    /// Load this model at start (catalogue name or path).
    pub model: Option<String>,
    /// Save a screenshot of every view into this folder, then quit.
    pub screenshots: Option<PathBuf>,
}

impl WorkbenchApp {
    /// The app as it was when last closed (from eframe's storage), or a fresh one.
    pub fn restore(storage: Option<&dyn eframe::Storage>) -> Self {
        storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default()
    }

    /// Starts loading the model named in the Model view.
    pub fn load_model(&mut self, ctx: &egui::Context) {
        self.model.load(ctx, &mut self.shared);
    }

    /// Draws one frame: side bar, status bar, the current view; takes in what jobs sent.
    pub fn show(&mut self, ctx: &egui::Context) {
        self.receive(ctx);
        if let Some(neuron) = self.shared.open_neuron.take() {
            self.neurons.layer = neuron.layer;
            self.neurons.index = neuron.index;
            self.view = View::Neurons;
        }
        egui::SidePanel::left("views").resizable(false).show(ctx, |ui| {
            ui.heading("workbench");
            ui.separator();
            for view in View::ALL {
                ui.selectable_value(&mut self.view, view, view.title());
            }
        });
        egui::TopBottomPanel::bottom("status").show(ctx, |ui| self.status_bar(ui));
        egui::CentralPanel::default().show(ctx, |ui| {
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
                let shared = &mut self.shared;
                match self.view {
                    View::Model => self.model.show(ui, shared),
                    View::Inspector => self.inspector.show(ui, shared),
                    View::Probes => self.probes.show(ui, shared),
                    View::Neurons => self.neurons.show(ui, shared),
                    View::Repair => self.repair.show(ui, shared),
                    View::Benchmarks => self.benchmarks.show(ui, shared),
                    View::Experiments => self.experiments.show(ui, shared),
                }
            });
        });
        if let Some(tour) = &mut self.tour {
            if let Some(view) = tour.step(ctx, self.shared.busy()) {
                self.view = view;
            }
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.shared.job {
                Some((_, job)) => {
                    ui.spinner();
                    ui.label(format!("{}: {}", job.name, job.progress.stage()));
                    let bar = match job.progress.fraction() {
                        Some(f) => egui::ProgressBar::new(f).show_percentage(),
                        None => egui::ProgressBar::new(0.0).animate(true),
                    };
                    ui.add(bar.desired_width(240.0));
                    ui.label(format!("{:.0} s", job.started.elapsed().as_secs_f32()));
                    if ui.button("Cancel").clicked() {
                        job.progress.cancel();
                    }
                }
                None => {
                    ui.label("idle");
                }
            }
            ui.separator();
            let model = self.shared.summary.as_ref().map_or("no model", |s| s.name.as_str());
            ui.label(format!("{model}; {} repairs applied", self.shared.applied_count()));
        });
    }

    /// Takes in every message of the running job and routes results to their views; the job slot is free
    /// again before a final result is routed, so a view may start the next job from it.
    fn receive(&mut self, ctx: &egui::Context) {
        let Some((view, job)) = &self.shared.job else { return };
        let view = *view;
        let messages = job.poll();
        if messages.iter().any(|m| !matches!(m, Message::Partial(_))) {
            self.shared.job = None;
        } else {
            // Keep frames coming while the job runs, so its progress and elapsed time stay current.
            ctx.request_repaint_after(std::time::Duration::from_millis(250));
        }
        for message in messages {
            match message {
                Message::Partial(output) | Message::Done(output) => self.route(ctx, output),
                Message::Failed(error) => self.shared.failure = Some((view, error)),
            }
        }
    }

    fn route(&mut self, ctx: &egui::Context, output: Output) {
        let shared = &mut self.shared;
        match output {
            Output::Model(loaded) => {
                self.model.loaded(*loaded, shared);
                if self.tour.is_some() {
                    self.inspector.inspect(ctx, shared);
                }
            }
            Output::Inspection(inspection) => self.inspector.inspection = Some(*inspection),
            Output::Generation(text) => self.inspector.generation = Some(text),
            Output::ProbeLayer(result) => self.probes.results.push(*result),
            Output::ProbesDone => self.probes.finished = true,
            Output::NeuronPage(page) => self.neurons.page = Some(*page),
            Output::InterpreterCall(x, y) => self.neurons.calls.push([x, y]),
            Output::InterpreterAnswer(answer) => self.neurons.answer = Some(*answer),
            Output::Cases(cases) => self.repair.add_cases(cases),
            Output::Repair(outcome) => self.repair.outcome = Some(*outcome),
            Output::Benchmark(comparison) => self.benchmarks.comparison = Some(*comparison),
            Output::ExperimentDone(dir) => self.experiments.finished(dir),
            Output::Exported(text) => self.experiments.exported = Some(text),
        }
    }
}

impl eframe::App for WorkbenchApp {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.show(ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, self);
    }
}

/// Opens the desktop app and returns when its window closes.
pub fn run(options: GuiOptions) -> anyhow::Result<()> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([1360.0, 860.0]).with_title("workbench"),
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    eframe::run_native(
        "workbench",
        native,
        Box::new(move |cc| {
            egui_extras::install_image_loaders(&cc.egui_ctx);
            let mut app = WorkbenchApp::restore(cc.storage);
            if let Some(dir) = &options.screenshots {
                app.tour = Some(screenshots::Tour::new(dir.clone()));
            }
            let load_now = options.model.is_some() || options.screenshots.is_some();
            if let Some(model) = options.model {
                app.model.spec = model;
            }
            if load_now {
                app.load_model(&cc.egui_ctx);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not open (is a display available?): {e}"))
}
