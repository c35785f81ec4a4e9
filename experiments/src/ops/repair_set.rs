//! Repairs of many cases that hold together: the whole set solved jointly in one guarded step, or one case at a
//! time into a growing patch set (lifelong, each step solved with the earlier cases and guarded); and the
//! preservation statistics both need, over reference code no evaluation reads (CPython files 40-79).

use std::path::{Path, PathBuf};

use models::{Model, Progress};
use repair::patchset::PatchSet;
use repair::{
    check, FeatureConfig, GuardConfig, Guarded, JointConfig, Levers, LifelongStep, Method, PreservationStats,
    Preserved, Provenance, RepairCase, Specificity, Tokens, Unrelated, Verdict,
};
use serde::{Deserialize, Serialize};

use super::repair::{feature_basis, given_cases, starting_set, unrelated_prompts, UnrelatedSettings};
use super::{names, write_json, Context, Operation, Report};
use crate::error::{ExperimentError, Result};
use crate::repair_cases::MinedCases;

/// The reference code the preservation statistics are measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReferenceSettings {
    /// Windows of CPython files 40-79 (disjoint from the probes' first files, the unrelated prompts' 80-99 and
    /// the held-out 100-122).
    pub windows: usize,
    /// Tokens per window.
    pub tokens: usize,
    /// Positions of the reference windows whose top-1 leads by the least, kept as constraints of every solve.
    pub anchors: usize,
    /// Also the full covariance E[k kᵀ]: the joint solve then weighs changes by it instead of E[k²] alone, and
    /// MEMIT and AlphaEdit need it.
    pub covariance: bool,
    /// The positions the regression guard checks: `prompts` windows of the reference files that follow the
    /// `windows` the statistics read, cut to `tokens`, at their last `positions` (reference code the solve's
    /// metric was not fitted on, so the guard's count is not biased low, and never the unrelated prompts a study
    /// measures).
    pub guard: UnrelatedSettings,
}

impl Default for ReferenceSettings {
    fn default() -> Self {
        ReferenceSettings {
            windows: 64,
            tokens: 128,
            anchors: 0,
            covariance: true,
            guard: UnrelatedSettings { prompts: 32, tokens: 48, positions: 16 },
        }
    }
}

/// The positions of reference code the regression guard checks (see [`ReferenceSettings::guard`]), as the model
/// is now.
pub fn guard_windows(model: &Model, settings: &ReferenceSettings) -> Result<Unrelated> {
    let guard = settings.guard;
    let mut prompts = reference_windows(model, settings.tokens, settings.windows + guard.prompts.max(1))?;
    let prompts = prompts.split_off(settings.windows.min(prompts.len()));
    if prompts.is_empty() {
        return Err(ExperimentError::Spec(format!(
            "the reference files hold no windows for the guard after the {} of the statistics: ask for fewer",
            settings.windows
        )));
    }
    let prompts = prompts.into_iter().map(|p| p[..guard.tokens.clamp(1, p.len())].to_vec()).collect();
    Ok(Unrelated::new(model, prompts, guard.positions)?)
}

/// The reference windows of the preservation statistics (see [`ReferenceSettings::windows`]).
pub fn reference_prompts(model: &Model, settings: &ReferenceSettings) -> Result<Vec<Vec<u32>>> {
    reference_windows(model, settings.tokens, settings.windows)
}

/// Up to `count` windows of CPython files 40-79, `tokens` long, taken file by file (first windows first).
fn reference_windows(model: &Model, tokens: usize, count: usize) -> Result<Vec<Vec<u32>>> {
    let files = probes::corpus::stdlib_files(80)?;
    let texts: Vec<String> = files[40..]
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(models::files::at(p)))
        .collect::<Result<_, _>>()?;
    let mut prompts = Vec::new();
    'windows: for window in 0..16 {
        for text in &texts {
            if prompts.len() == count {
                break 'windows;
            }
            let ids = model.encode_prefix(text, (window + 1) * tokens)?;
            if ids.len() >= (window + 1) * tokens {
                prompts.push(ids[window * tokens..].to_vec());
            }
        }
    }
    if prompts.is_empty() {
        return Err(ExperimentError::Spec("no reference windows: ask for at least one of at least one token".into()));
    }
    Ok(prompts)
}

/// What a joint repair of `model` preserves: the statistics over the reference code (from the cache when an
/// earlier run made them) and its anchor positions.
pub fn preservation(
    model: &Model,
    settings: &ReferenceSettings,
    progress: &dyn Progress,
) -> Result<(Preserved, Provenance)> {
    let prompts = reference_prompts(model, settings)?;
    let dir = models::catalogue::cache_dir().join("preservation");
    let (stats, provenance) = PreservationStats::cached(model, &prompts, settings.covariance, &dir, progress)?;
    let anchors =
        if settings.anchors > 0 { repair::rows::anchor_rows(model, &prompts, settings.anchors)? } else { Vec::new() };
    Ok((Preserved { stats, anchors }, provenance))
}

/// How the cases are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SetMode {
    /// All cases in one joint solve, guarded.
    #[default]
    Joint,
    /// One case at a time, each solved with the earlier ones and guarded.
    Lifelong,
}

