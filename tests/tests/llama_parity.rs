//! The Llama runtime against transformers on the same GGUF file: logits on eight real code prompts and
//! greedy continuations of 32 tokens.

use integration_tests::{
    default_model, default_model_path, max_abs_diff, read_f32, run_python, stdlib_files, HF_LOGIT_TOLERANCE,
};
use models::GenerationConfig;
use serde_json::{json, Value};

/// Eight prompts of real code: 120 tokens from the middle of eight CPython files, and a chat prompt.
fn prompts(model: &models::Model) -> Vec<Vec<u32>> {
    let mut prompts: Vec<Vec<u32>> = stdlib_files(70)
        .iter()
        .step_by(10)
        .map(|p| {
            let ids = model.tokenizer.encode(&std::fs::read_to_string(p).unwrap(), false).unwrap();
            let start = ids.len() / 3;
            ids[start..(start + 120).min(ids.len())].to_vec()
        })
        .collect();
    prompts.push(model.encode(&model.chat_prompt("Write a Python function is_prime(n).").unwrap()).unwrap());
    prompts
}

#[test]
fn logits_and_greedy_continuations_match_transformers() {
    let model = default_model();
    let prompts = prompts(&model);
    assert_eq!(prompts.len(), 8);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(&input, json!({"prompts": prompts, "new_tokens": 32}).to_string()).unwrap();
    run_python("llama_reference.py", &[&default_model_path(), &input, dir.path()]).unwrap();
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reference.json")).unwrap()).unwrap();

    let mut worst = 0f32;
    for (i, ids) in prompts.iter().enumerate() {
        let ours: Vec<f32> = Vec::try_from(model.logits(ids).unwrap().flatten(0, -1)).unwrap();
        let theirs = read_f32(&dir.path().join(format!("logits-{i}.f32")));
        let diff = max_abs_diff(&ours, &theirs);
        worst = worst.max(diff);
        assert!(diff <= HF_LOGIT_TOLERANCE, "prompt {i}: max |logit difference| {diff} > {HF_LOGIT_TOLERANCE}");
    }
    eprintln!("max |logit difference| over 8 prompts: {worst:e}");

    let generations = model.generate(&prompts, &GenerationConfig::greedy(32), &mut Default::default()).unwrap();
    for (i, generation) in generations.iter().enumerate() {
        let theirs: Vec<u32> = serde_json::from_value(reference["continuations"][i].clone()).unwrap();
        let mut ours = generation.tokens.clone();
        if generation.stop == models::StopReason::Eos {
            ours.push(model.tokenizer.eos_id.unwrap());
        }
        assert_eq!(ours, theirs, "prompt {i}: greedy continuation differs (batched with left padding)");
    }
}
