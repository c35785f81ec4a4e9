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
