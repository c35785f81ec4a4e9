//! The Features view: train a transcoder of one MLP layer on activations of the standard library's packages, or
//! load a dictionary in SAELens's format; its metrics on held-out files; a feature's page (top examples shaded by
//! activation, description, simulation score). The loaded dictionary's features show in the Prompt inspector
//! beside the neurons.

use std::path::{Path, PathBuf};

use experiments::ops::dictionary::{EvalDictionarySettings, TrainDictionarySettings};
use experiments::ops::features::{load_features, FeaturePagesSettings};
use experiments::ops::{run_report, Context, Report};
use find::pages::UnitPage;
use models::Model;
use probes::sparse::metrics::DictionaryMetrics;
use serde::{Deserialize, Serialize};

use super::neurons::show_page;
use super::{labelled_field, labelled_number, run_button};
use crate::gui::job::{Job, JobContext};
use crate::gui::shared::{Shared, View};

/// A dictionary the view has loaded (and the Prompt inspector reads).
#[derive(Debug, Clone)]
pub struct LoadedDictionary {
    /// Its SAELens folder.
    pub folder: PathBuf,
    /// Its architecture, size and the points it reads and writes.
    pub description: String,
    /// Its metrics on held-out files, once measured (training measures them).
    pub metrics: Option<DictionaryMetrics>,
    /// The report's lines on those metrics.
    pub summary: Vec<String>,
}

/// What the view's jobs send.
pub enum Found {
    /// A dictionary loaded, trained or measured.
    Dictionary(Box<LoadedDictionary>),
    /// A feature's page.
    Page(Box<UnitPage>),
}

/// Settings and results of the Features view.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct FeaturesView {
    /// The SAELens folder to load.
    pub folder: String,
    /// The MLP layer a transcoder is trained on.
    pub layer: usize,
    /// How it is trained and measured (its points are set from `layer`).
    pub training: TrainDictionarySettings,
    /// Where training and measuring write their run folders.
    pub runs: String,
    /// The feature paged.
    pub index: usize,
    /// CPython files searched for its top examples.
    pub files: usize,
    /// The loaded dictionary.
    #[serde(skip)]
    pub loaded: Option<LoadedDictionary>,
    /// The feature's page.
    #[serde(skip)]
    pub page: Option<UnitPage>,
    /// The running job.
    #[serde(skip)]
    job: Option<Job<Found>>,
}

impl Default for FeaturesView {
    fn default() -> Self {
        let mut training = TrainDictionarySettings::default();
        training.training.k = 24;
        training.training.steps = 3600;
        FeaturesView {
            folder: String::new(),
            layer: 15,
            training,
            runs: "runs".into(),
            index: 0,
            files: 8,
            loaded: None,
            page: None,
            job: None,
        }
    }
}

/// `folder` loaded onto the model's device and described.
fn describe(model: &Model, folder: &Path) -> anyhow::Result<LoadedDictionary> {
    let dictionary = load_features(model, folder)?.dictionary;
    let description = format!(
        "{} with {} features: {} -> {}",
        probes::sparse::saelens::architecture(&dictionary)?,
        dictionary.d_sae(),
        dictionary.reads,
        dictionary.writes
    );
    Ok(LoadedDictionary { folder: folder.to_path_buf(), description, metrics: None, summary: Vec::new() })
}

/// Runs `operation` into a new run folder `runs/<time>-<name>`.
fn run_in<O: experiments::ops::Operation>(
    operation: &O,
    model: &Model,
    job: &JobContext<Found>,
    runs: &Path,
    name: &str,
    seed: u64,
) -> anyhow::Result<(O::Report, PathBuf)> {
    let out = experiments::runs::new_run_dir(runs, name)?;
    let context = Context { seed, progress: job.progress(), out: &out };
    let (report, _) = run_report(operation, model, &context)?;
    Ok((report, out))
}

