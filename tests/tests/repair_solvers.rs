//! The closed forms behind repairs of many cases, against an independent numpy computation on the same random
//! matrices: the joint solve against numpy's minimum-norm least squares, MEMIT's update, AlphaEdit's null-space
//! projector and update.

use integration_tests::{matrix_from_json, relative_error, run_python};
use models::tch::{Kind, Tensor};
use repair::batch_edit::{alphaedit_update, memit_update, null_space_projector};
use serde_json::{json, Value};

fn random(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Double, models::tch::Device::Cpu))
}

fn nested(t: &Tensor) -> Value {
    let t = t.to_kind(Kind::Double);
    match t.dim() {
        1 => json!(Vec::<f64>::try_from(&t).unwrap()),
        _ => Value::Array((0..t.size()[0]).map(|i| nested(&t.get(i))).collect()),
    }
}

#[test]
fn joint_solve_memit_and_alphaedit_match_numpy() {
    models::tch::manual_seed(7);
    let (t, s, d) = (6, 10, 5);
    let directions = random(&[t, d]);
    let keys = random(&[t, s]);
    // A block-diagonal metric (as across two layers): the solve takes its blocks, numpy the whole matrix.
    let eye = |n: i64| Tensor::eye(n, (Kind::Double, models::tch::Device::Cpu));
    let blocks: Vec<Tensor> = [4, s - 4]
        .iter()
        .map(|&n| {
            let square = random(&[n, n]);
            square.matmul(&square.tr()) + eye(n) * 0.5
        })
        .collect();
    let metric = Tensor::block_diag(&blocks);
    let targets = random(&[t]);
    let square = random(&[d, d]);
    let output_metric = square.matmul(&square.tr()) + eye(d) * 0.5;

    let (f, n, m) = (12, 4, 9);
    let residuals = random(&[d, n]);
    let layer_keys = random(&[f, n]);
    let basis = random(&[f, m]);
    // Rank 9 of 12: the covariance has a null space of dimension 3 for AlphaEdit to project into, and with the
    // keys' Gram (rank 4) MEMIT's system is regular.
    let covariance = basis.matmul(&basis.tr()) / m as f64;
    let previous_keys = random(&[f, 3]);
    let previous = previous_keys.matmul(&previous_keys.tr());
    let (lambda, alpha, threshold) = (2.0, 0.5, 1e-2);

    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.json"), dir.path().join("out.json"));
    let request = json!({
        "directions": nested(&directions), "keys": nested(&keys), "metric": nested(&metric), "output": nested(&output_metric),
        "targets": nested(&targets), "residuals": nested(&residuals), "keys_layer": nested(&layer_keys),
        "covariance": nested(&covariance), "previous": nested(&previous), "lambda": lambda, "alpha": alpha,
        "threshold": threshold,
    });
    std::fs::write(&input, request.to_string()).unwrap();
    run_python("solver_reference.py", &[&input, &output]).unwrap();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();

    for (output, name) in [(None, "joint"), (Some(&output_metric), "joint_output")] {
        let joint = repair::joint::solve(&directions, &keys, &blocks, output, &targets, 1e-12).unwrap();
        let error = relative_error(&joint, &matrix_from_json(&reference[name]));
        assert!(error < 1e-5, "{name} solve vs numpy lstsq: relative error {error:e}");
        // The solution does what it is for: each row's gap moves by its target.
        let moved =
            (&keys * directions.matmul(&joint.to_kind(Kind::Double).tr())).sum_dim_intlist(1, false, Kind::Double);
        assert!(relative_error(&moved, &targets) < 1e-5, "{name}: the rows' gaps do not move by their targets");
    }

    let memit = memit_update(&residuals, &layer_keys, &covariance, lambda).unwrap();
    let error = relative_error(&memit, &matrix_from_json(&reference["memit"]));
    assert!(error < 1e-5, "MEMIT vs numpy: relative error {error:e}");

    let projector = null_space_projector(&covariance, threshold);
    let error = relative_error(&projector, &matrix_from_json(&reference["projector"]));
    assert!(error < 1e-5, "null-space projector vs numpy: relative error {error:e}");
    assert!(projector.to_kind(Kind::Double).matmul(&covariance).abs().max().double_value(&[]) < 1e-6);

    let alphaedit = alphaedit_update(&residuals, &layer_keys, &projector, &previous, alpha).unwrap();
    let error = relative_error(&alphaedit, &matrix_from_json(&reference["alphaedit"]));
    assert!(error < 1e-4, "AlphaEdit vs numpy: relative error {error:e}");
}
