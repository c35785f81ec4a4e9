//! Code benchmarks on held-out real code: line completion (greedy next line after a context of N tokens; exact
//! match and edit similarity) and perplexity with next-token accuracy, over a fixed list of CPython
//! standard-library files.

use models::tch::{Device, Kind, Tensor};
use models::{GenerationConfig, Model, Progress};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The held-out files: CPython standard-library files 100 to 100 + `count` (at most 23) of the sorted 2-40 KB list (the
/// probes read the first ones).
pub fn held_out_files(count: usize) -> Result<Vec<String>> {
    let files = probes::corpus::stdlib_files(100 + count)?;
    files[100..].iter().map(|p| Ok(std::fs::read_to_string(p).map_err(models::files::at(p))?)).collect()
}

/// Document `index` of `documents`, or an error naming it when there is no such document.
pub fn held_out(documents: &[String], index: usize) -> Result<&str> {
    documents
        .get(index)
        .map(String::as_str)
        .ok_or_else(|| crate::ExperimentError::Data(format!("held-out file {index} asked for, of {}", documents.len())))
}

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// 1 - distance / longer length (1 for two empty strings).
pub fn edit_similarity(a: &str, b: &str) -> f64 {
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        1.0
    } else {
        1.0 - edit_distance(a, b) as f64 / longest as f64
    }
}

/// One line to complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineCase {
    /// File number in the held-out list.
    pub file: usize,
    /// The true line (without its newline).
    pub expected: String,
    /// The model's line.
    pub predicted: String,
}

/// Line-completion results.
#[derive(Debug, Clone, Serialize)]
pub struct LineReport {
    /// Context tokens before each line.
    pub context_tokens: usize,
    /// Fraction of lines predicted exactly (leading and trailing spaces ignored).
    pub exact_match: f64,
    /// Mean edit similarity.
    pub edit_similarity: f64,
    /// Every case.
    pub cases: Vec<LineCase>,
}

/// For each document, `per_file` lines that start after `context` tokens (evenly spread over the rest of the
/// file, non-blank): the model greedily writes the next line from the preceding `context` tokens.
pub fn line_completion(
    model: &Model,
    documents: &[String],
    context: usize,
    per_file: usize,
    progress: &dyn Progress,
) -> Result<LineReport> {
    progress.begin("line completion", documents.len() as u64);
    let mut cases = Vec::new();
    for (file, text) in documents.iter().enumerate() {
        progress.check()?;
        cases.extend(file_lines(model, file, text, context, per_file)?);
        progress.advance(1);
    }
    Ok(LineReport::of(context, cases))
}

/// The line cases of one document (number `file` of the held-out list), as [`line_completion`] picks them.
pub fn file_lines(model: &Model, file: usize, text: &str, context: usize, per_file: usize) -> Result<Vec<LineCase>> {
    let (ids, spans) = model.tokenizer.encode_with_offsets(text)?;
    // Token positions that begin a non-blank line, after enough context.
    let starts: Vec<usize> = (context..ids.len())
        .filter(|&i| {
            spans[i].0 > 0
                && text.as_bytes()[spans[i].0 - 1] == b'\n'
                && text[spans[i].0..].lines().next().is_some_and(|l| !l.trim().is_empty())
        })
        .collect();
    let chosen: Vec<usize> =
        (0..per_file.min(starts.len())).map(|k| starts[k * starts.len() / per_file.min(starts.len()).max(1)]).collect();
    let prompts: Vec<Vec<u32>> = chosen.iter().map(|&i| ids[i - context..i].to_vec()).collect();
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    let config =
        GenerationConfig { stop_sequences: vec!["\n".into()], stop_at_eos: true, ..GenerationConfig::greedy(48) };
    let generated = model.generate(&prompts, &config, &mut models::Hooks::default())?;
    Ok(chosen
        .iter()
        .zip(generated)
        .map(|(&i, g)| LineCase {
            file,
            expected: text[spans[i].0..].lines().next().unwrap_or_default().to_string(),
            predicted: g.text,
        })
        .collect())
}

impl LineReport {
    /// The scores of `cases`, completed after `context` tokens.
    pub fn of(context: usize, cases: Vec<LineCase>) -> LineReport {
        let n = cases.len().max(1) as f64;
        LineReport {
            context_tokens: context,
            exact_match: cases.iter().filter(|c| c.expected.trim() == c.predicted.trim()).count() as f64 / n,
            edit_similarity: cases.iter().map(|c| edit_similarity(c.expected.trim(), c.predicted.trim())).sum::<f64>()
                / n,
            cases,
        }
    }
}

