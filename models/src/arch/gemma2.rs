//! Gemma 2: Gemma with a norm after each sublayer as well as before (`post_attention_layernorm`,
//! `pre_feedforward_layernorm`, `post_feedforward_layernorm`), attention scores and logits soft-capped
//! (`cap * tanh(x / cap)`), the scores scaled by `query_pre_attn_scalar^-1/2`, and local layers with a sliding
//! window alternating with global ones (`layer_types`). Loaded by `llama.rs`.

use super::decoder::{SlidingWindow, WindowedLayers};
use super::llama::LlamaConfig;
use crate::config::HfConfig;
use crate::error::{ModelError, Result};

/// A number field that may be absent (its default) or null (off).
fn optional(config: &HfConfig, key: &str, default: f64) -> Result<Option<f64>> {
    match config.value().get(key) {
        None => Ok(Some(default)),
        Some(serde_json::Value::Null) => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| ModelError::config(key, "is not a number")),
    }
}

/// Reads a Gemma 2 `config.json` into the Llama loader's config.
pub fn config_from_hf(config: &HfConfig) -> Result<LlamaConfig> {
    let mut llama = super::gemma::config_from_hf(config)?;
    // Gemma 2 names its activation `hidden_activation`.
    llama.hidden_act = config.get("hidden_activation").as_str().unwrap_or("gelu_pytorch_tanh").to_string();
    super::decoder::Activation::from_hf(&llama.hidden_act)?;
    let layers = llama.num_hidden_layers;
    let local = match config.value().get("layer_types").and_then(|v| v.as_array()) {
        Some(types) if types.len() != layers => {
            return Err(ModelError::config("layer_types", format!("{} entries for {layers} layers", types.len())));
        }
        Some(types) => WindowedLayers::Listed(types.iter().map(|t| t.as_str() == Some("sliding_attention")).collect()),
        None => WindowedLayers::Even,
    };
    let size = config.usize_if_set("sliding_window")?.unwrap_or(4096);
    llama.sliding_window = Some(SlidingWindow { size: size as i64, layers: local });
    let scalar = config.f64_or("query_pre_attn_scalar", 256.0)?;
    llama.scales.attention = Some(1.0 / scalar.sqrt());
    llama.scales.attention_softcap = optional(config, "attn_logit_softcapping", 50.0)?;
    llama.scales.logit_softcap = optional(config, "final_logit_softcapping", 30.0)?;
    llama.sandwich_norms = true;
    Ok(llama)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_gemma2_exports_its_four_norms_per_block() {
        let config = serde_json::json!({"model_type": "gemma2", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
            "vocab_size": 32, "max_position_embeddings": 64, "sliding_window": 3, "query_pre_attn_scalar": 8,
            "tie_word_embeddings": true});
        let arch = check_tiny(config, &["lm_head.weight"]);
        let (_, tensors) = arch.hf_export().unwrap();
        for norm in ["input", "post_attention", "pre_feedforward", "post_feedforward"] {
            let name = format!("model.layers.1.{norm}_layernorm.weight");
            assert!(tensors.iter().any(|(n, _)| *n == name), "{name}");
        }
    }
}
