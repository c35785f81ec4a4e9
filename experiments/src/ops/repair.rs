//! Repairs of given cases (typed, or a JSONL file) with one method, each on top of the earlier ones, saved as a
//! patch set; and the one place that sets up a [`Repairer`] with its unrelated prompts.

use std::path::{Path, PathBuf};

use models::Model;
use repair::patchset::{ModelIdentity, PatchSet};
use repair::{FeatureBasis, FeatureConfig, Method, RepairCase, RepairConfig, RepairMetrics, Repairer, StepLog};
use serde::{Deserialize, Serialize};

use super::{names, write_json, Context, Operation, Report};
use crate::error::{ExperimentError, Result};

/// The prompts no repair should change: how many, how long, and how many last positions are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnrelatedSettings {
    /// Windows of held-out CPython files 80-99.
    pub prompts: usize,
    /// Tokens per window.
    pub tokens: usize,
    /// Last positions per window whose distributions are compared.
    pub positions: usize,
}

impl Default for UnrelatedSettings {
    fn default() -> Self {
        UnrelatedSettings { prompts: 24, tokens: 48, positions: 8 }
    }
}

/// Windows of held-out CPython files 80-99, `tokens` long: prompts no repair should change.
pub fn unrelated_prompts(model: &Model, count: usize, tokens: usize) -> Result<Vec<Vec<u32>>> {
    let files = probes::corpus::stdlib_files(100)?;
    let mut prompts = Vec::new();
    for window in 0..4 {
        for path in &files[80..] {
            let text = std::fs::read_to_string(path).map_err(models::files::at(path))?;
            let ids = model.encode_prefix(&text, 64 + (window + 1) * tokens)?;
            if prompts.len() < count && ids.len() >= 64 + (window + 1) * tokens {
                prompts.push(ids[64 + window * tokens..].to_vec());
            }
        }
    }
    Ok(prompts)
}

/// A repairer for `model` as it is now, measuring side effects on the unrelated prompts of `unrelated`, with the
/// features of the transcoder `config.features` names ([`feature_basis`]).
pub fn repairer(model: &Model, config: RepairConfig, unrelated: UnrelatedSettings) -> Result<Repairer> {
    let prompts = unrelated_prompts(model, unrelated.prompts, unrelated.tokens)?;
    let basis = feature_basis(model, &config.features)?;
    let repairer = Repairer::new(model, config, prompts, unrelated.positions)?;
    Ok(match basis {
        Some(basis) => repairer.with_features(basis),
        None => repairer,
    })
}

/// The features of the transcoder `features` names, with their readouts (fitted once per model and transcoder
/// over `features.reference_files` package files, then read from the cache); none when it names none.
pub fn feature_basis(model: &Model, features: &FeatureConfig) -> Result<Option<FeatureBasis>> {
    let Some(dir) = &features.transcoder else { return Ok(None) };
    let transcoder = super::features::load_features(model, dir)?.into_transcoder()?;
    let files = probes::corpus::stdlib_package_files(features.reference_files)?;
    let reference: Vec<Vec<u32>> = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(models::files::at(path))?;
            Ok(model.encode_prefix(&text, features.reference_tokens)?)
        })
        .collect::<Result<_>>()?;
    let basis = FeatureBasis::cached(
        model,
        Box::new(transcoder),
        &super::features::folder_sha256(dir)?,
        &reference,
        &models::catalogue::cache_dir().join("feature-readouts"),
        &models::Silent,
    )?;
    Ok(Some(basis))
}

/// Which cases, which method, on top of which patches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepairSettings {
    /// Cases given directly.
    pub cases: Vec<RepairCase>,
    /// A JSONL file of cases (`{"prompt", "desired", "variants": [{"prompt", "desired"}]}`), after `cases`.
    pub cases_file: Option<PathBuf>,
    /// The method.
    pub method: Method,
    /// Its settings.
    pub config: RepairConfig,
    /// The side-effect prompts.
    pub unrelated: UnrelatedSettings,
    /// A patch set applied first: repairs build on it, and the saved set includes it.
    pub apply: Option<PathBuf>,
}

