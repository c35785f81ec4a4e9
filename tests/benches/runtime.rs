//! Runtime benchmark (`./x bench`): batched forward (8 x 128 tokens), greedy generation in f32 and bf16,
//! and `run_with_cache` of every hook point against a plain forward; Hugging Face transformers is timed
//! by `tests/python/bench_hf.py` in the same run, on the same model, inputs and thread count.
//! Results are printed with ratios and written to `runs/bench/runtime.json`; the run fails when a target is missed
//! (forward >= 1.1x, f32 generation >= 1.3x, caching overhead <= 1.15x). `BENCH_SKIP_HF=1` times the
//! workbench alone, for quick iterations; `BENCH_THREADS` and `BENCH_REPEATS` change the defaults (2, 5).

use std::time::Instant;

use integration_tests::{default_model_path, root, run_python, stdlib_files};
use models::tch::Kind;
use models::{GenerationConfig, Hooks, LoadOptions, Model};
use serde_json::{json, Value};

const NEW_TOKENS: usize = 64;

fn median_seconds(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn generation_rate(model: &Model, prompt: &[u32], repeats: usize) -> f64 {
    let config = GenerationConfig { stop_at_eos: false, ..GenerationConfig::greedy(NEW_TOKENS) };
    let seconds = median_seconds(repeats, || {
        let g = model.generate(&[prompt.to_vec()], &config, &mut Hooks::default()).expect("generation runs");
        assert_eq!(g[0].tokens.len(), NEW_TOKENS);
    });
    NEW_TOKENS as f64 / seconds
}

fn main() {
    let threads: i32 = std::env::var("BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    let repeats: usize = std::env::var("BENCH_REPEATS").ok().and_then(|t| t.parse().ok()).unwrap_or(5);
    models::tch::set_num_threads(threads);
    let model = Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::default()).expect("default model loads");
    let batch_ids: Vec<Vec<u32>> = stdlib_files(8)
        .iter()
        .map(|p| {
            let ids = model.tokenizer.encode(&std::fs::read_to_string(p).expect("readable"), false).expect("tokenizes");
            ids[..128].to_vec()
        })
        .collect();
    let prompt = model
        .encode(
            &model
                .chat_prompt("Write a Python function that checks whether a string is a palindrome.")
                .expect("template"),
        )
        .expect("fits");

    let batch = model.batch(&batch_ids).expect("batch");
    let forward = median_seconds(repeats, || drop(model.batch_logits(&batch, &mut Hooks::default()).expect("forward")));
    let cached = median_seconds(repeats, || {
        let mut hooks = Hooks::record_all();
        drop(model.batch_logits(&batch, &mut hooks).expect("forward"));
        assert_eq!(hooks.cache.len(), models::HookPoint::all(model.shape().n_layers).len());
    });
    let generation = generation_rate(&model, &prompt, repeats);
    drop(model);
    let bf16 =
        Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions { kind: Kind::BFloat16, ..Default::default() })
            .expect("bf16 loads");
    let generation_bf16 = generation_rate(&bf16, &prompt, repeats);
    drop(bf16);

    if std::env::var_os("BENCH_SKIP_HF").is_some() {
        println!("workbench only: forward {:.1} tokens/s, generation {generation:.1} tokens/s (bf16 {generation_bf16:.1}), cache overhead {:.2}x", 1024.0 / forward, cached / forward);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("bench.json");
    std::fs::write(
        &input,
        json!({"batch": batch_ids, "prompt": prompt, "new_tokens": NEW_TOKENS, "threads": threads, "repeats": repeats})
            .to_string(),
    )
    .expect("write");
    let hf: Value = serde_json::from_str(
        run_python("bench_hf.py", &[&default_model_path(), &input]).expect("bench_hf.py runs").trim(),
    )
    .expect("JSON");
    let hf_forward = hf["forward_seconds"].as_f64().unwrap_or(f64::NAN);
    let hf_generation = hf["generation_tokens_per_s"].as_f64().unwrap_or(f64::NAN);
    let hf_generation_bf16 = hf["bf16_generation_tokens_per_s"].as_f64().unwrap_or(f64::NAN);

    let rows = [
        ("batched forward 8x128, tokens/s", 1024.0 / forward, 1024.0 / hf_forward, Some(1.1)),
        ("greedy generation f32, tokens/s", generation, hf_generation, Some(1.3)),
        ("greedy generation bf16, tokens/s", generation_bf16, hf_generation_bf16, None),
    ];
    let overhead = cached / forward;
    println!("runtime benchmark: SmolLM2-135M-Instruct, {threads} threads, median of {repeats}");
    println!("{:<36} {:>10} {:>10} {:>7}  target", "", "workbench", "HF", "ratio");
    let mut missed = Vec::new();
    for (name, ours, theirs, target) in rows {
        let ratio = ours / theirs;
        let wanted = target.map_or("reported".to_string(), |t| format!(">= {t}x HF"));
        println!("{name:<36} {ours:>10.1} {theirs:>10.1} {ratio:>6.2}x  {wanted}");
        if target.is_some_and(|t| ratio.is_nan() || ratio < t) {
            missed.push(format!("{name}: {ratio:.2}x, wanted {wanted}"));
        }
    }
    println!("{:<36} {:>10.3} {:>10} {:>6.2}x  <= 1.15x", "run_with_cache (all points) / plain", cached, "", overhead);
    if overhead.is_nan() || overhead > 1.15 {
        missed.push(format!("run_with_cache / plain: {overhead:.2}x, wanted <= 1.15x"));
    }
    let report = json!({
        "threads": threads, "repeats": repeats,
        "forward_seconds": forward, "hf_forward_seconds": hf_forward,
        "cache_all_seconds": cached, "cache_overhead": overhead,
        "generation_tokens_per_s": generation, "hf_generation_tokens_per_s": hf_generation,
        "bf16_generation_tokens_per_s": generation_bf16, "hf_bf16_generation_tokens_per_s": hf_generation_bf16,
    });
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    models::files::write_atomically(
        &out.join("runtime.json"),
        serde_json::to_string_pretty(&report).expect("JSON").as_bytes(),
    )
    .expect("write report");
    assert!(missed.is_empty(), "targets missed: {}", missed.join("; "));
}
