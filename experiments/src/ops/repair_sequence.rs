//! The sequential-repair study: mined failures applied N at a time (N = 1, 10, 25, 50 ...) by every method — the
//! joint solve of the first N cases, lifelong repair of the first N one at a time with the guard, MINT's repairs
//! (ours, and as its authors' code runs it) and gated units applied in a row, MEMIT on the first N, AlphaEdit on
//! them in batches, fine-tuning with a KL penalty — and measured as the field does: the share of the N cases still
//! right, generalization to their held-out variants, unrelated top-1 tokens kept and mean KL, perplexity and line
//! completion on held-out files, HumanEval pass@1 when asked; neurons changed and seconds. Rows are journalled as
//! they finish (a stopped study resumes), and the report has `table.md` and one curve per metric (metric vs N, a
//! line per method).

use std::fmt;
use std::path::Path;

use models::Model;
use repair::batch_edit::{batch_repair, BatchEditConfig, BatchEditor, EditMemory};
use repair::gradient::{finetune_set, Anchor};
use repair::joint::set_layers;
use repair::patchset::{ModelIdentity, PatchSet};
use repair::{
    check, GradientConfig, GuardConfig, Guarded, JointConfig, Levers, Method, RepairCase, RepairConfig, Tokens,
    Unrelated,
};
use serde::{Deserialize, Serialize};

use super::repair::{repairer, unrelated_prompts, UnrelatedSettings};
use super::repair_set::{guard_windows, preservation, reference_prompts, ReferenceSettings};
use super::{names, write_file, write_json, Context, Operation, Report};
use crate::error::{ExperimentError, Result};
use crate::journal::RowJournal;
use crate::repair_cases::MinedCases;
use crate::repair_study::{BenchmarkSpec, BenchmarkSuite, Benchmarks};
use crate::units::Split;

/// How N repairs are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SequenceMethod {
    /// The first N cases in one joint solve, guarded.
    Joint,
    /// The first N cases one at a time, each solved with the earlier ones and guarded.
    Lifelong,
    /// MINT on each case alone, on top of the earlier repairs (the effective ones kept).
    MintInARow,
    /// MINT as its authors' code runs it, on each case alone, in a row (the effective ones kept).
    PublishedInARow,
    /// The gated alternative (new units that fire only near each case's keys), case by case in a row.
    GatedInARow,
    /// MEMIT on the first N cases in one batch.
    Memit,
    /// AlphaEdit on the first N cases in batches of `batch_size`, each batch keeping the earlier ones' keys.
    AlphaEdit,
    /// Fine-tuning of the joint solve's layers (down projections) on the first N cases with a KL penalty on
    /// reference code (STAR's SGD baseline).
    FineTuneKl,
}

impl SequenceMethod {
    /// Whether the repairs of N build on those of the previous size (else the first N start from the unpatched
    /// model).
    fn cumulative(self) -> bool {
        !matches!(self, SequenceMethod::Joint | SequenceMethod::Memit | SequenceMethod::FineTuneKl)
    }

    /// Whether a stopped study goes on from the patch set kept at the method's last N journalled (see
    /// [`Checkpoint`]) rather than from the unpatched model: lifelong repair only, whose whole state is its patch
    /// set (AlphaEdit also keeps its keys' memory, MINT's repairer its first repair's basis).
    fn resumable(self) -> bool {
        self == SequenceMethod::Lifelong
    }
}

/// The patch set of a resumable method after its first `n` cases, kept in the step folder as
/// `checkpoint-<method>-<n>.patches.ron` (+ `.safetensors`) beside the journal row of that N, so that a study
/// stopped on the way to a larger N goes on from there (hours at N = 200) instead of from the unpatched model.
/// Only the method's latest checkpoint is kept.
struct Checkpoint<'a> {
    dir: &'a Path,
    method: SequenceMethod,
}

