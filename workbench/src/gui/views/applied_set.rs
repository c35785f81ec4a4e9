//! The Repair view's applied set: every case the applied repairs made right with its current margin (refreshed
//! after every change; a red row is a case that is wrong again), the last set repair's summary, and the guard's
//! refusals with their reasons. The set repairs themselves are `experiments::ops::repair_set`'s.

use experiments::ops::repair_set::{shortest_margins, RepairSetSettings, SetMode};
use experiments::ops::Report;
use models::Model;
use repair::patchset::PatchSet;
use repair::{RepairCase, Verdict};

/// One case of the applied set as the model stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedCase {
    /// Family and id, as listed.
    pub name: String,
    /// Its shortest margin now (negative: wrong again).
    pub margin: f32,
}

/// What a set repair left: its summary lines and the guard's refusals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetOutcome {
    /// The operation's summary (cases right, variants, unrelated top-1, neurons, seconds).
    pub summary: Vec<String>,
    /// Each refused step's reason.
    pub refusals: Vec<String>,
}

/// The applied set as shown.
#[derive(Default)]
pub struct AppliedSet {
    /// Every case of the applied repairs with its margin, oldest first.
    pub cases: Vec<AppliedCase>,
    /// The last set repair.
    pub last: Option<SetOutcome>,
}

/// Every case of the applied set (`cases`), with its shortest margin on `model` as it is.
pub fn applied_cases(model: &Model, cases: &[RepairCase]) -> anyhow::Result<Vec<AppliedCase>> {
    let margins = shortest_margins(model, cases)?;
    Ok(cases
        .iter()
        .zip(margins)
        .map(|(c, margin)| AppliedCase { name: format!("{} {}", c.family, c.id), margin })
        .collect())
}

/// Repairs `cases` into the applied `patches` on `model`, jointly or one at a time, with the guard (the
/// operation's defaults); what the guard keeps stays applied and in the set.
pub fn repair_into_set(
    model: &Model,
    patches: &mut PatchSet,
    cases: &[RepairCase],
    mode: SetMode,
    progress: &dyn models::Progress,
) -> anyhow::Result<SetOutcome> {
    let report = RepairSetSettings { mode, ..Default::default() }.add(model, patches, cases, progress)?;
    let refusals = report
        .steps
        .iter()
        .filter_map(|step| match &step.verdict {
            Verdict::Refused { reason } => Some(reason.clone()),
            Verdict::Kept => None,
        })
        .collect();
    Ok(SetOutcome { summary: report.summary(), refusals })
}

impl AppliedSet {
    /// Draws the set: the last set repair, the refusals in the error colour, a row per case (red when wrong).
    pub fn show(&self, ui: &mut egui::Ui) {
        if let Some(last) = &self.last {
            for line in &last.summary {
                ui.label(line.as_str());
            }
            for reason in &last.refusals {
                ui.colored_label(ui.visuals().error_fg_color, format!("Refused by the guard: {reason}"));
            }
        }
        if self.cases.is_empty() {
            return;
        }
        let wrong = self.cases.iter().filter(|c| c.margin < 0.0).count();
        ui.strong(format!("Applied set: {} cases, {wrong} wrong now", self.cases.len()));
        egui::ScrollArea::vertical().id_salt("applied set").max_height(200.0).show(ui, |ui| {
            egui::Grid::new("applied set rows").striped(true).show(ui, |ui| {
                ui.strong("case");
                ui.strong("margin now");
                ui.end_row();
                for case in &self.cases {
                    let text = format!("{:+.2}", case.margin);
                    if case.margin < 0.0 {
                        let red = ui.visuals().error_fg_color;
                        ui.colored_label(red, case.name.as_str());
                        ui.colored_label(red, format!("{text} (regressed)"));
                    } else {
                        ui.label(case.name.as_str());
                        ui.label(text);
                    }
                    ui.end_row();
                }
            });
        });
    }
}
