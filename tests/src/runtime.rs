//! The runtime benchmark's measurements, shared by `benches/runtime.rs` (CPU, with targets) and the GPU check
//! (`tests/gpu.rs`, figures only): batched forward (8 x 128 tokens) in f32 and bf16, greedy generation in f32, bf16,
//! bf16 weights and int8 (with each one's top-1 agreement with f32 on held-out CPython code), and
//! `run_with_cache` of every hook point against a plain forward, with Hugging Face transformers timed by
//! `tests/python/bench_hf.py` on the same model, inputs, device and thread count.

use std::time::Instant;

use models::tch::Device;
use models::{GenerationConfig, Hooks, LoadOptions, Model};
use serde_json::{json, Value};

use crate::{default_model_path, run_python, stdlib_files};

/// Tokens generated per timed generation.
pub const NEW_TOKENS: usize = 64;

/// Held-out CPython files over which the bf16 and int8 models' top-1 tokens are compared with f32's (all 23).
const AGREEMENT_FILES: usize = 23;

/// Leading tokens of each held-out file compared.
const AGREEMENT_TOKENS: usize = 512;

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

/// The CPU's model name and the flags that decide which kernels run (AVX2, AVX-512, its bf16 and VNNI extensions,
/// AMX), from `/proc/cpuinfo`; "unknown" where it cannot be read.
pub fn cpu_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
    };
    let flags = field("flags").unwrap_or_default();
    let wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"];
    let present: Vec<&str> = wanted.into_iter().filter(|w| flags.split_whitespace().any(|f| f == *w)).collect();
    format!("{} [{}]", field("model name").unwrap_or_else(|| "unknown".into()), present.join(" "))
}

/// Measures the workbench (and transformers, if asked) on SmolLM2-135M-Instruct; the figures as JSON:
/// `forward_seconds` and `bf16_forward_seconds`, `cache_all_seconds`, `cache_overhead`, `generation_tokens_per_s`
/// with its `bf16_`, `bf16_weights_` and `int8_` variants, the top-1 agreement of those models with f32 over held-out
/// CPython tokens (`bf16_agreement`, ...), and the `hf_` figures (NaN when transformers was not timed).
pub fn measure(settings: &Settings) -> Value {
    models::tch::set_num_threads(settings.threads);
    let load = |dtype: &str| {
        let mut options = LoadOptions::parse("cpu", dtype).expect("a dtype");
        options.device = settings.device;
        Model::load(models::catalogue::DEFAULT_MODEL, options).expect("the default model loads")
    };
    let model = load("f32");
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
    let forward_time = |model: &Model| {
        median_seconds(device, repeats, || {
            drop(model.batch_logits(&batch, &mut Hooks::default()).expect("forward"));
        })
    };
    let forward = forward_time(&model);
    let cached = median_seconds(device, repeats, || {
        let mut hooks = Hooks::record_all();
        drop(model.batch_logits(&batch, &mut hooks).expect("forward"));
        assert_eq!(hooks.cache.len(), models::HookPoint::all(model.shape().n_layers).len());
    });
    let generation = generation_rate(&model, &prompt, settings);
    let held_out = experiments::code_metrics::held_out_files(AGREEMENT_FILES).expect("held-out CPython files");
    let agreement = |other: &Model| {
        experiments::code_metrics::top1_agreement(&model, other, &held_out, AGREEMENT_TOKENS).expect("agreement").rate()
    };
    let bf16 = load("bf16");
    let (forward_bf16, generation_bf16, bf16_agreement) =
        (forward_time(&bf16), generation_rate(&bf16, &prompt, settings), agreement(&bf16));
    drop(bf16);
    let packed = |dtype: &str| {
        let model = load(dtype);
        (generation_rate(&model, &prompt, settings), agreement(&model))
    };
    let ((generation_bf16_weights, bf16_weights_agreement), (generation_int8, int8_agreement)) =
        (packed("bf16-weights"), packed("int8"));

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
        "cpu": cpu_description(),
        "forward_seconds": forward, "hf_forward_seconds": hf_value("forward_seconds"),
        "bf16_forward_seconds": forward_bf16,
        "cache_all_seconds": cached, "cache_overhead": cached / forward,
        "generation_tokens_per_s": generation, "hf_generation_tokens_per_s": hf_value("generation_tokens_per_s"),
        "bf16_generation_tokens_per_s": generation_bf16, "int8_generation_tokens_per_s": generation_int8,
        "bf16_weights_generation_tokens_per_s": generation_bf16_weights,
        "bf16_agreement": bf16_agreement, "bf16_weights_agreement": bf16_weights_agreement,
        "int8_agreement": int8_agreement,
        "hf_bf16_generation_tokens_per_s": hf_value("bf16_generation_tokens_per_s"),
    })
}
