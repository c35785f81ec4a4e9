//! The experiment runner: a spec becomes `runs/<timestamp>-<name>/` with the spec, one folder per step
//! (results.json, CSV tables, PNG and SVG plots), a top-level `results.json` and a `report.md` that shows them.
//! A step is done when its `done.json` exists (written last), so an interrupted run resumes where it stopped; a
//! step with units (see [`crate::units`]) also journals each unit, and can run as shards that are merged after.

use std::path::{Path, PathBuf};

use models::{LoadOptions, Model, Progress};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::ops::export::ExportSettings;
use crate::ops::{self, Context, Operation, Outcome, Report};
use crate::spec::{Spec, Step};
use crate::units::{Shard, Split};

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

/// How a step of a run splits, and how far it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    /// Position in the spec.
    pub index: usize,
    /// Its folder in the run folder (`step-01-humaneval`).
    pub folder: String,
    /// Per unit (one entry for a step without units, which runs whole as one shard), whether it is done.
    pub done_units: Vec<bool>,
    /// Whether the step is finished (merged, its `done.json` written).
    pub done: bool,
}

impl StepPlan {
    /// Whether every unit of `shard` is done (for a step without units: whether the step is).
    pub fn shard_done(&self, shard: Shard) -> bool {
        self.done || self.done_units.iter().enumerate().all(|(u, &done)| done || !shard.holds(u))
    }
}

/// Every step of the run in `dir` with its units and how many are done; reads the spec and the folders only (no
/// model is loaded), so a scheduler can size its jobs from it.
pub fn plan(dir: &Path) -> Result<Vec<StepPlan>> {
    let run = Run::open(dir)?;
    (0..run.spec.steps.len())
        .map(|index| {
            let folder = run.folder(index);
            let done = run.done(index).is_some();
            let done_units = match unit_count(&run.spec.steps[index])? {
                Some(count) => crate::units::done_units(&dir.join(&folder).join("units"), count),
                None => vec![done],
            };
            Ok(StepPlan { index, folder, done_units, done })
        })
        .collect()
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

/// Runs (or resumes) the run in `dir`: every step without a `done.json` (all its units as one shard, then the
/// merge), then the report.
pub fn run(dir: &Path, progress: &dyn Progress) -> Result<Vec<StepSummary>> {
    let mut run = Run::open(dir)?;
    for index in 0..run.spec.steps.len() {
        if run.done(index).is_none() {
            let started = std::time::Instant::now();
            run.phase(index, Phase::Shard(Shard::WHOLE), started, progress)?;
            run.phase(index, Phase::Merge, started, progress)?;
        }
    }
    write_report(dir)
}

/// Runs the units of `shard` of step `step` of the run in `dir` that are not done yet (a step without units is
/// run whole by shard 0); the steps before it must be done. Returns the step's summary when this finished it.
pub fn run_shard(dir: &Path, step: usize, shard: Shard, progress: &dyn Progress) -> Result<Option<StepSummary>> {
    let mut run = Run::open(dir)?;
    run.check_step(step)?;
    if let Some(waiting) = (0..step).find(|&i| run.done(i).is_none()) {
        return Err(ExperimentError::Data(format!("step {waiting} of {} is not done yet", dir.display())));
    }
    run.phase(step, Phase::Shard(shard), std::time::Instant::now(), progress)
}

/// Finishes step `step` of the run in `dir` from its units (all must be done), and writes the report when every
/// step is done. Returns the step's summary.
pub fn merge_step(dir: &Path, step: usize, progress: &dyn Progress) -> Result<StepSummary> {
    let mut run = Run::open(dir)?;
    run.check_step(step)?;
    let summary = run.phase(step, Phase::Merge, std::time::Instant::now(), progress)?.ok_or_else(|| {
        ExperimentError::Data(format!("step {step} of {} has no units and did not run", dir.display()))
    })?;
    if (0..run.spec.steps.len()).all(|i| run.done(i).is_some()) {
        write_report(dir)?;
    }
    Ok(summary)
}

/// Writes the run's `results.json` and `report.md` from its steps' `done.json`; every step must be done.
pub fn write_report(dir: &Path) -> Result<Vec<StepSummary>> {
    let run = Run::open(dir)?;
    let summaries = (0..run.spec.steps.len())
        .map(|i| run.done(i).ok_or_else(|| ExperimentError::Data(format!("step {i} of {} is not done", dir.display()))))
        .collect::<Result<Vec<_>>>()?;
    ops::write_json(dir, "results.json", &serde_json::json!({"spec": run.spec, "steps": summaries}))?;
    ops::write_file(dir, "report.md", report(&run.spec, &summaries).as_bytes())?;
    Ok(summaries)
}

/// What a call does to a step: run a shard of its units, or build its report from them.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Shard(Shard),
    Merge,
}

impl Phase {
    /// Whether a step without units runs in this phase (the shard that holds unit 0 runs it).
    fn runs_whole(self) -> bool {
        matches!(self, Phase::Shard(shard) if shard.holds(0))
    }
}

/// A run folder with its spec, and the model once a step needed it.
struct Run {
    dir: PathBuf,
    spec: Spec,
    model: Option<Model>,
}

impl Run {
    fn open(dir: &Path) -> Result<Run> {
        Ok(Run { dir: dir.to_path_buf(), spec: Spec::load(&dir.join("spec.ron"))?, model: None })
    }

    fn check_step(&self, step: usize) -> Result<()> {
        if step >= self.spec.steps.len() {
            return Err(ExperimentError::Spec(format!(
                "step {step} asked for, but the spec of {} has {} steps",
                self.dir.display(),
                self.spec.steps.len()
            )));
        }
        Ok(())
    }

