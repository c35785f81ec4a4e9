//! Neurons of SmolLM2 as FIND functions and neuron pages: the streamed top-k examples agree with separate runs
//! over each example's prefix, pages are written, the scientist runs unchanged on a neuron, and bad neurons
//! are errors.

use find::expr::{Expr, Value};
use find::neurons::{record_point, UnitNumeric, UnitToken};
use find::pages::neuron_pages;
use find::scientist::Scientist;
use find::session::{BlackBox, Budget, Interpreter, Session};
use find::units::Neurons;
use integration_tests::{default_model, stdlib_files};
use models::{HookPoint, Silent};

#[test]
fn top_examples_match_separate_prefix_runs_and_pages_are_written() {
    let model = default_model();
    let documents: Vec<String> = stdlib_files(5).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let (search, held_out) = documents.split_at(3);
    let pages = neuron_pages(&model, 3, &[7, 100], search, held_out, 64, &Silent).unwrap();
    for page in &pages {
        assert_eq!(page.top.len(), 10);
        assert!(page.top.windows(2).all(|w| w[0].activation >= w[1].activation));
        assert!((-1.0..=1.0).contains(&page.simulation_score) && page.held_out_tokens == 2 * 64);
        for example in page.top.iter().take(3) {
            let mut ids = model.tokenizer.encode(&search[example.document], false).unwrap();
            ids.truncate(example.position + 1);
            let prefix = record_point(&model, &ids, HookPoint::MlpPost(3)).unwrap();
            let alone = f64::try_from(prefix.get(example.position as i64).get(page.index as i64)).unwrap();
            assert!((alone - f64::from(example.activation)).abs() < 1e-3, "{alone} vs {}", example.activation);
            assert_eq!(example.activations[example.centre], example.activation);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    pages[0].write(dir.path()).unwrap();
    let markdown = std::fs::read_to_string(dir.path().join("L3N7.md")).unwrap();
    assert!(markdown.contains("# Neuron 3.7") && markdown.contains("<span style=\"background"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("L3N7.json")).unwrap()).unwrap();
    assert_eq!(json["top"].as_array().unwrap().len(), 10);
    assert!(neuron_pages(&model, 3, &[5000], search, held_out, 64, &Silent).is_err());
    assert!(neuron_pages(&model, 30, &[1], search, held_out, 64, &Silent).is_err());
}

#[test]
fn interpreters_run_unchanged_on_neurons() {
    let model = default_model();
    let mut function = UnitNumeric::new(&model, Box::new(Neurons(5)), 12, "x = {x}").unwrap();
    let direct = record_point(&model, &model.encode("x = 5").unwrap(), HookPoint::MlpPost(5)).unwrap();
    let expected = f64::try_from(direct.get(-1).get(12)).unwrap();
    assert_eq!(function.call(&Value::Num(5.0)).unwrap(), Value::Num(expected));
    let mut session = Session::new(&mut function, Budget { rounds: 3, inputs_per_round: 16 });
    let answer = Scientist::new(0).interpret(&mut session);
    assert!(Expr::parse(&answer.code).is_ok(), "{answer:?}");
    assert!(session.transcript.len() <= 3);

    let mut token = UnitToken::new(&model, Box::new(Neurons(5)), 12, "import {x}").unwrap();
    let Value::Str(text) = token.call(&Value::Str("json".into())).unwrap() else {
        panic!("a token function returns text")
    };
    assert!(text.parse::<f64>().is_ok(), "{text}");
    assert!(UnitNumeric::new(&model, Box::new(Neurons(30)), 0, "x = {x}").is_err());
    assert!(UnitNumeric::new(&model, Box::new(Neurons(5)), 1536, "x = {x}").is_err());
    assert!(UnitNumeric::new(&model, Box::new(Neurons(5)), 12, "no placeholder").is_err());
}
