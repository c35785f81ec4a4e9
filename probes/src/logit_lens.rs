//! The logit lens: read each layer's residual stream through the final norm and the unembedding, to see
//! what the model would predict if it stopped at that layer.

use models::tch::{Kind, Tensor};
use models::{HookPoint, Model, Result};
use serde::Serialize;

/// One predicted token with its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Token id.
    pub token: u32,
    /// Its text.
    pub text: String,
    /// Softmax probability.
    pub prob: f32,
}

/// Logit-lens read-outs of one prompt.
#[derive(Debug, Clone, Serialize)]
pub struct LogitLens {
    /// `top1[layer][position]`: the most likely next token after block `layer`.
    pub top1: Vec<Vec<Prediction>>,
    /// `final_top[position]`: the model's own top-k next tokens.
    pub final_top: Vec<Vec<Prediction>>,
}

/// The `k` most likely tokens of a logits vector `[vocab]`.
pub fn top_predictions(model: &Model, logits: &Tensor, k: usize) -> Result<Vec<Prediction>> {
    let probs = logits.to_kind(Kind::Float).softmax(-1, Kind::Float);
    let (values, indices) = probs.topk(k as i64, -1, true, true);
    let values: Vec<f32> = Vec::try_from(values.to_device(models::tch::Device::Cpu))?;
    let indices: Vec<i64> = Vec::try_from(indices.to_device(models::tch::Device::Cpu))?;
    Ok(indices
        .into_iter()
        .zip(values)
        .map(|(i, prob)| Prediction { token: i as u32, text: model.tokenizer.token_text(i as u32), prob })
        .collect())
}

/// Runs `ids` once and reads out every layer through the logit lens, plus the final top-`k`.
pub fn logit_lens(model: &Model, ids: &[u32], k: usize) -> Result<LogitLens> {
    let (logits, cache) = model.run_with_cache(ids, |p| matches!(p, HookPoint::ResidPost(_)))?;
    let _guard = models::tch::no_grad_guard();
    let seq = ids.len() as i64;
    let mut top1 = Vec::with_capacity(model.shape().n_layers);
    for layer in 0..model.shape().n_layers {
        let layer_logits = model.read_out(&cache.require(HookPoint::ResidPost(layer))?.squeeze_dim(0));
        top1.push(
            (0..seq)
                .map(|pos| Ok(top_predictions(model, &layer_logits.get(pos), 1)?.remove(0)))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    let final_top = (0..seq).map(|pos| top_predictions(model, &logits.get(pos), k)).collect::<Result<_>>()?;
    Ok(LogitLens { top1, final_top })
}

/// How early each layer's read-out is already right, over a corpus.
#[derive(Debug, Clone, Serialize)]
pub struct LensCurve {
    /// Positions read (each with a true next token).
    pub positions: usize,
    /// Per layer: fraction of positions whose logit-lens top-1 equals the model's final top-1.
    pub agrees_with_final: Vec<f64>,
    /// Per layer: fraction of positions whose logit-lens top-1 is the true next token.
    pub correct: Vec<f64>,
    /// Fraction of positions where the model's own top-1 is the true next token.
    pub final_correct: f64,
}

/// Runs the logit lens over the first `max_tokens` tokens of each document (the dynamic-inference question:
/// how many tokens are already right at layer 1?).
pub fn lens_over_corpus(
    model: &Model,
    documents: &[String],
    max_tokens: usize,
    progress: &dyn models::Progress,
) -> Result<LensCurve> {
    let layers = model.shape().n_layers;
    let (mut agree, mut correct, mut final_correct, mut positions) = (vec![0i64; layers], vec![0i64; layers], 0i64, 0);
    progress.begin("logit lens", documents.len() as u64);
    for text in documents {
        progress.check()?;
        let ids = model.encode_prefix(text, max_tokens)?;
        if ids.len() < 2 {
            progress.advance(1);
            continue;
        }
        let (logits, cache) = model.run_with_cache(&ids, |p| matches!(p, HookPoint::ResidPost(_)))?;
        let _guard = models::tch::no_grad_guard();
        let seq = ids.len() as i64 - 1;
        let next =
            Tensor::from_slice(&ids[1..].iter().map(|&t| i64::from(t)).collect::<Vec<_>>()).to_device(logits.device());
        let final_top = logits.narrow(0, 0, seq).argmax(-1, false);
        let count = |a: &Tensor, b: &Tensor| i64::try_from(a.eq_tensor(b).sum(Kind::Int64)).unwrap_or(0);
        final_correct += count(&final_top, &next);
        for layer in 0..layers {
            let resid = cache.require(HookPoint::ResidPost(layer))?.get(0).narrow(0, 0, seq);
            let top = model.read_out(&resid).argmax(-1, false);
            agree[layer] += count(&top, &final_top);
            correct[layer] += count(&top, &next);
        }
        positions += seq as usize;
        progress.advance(1);
    }
    let rate = |n: i64| n as f64 / positions.max(1) as f64;
    Ok(LensCurve {
        positions,
        agrees_with_final: agree.into_iter().map(rate).collect(),
        correct: correct.into_iter().map(rate).collect(),
        final_correct: rate(final_correct),
    })
}
