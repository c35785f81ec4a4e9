//! A dictionary measured as SAELens's `run_evals` measures it, over held-out texts: sparsity (L0, dead and dense
//! features), reconstruction (explained variance, MSE, l2 ratio) and the downstream metrics with the dictionary
//! spliced into the forward pass: CE loss score `(CE_ablate − CE_spliced) / (CE_ablate − CE_clean)` with the written
//! point zeroed as the ablation, and KL score `(KL_ablate − KL_spliced) / KL_ablate` with KL to the clean output.
//! Each text's first position is left out as SAELens leaves out ignored tokens (see [`super::AfterFirstToken`]):
//! it keeps its activation in the spliced run, and neither the CE of the prediction made there, the KL there nor
//! its activations are counted; the ablation, as SAELens's, zeroes every position.

use models::tch::{Kind, Tensor};
use models::{Edit, Hooks, Intervention, Model, Positions, Progress};
use serde::{Deserialize, Serialize};

use super::dictionary::Dictionary;
use crate::error::{ProbeError, Result};

/// A feature active on more than this share of tokens counts as dense.
pub const DENSE_SHARE: f64 = 0.1;

/// The metrics, named as SAELens names them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DictionaryMetrics {
    /// Texts measured.
    pub texts: usize,
    /// Positions measured (every text's first left out).
    pub tokens: usize,
    /// Mean active features per token.
    pub l0: f64,
    /// Features never active over the tokens.
    pub dead_features: usize,
    /// Features active on more than [`DENSE_SHARE`] of the tokens.
    pub dense_features: usize,
    /// `1 − E‖y − ŷ‖² / (E‖y‖² − ‖E y‖²)` (SAELens's `explained_variance`).
    pub explained_variance: f64,
    /// `E‖y − ŷ‖²`, summed over the width, averaged over tokens.
    pub mse: f64,
    /// Mean `‖ŷ‖ / ‖y‖`.
    pub l2_ratio: f64,
    /// Mean next-token cross-entropy of the model as it is.
    pub ce_loss_without_sae: f64,
    /// ... with the dictionary's output in place of the written point's activation.
    pub ce_loss_with_sae: f64,
    /// ... with the written point zeroed.
    pub ce_loss_with_ablation: f64,
    /// Share of the ablation's CE increase the dictionary recovers.
    pub ce_loss_score: f64,
    /// Mean KL(clean ‖ spliced) over positions.
    pub kl_div_with_sae: f64,
    /// Mean KL(clean ‖ ablated).
    pub kl_div_with_ablation: f64,
    /// `(KL_ablate − KL_spliced) / KL_ablate`.
    pub kl_div_score: f64,
    /// Share of tokens each feature is active on.
    pub feature_density: Vec<f64>,
}

/// Sums over texts.
#[derive(Default)]
struct Sums {
    texts: usize,
    tokens: usize,
    active: f64,
    residual: f64,
    squared_norm: f64,
    sum: Option<Tensor>,
    l2_ratio: f64,
    predictions: usize,
    ce: [f64; 3],
    kl: [f64; 2],
    fired: Option<Tensor>,
}

/// Measures `dictionary` on `model` over `texts` (each cut to its first `max_tokens` tokens; texts of fewer than 3
/// tokens are skipped).
pub fn evaluate(
    model: &Model,
    dictionary: &Dictionary,
    texts: &[String],
    max_tokens: usize,
    progress: &dyn Progress,
) -> Result<DictionaryMetrics> {
    dictionary.check()?;
    let n_layers = model.shape().n_layers;
    dictionary.reads.check(n_layers)?;
    dictionary.writes.check(n_layers)?;
    let dictionary = dictionary.to_device(model.device);
    let _guard = models::tch::no_grad_guard();
    let mut sums = Sums::default();
    progress.begin("measuring the dictionary", texts.len() as u64);
    for text in texts {
        progress.check()?;
        let ids = model.encode_prefix(text, max_tokens)?;
        if ids.len() >= 3 {
            measure_text(model, &dictionary, &ids, &mut sums)?;
        }
        progress.advance(1);
    }
    if sums.tokens == 0 {
        return Err(ProbeError::InvalidInput("no text has 3 tokens to measure the dictionary on".into()));
    }
    let n = sums.tokens as f64;
    let mean = sums.sum.as_ref().map_or(0.0, |s| (s / n).square().sum(Kind::Double).double_value(&[]));
    let variance = sums.squared_norm / n - mean;
    let mse = sums.residual / n;
    let p = sums.predictions as f64;
    let [ce_clean, ce_spliced, ce_ablated] = sums.ce.map(|c| c / p);
    let [kl_spliced, kl_ablated] = sums.kl.map(|k| k / n);
    let feature_density: Vec<f64> = sums
        .fired
        .as_ref()
        .map(|f| Vec::<f64>::try_from(f.to_kind(Kind::Double) / n).unwrap_or_default())
        .unwrap_or_default();
    Ok(DictionaryMetrics {
        texts: sums.texts,
        tokens: sums.tokens,
        l0: sums.active / n,
        dead_features: feature_density.iter().filter(|&&d| d == 0.0).count(),
        dense_features: feature_density.iter().filter(|&&d| d > DENSE_SHARE).count(),
        explained_variance: 1.0 - mse / variance,
        mse,
        l2_ratio: sums.l2_ratio / n,
        ce_loss_without_sae: ce_clean,
        ce_loss_with_sae: ce_spliced,
        ce_loss_with_ablation: ce_ablated,
        ce_loss_score: (ce_ablated - ce_spliced) / (ce_ablated - ce_clean),
        kl_div_with_sae: kl_spliced,
        kl_div_with_ablation: kl_ablated,
        kl_div_score: (kl_ablated - kl_spliced) / kl_ablated,
        feature_density,
    })
}

