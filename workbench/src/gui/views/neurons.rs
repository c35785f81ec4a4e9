//! The Neurons view: go to a neuron (layer, index); its top-activating examples with tokens shaded by activation,
//! its description and simulation score; an interpreter probing it as a numeric function, its calls drawn as
//! they come and its answer plotted over them.

use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
use experiments::ops::pages::PagesSettings;
use find::expr::{Expr, Value};
use find::neurons::UnitNumeric;
use find::pages::UnitPage;
use find::scientist::Scientist;
use find::session::{Answer, BlackBox, Budget, Interpreter, Session};
use find::units::Neurons;
use models::Neuron;
use serde::{Deserialize, Serialize};

use super::{labelled_field, labelled_number, run_button, visible_token};
use crate::gui::heatmap::colour;
use crate::gui::job::{Job, JobContext};
use crate::gui::shared::{Shared, View};

/// What the view's jobs send.
pub enum Found {
    /// The neuron's page.
    Page(Box<UnitPage>),
    /// One call the interpreter made: x and the neuron's activation.
    Call(f64, f64),
    /// The interpreter's answer.
    Answer(Box<Answer>),
}

/// Settings and results of the Neurons view.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct NeuronsView {
    /// Layer.
    pub layer: usize,
    /// Index on `mlp.hook_post`.
    pub index: usize,
    /// CPython files searched for top examples.
    pub files: usize,
    /// Prompt with `{x}` for the numeric interpretation.
    pub template: String,
    /// Interpreter rounds.
    pub rounds: usize,
    /// The neuron's page.
    #[serde(skip)]
    pub page: Option<UnitPage>,
    /// The interpreter's calls so far: (x, activation).
    #[serde(skip)]
    pub calls: Vec<[f64; 2]>,
    /// The interpreter's answer.
    #[serde(skip)]
    pub answer: Option<Answer>,
    /// The running job.
    #[serde(skip)]
    job: Option<Job<Found>>,
}

impl Default for NeuronsView {
    fn default() -> Self {
        NeuronsView {
            layer: 10,
            index: 0,
            files: 8,
            template: "x = {x}".into(),
            rounds: 3,
            page: None,
            calls: Vec::new(),
            answer: None,
            job: None,
        }
    }
}

/// A black box that tells the UI about every call the interpreter makes.
struct Watched<'a, 'j> {
    inner: UnitNumeric<'a>,
    job: &'j JobContext<Found>,
}

impl BlackBox for Watched<'_, '_> {
    fn numeric_input(&self) -> bool {
        self.inner.numeric_input()
    }

    fn hint(&self) -> Option<String> {
        self.inner.hint()
    }

    fn call(&mut self, x: &Value) -> find::Result<Value> {
        use models::Progress;
        self.job.progress().check()?;
        let y = self.inner.call(x)?;
        if let (Value::Num(x), Value::Num(y)) = (x, &y) {
            self.job.send(Found::Call(*x, *y));
        }
        Ok(y)
    }
}