impl Checkpoint<'_> {
    fn path(&self, n: usize) -> std::path::PathBuf {
        self.dir.join(format!("checkpoint-{}-{n}.patches.ron", self.method))
    }

    /// The patch set kept at N = `n`, none when there is no such file (an unreadable one is an error naming it).
    fn load(&self, n: usize) -> Result<Option<PatchSet>> {
        let path = self.path(n);
        if !path.is_file() {
            return Ok(None);
        }
        PatchSet::load(&path).map(Some).map_err(|e| {
            ExperimentError::Data(format!(
                "the checkpoint {} cannot be read ({e}); remove it to run {} from the start",
                path.display(),
                self.method
            ))
        })
    }

    /// Keeps `patches` as the checkpoint at N = `n` and removes the one at N = `previous`.
    fn save(&self, patches: &PatchSet, n: usize, previous: Option<usize>) -> Result<()> {
        patches.save(&self.path(n))?;
        if let Some(previous) = previous.filter(|&p| p != n) {
            let old = self.path(previous);
            for file in [PatchSet::tensors_path(&old), old] {
                std::fs::remove_file(&file).map_err(models::files::at(&file))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SequenceMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SequenceMethod::Joint => "joint",
            SequenceMethod::Lifelong => "lifelong",
            SequenceMethod::MintInARow => "mint-in-a-row",
            SequenceMethod::PublishedInARow => "mint-published-in-a-row",
            SequenceMethod::GatedInARow => "gated-in-a-row",
            SequenceMethod::Memit => "memit",
            SequenceMethod::AlphaEdit => "alphaedit",
            SequenceMethod::FineTuneKl => "fine-tune-kl",
        })
    }
}

/// What the study does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepairSequenceSettings {
    /// The failures, in the order they are applied.
    pub mined: MinedCases,
    /// Numbers of repairs applied at which everything is measured (ascending).
    pub sizes: Vec<usize>,
    /// Methods compared.
    pub methods: Vec<SequenceMethod>,
    /// The joint solve (joint and lifelong).
    pub joint: JointConfig,
    /// The guard (joint and lifelong).
    pub guard: GuardConfig,
    /// MINT's settings (in a row).
    pub mint: RepairConfig,
    /// MEMIT's and AlphaEdit's settings.
    pub batch: BatchEditConfig,
    /// Cases per AlphaEdit batch.
    pub batch_size: usize,
    /// The fine-tuning baseline (its KL penalty reads `anchor_prompts` reference windows).
    pub finetune: GradientConfig,
    /// The reference code of the preservation statistics.
    pub reference: ReferenceSettings,
    /// The side-effect prompts.
    pub unrelated: UnrelatedSettings,
    /// Perplexity, line completion and HumanEval (`humaneval_problems`, 0 to skip) at every N.
    pub benchmarks: BenchmarkSpec,
    /// HumanEval on more problems at a few N only (and on the unpatched model).
    pub full_humaneval: FullHumanEval,
}

/// HumanEval pass@1 on `problems` problems (all 164 by default) at the sizes `at` only: minutes per measurement on
/// CPU, too slow for every N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FullHumanEval {
    /// Problems (the first ones).
    pub problems: usize,
    /// The N at which they are run; none: never.
    pub at: Vec<usize>,
}

impl Default for FullHumanEval {
    fn default() -> Self {
        FullHumanEval { problems: 164, at: Vec::new() }
    }
}

impl Default for RepairSequenceSettings {
    fn default() -> Self {
        RepairSequenceSettings {
            mined: MinedCases { api: 40, lines: 10, ..Default::default() },
            sizes: vec![1, 10, 25, 50],
            methods: vec![
                SequenceMethod::Joint,
                SequenceMethod::Lifelong,
                SequenceMethod::MintInARow,
                SequenceMethod::PublishedInARow,
                SequenceMethod::GatedInARow,
                SequenceMethod::Memit,
                SequenceMethod::AlphaEdit,
                SequenceMethod::FineTuneKl,
            ],
            joint: JointConfig::default(),
            guard: GuardConfig::default(),
            mint: RepairConfig::default(),
            batch: BatchEditConfig::default(),
            batch_size: 10,
            finetune: GradientConfig { steps: 40, anchor_prompts: 8, ..GradientConfig::default() },
            reference: ReferenceSettings::default(),
            unrelated: UnrelatedSettings::default(),
            benchmarks: BenchmarkSpec { humaneval_problems: 0, sequential_humaneval_problems: 0, ..Default::default() },
            full_humaneval: FullHumanEval::default(),
        }
    }
}

