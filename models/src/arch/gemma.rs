//! Gemma (CodeGemma): Llama with the token embeddings scaled by sqrt(hidden size), a GELU-gated MLP (GeGLU) and
//! RMSNorms that scale by one plus their weights. Loaded by `llama.rs`.

use super::decoder::{Activation, NormKind, Scales};
use super::llama::LlamaConfig;
use crate::config::HfConfig;
use crate::error::Result;

/// Reads a Gemma `config.json` into the Llama loader's config.
pub fn config_from_hf(config: &HfConfig) -> Result<LlamaConfig> {
    let mut llama = LlamaConfig::from_hf(config)?;
    // Gemma's own releases write "gelu" meaning the tanh approximation, as transformers reads it.
    if llama.hidden_act == "gelu" {
        llama.hidden_act = "gelu_pytorch_tanh".into();
    }
    Activation::from_hf(&llama.hidden_act)?;
    llama.scales = Scales { embedding: (llama.hidden_size as f64).sqrt(), ..Scales::NONE };
    llama.norm = NormKind::RmsPlusOne;
    Ok(llama)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_gemma_with_its_own_head_width_runs_and_exports() {
        let config = serde_json::json!({"model_type": "gemma", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 8,
            "vocab_size": 32, "max_position_embeddings": 64, "hidden_act": "gelu", "tie_word_embeddings": true});
        let arch = check_tiny(config, &["lm_head.weight"]);
        assert_eq!((arch.shape().head_dim, arch.shape().n_kv_heads), (8, 1));
    }
}
