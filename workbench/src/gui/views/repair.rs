//! The Repair view: the case queue (mined from the model's failures, loaded from JSONL, or typed); MINT or a
//! baseline on the selected case, with the ranked neurons and their scores, as a preview (measured, then
//! reverted) to apply or revert; or the whole queue repaired jointly into the applied set (or case by case,
//! lifelong), guarded; the applied set with each case's margin now, and the guard's refusals.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use models::Model;

use experiments::ops::repair::{repairer, UnrelatedSettings};
use experiments::ops::repair_set::SetMode;
use experiments::repair_cases::api_cases;
use repair::measure::variants_correct;
use repair::patchset::PatchSet;
use repair::{Example, Method, Repair, RepairCase, RepairConfig, RepairMetrics};
use serde::{Deserialize, Serialize};

use super::applied_set::{applied_cases, repair_into_set, AppliedCase, AppliedSet, SetOutcome};
use super::{labelled_field, labelled_number, run_button};
use crate::gui::job::Job;
use crate::gui::shared::{lock_patches, Shared, View};

/// What the view's jobs return.
pub enum Found {
    /// Mined cases.
    Cases(Vec<RepairCase>),
    /// A previewed repair.
    Outcome(Box<Outcome>),
    /// A set repair into the applied set, and the set's cases after it.
    Set(Box<SetOutcome>, Vec<AppliedCase>),
    /// The applied set's cases with their margins now.
    Applied(Vec<AppliedCase>),
}

/// A repair measured with the patch on, then reverted.
pub struct Outcome {
    /// The case.
    pub case: RepairCase,
    /// What changed, with the ranked neurons of each step.
    pub repair: Repair,
    /// Effectiveness, generalization, specificity.
    pub metrics: RepairMetrics,
    /// Whether each variant was right before the patch.
    pub variants_before: Vec<bool>,
    /// And after it.
    pub variants_after: Vec<bool>,
    /// Per repaired token: the desired token's text and the text the model wrote.
    pub tokens: Vec<(String, String)>,
}

/// Settings and results of the Repair view.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct RepairView {
    /// Prompt of a typed case.
    pub prompt: String,
    /// What the model should write.
    pub desired: String,
    /// Held-out variant prompts, one per line.
    pub variants: String,
    /// JSONL file of cases.
    pub cases_file: String,
    /// How many API cases to mine.
    pub mine: usize,
    /// The method.
    pub method: Method,
    /// Where the applied patch set is saved.
    pub save_path: String,
    /// The cases.
    pub cases: Vec<RepairCase>,
    /// The selected case.
    pub selected: Option<usize>,
    /// The last repair, as a preview.
    #[serde(skip)]
    pub outcome: Option<Outcome>,
    /// What the last apply, revert or save did.
    #[serde(skip)]
    pub note: Option<String>,
    /// The applied set as the model stands now, and the last set repair.
    #[serde(skip)]
    pub applied: AppliedSet,
    /// The running job.
    #[serde(skip)]
    job: Option<Job<Found>>,
}

impl Default for RepairView {
    fn default() -> Self {
        RepairView {
            prompt: String::new(),
            desired: String::new(),
            variants: String::new(),
            cases_file: String::new(),
            mine: 4,
            method: Method::Mint,
            save_path: "runs/gui-patches.ron".into(),
            cases: Vec::new(),
            selected: None,
            outcome: None,
            note: None,
            applied: AppliedSet::default(),
            job: None,
        }
    }
}

