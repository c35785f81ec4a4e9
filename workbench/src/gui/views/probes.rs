//! The Probes view: choose a task, layers and probe; the probe operation runs in the background and the per-layer
//! accuracy, control and selectivity curves with their 95% bands are drawn as each layer finishes.

use egui_plot::{Legend, Line, Plot, PlotPoints, Polygon};
use experiments::ops::probe::ProbeSettings;
use models::HookPoint;
use probes::protocol::{PointResult, ProbeKind, Summary};
use probes::tasks::ProbeTask;
use serde::{Deserialize, Serialize};

use super::{labelled_field, labelled_number, run_button};
use crate::gui::job::Job;
use crate::gui::shared::{Shared, View};

/// Settings and results of the Probes view.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct ProbesView {
    /// The task (one over CPython files: the others run from the command line or a spec).
    pub task: ProbeTask,
    /// Layers: `all` or comma-separated numbers.
    pub layers: String,
    /// Logistic or ridge.
    pub ridge: bool,
    /// CPython files read.
    pub files: usize,
    /// Tokens per file.
    pub max_tokens: usize,
    /// Seeds (3 or more for intervals).
    pub seeds: u64,
    /// The layers of the running or last sweep, in order.
    #[serde(skip)]
    pub probed: Vec<usize>,
    /// Results so far, one per finished layer.
    #[serde(skip)]
    pub results: Vec<PointResult>,
    /// Whether the last sweep finished.
    #[serde(skip)]
    pub finished: bool,
    /// The running sweep: it sends each layer's result, then `None`.
    #[serde(skip)]
    job: Option<Job<Option<PointResult>>>,
}

impl Default for ProbesView {
    fn default() -> Self {
        ProbesView {
            task: ProbeTask::BracketDepth,
            layers: "all".into(),
            ridge: false,
            files: 12,
            max_tokens: 128,
            seeds: 3,
            probed: Vec::new(),
            results: Vec::new(),
            finished: false,
            job: None,
        }
    }
}

fn parse_layers(text: &str, n_layers: usize) -> anyhow::Result<Vec<usize>> {
    if text.trim() == "all" {
        return Ok((0..n_layers).collect());
    }
    text.split(',')
        .map(|l| {
            let layer: usize =
                l.trim().parse().map_err(|_| anyhow::anyhow!("layers: {l:?} is not a layer number or `all`"))?;
            HookPoint::ResidPost(layer).check(n_layers)?;
            Ok(layer)
        })
        .collect()
}

