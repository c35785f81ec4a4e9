//! Llama (SmolLM2, CodeLlama, DeepSeek-Coder, TinyLlama): RMSNorm, rotary embeddings, grouped-query
//! attention and a SwiGLU MLP; configured from GGUF metadata or `config.json`. Qwen2 is this with biases on
//! the query, key and value projections (`qwen2.rs`), Mistral with sliding-window attention (`mistral.rs`), Qwen3
//! with RMSNorms of each query and key head (`qwen3.rs`), Phi-3 with fused projections (`phi3.rs`),
//! Granite with constant multipliers (`granite.rs`), Gemma with scaled embeddings, GeGLU and RMSNorms scaled by one
//! plus their weights (`gemma.rs`; Gemma 2 adds norms after each sublayer, soft-capping and local layers).

use tch::{Device, Kind, Tensor};

use super::decoder::{
    Activation, Block, Decoder, DecoderConfig, Embeddings, Linear, Loader, NormKind, Residual, Scales, SlidingWindow,
};
use super::ModelShape;
use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::weights::WeightSource;

/// Hyper-parameters of a Llama model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// `model_type` this config came from (`llama`, `qwen2`).
    pub model_type: String,
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
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Whether `lm_head` is the token embedding.
    pub tie_word_embeddings: bool,
    /// Biases on the query, key and value projections (Qwen2; Llama's `attention_bias`).
    pub qkv_bias: bool,
    /// Bias on the attention output projection (Llama's `attention_bias`).
    pub o_bias: bool,
    /// Activation of the gate (`silu` for every known checkpoint).
    pub hidden_act: String,
    /// Sliding-window attention (Mistral, Phi-3; Gemma 2's local layers).
    pub sliding_window: Option<SlidingWindow>,
    /// RMSNorms of each query and key head before the rotation (Qwen3).
    pub qk_norm: bool,
    /// Query, key and value in one projection (`qkv_proj`), gate and up in one (`gate_up_proj`) (Phi-3).
    pub fused_projections: bool,
    /// Granite's multipliers (Gemma's embedding scale).
    pub scales: Scales,
    /// The norms' kind: RMSNorm, or Gemma's RMSNorm scaled by one plus its weight.
    pub norm: NormKind,
    /// Norms before and after each sublayer (Gemma 2): `pre_feedforward_layernorm` before the MLP,
    /// `post_attention_layernorm` and `post_feedforward_layernorm` on the outputs.
    pub sandwich_norms: bool,
}

impl LlamaConfig {
    /// Reads a Hugging Face `config.json` of a Llama.
    pub fn from_hf(config: &HfConfig) -> Result<Self> {
        let hidden_size = config.usize("hidden_size")?;
        let num_attention_heads = config.usize("num_attention_heads")?;
        let attention_bias = config.bool_or("attention_bias", false)?;
        if config.bool_or("mlp_bias", false)? {
            return Err(ModelError::config("mlp_bias", "MLP biases are not supported"));
        }
        Ok(LlamaConfig {
            model_type: config.model_type()?.to_string(),
            hidden_size,
            intermediate_size: config.usize("intermediate_size")?,
            num_hidden_layers: config.usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads: config.usize_or("num_key_value_heads", num_attention_heads)?,
            head_dim: config.usize_or("head_dim", hidden_size / num_attention_heads.max(1))?,
            rms_norm_eps: config.f64_or("rms_norm_eps", 1e-6)?,
            rope_theta: config.rope_theta(10_000.0)?,
            vocab_size: config.usize("vocab_size")?,
            max_position_embeddings: config.usize_or("max_position_embeddings", 2048)?,
            tie_word_embeddings: config.bool_or("tie_word_embeddings", false)?,
            qkv_bias: attention_bias,
            o_bias: attention_bias,
            hidden_act: config.get("hidden_act").as_str().unwrap_or("silu").to_string(),
            sliding_window: None,
            qk_norm: false,
            fused_projections: false,
            scales: Scales::NONE,
            norm: NormKind::Rms,
            sandwich_norms: false,
        })
    }

    fn decoder_config(&self, tied: bool) -> Result<DecoderConfig> {
        Ok(DecoderConfig {
            shape: ModelShape {
                architecture: self.model_type.clone(),
                n_layers: self.num_hidden_layers,
                d_model: self.hidden_size,
                d_mlp: self.intermediate_size,
                n_heads: self.num_attention_heads,
                n_kv_heads: self.num_key_value_heads,
                head_dim: self.head_dim,
                vocab_size: self.vocab_size,
                context_length: self.max_position_embeddings,
                tied_embeddings: tied,
            },
            norm: self.norm,
            norm_eps: self.rms_norm_eps,
            rotary: Some((self.head_dim as i64, self.rope_theta)),
            activation: Activation::from_hf(&self.hidden_act)?,
            gated_mlp: true,
            residual: Residual::Sequential,
            sliding_window: self.sliding_window.clone(),
            scales: self.scales,
            hf_config: self.to_hf_json(tied),
        })
    }

