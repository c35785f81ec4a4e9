//! CodeGen (Salesforce codegen-350M-mono): LayerNorm, partial rotary embeddings in GPT-J's interleaved
//! convention, a fused query/value/key projection in a 4-way model-parallel layout, attention and MLP in
//! parallel on one shared norm, and an unembedding with a bias.

use tch::{Device, Kind, Tensor};

use super::decoder::{
    check_rotary, half_rotary_to_interleaved, interleaved_rotary_to_half, Activation, Block, Decoder, DecoderConfig,
    Embeddings, Linear, Loader, NormKind, Residual, Scales,
};
use super::{head_width, ModelShape};
use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::weights::WeightSource;

/// CodeGen's projection is laid out for this many model-parallel shards (fixed in the original code).
const MP_NUM: i64 = 4;

/// Hyper-parameters of a CodeGen model.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeGenConfig {
    /// Residual width.
    pub n_embd: usize,
    /// Blocks.
    pub n_layer: usize,
    /// Heads.
    pub n_head: usize,
    /// Rotated dimensions per head.
    pub rotary_dim: usize,
    /// MLP width.
    pub n_inner: usize,
    /// Context length.
    pub n_positions: usize,
    /// LayerNorm epsilon.
    pub layer_norm_epsilon: f64,
    /// MLP activation.
    pub activation: Activation,
    /// Vocabulary size.
    pub vocab_size: usize,
}

impl CodeGenConfig {
    /// Reads a CodeGen `config.json`.
    pub fn from_hf(config: &HfConfig) -> Result<Self> {
        let n_embd = config.usize("n_embd")?;
        let n_head = config.usize("n_head")?;
        if n_head as i64 % MP_NUM != 0 {
            return Err(ModelError::config("n_head", format!("must be a multiple of {MP_NUM} for CodeGen's layout")));
        }
        if config.bool_or("tie_word_embeddings", false)? {
            return Err(ModelError::config("tie_word_embeddings", "tied CodeGen embeddings are not supported"));
        }
        let n_inner = match config.get("n_inner") {
            serde_json::Value::Null => 4 * n_embd,
            _ => config.usize("n_inner")?,
        };
        Ok(CodeGenConfig {
            n_embd,
            n_layer: config.usize("n_layer")?,
            n_head,
            rotary_dim: config.usize_or("rotary_dim", head_width(n_embd as i64, n_head as i64, "n_head")? as usize)?,
            n_inner,
            n_positions: config.usize("n_positions")?,
            layer_norm_epsilon: config.f64_or("layer_norm_epsilon", 1e-5)?,
            activation: Activation::from_hf(config.get("activation_function").as_str().unwrap_or("gelu_new"))?,
            vocab_size: config.usize("vocab_size")?,
        })
    }
}

/// Splits CodeGen's `qkv_proj` (rows: 4 shards of `[q, v, k]`) into `[q; k; v]`, with the rotary dimensions
/// of q and k moved from interleaved to rotate-half order.
fn qkv_to_blocks(w: &Tensor, heads: i64, head_dim: i64, rotary_dim: i64) -> Tensor {
    let d = heads * head_dim;
    let parts = w.reshape([MP_NUM, 3, d / MP_NUM, d]);
    let part = |i: i64| parts.select(1, i).reshape([d, d]);
    let (q, v, k) = (part(0), part(1), part(2));
    let rotate = |t: &Tensor| interleaved_rotary_to_half(t, heads, head_dim, rotary_dim);
    Tensor::cat(&[rotate(&q), rotate(&k), v], 0)
}

