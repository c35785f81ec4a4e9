//! The prompt inspector: the prompt as a strip of tokens; for the selected token its top-k next tokens, the
//! logit-lens heatmap (layers x tokens), attention patterns per layer and head, the layer's MLP neuron
//! activations and its top neurons, beside the top features of the dictionary loaded in the Features view; and
//! generation with settings.

use std::path::PathBuf;

use experiments::ops::features::feature_activations;
use models::{GenerationConfig, Neuron, Sampling};
use probes::inspect::{inspect_prompt, strongest, PromptInspection};
use serde::{Deserialize, Serialize};

use super::{labelled_number, run_button, visible_token};
use crate::gui::heatmap::Heatmap;
use crate::gui::job::Job;
use crate::gui::shared::{Shared, View};

/// The loaded dictionary's features on the inspected prompt.
#[derive(Debug, Clone)]
pub struct InspectedFeatures {
    /// The dictionary's SAELens folder.
    pub folder: PathBuf,
    /// `activations[position][feature]`.
    pub activations: Vec<Vec<f32>>,
}

/// What the inspector's jobs return.
pub enum Found {
    /// An inspected prompt, with the loaded dictionary's features on it.
    Inspection(Box<PromptInspection>, Option<InspectedFeatures>),
    /// Generated text.
    Generation(String),
}

/// Settings and results of the prompt inspector.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct InspectorView {
    /// The prompt.
    pub prompt: String,
    /// Next tokens shown per position.
    pub top_k: usize,
    /// Layer of the attention and neuron maps.
    pub layer: usize,
    /// Attention head.
    pub head: usize,
    /// Selected token position.
    pub selected: usize,
    /// Generation: most new tokens.
    pub max_tokens: usize,
    /// Generation: temperature (0 = greedy).
    pub temperature: f64,
    /// Generation: seed.
    pub seed: u64,
    /// Generation: wrap the prompt in the chat template.
    pub chat: bool,
    /// The last inspection.
    #[serde(skip)]
    pub inspection: Option<PromptInspection>,
    /// The loaded dictionary's features on the last inspected prompt.
    #[serde(skip)]
    pub features: Option<InspectedFeatures>,
    /// The last generation.
    #[serde(skip)]
    pub generation: Option<String>,
    /// The running job.
    #[serde(skip)]
    job: Option<Job<Found>>,
}

impl Default for InspectorView {
    fn default() -> Self {
        InspectorView {
            prompt: "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) +".into(),
            top_k: 5,
            layer: 0,
            head: 0,
            selected: 0,
            max_tokens: 32,
            temperature: 0.0,
            seed: 0,
            chat: false,
            inspection: None,
            features: None,
            generation: None,
            job: None,
        }
    }
}