impl Default for RepairSettings {
    fn default() -> Self {
        RepairSettings {
            cases: Vec::new(),
            cases_file: None,
            method: Method::Mint,
            config: RepairConfig::default(),
            unrelated: UnrelatedSettings::default(),
            apply: None,
        }
    }
}

/// One case's repair.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case.
    pub case: RepairCase,
    /// Effectiveness, generalization, specificity, size, time.
    pub metrics: RepairMetrics,
    /// Targeting and edits per repaired token.
    pub steps: Vec<StepLog>,
}

/// The effective repairs all applied at once, at the end: what applying them one after another did.
#[derive(Debug, Clone, Serialize)]
pub struct Together {
    /// Repairs in the patch set (made in this run).
    pub applied: usize,
    /// Of their cases, how many are still right with every repair applied.
    pub still_right: usize,
    /// Unrelated prompts with every repair applied, against the model before this run.
    pub specificity: repair::Specificity,
}

/// The repairs and the patch set of the effective ones.
#[derive(Serialize)]
#[serde(transparent)]
pub struct RepairReport {
    /// Every case.
    pub results: Vec<CaseResult>,
    /// With several cases: the state with all of them applied, saved as together.json.
    #[serde(skip)]
    pub together: Option<Together>,
    /// The patch set (with the applied one first), saved as patches.ron.
    #[serde(skip)]
    pub patches: Option<PatchSet>,
    /// What each repair did, in words with the model's token texts.
    #[serde(skip)]
    pub narrative: Vec<String>,
}

/// Cases given directly, then those of a JSONL file.
pub(crate) fn given_cases(cases: &[RepairCase], file: Option<&Path>) -> Result<Vec<RepairCase>> {
    let mut all = cases.to_vec();
    if let Some(path) = file {
        all.extend(repair::load_user_cases(path)?);
    }
    Ok(all)
}

/// The patch set a repair builds on: the one saved at `apply`, applied to `model`, or an empty one.
pub(crate) fn starting_set(model: &Model, apply: Option<&Path>) -> Result<PatchSet> {
    match apply {
        Some(path) => {
            let set = PatchSet::load(path)?;
            set.apply(model)?;
            Ok(set)
        }
        None => Ok(PatchSet::new(ModelIdentity::of(model)?)),
    }
}

impl RepairSettings {
    /// The cases given and those of the file.
    pub fn all_cases(&self) -> Result<Vec<RepairCase>> {
        let cases = given_cases(&self.cases, self.cases_file.as_deref())?;
        if cases.is_empty() {
            return Err(ExperimentError::Spec("no repair cases: give a prompt and its desired text, or a file".into()));
        }
        Ok(cases)
    }
}

impl Operation for RepairSettings {
    type Report = RepairReport;

