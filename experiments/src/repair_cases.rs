//! Repair cases mined from real failures of the loaded model, in four bug families, each case with held-out
//! variants of the same bug:
//! - `api`: cloze prompts cut from real `module.attr` uses in CPython whose attribute the model gets wrong;
//!   variants are other real lines using the same attribute and the line moved into a function body;
//! - `line`: lines of held-out CPython files the model does not write (one or two wrong tokens, teacher-forced);
//!   variants read a shorter context;
//! - `humaneval`: the first token of a canonical solution the model does not predict, with the rest of its line;
//!   variants rename the function or add a comment line on top;
//! - `user`: cases from a JSONL file (see [`repair::load_user_cases`]).

use std::collections::BTreeMap;

use models::Model;
use repair::{check, Example, RepairCase, Tokens};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::humaneval::Problem;

/// How many cases of each family to mine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinedCases {
    /// API-name cases.
    pub api: usize,
    /// Line-completion cases.
    pub lines: usize,
    /// HumanEval cases.
    pub humaneval: usize,
    /// Context tokens before a line case.
    pub line_context: usize,
    /// Longest desired continuation (tokens) of line and HumanEval cases.
    pub max_desired_tokens: usize,
}

impl Default for MinedCases {
    fn default() -> Self {
        MinedCases { api: 0, lines: 0, humaneval: 0, line_context: 96, max_desired_tokens: 6 }
    }
}

impl MinedCases {
    /// Mines the cases: API names first, then lines, then HumanEval.
    pub fn mine(&self, model: &Model) -> Result<Vec<RepairCase>> {
        let mut cases = api_cases(model, self.api)?;
        cases.extend(line_cases(model, self.lines, self.line_context, self.max_desired_tokens)?);
        if self.humaneval > 0 {
            let problems = crate::humaneval::default_problems()?;
            cases.extend(humaneval_cases(model, &problems, self.humaneval, self.max_desired_tokens)?);
        }
        Ok(cases)
    }
}

/// Whether the model does not write `example`'s continuation, and how many of its tokens are wrong.
fn wrong_tokens(model: &Model, example: &Example) -> Result<Option<usize>> {
    let Ok(tokens) = Tokens::new(model, example) else { return Ok(None) };
    let wrong = check(model, &tokens)?.margins.iter().filter(|&&m| m < 0.0).count();
    Ok((wrong > 0).then_some(wrong))
}

/// Up to `count` API cases (at most two per module) where the model's top-1 attribute token is wrong.
pub fn api_cases(model: &Model, count: usize) -> Result<Vec<RepairCase>> {
    let stdlib = models::catalogue::data_dir().join("cpython-stdlib");
    let cloze = probes::tasks::api_cloze::cloze_cases(model, &stdlib, 3000, 40)?;
    let mut uses: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for c in cloze {
        uses.entry((c.module, c.attribute)).or_default().push(c.prompt);
    }
    let mut per_module: BTreeMap<&str, usize> = BTreeMap::new();
    let mut cases = Vec::new();
    for ((module, attribute), prompts) in &uses {
        let taken = per_module.entry(module).or_default();
        if cases.len() >= count || *taken >= 2 {
            continue;
        }
        let example = Example { prompt: prompts[0].clone(), desired: attribute.clone() };
        if wrong_tokens(model, &example)?.is_none() {
            continue;
        }
        let line = prompts[0].split_once('\n').map_or("", |(_, l)| l);
        let mut variants: Vec<Example> =
            prompts[1..].iter().take(2).map(|p| Example { prompt: p.clone(), desired: attribute.clone() }).collect();
        variants.push(Example {
            prompt: format!("import {module}\n\n\ndef main():\n    {line}"),
            desired: attribute.clone(),
        });
        *taken += 1;
        cases.push(RepairCase { family: "api".into(), id: format!("{module}.{attribute}"), example, variants });
    }
    Ok(cases)
}

/// Up to `count` lines of the held-out CPython files (at most two per file) of at most `max_tokens` tokens that
/// the model gets wrong in one or two tokens after `context` tokens.
pub fn line_cases(model: &Model, count: usize, context: usize, max_tokens: usize) -> Result<Vec<RepairCase>> {
    let mut cases = Vec::new();
    for (file, text) in crate::code_metrics::held_out_files(23)?.iter().enumerate() {
        let (ids, spans) = model.tokenizer.encode_with_offsets(text)?;
        let (mut taken, mut tried) = (0, 0);
        for i in context..ids.len() {
            if cases.len() >= count || taken >= 2 || tried >= 30 {
                break;
            }
            let start = spans[i].0;
            if start == 0 || text.as_bytes()[start - 1] != b'\n' {
                continue;
            }
            let line = text[start..].lines().next().unwrap_or_default();
            if line.trim().len() < 4 || model.tokenizer.encode(line, false)?.len() > max_tokens {
                continue;
            }
            let prompt_at = |tokens: usize| text[spans[i - tokens].0..start].to_string();
            let example = Example { prompt: prompt_at(context), desired: line.to_string() };
            tried += 1;
            if !matches!(wrong_tokens(model, &example)?, Some(1..=2)) {
                continue;
            }
            let variants: Vec<Example> = [context / 2, context / 4]
                .into_iter()
                .map(|c| Example { prompt: prompt_at(c), desired: line.to_string() })
                .collect();
            taken += 1;
            cases.push(RepairCase {
                family: "line".into(),
                id: format!("file{}-token{i}", 100 + file),
                example,
                variants,
            });
        }
    }
    Ok(cases)
}

/// Up to `count` HumanEval cases: the canonical solution teacher-forced after the prompt; the first token the
/// model does not predict, with the rest of its line (at most `max_tokens` tokens), is the desired continuation.
pub fn humaneval_cases(
    model: &Model,
    problems: &[Problem],
    count: usize,
    max_tokens: usize,
) -> Result<Vec<RepairCase>> {
    let mut cases = Vec::new();
    for problem in problems {
        if cases.len() >= count {
            break;
        }
        let (solution_ids, spans) = model.tokenizer.encode_with_offsets(&problem.canonical_solution)?;
        let full = Example { prompt: problem.prompt.clone(), desired: problem.canonical_solution.clone() };
        let Ok(tokens) = Tokens::new(model, &full) else { continue };
        if tokens.steps() != solution_ids.len() {
            continue;
        }
        let Some(first) = check(model, &tokens)?.first_below(0.0) else { continue };
        let solution = &problem.canonical_solution;
        let start = spans[first].0;
        let line_end = solution[start..].find('\n').map_or(solution.len(), |e| start + e);
        let end =
            spans.iter().skip(first).take(max_tokens).map(|s| s.1).filter(|&e| e <= line_end).max().unwrap_or(line_end);
        if end <= start || solution[start..end].trim().is_empty() {
            continue;
        }
        let example = Example {
            prompt: format!("{}{}", problem.prompt, &solution[..start]),
            desired: solution[start..end].to_string(),
        };
        if wrong_tokens(model, &example)?.is_none() {
            continue;
        }
        let renamed = format!("{}_impl", problem.entry_point);
        let variants = vec![
            Example {
                prompt: example.prompt.replace(&problem.entry_point, &renamed),
                desired: example.desired.replace(&problem.entry_point, &renamed),
            },
            Example { prompt: format!("# Solution\n{}", example.prompt), desired: example.desired.clone() },
        ];
        cases.push(RepairCase { family: "humaneval".into(), id: problem.task_id.clone(), example, variants });
    }
    Ok(cases)
}
