//! Large-model benchmark (`./x bench`): a 1.46e9-parameter Qwen2 checkpoint with random weights, written by
//! transformers in bf16 in three 1 GB shards (`tests/python/large_checkpoint.py`, Qwen2.5-Coder-1.5B's blocks with
//! SmolLM2's tokenizer; built once into `$WORKBENCH_CACHE/bench/large-qwen2`).
//!
//! Memory: for f32 and bf16, a fresh process starts libtorch, notes its resident memory, loads the checkpoint on the
//! CPU and reports its peak resident memory (`VmHWM`) after loading, and again after a greedy generation and a
//! `run_with_cache` of every hook point; the run fails when the peak after loading exceeds 1.15x the weights in that
//! dtype (the whole process counted, libtorch included; what loading adds to it is printed beside). Speed: greedy generation (tokens/s) and
//! `run_with_cache` of every hook point over a 64-token prompt (tokens/s) in f32 and bf16, against transformers
//! (`tests/python/bench_large_hf.py`, which also reports its own peak memory after loading) in the same run.
//! Figures go to `runs/bench/large_model.json`. `BENCH_SKIP_HF=1` skips transformers, `BENCH_REPEATS` (default 2)
//! sets the timed repeats.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use integration_tests::runtime::median_seconds;
use integration_tests::{default_model_path, root, run_python, stdlib_files};
use models::tch::{Device, Kind};
use models::{GenerationConfig, Hooks, LoadOptions, Model};
use serde_json::{json, Value};

/// Set in the child process that loads the model for the memory measurement: the dtype to load.
const CHILD: &str = "LARGE_MODEL_BENCH_CHILD";
/// Peak resident memory after loading, as a multiple of the weights, that the benchmark accepts.
const MEMORY_TARGET: f64 = 1.15;
/// Tokens generated per timed generation.
const NEW_TOKENS: usize = 16;
/// Tokens of the prompt that `run_with_cache` reads.
const PROMPT_TOKENS: usize = 64;
const THREADS: i32 = 2;

fn main() {
    let dir = checkpoint();
    if let Ok(dtype) = std::env::var(CHILD) {
        println!("{}", load_and_run(&dir, &dtype));
        return;
    }
    let repeats = std::env::var("BENCH_REPEATS").ok().and_then(|r| r.parse().ok()).unwrap_or(2);
    let with_transformers = std::env::var_os("BENCH_SKIP_HF").is_none();
    let mut missed = Vec::new();
    let mut report = serde_json::Map::new();
    println!("large-model benchmark: {}, {THREADS} threads, median of {repeats}", dir.display());
    println!(
        "{:<6} {:>11} {:>14} {:>13} {:>8} {:>14} {:>14}  target",
        "dtype", "weights GB", "before load GB", "peak load GB", "ratio", "load adds", "after run GB"
    );
    for dtype in ["f32", "bf16"] {
        let memory = memory_in_child(dtype);
        let value = |key: &str| memory[key].as_f64().unwrap_or(f64::NAN);
        let ratio = value("peak_after_load") / value("weight_bytes");
        let added = (value("peak_after_load") - value("resident_before_load")) / value("weight_bytes");
        println!(
            "{dtype:<6} {:>11.2} {:>14.2} {:>13.2} {ratio:>7.3}x {added:>13.3}x {:>14.2}  <= {MEMORY_TARGET}x",
            value("weight_bytes") / 1e9,
            value("resident_before_load") / 1e9,
            value("peak_after_load") / 1e9,
            value("peak_after_run") / 1e9
        );
        if ratio.is_nan() || ratio > MEMORY_TARGET {
            missed.push(format!("{dtype}: peak after loading {ratio:.3}x the weights, wanted <= {MEMORY_TARGET}x"));
        }
        report.insert(format!("{dtype}_memory"), memory);
    }
    println!("{:<6} {:>22} {:>10} {:>22} {:>10}", "dtype", "generation tokens/s", "HF", "run_with_cache tok/s", "HF");
    for dtype in ["f32", "bf16"] {
        let ours = speed(&dir, dtype, repeats);
        let theirs = match with_transformers {
            true => transformers_speed(&dir, dtype, repeats, &ours["prompt"]),
            false => Value::Null,
        };
        let value = |v: &Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{dtype:<6} {:>22.2} {:>10.2} {:>22.1} {:>10.1}",
            value(&ours, "generation_tokens_per_s"),
            value(&theirs, "generation_tokens_per_s"),
            value(&ours, "cache_tokens_per_s"),
            value(&theirs, "cache_tokens_per_s")
        );
        report.insert(format!("{dtype}_speed"), json!({"workbench": ours, "transformers": theirs}));
    }
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    let text = serde_json::to_string_pretty(&Value::Object(report)).expect("JSON");
    models::files::write_atomically(&out.join("large_model.json"), text.as_bytes()).expect("write report");
    assert!(missed.is_empty(), "targets missed: {}", missed.join("; "));
}

