//! The standard FIND suite with the search scientist (issue 20's speed and no-regression targets): 1,000 numeric
//! and 1,000 string functions generated from seed 0, FIND's budget (20 rounds x 64 inputs), timed on this
//! machine's cores. Prints the score per category beside the scientist's before issue 20 (the family library
//! without the symbolic search, as the README measured it), writes `runs/bench/find_suite.json`, and fails when
//! the run takes 10 minutes or more or a category scores below that earlier value at its 3 decimals.

use find::evaluate::evaluate;
use find::scientist::Scientist;
use find::session::Budget;
use find::suite::{Category, Suite};
use integration_tests::root;
use models::Silent;

/// The scientist's scores before the symbolic search (README, FIND suite, seed 0): the floor per category.
const BEFORE: [(Category, f64); 7] = [
    (Category::Clean, 0.958),
    (Category::Noised, 0.887),
    (Category::Corrupted, 0.907),
    (Category::Composed, 0.853),
    (Category::MlpApproximated, 0.780),
    (Category::StringSimple, 1.0),
    (Category::StringComposed, 1.0),
];

/// The most the whole suite may take, in seconds.
const LIMIT_S: f64 = 600.0;

fn main() {
    let suite = Suite::generate(0, 1000, 1000).expect("the standard suite");
    let started = std::time::Instant::now();
    let evaluation = evaluate(&suite, &mut Scientist::new(0), Budget::default(), |_| true, &Silent).expect("evaluated");
    let seconds = started.elapsed().as_secs_f64();
    let mut missed = Vec::new();
    println!("search scientist on the standard suite (1,000 + 1,000, seed 0): {seconds:.1} s (limit {LIMIT_S} s)");
    for (category, before) in BEFORE {
        let row = evaluation.table.iter().find(|r| r.category == category).expect("every category is in the suite");
        let overlap = row.mean_interval_overlap.map_or(String::new(), |o| format!(", interval overlap {o:.3}"));
        println!("  {category:?} ({}): {:.3}{overlap} (before: {before:.3})", row.functions, row.mean_score);
        // The earlier scores are known to 3 decimals (a composed-strings score of 0.99986 printed as 1.000).
        if (row.mean_score * 1000.0).round() < (before * 1000.0).round() {
            missed.push(format!("{category:?} {:.3} < {before:.3}", row.mean_score));
        }
    }
    if seconds >= LIMIT_S {
        missed.push(format!("{seconds:.1} s >= {LIMIT_S} s"));
    }
    let out = root().join("runs/bench");
    std::fs::create_dir_all(&out).expect("runs/bench");
    let report = serde_json::json!({"seconds": seconds, "table": evaluation.table, "missed": missed});
    std::fs::write(out.join("find_suite.json"), serde_json::to_string_pretty(&report).expect("json")).expect("write");
    assert!(missed.is_empty(), "targets missed: {}", missed.join("; "));
}
