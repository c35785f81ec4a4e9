//! Runtime benchmark (`./x bench`): batched forward (8 x 128 tokens), greedy generation in f32 and bf16,
//! and `run_with_cache` of every hook point against a plain forward, on the CPU; Hugging Face transformers is timed
//! by `tests/python/bench_hf.py` in the same run, on the same model, inputs and thread count
//! (`integration_tests::runtime`). Results are printed with ratios and written to `runs/bench/runtime.json`; the run
//! fails when a target is missed (forward >= 1.1x, f32 generation >= 1.3x, caching overhead <= 1.15x).
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
            "workbench only: forward {:.1} tokens/s, generation {:.1} tokens/s (bf16 {:.1}), cache overhead {overhead:.2}x",
            1024.0 / forward,
            value("generation_tokens_per_s"),
            value("bf16_generation_tokens_per_s")
        );
        return;
    }
    let rows = [
        ("batched forward 8x128, tokens/s", 1024.0 / forward, 1024.0 / value("hf_forward_seconds"), Some(1.1)),
        (
            "greedy generation f32, tokens/s",
            value("generation_tokens_per_s"),
            value("hf_generation_tokens_per_s"),
            Some(1.3),
        ),
        (
            "greedy generation bf16, tokens/s",
            value("bf16_generation_tokens_per_s"),
            value("hf_bf16_generation_tokens_per_s"),
            None,
        ),
    ];
    println!("runtime benchmark: SmolLM2-135M-Instruct, {} threads, median of {}", settings.threads, settings.repeats);
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
    let cached = value("cache_all_seconds");
    println!("{:<36} {:>10.3} {:>10} {:>6.2}x  <= 1.15x", "run_with_cache (all points) / plain", cached, "", overhead);
    if overhead.is_nan() || overhead > 1.15 {
        missed.push(format!("run_with_cache / plain: {overhead:.2}x, wanted <= 1.15x"));
    }
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    models::files::write_atomically(&out.join("runtime.json"), text.as_bytes()).expect("write report");
    assert!(missed.is_empty(), "targets missed: {}", missed.join("; "));
}
