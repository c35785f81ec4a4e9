//! The probes against scikit-learn on the same real activation matrix: SmolLM2's residual stream after block 8
//! on CPython files, labelled with indentation level, split by file. The linfa and the tch logistic probes
//! against `LogisticRegression`, the tch ridge probe against `Ridge`. (Whether the probe beats the majority
//! baseline is the probing protocol's question, not this test's.)

use integration_tests::{default_model, run_python, stdlib_files};
use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Silent};
use probes::dataset::to_tensor;
use probes::dataset::{collect, grouped_split, IndentLevel};
use probes::linear::{select_rows, LogisticProbe};
use probes::trainer::{r_squared, standardize, LbfgsOptions, LogisticBatch, RidgePath};
use serde_json::{json, Value};

fn write_f32(path: &std::path::Path, x: &ndarray::Array2<f64>) {
    let bytes: Vec<u8> = x.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn accuracy_is_within_one_point_of_scikit_learn() {
    let model = default_model();
    let documents: Vec<String> = stdlib_files(16).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    let point = HookPoint::ResidPost(8);
    let data = collect(&model, &documents, &IndentLevel { max: 3 }, &[point], 192, &Silent).unwrap();
    let split = grouped_split(&data.groups, 0.7, 0.0, 0);
    let labels = |rows: &[usize]| -> Vec<usize> { rows.iter().map(|&r| data.labels[r]).collect() };
    let (x_train, y_train) = (select_rows(&data.features[0], &split.train), labels(&split.train));
    let (x_test, y_test) = (select_rows(&data.features[0], &split.test), labels(&split.test));
    assert!(x_train.nrows() > 1000 && x_test.nrows() > 300, "{} train, {} test rows", x_train.nrows(), x_test.nrows());

    let (c, alpha) = (0.01, 100.0);
    let ours = LogisticProbe::fit(&x_train, &y_train, c).unwrap().accuracy(&x_test, &y_test);
    let (tch_accuracy, tch_r2) = tch_probes(&data.features[0], &split, &data.labels, c, alpha);
    let dir = tempfile::tempdir().unwrap();
    write_f32(&dir.path().join("x_train.f32"), &x_train);
    write_f32(&dir.path().join("x_test.f32"), &x_test);
    let meta = json!({"width": x_train.ncols(), "y_train": y_train, "y_test": y_test});
    std::fs::write(dir.path().join("meta.json"), meta.to_string()).unwrap();
    let out: Value = serde_json::from_str(
        run_python("sklearn_probe.py", &[dir.path(), c.to_string().as_ref(), alpha.to_string().as_ref()])
            .unwrap()
            .trim(),
    )
    .unwrap();
    let theirs = out["test_accuracy"].as_f64().unwrap();
    let majority = {
        let mut counts = [0usize; 4];
        y_test.iter().for_each(|&l| counts[l] += 1);
        *counts.iter().max().unwrap() as f64 / y_test.len() as f64
    };
    let their_r2 = out["ridge_r2"].as_f64().unwrap();
    eprintln!(
        "test accuracy: linfa {ours:.4}, tch {tch_accuracy:.4}, scikit-learn {theirs:.4}, majority {majority:.4}"
    );
    eprintln!("ridge test R^2: tch {tch_r2:.5}, scikit-learn {their_r2:.5}");
    assert!((ours - theirs).abs() <= 0.01, "linfa {ours:.4} vs scikit-learn {theirs:.4}");
    assert!((tch_accuracy - theirs).abs() <= 0.01, "tch {tch_accuracy:.4} vs scikit-learn {theirs:.4}");
    assert!((tch_r2 - their_r2).abs() <= 1e-3, "ridge R^2: tch {tch_r2:.5} vs scikit-learn {their_r2:.5}");
}

/// Test accuracy of the tch logistic probe and test R^2 of the tch ridge probe.
fn tch_probes(
    features: &ndarray::Array2<f32>,
    split: &probes::dataset::Split,
    labels: &[usize],
    c: f64,
    alpha: f64,
) -> (f64, f64) {
    let rows = |r: &[usize]| Tensor::from_slice(&r.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let x = standardize(&to_tensor(features, Device::Cpu), &rows(&split.train));
    let part = |r: &[usize]| x.index_select(0, &rows(r));
    let y = |r: &[usize]| Tensor::from_slice(&r.iter().map(|&i| labels[i] as i64).collect::<Vec<_>>()).unsqueeze(1);
    let options = LbfgsOptions { max_iterations: 500, ..Default::default() };
    let fit = LogisticBatch::fit(&part(&split.train), &y(&split.train), 4, &[c], None, &options).unwrap();
    let hits = fit.predict(&part(&split.test)).eq_tensor(&y(&split.test)).to_kind(Kind::Double);
    let ridge = RidgePath::fit(&part(&split.train), &y(&split.train).to_kind(Kind::Double), &[alpha]).unwrap();
    let r2 = r_squared(&ridge.predict(&part(&split.test), 0), &y(&split.test))[0];
    (f64::try_from(hits.mean(Kind::Double)).unwrap(), r2)
}