/// Which cases, how, on top of which patches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RepairSetSettings {
    /// Cases given directly.
    pub cases: Vec<RepairCase>,
    /// A JSONL file of cases, after `cases`.
    pub cases_file: Option<PathBuf>,
    /// Failures of the model mined from real code, after the file's.
    pub mined: MinedCases,
    /// Joint or lifelong.
    pub mode: SetMode,
    /// The solve.
    pub joint: JointConfig,
    /// A transcoder here (`features: (transcoder: "DIR")`) makes the solve move its features' decoder rows instead
    /// of neurons (method `joint-features`), each made as a change of its layer's down projection.
    pub features: FeatureConfig,
    /// The regression guard.
    pub guard: GuardConfig,
    /// The side-effect prompts.
    pub unrelated: UnrelatedSettings,
    /// The reference code of the preservation statistics.
    pub reference: ReferenceSettings,
    /// A patch set applied first: its cases are kept right, and the saved set includes it.
    pub apply: Option<PathBuf>,
}

/// One case at the end.
#[derive(Debug, Clone, Serialize)]
pub struct SetCaseResult {
    /// Family and id.
    pub family: String,
    /// Its id.
    pub id: String,
    /// Right (every desired token top-1) with the whole set applied.
    pub repaired: bool,
    /// Right before any repair of this run.
    pub right_before: bool,
    /// Its smallest margin with the set applied.
    pub margin_after: f32,
    /// Held-out variants wrong before.
    pub variants_wrong_before: usize,
    /// Of those, right after.
    pub variants_fixed: usize,
    /// Variants right before and wrong after.
    pub variants_broken: usize,
}

/// What the set repair did.
#[derive(Serialize)]
pub struct RepairSetReport {
    /// Joint or lifelong.
    pub mode: SetMode,
    /// Through neurons (`joint`) or a transcoder's features (`joint-features`).
    pub method: Method,
    /// Every guarded step (one for a joint repair).
    pub steps: Vec<LifelongStep>,
    /// Every case with the set applied.
    pub cases: Vec<SetCaseResult>,
    /// Unrelated prompts with the set applied, against the model before this run.
    pub specificity: Specificity,
    /// Distinct neurons whose output vectors the set changed.
    pub neurons_changed: usize,
    /// Seconds of the repairs (statistics excluded).
    pub seconds: f64,
    /// Where the preservation statistics came from (computed now, or read from the cache).
    #[serde(skip)]
    pub statistics: String,
    /// The patch set, saved as patches.ron.
    #[serde(skip)]
    pub patches: Option<PatchSet>,
}

impl RepairSetSettings {
    fn all_cases(&self, model: &Model) -> Result<Vec<RepairCase>> {
        let mut cases = given_cases(&self.cases, self.cases_file.as_deref())?;
        cases.extend(self.mined.mine(model)?);
        if cases.is_empty() {
            return Err(ExperimentError::Spec(
                "no repair cases: give a prompt and its desired text, a file, or cases to mine".into(),
            ));
        }
        Ok(cases)
    }
}

impl Operation for RepairSetSettings {
    type Report = RepairSetReport;

    /// Repairs the cases into a patch set; the model is reverted to how it was afterwards.
    fn run(&self, model: &Model, context: &Context) -> Result<RepairSetReport> {
        let cases = self.all_cases(model)?;
        self.joint.validate()?;
        let mut patches = starting_set(model, self.apply.as_deref())?;
        let settings =
            RepairSetSettings { features: super::features_in_run(&self.features, context.out), ..self.clone() };
        let outcome = settings.add(model, &mut patches, &cases, context.progress);
        patches.revert(model)?;
        let mut report = outcome?;
        report.patches = Some(patches);
        Ok(report)
    }
}