    /// The `config.json` transformers reads this model from.
    pub fn to_hf_json(&self, tied: bool) -> serde_json::Value {
        let (model_type, class) = match self.model_type.as_str() {
            "qwen2" => ("qwen2", "Qwen2ForCausalLM"),
            "qwen3" => ("qwen3", "Qwen3ForCausalLM"),
            "mistral" => ("mistral", "MistralForCausalLM"),
            "phi3" => ("phi3", "Phi3ForCausalLM"),
            "granite" => ("granite", "GraniteForCausalLM"),
            "gemma" => ("gemma", "GemmaForCausalLM"),
            "gemma2" => ("gemma2", "Gemma2ForCausalLM"),
            _ => ("llama", "LlamaForCausalLM"),
        };
        serde_json::json!({
            "architectures": [class],
            "model_type": model_type,
            "sliding_window": self.sliding_window.as_ref().map(|w| w.size),
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": tied,
            "attention_bias": self.qkv_bias && self.o_bias,
            "hidden_act": self.hidden_act,
            "torch_dtype": "float32",
            "embedding_multiplier": self.scales.embedding,
            "residual_multiplier": self.scales.residual,
            "attention_multiplier": self.scales.attention.unwrap_or(1.0 / (self.head_dim as f64).sqrt()),
            "logits_scaling": self.scales.logits,
        })
    }
}

/// The tensors of a Llama-family model under Hugging Face names (views of the model's parameters).
pub fn hf_tensors(model: &Decoder) -> Vec<(String, Tensor)> {
    let shape = &model.config().shape;
    let (q_rows, kv_rows, d_mlp) =
        ((shape.n_heads * shape.head_dim) as i64, (shape.n_kv_heads * shape.head_dim) as i64, shape.d_mlp as i64);
    let embeddings = model.embeddings();
    let mut out = vec![("model.embed_tokens.weight".to_string(), embeddings.tokens.shallow_clone())];
    let fused = shape.architecture == "phi3";
    for (l, block) in model.blocks().iter().enumerate() {
        let p = format!("model.layers.{l}");
        out.push((format!("{p}.input_layernorm.weight"), block.ln1.weight.shallow_clone()));
        if fused {
            block.qkv.push_to(&mut out, &format!("{p}.self_attn.qkv_proj"));
        }
        for (name, start, rows) in
            [("q_proj", 0, q_rows), ("k_proj", q_rows, kv_rows), ("v_proj", q_rows + kv_rows, kv_rows)]
                .into_iter()
                .filter(|_| !fused)
        {
            out.push((format!("{p}.self_attn.{name}.weight"), block.qkv.weight.narrow(0, start, rows)));
            if let Some(bias) = &block.qkv.bias {
                out.push((format!("{p}.self_attn.{name}.bias"), bias.narrow(0, start, rows)));
            }
        }
        if let Some((q_norm, k_norm)) = &block.qk_norm {
            q_norm.push_to(&mut out, &format!("{p}.self_attn.q_norm"));
            k_norm.push_to(&mut out, &format!("{p}.self_attn.k_norm"));
        }
        out.push((format!("{p}.self_attn.o_proj.weight"), block.o.weight.shallow_clone()));
        if let Some(bias) = &block.o.bias {
            out.push((format!("{p}.self_attn.o_proj.bias"), bias.shallow_clone()));
        }
        let pre_mlp = if block.post_norms.is_some() { "pre_feedforward_layernorm" } else { "post_attention_layernorm" };
        if let Some(ln2) = &block.ln2 {
            ln2.push_to(&mut out, &format!("{p}.{pre_mlp}"));
        }
        if let Some((after_attention, after_mlp)) = &block.post_norms {
            after_attention.push_to(&mut out, &format!("{p}.post_attention_layernorm"));
            after_mlp.push_to(&mut out, &format!("{p}.post_feedforward_layernorm"));
        }
        if fused {
            out.push((format!("{p}.mlp.gate_up_proj.weight"), block.mlp_in.weight.shallow_clone()));
        } else {
            out.push((format!("{p}.mlp.gate_proj.weight"), block.mlp_in.weight.narrow(0, 0, d_mlp)));
            out.push((format!("{p}.mlp.up_proj.weight"), block.mlp_in.weight.narrow(0, d_mlp, d_mlp)));
        }
        out.push((format!("{p}.mlp.down_proj.weight"), block.mlp_out.weight.shallow_clone()));
    }
    embeddings.push_tail_to(&mut out, "model.norm", "lm_head", shape.tied_embeddings);
    out
}