/// Loads a CodeGen model from weights under Hugging Face names.
pub fn load(config: &CodeGenConfig, source: &mut dyn WeightSource, device: Device, kind: Kind) -> Result<Decoder> {
    let (d, heads, mlp, vocab) =
        (config.n_embd as i64, config.n_head as i64, config.n_inner as i64, config.vocab_size as i64);
    let (hd, rotary) = (head_width(d, heads, "n_head")?, config.rotary_dim as i64);
    check_rotary(rotary, hd)?;
    let mut loader = Loader::new(source, device, kind);
    let tokens = loader.get("transformer.wte.weight", &[vocab, d])?;
    let mut blocks = Vec::new(); // grown layer by layer: the config alone does not vouch for its layer count
    for l in 0..config.n_layer {
        let p = format!("transformer.h.{l}");
        let qkv = loader.raw(&format!("{p}.attn.qkv_proj.weight"), &[3 * d, d])?;
        blocks.push(Block {
            ln1: loader.norm(&format!("{p}.ln_1"), d, NormKind::Layer)?,
            ln2: None,
            qkv: Linear::new(loader.place(qkv_to_blocks(&qkv, heads, hd, rotary)), None),
            o: loader.linear(&format!("{p}.attn.out_proj"), d, d, false)?,
            qk_norm: None,
            post_norms: None,
            mlp_in: loader.linear(&format!("{p}.mlp.fc_in"), mlp, d, true)?,
            mlp_out: loader.linear(&format!("{p}.mlp.fc_out"), d, mlp, true)?,
        });
    }
    let final_norm = loader.norm("transformer.ln_f", d, NormKind::Layer)?;
    let unembed = loader.linear("lm_head", vocab, d, true)?;
    let shape = ModelShape {
        architecture: "codegen".into(),
        n_layers: config.n_layer,
        d_model: config.n_embd,
        d_mlp: config.n_inner,
        n_heads: config.n_head,
        n_kv_heads: config.n_head,
        head_dim: hd as usize,
        vocab_size: config.vocab_size,
        context_length: config.n_positions,
        tied_embeddings: false,
    };
    let decoder_config = DecoderConfig {
        shape,
        norm: NormKind::Layer,
        norm_eps: config.layer_norm_epsilon,
        rotary: Some((rotary, 10_000.0)),
        activation: config.activation,
        gated_mlp: false,
        hf_config: serde_json::Value::Null,
        residual: Residual::ParallelSharedNorm,
        sliding_window: None,
        scales: Scales::NONE,
    };
    Decoder::new(decoder_config, Embeddings { tokens, positions: None, final_norm, unembed }, blocks, hf_tensors)
}

/// The inverse of [`qkv_to_blocks`]: `[q; k; v]` back to CodeGen's shards of `[q, v, k]`.
fn blocks_to_qkv(w: &Tensor, heads: i64, head_dim: i64, rotary_dim: i64) -> Tensor {
    let d = heads * head_dim;
    let unrotate = |t: &Tensor| half_rotary_to_interleaved(t, heads, head_dim, rotary_dim);
    let (q, k, v) = (unrotate(&w.narrow(0, 0, d)), unrotate(&w.narrow(0, d, d)), w.narrow(0, 2 * d, d));
    let shard = |t: &Tensor| t.reshape([MP_NUM, 1, d / MP_NUM, d]);
    Tensor::cat(&[shard(&q), shard(&v), shard(&k)], 1).reshape([3 * d, d])
}

/// The tensors of a CodeGen model under Hugging Face names and layouts.
pub fn hf_tensors(model: &Decoder) -> Vec<(String, Tensor)> {
    let config = model.config();
    let (heads, hd) = (config.shape.n_heads as i64, config.shape.head_dim as i64);
    let rotary = config.rotary.map_or(hd, |(dim, _)| dim);
    let e = model.embeddings();
    let mut out = vec![("transformer.wte.weight".to_string(), e.tokens.shallow_clone())];
    for (l, block) in model.blocks().iter().enumerate() {
        let p = format!("transformer.h.{l}");
        block.ln1.push_to(&mut out, &format!("{p}.ln_1"));
        out.push((format!("{p}.attn.qkv_proj.weight"), blocks_to_qkv(&block.qkv.weight, heads, hd, rotary)));
        block.o.push_to(&mut out, &format!("{p}.attn.out_proj"));
        block.mlp_in.push_to(&mut out, &format!("{p}.mlp.fc_in"));
        block.mlp_out.push_to(&mut out, &format!("{p}.mlp.fc_out"));
    }
    // CodeGen's lm_head, with its bias, is never tied.
    e.push_tail_to(&mut out, "transformer.ln_f", "lm_head", false);
    out
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_codegen_with_partial_rotary_runs_and_exports_its_qkv_layout_back() {
        let config = serde_json::json!({"model_type": "codegen", "n_embd": 16, "n_layer": 2, "n_head": 4,
            "rotary_dim": 2, "n_positions": 64, "vocab_size": 32});
        assert_eq!(check_tiny(config, &[]).shape().head_dim, 4);
    }
}
