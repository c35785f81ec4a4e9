//! GPT-2 (CodeParrot): LayerNorm, learned absolute positions, fused query/key/value in Conv1D layout
//! (`[in, out]`), a GELU MLP, tied embeddings. GPTBigCode (`gpt_bigcode.rs`) shares the tensor names and is
//! loaded here too.

use tch::{Device, Kind, Tensor};

use super::decoder::{
    heads_blocks_to_interleaved, heads_interleaved_to_blocks, push_weight_and_bias, Activation, Block, Decoder,
    DecoderConfig, Embeddings, Linear, Loader, NormKind, Residual, Scales,
};
use super::{head_width, ModelShape};
use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::weights::WeightSource;

/// How a GPT-2-style checkpoint stores its fused query/key/value rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkvLayout {
    /// GPT-2's Conv1D `[in, out]`, columns `[q; k; v]`.
    Conv1d,
    /// `nn.Linear` rows `[q heads; k heads; v heads]` (GPTBigCode with multi-query attention).
    Blocks,
    /// `nn.Linear` rows per head `[head][q, k, v]` (GPTBigCode without multi-query attention).
    PerHead,
}

/// Hyper-parameters of a GPT-2-style model.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    /// `gpt2` or `gpt_bigcode`.
    pub model_type: String,
    /// Residual width (`n_embd`).
    pub n_embd: usize,
    /// Blocks (`n_layer`).
    pub n_layer: usize,
    /// Query heads (`n_head`).
    pub n_head: usize,
    /// Key/value heads (1 with multi-query attention).
    pub n_kv_head: usize,
    /// MLP width (`n_inner`, default 4 x `n_embd`).
    pub n_inner: usize,
    /// Context length (`n_positions`).
    pub n_positions: usize,
    /// LayerNorm epsilon.
    pub layer_norm_epsilon: f64,
    /// MLP activation.
    pub activation: Activation,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Whether the unembedding is the token embedding.
    pub tie_word_embeddings: bool,
    /// Storage layout of weights.
    pub layout: QkvLayout,
}

impl Gpt2Config {
    /// Reads the fields GPT-2 and GPTBigCode share; the caller sets what differs.
    pub fn from_hf_common(config: &HfConfig, default_activation: &str) -> Result<Self> {
        if config.bool_or("scale_attn_by_inverse_layer_idx", false)? {
            return Err(ModelError::config("scale_attn_by_inverse_layer_idx", "is not supported"));
        }
        let n_embd = config.usize("n_embd")?;
        let n_head = config.usize("n_head")?;
        let n_inner = match config.get("n_inner") {
            serde_json::Value::Null => 4 * n_embd,
            _ => config.usize("n_inner")?,
        };
        Ok(Gpt2Config {
            model_type: config.model_type()?.to_string(),
            n_embd,
            n_layer: config.usize("n_layer")?,
            n_head,
            n_kv_head: n_head,
            n_inner,
            n_positions: config.usize("n_positions")?,
            layer_norm_epsilon: config.f64_or("layer_norm_epsilon", 1e-5)?,
            activation: Activation::from_hf(config.get("activation_function").as_str().unwrap_or(default_activation))?,
            vocab_size: config.usize("vocab_size")?,
            tie_word_embeddings: config.bool_or("tie_word_embeddings", true)?,
            layout: QkvLayout::Conv1d,
        })
    }

    /// Reads a GPT-2 `config.json`.
    pub fn from_hf(config: &HfConfig) -> Result<Self> {
        Self::from_hf_common(config, "gelu_new")
    }
}