impl RepairView {
    /// Takes what the view's job returned.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for found in shared.poll(ctx, View::Repair, &mut self.job) {
            match found {
                Found::Cases(cases) => self.add_cases(cases),
                Found::Outcome(outcome) => self.outcome = Some(*outcome),
                Found::Set(outcome, cases) => {
                    self.applied = AppliedSet { cases, last: Some(*outcome) };
                }
                Found::Applied(cases) => self.applied.cases = cases,
            }
        }
    }

    /// The screenshot tour's small job: a typed API-name case (`os.path.expanduser`) repaired as a preview, then
    /// applied (so the Benchmarks view compares before and after, and the applied set shows its margin).
    pub fn demo(&mut self, ctx: &egui::Context, shared: &mut Shared, stage: usize) -> bool {
        if stage > 0 {
            // Stage 1 applies the preview (and measures the applied set again); then the view is done.
            if let Some(patches) = shared.patches.clone().filter(|_| stage == 1) {
                self.apply_preview(ctx, shared, &patches);
                return self.job.is_some();
            }
            return false;
        }
        let desired = "expanduser".to_string();
        let example = Example { prompt: "import os\nimport sys\n\ndef main():\n    path = os.path.".into(), desired };
        let variant = Example { prompt: "import os\nhome = os.path.".into(), desired: example.desired.clone() };
        let case = RepairCase { family: "user".into(), id: "tour".into(), example, variants: vec![variant] };
        self.add_cases(vec![case]);
        self.run(ctx, shared);
        self.job.is_some()
    }

    /// Adds cases to the list and selects the first new one.
    pub fn add_cases(&mut self, cases: Vec<RepairCase>) {
        if !cases.is_empty() {
            self.selected = Some(self.cases.len());
        }
        self.cases.extend(cases);
    }

    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Repair a behaviour");
        shared.error_panel(ui, View::Repair);
        self.case_inputs(ui, shared);
        ui.separator();
        ui.label(format!("{} cases", self.cases.len()));
        egui::ScrollArea::vertical().id_salt("case list").max_height(160.0).show(ui, |ui| {
            for (i, case) in self.cases.iter().enumerate() {
                let last_line = case.example.prompt.lines().last().unwrap_or("");
                let text = format!("{} {}: …{} → {:?}", case.family, case.id, last_line.trim(), case.example.desired);
                if ui.selectable_label(self.selected == Some(i), text).clicked() {
                    self.selected = Some(i);
                }
            }
        });
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("Method").selected_text(self.method.name()).show_ui(ui, |ui| {
                for method in Method::ALL {
                    ui.selectable_value(&mut self.method, method, method.name());
                }
            });
            let ready = self.selected.is_some_and(|i| i < self.cases.len());
            if ui.add_enabled(ready && !shared.busy(), egui::Button::new("Run repair")).clicked() {
                self.run(ui.ctx(), shared);
            }
            let queued = !self.cases.is_empty() && !shared.busy();
            if ui.add_enabled(queued, egui::Button::new("Repair all jointly")).clicked() {
                self.repair_set(ui.ctx(), shared, SetMode::Joint);
            }
            if ui.add_enabled(queued, egui::Button::new("Repair all one at a time")).clicked() {
                self.repair_set(ui.ctx(), shared, SetMode::Lifelong);
            }
        });
        let guard = repair::GuardConfig::default();
        ui.small(format!(
            "Sets are guarded: a step that breaks an applied case, changes over {:.0}% of the top-1 tokens of reference code, or brings the set over {:.0}% in all, is refused.",
            100.0 * guard.max_top1_loss,
            100.0 * guard.max_total_top1_loss
        ));
        self.patch_controls(ui, shared);
        self.applied.show(ui);
        if let Some(outcome) = &self.outcome {
            show_outcome(ui, outcome);
        }
    }

    fn case_inputs(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.horizontal(|ui| {
            labelled_number(ui, "Cases to mine", &mut self.mine, 1..=50);
            if run_button(ui, shared.busy(), "Mine API cases") {
                let count = self.mine;
                self.job = shared.start_with_model(ui.ctx(), View::Repair, "mining cases", move |model, _| {
                    Ok(Found::Cases(api_cases(model, count)?))
                });
            }
            labelled_field(ui, "Cases file", &mut self.cases_file, 240.0);
            if ui.button("Load cases").clicked() {
                match repair::load_user_cases(&PathBuf::from(self.cases_file.trim())) {
                    Ok(cases) => self.add_cases(cases),
                    Err(err) => shared.failure = Some((View::Repair, err.to_string())),
                }
            }
        });
        ui.horizontal(|ui| {
            labelled_field(ui, "Case prompt", &mut self.prompt, 300.0);
            labelled_field(ui, "Desired", &mut self.desired, 120.0);
            labelled_field(ui, "Variants", &mut self.variants, 200.0);
            let complete = !self.prompt.is_empty() && !self.desired.is_empty();
            if ui.add_enabled(complete, egui::Button::new("Add case")).clicked() {
                let desired = self.desired.clone();
                let variants = self
                    .variants
                    .split('|')
                    .filter(|v| !v.trim().is_empty())
                    .map(|p| Example { prompt: p.replace("\\n", "\n"), desired: desired.clone() })
                    .collect();
                let id = format!("typed-{}", self.cases.len() + 1);
                let example = Example { prompt: self.prompt.replace("\\n", "\n"), desired };
                self.add_cases(vec![RepairCase { family: "user".into(), id, example, variants }]);
            }
        });
        ui.small("In typed prompts \\n is a newline; variants are separated by |.");
    }

    fn run(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(case) = self.selected.and_then(|i| self.cases.get(i)).cloned() else { return };
        let method = self.method;
        self.outcome = None;
        self.job = shared.start_with_model(ctx, View::Repair, "repairing", move |model, job| {
            use models::Progress;
            job.progress().begin("unrelated prompts", 1);
            let mut repairer = repairer(model, RepairConfig::default(), UnrelatedSettings::default())?;
            job.progress().begin(&format!("{method} repair"), 1);
            let (repair, metrics) = repairer.repair_case(model, &case, method)?;
            let variants_after = variants_correct(model, &case)?;
            repair.revert(model)?;
            let variants_before = variants_correct(model, &case)?;
            let tokens = repair
                .steps
                .iter()
                .map(|s| (model.tokenizer.token_text(s.desired), model.tokenizer.token_text(s.wrong)))
                .collect();
            Ok(Found::Outcome(Box::new(Outcome { case, repair, metrics, variants_before, variants_after, tokens })))
        });
    }

    /// Repairs every listed case not in the applied set yet into it, guarded.
    fn repair_set(&mut self, ctx: &egui::Context, shared: &mut Shared, mode: SetMode) {
        let Some(patches) = shared.patches.clone() else { return };
        let cases = self.cases.clone();
        self.job = shared.start_with_model(ctx, View::Repair, "repairing the set", move |model, job| {
            let mut set = lock_patches(&patches)?;
            let outcome = repair_into_set(model, &mut set, &cases, mode, job.progress())?;
            let held: Vec<RepairCase> = set.cases().cloned().collect();
            Ok(Found::Set(Box::new(outcome), applied_cases(model, &held)?))
        });
    }

    /// Measures the applied set's margins again (after a patch was applied or reverted); the job holds the model,
    /// not the patch set.
    fn refresh_applied(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(patches) = shared.patches.clone() else { return };
        let held: Vec<RepairCase> = match lock_patches(&patches) {
            Ok(set) => set.cases().cloned().collect(),
            Err(err) => {
                shared.failure = Some((View::Repair, format!("{err:#}")));
                return;
            }
        };
        self.job = shared.start_with_model(ctx, View::Repair, "measuring the applied set", move |model, _| {
            Ok(Found::Applied(applied_cases(model, &held)?))
        });
    }

    fn patch_controls(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(patches) = shared.patches.clone() else { return };
        let busy = shared.busy();
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy && self.outcome.is_some(), egui::Button::new("Apply patch")).clicked() {
                self.apply_preview(ui.ctx(), shared, &patches);
            }
            if ui.add_enabled(!busy && shared.applied_count() > 0, egui::Button::new("Revert last patch")).clicked() {
                let result = lock_both(shared, &patches).and_then(|(model, mut set)| {
                    set.revert_last(&model)?;
                    Ok(format!("reverted; {} repairs applied now", set.patches.len()))
                });
                self.report(result, ui.ctx(), shared);
            }
            labelled_field(ui, "Patch file", &mut self.save_path, 220.0);
            if ui.add_enabled(shared.applied_count() > 0, egui::Button::new("Save patch set")).clicked() {
                let path = PathBuf::from(self.save_path.trim());
                let result = lock_patches(&patches).and_then(|set| {
                    set.save(&path)?;
                    Ok(format!("saved {} repairs to {}", set.patches.len(), path.display()))
                });
                self.note_or_failure(result, shared);
            }
        });
        if let Some(note) = &self.note {
            ui.label(note.as_str());
        }
    }

    /// Applies the previewed repair on top of the applied ones.
    fn apply_preview(&mut self, ctx: &egui::Context, shared: &mut Shared, patches: &Mutex<PatchSet>) {
        let Some(outcome) = &self.outcome else { return };
        let result = lock_both(shared, patches).and_then(|(model, mut set)| {
            let mut one = PatchSet::new(set.model.clone());
            one.push(&outcome.repair, Some(outcome.case.clone()), Some(outcome.metrics.clone()));
            one.apply(&model)?;
            set.push(&outcome.repair, Some(outcome.case.clone()), Some(outcome.metrics.clone()));
            Ok(format!("applied; {} repairs applied now", set.patches.len()))
        });
        self.report(result, ctx, shared);
    }

    /// Shows what a change of the applied set did, and measures the set's margins again.
    fn report(&mut self, result: anyhow::Result<String>, ctx: &egui::Context, shared: &mut Shared) {
        if self.note_or_failure(result, shared) {
            self.refresh_applied(ctx, shared);
        }
    }

    /// Shows the note, or the error in the view's error panel; whether it went well.
    fn note_or_failure(&mut self, result: anyhow::Result<String>, shared: &mut Shared) -> bool {
        match result {
            Ok(note) => {
                self.note = Some(note);
                true
            }
            Err(err) => {
                shared.failure = Some((View::Repair, format!("{err:#}")));
                false
            }
        }
    }
}

