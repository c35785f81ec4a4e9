//! MINT as its authors' code runs it (shared/reference/MINT.md, "MINT as its authors' code runs it"), for a
//! side-by-side "as published" baseline. Per wrong desired token d (teacher-forced on the desired text), with w
//! the model's top competitor:
//! - the patch direction is τ = (B[d] − B[w]) / range(B[d] − B[w]) in the semantic basis B = pinv(W_Uᵀ) (B[t] is
//!   the residual direction whose unembedding is token t's one-hot), scaled to the range of the edited vector;
//! - the candidates are the top neurons by gradient × activation on the down projection's input, in the upper
//!   half of the layers;
//! - greedily, each remaining candidate's patch v ← (v + α τ) / (1 + α) is tried, and the one that most lowers
//!   p(w) − p(d) is kept, until d is the top-1 or the neuron budget is spent (the case is then "skipped": every
//!   change of it is reverted).
//!
//! The reference leaves α as "0.01 × a scale"; [`PublishedConfig::scale`] is that scale. Our gradient × activation
//! is that of the logit gap (logit_d − logit_w) rather than of p(d): the same ranking up to the softmax's factor
//! p(d) at this token.

use std::time::Instant;

use models::tch::{Device, Kind, Tensor};
use models::{Model, Neuron};
use serde::{Deserialize, Serialize};

use crate::case::{check, Tokens};
use crate::change::{revert_all, ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::method::{Method, Repair};
use crate::target::{target, Ranking};

/// Settings of the as-published MINT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PublishedConfig {
    /// Candidates per token, by gradient × activation.
    pub candidates: usize,
    /// Neurons patched per token before the case is skipped.
    pub max_neurons: usize,
    /// α = 0.01 × scale in the patch rule.
    pub scale: f64,
}

impl Default for PublishedConfig {
    fn default() -> Self {
        PublishedConfig { candidates: 10, max_neurons: 10, scale: 100.0 }
    }
}

/// The semantic basis B = pinv(W_Uᵀ) of one model, row by row: B[t] = W_U[t] (W_Uᵀ W_U)⁻¹ for a full-rank W_U.
/// Only the Gram matrix W_Uᵀ W_U (`[d_model, d_model]`, double) is kept; it is computed once per model.
pub struct SemanticBasis {
    gram: Tensor,
}

impl SemanticBasis {
    /// The basis of `model` (the product over the whole vocabulary, once).
    pub fn new(model: &Model) -> Self {
        let unembedding = model.unembedding().to_kind(Kind::Double).to_device(Device::Cpu);
        SemanticBasis { gram: unembedding.tr().matmul(&unembedding) }
    }

    /// B[t] for each of `tokens` (f32).
    fn rows(&self, model: &Model, tokens: &[u32]) -> Result<Vec<Tensor>> {
        tokens
            .iter()
            .map(|&t| {
                let row = model.unembedding().get(i64::from(t)).to_kind(Kind::Double).to_device(Device::Cpu);
                Ok(Tensor::linalg_solve(&self.gram, &row.unsqueeze(1), true).squeeze_dim(1).to_kind(Kind::Float))
            })
            .collect()
    }
}

/// p(w) − p(d) at the last position of `context`.
fn objective(model: &Model, context: &[u32], desired: u32, wrong: u32) -> Result<f64> {
    let _guard = models::tch::no_grad_guard();
    let probs = model.logits(context)?.get(-1).to_kind(Kind::Float).softmax(-1, Kind::Float);
    Ok(probs.double_value(&[i64::from(wrong)]) - probs.double_value(&[i64::from(desired)]))
}

fn range(t: &Tensor) -> f64 {
    (t.max() - t.min()).double_value(&[]).max(1e-12)
}

/// Repairs `tokens` as the authors' code does (see the module documentation); the changes stay applied when
/// every desired token ends up top-1, and are reverted (an empty repair: "skipped") otherwise. `basis` is
/// `model`'s.
pub fn published_repair(
    model: &Model,
    tokens: &Tokens,
    config: &PublishedConfig,
    basis: &SemanticBasis,
) -> Result<Repair> {
    if config.candidates == 0 || config.max_neurons == 0 || config.scale <= 0.0 {
        return Err(RepairError::Settings("candidates and max_neurons must be at least 1, scale positive".into()));
    }
    let start = Instant::now();
    let margins_before = check(model, tokens)?.margins;
    let alpha = 0.01 * config.scale;
    let upper_half = model.shape().n_layers / 2;
    let mut changes: Vec<WeightChange> = Vec::new();
    let mut skipped = false;
    for step in 0..tokens.steps() {
        let (context, desired) = (tokens.context(step), tokens.desired(step));
        let targeting = target(model, context, desired, true, None)?;
        if targeting.logit_gap > 0.0 {
            continue;
        }
        let wrong = targeting.wrong;
        let semantic = basis.rows(model, &[desired, wrong])?;
        let delta = &semantic[0] - &semantic[1];
        let tau = &delta / range(&delta);
        let scores = targeting.scores(Ranking::Attribution).abs().to_device(Device::Cpu);
        let d_mlp = scores.size()[1];
        let upper = scores.narrow(0, upper_half as i64, scores.size()[0] - upper_half as i64).flatten(0, -1);
        let (_, order) = upper.topk((config.candidates as i64).min(upper.numel() as i64), 0, true, true);
        let mut candidates: Vec<Neuron> = Vec::<i64>::try_from(order)?
            .into_iter()
            .map(|flat| Neuron { layer: upper_half + (flat / d_mlp) as usize, index: (flat % d_mlp) as usize })
            .collect();
        let patched = |neuron: Neuron| -> Result<Tensor> {
            let v = ChangeTarget::NeuronOutput(neuron).read(model)?;
            Ok((&v + &tau * (range(&v) * alpha)) / (1.0 + alpha))
        };
        let mut right = false;
        for _ in 0..config.max_neurons {
            let mut best: Option<(f64, usize)> = None;
            for (i, &neuron) in candidates.iter().enumerate() {
                let target = ChangeTarget::NeuronOutput(neuron);
                let old = target.read(model)?;
                target.write(model, &patched(neuron)?)?;
                let score = objective(model, context, desired, wrong);
                target.write(model, &old)?;
                let score = score?;
                if best.is_none_or(|(b, _)| score < b) {
                    best = Some((score, i));
                }
            }
            let Some((_, i)) = best else { break };
            let neuron = candidates.remove(i);
            let target = ChangeTarget::NeuronOutput(neuron);
            let old = target.read(model)?;
            let new = patched(neuron)?;
            target.write(model, &new)?;
            changes.push(WeightChange { target, old, new });
            if check(model, tokens)?.margins[step] > 0.0 {
                right = true;
                break;
            }
        }
        if !right {
            skipped = true;
            break;
        }
    }
    if skipped {
        revert_all(model, &changes)?;
        changes.clear();
    }
    let margins_after = check(model, tokens)?.margins;
    Ok(Repair {
        method: Method::MintPublished,
        changes,
        steps: Vec::new(),
        margins_before,
        margins_after,
        seconds: start.elapsed().as_secs_f64(),
    })
}