/// Loads a GPT-2-style model from weights under Hugging Face names.
pub fn load(config: &Gpt2Config, source: &mut dyn WeightSource, device: Device, kind: Kind) -> Result<Decoder> {
    let (d, heads, kv) = (config.n_embd as i64, config.n_head as i64, config.n_kv_head as i64);
    let (hd, mlp, vocab) = (head_width(d, heads, "n_head")?, config.n_inner as i64, config.vocab_size as i64);
    let qkv_rows = (heads + 2 * kv) * hd;
    let mut loader = Loader::new(source, device, kind);
    // A linear layer stored as Conv1D ([in, out]) or nn.Linear ([out, in]); `reorder` fixes the row order.
    let linear = |loader: &mut Loader, prefix: &str, out: i64, inp: i64, reorder: bool| -> Result<Linear> {
        let (weight, bias) = match config.layout {
            QkvLayout::Conv1d => (
                loader.raw(&format!("{prefix}.weight"), &[inp, out])?.tr(),
                loader.raw(&format!("{prefix}.bias"), &[out])?,
            ),
            _ => {
                (loader.raw(&format!("{prefix}.weight"), &[out, inp])?, loader.raw(&format!("{prefix}.bias"), &[out])?)
            }
        };
        let (weight, bias) = if reorder && config.layout == QkvLayout::PerHead {
            (heads_interleaved_to_blocks(&weight, heads, hd), heads_interleaved_to_blocks(&bias, heads, hd))
        } else {
            (weight, bias)
        };
        Ok(Linear::new(loader.place(weight.contiguous()), Some(loader.place(bias))))
    };
    let tokens = loader.get("transformer.wte.weight", &[vocab, d])?;
    let positions = loader.get("transformer.wpe.weight", &[config.n_positions as i64, d])?;
    let mut blocks = Vec::new(); // grown layer by layer: the config alone does not vouch for its layer count
    for l in 0..config.n_layer {
        let p = format!("transformer.h.{l}");
        blocks.push(Block {
            ln1: loader.norm(&format!("{p}.ln_1"), d, NormKind::Layer)?,
            ln2: Some(loader.norm(&format!("{p}.ln_2"), d, NormKind::Layer)?),
            qkv: linear(&mut loader, &format!("{p}.attn.c_attn"), qkv_rows, d, true)?,
            o: linear(&mut loader, &format!("{p}.attn.c_proj"), d, d, false)?,
            qk_norm: None,
            post_norms: None,
            mlp_in: linear(&mut loader, &format!("{p}.mlp.c_fc"), mlp, d, false)?,
            mlp_out: linear(&mut loader, &format!("{p}.mlp.c_proj"), d, mlp, false)?,
        });
    }
    let final_norm = loader.norm("transformer.ln_f", d, NormKind::Layer)?;
    let untied = !config.tie_word_embeddings && loader.contains("lm_head.weight");
    let unembed = if untied { loader.get("lm_head.weight", &[vocab, d])? } else { tokens.shallow_clone() };
    let shape = ModelShape {
        architecture: config.model_type.clone(),
        n_layers: config.n_layer,
        d_model: config.n_embd,
        d_mlp: config.n_inner,
        n_heads: config.n_head,
        n_kv_heads: config.n_kv_head,
        head_dim: hd as usize,
        vocab_size: config.vocab_size,
        context_length: config.n_positions,
        tied_embeddings: !untied,
    };
    let decoder_config = DecoderConfig {
        shape,
        norm: NormKind::Layer,
        norm_eps: config.layer_norm_epsilon,
        rotary: None,
        activation: config.activation,
        gated_mlp: false,
        hf_config: serde_json::Value::Null,
        residual: Residual::Sequential,
        sliding_window: None,
        scales: Scales::NONE,
    };
    let embeddings = Embeddings { tokens, positions: Some(positions), final_norm, unembed: Linear::new(unembed, None) };
    Decoder::new(decoder_config, embeddings, blocks, hf_tensors)
}

/// The tensors of a GPT-2 or GPTBigCode model under Hugging Face names and layouts.
pub fn hf_tensors(model: &Decoder) -> Vec<(String, Tensor)> {
    let config = &model.config().hf_config;
    let shape = &model.config().shape;
    let layout = match (config["model_type"].as_str(), config["multi_query"].as_bool().unwrap_or(true)) {
        (Some("gpt_bigcode"), true) => QkvLayout::Blocks,
        (Some("gpt_bigcode"), false) => QkvLayout::PerHead,
        _ => QkvLayout::Conv1d,
    };
    let (heads, hd) = (shape.n_heads as i64, shape.head_dim as i64);
    let stored = |t: &Tensor, qkv: bool| match layout {
        QkvLayout::Conv1d => t.tr(),
        QkvLayout::PerHead if qkv => heads_blocks_to_interleaved(t, heads, hd),
        _ => t.shallow_clone(),
    };
    let bias = |t: &Option<Tensor>, qkv: bool| {
        t.as_ref().map(|b| {
            if qkv && layout == QkvLayout::PerHead {
                heads_blocks_to_interleaved(b, heads, hd)
            } else {
                b.shallow_clone()
            }
        })
    };
    let e = model.embeddings();
    let mut out = vec![("transformer.wte.weight".to_string(), e.tokens.shallow_clone())];
    out.extend(e.positions.as_ref().map(|p| ("transformer.wpe.weight".to_string(), p.shallow_clone())));
    for (l, block) in model.blocks().iter().enumerate() {
        let p = format!("transformer.h.{l}");
        block.ln1.push_to(&mut out, &format!("{p}.ln_1"));
        if let Some(ln2) = &block.ln2 {
            ln2.push_to(&mut out, &format!("{p}.ln_2"));
        }
        for (name, linear, qkv) in [
            ("attn.c_attn", &block.qkv, true),
            ("attn.c_proj", &block.o, false),
            ("mlp.c_fc", &block.mlp_in, false),
            ("mlp.c_proj", &block.mlp_out, false),
        ] {
            push_weight_and_bias(
                &mut out,
                &format!("{p}.{name}"),
                stored(&linear.weight, qkv),
                bias(&linear.bias, qkv),
            );
        }
    }
    e.push_tail_to(&mut out, "transformer.ln_f", "lm_head", shape.tied_embeddings);
    out
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_gpt2_runs_causally_and_exports_its_conv1d_layout_back() {
        let config = serde_json::json!({"model_type": "gpt2", "n_embd": 16, "n_layer": 2, "n_head": 4,
            "n_positions": 64, "vocab_size": 32});
        let arch = check_tiny(config, &["lm_head.weight"]);
        assert_eq!((arch.shape().d_mlp, arch.shape().context_length), (64, 64));
    }
}
