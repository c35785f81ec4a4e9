//! Generation: KV-cache consistency, batching with padding, seeded sampling, stop sequences, limits.

use integration_tests::default_model;
use models::{GenerationConfig, Hooks, Sampling, StopReason};

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
