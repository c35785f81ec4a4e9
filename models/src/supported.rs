//! The architectures this runtime implements, by their `model_type` / GGUF `general.architecture`: a module of
//! its own, so that errors can list them without depending on the architectures.

/// The supported `model_type` names.
pub const SUPPORTED: &[&str] = &[
    "llama",
    "qwen2",
    "qwen3",
    "mistral",
    "starcoder2",
    "phi3",
    "granite",
    "gemma",
    "gemma2",
    "gpt2",
    "gpt_bigcode",
    "codegen",
    "gpt_neox",
];
