//! Qwen2 (Qwen2.5-Coder): Llama with biases on the query, key and value projections. Loaded by `llama.rs`.

use super::llama::LlamaConfig;
use crate::config::HfConfig;
use crate::error::{ModelError, Result};

/// Reads a Qwen2 `config.json` into the Llama loader's config.
pub fn config_from_hf(config: &HfConfig) -> Result<LlamaConfig> {
    if config.bool_or("use_sliding_window", false)? {
        return Err(ModelError::config("use_sliding_window", "sliding-window attention is not supported"));
    }
    let mut llama = LlamaConfig::from_hf(config)?;
    llama.qkv_bias = true;
    llama.o_bias = false;
    Ok(llama)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_qwen2_loads_its_qkv_biases_and_exports_them() {
        let config = serde_json::json!({"model_type": "qwen2", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
            "max_position_embeddings": 64, "tie_word_embeddings": true});
        let arch = check_tiny(config, &["lm_head.weight"]);
        let (_, tensors) = arch.hf_export().unwrap();
        assert!(tensors.iter().any(|(name, _)| name == "model.layers.0.self_attn.q_proj.bias"));
    }
}
