//! HumanEval benchmark (`./x bench`): all 164 problems, greedy, instruct protocol, on SmolLM2-135M-Instruct on
//! CPU; pass@1 and the wall time of generation, and in the same run the time transformers takes to generate
//! from the same prompt ids (batched and left-padded the same way), whose completions are executed in the same
//! sandbox. Then the same problems with the model in bf16, with bf16 weights and with int8 weights (`BENCH_DTYPES`,
//! default `bf16,bf16-weights,int8`; empty for none): each one's pass@1 and generation time, failing the run when a
//! pass count differs from f32's by more than one problem or a bf16 generation of all 164 takes 5 minutes or more. Writes `runs/bench/humaneval.json`.
//! `BENCH_PROBLEMS` (default 164) and `BENCH_THREADS` (2).

use std::time::Instant;

use experiments::humaneval::{
    default_problems, evaluate_samples, extract_code, generate_samples, model_prompt, GenerationSettings, Sample,
};
use experiments::sandbox::{Limits, Sandbox};
use integration_tests::{default_model_path, root, run_python};
use models::{LoadOptions, Model, Silent};

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (count, threads) = (env("BENCH_PROBLEMS", 164), env("BENCH_THREADS", 2));
    models::tch::set_num_threads(threads as i32);
    let model = Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::default()).expect("default model loads");
    let mut problems = default_problems().expect("HumanEval");
    problems.truncate(count);
    let settings = GenerationSettings::default();

    let start = Instant::now();
    let ours = generate_samples(&model, &problems, &settings, &Silent).expect("generation");
    let our_seconds = start.elapsed().as_secs_f64();

    let prompts: Vec<Vec<u32>> = problems
        .iter()
        .map(|p| model.encode(&model_prompt(&model, p, settings.protocol).expect("prompt")).expect("ids"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, output) = (dir.path().join("input.json"), dir.path().join("output.json"));
    let eos = model.tokenizer.eos_id.expect("the model has an EOS token");
    let request = serde_json::json!({"prompts": prompts, "max_new_tokens": settings.max_new_tokens, "batch": settings.batch, "eos": eos, "threads": threads});
    std::fs::write(&input, request.to_string()).expect("write");
    run_python("bench_humaneval_hf.py", &[&default_model_path(), &input, &output]).expect("transformers runs");
    let hf: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&output).expect("output")).expect("json");
    let theirs: Vec<Sample> = problems
        .iter()
        .zip(hf["generated"].as_array().expect("generated"))
        .map(|(p, ids)| {
            let ids: Vec<u32> = ids.as_array().expect("ids").iter().map(|v| v.as_u64().unwrap_or(0) as u32).collect();
            let text = model.tokenizer.decode(&ids, true).expect("decode");
            Sample { task_id: p.task_id.clone(), completion: format!("\n{}\n", extract_code(&text)) }
        })
        .collect();

    let sandbox = Sandbox::new(&Sandbox::default_python(), Limits::default()).expect("sandbox");
    let (our_report, their_report) = (
        evaluate_samples(&problems, &ours, &sandbox, 4).expect("ours"),
        evaluate_samples(&problems, &theirs, &sandbox, 4).expect("theirs"),
    );
    let same = ours.iter().zip(&theirs).filter(|(a, b)| a.completion == b.completion).count();
    let hf_seconds = hf["seconds"].as_f64().unwrap_or(f64::NAN);
    println!("HumanEval, {} problems, greedy, instruct protocol, {threads} threads", problems.len());
    println!("  workbench:    pass@1 {:.4}, generation {our_seconds:.1} s", our_report.pass_at["pass@1"]);
    println!(
        "  transformers: pass@1 {:.4}, generation {hf_seconds:.1} s (ratio {:.2}x)",
        their_report.pass_at["pass@1"],
        hf_seconds / our_seconds
    );
    println!("  identical completions: {same} of {}", problems.len());
    drop(model);

    let passes = |pass_at_1: f64| (pass_at_1 * problems.len() as f64).round() as i64;
    let f32_passes = passes(our_report.pass_at["pass@1"]);
    let dtypes = std::env::var("BENCH_DTYPES").unwrap_or_else(|_| "bf16,bf16-weights,int8".into());
    let (mut by_dtype, mut missed) = (serde_json::Map::new(), Vec::new());
    for dtype in dtypes.split(',').filter(|d| !d.is_empty()) {
        let options = LoadOptions::parse("cpu", dtype).expect("a dtype");
        let model = Model::load(models::catalogue::DEFAULT_MODEL, options).expect("default model loads");
        let start = Instant::now();
        let samples = generate_samples(&model, &problems, &settings, &Silent).expect("generation");
        let seconds = start.elapsed().as_secs_f64();
        let report = evaluate_samples(&problems, &samples, &sandbox, 4).expect("evaluation");
        let (pass_at_1, same) = (report.pass_at["pass@1"], samples.iter().zip(&ours).filter(|(a, b)| a == b).count());
        println!(
            "  {dtype:<12} pass@1 {pass_at_1:.4}, generation {seconds:.1} s, completions identical to f32: {same}"
        );
        if (passes(pass_at_1) - f32_passes).abs() > 1 {
            missed.push(format!("{dtype}: {} problems pass, f32 {f32_passes}", passes(pass_at_1)));
        }
        if dtype.starts_with("bf16") && problems.len() == 164 && seconds >= 300.0 {
            missed.push(format!("{dtype} generation of 164 problems took {seconds:.0} s, wanted under 300 s"));
        }
        by_dtype.insert(
            dtype.to_string(),
            serde_json::json!({"pass_at": report.pass_at, "generation_seconds": seconds, "identical_to_f32": same}),
        );
    }
    let report = serde_json::json!({
        "problems": problems.len(), "threads": threads, "settings": settings,
        "workbench": {"pass_at": our_report.pass_at, "generation_seconds": our_seconds},
        "transformers": {"pass_at": their_report.pass_at, "generation_seconds": hf_seconds},
        "identical_completions": same, "network_isolated": our_report.network_isolated, "dtypes": by_dtype,
    });
    let dir = root().join("runs/bench");
    std::fs::create_dir_all(&dir).expect("runs/bench");
    models::files::write_atomically(
        &dir.join("humaneval.json"),
        serde_json::to_string_pretty(&report).expect("json").as_bytes(),
    )
    .expect("write");
    assert!(missed.is_empty(), "targets missed: {}", missed.join("; "));
}
