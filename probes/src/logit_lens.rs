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
    let arch = model.arch();
    let seq = ids.len() as i64;
    let mut top1 = Vec::with_capacity(model.shape().n_layers);
    for layer in 0..model.shape().n_layers {
        let resid = cache.get(HookPoint::ResidPost(layer)).expect("recorded by the filter above").squeeze_dim(0);
        let layer_logits = arch.unembed(&arch.final_norm(&resid));
        top1.push(
            (0..seq)
                .map(|pos| Ok(top_predictions(model, &layer_logits.get(pos), 1)?.remove(0)))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    let final_top = (0..seq).map(|pos| top_predictions(model, &logits.get(pos), k)).collect::<Result<_>>()?;
    Ok(LogitLens { top1, final_top })
}