impl NeuronsView {
    /// Takes what the view's job sent.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for found in shared.poll(ctx, View::Neurons, &mut self.job) {
            match found {
                Found::Page(page) => self.page = Some(*page),
                Found::Call(x, y) => self.calls.push([x, y]),
                Found::Answer(answer) => self.answer = Some(*answer),
            }
        }
    }

    /// Opens `neuron` (asked for by another view).
    pub fn open(&mut self, neuron: models::Neuron) {
        self.layer = neuron.layer;
        self.index = neuron.index;
    }

    /// The screenshot tour's small jobs: the neuron's top examples over three files, then its function.
    pub fn demo(&mut self, ctx: &egui::Context, shared: &mut Shared, stage: usize) -> bool {
        match stage {
            0 => {
                self.files = 3;
                self.examples(ctx, shared);
            }
            1 => {
                self.rounds = 2;
                self.interpret(ctx, shared);
            }
            _ => return false,
        }
        self.job.is_some()
    }

    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("A neuron");
        shared.error_panel(ui, View::Neurons);
        ui.horizontal(|ui| {
            labelled_number(ui, "Layer", &mut self.layer, 0..=1000);
            labelled_number(ui, "Index", &mut self.index, 0..=100_000);
            labelled_number(ui, "Files", &mut self.files, 1..=200);
            if run_button(ui, shared.busy(), "Top examples") {
                self.examples(ui.ctx(), shared);
            }
        });
        if let Some(page) = &self.page {
            show_page(ui, page);
        }
        ui.separator();
        ui.heading("As a numeric function");
        ui.horizontal(|ui| {
            labelled_field(ui, "Template", &mut self.template, 200.0);
            labelled_number(ui, "Rounds", &mut self.rounds, 1..=20);
            if run_button(ui, shared.busy(), "Interpret") {
                self.interpret(ui.ctx(), shared);
            }
        });
        self.show_function(ui);
    }

    fn neuron(&self) -> Neuron {
        Neuron { layer: self.layer, index: self.index }
    }

    fn examples(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let (neuron, files) = (self.neuron(), self.files);
        self.page = None;
        self.job = shared.start_with_model(ctx, View::Neurons, "top examples", move |model, job| {
            let settings = PagesSettings { files, ..PagesSettings::new(neuron.layer, vec![neuron.index]) };
            let mut pages = settings.pages(model, job.progress())?;
            Ok(Found::Page(Box::new(pages.remove(0))))
        });
    }

    fn interpret(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let (neuron, template, rounds) = (self.neuron(), self.template.clone(), self.rounds);
        self.calls.clear();
        self.answer = None;
        self.job = shared.start_with_model(ctx, View::Neurons, "interpreting", move |model, job| {
            let function = UnitNumeric::new(model, Box::new(Neurons(neuron.layer)), neuron.index, &template)?;
            let mut watched = Watched { inner: function, job };
            let mut session = Session::new(&mut watched, Budget { rounds, inputs_per_round: 32 });
            let answer = Scientist::new(0).interpret(&mut session);
            Ok(Found::Answer(Box::new(answer)))
        });
    }

    fn show_function(&self, ui: &mut egui::Ui) {
        if let Some(answer) = &self.answer {
            egui::Grid::new("answer").show(ui, |ui| {
                for (name, value) in
                    [("description", &answer.description), ("domain", &answer.domain), ("code", &answer.code)]
                {
                    ui.strong(name);
                    ui.monospace(value.as_str());
                    ui.end_row();
                }
            });
        }
        if self.calls.is_empty() {
            return;
        }
        ui.label(format!("{} calls", self.calls.len()));
        egui::CollapsingHeader::new("Transcript").default_open(true).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("transcript").max_height(120.0).stick_to_bottom(true).show(ui, |ui| {
                for [x, y] in &self.calls {
                    ui.monospace(format!("f({x}) = {y:.4}"));
                }
            });
        });
        let fitted = self.answer.as_ref().and_then(|a| Expr::parse(&a.code).ok());
        let (low, high) =
            self.calls.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p[0]), h.max(p[0])));
        Plot::new("neuron function").legend(Legend::default()).height(280.0).show(ui, |plot| {
            plot.points(Points::new("activation", PlotPoints::from(self.calls.clone())).radius(2.5));
            if let Some(expr) = &fitted {
                let curve: Vec<[f64; 2]> = (0..=200)
                    .map(|i| low + (high - low) * i as f64 / 200.0)
                    .filter_map(|x| expr.eval_num(x).ok().filter(|y| y.is_finite()).map(|y| [x, y]))
                    .collect();
                plot.line(Line::new("interpreter's code", PlotPoints::from(curve)));
            }
        });
    }
}

/// A neuron's or feature's page: description, simulation score, top examples shaded by activation.
pub fn show_page(ui: &mut egui::Ui, page: &UnitPage) {
    ui.label(format!("{} {}.{}: {}", page.kind.title(), page.layer, page.index, page.description));
    ui.label(format!(
        "Simulation score {:.3} (correlation over {} held-out tokens)",
        page.simulation_score, page.held_out_tokens
    ));
    let max = page.top.iter().map(|e| e.activation).fold(1e-6_f32, f32::max);
    for example in &page.top {
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing.x = 0.0;
            ui.monospace(format!("{:>7.3}  ", example.activation));
            for (i, (token, &activation)) in example.tokens.iter().zip(&example.activations).enumerate() {
                let mut text = egui::RichText::new(visible_token(token))
                    .monospace()
                    .background_color(colour(activation / max, false));
                if i == example.centre {
                    text = text.underline();
                }
                ui.label(text).on_hover_text(format!("{activation:+.3}"));
            }
        });
    }
}
