//! GPT-NeoX (Pythia): LayerNorm, partial rotary embeddings, fused query/key/value stored per head, a GELU
//! MLP, and (usually) a parallel residual `x + attn(ln1(x)) + mlp(ln2(x))`.

use tch::{Device, Kind, Tensor};

use super::decoder::{
    heads_blocks_to_interleaved, heads_interleaved_to_blocks, push_weight_and_bias, Activation, Block, Decoder,
    DecoderConfig, Embeddings, Linear, Loader, NormKind, Residual, Scales,
};
use super::{head_width, ModelShape};
use crate::config::HfConfig;
use crate::error::Result;
use crate::weights::WeightSource;

/// Hyper-parameters of a GPT-NeoX model.
#[derive(Debug, Clone, PartialEq)]
pub struct GptNeoXConfig {
    /// Residual width.
    pub hidden_size: usize,
    /// Blocks.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Fraction of each head's dimensions that are rotated.
    pub partial_rotary_factor: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// Context length.
    pub max_position_embeddings: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Whether attention and MLP read the same residual.
    pub use_parallel_residual: bool,
    /// MLP activation.
    pub activation: Activation,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Whether `embed_out` is the input embedding.
    pub tie_word_embeddings: bool,
}

impl GptNeoXConfig {
    /// Reads a GPT-NeoX `config.json` (transformers 4 or 5 field names).
    pub fn from_hf(config: &HfConfig) -> Result<Self> {
        let rope = config.get("rope_parameters");
        let factor = rope.get("partial_rotary_factor").and_then(|v| v.as_f64());
        let base = config.f64_or("rotary_emb_base", 10_000.0)?;
        Ok(GptNeoXConfig {
            hidden_size: config.usize("hidden_size")?,
            num_hidden_layers: config.usize("num_hidden_layers")?,
            num_attention_heads: config.usize("num_attention_heads")?,
            intermediate_size: config.usize("intermediate_size")?,
            partial_rotary_factor: match factor {
                Some(f) => f,
                None => config.f64_or("rotary_pct", config.f64_or("partial_rotary_factor", 0.25)?)?,
            },
            rope_theta: config.rope_theta(base)?,
            max_position_embeddings: config.usize_or("max_position_embeddings", 2048)?,
            layer_norm_eps: config.f64_or("layer_norm_eps", 1e-5)?,
            use_parallel_residual: config.bool_or("use_parallel_residual", true)?,
            activation: Activation::from_hf(config.get("hidden_act").as_str().unwrap_or("gelu"))?,
            vocab_size: config.usize("vocab_size")?,
            tie_word_embeddings: config.bool_or("tie_word_embeddings", false)?,
        })
    }
}