/// One method at one N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceRow {
    /// The method.
    pub method: SequenceMethod,
    /// Cases given to it.
    pub n: usize,
    /// Share of the N cases right with everything applied.
    pub repaired: f64,
    /// Of their held-out variants wrong before, the share right after.
    pub generalization: Option<f64>,
    /// Unrelated top-1 tokens unchanged from the unpatched model.
    pub top1_unchanged: f64,
    /// Mean KL(unpatched ‖ patched) on the unrelated positions.
    pub mean_kl: f64,
    /// The benchmarks with everything applied.
    pub benchmarks: Benchmarks,
    /// HumanEval pass@1 on the `full_humaneval` problems, at the N where they are run.
    #[serde(default)]
    pub humaneval_full: Option<f64>,
    /// Perplexity over the unpatched model's.
    pub perplexity_ratio: f64,
    /// Distinct neurons whose weights changed.
    pub neurons_changed: usize,
    /// Cases of the N that the guard left out of the set (joint and lifelong).
    pub refused: usize,
    /// Seconds spent repairing (measurements excluded).
    pub seconds: f64,
}

/// The study's rows and the unpatched model's benchmarks.
#[derive(Serialize)]
pub struct SequenceReport {
    /// The cases, in order.
    pub cases: Vec<RepairCase>,
    /// The unpatched model.
    pub baseline: Benchmarks,
    /// The unpatched model's pass@1 on the `full_humaneval` problems, when they are run at some N.
    pub baseline_full_humaneval: Option<f64>,
    /// Every method at every N.
    pub rows: Vec<SequenceRow>,
}

impl RepairSequenceSettings {
    /// The fine-tuning baseline's KL anchor: the first reference windows (never evaluated) as the model is now.
    fn finetune_anchor(&self, model: &Model) -> Result<Anchor> {
        let mut prompts = reference_prompts(model, &self.reference)?;
        prompts.truncate(self.finetune.anchor_prompts.max(1));
        let count = prompts.len();
        Ok(Unrelated::new(model, prompts, self.unrelated.positions)?.anchor(count))
    }
}

/// What the rows depend on (the methods may differ between runs).
fn journal_settings(settings: &RepairSequenceSettings) -> RepairSequenceSettings {
    RepairSequenceSettings { methods: Vec::new(), ..settings.clone() }
}

/// The fixed inputs of every measurement.
struct Measure<'a> {
    cases: &'a [RepairCase],
    variants_before: Vec<Vec<bool>>,
    unrelated: Unrelated,
    suite: BenchmarkSuite,
    baseline: Benchmarks,
    humaneval_problems: usize,
    full_humaneval: &'a FullHumanEval,
}

impl Measure<'_> {
    /// The row of `method` with the first `n` cases given and `patches` applied.
    fn row(
        &self,
        model: &Model,
        method: SequenceMethod,
        n: usize,
        patches: &PatchSet,
        refused: usize,
        seconds: f64,
    ) -> Result<SequenceRow> {
        let (mut right, mut wrong_before, mut fixed) = (0, 0, 0);
        for (case, before) in self.cases[..n].iter().zip(&self.variants_before) {
            right += usize::from(check(model, &Tokens::new(model, &case.example)?)?.correct());
            let after = repair::measure::variants_correct(model, case)?;
            wrong_before += before.iter().filter(|&&ok| !ok).count();
            fixed += before.iter().zip(&after).filter(|(&b, &a)| !b && a).count();
        }
        let specificity = self.unrelated.compare(model)?;
        let benchmarks = self.suite.measure(model, self.humaneval_problems)?;
        let full = &self.full_humaneval;
        let humaneval_full = if full.at.contains(&n) { self.suite.humaneval(model, full.problems)? } else { None };
        Ok(SequenceRow {
            method,
            n,
            repaired: right as f64 / n as f64,
            generalization: (wrong_before > 0).then(|| fixed as f64 / wrong_before as f64),
            top1_unchanged: specificity.top1_unchanged,
            mean_kl: specificity.mean_kl,
            perplexity_ratio: benchmarks.perplexity / self.baseline.perplexity,
            benchmarks,
            humaneval_full,
            neurons_changed: repair::method::neurons_changed(model, patches.changes()),
            refused,
            seconds,
        })
    }
}

