//! Runtime benchmark (`./x bench`): batched forward (8 x 128 tokens) in f32 and bf16, greedy generation in f32, bf16,
//! bf16 weights and int8, and `run_with_cache` of every hook point against a plain forward, on the CPU (whose model and flags it
//! prints); Hugging Face transformers in f32 is timed by `tests/python/bench_hf.py` in the same run, on the same model,
//! inputs and thread count (`integration_tests::runtime`). Results are printed with ratios and written to
//! `runs/bench/runtime.json`; the run fails when a target is missed (ratios to transformers f32: forward f32 >= 1.1x
//! and bf16 >= 1.6x, generation f32 >= 1.3x, with bf16 weights >= 1.8x and int8 >= 2.5x; caching overhead <= 1.15x;
//! top-1 agreement of the bf16-weights and int8 models with f32 on held-out CPython code >= 0.99; the bf16 model's
//! generation and agreement are reported).
//! `BENCH_SKIP_HF=1` times the workbench alone, for quick iterations; `BENCH_THREADS` and `BENCH_REPEATS` change the
//! defaults (2, 5).

use integration_tests::root;
use integration_tests::runtime::{measure, Settings};
use models::tch::Device;

fn main() {
    let settings = Settings {
        device: Device::Cpu,
        threads: std::env::var("BENCH_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2),
        repeats: std::env::var("BENCH_REPEATS").ok().and_then(|t| t.parse().ok()).unwrap_or(5),
        with_transformers: std::env::var_os("BENCH_SKIP_HF").is_none(),
    };
    let report = measure(&settings);
    let value = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
    let (forward, overhead) = (value("forward_seconds"), value("cache_overhead"));
    if !settings.with_transformers {
        println!(
            "workbench only on {}: forward {:.1} tokens/s (bf16 {:.1}), generation {:.1} tokens/s (bf16 {:.1}, bf16 \
             weights {:.1}, int8 {:.1}), cache overhead {overhead:.2}x, top-1 agreement with f32: bf16 {:.4}, bf16 \
             weights {:.4}, int8 {:.4}",
            report["cpu"].as_str().unwrap_or("unknown"),
            1024.0 / forward,
            1024.0 / value("bf16_forward_seconds"),
            value("generation_tokens_per_s"),
            value("bf16_generation_tokens_per_s"),
            value("bf16_weights_generation_tokens_per_s"),
            value("int8_generation_tokens_per_s"),
            value("bf16_agreement"),
            value("bf16_weights_agreement"),
            value("int8_agreement")
        );
        return;
    }
    let hf_forward = 1024.0 / value("hf_forward_seconds");
    let hf_generation = value("hf_generation_tokens_per_s");
    // Every ratio is to transformers in f32 in the same run.
    let rows = [
        ("batched forward 8x128 f32, tokens/s", 1024.0 / forward, hf_forward, Some(1.1)),
        ("batched forward 8x128 bf16, tokens/s", 1024.0 / value("bf16_forward_seconds"), hf_forward, Some(1.6)),
        ("greedy generation f32, tokens/s", value("generation_tokens_per_s"), hf_generation, Some(1.3)),
        ("greedy generation bf16, tokens/s", value("bf16_generation_tokens_per_s"), hf_generation, None),
        (
            "greedy generation bf16 weights, tokens/s",
            value("bf16_weights_generation_tokens_per_s"),
            hf_generation,
            Some(1.8),
        ),
        ("greedy generation int8, tokens/s", value("int8_generation_tokens_per_s"), hf_generation, Some(2.5)),
    ];
    println!("runtime benchmark: SmolLM2-135M-Instruct, {} threads, median of {}", settings.threads, settings.repeats);
    println!("CPU: {}", report["cpu"].as_str().unwrap_or("unknown"));
    println!("{:<40} {:>10} {:>10} {:>7}  target", "", "workbench", "HF f32", "ratio");
    let mut missed = Vec::new();
    for (name, ours, theirs, target) in rows {
        let ratio = ours / theirs;
        let wanted = target.map_or("reported".to_string(), |t| format!(">= {t}x"));
        println!("{name:<40} {ours:>10.1} {theirs:>10.1} {ratio:>6.2}x  {wanted}");
        if target.is_some_and(|t| ratio.is_nan() || ratio < t) {
            missed.push(format!("{name}: {ratio:.2}x, wanted {wanted}"));
        }
    }
    for (dtype, key, target) in
        [("bf16", "bf16", None), ("bf16 weights", "bf16_weights", Some(0.99)), ("int8", "int8", Some(0.99))]
    {
        let agreement = value(&format!("{key}_agreement"));
        let wanted = target.map_or("reported".to_string(), |t| format!(">= {t}"));
        println!(
            "{:<40} {agreement:>10.4} {:>10} {:>7}  {wanted}",
            format!("top-1 agreement {dtype} with f32"),
            "",
            ""
        );
        if target.is_some_and(|t| agreement.is_nan() || agreement < t) {
            missed.push(format!("{dtype} top-1 agreement with f32: {agreement:.4}, wanted {wanted}"));
        }
    }
    let cached = value("cache_all_seconds");
    println!("{:<40} {:>10.3} {:>10} {:>6.2}x  <= 1.15x", "run_with_cache (all points) / plain", cached, "", overhead);
    if overhead.is_nan() || overhead > 1.15 {
        missed.push(format!("run_with_cache / plain: {overhead:.2}x, wanted <= 1.15x"));
    }
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    models::files::write_atomically(&out.join("runtime.json"), text.as_bytes()).expect("write report");
    assert!(missed.is_empty(), "targets missed: {}", missed.join("; "));
}
