//! Everything the prompt inspector shows about one prompt, read in one place: its tokens, the logit lens, every
//! layer's attention patterns and MLP neuron activations.

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Model};
use serde::Serialize;

use crate::error::{ProbeError, Result};
use crate::logit_lens::{logit_lens, LogitLens};

/// One prompt seen from the inside.
#[derive(Debug, Clone, Serialize)]
pub struct PromptInspection {
    /// Token ids of the prompt.
    pub ids: Vec<u32>,
    /// Their texts.
    pub tokens: Vec<String>,
    /// The logit lens (per layer and position) and the model's own top-k next tokens.
    pub lens: LogitLens,
    /// `attention[layer][head][query][key]`: attention probabilities.
    pub attention: Vec<Vec<Vec<Vec<f32>>>>,
    /// `neurons[layer][position][neuron]`: MLP neuron activations (`mlp.hook_post`).
    pub neurons: Vec<Vec<Vec<f32>>>,
}

/// A unit (a neuron on `mlp.hook_post`, or a dictionary's feature) with its activation at one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UnitActivation {
    /// Its index.
    pub index: usize,
    /// Its activation.
    pub activation: f32,
}

fn to_nested<T>(tensor: &Tensor) -> Result<T>
where
    T: TryFrom<Tensor, Error = models::tch::TchError>,
{
    T::try_from(tensor.to_kind(Kind::Float).to_device(Device::Cpu)).map_err(|e| ProbeError::Model(e.into()))
}

/// Runs `text` through the model and reads the logit lens (top-`k` next tokens), attention patterns and
/// neuron activations of every layer.
pub fn inspect_prompt(model: &Model, text: &str, k: usize) -> Result<PromptInspection> {
    let ids = model.encode(text)?;
    let lens = logit_lens(model, &ids, k)?;
    let (_, cache) = model.run_with_cache(&ids, |p| matches!(p, HookPoint::AttnPattern(_) | HookPoint::MlpPost(_)))?;
    let n_layers = model.shape().n_layers;
    let mut attention = Vec::with_capacity(n_layers);
    let mut neurons = Vec::with_capacity(n_layers);
    for layer in 0..n_layers {
        attention.push(to_nested(&cache.require(HookPoint::AttnPattern(layer))?.squeeze_dim(0))?);
        neurons.push(to_nested(&cache.require(HookPoint::MlpPost(layer))?.squeeze_dim(0))?);
    }
    let tokens = ids.iter().map(|&id| model.tokenizer.token_text(id)).collect();
    Ok(PromptInspection { ids, tokens, lens, attention, neurons })
}

impl PromptInspection {
    /// The `count` neurons of `layer` with the largest absolute activation at `position`, strongest first.
    pub fn top_neurons(&self, layer: usize, position: usize, count: usize) -> Vec<UnitActivation> {
        self.neurons.get(layer).and_then(|l| l.get(position)).map_or_else(Vec::new, |row| strongest(row, count))
    }
}

/// The `count` units of `row` (activations of one position) with the largest absolute activation, strongest first.
pub fn strongest(row: &[f32], count: usize) -> Vec<UnitActivation> {
    let mut all: Vec<UnitActivation> =
        row.iter().enumerate().map(|(index, &activation)| UnitActivation { index, activation }).collect();
    all.sort_by(|a, b| b.activation.abs().total_cmp(&a.activation.abs()));
    all.truncate(count);
    all
}