impl Operation for RepairSequenceSettings {
    type Report = SequenceReport;

    /// Runs the study a method at a time; the model is left as it was.
    fn run(&self, model: &Model, context: &Context) -> Result<SequenceReport> {
        crate::units::run_all(self, model, context)
    }
}

/// What every method of a study shares: the sizes in order, the mined cases and the unpatched model's benchmarks
/// (each measured once per study, beside the journal), and the journal of rows.
struct Shared {
    sizes: Vec<usize>,
    cases: Vec<RepairCase>,
    baseline: Benchmarks,
    baseline_full_humaneval: Option<f64>,
    journal: RowJournal<SequenceRow>,
}

impl RepairSequenceSettings {
    /// The study's shared inputs, from `context.out` where a unit already measured them.
    fn shared(&self, model: &Model, context: &Context) -> Result<Shared> {
        let mut sizes = self.sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        let journal: RowJournal<SequenceRow> =
            RowJournal::open(&context.out.join("rows.jsonl"), &journal_settings(self))?;
        let cases: Vec<RepairCase> = journal.once("cases", || self.mined.mine(model))?;
        let largest = *sizes.last().ok_or_else(|| ExperimentError::Spec("give at least one size".into()))?;
        if cases.len() < largest || sizes[0] == 0 {
            return Err(ExperimentError::Data(format!(
                "{} failures were mined, the largest size is {largest} (sizes must be 1 or more): mine more or ask for less",
                cases.len()
            )));
        }
        let (baseline, baseline_full_humaneval) = journal.once("baseline", || {
            let suite = BenchmarkSuite::new(&self.benchmarks)?;
            let full = &self.full_humaneval;
            let more = if full.at.is_empty() { None } else { suite.humaneval(model, full.problems)? };
            Ok((suite.measure(model, self.benchmarks.humaneval_problems)?, more))
        })?;
        Ok(Shared { sizes, cases, baseline, baseline_full_humaneval, journal })
    }
}

/// One unit per method: its repairs at every N, each row journalled in the step's `rows.jsonl` as it finishes (the
/// units share the journal, appending under its lock), so that a stopped unit resumes from its last row (and a
/// resumable method from its checkpoint). The methods are independent: each starts from the unpatched model.
impl Split for RepairSequenceSettings {
    type Unit = Vec<SequenceRow>;

    fn units(&self) -> Result<usize> {
        Ok(self.methods.len())
    }

    fn shows_unit_progress(&self) -> bool {
        true
    }

    fn run_unit(&self, index: usize, model: &Model, context: &Context) -> Result<Vec<SequenceRow>> {
        let method = *self.methods.get(index).ok_or_else(|| {
            ExperimentError::Data(format!("sequence unit {index} asked for, of {}", self.methods.len()))
        })?;
        let mut shared = self.shared(model, context)?;
        let journalled = |shared: &Shared, n: usize| shared.journal.find(|r| r.method == method && r.n == n).cloned();
        let missing: Vec<usize> = shared.sizes.iter().copied().filter(|&n| journalled(&shared, n).is_none()).collect();
        if !missing.is_empty() {
            self.repair_in_a_row(method, &missing, &mut shared, model, context)?;
        }
        Ok(shared.sizes.iter().filter_map(|&n| journalled(&shared, n)).collect())
    }

