//! GPTBigCode (SantaCoder, StarCoder, tiny_starcoder): GPT-2's blocks with `nn.Linear` weights and, usually,
//! multi-query attention (one key/value head). Loaded by `gpt2.rs`.

use super::gpt2::{Gpt2Config, QkvLayout};
use crate::config::HfConfig;
use crate::error::Result;

/// Reads a GPTBigCode `config.json` into the GPT-2 loader's config.
pub fn config_from_hf(config: &HfConfig) -> Result<Gpt2Config> {
    let mut gpt2 = Gpt2Config::from_hf_common(config, "gelu_pytorch_tanh")?;
    let multi_query = config.bool_or("multi_query", true)?;
    gpt2.n_kv_head = if multi_query { 1 } else { gpt2.n_head };
    gpt2.layout = if multi_query { QkvLayout::Blocks } else { QkvLayout::PerHead };
    Ok(gpt2)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_starcoder_with_multi_query_attention_runs_and_exports() {
        let config = serde_json::json!({"model_type": "gpt_bigcode", "n_embd": 16, "n_layer": 2, "n_head": 4,
            "n_positions": 64, "vocab_size": 32, "multi_query": true});
        assert_eq!(check_tiny(config, &["lm_head.weight"]).shape().n_kv_heads, 1);
    }
}