/// Loads a GPT-NeoX model from weights under Hugging Face names.
pub fn load(config: &GptNeoXConfig, source: &mut dyn WeightSource, device: Device, kind: Kind) -> Result<Decoder> {
    let (d, heads, mlp, vocab) = (
        config.hidden_size as i64,
        config.num_attention_heads as i64,
        config.intermediate_size as i64,
        config.vocab_size as i64,
    );
    let hd = head_width(d, heads, "num_attention_heads")?;
    let mut loader = Loader::new(source, device, kind);
    let tokens = loader.get("gpt_neox.embed_in.weight", &[vocab, d])?;
    let mut blocks = Vec::new(); // grown layer by layer: the config alone does not vouch for its layer count
    for l in 0..config.num_hidden_layers {
        let p = format!("gpt_neox.layers.{l}");
        let qkv_weight = loader.raw(&format!("{p}.attention.query_key_value.weight"), &[3 * d, d])?;
        let qkv_bias = loader.raw(&format!("{p}.attention.query_key_value.bias"), &[3 * d])?;
        blocks.push(Block {
            ln1: loader.norm(&format!("{p}.input_layernorm"), d, NormKind::Layer)?,
            ln2: Some(loader.norm(&format!("{p}.post_attention_layernorm"), d, NormKind::Layer)?),
            qkv: Linear::new(
                loader.place(heads_interleaved_to_blocks(&qkv_weight, heads, hd)),
                Some(loader.place(heads_interleaved_to_blocks(&qkv_bias, heads, hd))),
            ),
            o: loader.linear(&format!("{p}.attention.dense"), d, d, true)?,
            qk_norm: None,
            post_norms: None,
            mlp_in: loader.linear(&format!("{p}.mlp.dense_h_to_4h"), mlp, d, true)?,
            mlp_out: loader.linear(&format!("{p}.mlp.dense_4h_to_h"), d, mlp, true)?,
        });
    }
    let final_norm = loader.norm("gpt_neox.final_layer_norm", d, NormKind::Layer)?;
    let untied = !config.tie_word_embeddings && loader.contains("embed_out.weight");
    let unembed = if untied { loader.get("embed_out.weight", &[vocab, d])? } else { tokens.shallow_clone() };
    let shape = ModelShape {
        architecture: "gpt_neox".into(),
        n_layers: config.num_hidden_layers,
        d_model: config.hidden_size,
        d_mlp: config.intermediate_size,
        n_heads: config.num_attention_heads,
        n_kv_heads: config.num_attention_heads,
        head_dim: hd as usize,
        vocab_size: config.vocab_size,
        context_length: config.max_position_embeddings,
        tied_embeddings: !untied,
    };
    let decoder_config = DecoderConfig {
        shape,
        norm: NormKind::Layer,
        norm_eps: config.layer_norm_eps,
        rotary: Some(((hd as f64 * config.partial_rotary_factor) as i64, config.rope_theta)),
        activation: config.activation,
        gated_mlp: false,
        hf_config: serde_json::Value::Null,
        residual: if config.use_parallel_residual { Residual::Parallel } else { Residual::Sequential },
        sliding_window: None,
        scales: Scales::NONE,
    };
    let embeddings = Embeddings { tokens, positions: None, final_norm, unembed: Linear::new(unembed, None) };
    Decoder::new(decoder_config, embeddings, blocks, hf_tensors)
}

/// The tensors of a GPT-NeoX model under Hugging Face names and layouts.
pub fn hf_tensors(model: &Decoder) -> Vec<(String, Tensor)> {
    let shape = &model.config().shape;
    let (heads, hd) = (shape.n_heads as i64, shape.head_dim as i64);
    let e = model.embeddings();
    let mut out = vec![("gpt_neox.embed_in.weight".to_string(), e.tokens.shallow_clone())];
    for (l, block) in model.blocks().iter().enumerate() {
        let p = format!("gpt_neox.layers.{l}");
        block.ln1.push_to(&mut out, &format!("{p}.input_layernorm"));
        if let Some(ln2) = &block.ln2 {
            ln2.push_to(&mut out, &format!("{p}.post_attention_layernorm"));
        }
        let interleave = |t: &Tensor| heads_blocks_to_interleaved(t, heads, hd);
        push_weight_and_bias(
            &mut out,
            &format!("{p}.attention.query_key_value"),
            interleave(&block.qkv.weight),
            block.qkv.bias.as_ref().map(interleave),
        );
        block.o.push_to(&mut out, &format!("{p}.attention.dense"));
        block.mlp_in.push_to(&mut out, &format!("{p}.mlp.dense_h_to_4h"));
        block.mlp_out.push_to(&mut out, &format!("{p}.mlp.dense_4h_to_h"));
    }
    e.push_tail_to(&mut out, "gpt_neox.final_layer_norm", "embed_out", shape.tied_embeddings);
    out
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_pythia_with_parallel_residual_runs_and_exports() {
        let config = serde_json::json!({"model_type": "gpt_neox", "hidden_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 32, "max_position_embeddings": 64, "vocab_size": 32,
            "rotary_pct": 0.5, "use_parallel_residual": true});
        assert_eq!(check_tiny(config, &[]).shape().d_mlp, 32);
    }

    #[test]
    fn a_tiny_pythia_with_sequential_residual_runs_and_exports() {
        let config = serde_json::json!({"model_type": "gpt_neox", "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64, "vocab_size": 32,
            "use_parallel_residual": false});
        check_tiny(config, &[]);
    }
}
