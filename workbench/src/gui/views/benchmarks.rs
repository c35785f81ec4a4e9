//! The Benchmarks view: HumanEval (sandboxed) or line completion on the original model and on the model with
//! the applied repairs; a before/after table that lists the problems that changed; and the curves of a
//! sequential-repair study run (a metric against the number of repairs applied, a line per method).

use std::sync::{Arc, Mutex};

use experiments::code_metrics::{held_out_files, line_completion};
use experiments::humaneval::{default_problems, run_humaneval};
use experiments::ops::humaneval::HumanEvalSettings;
use experiments::ops::repair_sequence::{curves, study_rows, SequenceRow, METRICS};
use experiments::sandbox::Sandbox;
use models::{Model, Progress};
use repair::patchset::PatchSet;
use serde::{Deserialize, Serialize};

use super::{labelled_field, labelled_number, run_button};
use crate::gui::job::Job;
use crate::gui::shared::{lock_patches, Shared, View};

/// A benchmark of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Benchmark {
    /// HumanEval, instruct protocol, greedy, executed in the sandbox.
    HumanEval,
    /// Greedy next-line completion on held-out CPython files.
    Lines,
}

/// One problem (or line) before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Task id, or file and line.
    pub item: String,
    /// Passed (or exactly matched) on the original model.
    pub before: bool,
    /// On the patched model, when repairs were applied.
    pub after: Option<bool>,
}

/// A benchmark on the original and the patched model.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Which benchmark.
    pub benchmark: Benchmark,
    /// Repairs applied for the "after" column (0: only the original model ran).
    pub repairs: usize,
    /// Per problem.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Fraction passed before, and after when it ran.
    pub fn scores(&self) -> (f64, Option<f64>) {
        let n = self.rows.len().max(1) as f64;
        let before = self.rows.iter().filter(|r| r.before).count() as f64 / n;
        let after = (self.repairs > 0).then(|| self.rows.iter().filter(|r| r.after == Some(true)).count() as f64 / n);
        (before, after)
    }

    /// The rows whose outcome changed.
    pub fn changed(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.after.is_some_and(|a| a != r.before))
    }
}

/// Settings and results of the Benchmarks view.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct BenchmarksView {
    /// Which benchmark.
    pub benchmark: Benchmark,
    /// HumanEval problems (the first N).
    pub problems: usize,
    /// Held-out files for line completion.
    pub files: usize,
    /// Lines per file.
    pub lines: usize,
    /// The last comparison.
    #[serde(skip)]
    pub comparison: Option<Comparison>,
    /// A sequential-repair study's run folder.
    pub study_dir: String,
    /// Which of the study's metrics is plotted (an index into its metrics).
    pub study_metric: usize,
    /// The study's rows, once shown.
    #[serde(skip)]
    pub study: Option<Vec<SequenceRow>>,
    /// The running benchmark.
    #[serde(skip)]
    job: Option<Job<Box<Comparison>>>,
}

impl Default for BenchmarksView {
    fn default() -> Self {
        BenchmarksView {
            benchmark: Benchmark::Lines,
            problems: 8,
            files: 2,
            lines: 5,
            comparison: None,
            study_dir: String::new(),
            study_metric: 0,
            study: None,
            job: None,
        }
    }
}

/// Pass/fail per item of one benchmark run on the model as it is now.
fn outcomes(
    model: &Model,
    benchmark: Benchmark,
    size: (usize, usize, usize),
    progress: &dyn Progress,
) -> anyhow::Result<Vec<(String, bool)>> {
    let (problems, files, lines) = size;
    match benchmark {
        Benchmark::HumanEval => {
            let mut all = default_problems()?;
            all.truncate(problems);
            let settings = HumanEvalSettings { max_tokens: 256, batch: 4, ..Default::default() }.generation(0);
            let (_, report) = run_humaneval(model, &all, &settings, &Sandbox::standard()?, progress)?;
            Ok(all
                .iter()
                .map(|p| (p.task_id.clone(), report.passed.get(&p.task_id).copied().unwrap_or(0) > 0))
                .collect())
        }
        Benchmark::Lines => {
            let documents = held_out_files(files)?;
            let report = line_completion(model, &documents, 128, lines, progress)?;
            Ok(report
                .cases
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (format!("file {} line {}: {}", c.file, i + 1, c.expected.trim()), c.expected == c.predicted)
                })
                .collect())
        }
    }
}

/// Runs the benchmark without the applied repairs, then with them again.
fn compare(
    model: &Model,
    patches: &Mutex<PatchSet>,
    benchmark: Benchmark,
    size: (usize, usize, usize),
    progress: &dyn Progress,
) -> anyhow::Result<Comparison> {
    let patches = lock_patches(patches)?;
    let repairs = patches.patches.len();
    patches.revert(model)?;
    let before = outcomes(model, benchmark, size, progress);
    // The repairs go back on whatever happened to the "before" run.
    patches.apply(model)?;
    let before = before?;
    let after = if repairs > 0 { Some(outcomes(model, benchmark, size, progress)?) } else { None };
    let rows = before
        .into_iter()
        .enumerate()
        .map(|(i, (item, passed))| Row { item, before: passed, after: after.as_ref().map(|a| a[i].1) })
        .collect();
    Ok(Comparison { benchmark, repairs, rows })
}