/// Loads a Llama-family model from weights under Hugging Face names.
pub fn load(config: &LlamaConfig, source: &mut dyn WeightSource, device: Device, kind: Kind) -> Result<Decoder> {
    let (d, heads, kv, hd, mlp, vocab) = (
        config.hidden_size as i64,
        config.num_attention_heads as i64,
        config.num_key_value_heads as i64,
        config.head_dim as i64,
        config.intermediate_size as i64,
        config.vocab_size as i64,
    );
    let mut loader = Loader::new(source, device, kind);
    let tokens = loader.get("model.embed_tokens.weight", &[vocab, d])?;
    let mut blocks = Vec::new(); // grown layer by layer: the config alone does not vouch for its layer count
    for l in 0..config.num_hidden_layers {
        let p = format!("model.layers.{l}");
        let (qkv, mlp_in) = if config.fused_projections {
            (
                loader.linear(&format!("{p}.self_attn.qkv_proj"), (heads + 2 * kv) * hd, d, config.qkv_bias)?,
                loader.linear(&format!("{p}.mlp.gate_up_proj"), 2 * mlp, d, false)?,
            )
        } else {
            let (q, k, v) =
                (format!("{p}.self_attn.q_proj"), format!("{p}.self_attn.k_proj"), format!("{p}.self_attn.v_proj"));
            let qkv = loader.stacked_linear(&[(&q, heads * hd), (&k, kv * hd), (&v, kv * hd)], d, config.qkv_bias)?;
            let (gate, up) = (format!("{p}.mlp.gate_proj"), format!("{p}.mlp.up_proj"));
            (qkv, loader.stacked_linear(&[(&gate, mlp), (&up, mlp)], d, false)?)
        };
        let norm = |loader: &mut Loader, name: &str| loader.norm(&format!("{p}.{name}"), d, config.norm);
        let (ln2, post_norms) = if config.sandwich_norms {
            let pre_mlp = norm(&mut loader, "pre_feedforward_layernorm")?;
            let after =
                (norm(&mut loader, "post_attention_layernorm")?, norm(&mut loader, "post_feedforward_layernorm")?);
            (pre_mlp, Some(after))
        } else {
            (norm(&mut loader, "post_attention_layernorm")?, None)
        };
        blocks.push(Block {
            ln1: norm(&mut loader, "input_layernorm")?,
            ln2: Some(ln2),
            post_norms,
            qkv,
            o: loader.linear(&format!("{p}.self_attn.o_proj"), d, heads * hd, config.o_bias)?,
            qk_norm: match config.qk_norm {
                true => Some((
                    loader.norm(&format!("{p}.self_attn.q_norm"), hd, NormKind::Rms)?,
                    loader.norm(&format!("{p}.self_attn.k_norm"), hd, NormKind::Rms)?,
                )),
                false => None,
            },
            mlp_in,
            mlp_out: loader.linear(&format!("{p}.mlp.down_proj"), d, mlp, false)?,
        });
    }
    let final_norm = loader.norm("model.norm", d, config.norm)?;
    let untied = !config.tie_word_embeddings && loader.contains("lm_head.weight");
    let unembed = if untied { loader.get("lm_head.weight", &[vocab, d])? } else { tokens.shallow_clone() };
    let embeddings = Embeddings { tokens, positions: None, final_norm, unembed: Linear::new(unembed, None) };
    Decoder::new(config.decoder_config(!untied)?, embeddings, blocks, hf_tensors)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_llama_runs_causally_and_exports_what_it_loaded() {
        let config = serde_json::json!({"model_type": "llama", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
            "max_position_embeddings": 64, "tie_word_embeddings": false});
        let arch = check_tiny(config, &[]);
        assert_eq!((arch.shape().n_kv_heads, arch.shape().d_mlp, arch.shape().tied_embeddings), (2, 24, false));
    }

    #[test]
    fn a_tiny_llama_with_tied_embeddings_reads_no_lm_head() {
        let config = serde_json::json!({"model_type": "llama", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 32, "tie_word_embeddings": true});
        assert!(check_tiny(config, &["lm_head.weight"]).shape().tied_embeddings);
    }
}
