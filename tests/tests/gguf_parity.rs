//! GGUF files of every architecture llama.cpp defines, against transformers. A small random checkpoint built by
//! transformers is converted by `gguf_convert.py` (the `gguf` package's tensor names and metadata writers, with the
//! changes llama.cpp's converter makes to tensors): the workbench reads it with transformers' logits and tokens.
//! Then the workbench writes the same checkpoint as GGUF itself: its file must hold the converter's tensors bit for
//! bit under the same names and the same architecture metadata, and read back with the same logits.

use std::path::Path;

use integration_tests::{default_model_path, hf_reference, max_abs_diff, read_f32, run_python};
use models::gguf::{GgmlType, GgufFile, MetaValue};
use models::{LoadOptions, Model};
use serde_json::Value;

/// The model's logits of every reference prompt against transformers' (f32).
fn assert_logits_match(model: &Model, dir: &Path, reference: &Value, what: &str) {
    for (i, ids) in reference["ids"].as_array().unwrap().iter().enumerate() {
        let ids: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
        let ours: Vec<f32> = Vec::try_from(model.logits(&ids).unwrap().flatten(0, -1)).unwrap();
        let diff = max_abs_diff(&ours, &read_f32(&dir.join(format!("logits-{i}.f32"))));
        assert!(diff <= 1e-4, "{what}, prompt {i}: max |logit difference| {diff} against transformers");
    }
}

fn as_number(value: &MetaValue) -> Option<f64> {
    value.as_f64().or_else(|| value.as_u64().map(|v| v as f64))
}

/// Every tensor of `expected` is in `ours` under the same name, type F32 and values; every `{arch}.*` metadata
/// value of `expected` is in `ours` too.
fn assert_same_contents(ours: &GgufFile, expected: &GgufFile) {
    let arch = expected.require_str("general.architecture").unwrap();
    assert_eq!(ours.require_str("general.architecture").unwrap(), arch);
    let names = |f: &GgufFile| {
        let mut names: Vec<String> = f.tensors.iter().map(|t| t.name.clone()).collect();
        names.sort();
        names
    };
    assert_eq!(names(ours), names(expected), "{arch}: tensor names differ from the converter's");
    for info in &expected.tensors {
        let (theirs, their_shape) = expected.dequantize(&info.name).unwrap();
        let (mine, my_shape) = ours.dequantize(&info.name).unwrap();
        assert_eq!(my_shape, their_shape, "{arch} {}", info.name);
        assert_eq!(ours.tensor(&info.name).unwrap().kind, GgmlType::F32, "{arch} {}", info.name);
        assert!(mine == theirs, "{arch} {}: values differ (max {})", info.name, max_abs_diff(&mine, &theirs));
    }
    for (key, value) in expected.metadata.iter().filter(|(k, _)| k.starts_with(&format!("{arch}."))) {
        let mine = ours.get(key).unwrap_or_else(|| panic!("{arch}: our file lacks {key}"));
        let same = match (as_number(value), as_number(mine)) {
            (Some(a), Some(b)) => a == b,
            _ => value == mine,
        };
        assert!(same, "{arch}: {key} is {mine:?}, the converter wrote {value:?}");
    }
}

/// Reads the converter's GGUF of `arch` (logits and tokens as transformers'), then writes the checkpoint as GGUF
/// and compares the file with the converter's and its logits with transformers'.
fn assert_gguf_parity(arch: &str) {
    let (dir, reference) = hf_reference(arch, "gguf");
    let converted = dir.path().join("converted.gguf");
    run_python("gguf_convert.py", &[&dir.path().join("model"), &default_model_path(), &converted]).unwrap();
    let model = Model::load(converted.to_str().unwrap(), LoadOptions::default()).unwrap();
    assert_eq!(model.shape().architecture, arch);
    assert_logits_match(&model, dir.path(), &reference, &format!("{arch}: the converter's GGUF"));
    for (text, ids) in reference["prompts"].as_array().unwrap().iter().zip(reference["ids"].as_array().unwrap()) {
        let ids: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
        assert_eq!(model.encode(text.as_str().unwrap()).unwrap(), ids, "{arch}: the GGUF tokenizer's ids");
    }

    let from_hf = Model::load(dir.path().join("model").to_str().unwrap(), LoadOptions::default()).unwrap();
    let ours = dir.path().join("ours.gguf");
    models::writers::save_gguf(&from_hf, &ours, GgmlType::F32).unwrap();
    assert_same_contents(&GgufFile::open(&ours).unwrap(), &GgufFile::open(&converted).unwrap());
    let reloaded = Model::load(ours.to_str().unwrap(), LoadOptions::default()).unwrap();
    assert_logits_match(&reloaded, dir.path(), &reference, &format!("{arch}: the workbench's GGUF"));
}

#[test]
fn llama_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("llama");
}

#[test]
fn qwen2_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("qwen2");
}

#[test]
fn qwen3_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("qwen3");
}

#[test]
fn phi3_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("phi3");
}

#[test]
fn granite_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("granite");
}

#[test]
fn gemma_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("gemma");
}

#[test]
fn gemma2_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("gemma2");
}

#[test]
fn starcoder2_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("starcoder2");
}

#[test]
fn gpt2_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("gpt2");
}

#[test]
fn starcoder_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("gpt_bigcode");
}

#[test]
fn gpt_neox_gguf_matches_transformers_and_the_converter() {
    assert_gguf_parity("gpt_neox");
}

/// Checkpoints llama.cpp cannot hold as they are are refused with the reason, and no file is left.
#[test]
fn gguf_export_refuses_what_llama_cpp_cannot_hold() {
    for (arch, reason) in [("mistral", "sliding window"), ("codegen", "no layout"), ("gemma2", "query_pre_attn_scalar")]
    {
        let (dir, _) = hf_reference(arch, "f32");
        let model = Model::load(dir.path().join("model").to_str().unwrap(), LoadOptions::default()).unwrap();
        let path = dir.path().join("refused.gguf");
        let err = models::writers::save_gguf(&model, &path, GgmlType::F32).unwrap_err().to_string();
        assert!(err.contains(reason), "{arch}: {err}");
        assert!(!path.exists(), "{arch}: a file was left behind");
    }
}
