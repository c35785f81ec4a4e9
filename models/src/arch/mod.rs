//! Architectures: one file each, sharing the [`Architecture`] trait, the KV cache and a few layers.

pub mod codegen;
pub mod decoder;
pub mod gpt2;
pub mod gpt_bigcode;
pub mod gpt_neox;
mod layers;
pub mod llama;
mod onednn;
pub mod qwen2;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

pub use layers::{AttentionMask, KvCache};

use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::gguf_weights::GgufWeights;
use crate::hooks::Hooks;
use crate::progress::Progress;

/// The architectures this runtime implements, by their `model_type` / GGUF `general.architecture`.
pub const SUPPORTED: &[&str] = &["llama", "qwen2", "gpt2", "gpt_bigcode", "codegen", "gpt_neox"];

/// Sizes of a loaded transformer, common to every architecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelShape {
    /// `model_type` of the architecture (`llama`, `gpt2` ...).
    pub architecture: String,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Residual stream width.
    pub d_model: usize,
    /// MLP neurons per layer (width of `mlp.hook_post`).
    pub d_mlp: usize,
    /// Attention query heads.
    pub n_heads: usize,
    /// Key/value heads (fewer than `n_heads` with grouped-query attention).
    pub n_kv_heads: usize,
    /// Width of one attention head.
    pub head_dim: usize,
    /// Vocabulary size (rows of the unembedding).
    pub vocab_size: usize,
    /// Longest sequence the model handles.
    pub context_length: usize,
    /// Whether the unembedding shares the token embedding's weights.
    pub tied_embeddings: bool,
}

/// One batch of token ids for a forward pass.
pub struct ForwardInput<'a> {
    /// Token ids `[batch, seq]` (int64).
    pub ids: &'a Tensor,
    /// Absolute position of each token `[batch, seq]` (int64); left padding shifts them per row.
    pub positions: &'a Tensor,
    /// Which keys each query may attend to.
    pub mask: &'a AttentionMask,
}

/// The weights that make up one layer's MLP neurons, in `nn.Linear` layout (`[out, in]`). The tensors
/// share storage with the model, so writing into them edits the model.
pub struct MlpWeights {
    /// Input projections whose row i feeds neuron i: `[gate, up]` for gated MLPs, `[fc_in]` otherwise.
    pub inputs: Vec<(String, Tensor)>,
    /// Output projection `[d_model, d_mlp]`; column i is neuron i's output vector.
    pub output: (String, Tensor),
}

/// What every architecture provides to the rest of the workbench.
pub trait Architecture: Send {
    /// Sizes of the model.
    fn shape(&self) -> &ModelShape;

    /// Embeds, runs every block and the final norm, calling `hooks` at each hook point; returns the final
    /// normalized residual `[batch, seq, d_model]`. With a cache, keys and values are appended to it.
    fn forward(&self, input: &ForwardInput, cache: Option<&mut KvCache>, hooks: &mut Hooks) -> Result<Tensor>;

    /// Applies the final norm to a residual-stream tensor (used by the logit lens).
    fn final_norm(&self, resid: &Tensor) -> Tensor;

    /// Logits `[.., vocab]` from final-normalized residuals.
    fn unembed(&self, normalized: &Tensor) -> Tensor;

    /// The unembedding matrix `[vocab, d_model]`.
    fn unembedding(&self) -> &Tensor;

    /// Layer `layer`'s MLP weights.
    fn mlp(&self, layer: usize) -> MlpWeights;

    /// Every parameter under a stable name, sharing storage with the model (tied weights once).
    fn parameters(&self) -> Vec<(String, Tensor)>;

    /// The model as a Hugging Face checkpoint: its `config.json` and its tensors under Hugging Face names
    /// and layouts.
    fn hf_export(&self) -> Result<(serde_json::Value, Vec<(String, Tensor)>)>;
}

/// Where an architecture reads its weights from, by Hugging Face tensor name.
pub trait WeightSource {
    /// The tensor `name` as f32 on the CPU, checked against `shape`.
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor>;
    /// Whether the checkpoint holds `name` (used for optional tensors such as an untied `lm_head`).
    fn contains(&self, name: &str) -> bool;
}

/// A [`WeightSource`] that reports each tensor read to a [`Progress`] and stops when it is cancelled.
pub struct ReportingSource<'a> {
    inner: &'a mut dyn WeightSource,
    progress: &'a dyn Progress,
}

impl<'a> ReportingSource<'a> {
    /// Wraps `inner`; `tensors` is the number of tensors the checkpoint holds (the stage's length).
    pub fn new(inner: &'a mut dyn WeightSource, progress: &'a dyn Progress, tensors: usize) -> Self {
        progress.begin("loading weights", tensors as u64);
        ReportingSource { inner, progress }
    }
}

impl WeightSource for ReportingSource<'_> {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        self.progress.check()?;
        let t = self.inner.tensor(name, shape)?;
        self.progress.advance(1);
        Ok(t)
    }

    fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }
}

/// Builds the architecture a GGUF file names (`general.architecture`) from its metadata and tensors.
pub fn from_gguf(
    file: &GgufFile,
    device: Device,
    kind: Kind,
    progress: &dyn Progress,
) -> Result<Box<dyn Architecture>> {
    match file.require_str("general.architecture")? {
        "llama" => {
            let config = llama::LlamaConfig::from_gguf(file)?;
            let mut weights = GgufWeights::new(file, config.num_attention_heads, config.num_key_value_heads)?;
            let mut reporting = ReportingSource::new(&mut weights, progress, file.tensors.len());
            Ok(Box::new(llama::load(&config, &mut reporting, device, kind)?))
        }
        other => Err(ModelError::UnknownArchitecture(other.to_string())),
    }
}

/// Builds the architecture a Hugging Face `config.json` names (`model_type`) from its weights.
pub fn from_hf(
    config: &HfConfig,
    weights: &mut dyn WeightSource,
    device: Device,
    kind: Kind,
) -> Result<Box<dyn Architecture>> {
    let decoder = match config.model_type()? {
        "llama" => llama::load(&llama::LlamaConfig::from_hf(config)?, weights, device, kind)?,
        "qwen2" => llama::load(&qwen2::config_from_hf(config)?, weights, device, kind)?,
        "gpt2" => gpt2::load(&gpt2::Gpt2Config::from_hf(config)?, weights, device, kind)?,
        "gpt_bigcode" => gpt2::load(&gpt_bigcode::config_from_hf(config)?, weights, device, kind)?,
        "gpt_neox" => gpt_neox::load(&gpt_neox::GptNeoXConfig::from_hf(config)?, weights, device, kind)?,
        "codegen" => codegen::load(&codegen::CodeGenConfig::from_hf(config)?, weights, device, kind)?,
        other => return Err(ModelError::UnknownArchitecture(other.to_string())),
    };
    Ok(Box::new(decoder.with_hf_config(config.value().clone())))
}

/// Checks that `found` has `expected` shape.
pub(crate) fn check_shape(name: &str, expected: &[i64], found: &[i64]) -> Result<()> {
    if expected != found {
        return Err(ModelError::ShapeMismatch {
            tensor: name.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        });
    }
    Ok(())
}
