//! Steering with a feature: add the feature's decoder direction (at the point the dictionary writes) to the last
//! position of prompts and measure whether the tokens the direction promotes directly (its top tokens through the
//! unembedding) gain log-probability, against random directions of the same norm on the same tokens — the causal
//! check of [`crate::steering`], with a feature's direction instead of a probe's.

use models::tch::{Device, Kind, Tensor};
use models::{Edit, Hooks, Intervention, Model, Positions, Progress};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::dictionary::Dictionary;
use super::train::normal;
use crate::error::{ProbeError, Result};
use crate::steering::mean_sd;

/// Tokens a feature's direction promotes most, whose log-probabilities are measured.
pub const TARGET_TOKENS: i64 = 5;

/// One feature steered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureSteering {
    /// The feature.
    pub feature: usize,
    /// The tokens its direction promotes most through the unembedding.
    pub targets: Vec<String>,
    /// Mean over prompts of the targets' mean log-probability change along the feature's direction.
    pub feature_delta: f64,
    /// The same along random directions of the same norm (one per prompt).
    pub random_delta: f64,
}

/// Every feature steered, and the effect over all of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SteeringReport {
    /// The point the directions are added at.
    pub point: String,
    /// Norm of every added vector.
    pub norm: f64,
    /// Prompts per feature.
    pub prompts: usize,
    /// Per feature.
    pub features: Vec<FeatureSteering>,
    /// Mean over features and prompts of the change along features' directions.
    pub feature_delta: f64,
    /// ... along random directions.
    pub random_delta: f64,
    /// (feature mean − random mean) / pooled standard deviation, over every (feature, prompt) pair.
    pub effect_size: f64,
    /// Share of features whose mean change exceeds their random directions'.
    pub features_above_random: f64,
}

/// Mean log-probability of `targets` after the last of `ids`, with `add` added at the last position of `point`.
fn target_log_prob(
    model: &Model,
    dictionary: &Dictionary,
    ids: &[u32],
    add: Option<&Tensor>,
    targets: &Tensor,
) -> Result<f64> {
    let mut hooks = Hooks::default();
    if let Some(vector) = add {
        hooks.push(Intervention {
            point: dictionary.writes,
            positions: Positions::Only(vec![-1]),
            edit: Edit::Add(vector.to_kind(model.kind).to_device(model.device)),
        });
    }
    let logits = model.run_with_hooks(ids, &mut hooks)?;
    let log_probs = logits.get(ids.len() as i64 - 1).log_softmax(-1, Kind::Float).index_select(0, targets);
    Ok(log_probs.mean(Kind::Double).double_value(&[]))
}

/// Steers `prompts` with each of `features`, scaled to `norm`, against one random direction per prompt.
pub fn steer(
    model: &Model,
    dictionary: &Dictionary,
    features: &[usize],
    prompts: &[Vec<u32>],
    norm: f64,
    seed: u64,
    progress: &dyn Progress,
) -> Result<SteeringReport> {
    if features.is_empty() || prompts.is_empty() {
        return Err(ProbeError::InvalidInput("steering needs features and prompts".into()));
    }
    if let Some(&bad) = features.iter().find(|&&f| f as i64 >= dictionary.d_sae()) {
        return Err(ProbeError::InvalidInput(format!("feature {bad} of a dictionary of {}", dictionary.d_sae())));
    }
    if dictionary.d_out() != model.shape().d_model as i64 {
        return Err(ProbeError::InvalidInput("the dictionary does not write the residual stream's width".into()));
    }
    let _guard = models::tch::no_grad_guard();
    let unembedding = model.unembedding().to_kind(Kind::Float).to_device(Device::Cpu);
    let scaled = |v: Tensor| &v / v.norm().clamp_min(1e-12) * norm;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let randoms: Vec<Tensor> = prompts.iter().map(|_| scaled(normal(&[dictionary.d_out()], &mut rng))).collect();
    let (mut all_feature, mut all_random, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    progress.begin("steering with features", features.len() as u64);
    for &feature in features {
        progress.check()?;
        let direction = dictionary.w_dec.get(feature as i64).to_device(Device::Cpu);
        let (_, top) = unembedding.matmul(&direction).topk(TARGET_TOKENS, 0, true, true);
        let targets: Vec<i64> = Vec::try_from(&top).map_err(models::ModelError::from)?;
        let target_tensor = top.to_device(model.device);
        let (mut along, mut random) = (Vec::new(), Vec::new());
        for (ids, random_direction) in prompts.iter().zip(&randoms) {
            let unsteered = target_log_prob(model, dictionary, ids, None, &target_tensor)?;
            along.push(
                target_log_prob(model, dictionary, ids, Some(&scaled(direction.shallow_clone())), &target_tensor)?
                    - unsteered,
            );
            random.push(target_log_prob(model, dictionary, ids, Some(random_direction), &target_tensor)? - unsteered);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        rows.push(FeatureSteering {
            feature,
            targets: targets.iter().map(|&t| model.tokenizer.token_text(t as u32)).collect(),
            feature_delta: mean(&along),
            random_delta: mean(&random),
        });
        all_feature.extend(along);
        all_random.extend(random);
        progress.advance(1);
    }
    let (mean_feature, sd_feature) = mean_sd(&all_feature);
    let (mean_random, sd_random) = mean_sd(&all_random);
    let pooled = ((sd_feature.powi(2) + sd_random.powi(2)) / 2.0).sqrt().max(1e-12);
    let above = rows.iter().filter(|r| r.feature_delta > r.random_delta).count() as f64 / rows.len() as f64;
    Ok(SteeringReport {
        point: dictionary.writes.to_string(),
        norm,
        prompts: prompts.len(),
        features: rows,
        feature_delta: mean_feature,
        random_delta: mean_random,
        effect_size: (mean_feature - mean_random) / pooled,
        features_above_random: above,
    })
}
