//! The repair study: mine real failures of the model in every bug family, repair each case with every method on
//! the same budgets (the model reverted bit-exactly between repairs), measure effectiveness, generalization,
//! specificity and benchmark deltas, and report one table with MINT beside the baselines. Optionally the MINT
//! repairs are then applied in a row, to see what many repairs do together; they become a patch set.

pub mod benchmarks;
pub mod summary;

use std::path::PathBuf;

use models::{Model, Progress};
use repair::patchset::{ModelIdentity, PatchSet};
use repair::{Method, RepairCase, RepairConfig, Repairer, Specificity};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::journal::RowJournal;
use crate::ops::repair::{repairer, UnrelatedSettings};
use crate::repair_cases::{api_cases, humaneval_cases, line_cases};
pub use benchmarks::{BenchmarkSpec, BenchmarkSuite, Benchmarks};
pub use summary::{rows_csv, summarize, summary_markdown, MethodSummary, RepairRow};

/// What a repair study does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RepairStudySpec {
    /// API-name cases.
    pub api: usize,
    /// Line-completion cases.
    pub lines: usize,
    /// HumanEval cases.
    pub humaneval: usize,
    /// A JSONL file of user cases.
    pub user_cases: Option<PathBuf>,
    /// Context tokens before a line case.
    pub line_context: usize,
    /// Longest desired continuation (tokens) of line and HumanEval cases.
    pub max_desired_tokens: usize,
    /// Methods compared.
    pub methods: Vec<Method>,
    /// Their settings.
    pub config: RepairConfig,
    /// Unrelated prompts for specificity (windows of held-out CPython files 80-99).
    pub unrelated_prompts: usize,
    /// Tokens per unrelated prompt.
    pub unrelated_tokens: usize,
    /// Positions per unrelated prompt whose distributions are compared.
    pub unrelated_positions: usize,
    /// Benchmarks before and after.
    pub benchmarks: BenchmarkSpec,
    /// Apply every MINT repair in a row afterwards.
    pub sequential: bool,
}

impl Default for RepairStudySpec {
    fn default() -> Self {
        RepairStudySpec {
            api: 20,
            lines: 15,
            humaneval: 15,
            user_cases: None,
            line_context: 96,
            max_desired_tokens: 6,
            methods: Method::ALL.to_vec(),
            config: RepairConfig::default(),
            unrelated_prompts: 24,
            unrelated_tokens: 48,
            unrelated_positions: 8,
            benchmarks: BenchmarkSpec::default(),
            sequential: true,
        }
    }
}

/// The MINT repairs applied one after another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequentialReport {
    /// Repairs applied (the effective ones).
    pub repairs: usize,
    /// Of their cases, how many are still right with all repairs applied.
    pub still_fixed: usize,
    /// Side effects of all repairs together.
    pub specificity: Specificity,
    /// Benchmarks before any repair.
    pub before: Benchmarks,
    /// Benchmarks with all repairs.
    pub after: Benchmarks,
}

/// Everything a repair study found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepairStudyReport {
    /// The cases, by family.
    pub cases: Vec<RepairCase>,
    /// Benchmarks of the unrepaired model.
    pub baseline: Benchmarks,
    /// Every repair.
    pub rows: Vec<RepairRow>,
    /// One line per method.
    pub summary: Vec<MethodSummary>,
    /// The repairs in a row, when run.
    pub sequential: Option<SequentialReport>,
}

impl RepairStudySpec {
    /// The side-effect prompts of the study.
    pub fn unrelated(&self) -> UnrelatedSettings {
        UnrelatedSettings {
            prompts: self.unrelated_prompts,
            tokens: self.unrelated_tokens,
            positions: self.unrelated_positions,
        }
    }
}

/// What a study's journal rows depend on: the study without its list of methods and without the repairs in a row.
pub fn journal_settings(study: &RepairStudySpec) -> RepairStudySpec {
    RepairStudySpec { methods: Vec::new(), sequential: false, ..study.clone() }
}

