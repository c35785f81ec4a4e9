//! Neuron and feature pages: the top-activating examples of every unit of a layer over a code corpus (streaming
//! top-k in one pass), a description made from them, and its simulation score (OpenAI's automated
//! interpretability): predict each held-out token's activation from the description alone and correlate with the
//! real activations.

use std::collections::HashMap;
use std::path::Path;

use models::{Model, Progress};
use serde::{Deserialize, Serialize};

use crate::error::{FindError, Result};
use crate::session::Answer;
use crate::units::{Neurons, UnitKind, Units};

/// One top-activating place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Document.
    pub document: usize,
    /// Token position.
    pub position: usize,
    /// The activation there.
    pub activation: f32,
    /// Tokens around it.
    pub tokens: Vec<String>,
    /// The neuron's activation on each of them.
    pub activations: Vec<f32>,
    /// Which of `tokens` is the example's token.
    pub centre: usize,
}

/// Everything known about one neuron or feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitPage {
    /// Neuron or feature.
    #[serde(default)]
    pub kind: UnitKind,
    /// Layer.
    pub layer: usize,
    /// Index on `mlp.hook_post`, or among the dictionary's features.
    pub index: usize,
    /// Top-activating examples, strongest first.
    pub top: Vec<Example>,
    /// What the neuron responds to, from the examples.
    pub description: String,
    /// The tokens the description names.
    pub tokens: Vec<String>,
    /// Correlation of the description's predicted activations with the real ones on held-out text.
    pub simulation_score: f64,
    /// Held-out tokens the score is over.
    pub held_out_tokens: usize,
    /// The FIND interpreter's answer for the unit as a function of `x` written into a template, when asked for.
    #[serde(default)]
    pub interpretation: Option<Interpretation>,
}

/// What a FIND interpreter made of a unit as a function ([`crate::neurons`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interpretation {
    /// The template `x` was written into.
    pub template: String,
    /// Whether `x` was a number (else a token).
    pub numeric: bool,
    /// The interpreter's description, domain and code.
    pub answer: Answer,
    /// For a number: the NMSE of the answer's code against the unit itself on FIND's grid (x = i + 0.5, i in
    /// [-128, 128)), which FIND counts as right below 0.1; none for tokens and for code that does not run.
    #[serde(default)]
    pub nmse: Option<f64>,
    /// For a number: the correlation of the answer's code with the unit on that grid (its simulation score as a
    /// function, see [`crate::score::BlackBoxFit`]).
    #[serde(default)]
    pub simulation: Option<f64>,
}

fn token_texts(model: &Model, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&id| model.tokenizer.token_text(id)).collect()
}

/// Per token of a document, the activations of every unit.
fn unit_activations(model: &Model, units: &dyn Units, ids: &[u32]) -> Result<Vec<Vec<f32>>> {
    Vec::<Vec<f32>>::try_from(units.activations(model, ids)?).map_err(|e| FindError::Model(e.into()))
}

