//! The probing tasks and read-outs against independent references: the program interpreter against CPython
//! (both semantics), tree-sitter syntax categories against Python's `tokenize`, the corpus logit lens against
//! transformers' hidden states, and steering and API cloze on the real model.

use integration_tests::{default_model, default_model_path, run_python, stdlib_files};
use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Silent};
use probes::dataset::TokenLabeller;
use probes::steering::{steering_check, SteeringCase, SteeringSetup};
use probes::tasks::api_cloze::{cloze_cases, run_cloze};
use probes::tasks::program_state::{Program, Semantics};
use probes::tasks::syntax::{SyntaxKind, SYNTAX_CLASSES};
use serde_json::{json, Value};

fn reference(request: Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.json");
    std::fs::write(&path, request.to_string()).unwrap();
    serde_json::from_str(run_python("probe_tasks_reference.py", &[&path]).unwrap().trim()).unwrap()
}

#[test]
fn programs_print_what_cpython_prints_under_both_semantics() {
    let programs = Program::generate_many(60, 7, 11);
    let out = reference(json!({"programs": programs.iter().map(Program::text).collect::<Vec<_>>()}));
    for (i, p) in programs.iter().enumerate() {
        assert_eq!(out["outputs"][i].as_i64().unwrap(), p.output(Semantics::Standard), "{}", p.text());
        assert_eq!(out["swapped_outputs"][i].as_i64().unwrap(), p.output(Semantics::SwappedAddSub), "{}", p.text());
    }
}

/// The categories of tree-sitter-python against those of CPython's `tokenize` at each token's last byte. They
/// differ by design only inside f-strings, which Python 3.11's tokenize reports as one string token.
#[test]
fn syntax_categories_agree_with_pythons_tokenizer() {
    let model = default_model();
    let (mut agree, mut total) = (0, 0);
    for path in stdlib_files(6) {
        let text = std::fs::read_to_string(path).unwrap();
        let (_, spans) = model.tokenizer.encode_with_offsets(&text).unwrap();
        let labels = SyntaxKind.labels(&text, &spans);
        let bytes = text.as_bytes();
        let offsets: Vec<usize> = spans
            .iter()
            .map(|&(s, e)| (s..e).rev().find(|&b| !bytes[b].is_ascii_whitespace()).unwrap_or(e - 1))
            .collect();
        let out = reference(json!({"syntax": {"text": text, "offsets": offsets}}));
        for (label, theirs) in labels.iter().zip(out["syntax"].as_array().unwrap()) {
            total += 1;
            agree += usize::from(SYNTAX_CLASSES[label.unwrap()] == theirs.as_str().unwrap());
        }
    }
    let rate = agree as f64 / total as f64;
    eprintln!("tree-sitter vs tokenize: {agree} of {total} tokens agree ({rate:.4})");
    assert!(total > 5000 && rate > 0.97, "{agree} of {total}");
}

#[test]
fn corpus_logit_lens_matches_transformers_hidden_states() {
    let model = default_model();
    let documents: Vec<String> = stdlib_files(2).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let max_tokens = 48;
    let curve = probes::lens_over_corpus(&model, &documents, max_tokens, &Silent).unwrap();
    let prompts: Vec<Vec<u32>> =
        documents.iter().map(|d| model.tokenizer.encode(d, false).unwrap()[..max_tokens].to_vec()).collect();
    let out = reference(json!({"lens": {"model": default_model_path(), "prompts": prompts}}));
    let n = curve.positions as f64;
    assert_eq!(curve.positions, 2 * (max_tokens - 1));
    for layer in 0..model.shape().n_layers {
        let theirs = |key: &str| out["lens"][key][layer].as_f64().unwrap() / n;
        // One position may flip where two logits tie to within rounding.
        assert!((curve.agrees_with_final[layer] - theirs("agree")).abs() <= 1.5 / n, "layer {layer}");
        assert!((curve.correct[layer] - theirs("correct")).abs() <= 1.5 / n, "layer {layer}");
    }
    assert_eq!(curve.agrees_with_final[29], 1.0);
    assert!(curve.agrees_with_final[0] < 0.5, "layer 0 should rarely give the final answer");
}

/// Adding a digit's unembedding direction at the last layer must raise that digit's log-probability far more
/// than a random direction of the same norm: a case where the answer is known in closed form.
#[test]
fn steering_along_a_known_direction_beats_a_random_one() {
    let model = default_model();
    let digits: Vec<u32> = (0..10).map(|d| model.tokenizer.encode(&d.to_string(), false).unwrap()[0]).collect();
    let index = Tensor::from_slice(&digits.iter().map(|&d| i64::from(d)).collect::<Vec<_>>());
    let directions = model.arch().unembedding().index_select(0, &index).to_kind(Kind::Float).to_device(Device::Cpu);
    let cases: Vec<SteeringCase> = Program::generate_many(8, 5, 3)
        .iter()
        .map(|p| {
            let ids = model.encode(&p.text()).unwrap();
            SteeringCase {
                positions: vec![ids.len() as i64 - 1],
                ids,
                true_class: p.output(Semantics::Standard) as usize,
            }
        })
        .collect();
    let setup = SteeringSetup {
        point: HookPoint::ResidPost(29),
        directions: &directions,
        class_tokens: &digits,
        norm: 40.0,
        seed: 0,
    };
    let report = steering_check(&model, &cases, &setup, &Silent).unwrap();
    eprintln!("{report:?}");
    assert!(report.probe.mean_delta_logprob > 1.0, "{report:?}");
    assert!(report.probe.mean_delta_logprob > report.random.mean_delta_logprob + 1.0, "{report:?}");
    assert!(report.effect_size > 1.0, "{report:?}");
}

#[test]
fn api_cloze_uses_real_names_and_the_last_lens_layer_is_the_output() {
    let model = default_model();
    let stdlib = models::catalogue::data_dir().join("cpython-stdlib");
    let cases = cloze_cases(&model, &stdlib, 40, 4).unwrap();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    for case in &cases {
        assert!(
            case.prompt.starts_with(&format!("import {}\n", case.module))
                && case.prompt.ends_with(&format!("{}.", case.module))
        );
        assert!(model.tokenizer.token_text(case.target).len() <= case.attribute.len() + 1);
    }
    let report = run_cloze(&model, &cases, &Silent).unwrap();
    assert!(report.modules >= 8, "{} modules", report.modules);
    let last = report.per_layer.last().unwrap();
    assert_eq!((last.top1, last.top5), (report.output.top1, report.output.top5));
    assert!(report.output.top10 >= report.output.top5 && report.output.top5 >= report.output.top1);
    eprintln!(
        "api cloze: output top-1 {:.3}, top-5 {:.3}; layer 0 top-5 {:.3}",
        report.output.top1, report.output.top5, report.per_layer[0].top5
    );
}
