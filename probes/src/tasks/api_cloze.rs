//! API-knowledge task (after Zhuo et al., "Pop Quiz! Do pre-trained code models possess knowledge of correct
//! API names?"): cloze prompts cut from real uses of standard-library modules in CPython's own code
//! (`import json\njson.` + the rest of a real line is masked), the answer being the real attribute, which the
//! module's source defines. Scored as top-k accuracy of the model's prediction of the attribute's first token,
//! at every layer through the logit lens and at the output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Model, Progress};
use serde::Serialize;

use crate::error::{ProbeError, Result};

/// One cloze question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClozeCase {
    /// The imported module.
    pub module: String,
    /// The attribute used at this place in CPython.
    pub attribute: String,
    /// `import {module}\n` and the start of the real line, ending in `{module}.`.
    pub prompt: String,
    /// The first token of the attribute after the prompt.
    pub target: u32,
}

/// Public top-level names (`def`, `class`, `NAME =`) of a module's source.
pub fn public_names(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("def ").or_else(|| line.strip_prefix("class ")).or(Some(line))?;
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let defined = line.starts_with("def ") || line.starts_with("class ") || {
                let after = rest[name.len()..].trim_start();
                after.starts_with('=') && !after.starts_with("==")
            };
            (defined && !name.is_empty() && !name.starts_with('_')).then_some(name)
        })
        .collect()
}

/// The source of a standard-library module (`{name}.py` or `{name}/__init__.py`).
fn module_source(stdlib: &Path, module: &str) -> Option<String> {
    std::fs::read_to_string(stdlib.join(format!("{module}.py")))
        .or_else(|_| std::fs::read_to_string(stdlib.join(module).join("__init__.py")))
        .ok()
}

/// Cloze cases from the top-level files of the standard library in `stdlib` (sorted by name): each `import m`
/// line, then each later `m.attr` where `attr` is a public name of `m`'s source. At most `per_module` cases per
/// module and `max_cases` in all; prompts that do not tokenize as a prefix of the full line are skipped.
pub fn cloze_cases(model: &Model, stdlib: &Path, max_cases: usize, per_module: usize) -> Result<Vec<ClozeCase>> {
    let read = std::fs::read_dir(stdlib).map_err(models::files::at(stdlib))?;
    let mut files: Vec<_> =
        read.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "py")).collect();
    files.sort();
    let mut names: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut cases = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let imported: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("import "))
            .filter(|m| m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        for module in imported {
            let public = names
                .entry(module.to_string())
                .or_insert_with(|| module_source(stdlib, module).map(|s| public_names(&s)));
            let Some(public) = public else { continue };
            let needle = format!("{module}.");
            for line in text.lines() {
                let line = line.trim_start();
                for (at, _) in line.match_indices(&needle) {
                    let before_ok =
                        at == 0 || !line[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.');
                    let after = &line[at + needle.len()..];
                    let attribute: String =
                        after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    let count = per.entry(module.to_string()).or_default();
                    if !before_ok || !public.contains(&attribute) || *count >= per_module || cases.len() >= max_cases {
                        continue;
                    }
                    let prompt = format!("import {module}\n{}", &line[..at + needle.len()]);
                    if !seen.insert(prompt.clone()) {
                        continue;
                    }
                    let prompt_ids = model.tokenizer.encode(&prompt, false)?;
                    let full_ids = model.tokenizer.encode(&format!("{prompt}{attribute}"), false)?;
                    if full_ids.len() > prompt_ids.len() && full_ids.starts_with(&prompt_ids) {
                        *count += 1;
                        cases.push(ClozeCase {
                            module: module.to_string(),
                            attribute,
                            prompt,
                            target: full_ids[prompt_ids.len()],
                        });
                    }
                }
            }
        }
    }
    Ok(cases)
}

/// Top-k accuracies at one read-out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopK {
    /// Layer (`None` for the model's output).
    pub layer: Option<usize>,
    /// Fraction of cases whose answer is the top-1 prediction.
    pub top1: f64,
    /// Fraction of cases whose answer is among the top 5.
    pub top5: f64,
    /// Fraction of cases whose answer is among the top 10.
    pub top10: f64,
}

/// The cloze quiz's results.
#[derive(Debug, Clone, Serialize)]
pub struct ClozeReport {
    /// Number of questions.
    pub cases: usize,
    /// Number of modules they cover.
    pub modules: usize,
    /// At the output.
    pub output: TopK,
    /// Through the logit lens after each block.
    pub per_layer: Vec<TopK>,
    /// Output top-1 accuracy per module.
    pub per_module: BTreeMap<String, f64>,
}

/// Asks every case; `rank[layer]` of the answer at every layer and at the output.
pub fn run_cloze(model: &Model, cases: &[ClozeCase], progress: &dyn Progress) -> Result<ClozeReport> {
    if cases.is_empty() {
        return Err(ProbeError::InvalidInput("no cloze cases".into()));
    }
    let layers = model.shape().n_layers;
    progress.begin("api cloze", cases.len() as u64);
    // ranks[c][l]: rank of case c's answer after block l (l = layers: the output).
    let mut ranks = Vec::with_capacity(cases.len());
    for case in cases {
        progress.check()?;
        let ids = model.tokenizer.encode(&case.prompt, false)?;
        let (logits, cache) = model.run_with_cache(&ids, |p| matches!(p, HookPoint::ResidPost(_)))?;
        let _guard = models::tch::no_grad_guard();
        let last = ids.len() as i64 - 1;
        let mut per_layer: Vec<Tensor> = (0..layers)
            .map(|l| Ok(model.read_out(&cache.require(HookPoint::ResidPost(l))?.get(0).get(last)).to_kind(Kind::Float)))
            .collect::<Result<_>>()?;
        per_layer.push(logits.get(last));
        let stacked = Tensor::stack(&per_layer, 0);
        let target = stacked.narrow(1, case.target as i64, 1);
        let rank = stacked.gt_tensor(&target).sum_dim_intlist(1, false, Kind::Int64).to_device(Device::Cpu);
        ranks.push(Vec::<i64>::try_from(rank).map_err(models::ModelError::from)?);
        progress.advance(1);
    }
    let n = cases.len() as f64;
    let top_k = |l: usize| {
        let within = |k: i64| ranks.iter().filter(|r| r[l] < k).count() as f64 / n;
        TopK { layer: (l < layers).then_some(l), top1: within(1), top5: within(5), top10: within(10) }
    };
    let mut per_module: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (case, rank) in cases.iter().zip(&ranks) {
        let entry = per_module.entry(case.module.clone()).or_default();
        entry.0 += usize::from(rank[layers] == 0);
        entry.1 += 1;
    }
    Ok(ClozeReport {
        cases: cases.len(),
        modules: per_module.len(),
        output: top_k(layers),
        per_layer: (0..layers).map(top_k).collect(),
        per_module: per_module.into_iter().map(|(m, (hit, all))| (m, hit as f64 / all as f64)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_names_are_top_level_definitions() {
        let source = "import os\ndef dumps(x):\n    y = 1\nclass JSONDecoder:\n    pass\n_private = 2\nVERSION = '1'\nif VERSION == '1':\n    pass\ndef _hidden(): pass\n";
        let names: Vec<String> = public_names(source).into_iter().collect();
        assert_eq!(names, ["JSONDecoder", "VERSION", "dumps"]);
    }
}
