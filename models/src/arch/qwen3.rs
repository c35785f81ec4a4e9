//! Qwen3 (Qwen3, Qwen3-Coder dense): Llama with an RMSNorm of each query head and each key head before the
//! rotation (`q_norm`, `k_norm`), and a head width of its own. Loaded by `llama.rs`.

use super::llama::LlamaConfig;
use crate::config::HfConfig;
use crate::error::{ModelError, Result};

/// Reads a Qwen3 `config.json` into the Llama loader's config.
pub fn config_from_hf(config: &HfConfig) -> Result<LlamaConfig> {
    if config.bool_or("use_sliding_window", false)? {
        return Err(ModelError::config("use_sliding_window", "Qwen3's sliding-window layers are not supported"));
    }
    let mut llama = LlamaConfig::from_hf(config)?;
    llama.qk_norm = true;
    Ok(llama)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_qwen3_loads_its_head_norms_and_exports_them() {
        let config = serde_json::json!({"model_type": "qwen3", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
            "vocab_size": 32, "max_position_embeddings": 64, "tie_word_embeddings": true});
        let arch = check_tiny(config, &["lm_head.weight"]);
        assert_eq!(arch.shape().head_dim, 8);
        let (_, tensors) = arch.hf_export().unwrap();
        let k_norm = tensors.iter().find(|(name, _)| name == "model.layers.1.self_attn.k_norm.weight");
        assert_eq!(k_norm.map(|(_, t)| t.size()), Some(vec![8]));
    }
}