/// Adds one text's clean, spliced and ablated runs to `sums`.
fn measure_text(model: &Model, dictionary: &Dictionary, ids: &[u32], sums: &mut Sums) -> Result<()> {
    let (reads, writes) = (dictionary.reads, dictionary.writes);
    let mut clean = Hooks::recording(move |p| p == reads || p == writes);
    let clean_logits = model.run_with_hooks(ids, &mut clean)?;
    let after_first = |t: &Tensor| t.squeeze_dim(0).narrow(0, 1, ids.len() as i64 - 1).to_kind(Kind::Float);
    let x = after_first(clean.cache.require(reads)?);
    let y = after_first(clean.cache.require(writes)?);
    let features = dictionary.encode(&x);
    let out = dictionary.reconstruct(&x);
    let active = features.ne(0.0);
    sums.active += active.sum(Kind::Double).double_value(&[]);
    let fired = active.sum_dim_intlist(0, false, Kind::Int64);
    sums.fired = Some(sums.fired.take().map_or(fired.shallow_clone(), |f| f + &fired));
    sums.residual += (&out - &y).square().sum(Kind::Double).double_value(&[]);
    sums.squared_norm += y.square().sum(Kind::Double).double_value(&[]);
    let column_sum = y.sum_dim_intlist(0, false, Kind::Double);
    sums.sum = Some(sums.sum.take().map_or(column_sum.shallow_clone(), |s| s + &column_sum));
    let y_norm = y.norm_scalaropt_dim(2, [-1], false);
    let y_norm = y_norm.where_self(&y_norm.abs().ge(1e-4), &y_norm.ones_like());
    sums.l2_ratio += (out.norm_scalaropt_dim(2, [-1], false) / y_norm).sum(Kind::Double).double_value(&[]);

    let later: Vec<i64> = (1..ids.len() as i64).collect();
    let spliced = Intervention { positions: Positions::Only(later), ..dictionary.splice() };
    let spliced_logits = model.run_with_hooks(ids, &mut Hooks::default().with(spliced))?;
    let ablation = Intervention { point: writes, positions: Positions::All, edit: Edit::ZeroAblate(None) };
    let ablated_logits = model.run_with_hooks(ids, &mut Hooks::default().with(ablation))?;

    // Predictions made at positions 1..n-1 of tokens 2..n.
    let n = ids.len() as i64;
    let next: Vec<i64> = ids[2..].iter().map(|&t| i64::from(t)).collect();
    let next = Tensor::from_slice(&next).to_device(clean_logits.device()).unsqueeze(-1);
    let ce = |logits: &Tensor| {
        -logits
            .narrow(0, 1, n - 2)
            .log_softmax(-1, Kind::Double)
            .gather(-1, &next, false)
            .sum(Kind::Double)
            .double_value(&[])
    };
    let clean_log = clean_logits.narrow(0, 1, n - 1).log_softmax(-1, Kind::Double);
    let kl = |logits: &Tensor| {
        let new_log = logits.narrow(0, 1, n - 1).log_softmax(-1, Kind::Double);
        (clean_log.exp() * (&clean_log - new_log)).sum(Kind::Double).double_value(&[])
    };
    sums.ce[0] += ce(&clean_logits);
    sums.ce[1] += ce(&spliced_logits);
    sums.ce[2] += ce(&ablated_logits);
    sums.kl[0] += kl(&spliced_logits);
    sums.kl[1] += kl(&ablated_logits);
    sums.predictions += (n - 2) as usize;
    sums.tokens += (n - 1) as usize;
    sums.texts += 1;
    Ok(())
}
