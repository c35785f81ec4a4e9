//! The Model view: open a model by catalogue name, path, file dialog or repository id of the Hugging Face cache
//! (the models there are listed, with what an incomplete one lacks); its architecture, parameters, device and
//! memory; a clear error panel when loading fails.

use std::sync::{Arc, Mutex};

use egui_file_dialog::FileDialog;
use models::{LoadOptions, Model};
use repair::patchset::{ModelIdentity, PatchSet};
use serde::{Deserialize, Serialize};

use super::{labelled_field, run_button};
use crate::gui::job::Job;
use crate::gui::shared::{ModelSummary, Shared, View};

/// A loaded model and its identity.
pub struct Loaded {
    /// The model.
    pub model: Model,
    /// Its identity and weight hash, for patch sets.
    pub identity: ModelIdentity,
}

/// Settings of the Model view.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct ModelView {
    /// Catalogue name, `.gguf` path or Hugging Face folder.
    pub spec: String,
    /// cpu, cuda or auto.
    pub device: String,
    /// f32, bf16, f16, or (generation only) bf16-weights or int8.
    pub dtype: String,
    #[serde(skip)]
    dialog: Option<FileDialog>,
    /// The loading job.
    #[serde(skip)]
    job: Option<Job<Box<Loaded>>>,
    /// The models found here (read when the view is first shown, and on Refresh).
    #[serde(skip)]
    available: Option<Vec<Available>>,
}

/// A model that can be named in the view: a catalogue entry or a model of the Hugging Face cache.
pub struct Available {
    /// What to type into the Model field.
    pub spec: String,
    /// Architecture, dtype and size, or where the file is.
    pub detail: String,
    /// Why it cannot be loaded, when it cannot.
    pub problem: Option<String>,
}

/// The catalogue's models and those of the Hugging Face cache `cache`.
pub fn available_models(cache: &std::path::Path) -> Vec<Available> {
    let catalogue = models::catalogue::CATALOGUE.iter().map(|e| {
        let path = models::catalogue::data_dir().join(e.file);
        let problem = (!path.exists()).then(|| format!("{} is missing: run ./x setup", path.display()));
        Available { spec: e.name.to_string(), detail: format!("catalogue, {}", e.file), problem }
    });
    let cached = models::hf_cache::cached_models(cache).into_iter().map(|m| Available {
        detail: format!(
            "Hugging Face cache, {} {} {:.1} MiB",
            m.architecture.as_deref().unwrap_or("?"),
            m.dtype.as_deref().unwrap_or("?"),
            m.bytes as f64 / 1048576.0
        ),
        spec: m.id,
        problem: m.problem,
    });
    catalogue.chain(cached).collect()
}

impl Default for ModelView {
    fn default() -> Self {
        ModelView {
            spec: models::catalogue::DEFAULT_MODEL.to_string(),
            device: "auto".into(),
            dtype: "f32".into(),
            dialog: None,
            job: None,
            available: None,
        }
    }
}

fn choice(ui: &mut egui::Ui, label: &str, value: &mut String, options: &[&str]) {
    egui::ComboBox::from_label(label).selected_text(value.as_str()).show_ui(ui, |ui| {
        for option in options {
            ui.selectable_value(value, option.to_string(), *option);
        }
    });
}

impl ModelView {
    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Open a model");
        shared.error_panel(ui, View::Model);
        ui.horizontal(|ui| {
            labelled_field(ui, "Model", &mut self.spec, 420.0);
            if ui.button("Browse…").clicked() {
                let mut dialog = FileDialog::new();
                dialog.pick_file();
                self.dialog = Some(dialog);
            }
        });
        if let Some(dialog) = &mut self.dialog {
            dialog.update(ui.ctx());
            if let Some(path) = dialog.take_picked() {
                self.spec = path.display().to_string();
                self.dialog = None;
            }
        }
        ui.label("A catalogue name, a .gguf file, a Hugging Face folder, or org/name of the Hugging Face cache.");
        self.show_available(ui);
        ui.horizontal(|ui| {
            choice(ui, "Device", &mut self.device, &["auto", "cpu", "cuda"]);
            choice(ui, "Weights", &mut self.dtype, &["f32", "bf16", "f16", "bf16-weights", "int8"]);
        });
        if run_button(ui, shared.busy(), "Load") {
            self.load(ui.ctx(), shared);
        }
        ui.separator();
        match &shared.summary {
            Some(summary) => show_summary(ui, summary),
            None => {
                ui.label("No model is loaded.");
            }
        }
    }

    /// Starts loading the model the view names.
    pub fn load(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let (spec, device, dtype) = (self.spec.trim().to_string(), self.device.clone(), self.dtype.clone());
        self.job = shared.start(ctx, View::Model, "loading the model", move |job| {
            let options = LoadOptions::parse(&device, &dtype)?;
            let model = Model::load_with_progress(&spec, options, job.progress())?;
            let identity = ModelIdentity::of(&model)?;
            Ok(Box::new(Loaded { model, identity }))
        });
    }

    /// Takes a loaded model, if the loading job finished: it replaces the old one, and the old one's patches no
    /// longer apply. Returns whether a model arrived.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) -> bool {
        let mut arrived = false;
        for loaded in shared.poll(ctx, View::Model, &mut self.job) {
            shared.summary = Some(ModelSummary::of(&loaded.model));
            shared.model = Some(Arc::new(Mutex::new(loaded.model)));
            shared.patches = Some(Arc::new(Mutex::new(PatchSet::new(loaded.identity))));
            arrived = true;
        }
        arrived
    }
}

impl ModelView {
    /// The models found here; clicking one names it in the Model field.
    fn show_available(&mut self, ui: &mut egui::Ui) {
        let cache = models::hf_cache::hub_cache_dir();
        ui.horizontal(|ui| {
            ui.strong(format!("Models here (the catalogue and the Hugging Face cache {})", cache.display()));
            if ui.button("Refresh").clicked() {
                self.available = None;
            }
        });
        let available = self.available.get_or_insert_with(|| available_models(&cache));
        egui::Grid::new("available models").striped(true).show(ui, |ui| {
            for model in available.iter() {
                if ui.selectable_label(self.spec == model.spec, model.spec.as_str()).clicked() {
                    self.spec = model.spec.clone();
                }
                match &model.problem {
                    None => ui.label(model.detail.as_str()),
                    Some(problem) => {
                        ui.colored_label(ui.visuals().warn_fg_color, format!("cannot be loaded: {problem}"))
                    }
                };
                ui.end_row();
            }
        });
    }
}

fn show_summary(ui: &mut egui::Ui, summary: &ModelSummary) {
    ui.heading(summary.name.as_str());
    egui::Grid::new("model summary").striped(true).show(ui, |ui| {
        for (name, value) in &summary.rows {
            ui.label(*name);
            ui.label(value.as_str());
            ui.end_row();
        }
    });
}