fn show_outcome(ui: &mut egui::Ui, outcome: &Outcome) {
    let (repair, metrics) = (&outcome.repair, &outcome.metrics);
    ui.heading(format!(
        "{}: {} in {:.1} s, {} neurons changed (preview: measured with the patch on, then reverted)",
        repair.method,
        if metrics.effective { "fixed" } else { "not fixed" },
        metrics.seconds,
        metrics.neurons_changed
    ));
    egui::Grid::new("case before after").striped(true).show(ui, |ui| {
        ui.strong("desired token");
        ui.strong("margin before");
        ui.strong("margin after");
        ui.end_row();
        for (i, (before, after)) in repair.margins_before.iter().zip(&repair.margins_after).enumerate() {
            ui.label(format!("token {}", i + 1));
            ui.label(format!("{before:+.2}"));
            ui.label(format!("{after:+.2}"));
            ui.end_row();
        }
    });
    ui.label(format!(
        "Variants right before/after: {}",
        outcome
            .variants_before
            .iter()
            .zip(&outcome.variants_after)
            .map(|(b, a)| format!("{}→{}", mark(*b), mark(*a)))
            .collect::<Vec<_>>()
            .join("  ")
    ));
    ui.label(format!(
        "Unrelated prompts: top-1 unchanged {:.4}, mean KL {:.2e}",
        metrics.specificity.top1_unchanged, metrics.specificity.mean_kl
    ));
    for (step, (desired, wrong)) in repair.steps.iter().zip(&outcome.tokens) {
        ui.strong(format!(
            "Token {}: desired {desired:?}, model wrote {wrong:?}, gap {:+.2}",
            step.step + 1,
            step.gap_before
        ));
        egui::Grid::new(("ranked neurons", step.step)).striped(true).show(ui, |ui| {
            for heading in ["neuron", "activation", "direct effect", "attribution", "selectivity"] {
                ui.strong(heading);
            }
            ui.end_row();
            for score in step.top.iter().take(8) {
                ui.monospace(format!("{}.{}", score.neuron.layer, score.neuron.index));
                ui.monospace(format!("{:+.3}", score.activation));
                ui.monospace(format!("{:+.3}", score.direct));
                ui.monospace(score.attribution.map_or("-".into(), |a| format!("{a:+.3}")));
                ui.monospace(score.selectivity.map_or("-".into(), |s| format!("{s:.1}")));
                ui.end_row();
            }
        });
        for edit in &step.edits {
            ui.label(format!(
                "edited {} by {:.2}x its norm: margin {:+.2}{}",
                edit.target,
                edit.relative_change,
                edit.margin_after,
                if edit.reached { "" } else { " (capped)" }
            ));
        }
    }
}

/// The model (when no job holds it) and the patch set, for applying or reverting a patch on the UI thread.
fn lock_both<'a>(
    shared: &'a Shared,
    patches: &'a Mutex<PatchSet>,
) -> anyhow::Result<(MutexGuard<'a, Model>, MutexGuard<'a, PatchSet>)> {
    let model = shared.model_now()?;
    let set = lock_patches(patches)?;
    Ok((model, set))
}

fn mark(right: bool) -> &'static str {
    if right {
        "right"
    } else {
        "wrong"
    }
}