/// Mines the cases a study asks for.
pub fn study_cases(model: &Model, spec: &RepairStudySpec) -> Result<Vec<RepairCase>> {
    let mut cases = api_cases(model, spec.api)?;
    cases.extend(line_cases(model, spec.lines, spec.line_context, spec.max_desired_tokens)?);
    let problems = crate::humaneval::default_problems()?;
    cases.extend(humaneval_cases(model, &problems, spec.humaneval, spec.max_desired_tokens)?);
    if let Some(path) = &spec.user_cases {
        cases.extend(repair::load_user_cases(path)?);
    }
    Ok(cases)
}

/// Runs the study. The model is left as it was, unless `sequential` is on: then every effective MINT repair
/// stays applied, in the returned patch set. Every row is recorded in the journal as it finishes, and rows the
/// journal already holds are taken from it instead of being repaired again.
pub fn run_repair_study(
    model: &Model,
    spec: &RepairStudySpec,
    progress: &dyn Progress,
    journal: &mut RowJournal<RepairRow>,
) -> Result<(RepairStudyReport, Option<PatchSet>)> {
    let cases = study_cases(model, spec)?;
    if cases.is_empty() {
        return Err(ExperimentError::Data("no repair cases: the model got every mined case right".into()));
    }
    let identity = ModelIdentity::of(model)?;
    let mut repairer = repairer(model, spec.config.clone(), spec.unrelated())?;
    let suite = BenchmarkSuite::new(&spec.benchmarks)?;
    let baseline = journal.once("baseline", || suite.measure(model, spec.benchmarks.humaneval_problems))?;
    progress.begin("repairing", (cases.len() * spec.methods.len()) as u64);
    let mut rows = Vec::new();
    for case in &cases {
        for &method in &spec.methods {
            progress.check()?;
            let done = |row: &RepairRow| row.family == case.family && row.case == case.id && row.method == method;
            if let Some(row) = journal.find(done) {
                rows.push(row.clone());
                progress.advance(1);
                continue;
            }
            let (repair, metrics) = repairer.repair_case(model, case, method)?;
            let after = suite.measure(model, spec.benchmarks.humaneval_problems)?;
            repair.revert(model)?;
            let row = RepairRow {
                family: case.family.clone(),
                case: case.id.clone(),
                method,
                metrics,
                deltas: after.minus(&baseline),
                steps: repair.steps,
            };
            journal.record(&row)?;
            rows.push(row);
            progress.advance(1);
        }
    }
    if ModelIdentity::of(model)?.weights_sha256 != identity.weights_sha256 {
        return Err(ExperimentError::Data("reverting the repairs did not restore the model bit-exactly".into()));
    }
    let summary = summarize(&rows, &spec.methods);
    let (sequential, patches) = if spec.sequential {
        let (report, patches) = repair_in_a_row(model, &cases, &mut repairer, &suite, identity, spec)?;
        (Some(report), Some(patches))
    } else {
        (None, None)
    };
    Ok((RepairStudyReport { cases, baseline, rows, summary, sequential }, patches))
}

/// Applies the MINT repair of every case on top of the earlier ones (keeping the effective ones).
fn repair_in_a_row(
    model: &Model,
    cases: &[RepairCase],
    repairer: &mut Repairer,
    suite: &BenchmarkSuite,
    identity: ModelIdentity,
    spec: &RepairStudySpec,
) -> Result<(SequentialReport, PatchSet)> {
    let problems = spec.benchmarks.sequential_humaneval_problems;
    let before = suite.measure(model, problems)?;
    let mut patches = PatchSet::new(identity);
    let mut kept = Vec::new();
    for case in cases {
        let (repair, metrics) = repairer.repair_case(model, case, Method::Mint)?;
        if metrics.effective {
            patches.push(&repair, Some(case.clone()), Some(metrics));
            kept.push(case);
        } else {
            repair.revert(model)?;
        }
    }
    let mut still_fixed = 0;
    for case in &kept {
        still_fixed += usize::from(repair::check(model, &repair::Tokens::new(model, &case.example)?)?.correct());
    }
    let report = SequentialReport {
        repairs: kept.len(),
        still_fixed,
        specificity: repairer.unrelated.compare(model)?,
        before,
        after: suite.measure(model, problems)?,
    };
    Ok((report, patches))
}
