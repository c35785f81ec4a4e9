//! Perplexity and next-token accuracy against transformers' loss on the same held-out files; line completion
//! cases are real lines of those files.

use experiments::code_metrics::{held_out_files, line_completion, perplexity};
use integration_tests::{default_model, default_model_path, run_python};
use models::Silent;

#[test]
fn perplexity_matches_transformers_and_lines_are_real() {
    let model = default_model();
    let documents = held_out_files(2).unwrap();
    let report = perplexity(&model, &documents, 96, &Silent).unwrap();
    let ids: Vec<Vec<u32>> =
        documents.iter().map(|d| model.tokenizer.encode(d, false).unwrap()[..96].to_vec()).collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(&input, serde_json::json!({"documents": ids}).to_string()).unwrap();
    let out: serde_json::Value =
        serde_json::from_str(run_python("perplexity_reference.py", &[&default_model_path(), &input]).unwrap().trim())
            .unwrap();
    let tokens = out["tokens"].as_u64().unwrap() as usize;
    let theirs = (out["nll"].as_f64().unwrap() / tokens as f64).exp();
    eprintln!(
        "perplexity ours {:.4}, transformers {theirs:.4}; accuracy {:.4}",
        report.perplexity, report.next_token_accuracy
    );
    assert_eq!(report.tokens, tokens);
    assert!((report.perplexity / theirs - 1.0).abs() < 1e-4);
    assert!((report.next_token_accuracy - out["hits"].as_f64().unwrap() / tokens as f64).abs() < 1e-9);

    let lines = line_completion(&model, &documents, 64, 3, &Silent).unwrap();
    assert_eq!(lines.cases.len(), 6);
    for case in &lines.cases {
        assert!(documents[case.file].lines().any(|l| l == case.expected) && !case.expected.trim().is_empty());
        assert!(!case.predicted.contains('\n'));
    }
    assert!((0.0..=1.0).contains(&lines.exact_match) && (0.0..=1.0).contains(&lines.edit_similarity));
}
