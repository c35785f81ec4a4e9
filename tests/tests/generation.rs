//! Generation: KV-cache consistency, batching with padding, seeded sampling, stop sequences, limits; the bf16 and
//! int8 models against f32.

use experiments::code_metrics::{held_out_files, top1_agreement};
use integration_tests::default_model;
use models::{GenerationConfig, Hooks, LoadOptions, Model, Neuron, Sampling, StopReason};

fn sampled(seed: u64, top_k: Option<usize>) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: 12,
        sampling: Sampling::Random { temperature: 0.9, top_k, top_p: Some(0.95), seed },
        stop_sequences: vec![],
        stop_at_eos: true,
    }
}

#[test]
fn kv_cache_decoding_matches_full_forward_passes() {
    let model = default_model();
    let prompt = model.encode("def fibonacci(n):\n    ").unwrap();
    let generation = model
        .generate(std::slice::from_ref(&prompt), &GenerationConfig::greedy(16), &mut Hooks::default())
        .unwrap()
        .remove(0);
    assert_eq!(generation.tokens.len(), 16);
    // Recompute each step without a cache: the argmax must be the generated token.
    let mut ids = prompt.clone();
    for &token in &generation.tokens {
        let logits = model.logits(&ids).unwrap();
        let next = logits.get(ids.len() as i64 - 1).argmax(-1, false).int64_value(&[]) as u32;
        assert_eq!(next, token);
        ids.push(token);
    }
}

#[test]
fn batched_generation_with_padding_equals_one_by_one() {
    let model = default_model();
    let prompts: Vec<Vec<u32>> = [
        "import re\n",
        "class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):",
        "# sort a list\ndef",
    ]
    .iter()
    .map(|p| model.encode(p).unwrap())
    .collect();
    let config = GenerationConfig::greedy(10);
    let batched = model.generate(&prompts, &config, &mut Hooks::default()).unwrap();
    for (prompt, together) in prompts.iter().zip(&batched) {
        let alone = model.generate(std::slice::from_ref(prompt), &config, &mut Hooks::default()).unwrap().remove(0);
        assert_eq!(together.tokens, alone.tokens);
    }
}

#[test]
fn sampling_is_reproducible_per_seed_and_top_k_one_is_greedy() {
    let model = default_model();
    let prompt = vec![model.encode("def parse(line):").unwrap()];
    let run =
        |config: &GenerationConfig| model.generate(&prompt, config, &mut Hooks::default()).unwrap().remove(0).tokens;
    assert_eq!(run(&sampled(3, None)), run(&sampled(3, None)));
    let distinct: std::collections::HashSet<Vec<u32>> = (0..6).map(|s| run(&sampled(s, None))).collect();
    assert!(distinct.len() > 1, "six seeds gave one continuation");
    let mut greedy = GenerationConfig::greedy(12);
    greedy.stop_at_eos = true;
    assert_eq!(run(&sampled(11, Some(1))), run(&greedy));
}

#[test]
fn stop_sequences_and_token_limits_end_generation() {
    let model = default_model();
    let config = GenerationConfig {
        max_new_tokens: 64,
        sampling: Sampling::Greedy,
        stop_sequences: vec!["\n".into()],
        stop_at_eos: true,
    };
    let g = model.generate_text(&["def square(x):\n    return"], &config).unwrap().remove(0);
    assert_eq!(g.stop, StopReason::StopSequence("\n".into()));
    assert!(!g.text.contains('\n') && !g.text.is_empty(), "{:?}", g.text);
    let g = model
        .generate_text(&["Once upon a time"], &GenerationConfig { stop_at_eos: false, ..GenerationConfig::greedy(5) })
        .unwrap()
        .remove(0);
    assert_eq!((g.tokens.len(), g.stop), (5, StopReason::MaxTokens));
}

#[test]
fn chat_generation_uses_the_models_template_and_stops_at_im_end() {
    let model = default_model();
    let prompt = model.chat_prompt("What is 2 + 2? Answer with one number.").unwrap();
    assert!(prompt.starts_with("<|im_start|>system\n") && prompt.ends_with("<|im_start|>assistant\n"), "{prompt}");
    let g = model.generate_text(&[&prompt], &GenerationConfig::greedy(40)).unwrap().remove(0);
    assert_eq!(g.stop, StopReason::Eos, "{:?}", g.text);
    assert!(g.text.contains('4'), "{:?}", g.text);
}

#[test]
fn invalid_sampling_settings_are_errors() {
    let model = default_model();
    let prompt = vec![model.encode("x").unwrap()];
    for sampling in [
        Sampling::Random { temperature: 0.0, top_k: None, top_p: None, seed: 0 },
        Sampling::Random { temperature: 1.0, top_k: None, top_p: Some(1.5), seed: 0 },
    ] {
        let config = GenerationConfig { sampling, ..GenerationConfig::greedy(3) };
        assert!(model.generate(&prompt, &config, &mut Hooks::default()).is_err());
    }
}

/// Models with packed weights and f32 activations predict the f32 model's next token on held-out CPython code at
/// nearly every position: int8 (8-bit blocks of 32 inputs; SmolLM2's weights were Q4_1 and Q8_0 blocks, which its
/// blocks hold exactly) and bf16 weights; the bf16 model (weights and activations) at 96% (the benchmarks ask 99% over
/// all 23 files). A model with packed weights generates, and refuses to be patched, since its steps would not see the
/// edit.
#[test]
fn bf16_and_int8_models_agree_with_f32_and_packed_weights_cannot_be_patched() {
    let model = default_model();
    let held_out = held_out_files(3).unwrap();
    for (dtype, wanted) in [("bf16", 0.95), ("bf16-weights", 0.99), ("int8", 0.99)] {
        let other = Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::parse("cpu", dtype).unwrap()).unwrap();
        let agreement = top1_agreement(&model, &other, &held_out, 256).unwrap();
        assert_eq!(agreement.tokens, 3 * 256);
        assert!(agreement.rate() >= wanted, "{dtype}: top-1 agreement with f32 {:.4}", agreement.rate());
        if let Some(format) = other.packed_weights() {
            let prompt = vec![other.encode("def add(a, b):\n    return").unwrap()];
            let generated = other.generate(&prompt, &GenerationConfig::greedy(6), &mut Hooks::default()).unwrap();
            assert_eq!(generated[0].tokens.len(), 6);
            let neuron = Neuron { layer: 3, index: 7 };
            let error = other.set_neuron_output(neuron, &vec![0.0; model.shape().d_model]).unwrap_err();
            assert!(error.to_string().contains(&format.to_string()), "{error}");
            assert!(other.reinitialize(1).is_err());
        }
    }
}
