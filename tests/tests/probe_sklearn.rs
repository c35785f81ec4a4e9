//! The logistic-regression probe against scikit-learn on the same real activation matrix: SmolLM2's
//! residual stream after block 8 on CPython files, labelled with indentation level, split by file. (Whether
//! the probe beats the majority baseline is the probing protocol's question, not this test's.)

use integration_tests::{default_model, run_python, stdlib_files};
use models::{HookPoint, Silent};
use probes::dataset::{collect, grouped_split, IndentLevel};
use probes::linear::{select_rows, LogisticProbe};
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

    let c = 0.01;
    let ours = LogisticProbe::fit(&x_train, &y_train, c).unwrap().accuracy(&x_test, &y_test);
    let dir = tempfile::tempdir().unwrap();
    write_f32(&dir.path().join("x_train.f32"), &x_train);
    write_f32(&dir.path().join("x_test.f32"), &x_test);
    let meta = json!({"width": x_train.ncols(), "y_train": y_train, "y_test": y_test});
    std::fs::write(dir.path().join("meta.json"), meta.to_string()).unwrap();
    let out: Value = serde_json::from_str(
        run_python("sklearn_probe.py", &[dir.path(), std::path::Path::new(&c.to_string())]).unwrap().trim(),
    )
    .unwrap();
    let theirs = out["test_accuracy"].as_f64().unwrap();
    let majority = {
        let mut counts = [0usize; 4];
        y_test.iter().for_each(|&l| counts[l] += 1);
        *counts.iter().max().unwrap() as f64 / y_test.len() as f64
    };
    eprintln!("test accuracy: ours {ours:.4}, scikit-learn {theirs:.4}, majority class {majority:.4}");
    assert!((ours - theirs).abs() <= 0.01, "ours {ours:.4} vs scikit-learn {theirs:.4}");
}
