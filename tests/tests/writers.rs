//! Writers: the default model, with a neuron edited, written as a Hugging Face folder that transformers
//! loads with the same logits and token ids, and that this runtime reloads identically.

use integration_tests::{default_model, max_abs_diff, read_f32, run_python};
use models::writers::save_hf_folder;
use models::{LoadOptions, Model, Neuron};
use serde_json::json;

#[test]
fn an_edited_model_round_trips_through_transformers() {
    let model = default_model();
    let neuron = Neuron { layer: 4, index: 99 };
    let saved = model.neuron_weights(neuron).unwrap();
    let edited: Vec<f32> = saved.output.iter().map(|v| v * 3.0 + 0.01).collect();
    model.set_neuron_output(neuron, &edited).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("patched");
    let written = save_hf_folder(&model, &folder);
    let texts = ["def mean(xs):\n    return sum(xs) / len(xs)\n", "x = [1, 22, 333]  # ünïcode"];
    let prompts: Vec<Vec<u32>> = texts.iter().map(|t| model.encode(t).unwrap()).collect();
    let ours: Vec<Vec<f32>> =
        prompts.iter().map(|p| Vec::try_from(model.logits(p).unwrap().flatten(0, -1)).unwrap()).collect();
    model.set_neuron_weights(neuron, &saved).unwrap();
    written.unwrap();
    assert!(save_hf_folder(&model, &folder).is_err(), "an existing folder must not be overwritten");

    let input = dir.path().join("in.json");
    std::fs::write(&input, json!({"prompts": prompts, "texts": texts}).to_string()).unwrap();
    run_python("hf_logits.py", &[&folder, &input, dir.path()]).unwrap();
    for (i, logits) in ours.iter().enumerate() {
        let diff = max_abs_diff(logits, &read_f32(&dir.path().join(format!("logits-{i}.f32"))));
        assert!(diff <= 1e-4, "prompt {i}: transformers' logits of the written folder differ by {diff}");
    }
    let ids: Vec<Vec<u32>> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("tokens.json")).unwrap()).unwrap();
    assert_eq!(ids, prompts, "transformers tokenizes differently with the written tokenizer.json");

    let reloaded = Model::load(folder.to_str().unwrap(), LoadOptions::default()).unwrap();
    for (p, logits) in prompts.iter().zip(&ours) {
        let again: Vec<f32> = Vec::try_from(reloaded.logits(p).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(max_abs_diff(&again, logits), 0.0, "reloading the written folder changes logits");
    }
    assert_eq!(reloaded.chat_prompt("hi").unwrap(), model.chat_prompt("hi").unwrap());
}