    /// The folder name of step `index`.
    fn folder(&self, index: usize) -> String {
        format!("step-{index:02}-{}", self.spec.steps[index].kind())
    }

    /// Step `index`'s summary when it is done.
    fn done(&self, index: usize) -> Option<StepSummary> {
        let text = std::fs::read_to_string(self.dir.join(self.folder(index)).join("done.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Runs `phase` of step `index` unless the step is done; when the step finishes, writes its `done.json` (its
    /// time counted from `started`) and returns its summary.
    fn phase(
        &mut self,
        index: usize,
        phase: Phase,
        started: std::time::Instant,
        progress: &dyn Progress,
    ) -> Result<Option<StepSummary>> {
        if let Some(summary) = self.done(index) {
            return Ok(Some(summary));
        }
        if self.model.is_none() {
            let options = LoadOptions::parse(&self.spec.device, &self.spec.dtype)?;
            self.model = Some(Model::load_with_progress(&self.spec.model, options, progress)?);
        }
        let model = self.model.as_ref().ok_or_else(|| ExperimentError::Data("the model did not load".into()))?;
        let (folder, step) = (self.folder(index), &self.spec.steps[index]);
        let step_dir = self.dir.join(&folder);
        let context = Context { seed: self.spec.seed, progress, out: &step_dir };
        let Some((lines, files)) = run_phase(model, step, &context, phase)? else { return Ok(None) };
        let summary = StepSummary {
            index,
            kind: step.kind().into(),
            lines,
            files: files.into_iter().map(|f| format!("{folder}/{f}")).collect(),
            seconds: started.elapsed().as_secs_f64(),
        };
        ops::write_json(&step_dir, "done.json", &summary)?;
        Ok(Some(summary))
    }
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

/// Runs `phase` of `step` into `context.out`: a step with units (see [`crate::units`]) runs a shard of them, or
/// merges them into its report; a step without runs whole in the shard that holds unit 0. Returns the step's
/// summary lines and files when the phase finished it. An Export without a patch set takes the last earlier step's.
fn run_phase(model: &Model, step: &Step, context: &Context, phase: Phase) -> Result<Option<Outcome>> {
    let running = Running { model, context, phase };
    match step {
        Step::Export(settings) if settings.patches.is_none() && phase.runs_whole() => {
            let patches = Some(last_patch_set(context.out)?);
            running.whole(&ExportSettings { patches, ..settings.clone() })
        }
        _ => visit(step, running),
    }
}

/// How many units `step` has, when it has units.
fn unit_count(step: &Step) -> Result<Option<usize>> {
    visit(step, Counting)
}

/// Something done with a step's operation, one way for operations with units and another for the rest.
trait StepVisitor {
    /// What it gives.
    type Output;
    /// Does it with an operation made of units.
    fn split<O: Split>(self, operation: &O) -> Self::Output;
    /// Does it with an operation that runs whole.
    fn whole<O: Operation>(self, operation: &O) -> Self::Output;
}

/// Hands `step`'s operation to `visitor`: the one place that says which steps run as units.
fn visit<V: StepVisitor>(step: &Step, visitor: V) -> V::Output {
    match step {
        Step::HumanEval(settings) => visitor.split(settings),
        Step::Lines(settings) => visitor.split(settings),
        Step::Perplexity(settings) => visitor.split(settings),
        Step::Probe(settings) if settings.layers_per_unit.is_some() => visitor.split(settings),
        Step::Probe(settings) => visitor.whole(settings),
        Step::Lens(settings) => visitor.whole(settings),
        Step::Interpret(settings) => visitor.split(settings),
        Step::Pages(settings) => visitor.split(settings),
        Step::Repair(settings) => visitor.split(settings.as_ref()),
        Step::RepairCases(settings) => visitor.whole(settings.as_ref()),
        Step::RepairSet(settings) => visitor.whole(settings.as_ref()),
        Step::RepairSequence(settings) => visitor.split(settings.as_ref()),
        Step::TrainDictionary(settings) => visitor.whole(settings.as_ref()),
        Step::EvalDictionary(settings) => visitor.whole(settings),
        Step::FeaturePages(settings) => visitor.whole(settings),
        Step::SteerFeatures(settings) => visitor.whole(settings),
        Step::Export(settings) => visitor.whole(settings),
    }
}

/// Counts a step's units.
struct Counting;

impl StepVisitor for Counting {
    type Output = Result<Option<usize>>;

    fn split<O: Split>(self, operation: &O) -> Self::Output {
        operation.units().map(Some)
    }

    fn whole<O: Operation>(self, _operation: &O) -> Self::Output {
        Ok(None)
    }
}

/// Runs a phase of a step (see [`run_phase`]).
struct Running<'a> {
    model: &'a Model,
    context: &'a Context<'a>,
    phase: Phase,
}

impl StepVisitor for Running<'_> {
    type Output = Result<Option<Outcome>>;

    /// Runs a shard of the units, journalled in the step folder's `units/`, or merges them.
    fn split<O: Split>(self, operation: &O) -> Self::Output {
        let (model, context) = (self.model, self.context);
        let units = context.out.join("units");
        match self.phase {
            Phase::Shard(shard) => {
                crate::units::run_shard(operation, model, context, &units, shard)?;
                Ok(None)
            }
            Phase::Merge => {
                let report = crate::units::merge(operation, model, context, &units)?;
                let files = report.write(context.out)?;
                Ok(Some((report.summary(), files)))
            }
        }
    }

    /// Runs the operation in the shard that holds unit 0.
    fn whole<O: Operation>(self, operation: &O) -> Self::Output {
        if !self.phase.runs_whole() {
            return Ok(None);
        }
        ops::run(operation, self.model, self.context).map(Some)
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