impl InspectorView {
    /// Takes what the view's job sent.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for found in shared.poll(ctx, View::Inspector, &mut self.job) {
            match found {
                Found::Inspection(inspection, features) => {
                    self.inspection = Some(*inspection);
                    self.features = features;
                }
                Found::Generation(text) => self.generation = Some(text),
            }
        }
    }

    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Inspect a prompt");
        shared.error_panel(ui, View::Inspector);
        let label = ui.label("Prompt");
        ui.add(egui::TextEdit::multiline(&mut self.prompt).code_editor().desired_rows(4).desired_width(f32::INFINITY))
            .labelled_by(label.id);
        ui.horizontal(|ui| {
            labelled_number(ui, "Top k", &mut self.top_k, 1..=20);
            if run_button(ui, shared.busy(), "Inspect") {
                self.inspect(ui.ctx(), shared);
            }
        });
        self.show_generation(ui, shared);
        ui.separator();
        if let Some(inspection) = self.inspection.take() {
            self.show_inspection(ui, &inspection);
            self.show_layer_maps(ui, &inspection, shared);
            self.inspection = Some(inspection);
        }
    }

    /// Starts inspecting the prompt.
    pub fn inspect(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let (prompt, k, dictionary) = (self.prompt.clone(), self.top_k, shared.dictionary.clone());
        self.selected = 0;
        self.job = shared.start_with_model(ctx, View::Inspector, "inspecting the prompt", move |model, _| {
            let inspection = inspect_prompt(model, &prompt, k)?;
            let features = match dictionary {
                Some(folder) => {
                    let activations = feature_activations(model, &folder, &inspection.ids)?;
                    Some(InspectedFeatures { folder, activations })
                }
                None => None,
            };
            Ok(Found::Inspection(Box::new(inspection), features))
        });
    }

    fn show_inspection(&mut self, ui: &mut egui::Ui, inspection: &PromptInspection) {
        let mut selected = self.selected.min(inspection.tokens.len().saturating_sub(1));
        ui.label(format!("{} tokens; click one to select it.", inspection.tokens.len()));
        ui.horizontal_wrapped(|ui| {
            for (position, token) in inspection.tokens.iter().enumerate() {
                let text = egui::RichText::new(visible_token(token)).monospace();
                if ui.selectable_label(position == selected, text).clicked() {
                    selected = position;
                }
            }
        });
        self.selected = selected;
        ui.heading(format!("Next token after {:?}", inspection.tokens.get(selected).map_or("", |t| t.as_str())));
        egui::Grid::new("top k").striped(true).show(ui, |ui| {
            for prediction in inspection.lens.final_top.get(selected).into_iter().flatten() {
                ui.monospace(visible_token(&prediction.text));
                ui.add(egui::ProgressBar::new(prediction.prob).text(format!("{:.3}", prediction.prob)));
                ui.end_row();
            }
        });
        ui.heading("Logit lens (rows: layers; cells: top-1 after the layer, shaded by its probability)");
        let lens = &inspection.lens.top1;
        Heatmap {
            rows: lens.len(),
            columns: inspection.tokens.len(),
            value: &|r, c| lens[r][c].prob,
            label: &|r, c| {
                format!("layer {r}, after {:?}: {:?} {:.3}", inspection.tokens[c], lens[r][c].text, lens[r][c].prob)
            },
            cell_text: Some(&|r, c| visible_token(&lens[r][c].text)),
            diverging: false,
            cell: egui::vec2((ui.available_width() / inspection.tokens.len() as f32).clamp(8.0, 44.0), 14.0),
        }
        .show(ui);
    }

    fn show_layer_maps(&mut self, ui: &mut egui::Ui, inspection: &PromptInspection, shared: &mut Shared) {
        let layers = inspection.attention.len();
        let heads = inspection.attention.first().map_or(1, |l| l.len());
        ui.horizontal(|ui| {
            labelled_number(ui, "Layer", &mut self.layer, 0..=layers.saturating_sub(1));
            labelled_number(ui, "Head", &mut self.head, 0..=heads.saturating_sub(1));
        });
        let (layer, head) = (self.layer.min(layers.saturating_sub(1)), self.head.min(heads.saturating_sub(1)));
        let tokens = &inspection.tokens;
        ui.heading(format!("Attention of layer {layer}, head {head} (rows: queries, columns: keys)"));
        let pattern = &inspection.attention[layer][head];
        Heatmap {
            rows: tokens.len(),
            columns: tokens.len(),
            value: &|q, k| pattern[q][k],
            label: &|q, k| format!("{:?} attends to {:?}: {:.3}", tokens[q], tokens[k], pattern[q][k]),
            cell_text: None,
            diverging: false,
            cell: egui::vec2(14.0, 14.0),
        }
        .show(ui);
        ui.heading(format!("MLP neurons of layer {layer} (rows: tokens, columns: neurons)"));
        let activations = &inspection.neurons[layer];
        let width = activations.first().map_or(1, |r| r.len());
        let scale = activations.iter().flatten().fold(1e-6_f32, |m, a| m.max(a.abs()));
        let cell = egui::vec2((ui.available_width() / width as f32).max(0.25), 10.0);
        Heatmap {
            rows: tokens.len(),
            columns: width,
            value: &|p, n| activations[p][n] / scale,
            label: &|p, n| format!("neuron {layer}.{n} at {:?}: {:+.3}", tokens[p], activations[p][n]),
            cell_text: None,
            diverging: true,
            cell,
        }
        .show(ui);
        let selected = self.selected.min(tokens.len().saturating_sub(1));
        ui.columns(2, |columns| {
            columns[0].heading(format!("Top neurons of layer {layer} at {:?}", tokens[selected]));
            egui::Grid::new("top neurons").striped(true).show(&mut columns[0], |ui| {
                for top in inspection.top_neurons(layer, selected, 10) {
                    ui.monospace(format!("{layer}.{}", top.index));
                    ui.monospace(format!("{:+.3}", top.activation));
                    if ui.button(format!("Open neuron {layer}.{}", top.index)).clicked() {
                        shared.open_neuron = Some(Neuron { layer, index: top.index });
                    }
                    ui.end_row();
                }
            });
            self.show_features(&mut columns[1], &tokens[selected], selected, shared);
        });
    }

    /// The loaded dictionary's strongest features at the selected token, beside the neurons.
    fn show_features(&self, ui: &mut egui::Ui, token: &str, selected: usize, shared: &mut Shared) {
        let Some(features) = &self.features else {
            ui.label("Load a dictionary in the Features view to see its features here.");
            return;
        };
        ui.heading(format!("Top features at {token:?}"));
        ui.label(format!("of {}", features.folder.display()));
        let row = features.activations.get(selected).map_or(&[][..], |r| r.as_slice());
        egui::Grid::new("top features").striped(true).show(ui, |ui| {
            for top in strongest(row, 10).into_iter().filter(|t| t.activation != 0.0) {
                ui.monospace(format!("feature {}", top.index));
                ui.monospace(format!("{:+.3}", top.activation));
                if ui.button(format!("Open feature {}", top.index)).clicked() {
                    shared.open_feature = Some(top.index);
                }
                ui.end_row();
            }
        });
    }

    fn show_generation(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Generate");
        ui.horizontal(|ui| {
            labelled_number(ui, "Max tokens", &mut self.max_tokens, 1..=1024);
            ui.add(egui::Slider::new(&mut self.temperature, 0.0..=2.0).text("Temperature"));
            labelled_number(ui, "Seed", &mut self.seed, 0..=u64::MAX);
            ui.checkbox(&mut self.chat, "Chat template");
            if run_button(ui, shared.busy(), "Generate") {
                self.generate(ui.ctx(), shared);
            }
        });
        if let Some(text) = &self.generation {
            ui.label("Continuation:");
            ui.add(egui::Label::new(egui::RichText::new(text).monospace()).wrap());
        }
    }

    fn generate(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let (prompt, chat) = (self.prompt.clone(), self.chat);
        let sampling = if self.temperature > 0.0 {
            Sampling::Random { temperature: self.temperature, top_k: None, top_p: None, seed: self.seed }
        } else {
            Sampling::Greedy
        };
        let config = GenerationConfig {
            max_new_tokens: self.max_tokens,
            sampling,
            stop_sequences: Vec::new(),
            stop_at_eos: true,
        };
        self.job = shared.start_with_model(ctx, View::Inspector, "generating", move |model, _| {
            let prompt = if chat { model.chat_prompt(&prompt)? } else { prompt };
            let generation = model.generate_text(&[&prompt], &config)?.remove(0);
            Ok(Found::Generation(generation.text))
        });
    }
}