    fn merge(&self, units: Vec<Vec<SequenceRow>>, model: &Model, context: &Context) -> Result<SequenceReport> {
        let Shared { cases, baseline, baseline_full_humaneval, .. } = self.shared(model, context)?;
        Ok(SequenceReport { cases, baseline, baseline_full_humaneval, rows: units.concat() })
    }
}

impl RepairSequenceSettings {
    /// Repairs with `method` up to each size of `missing` in turn (from its checkpoint when it has one), measuring
    /// and journalling a row at each; the model is left as it was.
    fn repair_in_a_row(
        &self,
        method: SequenceMethod,
        missing: &[usize],
        shared: &mut Shared,
        model: &Model,
        context: &Context,
    ) -> Result<()> {
        let Shared { sizes, cases, baseline, journal, .. } = shared;
        let (preserved, _) = preservation(model, &self.reference, context.progress)?;
        let prompts = unrelated_prompts(model, self.unrelated.prompts, self.unrelated.tokens)?;
        let measure = Measure {
            cases,
            variants_before: cases
                .iter()
                .map(|c| repair::measure::variants_correct(model, c))
                .collect::<Result<_, _>>()?,
            unrelated: Unrelated::new(model, prompts, self.unrelated.positions)?,
            baseline: *baseline,
            suite: BenchmarkSuite::new(&self.benchmarks)?,
            humaneval_problems: self.benchmarks.humaneval_problems,
            full_humaneval: &self.full_humaneval,
        };
        let identity = ModelIdentity::of(model)?;
        let silent = models::Silent;
        let windows = guard_windows(model, &self.reference)?;
        let guarded = Guarded {
            preserved: &preserved,
            levers: Levers::Neurons,
            joint: &self.joint,
            guard: &self.guard,
            windows: &windows,
        };
        context.progress.begin(&format!("repair sequence: {method}"), sizes.len() as u64);
        context.progress.advance((sizes.len() - missing.len()) as u64);
        let mut patches = PatchSet::new(identity.clone());
        let outcome = (|| -> Result<()> {
            let (mut seconds, mut applied) = (0.0, 0);
            let mut mint = match method {
                SequenceMethod::MintInARow | SequenceMethod::PublishedInARow | SequenceMethod::GatedInARow => {
                    Some(repairer(model, self.mint.clone(), self.unrelated)?)
                }
                _ => None,
            };
            // Measured on the unpatched model, before the first N.
            let anchor = match method {
                SequenceMethod::FineTuneKl => Some(self.finetune_anchor(model)?),
                _ => None,
            };
            let checkpoint = Checkpoint { dir: context.out, method };
            let mut kept = None;
            // A resumable method goes on from its checkpoint at the size before the first one missing.
            let before_missing = sizes.iter().rev().find(|&&n| n < missing[0]);
            if let Some(last) = before_missing.filter(|_| method.resumable()) {
                let row = journal.find(|r| r.method == method && r.n == *last);
                if let (Some(row), Some(saved)) = (row, checkpoint.load(*last)?) {
                    saved.apply(model)?;
                    patches = saved;
                    (seconds, applied, kept) = (row.seconds, row.n, Some(row.n));
                }
            }
            let mut memory = EditMemory::default();
            let batch = |cases: &[RepairCase], editor, memory: &mut EditMemory| -> Result<repair::SetRepair> {
                let tokens: Vec<Tokens> =
                    cases.iter().map(|c| Tokens::new(model, &c.example)).collect::<Result<_, _>>()?;
                Ok(batch_repair(model, &tokens, &preserved.stats, editor, &self.batch, memory)?)
            };
            for &n in missing {
                context.progress.check()?;
                let start = std::time::Instant::now();
                if !method.cumulative() {
                    patches.revert(model)?;
                    patches = PatchSet::new(identity.clone());
                    seconds = 0.0;
                }
                match method {
                    SequenceMethod::Joint | SequenceMethod::Lifelong => {
                        let batches: Vec<&[RepairCase]> = if method == SequenceMethod::Joint {
                            vec![&cases[..n]]
                        } else {
                            cases[applied..n].chunks(1).collect()
                        };
                        guarded.add_batches(model, &mut patches, &batches, &silent)?;
                    }
                    SequenceMethod::Memit => {
                        let set = batch(&cases[..n], BatchEditor::Memit, &mut EditMemory::default())?;
                        patches.push_set(&set.repair, cases[..n].to_vec());
                    }
                    SequenceMethod::FineTuneKl => {
                        let tokens: Vec<Tokens> =
                            cases[..n].iter().map(|c| Tokens::new(model, &c.example)).collect::<Result<_, _>>()?;
                        let layers = set_layers(model, &tokens, &preserved.stats, &self.joint)?;
                        let anchor = anchor.as_ref().ok_or_else(|| ExperimentError::Data("no KL anchor".into()))?;
                        if !layers.is_empty() {
                            let set = finetune_set(model, &tokens, &layers, &self.finetune, anchor)?;
                            patches.push_set(&set.repair, cases[..n].to_vec());
                        }
                    }
                    SequenceMethod::AlphaEdit => {
                        for chunk in cases[applied..n].chunks(self.batch_size.max(1)) {
                            let set = batch(chunk, BatchEditor::AlphaEdit, &mut memory)?;
                            patches.push_set(&set.repair, chunk.to_vec());
                        }
                    }
                    SequenceMethod::MintInARow | SequenceMethod::PublishedInARow | SequenceMethod::GatedInARow => {
                        let repairer = mint.as_mut().ok_or_else(|| ExperimentError::Data("no MINT repairer".into()))?;
                        let single = match method {
                            SequenceMethod::MintInARow => Method::Mint,
                            SequenceMethod::PublishedInARow => Method::MintPublished,
                            _ => Method::Gated,
                        };
                        for case in &cases[applied..n] {
                            let (done, metrics) = repairer.repair_case(model, case, single)?;
                            if metrics.effective {
                                patches.push(&done, Some(case.clone()), Some(metrics));
                            } else {
                                done.revert(model)?;
                            }
                        }
                    }
                }
                applied = n;
                seconds += start.elapsed().as_secs_f64();
                let refused = match method {
                    SequenceMethod::Joint | SequenceMethod::Lifelong => n - patches.cases().count(),
                    _ => 0,
                };
                let row = measure.row(model, method, n, &patches, refused, seconds)?;
                journal.record(&row)?;
                if method.resumable() {
                    checkpoint.save(&patches, n, kept.replace(n))?;
                }
                context.progress.advance(1);
            }
            Ok(())
        })();
        patches.revert(model)?;
        outcome?;
        Ok(())
    }
}

