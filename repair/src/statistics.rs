//! Statistics of MLP neurons over unrelated text: how strongly each neuron fires there (for selective targeting),
//! and the covariance of the down projections' inputs (the "keys" of the key-value view of an MLP) for the
//! rank-one baseline: C = E[k kᵀ] per layer, regularized and inverted once.

use std::collections::HashMap;

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Model};

use crate::error::{RepairError, Result};

/// Per-layer inverse key covariances, computed when first asked for.
pub struct KeyStatistics {
    prompts: Vec<Vec<u32>>,
    inverses: HashMap<usize, Tensor>,
}

impl KeyStatistics {
    /// Key statistics over `prompts` (token ids of unrelated text).
    pub fn new(prompts: Vec<Vec<u32>>) -> Result<Self> {
        if prompts.is_empty() {
            return Err(RepairError::Settings("key statistics need at least one prompt".into()));
        }
        Ok(KeyStatistics { prompts, inverses: HashMap::new() })
    }

    /// (E[k kᵀ] + λI)⁻¹ of `layer`'s `mlp.hook_post`, `[d_mlp, d_mlp]` f32 on the CPU, with λ one percent of the
    /// mean eigenvalue.
    pub fn inverse_covariance(&mut self, model: &Model, layer: usize) -> Result<&Tensor> {
        if !self.inverses.contains_key(&layer) {
            let d = model.shape().d_mlp as i64;
            let mut second_moment = Tensor::zeros([d, d], (Kind::Double, Device::Cpu));
            let mut count = 0i64;
            for ids in &self.prompts {
                let (_, cache) = model.run_with_cache(ids, move |p| p == HookPoint::MlpPost(layer))?;
                let keys = cache
                    .get_named(&HookPoint::MlpPost(layer).to_string())?
                    .get(0)
                    .to_kind(Kind::Double)
                    .to_device(Device::Cpu);
                second_moment += keys.tr().matmul(&keys);
                count += keys.size()[0];
            }
            let covariance = second_moment / count as f64;
            let ridge = 0.01 * f64::try_from(covariance.trace())? / d as f64;
            let regularized = covariance + Tensor::eye(d, (Kind::Double, Device::Cpu)) * ridge.max(1e-8);
            self.inverses.insert(layer, regularized.inverse().to_kind(Kind::Float));
        }
        Ok(&self.inverses[&layer])
    }
}

/// Root-mean-square activation of every neuron over `prompts`, `[n_layers, d_mlp]` f32 on the model's device:
/// how much a neuron fires on text a repair should leave alone.
pub fn activation_rms(model: &Model, prompts: &[Vec<u32>]) -> Result<Tensor> {
    let shape = model.shape();
    let squares = Tensor::zeros([shape.n_layers as i64, shape.d_mlp as i64], (Kind::Float, model.device));
    let mut count = 0i64;
    for ids in prompts {
        let (_, cache) = model.run_with_cache(ids, |p| matches!(p, HookPoint::MlpPost(_)))?;
        for l in 0..shape.n_layers {
            let post = cache.get_named(&HookPoint::MlpPost(l).to_string())?.get(0).to_kind(Kind::Float);
            let mut row = squares.get(l as i64);
            row += post.square().sum_dim_intlist(0, false, Kind::Float);
        }
        count += ids.len() as i64;
    }
    if count == 0 {
        return Err(RepairError::Settings("activation statistics need at least one prompt".into()));
    }
    Ok((squares / count as f64).sqrt())
}