    /// Repairs every case on top of the earlier effective ones; the model is reverted to how it was afterwards.
    fn run(&self, model: &Model, context: &Context) -> Result<RepairReport> {
        let cases = self.all_cases()?;
        let mut patches = starting_set(model, self.apply.as_deref())?;
        let outcome = (|| -> Result<(Vec<CaseResult>, Vec<String>, Option<Together>)> {
            let mut repairer = repairer(model, super::repair_config_in_run(&self.config, context.out), self.unrelated)?;
            context.progress.begin("repairing", cases.len() as u64);
            let (mut results, mut narrative) = (Vec::new(), Vec::new());
            for case in &cases {
                context.progress.check()?;
                let (done, metrics) = repairer.repair_case(model, case, self.method)?;
                narrative.extend(describe(model, case, &done, &metrics));
                if metrics.effective {
                    patches.push(&done, Some(case.clone()), Some(metrics.clone()));
                } else {
                    done.revert(model)?;
                }
                results.push(CaseResult { case: case.clone(), metrics, steps: done.steps });
                context.progress.advance(1);
            }
            let kept: Vec<&RepairCase> = results.iter().filter(|r| r.metrics.effective).map(|r| &r.case).collect();
            let together = if cases.len() > 1 {
                let mut still_right = 0;
                for case in &kept {
                    still_right +=
                        usize::from(repair::check(model, &repair::Tokens::new(model, &case.example)?)?.correct());
                }
                Some(Together { applied: kept.len(), still_right, specificity: repairer.unrelated.compare(model)? })
            } else {
                None
            };
            Ok((results, narrative, together))
        })();
        patches.revert(model)?;
        let (results, mut narrative, together) = outcome?;
        narrative.push(format!("patch set: {} repairs", patches.patches.len()));
        if let Some(t) = &together {
            narrative.push(format!(
                "with all {} repairs applied one after another: {} of their cases still right, unrelated top-1 unchanged {:.4}, mean KL {:.2e}",
                t.applied, t.still_right, t.specificity.top1_unchanged, t.specificity.mean_kl
            ));
        }
        Ok(RepairReport { results, together, patches: Some(patches), narrative })
    }
}

/// A repair in words: the case, per token the top neurons and the edits, then the measurements.
fn describe(model: &Model, case: &RepairCase, done: &repair::Repair, metrics: &RepairMetrics) -> Vec<String> {
    let mut lines = vec![format!(
        "case {} ({}): {:?} -> {:?}",
        case.id,
        case.family,
        case.example.prompt.lines().last().unwrap_or(""),
        case.example.desired
    )];
    for step in &done.steps {
        lines.push(format!(
            "  token {} {:?}: model wrote {:?}, gap {:.2}; top neurons:",
            step.step,
            model.tokenizer.token_text(step.desired),
            model.tokenizer.token_text(step.wrong),
            step.gap_before
        ));
        for s in step.top.iter().take(5) {
            let attribution = s.attribution.map_or(String::new(), |a| format!(", attribution {a:+.3}"))
                + &s.selectivity.map_or(String::new(), |r| format!(", selectivity {r:.1}"));
            lines.push(format!(
                "    L{}.{}  activation {:+.3}  direct {:+.3}{attribution}",
                s.neuron.layer, s.neuron.index, s.activation, s.direct
            ));
        }
        for e in &step.edits {
            lines.push(format!(
                "    edited {} by {:.2}x its norm: margin {:.2}{}",
                e.target,
                e.relative_change,
                e.margin_after,
                if e.reached { "" } else { " (cap)" }
            ));
        }
    }
    if done.steps.is_empty() {
        // Methods without per-token steps (gated units, set solves): each desired token's margin, before and after.
        let margins: Vec<String> = done
            .margins_before
            .iter()
            .zip(&done.margins_after)
            .enumerate()
            .map(|(k, (before, after))| format!("token {k} {before:+.2} -> {after:+.2}"))
            .collect();
        lines.push(format!("  margins: {}", margins.join(", ")));
    }
    lines.push(format!(
        "  {}: fixed {}, variants fixed {}/{} (broken {}), unrelated top-1 unchanged {:.4}, mean KL {:.2e}, {} neurons, {:.2} s",
        done.method,
        metrics.effective,
        metrics.variants_fixed,
        metrics.variants_wrong_before,
        metrics.variants_broken,
        metrics.specificity.top1_unchanged,
        metrics.specificity.mean_kl,
        metrics.neurons_changed,
        metrics.seconds
    ));
    lines
}

impl Report for RepairReport {
    fn summary(&self) -> Vec<String> {
        self.narrative.clone()
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        let mut files = names(&["results.json"]);
        if let Some(together) = &self.together {
            write_json(dir, "together.json", together)?;
            files.push("together.json".into());
        }
        if let Some(patches) = &self.patches {
            patches.save(&dir.join("patches.ron"))?;
            files.extend(names(&["patches.ron", "patches.safetensors"]));
        }
        Ok(files)
    }
}
