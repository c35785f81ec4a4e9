//! Architectures: one file each, sharing the [`Architecture`] trait, the KV cache and a few layers. Which one a
//! checkpoint names is decided in `crate::load`; where the weights come from is `crate::weights`.

pub mod codegen;
mod decode_kernels;
pub mod decoder;
pub mod gemma;
pub mod gemma2;
pub mod gpt2;
pub mod gpt_bigcode;
pub mod gpt_neox;
pub mod granite;
mod int8;
mod layers;
pub mod llama;
pub mod mistral;
mod onednn;
mod packed;
pub mod phi3;
pub mod qwen2;
pub mod qwen3;
pub mod starcoder2;
#[cfg(test)]
mod testing;

use serde::Serialize;
use tch::Tensor;

pub use layers::{AttentionMask, KvCache};
pub use packed::WeightFormat;

use crate::error::Result;
use crate::hooks::Hooks;
pub use crate::supported::SUPPORTED;

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

/// The width of each of `heads` attention heads that share `width` dimensions; refuses no heads, or heads that do
/// not divide the width (`key` names the config field in the error).
pub fn head_width(width: i64, heads: i64, key: &str) -> crate::Result<i64> {
    if heads <= 0 || width % heads != 0 {
        return Err(crate::ModelError::config(key, format!("{heads} heads do not divide a width of {width}")));
    }
    Ok(width / heads)
}

impl ModelShape {
    /// Refuses sizes no forward pass can run with: no heads, heads of no width, query heads that the key/value
    /// heads do not divide, or an empty residual stream, MLP or vocabulary (a config can claim them with weights of
    /// zero elements to match).
    pub fn check(&self) -> crate::Result<()> {
        let refuse = |key: &str, reason: String| Err(crate::ModelError::config(key, reason));
        for (key, value) in [
            ("hidden_size", self.d_model),
            ("intermediate_size", self.d_mlp),
            ("num_attention_heads", self.n_heads),
            ("num_key_value_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab_size),
        ] {
            if value == 0 {
                return refuse(key, format!("is 0 (or comes out as 0) for a {}", self.architecture));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            let why = format!("{} key/value heads do not divide {} query heads", self.n_kv_heads, self.n_heads);
            return refuse("num_key_value_heads", why);
        }
        Ok(())
    }
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

    /// Packs every linear layer's weight (attention, MLP, unembedding) for generation and writes the rounded
    /// weights back (tied token embeddings included), so that [`Architecture::parameters`] are what the forward
    /// pass computes with; steps of a few tokens then run the format's kernel.
    fn pack_weights(&mut self, format: WeightFormat) -> Result<()>;
}
