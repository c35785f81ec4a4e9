//! Every fuzz target by name: what `./x fuzz` runs and the regression test replays.

use crate::{model_files, structured, user_files};

/// A fuzz target: a reader fed arbitrary bytes; whether it took them whole (a valid file).
pub type Target = fn(&[u8]) -> bool;

/// Every target, by the name `./x fuzz` and `fuzz/regressions/` use.
pub const TARGETS: &[(&str, Target)] = &[
    ("gguf", model_files::gguf),
    ("dequant", model_files::dequant),
    ("gguf_model", model_files::gguf_model),
    ("safetensors", model_files::safetensors),
    ("safetensors_index", model_files::safetensors_index),
    ("config_json", model_files::config_json),
    ("tokenizer_json", model_files::tokenizer_json),
    ("spec", user_files::spec),
    ("patch_set", user_files::patch_set),
    ("repair_cases", user_files::repair_cases),
    ("probe_task", user_files::probe_task),
    ("humaneval_samples", user_files::humaneval_samples),
    ("gguf_structured", structured::gguf_structured),
    ("safetensors_structured", structured::safetensors_structured),
];

/// Whether a target builds its file from the fuzzer's bytes with `arbitrary` (no seed files: any bytes describe a
/// file).
pub fn is_structured(name: &str) -> bool {
    name.ends_with("_structured")
}

/// The target called `name`.
pub fn by_name(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, target)| target)
}
