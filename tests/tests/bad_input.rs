//! Bad input gets a typed error with a clear message, never a panic.

use std::path::Path;

use integration_tests::{default_model_path, TinyLlama};
use models::gguf::{GgmlType, GgufFile, GgufWriter, MetaValue};
use models::{LoadOptions, Model, ModelError};

fn load(path: &Path) -> Result<Model, ModelError> {
    Model::from_gguf(path, LoadOptions::default(), &models::Silent)
}

fn write(dir: &Path, name: &str, writer: &GgufWriter) -> std::path::PathBuf {
    let path = dir.join(name);
    writer.write(&path).unwrap();
    path
}

fn expect_err(result: Result<Model, ModelError>) -> ModelError {
    match result {
        Ok(_) => panic!("loading succeeded but should have failed"),
        Err(e) => e,
    }
}

#[test]
fn the_tiny_model_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&write(dir.path(), "ok.gguf", &TinyLlama::default().writer(1))).unwrap();
    let ids = model.encode("hello").unwrap();
    assert_eq!(model.logits(&ids).unwrap().size(), [5, 256]);
}

#[test]
fn wrong_magic_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gguf");
    std::fs::write(&path, b"GGML\x03\0\0\0 this is not a gguf file").unwrap();
    let err = GgufFile::open(&path).unwrap_err();
    assert!(matches!(err, ModelError::BadFormat { .. }) && err.to_string().contains("magic"), "{err}");
}

#[test]
fn truncated_files_are_reported_with_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(default_model_path()).unwrap();
    let in_header = dir.path().join("header.gguf");
    std::fs::write(&in_header, &real[..1 << 20]).unwrap();
    let err = GgufFile::open(&in_header).unwrap_err();
    assert!(matches!(err, ModelError::Truncated { .. }) && err.to_string().contains("truncated"), "{err}");

    let in_data = dir.path().join("data.gguf");
    std::fs::write(&in_data, &real[..40 << 20]).unwrap();
    GgufFile::open(&in_data).expect("the header is complete");
    let err = expect_err(load(&in_data));
    assert!(matches!(err, ModelError::Truncated { .. }) && err.to_string().contains("data of tensor"), "{err}");
}

#[test]
fn tensor_data_out_of_bounds_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = TinyLlama::default().writer(2).to_bytes();
    let path = dir.path().join("short.gguf");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = expect_err(load(&path));
    assert!(matches!(err, ModelError::Truncated { .. }), "{err}");
}

#[test]
fn unsupported_quantisation_names_the_tensor_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TinyLlama::default().writer(3);
    w.remove_tensor("blk.0.ffn_up.weight");
    w.add_raw("blk.0.ffn_up.weight", &[64, 32], GgmlType::Other(99), vec![0; 64]);
    let err = expect_err(load(&write(dir.path(), "q.gguf", &w)));
    assert!(
        matches!(err, ModelError::UnsupportedType { .. })
            && err.to_string().contains("blk.0.ffn_up.weight")
            && err.to_string().contains("#99"),
        "{err}"
    );
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TinyLlama::default().writer(4);
    assert!(w.remove_tensor("blk.1.attn_v.weight"));
    let err = expect_err(load(&write(dir.path(), "m.gguf", &w)));
    assert!(matches!(err, ModelError::MissingTensor(_)) && err.to_string().contains("blk.1.attn_v.weight"), "{err}");
}

#[test]
fn a_tensor_of_the_wrong_shape_is_reported_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TinyLlama::default().writer(5);
    w.remove_tensor("blk.0.attn_output.weight");
    w.add_f32("blk.0.attn_output.weight", &[32, 31], &[0.0; 32 * 31], GgmlType::F32).unwrap();
    let err = expect_err(load(&write(dir.path(), "s.gguf", &w)));
    assert!(
        matches!(&err, ModelError::ShapeMismatch { expected, found, .. } if expected == &[32, 32] && found == &[32, 31]),
        "{err}"
    );
}

#[test]
fn an_unknown_architecture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TinyLlama::default().writer(6);
    w.set("general.architecture", MetaValue::String("mamba9".into()));
    let err = expect_err(load(&write(dir.path(), "a.gguf", &w)));
    assert!(
        matches!(err, ModelError::UnknownArchitecture(_))
            && err.to_string().contains("mamba9")
            && err.to_string().contains("llama"),
        "{err}"
    );
}

#[test]
fn a_missing_config_value_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TinyLlama::default().writer(7);
    w.remove_metadata("llama.feed_forward_length");
    let err = expect_err(load(&write(dir.path(), "c.gguf", &w)));
    assert!(err.to_string().contains("llama.feed_forward_length"), "{err}");
}

#[test]
fn a_merge_outside_the_vocabulary_is_a_tokenizer_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TinyLlama::default().writer(9);
    w.set("tokenizer.ggml.merges", MetaValue::Array(vec![MetaValue::String("a b".into())]));
    let err = expect_err(load(&write(dir.path(), "t.gguf", &w)));
    assert!(matches!(err, ModelError::Tokenizer(_)) && err.to_string().contains("\"ab\""), "{err}");
}

#[test]
fn empty_and_overlong_prompts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&write(dir.path(), "ok.gguf", &TinyLlama::default().writer(8))).unwrap();
    assert!(matches!(model.encode(""), Err(ModelError::InvalidInput(_))));
    let err = model.encode("this prompt is longer than sixteen byte tokens").unwrap_err();
    assert!(matches!(err, ModelError::ContextOverflow { context: 16, .. }), "{err}");
    let g = model
        .generate_text(
            &["twelve bytes"],
            &models::GenerationConfig { stop_at_eos: false, ..models::GenerationConfig::greedy(50) },
        )
        .unwrap()
        .remove(0);
    assert_eq!((g.tokens.len(), g.stop), (4, models::StopReason::ContextFull));
    assert!(matches!(model.chat_prompt("hi"), Err(ModelError::ChatTemplate(_))));
}

#[test]
fn unknown_models_devices_and_hook_names_are_errors() {
    assert!(matches!(Model::load("no-such-model", LoadOptions::default()), Err(ModelError::UnknownModel { .. })));
    assert!(models::parse_device("tpu").is_err());
    assert!(models::parse_kind("f8").is_err());
    assert!("blocks.0.mlp.hook_nothing".parse::<models::HookPoint>().is_err());
}