/// Perplexity and next-token accuracy.
#[derive(Debug, Clone, Serialize)]
pub struct PerplexityReport {
    /// Tokens predicted.
    pub tokens: usize,
    /// exp(mean negative log-likelihood).
    pub perplexity: f64,
    /// Fraction of tokens that are the model's top-1.
    pub next_token_accuracy: f64,
}

/// Perplexity over the first `max_tokens` tokens of each document.
pub fn perplexity(
    model: &Model,
    documents: &[String],
    max_tokens: usize,
    progress: &dyn Progress,
) -> Result<PerplexityReport> {
    progress.begin("perplexity", documents.len() as u64);
    let mut files = Vec::with_capacity(documents.len());
    for text in documents {
        progress.check()?;
        files.push(file_likelihood(model, text, max_tokens)?);
        progress.advance(1);
    }
    Ok(PerplexityReport::of(&files))
}

/// What one document adds to a perplexity: its tokens' summed negative log-likelihood, how many of them are the
/// model's top-1, and how many were predicted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FileLikelihood {
    /// Summed negative log-likelihood of the predicted tokens.
    pub nll: f64,
    /// Predicted tokens that are the model's top-1.
    pub hits: i64,
    /// Tokens predicted.
    pub tokens: usize,
}

/// The likelihood of the first `max_tokens` tokens of `text` (nothing predicted when it has fewer than 2).
pub fn file_likelihood(model: &Model, text: &str, max_tokens: usize) -> Result<FileLikelihood> {
    let ids = model.encode_prefix(text, max_tokens)?;
    if ids.len() < 2 {
        return Ok(FileLikelihood { nll: 0.0, hits: 0, tokens: 0 });
    }
    let logits = model.logits(&ids)?;
    let _guard = models::tch::no_grad_guard();
    let n = ids.len() as i64 - 1;
    let next =
        Tensor::from_slice(&ids[1..].iter().map(|&t| i64::from(t)).collect::<Vec<_>>()).to_device(logits.device());
    let log_p = logits.narrow(0, 0, n).log_softmax(-1, Kind::Float);
    let nll = -f64::try_from(log_p.gather(1, &next.unsqueeze(1), false).sum(Kind::Double))
        .map_err(models::ModelError::from)?;
    let hits =
        i64::try_from(log_p.argmax(-1, false).eq_tensor(&next).sum(Kind::Int64)).map_err(models::ModelError::from)?;
    Ok(FileLikelihood { nll, hits, tokens: n as usize })
}

/// How often two models agree on the next token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Positions compared.
    pub tokens: usize,
    /// Positions where both models' top-1 token is the same.
    pub agreeing: usize,
}

impl Agreement {
    /// The fraction of positions that agree (0 when none were compared).
    pub fn rate(&self) -> f64 {
        self.agreeing as f64 / self.tokens.max(1) as f64
    }
}

/// The top-1 agreement of `other` with `reference` at every position of the first `max_tokens` tokens of each
/// document (e.g. an int8 or bf16 model against its f32 original; both must share a tokenizer).
pub fn top1_agreement(reference: &Model, other: &Model, documents: &[String], max_tokens: usize) -> Result<Agreement> {
    let mut agreement = Agreement { tokens: 0, agreeing: 0 };
    for text in documents {
        let ids = reference.encode_prefix(text, max_tokens)?;
        let top1 =
            |model: &Model| -> Result<Tensor> { Ok(model.logits(&ids)?.argmax(-1, false).to_device(Device::Cpu)) };
        let same = top1(reference)?.eq_tensor(&top1(other)?).sum(Kind::Int64);
        agreement.agreeing += i64::try_from(same).map_err(models::ModelError::from)? as usize;
        agreement.tokens += ids.len();
    }
    Ok(agreement)
}

impl PerplexityReport {
    /// The perplexity over `files`, in order.
    pub fn of(files: &[FileLikelihood]) -> PerplexityReport {
        let (mut nll, mut hits, mut tokens) = (0.0, 0i64, 0usize);
        for file in files {
            nll += file.nll;
            hits += file.hits;
            tokens += file.tokens;
        }
        let n = tokens.max(1) as f64;
        PerplexityReport { tokens, perplexity: (nll / n).exp(), next_token_accuracy: hits as f64 / n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_by_hand() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        assert!((edit_similarity("return x", "return y") - 7.0 / 8.0).abs() < 1e-12);
        assert_eq!(edit_similarity("", ""), 1.0);
    }
}