/// The checkpoint's folder, written by transformers the first time.
fn checkpoint() -> PathBuf {
    let cache = std::env::var_os("WORKBENCH_CACHE").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let dir = cache.join("bench/large-qwen2");
    if !dir.join("model.safetensors.index.json").is_file() {
        let partial = cache.join("bench/large-qwen2.partial");
        let _ = std::fs::remove_dir_all(&partial);
        eprintln!("writing the 1.46e9-parameter checkpoint with transformers (about a minute, 2.9 GB)");
        run_python("large_checkpoint.py", &[&default_model_path(), &partial]).expect("the checkpoint is written");
        std::fs::rename(&partial, &dir).expect("move the checkpoint into place");
    }
    dir
}

/// Runs this benchmark again as a child that loads the model in `dtype` and reports its memory.
fn memory_in_child(dtype: &str) -> Value {
    let output = Command::new(std::env::current_exe().expect("the benchmark's path"))
        .env(CHILD, dtype)
        .output()
        .expect("the child process starts");
    assert!(output.status.success(), "the {dtype} child failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("the child prints JSON")
}

/// A figure of `/proc/self/status` in bytes: `VmHWM` (peak resident memory so far) or `VmRSS` (resident now).
fn status_bytes(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).expect("the field");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse::<f64>().ok()).expect("a number of kB") * 1024.0
}

fn load(dir: &Path, dtype: &str) -> (Model, f64) {
    let start = Instant::now();
    let kind = models::parse_kind(dtype).expect("a dtype");
    let model = Model::load(&dir.display().to_string(), LoadOptions::new(Device::Cpu, kind))
        .expect("the large checkpoint loads");
    (model, start.elapsed().as_secs_f64())
}

fn prompt(model: &Model) -> Vec<u32> {
    let text = std::fs::read_to_string(&stdlib_files(1)[0]).expect("a CPython file");
    model.encode_prefix(&text, PROMPT_TOKENS).expect("tokenizes")
}

fn generate(model: &Model, prompt: &[u32]) {
    let config = GenerationConfig { stop_at_eos: false, ..GenerationConfig::greedy(NEW_TOKENS) };
    let g = model.generate(&[prompt.to_vec()], &config, &mut Hooks::default()).expect("generation runs");
    assert_eq!(g[0].tokens.len(), NEW_TOKENS);
}

fn run_with_cache(model: &Model, prompt: &[u32]) {
    let (_, cache) = model.run_with_cache(prompt, |_| true).expect("run_with_cache runs");
    assert_eq!(cache.len(), models::HookPoint::all(model.shape().n_layers).len());
}

/// The child's work: load, note the peak, run once each, note the peak again.
fn load_and_run(dir: &Path, dtype: &str) -> Value {
    models::tch::set_num_threads(THREADS);
    drop(
        models::tch::Tensor::ones([64, 64], (Kind::Float, Device::Cpu))
            .matmul(&models::tch::Tensor::eye(64, (Kind::Float, Device::Cpu))),
    );
    let before_load = status_bytes("VmRSS:");
    let (model, load_seconds) = load(dir, dtype);
    let peak_after_load = status_bytes("VmHWM:");
    let prompt = prompt(&model);
    generate(&model, &prompt);
    run_with_cache(&model, &prompt);
    json!({"parameters": model.parameter_count(), "weight_bytes": model.parameter_bytes(),
        "load_seconds": load_seconds, "resident_before_load": before_load, "peak_after_load": peak_after_load,
        "peak_after_run": status_bytes("VmHWM:")})
}

fn speed(dir: &Path, dtype: &str, repeats: usize) -> Value {
    models::tch::set_num_threads(THREADS);
    let (model, load_seconds) = load(dir, dtype);
    assert_eq!(model.kind, if dtype == "f32" { Kind::Float } else { Kind::BFloat16 });
    let prompt = prompt(&model);
    let generation = NEW_TOKENS as f64 / median_seconds(Device::Cpu, repeats, || generate(&model, &prompt));
    let cache = prompt.len() as f64 / median_seconds(Device::Cpu, repeats, || run_with_cache(&model, &prompt));
    json!({"load_seconds": load_seconds, "generation_tokens_per_s": generation, "cache_tokens_per_s": cache,
        "prompt": prompt})
}

fn transformers_speed(dir: &Path, dtype: &str, repeats: usize, prompt: &Value) -> Value {
    let request = tempfile::NamedTempFile::new().expect("temp file");
    let body = json!({"prompt": prompt, "new_tokens": NEW_TOKENS, "threads": THREADS, "repeats": repeats,
        "dtype": dtype});
    std::fs::write(request.path(), body.to_string()).expect("write the request");
    let output = run_python("bench_large_hf.py", &[dir, request.path()]).expect("bench_large_hf.py runs");
    serde_json::from_str(output.trim()).expect("bench_large_hf.py prints JSON")
}