/// The `k` strongest examples of every unit over `documents` (first `max_tokens` tokens each), with `window`
/// tokens of context on each side, in one pass.
pub fn top_examples(
    model: &Model,
    units: &dyn Units,
    documents: &[String],
    max_tokens: usize,
    k: usize,
    window: usize,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Example>>> {
    units.check(model, 0)?;
    let mut top: Vec<Vec<Example>> = vec![Vec::new(); units.count(model)];
    progress.begin("top activations", documents.len() as u64);
    for (document, text) in documents.iter().enumerate() {
        progress.check()?;
        let ids = model.encode_prefix(text, max_tokens)?;
        if ids.is_empty() {
            continue;
        }
        let acts = unit_activations(model, units, &ids)?;
        let texts = token_texts(model, &ids);
        for (neuron, best) in top.iter_mut().enumerate() {
            let floor = if best.len() < k { f32::NEG_INFINITY } else { best[k - 1].activation };
            for (position, row) in acts.iter().enumerate() {
                if row[neuron] <= floor
                    || best.iter().any(|e| e.document == document && e.position.abs_diff(position) <= window)
                {
                    continue;
                }
                let (from, to) = (position.saturating_sub(window), (position + window + 1).min(ids.len()));
                let example = Example {
                    document,
                    position,
                    activation: row[neuron],
                    tokens: texts[from..to].to_vec(),
                    activations: acts[from..to].iter().map(|r| r[neuron]).collect(),
                    centre: position - from,
                };
                let at = best.iter().position(|e| e.activation < example.activation).unwrap_or(best.len());
                best.insert(at, example);
                best.truncate(k);
            }
        }
        progress.advance(1);
    }
    Ok(top)
}

/// A description from the examples: the tokens the neuron fires on most often among its top examples.
pub fn describe(examples: &[Example]) -> (String, Vec<String>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in examples {
        *counts.entry(e.tokens[e.centre].trim().to_string()).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let tokens: Vec<String> = ranked.iter().take(3).map(|(t, _)| t.clone()).collect();
    let covered: usize = ranked.iter().take(3).map(|(_, n)| n).sum();
    let quoted: Vec<String> = tokens.iter().map(|t| format!("`{t}`")).collect();
    (format!("fires on the tokens {} ({covered} of its {} top examples)", quoted.join(", "), examples.len()), tokens)
}

/// Pearson correlation (0 when either side is constant).
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let (va, vb): (f64, f64) = (a.iter().map(|x| (x - ma).powi(2)).sum(), b.iter().map(|y| (y - mb).powi(2)).sum());
    if va <= 0.0 || vb <= 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Pages for `neurons` of `layer` (see [`pages`]).
pub fn neuron_pages(
    model: &Model,
    layer: usize,
    neurons: &[usize],
    documents: &[String],
    held_out: &[String],
    max_tokens: usize,
    progress: &dyn Progress,
) -> Result<Vec<UnitPage>> {
    pages(model, &Neurons(layer), neurons, documents, held_out, max_tokens, progress)
}

/// Pages for units `indices` of `units`: top examples over `documents`, descriptions, and simulation scores over
/// `held_out` (the simulator predicts the unit's mean top activation on the named tokens and 0 elsewhere).
pub fn pages(
    model: &Model,
    units: &dyn Units,
    indices: &[usize],
    documents: &[String],
    held_out: &[String],
    max_tokens: usize,
    progress: &dyn Progress,
) -> Result<Vec<UnitPage>> {
    for &index in indices {
        units.check(model, index)?;
    }
    let top = top_examples(model, units, documents, max_tokens, 10, 8, progress)?;
    let mut pages: Vec<UnitPage> = indices
        .iter()
        .map(|&index| {
            let (description, tokens) = describe(&top[index]);
            UnitPage {
                kind: units.kind(),
                layer: units.layer(),
                index,
                top: top[index].clone(),
                description,
                tokens,
                simulation_score: 0.0,
                interpretation: None,
                held_out_tokens: 0,
            }
        })
        .collect();
    let (mut real, mut predicted): (Vec<Vec<f64>>, Vec<Vec<f64>>) =
        (vec![Vec::new(); pages.len()], vec![Vec::new(); pages.len()]);
    // The simulator's prediction on a named token: the neuron's mean top activation.
    let levels: Vec<f64> = pages
        .iter()
        .map(|page| page.top.iter().map(|e| f64::from(e.activation)).sum::<f64>() / page.top.len().max(1) as f64)
        .collect();
    for text in held_out {
        let ids = model.encode_prefix(text, max_tokens)?;
        if ids.is_empty() {
            continue;
        }
        let acts = unit_activations(model, units, &ids)?;
        let texts = token_texts(model, &ids);
        for (p, (page, &level)) in pages.iter().zip(&levels).enumerate() {
            for (row, token) in acts.iter().zip(&texts) {
                real[p].push(f64::from(row[page.index]));
                predicted[p].push(if page.tokens.iter().any(|t| t == token.trim()) { level } else { 0.0 });
            }
        }
    }
    for (p, page) in pages.iter_mut().enumerate() {
        page.simulation_score = correlation(&predicted[p], &real[p]);
        page.held_out_tokens = real[p].len();
    }
    Ok(pages)
}

fn shade(token: &str, activation: f32, max: f32) -> String {
    let alpha = if max > 0.0 { (activation / max).clamp(0.0, 1.0) } else { 0.0 };
    let text = token.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\n', "⏎");
    format!("<span style=\"background: rgba(255, 80, 0, {alpha:.2})\">{text}</span>")
}

impl UnitPage {
    /// The page as Markdown with inline HTML: tokens shaded by activation.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# {} {}.{}\n\n{}\n\nSimulation score (correlation on {} held-out tokens): {:.3}\n\n",
            self.kind.title(),
            self.layer,
            self.index,
            self.description,
            self.held_out_tokens,
            self.simulation_score
        );
        if let Some(found) = &self.interpretation {
            let input = if found.numeric { "a number" } else { "a token" };
            out.push_str(&format!(
                "As a function of {input} x in `{}` (FIND interpreter): {}; domain {}; `f(x) = {}`{}\n\n",
                found.template,
                found.answer.description,
                found.answer.domain,
                found.answer.code,
                found.nmse.map_or(String::new(), |nmse| format!(" (NMSE {nmse:.3} on FIND's grid)"))
            ));
        }
        out.push_str("## Top examples\n\n");
        let max = self.top.first().map_or(0.0, |e| e.activation);
        for e in &self.top {
            let shaded: String = e.tokens.iter().zip(&e.activations).map(|(t, &a)| shade(t, a, max)).collect();
            out.push_str(&format!(
                "- {:.3} (document {}, token {}): <code>{shaded}</code>\n",
                e.activation, e.document, e.position
            ));
        }
        out
    }

    /// The name of the page's files, without extension: `L{layer}N{index}` for a neuron, `L{layer}F{index}` for a
    /// feature.
    pub fn file_stem(&self) -> String {
        format!("L{}{}{}", self.layer, self.kind.letter(), self.index)
    }

    /// Writes the page's `.json` and `.md` into `dir` (atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(models::files::at(dir))?;
        let stem = dir.join(self.file_stem());
        let json = serde_json::to_string_pretty(self)?;
        models::files::write_atomically(&stem.with_extension("json"), json.as_bytes())?;
        models::files::write_atomically(&stem.with_extension("md"), self.to_markdown().as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_and_descriptions_by_hand() {
        assert!((correlation(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((correlation(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(correlation(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
        let example = |t: &str, a: f32| Example {
            document: 0,
            position: 0,
            activation: a,
            tokens: vec![t.into()],
            activations: vec![a],
            centre: 0,
        };
        let (text, tokens) = describe(&[example(" def", 3.0), example("def", 2.0), example(" class", 1.0)]);
        assert_eq!(tokens, ["def", "class"]);
        assert!(text.contains("`def`") && text.contains("3 of its 3"));
    }
}
