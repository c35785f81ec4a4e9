//! Activations out (`workbench cache`'s function): the file the workbench writes, read by the `safetensors` package,
//! holds transformers' residual stream, final norm output and MLP activations of the same tokens, under
//! TransformerLens's names, in f32 and f16.

use integration_tests::{default_model, default_model_path, run_python};
use models::activations::{matching_points, write_activations};

#[test]
fn the_activations_file_holds_transformers_activations_under_hook_names() {
    let model = default_model();
    let texts = vec!["def add(a, b):\n    return a + b\n".to_string(), "import os\nprint(os.getcwd())".to_string()];
    let patterns = ["blocks.*.hook_resid_post", "blocks.3.mlp.hook_post", "ln_final.hook_normalized"];
    let points = matching_points(&patterns.map(str::to_string), model.shape().n_layers).unwrap();
    assert_eq!(points.len(), 30 + 2);
    let dir = tempfile::tempdir().unwrap();
    let (f32_file, f16_file) = (dir.path().join("acts.safetensors"), dir.path().join("acts-f16.safetensors"));
    let written = write_activations(&model, &texts, &points, 64, false, &f32_file, &models::Silent).unwrap();
    write_activations(&model, &texts, &points, 64, true, &f16_file, &models::Silent).unwrap();
    assert_eq!(std::fs::metadata(&f32_file).unwrap().len(), written.bytes);

    let out = run_python("activations_reference.py", &[&default_model_path(), &f32_file, &f16_file]).unwrap();
    let reference: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    eprintln!("{}", reference["diffs"]);
    assert_eq!(reference["texts"], serde_json::json!(texts));
    assert_eq!(reference["tokens"].as_u64(), Some(written.tokens as u64));
    assert_eq!(reference["names"].as_array().unwrap().len(), 32 + 2, "{}", reference["names"]);
    assert_eq!(reference["dtypes"]["blocks.3.mlp.hook_post"], "float16");
    assert_eq!(reference["dtypes"]["tokens"], "int64");
    for (name, diff) in reference["diffs"].as_object().unwrap() {
        assert!(diff.as_f64().unwrap() < 1e-3, "{name}: relative difference {diff} from transformers");
    }
    assert!(reference["half_error"].as_f64().unwrap() < 1e-3, "{}", reference["half_error"]);

    let error = matching_points(&["blocks.*.hook_nothing".to_string()], 30).unwrap_err().to_string();
    assert!(error.contains("matches no hook point"), "{error}");
}

#[test]
fn every_exported_hook_point_equals_transformer_lens_under_the_same_name() {
    let (dir, _) = integration_tests::hf_reference("llama", "f32");
    let model_dir = dir.path().join("model");
    let model = models::Model::load(&model_dir.display().to_string(), models::LoadOptions::default()).unwrap();
    let texts = vec!["def add(a, b):\n    return a + b\n".to_string(), "for i in range(10):\n    print(i)".to_string()];
    let points = matching_points(&["*".to_string()], model.shape().n_layers).unwrap();
    assert_eq!(points.len(), 2 + 8 * model.shape().n_layers, "every hook point but the attention patterns");
    let file = dir.path().join("acts.safetensors");
    write_activations(&model, &texts, &points, 64, false, &file, &models::Silent).unwrap();
    let out = run_python("transformer_lens_reference.py", &[&model_dir, &file]).unwrap();
    let reference: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(reference["missing"], serde_json::json!([]), "names TransformerLens does not have");
    let diffs = reference["diffs"].as_object().unwrap();
    assert_eq!(diffs.len(), points.len());
    for (name, diff) in diffs {
        assert!(diff.as_f64().unwrap() < 1e-4, "{name}: relative difference {diff} from TransformerLens");
    }
}
