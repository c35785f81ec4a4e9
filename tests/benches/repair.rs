//! Repair speed (`./x bench`): one MINT repair of SmolLM2-135M-Instruct on CPU (targeting, patch and check,
//! token by token) for each of `BENCH_REPAIRS` (default 20) API-name failures mined from CPython; prints the
//! median and the slowest, and the share under the 10 s target, and fails when the median misses it. Writes
//! `runs/bench/repair.json`.

use experiments::ops::repair::unrelated_prompts;
use experiments::repair_cases::api_cases;
use integration_tests::root;
use models::{LoadOptions, Model};
use repair::{Method, RepairConfig, Repairer, Tokens};

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (count, threads) = (env("BENCH_REPAIRS", 20), env("BENCH_THREADS", 2));
    models::tch::set_num_threads(threads as i32);
    let model = Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::default()).expect("default model loads");
    let cases = api_cases(&model, count).expect("API cases");
    let unrelated = unrelated_prompts(&model, 24, 48).expect("unrelated prompts");
    let mut repairer = Repairer::new(&model, RepairConfig::default(), unrelated, 8).expect("repairer");
    let mut seconds = Vec::new();
    let mut fixed = 0;
    for case in &cases {
        let tokens = Tokens::new(&model, &case.example).expect("tokens");
        let done = repairer.repair(&model, &tokens, Method::Mint).expect("repair");
        fixed += usize::from(done.fixed());
        seconds.push(done.seconds);
        done.revert(&model).expect("revert");
    }
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let under = sorted.iter().filter(|&&s| s < 10.0).count();
    println!("MINT repair on CPU ({threads} threads), {} API-name cases, {fixed} fixed", cases.len());
    println!(
        "  median {median:.2} s, slowest {:.2} s, {under} of {} under 10 s (target: median under 10 s)",
        sorted[sorted.len() - 1],
        sorted.len()
    );
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    let report = serde_json::json!({"cases": cases.len(), "fixed": fixed, "seconds": seconds, "median": median, "threads": threads});
    models::files::write_atomically(&out.join("repair.json"), report.to_string().as_bytes()).expect("write");
    assert!(median < 10.0, "the median repair took {median:.2} s, over the 10 s target");
}