/// A metric plotted against N: file stem, title, and how to read a row.
pub type Metric = (&'static str, &'static str, fn(&SequenceRow) -> Option<f64>);

/// The metrics the study plots (as files here, and in the GUI's Benchmarks view).
pub const METRICS: [Metric; 7] = [
    ("repaired", "share of the N cases right", |r| Some(r.repaired)),
    ("generalization", "held-out variants fixed", |r| r.generalization),
    ("top1-kept", "unrelated top-1 tokens kept", |r| Some(r.top1_unchanged)),
    ("perplexity-ratio", "perplexity / unpatched", |r| Some(r.perplexity_ratio)),
    ("line-exact-match", "line completion exact match", |r| Some(r.benchmarks.line_exact_match)),
    ("humaneval", "HumanEval pass@1", |r| r.benchmarks.humaneval_pass1),
    ("humaneval-full", "HumanEval pass@1 (more problems)", |r| r.humaneval_full),
];

/// The rows of a finished or stopped study in `dir` (its journal, `rows.jsonl`, in `dir` or, for a spec's run
/// folder, in the first step folder that has one), in the order measured.
pub fn study_rows(dir: &Path) -> Result<Vec<SequenceRow>> {
    let mut steps: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect(),
        Err(e) => return Err(models::files::at(dir)(e).into()),
    };
    steps.sort();
    let journal = std::iter::once(dir.to_path_buf()).chain(steps).map(|d| d.join("rows.jsonl")).find(|p| p.is_file());
    let journal = journal.ok_or_else(|| {
        ExperimentError::Data(format!(
            "{} has no rows.jsonl, nor has any of its step folders: give the run folder of a RepairSequence spec",
            dir.display()
        ))
    })?;
    RowJournal::<SequenceRow>::read_rows(&journal)
}

