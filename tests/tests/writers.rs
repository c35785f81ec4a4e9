//! Writers: the default model, with a neuron edited, written as a Hugging Face folder that transformers
//! loads with the same logits and token ids, and that this runtime reloads identically.

use integration_tests::{default_model, max_abs_diff, read_f32, run_python, HF_LOGIT_TOLERANCE};
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
        assert!(diff <= HF_LOGIT_TOLERANCE, "prompt {i}: transformers' logits of the written folder differ by {diff}");
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

/// Fraction of positions whose top-1 token agrees between two logits tensors `[seq, vocab]`.
fn top1_agreement(a: &models::tch::Tensor, b: &models::tch::Tensor) -> f64 {
    a.argmax(-1, false)
        .eq_tensor(&b.argmax(-1, false))
        .to_kind(models::tch::Kind::Float)
        .mean(models::tch::Kind::Float)
        .double_value(&[])
}

#[test]
fn gguf_exports_are_read_by_gguf_py_transformers_and_this_runtime() {
    use models::gguf::{GgmlType, GgufFile};
    use models::writers::save_gguf;

    let model = default_model();
    let prompts: Vec<Vec<u32>> =
        ["import os\nprint(os.getcwd())\n", "class Point:\n    def __init__(self, x, y):\n        self.x = x"]
            .iter()
            .map(|t| model.encode(t).unwrap())
            .collect();
    let original: Vec<_> = prompts.iter().map(|p| model.logits(p).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    for (kind, label) in [(GgmlType::F32, "f32"), (GgmlType::F16, "f16"), (GgmlType::Q8_0, "q8_0")] {
        let sub = dir.path().join(label);
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join("model.gguf");
        save_gguf(&model, &path, kind).unwrap();

        let input = sub.join("in.json");
        std::fs::write(&input, json!({"prompts": prompts}).to_string()).unwrap();
        let mut args = vec![path.clone(), sub.clone()];
        if kind == GgmlType::F32 {
            args.push(input);
        }
        let arg_refs: Vec<&std::path::Path> = args.iter().map(|p| p.as_path()).collect();
        run_python("gguf_check.py", &arg_refs).unwrap();
        let check: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(sub.join("check.json")).unwrap()).unwrap();
        assert_eq!(check["tensors"], 272, "{label}");
        assert_eq!(check["architecture"], "llama");
        assert_eq!(check["pre"], "smollm");
        let file = GgufFile::open(&path).unwrap();
        for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.3.ffn_down.weight", "blk.0.attn_norm.weight"] {
            let (ours, _) = file.dequantize(name).unwrap();
            assert_eq!(
                max_abs_diff(&ours, &read_f32(&sub.join(format!("{name}.f32")))),
                0.0,
                "{label} {name}: gguf-py reads other values"
            );
        }

        let reloaded = Model::load(path.to_str().unwrap(), LoadOptions::default()).unwrap();
        assert_eq!(reloaded.encode("x = 12 + 345").unwrap(), model.encode("x = 12 + 345").unwrap());
        for (i, (p, before)) in prompts.iter().zip(&original).enumerate() {
            let after = reloaded.logits(p).unwrap();
            let diff = (&after - before).abs().max().double_value(&[]);
            let agreement = top1_agreement(&after, before);
            match kind {
                GgmlType::F32 => {
                    assert_eq!(diff, 0.0, "F32 export changes logits");
                    let hf = read_f32(&sub.join(format!("logits-{i}.f32")));
                    let ours: Vec<f32> = Vec::try_from(before.flatten(0, -1)).unwrap();
                    assert!(
                        max_abs_diff(&ours, &hf) <= HF_LOGIT_TOLERANCE,
                        "transformers reads the exported GGUF differently"
                    );
                }
                _ => assert!(
                    agreement >= 0.9,
                    "{label}: top-1 agrees on {agreement} of positions (max logit change {diff})"
                ),
            }
            eprintln!("{label} prompt {i}: max logit change {diff:.4}, top-1 agreement {agreement:.3}");
        }
    }
}