impl FeaturesView {
    /// Takes what the view's job sent; a dictionary that arrives is the one the Prompt inspector reads.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for found in shared.poll(ctx, View::Features, &mut self.job) {
            match found {
                Found::Dictionary(loaded) => {
                    self.folder = loaded.folder.display().to_string();
                    shared.dictionary = Some(loaded.folder.clone());
                    self.loaded = Some(*loaded);
                }
                Found::Page(page) => self.page = Some(*page),
            }
        }
    }

    /// Opens feature `index` of the loaded dictionary (asked for by another view).
    pub fn open(&mut self, index: usize) {
        self.index = index;
        self.page = None;
    }

    /// The screenshot tour's small jobs: a small transcoder of layer 15 trained on four files, then the page of
    /// its most frequent feature.
    pub fn demo(&mut self, ctx: &egui::Context, shared: &mut Shared, stage: usize) -> bool {
        match stage {
            0 => {
                (self.training.files, self.training.max_tokens) = (4, 256);
                (self.training.training.features, self.training.training.k, self.training.training.steps) =
                    (256, 8, 40);
                (self.training.held_out.files, self.files) = (2, 3);
                self.train(ctx, shared);
            }
            1 => {
                let density = self.loaded.as_ref().and_then(|l| l.metrics.as_ref()).map(|m| &m.feature_density);
                self.index = density.and_then(|d| (0..d.len()).max_by(|&a, &b| d[a].total_cmp(&d[b]))).unwrap_or(0);
                self.feature_page(ctx, shared);
            }
            _ => return false,
        }
        self.job.is_some()
    }

    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Sparse features");
        shared.error_panel(ui, View::Features);
        ui.horizontal(|ui| {
            labelled_field(ui, "Dictionary folder", &mut self.folder, 420.0);
            if run_button(ui, shared.busy(), "Load dictionary") {
                self.load(ui.ctx(), shared);
            }
        });
        egui::CollapsingHeader::new("Train a transcoder")
            .default_open(true)
            .show(ui, |ui| self.show_training(ui, shared));
        self.show_loaded(ui, shared);
        ui.separator();
        ui.heading("A feature");
        ui.horizontal(|ui| {
            labelled_number(ui, "Feature", &mut self.index, 0..=1_000_000);
            labelled_number(ui, "Files searched", &mut self.files, 1..=200);
            if run_button(ui, shared.busy() || self.loaded.is_none(), "Feature page") {
                self.feature_page(ui.ctx(), shared);
            }
        });
        if let Some(page) = &self.page {
            show_page(ui, page);
        }
    }

    fn show_training(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let settings = &mut self.training;
        ui.horizontal(|ui| {
            labelled_number(ui, "Layer", &mut self.layer, 0..=1000);
            labelled_number(ui, "Features", &mut settings.training.features, 16..=1 << 20);
            labelled_number(ui, "k", &mut settings.training.k, 1..=1024);
            labelled_number(ui, "Steps", &mut settings.training.steps, 1..=1_000_000);
            ui.checkbox(&mut settings.training.skip, "Skip connection");
        });
        ui.horizontal(|ui| {
            labelled_number(ui, "Package files", &mut settings.files, 1..=10_000);
            labelled_number(ui, "Tokens per file", &mut settings.max_tokens, 16..=8192);
            labelled_number(ui, "Held-out files", &mut settings.held_out.files, 1..=200);
            labelled_field(ui, "Runs folder", &mut self.runs, 120.0);
        });
        ui.label(
            "Activations are collected once per layer and file set, then cached; the defaults (4,608 features, \
             3,600 steps) train in about 45 minutes on 2 cores.",
        );
        if run_button(ui, shared.busy(), "Train transcoder") {
            self.train(ui.ctx(), shared);
        }
    }

    fn show_loaded(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(loaded) = &self.loaded else {
            ui.label("No dictionary loaded: load a SAELens folder or train one.");
            return;
        };
        ui.label(format!("Loaded {}: {}", loaded.folder.display(), loaded.description));
        for line in &loaded.summary {
            ui.label(line.as_str());
        }
        if run_button(ui, shared.busy(), "Evaluate on held-out files") {
            self.evaluate(ui.ctx(), shared);
        }
    }

    fn load(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let folder = PathBuf::from(self.folder.trim());
        self.job = shared.start_with_model(ctx, View::Features, "loading the dictionary", move |model, _| {
            Ok(Found::Dictionary(Box::new(describe(model, &folder)?)))
        });
    }

    fn train(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let mut settings = self.training.clone();
        settings.reads = format!("blocks.{}.mlp.hook_in", self.layer);
        settings.writes = Some(format!("blocks.{}.hook_mlp_out", self.layer));
        let runs = PathBuf::from(self.runs.trim());
        self.job = shared.start_with_model(ctx, View::Features, "training a transcoder", move |model, job| {
            let seed = settings.training.seed;
            let (report, out) = run_in(&settings, model, job, &runs, "features-train", seed)?;
            let loaded = describe(model, &out.join(&report.dictionary))?;
            Ok(Found::Dictionary(Box::new(LoadedDictionary {
                summary: report.summary(),
                metrics: Some(report.metrics),
                ..loaded
            })))
        });
    }

    fn evaluate(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(loaded) = self.loaded.clone() else { return };
        let settings =
            EvalDictionarySettings { dictionary: loaded.folder.clone(), held_out: self.training.held_out.clone() };
        let runs = PathBuf::from(self.runs.trim());
        self.job = shared.start_with_model(ctx, View::Features, "measuring the dictionary", move |model, job| {
            let (report, _) = run_in(&settings, model, job, &runs, "features-eval", 0)?;
            Ok(Found::Dictionary(Box::new(LoadedDictionary {
                summary: report.summary(),
                metrics: Some(report.metrics),
                ..loaded
            })))
        });
    }

    fn feature_page(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(loaded) = &self.loaded else { return };
        let settings = FeaturePagesSettings { files: self.files, ..FeaturePagesSettings::new(loaded.folder.clone()) };
        let index = self.index;
        self.page = None;
        self.job = shared.start_with_model(ctx, View::Features, "feature page", move |model, job| {
            Ok(Found::Page(Box::new(settings.feature_page(model, index, job.progress())?)))
        });
    }
}
