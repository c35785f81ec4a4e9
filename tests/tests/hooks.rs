//! Hook points, the activation cache, interventions and neuron weight edits on the real default model.

use integration_tests::default_model;
use models::tch::{Kind, Tensor};
use models::{Edit, HookPoint, Hooks, Intervention, Model, Neuron, Positions};

const PROMPT: &str =
    "import os\n\ndef list_python_files(root):\n    return [f for f in os.listdir(root) if f.endswith('.py')]\n";

fn ids(model: &Model) -> Vec<u32> {
    model.encode(PROMPT).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn ablate(point: HookPoint, features: Vec<i64>, positions: Positions) -> Hooks {
    Hooks::default().with(Intervention { point, positions, edit: Edit::ZeroAblate(Some(features)) })
}

#[test]
fn ablating_a_neuron_by_hook_equals_zeroing_its_down_projection_column() {
    let model = default_model();
    let ids = ids(&model);
    let clean = model.logits(&ids).unwrap();
    for neuron in [Neuron { layer: 3, index: 17 }, Neuron { layer: 15, index: 900 }, Neuron { layer: 29, index: 1535 }]
    {
        let by_hook = model
            .run_with_hooks(
                &ids,
                &mut ablate(HookPoint::MlpPost(neuron.layer), vec![neuron.index as i64], Positions::All),
            )
            .unwrap();
        let saved = model.neuron_weights(neuron).unwrap();
        model.set_neuron_output(neuron, &vec![0.0; model.shape().d_model]).unwrap();
        let by_weights = model.logits(&ids).unwrap();
        model.set_neuron_weights(neuron, &saved).unwrap();
        assert!(
            max_diff(&by_hook, &by_weights) < 1e-5,
            "{neuron:?}: hook ablation and weight ablation differ by {}",
            max_diff(&by_hook, &by_weights)
        );
        assert!(max_diff(&by_hook, &clean) > 0.0, "{neuron:?}: ablation changed nothing");
        assert_eq!(max_diff(&model.logits(&ids).unwrap(), &clean), 0.0, "restoring the weights is not exact");
    }
}

#[test]
fn run_with_cache_records_every_point_with_consistent_values() {
    let model = default_model();
    let ids = ids(&model);
    let plain = model.logits(&ids).unwrap();
    let (logits, cache) = model.run_with_cache(&ids, |_| true).unwrap();
    let shape = model.shape();
    let (t, d) = (ids.len() as i64, shape.d_model as i64);
    assert_eq!(cache.len(), HookPoint::all(shape.n_layers).len());
    assert!(
        max_diff(&logits, &plain) < 1e-4,
        "caching (explicit attention) changes logits by {}",
        max_diff(&logits, &plain)
    );
    assert_eq!(cache.get_named("embed").unwrap().size(), [1, t, d]);
    for l in 0..shape.n_layers {
        let get = |p: HookPoint| cache.get(p).unwrap();
        assert_eq!(get(HookPoint::MlpPost(l)).size(), [1, t, shape.d_mlp as i64]);
        let pattern = get(HookPoint::AttnPattern(l));
        assert_eq!(pattern.size(), [1, shape.n_heads as i64, t, t]);
        assert!(
            max_diff(
                &pattern.sum_dim_intlist(-1, false, Kind::Float),
                &Tensor::ones([1, shape.n_heads as i64, t], (Kind::Float, models::tch::Device::Cpu))
            ) < 1e-5
        );
        assert_eq!(pattern.triu(1).abs().max().double_value(&[]), 0.0, "layer {l} attends to the future");
        assert!(
            max_diff(get(HookPoint::ResidMid(l)), &(get(HookPoint::ResidPre(l)) + get(HookPoint::AttnOut(l)))) < 1e-5
        );
        assert!(
            max_diff(get(HookPoint::ResidPost(l)), &(get(HookPoint::ResidMid(l)) + get(HookPoint::MlpOut(l)))) < 1e-5
        );
        if l + 1 < shape.n_layers {
            assert_eq!(max_diff(get(HookPoint::ResidPost(l)), get(HookPoint::ResidPre(l + 1))), 0.0);
        }
    }
    let from_cache = model.arch().unembed(cache.get(HookPoint::LnFinal).unwrap()).squeeze_dim(0);
    assert!(max_diff(&from_cache, &logits) < 1e-5);

    let (_, filtered) =
        model.run_with_cache(&ids, |p| matches!(p, HookPoint::MlpPost(2) | HookPoint::ResidPost(7))).unwrap();
    assert_eq!(
        filtered.points().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["blocks.2.mlp.hook_post", "blocks.7.hook_resid_post"]
    );
    assert!(filtered.get_named("blocks.3.mlp.hook_post").is_err());
}

#[test]
fn ablation_at_chosen_positions_leaves_earlier_positions_alone() {
    let model = default_model();
    let ids = ids(&model);
    let clean = model.logits(&ids).unwrap();
    let last = ids.len() as i64 - 1;
    let ablated = model
        .run_with_hooks(&ids, &mut ablate(HookPoint::MlpPost(5), (0..1536).collect(), Positions::Only(vec![-1])))
        .unwrap();
    assert_eq!(max_diff(&ablated.narrow(0, 0, last), &clean.narrow(0, 0, last)), 0.0);
    assert!(max_diff(&ablated.get(last), &clean.get(last)) > 1e-3);
}

#[test]
fn mean_ablation_sets_features_to_their_means() {
    let model = default_model();
    let ids = ids(&model);
    let point = HookPoint::MlpPost(10);
    let (_, clean) = model.run_with_cache(&ids, move |p| p == point).unwrap();
    let means = clean.feature_means(point).unwrap();
    let mut hooks = Hooks::recording(move |p| p == point).with(Intervention {
        point,
        positions: Positions::Only(vec![2, 4]),
        edit: Edit::MeanAblate { features: Some(vec![7, 8]), means: means.shallow_clone() },
    });
    let _logits = model.run_with_hooks(&ids, &mut hooks).unwrap();
    let after = hooks.cache.get(point).unwrap();
    let before = clean.get(point).unwrap();
    for pos in [2, 4] {
        for f in [7, 8] {
            assert_eq!(after.double_value(&[0, pos, f]), means.double_value(&[f]));
        }
    }
    assert_eq!(after.double_value(&[0, 3, 7]), before.double_value(&[0, 3, 7]));
    assert_eq!(after.double_value(&[0, 2, 9]), before.double_value(&[0, 2, 9]));
}

#[test]
fn steering_adds_the_vector_where_asked() {
    let model = default_model();
    let ids = ids(&model);
    let point = HookPoint::ResidPost(12);
    let (_, clean) = model.run_with_cache(&ids, move |p| p == point).unwrap();
    let vector = Tensor::randn([model.shape().d_model as i64], (Kind::Float, models::tch::Device::Cpu)) * 4.0;
    let mut hooks = Hooks::recording(move |p| p == point).with(Intervention {
        point,
        positions: Positions::Only(vec![-1]),
        edit: Edit::Add(vector.shallow_clone()),
    });
    let steered = model.run_with_hooks(&ids, &mut hooks).unwrap();
    let (before, after) = (clean.get(point).unwrap().squeeze_dim(0), hooks.cache.get(point).unwrap().squeeze_dim(0));
    let last = ids.len() as i64 - 1;
    assert!(max_diff(&(after.get(last) - before.get(last)), &vector) < 1e-5);
    assert_eq!(max_diff(&after.narrow(0, 0, last), &before.narrow(0, 0, last)), 0.0);
    assert!(max_diff(&steered.get(last), &model.logits(&ids).unwrap().get(last)) > 1e-2);
}

#[test]
fn activation_patching_transplants_a_run() {
    let model = default_model();
    let source = model.encode("def add(a, b):\n    return a + b").unwrap();
    let target = model.encode("def sub(a, b):\n    return a - b").unwrap();
    assert_eq!(source.len(), target.len(), "the two prompts must have the same length");
    let (source_logits, source_cache) =
        model.run_with_cache(&source, |p| p == HookPoint::ResidPre(0) || p == HookPoint::ResidPre(6)).unwrap();
    let target_logits = model.logits(&target).unwrap();
    let patch = |point: HookPoint, positions: Positions| {
        Hooks::default().with(Intervention {
            point,
            positions,
            edit: Edit::Patch(source_cache.get(point).unwrap().shallow_clone()),
        })
    };

    let everywhere = model.run_with_hooks(&target, &mut patch(HookPoint::ResidPre(0), Positions::All)).unwrap();
    assert!(
        max_diff(&everywhere, &source_logits) < 1e-5,
        "patching the whole residual stream must reproduce the source run"
    );

    let last = target.len() as i64 - 1;
    let at_last =
        model.run_with_hooks(&target, &mut patch(HookPoint::ResidPre(6), Positions::Only(vec![last]))).unwrap();
    assert_eq!(max_diff(&at_last.narrow(0, 0, last), &target_logits.narrow(0, 0, last)), 0.0);
    assert!(max_diff(&at_last.get(last), &target_logits.get(last)) > 1e-3);

    let wrong_shape = Hooks::default().with(Intervention {
        point: HookPoint::ResidPre(0),
        positions: Positions::All,
        edit: Edit::Patch(Tensor::zeros([1, 3, 5], (Kind::Float, models::tch::Device::Cpu))),
    });
    assert!(model.run_with_hooks(&target, &mut { wrong_shape }).is_err());
}

#[test]
fn neuron_weights_read_write_and_restore_bit_exactly() {
    let model = default_model();
    let neuron = Neuron { layer: 7, index: 321 };
    let before = model.neuron_weights(neuron).unwrap();
    assert_eq!(before.inputs.len(), 2, "gate and up rows");
    assert_eq!(before.output.len(), model.shape().d_model);
    let params = model.arch().parameters();
    let down = &params.iter().find(|(n, _)| n == "blocks.7.mlp.out.weight").unwrap().1;
    let column: Vec<f32> = Vec::try_from(down.select(1, 321)).unwrap();
    assert_eq!(column, before.output);
    // The gated MLP's input is stored fused as [gate; up].
    let gate_up = &params.iter().find(|(n, _)| n == "blocks.7.mlp.in.weight").unwrap().1;
    assert_eq!(Vec::<f32>::try_from(gate_up.get(321)).unwrap(), before.inputs[0].1);
    assert_eq!(Vec::<f32>::try_from(gate_up.get(1536 + 321)).unwrap(), before.inputs[1].1);

    let snapshot = model.snapshot();
    let bytes = |m: &Model| -> Vec<Vec<u8>> {
        m.arch()
            .parameters()
            .iter()
            .map(|(_, t)| {
                let flat = t.contiguous().view(-1);
                let mut out = vec![0u8; flat.numel() * 4];
                flat.copy_data_u8(&mut out, flat.numel());
                out
            })
            .collect()
    };
    let original = bytes(&model);
    let changed: Vec<f32> = before.output.iter().map(|v| v * 1.000_001 + 1e-7).collect();
    model.set_neuron_output(neuron, &changed).unwrap();
    model.set_neuron_inputs(neuron, &[vec![0.5; 576], vec![-0.25; 576]]).unwrap();
    assert_eq!(model.neuron_weights(neuron).unwrap().output, changed);
    assert_ne!(bytes(&model), original);
    model.restore(&snapshot).unwrap();
    assert_eq!(bytes(&model), original, "restore is not bit-exact");

    assert!(model.neuron_weights(Neuron { layer: 30, index: 0 }).is_err());
    assert!(model.set_neuron_output(neuron, &[1.0; 3]).is_err());
}

#[test]
fn a_pass_stopped_after_a_block_returns_its_residual_and_goes_no_further() {
    let model = default_model();
    let ids = ids(&model);
    let (_, cache) = model.run_with_cache(&ids, |_| true).unwrap();
    let mut hooks = Hooks::record_all().stop_after(4);
    let batch = model.batch(std::slice::from_ref(&ids)).unwrap();
    let out = models::tch::no_grad(|| model.forward(&batch, None, &mut hooks)).unwrap();
    assert_eq!(max_diff(&out, cache.require(HookPoint::ResidPost(4)).unwrap()), 0.0);
    assert!(hooks.cache.get(HookPoint::ResidPost(4)).is_some() && hooks.cache.get(HookPoint::ResidPre(5)).is_none());
}
