//! Phi-3 (Phi-3, Phi-3.5 mini): Llama with query, key and value in one projection (`qkv_proj`) and gate and up in
//! one (`gate_up_proj`), optionally with sliding-window attention. Loaded by `llama.rs`.

use super::decoder::SlidingWindow;
use super::llama::LlamaConfig;
use crate::config::HfConfig;
use crate::error::{ModelError, Result};

/// Reads a Phi-3 `config.json` into the Llama loader's config.
pub fn config_from_hf(config: &HfConfig) -> Result<LlamaConfig> {
    let partial = config.get("rope_parameters").get("partial_rotary_factor").and_then(|v| v.as_f64());
    if partial.or(config.get("partial_rotary_factor").as_f64()).is_some_and(|f| f != 1.0) {
        return Err(ModelError::config(
            "partial_rotary_factor",
            "partial rotary embeddings of Phi-3 are not supported",
        ));
    }
    let mut llama = LlamaConfig::from_hf(config)?;
    llama.fused_projections = true;
    llama.sliding_window = config.usize_if_set("sliding_window")?.map(SlidingWindow::everywhere);
    Ok(llama)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_phi3_loads_its_fused_projections_and_exports_them() {
        let config = serde_json::json!({"model_type": "phi3", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
            "max_position_embeddings": 64});
        let arch = check_tiny(config, &[]);
        let (_, tensors) = arch.hf_export().unwrap();
        let size = |wanted: &str| tensors.iter().find(|(name, _)| name == wanted).map(|(_, t)| t.size());
        assert_eq!(size("model.layers.0.self_attn.qkv_proj.weight"), Some(vec![16 + 2 * 8, 16]));
        assert_eq!(size("model.layers.1.mlp.gate_up_proj.weight"), Some(vec![48, 16]));
    }
}
