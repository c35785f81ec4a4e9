//! Probe-sweep benchmark (`./x bench`): bracket depth on about 20,000 tokens of CPython files, activations of
//! every layer's residual stream (`blocks.{l}.hook_resid_post`, all 30 layers of SmolLM2) collected once, then
//! the full protocol (3 seeds, each with task and control probes for 3 values of C chosen on validation data,
//! bootstrap intervals) at every layer with the batched tch trainer. The target is the sweep under 60 s on 2
//! CPU cores. Times are printed and written to `runs/bench/probe_sweep.json`. `BENCH_TOKENS` and
//! `BENCH_THREADS` change the defaults (20,000 and 2).

use std::time::Instant;

use integration_tests::root;
use models::{HookPoint, LoadOptions, Model, Silent};
use probes::dataset::{collect, BracketDepth};
use probes::protocol::{sweep, SweepConfig};
use serde_json::json;

const TOKENS_PER_FILE: usize = 256;

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (tokens, threads) = (env("BENCH_TOKENS", 20_000), env("BENCH_THREADS", 2));
    models::tch::set_num_threads(threads as i32);
    let model = Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::default()).expect("default model loads");
    let layers = model.shape().n_layers;
    let points: Vec<HookPoint> = (0..layers).map(HookPoint::ResidPost).collect();
    let files = tokens.div_ceil(TOKENS_PER_FILE) + 1;
    let documents = probes::corpus::stdlib_documents(files).expect("CPython files");

    let start = Instant::now();
    let data =
        collect(&model, &documents, &BracketDepth { max: 3 }, &points, TOKENS_PER_FILE, &Silent).expect("activations");
    let collect_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let config = SweepConfig::default();
    let results = sweep(&data, &config, &Silent).expect("sweep");
    let sweep_seconds = start.elapsed().as_secs_f64();

    let best = results.iter().max_by(|a, b| a.accuracy.mean.total_cmp(&b.accuracy.mean)).expect("layers");
    println!("probe sweep: {} tokens from {} files, {layers} layers, {threads} threads", data.labels.len(), files);
    println!("  collecting activations once: {collect_seconds:.1} s");
    println!("  sweep over all layers:       {sweep_seconds:.1} s (target < 60 s)");
    println!(
        "  best layer {} accuracy {:.3}, selectivity {:.3}",
        best.point, best.accuracy.mean, best.selectivity.mean
    );
    let report = json!({
        "tokens": data.labels.len(), "files": files, "layers": layers, "threads": threads,
        "collect_seconds": collect_seconds, "sweep_seconds": sweep_seconds, "target_seconds": 60,
        "results": results,
    });
    let dir = root().join("runs/bench");
    std::fs::create_dir_all(&dir).expect("runs/bench");
    let text = serde_json::to_string_pretty(&report).expect("json");
    models::files::write_atomically(&dir.join("probe_sweep.json"), text.as_bytes()).expect("write");
}
