//! `workbench gui`: the desktop app (eframe, glow renderer) over the whole loop. One module per view; each view
//! owns its settings, its results and the job it started (a [`job::Job`] off the UI thread), over the small
//! context the views share ([`shared::Shared`]). The app holds no science: views call the crates and their
//! operations.

pub mod heatmap;
pub mod job;
mod screenshots;
pub mod shared;
pub mod views;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use shared::{Shared, View};
use views::{
    benchmarks::BenchmarksView, experiments::ExperimentsView, features::FeaturesView, inspector::InspectorView,
    model::ModelView, neurons::NeuronsView, probes::ProbesView, repair::RepairView,
};

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
    /// Features view.
    pub features: FeaturesView,
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

    /// Draws one frame: side bar, status bar, the current view; every view takes in what its job sent.
    pub fn show(&mut self, ctx: &egui::Context) {
        self.poll(ctx);
        if let Some(neuron) = self.shared.open_neuron.take() {
            self.neurons.open(neuron);
            self.view = View::Neurons;
        }
        if let Some(feature) = self.shared.open_feature.take() {
            self.features.open(feature);
            self.view = View::Features;
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
                    View::Features => self.features.show(ui, shared),
                    View::Repair => self.repair.show(ui, shared),
                    View::Benchmarks => self.benchmarks.show(ui, shared),
                    View::Experiments => self.experiments.show(ui, shared),
                }
            });
        });
        if let Some(tour) = &mut self.tour {
            if let Some(step) = tour.step(ctx, self.shared.busy()) {
                self.view = step.view;
                if let Some(stage) = step.demo {
                    let started = self.demo(ctx, step.view, stage);
                    if let Some(tour) = &mut self.tour {
                        tour.demo_started(started);
                    }
                }
            }
        }
    }

    /// Starts stage `stage` of the small job that fills `view` for its screenshot; false when it has no more.
    fn demo(&mut self, ctx: &egui::Context, view: View, stage: usize) -> bool {
        let shared = &mut self.shared;
        match view {
            View::Model | View::Inspector => false,
            View::Probes => self.probes.demo(ctx, shared, stage),
            View::Neurons => self.neurons.demo(ctx, shared, stage),
            View::Features => self.features.demo(ctx, shared, stage),
            View::Repair => self.repair.demo(ctx, shared, stage),
            View::Benchmarks => self.benchmarks.demo(ctx, shared, stage),
            View::Experiments => self.experiments.demo(ctx, shared, stage),
        }
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.shared.running {
                Some(job) => {
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

    /// Every view takes in what its job sent (a view's job may end while another view is shown); a model that
    /// arrives during the screenshot tour is inspected at once.
    fn poll(&mut self, ctx: &egui::Context) {
        let shared = &mut self.shared;
        let loaded = self.model.poll(ctx, shared);
        self.inspector.poll(ctx, shared);
        self.probes.poll(ctx, shared);
        self.neurons.poll(ctx, shared);
        self.features.poll(ctx, shared);
        self.repair.poll(ctx, shared);
        self.benchmarks.poll(ctx, shared);
        self.experiments.poll(ctx, shared);
        if loaded && self.tour.is_some() {
            self.inspector.inspect(ctx, shared);
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