impl ProbesView {
    /// Takes the layers the sweep finished.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for result in shared.poll(ctx, View::Probes, &mut self.job) {
            match result {
                Some(result) => self.results.push(result),
                None => self.finished = true,
            }
        }
    }

    /// The screenshot tour's small job: a 3-seed sweep over seven layers of sixteen files.
    pub fn demo(&mut self, ctx: &egui::Context, shared: &mut Shared, stage: usize) -> bool {
        if stage > 0 {
            return false;
        }
        (self.layers, self.files, self.max_tokens, self.seeds) = ("0,5,10,15,20,25,29".into(), 16, 128, 3);
        if let Err(err) = self.run(ctx, shared) {
            shared.failure = Some((View::Probes, format!("{err:#}")));
        }
        self.job.is_some()
    }

    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Linear probes on the residual stream");
        shared.error_panel(ui, View::Probes);
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("Task").selected_text(format!("{:?}", self.task)).show_ui(ui, |ui| {
                for task in ProbeTask::ALL.into_iter().filter(|t| t.corpus_labeller().is_some()) {
                    ui.selectable_value(&mut self.task, task, format!("{task:?}"));
                }
            });
            ui.checkbox(&mut self.ridge, "Ridge probe (else logistic)");
        });
        ui.horizontal(|ui| {
            labelled_field(ui, "Layers", &mut self.layers, 160.0);
            labelled_number(ui, "Files", &mut self.files, 2..=200);
            labelled_number(ui, "Tokens per file", &mut self.max_tokens, 16..=2048);
            labelled_number(ui, "Seeds", &mut self.seeds, 1..=10);
        });
        if run_button(ui, shared.busy(), "Run probes") {
            if let Err(err) = self.run(ui.ctx(), shared) {
                shared.failure = Some((View::Probes, format!("{err:#}")));
            }
        }
        if self.probed.is_empty() {
            return;
        }
        let state = if self.finished { "done" } else { "running" };
        ui.label(format!("{} of {} layers probed ({state})", self.results.len(), self.probed.len()));
        self.plot(ui);
        self.table(ui);
    }

    fn run(&mut self, ctx: &egui::Context, shared: &mut Shared) -> anyhow::Result<()> {
        let n_layers = shared
            .summary
            .as_ref()
            .map(|s| s.n_layers)
            .ok_or_else(|| anyhow::anyhow!("no model is loaded: open one in the Model view"))?;
        let layers = parse_layers(&self.layers, n_layers)?;
        if self.task.corpus_labeller().is_none() {
            anyhow::bail!("the {} task runs from the command line or a spec", self.task);
        }
        let settings = ProbeSettings {
            task: self.task,
            layers: Some(layers.clone()),
            probe: if self.ridge { ProbeKind::Ridge } else { ProbeKind::Logistic },
            files: self.files,
            max_tokens: self.max_tokens,
            seeds: self.seeds.max(1) as usize,
            ..ProbeSettings::default()
        };
        self.probed = layers;
        self.results.clear();
        self.finished = false;
        self.job = shared.start_with_model(ctx, View::Probes, "probing", move |model, job| {
            settings.run_each(model, 0, job.progress(), |result| job.send(Some(result.clone())))?;
            Ok(None)
        });
        Ok(())
    }

    fn plot(&self, ui: &mut egui::Ui) {
        let layers: Vec<f64> = self.probed.iter().map(|&l| l as f64).collect();
        let curve = |pick: fn(&PointResult) -> &Summary| -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
            let line = self.results.iter().zip(&layers).map(|(r, &x)| [x, pick(r).mean]).collect();
            let upper = self.results.iter().zip(&layers).map(|(r, &x)| [x, pick(r).high]);
            let lower = self.results.iter().zip(&layers).rev().map(|(r, &x)| [x, pick(r).low]);
            (line, upper.chain(lower).collect())
        };
        Plot::new("probe curves").legend(Legend::default()).height(320.0).show(ui, |plot| {
            for (name, pick, colour) in [
                (
                    "accuracy",
                    (|r: &PointResult| &r.accuracy) as fn(&PointResult) -> &Summary,
                    egui::Color32::from_rgb(30, 110, 220),
                ),
                ("control task", |r: &PointResult| &r.control, egui::Color32::GRAY),
                ("selectivity", |r: &PointResult| &r.selectivity, egui::Color32::from_rgb(220, 90, 0)),
            ] {
                let (line, band) = curve(pick);
                plot.polygon(
                    Polygon::new(format!("{name} 95% interval"), PlotPoints::from(band))
                        .fill_color(colour.gamma_multiply(0.2))
                        .stroke(egui::Stroke::NONE),
                );
                plot.line(Line::new(name, PlotPoints::from(line)).color(colour));
            }
        });
    }

    fn table(&self, ui: &mut egui::Ui) {
        egui::Grid::new("probe table").striped(true).show(ui, |ui| {
            for heading in ["layer", "accuracy", "control", "selectivity", "majority"] {
                ui.strong(heading);
            }
            ui.end_row();
            for (result, layer) in self.results.iter().zip(&self.probed) {
                ui.label(layer.to_string());
                for s in [&result.accuracy, &result.control, &result.selectivity] {
                    ui.label(format!("{:.3} [{:.3}, {:.3}]", s.mean, s.low, s.high));
                }
                ui.label(format!("{:.3}", result.majority));
                ui.end_row();
            }
        });
    }
}
