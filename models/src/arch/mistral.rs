//! Mistral (Codestral, Mistral-7B): Llama with sliding-window attention, each token seeing itself and the
//! `sliding_window - 1` tokens before it in every layer. Loaded by `llama.rs`.

use super::decoder::SlidingWindow;
use super::llama::LlamaConfig;
use crate::config::HfConfig;
use crate::error::Result;

/// Reads a Mistral `config.json` into the Llama loader's config (`sliding_window: null` means full attention).
pub fn config_from_hf(config: &HfConfig) -> Result<LlamaConfig> {
    let mut llama = LlamaConfig::from_hf(config)?;
    llama.sliding_window = config.usize_if_set("sliding_window")?.map(SlidingWindow::everywhere);
    Ok(llama)
}

#[cfg(test)]
mod tests {
    use crate::arch::testing::check_tiny;

    #[test]
    fn a_tiny_mistral_reads_its_window_and_writes_it_back() {
        let config = serde_json::json!({"model_type": "mistral", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32,
            "max_position_embeddings": 64, "sliding_window": 3});
        let arch = check_tiny(config, &[]);
        let (config, _) = arch.hf_export().unwrap();
        assert_eq!((config["model_type"].as_str(), config["sliding_window"].as_u64()), (Some("mistral"), Some(3)));
    }
}
