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
