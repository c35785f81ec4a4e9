//! The runtime benchmark's measurements, shared by `benches/runtime.rs` (CPU, with targets) and the GPU check
//! (`tests/gpu.rs`, figures only): batched forward (8 x 128 tokens), greedy generation in f32 and bf16, and
//! `run_with_cache` of every hook point against a plain forward, with Hugging Face transformers timed by
//! `tests/python/bench_hf.py` on the same model, inputs, device and thread count.

use std::time::Instant;

use models::tch::{Device, Kind};
use models::{GenerationConfig, Hooks, LoadOptions, Model};
use serde_json::{json, Value};

use crate::{default_model_path, run_python, stdlib_files};

/// Tokens generated per timed generation.
pub const NEW_TOKENS: usize = 64;

/// How a measurement runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Where both runtimes run.
    pub device: Device,
    /// CPU threads of both runtimes.
    pub threads: i32,
    /// Timed repeats after one warm-up; the median is reported.
    pub repeats: usize,
    /// Whether transformers is timed too.
    pub with_transformers: bool,
}

/// Waits for queued CUDA work, so that a timer reads finished work.
fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        models::tch::Cuda::synchronize(index as i64);
    }
}

/// Median seconds of `repeats` timed runs of `f` on `device`, after one untimed warm-up run.
pub fn median_seconds(device: Device, repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    synchronize(device);
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            synchronize(device);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn generation_rate(model: &Model, prompt: &[u32], settings: &Settings) -> f64 {
    let config = GenerationConfig { stop_at_eos: false, ..GenerationConfig::greedy(NEW_TOKENS) };
    let seconds = median_seconds(settings.device, settings.repeats, || {
        let g = model.generate(&[prompt.to_vec()], &config, &mut Hooks::default()).expect("generation runs");
        assert_eq!(g[0].tokens.len(), NEW_TOKENS);
    });
    NEW_TOKENS as f64 / seconds
}

/// Measures the workbench (and transformers, if asked) on SmolLM2-135M-Instruct; the figures as JSON:
/// `forward_seconds`, `cache_all_seconds`, `cache_overhead`, `generation_tokens_per_s`,
/// `bf16_generation_tokens_per_s`, and the `hf_` ones (NaN when transformers was not timed).
pub fn measure(settings: &Settings) -> Value {
    models::tch::set_num_threads(settings.threads);
    let load = |kind: Kind| {
        Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions { device: settings.device, kind })
            .expect("the default model loads")
    };
    let model = load(Kind::Float);
    let batch_ids: Vec<Vec<u32>> = stdlib_files(8)
        .iter()
        .map(|p| {
            let ids = model.tokenizer.encode(&std::fs::read_to_string(p).expect("readable"), false).expect("tokenizes");
            ids[..128].to_vec()
        })
        .collect();
    let question = "Write a Python function that checks whether a string is a palindrome.";
    let prompt = model.encode(&model.chat_prompt(question).expect("template")).expect("fits");

    let batch = model.batch(&batch_ids).expect("batch");
    let (device, repeats) = (settings.device, settings.repeats);
    let forward = median_seconds(device, repeats, || {
        drop(model.batch_logits(&batch, &mut Hooks::default()).expect("forward"));
    });
    let cached = median_seconds(device, repeats, || {
        let mut hooks = Hooks::record_all();
        drop(model.batch_logits(&batch, &mut hooks).expect("forward"));
        assert_eq!(hooks.cache.len(), models::HookPoint::all(model.shape().n_layers).len());
    });
    let generation = generation_rate(&model, &prompt, settings);
    drop(model);
    let generation_bf16 = generation_rate(&load(Kind::BFloat16), &prompt, settings);

    let hf = if settings.with_transformers {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("bench.json");
        let device_name = match device {
            Device::Cuda(i) => format!("cuda:{i}"),
            _ => "cpu".to_string(),
        };
        let request = json!({"batch": batch_ids, "prompt": prompt, "new_tokens": NEW_TOKENS,
            "threads": settings.threads, "repeats": repeats, "device": device_name});
        std::fs::write(&input, request.to_string()).expect("write the request");
        let output = run_python("bench_hf.py", &[&default_model_path(), &input]).expect("bench_hf.py runs");
        serde_json::from_str(output.trim()).expect("bench_hf.py prints JSON")
    } else {
        Value::Null
    };
    let hf_value = |key: &str| hf[key].as_f64().unwrap_or(f64::NAN);
    json!({
        "device": format!("{device:?}"), "threads": settings.threads, "repeats": repeats,
        "forward_seconds": forward, "hf_forward_seconds": hf_value("forward_seconds"),
        "cache_all_seconds": cached, "cache_overhead": cached / forward,
        "generation_tokens_per_s": generation, "hf_generation_tokens_per_s": hf_value("generation_tokens_per_s"),
        "bf16_generation_tokens_per_s": generation_bf16,
        "hf_bf16_generation_tokens_per_s": hf_value("bf16_generation_tokens_per_s"),
    })
}
