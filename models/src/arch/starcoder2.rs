//! StarCoder2: grouped-query attention with rotary embeddings and biases, LayerNorm, a plain GELU MLP (`c_fc`,
//! `c_proj`) and sliding-window attention.

use tch::{Device, Kind, Tensor};

use super::decoder::{
    Activation, Block, Decoder, DecoderConfig, Embeddings, Linear, Loader, NormKind, Residual, Scales, SlidingWindow,
};
use super::{head_width, ModelShape};
use crate::config::HfConfig;
use crate::error::Result;
use crate::weights::WeightSource;

/// Hyper-parameters of a StarCoder2 model.
#[derive(Debug, Clone, PartialEq)]
pub struct Starcoder2Config {
    /// Residual width.
    pub hidden_size: usize,
    /// MLP neurons per layer.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// LayerNorm epsilon.
    pub norm_epsilon: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// Sliding-window attention over this many tokens.
    pub sliding_window: Option<usize>,
    /// Biases on every projection.
    pub use_bias: bool,
    /// MLP activation.
    pub activation: Activation,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Whether `lm_head` is the token embedding.
    pub tie_word_embeddings: bool,
}

impl Starcoder2Config {
    /// Reads a Hugging Face `config.json` of a StarCoder2.
    pub fn from_hf(config: &HfConfig) -> Result<Self> {
        let num_attention_heads = config.usize("num_attention_heads")?;
        Ok(Starcoder2Config {
            hidden_size: config.usize("hidden_size")?,
            intermediate_size: config.usize("intermediate_size")?,
            num_hidden_layers: config.usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads: config.usize_or("num_key_value_heads", num_attention_heads)?,
            norm_epsilon: config.f64_or("norm_epsilon", 1e-5)?,
            rope_theta: config.rope_theta(10_000.0)?,
            sliding_window: config.usize_if_set("sliding_window")?,
            use_bias: config.bool_or("use_bias", true)?,
            activation: Activation::from_hf(config.get("hidden_act").as_str().unwrap_or("gelu_pytorch_tanh"))?,
            vocab_size: config.usize("vocab_size")?,
            max_position_embeddings: config.usize_or("max_position_embeddings", 4096)?,
            tie_word_embeddings: config.bool_or("tie_word_embeddings", true)?,
        })
    }
}

/// Loads a StarCoder2 model from weights under Hugging Face names.
pub fn load(config: &Starcoder2Config, source: &mut dyn WeightSource, device: Device, kind: Kind) -> Result<Decoder> {
    let (d, heads, kv, mlp, vocab) = (
        config.hidden_size as i64,
        config.num_attention_heads as i64,
        config.num_key_value_heads as i64,
        config.intermediate_size as i64,
        config.vocab_size as i64,
    );
    let hd = head_width(d, heads, "num_attention_heads")?;
    let bias = config.use_bias;
    let mut loader = Loader::new(source, device, kind);
    let tokens = loader.get("model.embed_tokens.weight", &[vocab, d])?;
    let mut blocks = Vec::new(); // grown layer by layer: the config alone does not vouch for its layer count
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}");
        let (q, k, v) =
            (format!("{p}.self_attn.q_proj"), format!("{p}.self_attn.k_proj"), format!("{p}.self_attn.v_proj"));
        blocks.push(Block {
            ln1: loader.norm(&format!("{p}.input_layernorm"), d, NormKind::Layer)?,
            ln2: Some(loader.norm(&format!("{p}.post_attention_layernorm"), d, NormKind::Layer)?),
            qkv: loader.stacked_linear(&[(&q, heads * hd), (&k, kv * hd), (&v, kv * hd)], d, bias)?,
            o: loader.linear(&format!("{p}.self_attn.o_proj"), d, heads * hd, bias)?,
            qk_norm: None,
            post_norms: None,
            mlp_in: loader.linear(&format!("{p}.mlp.c_fc"), mlp, d, bias)?,
            mlp_out: loader.linear(&format!("{p}.mlp.c_proj"), d, mlp, bias)?,
        });
    }
    let final_norm = loader.norm("model.norm", d, NormKind::Layer)?;
    let untied = !config.tie_word_embeddings && loader.contains("lm_head.weight");
    let unembed = if untied { loader.get("lm_head.weight", &[vocab, d])? } else { tokens.shallow_clone() };
    let decoder_config = DecoderConfig {
        shape: ModelShape {
            architecture: "starcoder2".into(),
            n_layers: config.num_hidden_layers,
            d_model: config.hidden_size,
            d_mlp: config.intermediate_size,
            n_heads: config.num_attention_heads,
            n_kv_heads: config.num_key_value_heads,
            head_dim: hd as usize,
            vocab_size: config.vocab_size,
            context_length: config.max_position_embeddings,
            tied_embeddings: !untied,
        },
        norm: NormKind::Layer,
        norm_eps: config.norm_epsilon,
        rotary: Some((hd, config.rope_theta)),
        activation: config.activation,
        gated_mlp: false,
        residual: Residual::Sequential,
        sliding_window: config.sliding_window.map(SlidingWindow::everywhere),
        scales: Scales::NONE,
        hf_config: serde_json::Value::Null,
    };
    let embeddings = Embeddings { tokens, positions: None, final_norm, unembed: Linear::new(unembed, None) };
    Decoder::new(decoder_config, embeddings, blocks, hf_tensors)
}

/// The tensors of a StarCoder2 model under Hugging Face names (views of the model's parameters).
pub fn hf_tensors(model: &Decoder) -> Vec<(String, Tensor)> {
    let shape = &model.config().shape;
    let (q_rows, kv_rows) = ((shape.n_heads * shape.head_dim) as i64, (shape.n_kv_heads * shape.head_dim) as i64);
    let e = model.embeddings();
    let mut out = vec![("model.embed_tokens.weight".to_string(), e.tokens.shallow_clone())];
    for (l, block) in model.blocks().iter().enumerate() {
        let p = format!("model.layers.{l}");
        block.ln1.push_to(&mut out, &format!("{p}.input_layernorm"));
        for (name, start, rows) in
            [("q_proj", 0, q_rows), ("k_proj", q_rows, kv_rows), ("v_proj", q_rows + kv_rows, kv_rows)]
        {
            super::decoder::push_weight_and_bias(
                &mut out,
                &format!("{p}.self_attn.{name}"),
                block.qkv.weight.narrow(0, start, rows),
                block.qkv.bias.as_ref().map(|b| b.narrow(0, start, rows)),
            );
        }
        block.o.push_to(&mut out, &format!("{p}.self_attn.o_proj"));
        if let Some(ln2) = &block.ln2 {
            ln2.push_to(&mut out, &format!("{p}.post_attention_layernorm"));
        }
        block.mlp_in.push_to(&mut out, &format!("{p}.mlp.c_fc"));
        block.mlp_out.push_to(&mut out, &format!("{p}.mlp.c_proj"));
    }
    e.push_tail_to(&mut out, "model.norm", "lm_head", shape.tied_embeddings);
    out
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_starcoder2_with_biases_and_a_window_runs_and_exports() {
        let config = serde_json::json!({"model_type": "starcoder2", "hidden_size": 16, "intermediate_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
            "max_position_embeddings": 64, "sliding_window": 3});
        let arch = check_tiny(config, &["lm_head.weight"]);
        let (_, tensors) = arch.hf_export().unwrap();
        assert!(tensors.iter().any(|(name, _)| name == "model.layers.1.mlp.c_fc.bias"));
        assert!(tensors.iter().any(|(name, _)| name == "model.layers.0.input_layernorm.bias"));
    }
}
