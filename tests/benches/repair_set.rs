//! Joint repair speed (`./x bench`): the joint solve of `BENCH_SET` (default 50) mined failures of
//! SmolLM2-135M-Instruct (four fifths API names, one fifth held-out lines) on CPU, preservation statistics
//! excluded (their cost is printed apart: computed once per model, then read from the cache). Prints the seconds,
//! the cases repaired, generalization to their variants, and unrelated top-1 tokens kept and mean KL; fails when
//! the solve misses the 60 s target. Writes `runs/bench/repair_set.json`.
//!
//! Settings can be tried without a rebuild: `BENCH_JOINT`, `BENCH_REFERENCE` and `BENCH_UNRELATED` take a
//! [`JointConfig`], [`ReferenceSettings`] and [`UnrelatedSettings`] in RON (fields left out keep their defaults),
//! e.g. `BENCH_JOINT='(neurons_per_token: 128)'`.

use experiments::ops::repair::{unrelated_prompts, UnrelatedSettings};
use experiments::ops::repair_set::{preservation, ReferenceSettings};
use experiments::repair_cases::MinedCases;
use integration_tests::root;
use models::{LoadOptions, Model};
use repair::measure::variants_correct;
use repair::{repair_jointly, JointConfig, Levers, Tokens, Unrelated};

/// The settings in environment variable `name` (RON), or their defaults when it is not set.
fn settings<T: serde::de::DeserializeOwned + Default>(name: &str) -> T {
    std::env::var(name).map_or_else(
        |_| T::default(),
        |text| ron::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid RON for its settings: {e}")),
    )
}

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (joint, reference, unrelated_settings): (JointConfig, ReferenceSettings, UnrelatedSettings) =
        (settings("BENCH_JOINT"), settings("BENCH_REFERENCE"), settings("BENCH_UNRELATED"));
    let (count, threads) = (env("BENCH_SET", 50), env("BENCH_THREADS", 2));
    models::tch::set_num_threads(threads as i32);
    let model = Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::default()).expect("default model loads");
    let mined = MinedCases { api: count - count / 5, lines: count / 5, ..Default::default() };
    let cases = mined.mine(&model).expect("mined cases");
    let tokens: Vec<Tokens> = cases.iter().map(|c| Tokens::new(&model, &c.example).expect("tokens")).collect();
    let started = std::time::Instant::now();
    let (preserved, provenance) = preservation(&model, &reference, &models::Silent).expect("statistics");
    let statistics = started.elapsed().as_secs_f64();
    let prompts = unrelated_prompts(&model, unrelated_settings.prompts, unrelated_settings.tokens).expect("prompts");
    let unrelated = Unrelated::new(&model, prompts, unrelated_settings.positions).expect("unrelated");
    let variants = |model: &Model| -> Vec<Vec<bool>> {
        cases.iter().map(|c| variants_correct(model, c).expect("variants")).collect()
    };
    let variants_before = variants(&model);
    let set =
        repair_jointly(&model, &tokens, 0, &preserved, Levers::Neurons, &joint, &models::Silent).expect("joint repair");
    let seconds = set.repair.seconds;
    let repaired = set.outcomes.iter().filter(|o| o.repaired()).count();
    let specificity = unrelated.compare(&model).expect("specificity");
    let (wrong_before, fixed) = variants_before
        .iter()
        .flatten()
        .zip(variants(&model).iter().flatten())
        .fold((0, 0), |(wrong, fixed), (&before, &after)| {
            (wrong + usize::from(!before), fixed + usize::from(!before && after))
        });
    let generalization = fixed as f64 / wrong_before.max(1) as f64;
    set.repair.revert(&model).expect("revert");
    println!(
        "joint repair on CPU ({threads} threads) of {} mined cases: {repaired} repaired in {} rounds",
        cases.len(),
        set.rounds
    );
    let (kept, kl) = (specificity.top1_unchanged, specificity.mean_kl);
    println!(
        "  {seconds:.1} s (target: under 60 s), generalization {generalization:.3} ({fixed}/{wrong_before} variants)"
    );
    println!("  unrelated top-1 kept {kept:.4}, mean KL {kl:.4}; statistics {statistics:.1} s ({provenance:?})");
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    let report = serde_json::json!({"cases": cases.len(), "repaired": repaired, "seconds": seconds, "rounds": set.rounds, "top1_kept": kept, "mean_kl": kl, "generalization": generalization, "statistics_seconds": statistics, "threads": threads});
    models::files::write_atomically(&out.join("repair_set.json"), report.to_string().as_bytes()).expect("write");
    assert!(seconds < 60.0, "the joint repair took {seconds:.1} s, over the 60 s target");
}
