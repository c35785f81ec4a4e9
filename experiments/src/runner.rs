//! The experiment runner: a spec becomes `runs/<timestamp>-<name>/` with the spec, one folder per step
//! (results.json, CSV tables, PNG and SVG plots), a top-level `results.json` and a `report.md` that shows them.
//! A step is done when its `done.json` exists (written last), so an interrupted run resumes where it stopped.

use std::path::{Path, PathBuf};

use models::{parse_device, parse_kind, LoadOptions, Model, Progress};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::ops::export::ExportSettings;
use crate::ops::{self, Context, Outcome};
use crate::spec::{Spec, Step};

/// What one finished step reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSummary {
    /// Position in the spec.
    pub index: usize,
    /// Its kind.
    pub kind: String,
    /// Headline numbers, one line each.
    pub lines: Vec<String>,
    /// Files it wrote, relative to the run folder (plots first).
    pub files: Vec<String>,
    /// Seconds it took.
    pub seconds: f64,
}

/// Creates the run folder for `spec_path` under `runs` (`runs/2026-11-30T21-14-07-<name>`) and copies the spec
/// there.
pub fn create_run(spec_path: &Path, runs: &Path) -> Result<PathBuf> {
    let spec = Spec::load(spec_path)?;
    let dir = crate::runs::new_run_dir(runs, &spec.name)?;
    let text = std::fs::read(spec_path).map_err(models::files::at(spec_path))?;
    ops::write_file(&dir, "spec.ron", &text)?;
    Ok(dir)
}

/// Runs (or resumes) the run in `dir`: every step without a `done.json`, then the report.
pub fn run(dir: &Path, progress: &dyn Progress) -> Result<Vec<StepSummary>> {
    let spec = Spec::load(&dir.join("spec.ron"))?;
    let options = LoadOptions { device: parse_device(&spec.device)?, kind: parse_kind(&spec.dtype)? };
    let mut model: Option<Model> = None;
    let mut summaries = Vec::with_capacity(spec.steps.len());
    for (index, step) in spec.steps.iter().enumerate() {
        let folder = format!("step-{index:02}-{}", step.kind());
        let step_dir = dir.join(&folder);
        let done = step_dir.join("done.json");
        if let Ok(text) = std::fs::read_to_string(&done) {
            if let Ok(summary) = serde_json::from_str::<StepSummary>(&text) {
                summaries.push(summary);
                continue;
            }
        }
        if model.is_none() {
            model = Some(Model::load_with_progress(&spec.model, options, progress)?);
        }
        let model = model.as_ref().ok_or_else(|| ExperimentError::Data("the model did not load".into()))?;
        let started = std::time::Instant::now();
        let (lines, files) = run_step(model, &spec, step, &step_dir, progress)?;
        let summary = StepSummary {
            index,
            kind: step.kind().into(),
            lines,
            files: files.into_iter().map(|f| format!("{folder}/{f}")).collect(),
            seconds: started.elapsed().as_secs_f64(),
        };
        ops::write_json(&step_dir, "done.json", &summary)?;
        summaries.push(summary);
    }
    ops::write_json(dir, "results.json", &serde_json::json!({"spec": spec, "steps": summaries}))?;
    ops::write_file(dir, "report.md", report(&spec, &summaries).as_bytes())?;
    Ok(summaries)
}

/// The report: the spec, then each step's headline numbers, plots and tables.
fn report(spec: &Spec, steps: &[StepSummary]) -> String {
    let mut out = format!(
        "# Experiment `{}`\n\nModel `{}` on {} ({}), seed {}.\n\n```ron\n{}```\n",
        spec.name,
        spec.model,
        spec.device,
        spec.dtype,
        spec.seed,
        spec.compact_steps()
    );
    for s in steps {
        out.push_str(&format!("\n## Step {}: {} ({:.1} s)\n\n", s.index, s.kind, s.seconds));
        for line in &s.lines {
            out.push_str(&format!("- {line}\n"));
        }
        for file in &s.files {
            if file.ends_with(".png") {
                out.push_str(&format!("\n![{file}]({file})\n"));
            } else {
                out.push_str(&format!("- [{file}]({file})\n"));
            }
        }
    }
    out
}

/// Runs one step: its operation into `dir`; an Export without a patch set takes the last earlier step's.
fn run_step(model: &Model, spec: &Spec, step: &Step, dir: &Path, progress: &dyn Progress) -> Result<Outcome> {
    let context = Context { seed: spec.seed, progress, out: dir };
    match step {
        Step::Probe(settings) => ops::run(settings, model, &context),
        Step::Lens(settings) => ops::run(settings, model, &context),
        Step::Interpret(settings) => ops::run(settings, model, &context),
        Step::HumanEval(settings) => ops::run(settings, model, &context),
        Step::Lines(settings) => ops::run(settings, model, &context),
        Step::Perplexity(settings) => ops::run(settings, model, &context),
        Step::Repair(settings) => ops::run(settings.as_ref(), model, &context),
        Step::RepairCases(settings) => ops::run(settings.as_ref(), model, &context),
        Step::RepairSet(settings) => ops::run(settings.as_ref(), model, &context),
        Step::RepairSequence(settings) => ops::run(settings.as_ref(), model, &context),
        Step::Export(settings) if settings.patches.is_some() => ops::run(settings, model, &context),
        Step::Export(settings) => {
            let patches = Some(last_patch_set(dir)?);
            ops::run(&ExportSettings { patches, ..settings.clone() }, model, &context)
        }
    }
}

/// The patch set of the last step before `step_dir` that saved one.
fn last_patch_set(step_dir: &Path) -> Result<PathBuf> {
    let run = step_dir.parent().ok_or_else(|| ExperimentError::Data("the step folder has no run folder".into()))?;
    let mut saved: Vec<PathBuf> = std::fs::read_dir(run)
        .map_err(models::files::at(run))?
        .filter_map(|e| e.ok().map(|e| e.path().join("patches.ron")))
        .filter(|p| p.exists() && p.parent().is_some_and(|d| d < step_dir))
        .collect();
    saved.sort();
    saved.pop().ok_or_else(|| {
        ExperimentError::Spec(
            "an Export step needs a patch set: an earlier Repair step with sequential: true, a RepairCases or RepairSet step, or patches: \"F.ron\"".into(),
        )
    })
}