impl BenchmarksView {
    /// Takes the finished comparison.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for comparison in shared.poll(ctx, View::Benchmarks, &mut self.job) {
            self.comparison = Some(*comparison);
        }
    }

    /// The screenshot tour's small job: line completion on three lines of each of two held-out files, without and
    /// with the applied repairs.
    pub fn demo(&mut self, ctx: &egui::Context, shared: &mut Shared, stage: usize) -> bool {
        if stage > 0 {
            return false;
        }
        (self.benchmark, self.files, self.lines) = (Benchmark::Lines, 2, 3);
        self.run(ctx, shared);
        self.job.is_some()
    }

    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Benchmarks before and after the applied repairs");
        shared.error_panel(ui, View::Benchmarks);
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.benchmark, Benchmark::HumanEval, "HumanEval");
            ui.radio_value(&mut self.benchmark, Benchmark::Lines, "Line completion");
        });
        ui.horizontal(|ui| match self.benchmark {
            Benchmark::HumanEval => {
                labelled_number(ui, "Problems", &mut self.problems, 1..=164);
            }
            Benchmark::Lines => {
                labelled_number(ui, "Files", &mut self.files, 1..=50);
                labelled_number(ui, "Lines per file", &mut self.lines, 1..=50);
            }
        });
        ui.label(format!(
            "{} repairs are applied; the benchmark runs without them, then with them.",
            shared.applied_count()
        ));
        if run_button(ui, shared.busy(), "Run benchmark") {
            self.run(ui.ctx(), shared);
        }
        if let Some(comparison) = &self.comparison {
            show_comparison(ui, comparison);
        }
        ui.separator();
        self.study_curves(ui, shared);
    }

    /// Reads the rows of the study in `study_dir` (an error in the view's panel when it has none).
    fn show_study(&mut self, shared: &mut Shared) {
        match study_rows(std::path::Path::new(self.study_dir.trim())) {
            Ok(rows) => self.study = Some(rows),
            Err(err) => shared.failure = Some((View::Benchmarks, format!("{err:#}"))),
        }
    }

    /// A sequential-repair study run's curves: the folder, the metric, the plot.
    fn study_curves(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Sequential-repair study");
        ui.horizontal(|ui| {
            labelled_field(ui, "Study run folder", &mut self.study_dir, 320.0);
            if ui.button("Show study").clicked() {
                self.show_study(shared);
            }
            self.study_metric = self.study_metric.min(METRICS.len() - 1);
            egui::ComboBox::from_label("Metric").selected_text(METRICS[self.study_metric].1).show_ui(ui, |ui| {
                for (i, metric) in METRICS.iter().enumerate() {
                    ui.selectable_value(&mut self.study_metric, i, metric.1);
                }
            });
        });
        let Some(rows) = &self.study else { return };
        let metric = &METRICS[self.study_metric];
        let lines = curves(rows, metric);
        ui.label(format!("{} rows; {} against repairs applied (N), a line per method", rows.len(), metric.1));
        egui_plot::Plot::new("study curves").legend(egui_plot::Legend::default()).height(280.0).show(ui, |plot| {
            for (method, points) in lines {
                let points: Vec<[f64; 2]> = points.into_iter().map(|(n, v)| [n, v]).collect();
                plot.line(egui_plot::Line::new(method.to_string(), egui_plot::PlotPoints::from(points.clone())));
                plot.points(
                    egui_plot::Points::new(method.to_string(), egui_plot::PlotPoints::from(points)).radius(3.0),
                );
            }
        });
    }

    fn run(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let (benchmark, size) = (self.benchmark, (self.problems, self.files, self.lines));
        let patches: Option<Arc<Mutex<PatchSet>>> = shared.patches.clone();
        self.job = shared.start_with_model(ctx, View::Benchmarks, "benchmark", move |model, job| {
            let patches = patches.ok_or_else(|| anyhow::anyhow!("no model is loaded"))?;
            Ok(Box::new(compare(model, &patches, benchmark, size, job.progress())?))
        });
    }
}

fn show_comparison(ui: &mut egui::Ui, comparison: &Comparison) {
    let (before, after) = comparison.scores();
    let after_text = after.map_or("not run (no repairs applied)".to_string(), |a| format!("{a:.3}"));
    ui.heading(format!("{:?}: before {before:.3}, after {after_text}", comparison.benchmark));
    let changed: Vec<&Row> = comparison.changed().collect();
    ui.label(format!("{} of {} changed", changed.len(), comparison.rows.len()));
    for row in &changed {
        ui.label(format!("changed: {} ({} → {})", row.item, pass(row.before), row.after.map_or("-", pass)));
    }
    egui::Grid::new("benchmark rows").striped(true).show(ui, |ui| {
        for heading in ["item", "before", "after"] {
            ui.strong(heading);
        }
        ui.end_row();
        for row in &comparison.rows {
            ui.label(row.item.as_str());
            ui.label(pass(row.before));
            ui.label(row.after.map_or("-", pass));
            ui.end_row();
        }
    });
}

fn pass(passed: bool) -> &'static str {
    if passed {
        "pass"
    } else {
        "fail"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_changes_count_rows() {
        let row = |item: &str, before, after| Row { item: item.into(), before, after: Some(after) };
        let comparison = Comparison {
            benchmark: Benchmark::Lines,
            repairs: 1,
            rows: vec![row("a", true, true), row("b", false, true), row("c", true, false), row("d", false, false)],
        };
        assert_eq!(comparison.scores(), (0.5, Some(0.5)));
        let changed: Vec<&str> = comparison.changed().map(|r| r.item.as_str()).collect();
        assert_eq!(changed, ["b", "c"]);
    }
}
