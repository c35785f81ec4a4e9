//! The repair study: mine real failures of the model in every bug family, repair each case with every method on
//! the same budgets (the model reverted bit-exactly between repairs), measure effectiveness, generalization,
//! specificity and benchmark deltas, and report one table with MINT beside the baselines. Optionally the MINT
//! repairs are then applied in a row, to see what many repairs do together; they become a patch set.

pub mod benchmarks;
pub mod summary;

use std::path::{Path, PathBuf};

use models::Model;
use repair::patchset::{ModelIdentity, PatchSet};
use repair::{Method, RepairCase, RepairConfig, Repairer, Specificity};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
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
    /// Apply every case's repair in a row afterwards.
    pub sequential: bool,
    /// The method of the repairs in a row.
    pub sequential_method: Method,
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
            methods: Method::ALL.into_iter().filter(|m| !m.needs_transcoder()).collect(),
            config: RepairConfig::default(),
            unrelated_prompts: 24,
            unrelated_tokens: 48,
            unrelated_positions: 8,
            benchmarks: BenchmarkSpec::default(),
            sequential: true,
            sequential_method: Method::Mint,
        }
    }
}

/// The repairs of one method applied one after another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequentialReport {
    /// The method.
    pub method: Method,
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

/// What a study's cases and baseline depend on: the study without its list of methods and without the repairs in
/// a row.
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

/// What every case of a study shares: the cases mined, and the benchmarks of the unrepaired model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepared {
    /// The cases, by family.
    pub cases: Vec<RepairCase>,
    /// Benchmarks of the unrepaired model.
    pub baseline: Benchmarks,
}

impl Prepared {
    /// Mines the cases and measures the unrepaired model, once per study: both are kept in `dir` (`cases.json`,
    /// `baseline.json`, with the study's settings) and read back by the study's other units and a resumed study.
    pub fn once(model: &Model, spec: &RepairStudySpec, dir: &Path) -> Result<Prepared> {
        let settings = journal_settings(spec);
        let cases = crate::journal::measured_once(&dir.join("cases.json"), &settings, || {
            let cases = study_cases(model, spec)?;
            if cases.is_empty() {
                return Err(ExperimentError::Data("no repair cases: the model got every mined case right".into()));
            }
            Ok(cases)
        })?;
        let baseline = crate::journal::measured_once(&dir.join("baseline.json"), &settings, || {
            BenchmarkSuite::new(&spec.benchmarks)?.measure(model, spec.benchmarks.humaneval_problems)
        })?;
        Ok(Prepared { cases, baseline })
    }
}

/// The rows of case `index` (none past the cases mined): every method of the study repairs it from the unrepaired
/// model, the benchmarks are measured with the repair applied, and the repair is reverted; the model must come back
/// bit for bit. The random-neuron baseline draws its neurons as it would in one run over every case.
pub fn case_rows(model: &Model, spec: &RepairStudySpec, prepared: &Prepared, index: usize) -> Result<Vec<RepairRow>> {
    let Some(case) = prepared.cases.get(index) else { return Ok(Vec::new()) };
    let identity = ModelIdentity::of(model)?;
    let mut repairer = repairer(model, spec.config.clone(), spec.unrelated())?;
    repairer.count_repairs_from((index * spec.methods.len()) as u64);
    let suite = BenchmarkSuite::new(&spec.benchmarks)?;
    let mut rows = Vec::with_capacity(spec.methods.len());
    for &method in &spec.methods {
        let (repair, metrics) = repairer.repair_case(model, case, method)?;
        let after = suite.measure(model, spec.benchmarks.humaneval_problems)?;
        repair.revert(model)?;
        rows.push(RepairRow {
            family: case.family.clone(),
            case: case.id.clone(),
            method,
            metrics,
            deltas: after.minus(&prepared.baseline),
            steps: repair.steps,
        });
    }
    if ModelIdentity::of(model)?.weights_sha256 != identity.weights_sha256 {
        return Err(ExperimentError::Data("reverting the repairs did not restore the model bit-exactly".into()));
    }
    Ok(rows)
}

/// The study's report from every case's rows: the table, and with `sequential` the repairs applied in a row,
/// which stay applied, in the returned patch set.
pub fn finish_study(
    model: &Model,
    spec: &RepairStudySpec,
    prepared: Prepared,
    rows: Vec<RepairRow>,
) -> Result<(RepairStudyReport, Option<PatchSet>)> {
    let summary = summarize(&rows, &spec.methods);
    let (sequential, patches) = if spec.sequential {
        let mut repairer = repairer(model, spec.config.clone(), spec.unrelated())?;
        repairer.count_repairs_from((prepared.cases.len() * spec.methods.len()) as u64);
        let suite = BenchmarkSuite::new(&spec.benchmarks)?;
        let (report, patches) =
            repair_in_a_row(model, &prepared.cases, &mut repairer, &suite, ModelIdentity::of(model)?, spec)?;
        (Some(report), Some(patches))
    } else {
        (None, None)
    };
    let Prepared { cases, baseline } = prepared;
    Ok((RepairStudyReport { cases, baseline, rows, summary, sequential }, patches))
}

/// Applies the repair of every case by the study's sequential method on top of the earlier ones (keeping the
/// effective ones).
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
        let (repair, metrics) = repairer.repair_case(model, case, spec.sequential_method)?;
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
        method: spec.sequential_method,
        repairs: kept.len(),
        still_fixed,
        specificity: repairer.unrelated.compare(model)?,
        before,
        after: suite.measure(model, problems)?,
    };
    Ok((report, patches))
}