/// Each method's points (N, value) of `metric`, methods in the order they first appear.
pub fn curves(rows: &[SequenceRow], metric: &Metric) -> Vec<(SequenceMethod, Vec<(f64, f64)>)> {
    let mut methods: Vec<SequenceMethod> = Vec::new();
    for row in rows {
        if !methods.contains(&row.method) {
            methods.push(row.method);
        }
    }
    let mut curves: Vec<(SequenceMethod, Vec<(f64, f64)>)> = methods
        .into_iter()
        .map(|m| {
            let mut points: Vec<(f64, f64)> =
                rows.iter().filter(|r| r.method == m).filter_map(|r| (metric.2)(r).map(|v| (r.n as f64, v))).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (m, points)
        })
        .collect();
    curves.retain(|(_, points)| !points.is_empty());
    curves
}

impl SequenceReport {
    fn table(&self) -> String {
        let mut text = format!(
            "unpatched: perplexity {:.3}, line exact match {:.3}{}{}\n\n| method | N | repaired | generalization | top-1 kept | mean KL | perplexity ratio | line EM | HumanEval | HumanEval (more) | neurons | refused | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            self.baseline.perplexity,
            self.baseline.line_exact_match,
            self.baseline.humaneval_pass1.map_or(String::new(), |p| format!(", HumanEval pass@1 {p:.3}")),
            self.baseline_full_humaneval.map_or(String::new(), |p| format!(", on more problems {p:.3}"))
        );
        let or_dash = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        for r in &self.rows {
            text.push_str(&format!(
                "| {} | {} | {:.3} | {} | {:.4} | {:.4} | {:.4} | {:.3} | {} | {} | {} | {} | {:.1} |\n",
                r.method,
                r.n,
                r.repaired,
                or_dash(r.generalization),
                r.top1_unchanged,
                r.mean_kl,
                r.perplexity_ratio,
                r.benchmarks.line_exact_match,
                or_dash(r.benchmarks.humaneval_pass1),
                or_dash(r.humaneval_full),
                r.neurons_changed,
                r.refused,
                r.seconds
            ));
        }
        text
    }
}

impl Report for SequenceReport {
    fn summary(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| {
                format!(
                    "{} N={}: repaired {:.3}, generalization {}, top-1 kept {:.4}, perplexity x{:.4}, {} neurons, {:.1} s",
                    r.method,
                    r.n,
                    r.repaired,
                    r.generalization.map_or("-".into(), |g| format!("{g:.3}")),
                    r.top1_unchanged,
                    r.perplexity_ratio,
                    r.neurons_changed,
                    r.seconds
                )
            })
            .collect()
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        let mut files = Vec::new();
        for metric in &METRICS {
            let (stem, title, _) = *metric;
            let curves: Vec<probes::plots::Curve> = curves(&self.rows, metric)
                .into_iter()
                .map(|(m, points)| probes::plots::Curve {
                    name: m.to_string(),
                    points: points.into_iter().map(|(n, v)| (n, v, v, v)).collect(),
                })
                .collect();
            if curves.is_empty() {
                continue;
            }
            let plot = probes::plots::LayerPlot {
                title: title.into(),
                x_label: "repairs applied (N)".into(),
                y_label: title.into(),
                curves,
            };
            plot.write(&dir.join(stem))?;
            files.extend([format!("{stem}.png"), format!("{stem}.svg")]);
        }
        write_file(dir, "table.md", self.table().as_bytes())?;
        write_json(dir, "results.json", self)?;
        files.extend(names(&["table.md", "results.json", "rows.jsonl"]));
        Ok(files)
    }
}
