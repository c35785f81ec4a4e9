//! Granite (Granite-Code 3.x): Llama with constant multipliers on the embeddings, on each sublayer's output, on
//! the attention scores (instead of 1/sqrt(head width)) and a divisor of the logits. Loaded by `llama.rs`.

use super::decoder::Scales;
use super::llama::LlamaConfig;
use crate::config::HfConfig;
use crate::error::Result;

/// Reads a Granite `config.json` into the Llama loader's config.
pub fn config_from_hf(config: &HfConfig) -> Result<LlamaConfig> {
    let mut llama = LlamaConfig::from_hf(config)?;
    llama.scales = Scales {
        embedding: config.f64_or("embedding_multiplier", 1.0)?,
        residual: config.f64_or("residual_multiplier", 1.0)?,
        attention: Some(config.f64_or("attention_multiplier", 1.0)?),
        logits: config.f64_or("logits_scaling", 1.0)?,
        ..Scales::NONE
    };
    Ok(llama)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_granite_reads_its_multipliers() {
        let config = serde_json::json!({"model_type": "granite", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
            "max_position_embeddings": 64, "embedding_multiplier": 12.0, "residual_multiplier": 0.22,
            "attention_multiplier": 0.015625, "logits_scaling": 8.0, "tie_word_embeddings": true});
        let arch = check_tiny(config, &["lm_head.weight"]);
        assert_eq!(arch.shape().architecture, "granite");
    }
}