impl RepairSetSettings {
    /// Repairs `cases` into `patches`, which `model` has applied: in one guarded joint step or one guarded step per
    /// case, as `mode` says (cases the set already holds, by family and id, are skipped). The kept steps stay
    /// applied and join `patches`; the report measures the cases and the unrelated prompts with them (against the
    /// model as it was before this call).
    pub fn add(
        &self,
        model: &Model,
        patches: &mut PatchSet,
        cases: &[RepairCase],
        progress: &dyn Progress,
    ) -> Result<RepairSetReport> {
        let held = |c: &RepairCase| patches.cases().any(|h| h.family == c.family && h.id == c.id);
        let cases: Vec<RepairCase> = cases.iter().filter(|c| !held(c)).cloned().collect();
        if cases.is_empty() {
            return Err(ExperimentError::Spec(
                "every case is already in the applied patch set: give, load or mine new ones".into(),
            ));
        }
        let (preserved, provenance) = preservation(model, &self.reference, progress)?;
        let basis = feature_basis(model, &self.features)?;
        let levers = basis.as_ref().map_or(Levers::Neurons, Levers::Features);
        let prompts = unrelated_prompts(model, self.unrelated.prompts, self.unrelated.tokens)?;
        let unrelated = Unrelated::new(model, prompts, self.unrelated.positions)?;
        let windows = guard_windows(model, &self.reference)?;
        let before: Vec<(bool, Vec<bool>)> = cases.iter().map(|c| status(model, c)).collect::<Result<_>>()?;
        let start = std::time::Instant::now();
        let batches: Vec<&[RepairCase]> = match self.mode {
            SetMode::Joint => vec![&cases],
            SetMode::Lifelong => cases.chunks(1).collect(),
        };
        let guarded =
            Guarded { preserved: &preserved, levers, joint: &self.joint, guard: &self.guard, windows: &windows };
        let steps = guarded.add_batches(model, patches, &batches, progress)?;
        let seconds = start.elapsed().as_secs_f64();
        let results = cases
            .iter()
            .zip(&before)
            .map(|(case, (right_before, variants_before))| result(model, case, *right_before, variants_before))
            .collect::<Result<_>>()?;
        Ok(RepairSetReport {
            mode: self.mode,
            method: levers.method(),
            steps,
            cases: results,
            specificity: unrelated.compare(model)?,
            neurons_changed: repair::method::neurons_changed(model, patches.changes()),
            seconds,
            statistics: match &provenance {
                Provenance::Cached(path) => format!("read from {}", path.display()),
                Provenance::Computed(path) => {
                    format!("computed over {} tokens, cached in {}", preserved.stats.tokens, path.display())
                }
            },
            patches: None,
        })
    }
}

/// Each case's shortest margin on `model` as it is (negative: a desired token is not the top-1).
pub fn shortest_margins(model: &Model, cases: &[RepairCase]) -> Result<Vec<f32>> {
    cases.iter().map(|case| Ok(shortest(&check(model, &Tokens::new(model, &case.example)?)?.margins))).collect()
}

fn shortest(margins: &[f32]) -> f32 {
    margins.iter().copied().fold(f32::INFINITY, f32::min)
}

/// Whether a case is right, and which of its variants are.
fn status(model: &Model, case: &RepairCase) -> Result<(bool, Vec<bool>)> {
    let right = check(model, &Tokens::new(model, &case.example)?)?.correct();
    Ok((right, repair::measure::variants_correct(model, case)?))
}

fn result(model: &Model, case: &RepairCase, right_before: bool, variants_before: &[bool]) -> Result<SetCaseResult> {
    let now = check(model, &Tokens::new(model, &case.example)?)?;
    let variants_after = repair::measure::variants_correct(model, case)?;
    let pairs = || variants_before.iter().zip(&variants_after);
    Ok(SetCaseResult {
        family: case.family.clone(),
        id: case.id.clone(),
        repaired: now.correct(),
        right_before,
        margin_after: shortest(&now.margins),
        variants_wrong_before: variants_before.iter().filter(|&&ok| !ok).count(),
        variants_fixed: pairs().filter(|(&b, &a)| !b && a).count(),
        variants_broken: pairs().filter(|(&b, &a)| b && !a).count(),
    })
}

impl Report for RepairSetReport {
    fn summary(&self) -> Vec<String> {
        let repaired = self.cases.iter().filter(|c| c.repaired).count();
        let (wrong, fixed) =
            self.cases.iter().fold((0, 0), |(w, f), c| (w + c.variants_wrong_before, f + c.variants_fixed));
        let mut lines = vec![format!(
            "{} repair{} of {} cases: {repaired} right with the set applied; variants fixed {fixed}/{wrong}; unrelated top-1 unchanged {:.4}, mean KL {:.2e}; {} neurons; {:.1} s",
            match self.mode {
                SetMode::Joint => "joint",
                SetMode::Lifelong => "lifelong",
            },
            if self.method == Method::JointFeatures { " through transcoder features" } else { "" },
            self.cases.len(),
            self.specificity.top1_unchanged,
            self.specificity.mean_kl,
            self.neurons_changed,
            self.seconds
        )];
        let wrong: Vec<&str> = self.cases.iter().filter(|c| !c.repaired).map(|c| c.id.as_str()).collect();
        if !wrong.is_empty() {
            lines.push(format!("not repaired: {}", wrong.join(", ")));
        }
        for (k, step) in self.steps.iter().enumerate() {
            match (&step.verdict, step.regrouped) {
                (Verdict::Refused { reason }, false) => {
                    lines.push(format!("step {} refused after {} tries: {reason}", k + 1, step.tries))
                }
                (Verdict::Refused { reason }, true) => lines.push(format!("step {} regrouped: {reason}", k + 1)),
                (Verdict::Kept, true) => lines.push(format!(
                    "step {} regrouped: the run's {} cases solved again together, then the refused one, kept (top-1 unchanged {:.4})",
                    k + 1,
                    step.earlier,
                    step.top1_unchanged
                )),
                (Verdict::Kept, false) => {}
            }
        }
        lines.push(format!("preservation statistics {}", self.statistics));
        lines
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        let mut files = names(&["results.json"]);
        if let Some(patches) = &self.patches {
            patches.save(&dir.join("patches.ron"))?;
            files.extend(names(&["patches.ron", "patches.safetensors"]));
        }
        Ok(files)
    }
}
