//! Joint repair speed (`./x bench`): the joint solve of `BENCH_SET` (default 50) mined failures of
//! SmolLM2-135M-Instruct (four fifths API names, one fifth held-out lines) on CPU, preservation statistics
//! excluded (their cost is printed apart: computed once per model, then read from the cache). Prints the seconds,
//! the cases repaired and unrelated top-1 tokens kept; fails when the solve misses the 60 s target. Writes
//! `runs/bench/repair_set.json`.

use experiments::ops::repair::unrelated_prompts;
use experiments::ops::repair_set::{preservation, ReferenceSettings};
use experiments::repair_cases::MinedCases;
use integration_tests::root;
use models::{LoadOptions, Model};
use repair::{repair_jointly, JointConfig, Tokens, Unrelated};

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (count, threads) = (env("BENCH_SET", 50), env("BENCH_THREADS", 2));
    models::tch::set_num_threads(threads as i32);
    let model = Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::default()).expect("default model loads");
    let mined = MinedCases { api: count - count / 5, lines: count / 5, ..Default::default() };
    let cases = mined.mine(&model).expect("mined cases");
    let tokens: Vec<Tokens> = cases.iter().map(|c| Tokens::new(&model, &c.example).expect("tokens")).collect();
    let started = std::time::Instant::now();
    let (preserved, provenance) =
        preservation(&model, &ReferenceSettings::default(), &models::Silent).expect("statistics");
    let statistics = started.elapsed().as_secs_f64();
    let unrelated = Unrelated::new(&model, unrelated_prompts(&model, 24, 48).expect("prompts"), 8).expect("unrelated");
    let set =
        repair_jointly(&model, &tokens, &preserved, &JointConfig::default(), &models::Silent).expect("joint repair");
    let seconds = set.repair.seconds;
    let repaired = set.outcomes.iter().filter(|o| o.repaired()).count();
    let kept = unrelated.compare(&model).expect("specificity").top1_unchanged;
    set.repair.revert(&model).expect("revert");
    println!(
        "joint repair on CPU ({threads} threads) of {} mined cases: {repaired} repaired in {} rounds",
        cases.len(),
        set.rounds
    );
    println!("  {seconds:.1} s (target: under 60 s), unrelated top-1 kept {kept:.4}; statistics {statistics:.1} s ({provenance:?})");
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    let report = serde_json::json!({"cases": cases.len(), "repaired": repaired, "seconds": seconds, "rounds": set.rounds, "top1_kept": kept, "statistics_seconds": statistics, "threads": threads});
    models::files::write_atomically(&out.join("repair_set.json"), report.to_string().as_bytes()).expect("write");
    assert!(seconds < 60.0, "the joint repair took {seconds:.1} s, over the 60 s target");
}
