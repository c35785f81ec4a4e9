//! MINT repair on the default model: targeting against an independent transformers + autograd computation,
//! repairs of real API-name failures that revert bit-exactly and round-trip through patch sets, the baselines
//! editing exactly what they claim, and exported patched checkpoints that transformers and this runtime read
//! as repaired.

use integration_tests::{default_model, max_abs_diff, read_f32, run_python, NeuronsAsFeatures, HF_LOGIT_TOLERANCE};
use models::gguf::GgmlType;
use models::tch::Kind;
use models::writers::{save_gguf, save_hf_folder};
use models::{LoadOptions, Model};
use repair::patchset::{weights_sha256, ModelIdentity, PatchSet};
use repair::{
    check, target, ChangeTarget, Example, FeatureBasis, Method, Repair, RepairCase, RepairConfig, Repairer, Tokens,
};
use serde_json::json;

/// A real failure of SmolLM2: after `os.path.` it writes `join`, not `expanduser`.
fn expanduser_case() -> RepairCase {
    RepairCase {
        family: "user".into(),
        id: "expanduser".into(),
        example: Example {
            prompt: "import os\nimport sys\n\ndef main():\n    path = os.path.".into(),
            desired: "expanduser".into(),
        },
        variants: vec![Example { prompt: "import os\nhome = os.path.".into(), desired: "expanduser".into() }],
    }
}

fn repairer(model: &Model) -> Repairer {
    let unrelated = experiments::ops::repair::unrelated_prompts(model, 24, 48).unwrap();
    Repairer::new(model, RepairConfig::default(), unrelated, 8).unwrap()
}

fn logits_vec(model: &Model, ids: &[u32]) -> Vec<f32> {
    Vec::try_from(model.logits(ids).unwrap().flatten(0, -1)).unwrap()
}

#[test]
fn targeting_matches_transformers_autograd() {
    let model = default_model();
    let case = expanduser_case();
    let tokens = Tokens::new(&model, &case.example).unwrap();
    let found = target(&model, tokens.context(0), tokens.desired(0), true, None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("model");
    save_hf_folder(&model, &folder).unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(&input, json!({"ids": tokens.context(0), "desired": tokens.desired(0)}).to_string()).unwrap();
    run_python("mint_reference.py", &[&folder, &input, dir.path()]).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reference.json")).unwrap()).unwrap();
    assert_eq!(found.wrong as u64, reference["wrong"].as_u64().unwrap(), "a different competing token");
    assert!((found.logit_gap as f64 - reference["gap"].as_f64().unwrap()).abs() < 1e-3);

    for (name, ours) in [("direct", &found.direct), ("attribution", found.attribution.as_ref().unwrap())] {
        let theirs = read_f32(&dir.path().join(format!("{name}.f32")));
        let ours: Vec<f32> = Vec::try_from(ours.flatten(0, -1)).unwrap();
        let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&ours, &theirs);
        assert!(diff <= 1e-3 * scale, "{name} scores differ by {diff} (largest score {scale})");
    }
    let top: Vec<_> = found.top(repair::Ranking::Direct, 5).unwrap();
    let theirs = read_f32(&dir.path().join("direct.f32"));
    let d_mlp = model.shape().d_mlp;
    let mut order: Vec<usize> = (0..theirs.len()).collect();
    order.sort_by(|&a, &b| theirs[b].abs().total_cmp(&theirs[a].abs()));
    let expected: Vec<(usize, usize)> = order[..5].iter().map(|&i| (i / d_mlp, i % d_mlp)).collect();
    let ranked: Vec<(usize, usize)> = top.iter().map(|s| (s.neuron.layer, s.neuron.index)).collect();
    assert_eq!(ranked, expected, "the top-5 neurons by |direct effect| differ");
}

#[test]
fn mint_repairs_real_failures_and_patch_sets_round_trip_bit_exactly() {
    let model = default_model();
    let original = weights_sha256(&model).unwrap();
    let mut cases = vec![expanduser_case()];
    cases.extend(experiments::repair_cases::api_cases(&model, 3).unwrap());
    assert!(cases.len() >= 3, "too few API failures mined: {}", cases.len());
    let mut repairer = repairer(&model);
    let mut patches = PatchSet::new(ModelIdentity::of(&model).unwrap());
    let (mut attempted, mut fixed) = (0, 0);
    let mut outcomes = Vec::new();
    for case in &cases {
        if check(&model, &Tokens::new(&model, &case.example).unwrap()).unwrap().correct() {
            // The repairs kept so far already fixed this failure of the unpatched model (they generalized).
            continue;
        }
        attempted += 1;
        let (done, metrics) = repairer.repair_case(&model, case, Method::Mint).unwrap();
        assert!(done.margins_before.iter().any(|&m| m < 0.0), "{}: the model was right already", case.id);
        assert!(metrics.neurons_changed <= repairer.config.mint.max_edits);
        let now = check(&model, &Tokens::new(&model, &case.example).unwrap()).unwrap();
        assert_eq!(now.correct(), metrics.effective, "{}: the metrics disagree with a fresh check", case.id);
        let edits: Vec<String> = done
            .steps
            .iter()
            .flat_map(|s| s.edits.iter().map(move |e| format!("token {}: {} {:.2}", s.step, e.target, e.margin_after)))
            .collect();
        outcomes.push((case.id.clone(), done.margins_before.clone(), done.margins_after.clone(), edits));
        if metrics.effective {
            fixed += 1;
            patches.push(&done, Some(case.clone()), Some(metrics));
        } else {
            done.revert(&model).unwrap();
        }
    }
    assert!(attempted >= 2 && fixed * 2 >= attempted, "MINT fixed only {fixed} of {attempted} cases: {outcomes:#?}");

    let probe = model.encode("def area(r):\n    return 3.14 * r * r\n").unwrap();
    let patched_logits = logits_vec(&model, &probe);
    let patched_hash = weights_sha256(&model).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patches.ron");
    patches.save(&path).unwrap();
    patches.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original, "reverting the patch set is not bit-exact");

    let loaded = PatchSet::load(&path).unwrap();
    assert_eq!(loaded.patches.len(), fixed);
    loaded.apply(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), patched_hash);
    assert_eq!(logits_vec(&model, &probe), patched_logits, "the loaded patch set gives other logits");
    let again = loaded.apply(&model).unwrap_err().to_string();
    assert!(again.contains("does not hold"), "{again}");
    assert_eq!(weights_sha256(&model).unwrap(), patched_hash, "a refused apply changed the model");
    loaded.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original);
}

/// MINT as published: the case is repaired by at most 10 neurons of the upper half of the layers, and the first
/// patch is v ← (v + α τ)/(1 + α) with τ along pinv(W_Uᵀ)[d] − pinv(W_Uᵀ)[w] (torch's pseudo-inverse here, a
/// solve of the Gram matrix in the method) for the first desired token d and the unpatched model's top-1 w.
fn published_edits_follow_the_semantic_basis(model: &Model, case: &RepairCase, done: &Repair, repairer: &Repairer) {
    use models::tch::{Device, Kind, Tensor};
    assert!(done.fixed(), "as published, MINT repairs {}: {:?}", case.id, done.margins_after);
    assert!(done.changes.len() <= 10 * done.margins_before.len());
    for change in &done.changes {
        let neuron = change.target.neuron().expect("only output vectors change");
        assert!(neuron.layer >= model.shape().n_layers / 2, "{neuron:?} is not in the upper half");
    }
    let tokens = Tokens::new(model, &case.example).unwrap();
    done.revert(model).unwrap();
    let logits = model.logits(tokens.context(0)).unwrap().get(-1);
    let desired = tokens.desired(0);
    let masked = logits.index_fill(0, &Tensor::from_slice(&[i64::from(desired)]), f64::NEG_INFINITY);
    let wrong = masked.argmax(0, false).int64_value(&[]);
    done.changes.iter().try_for_each(|c| c.apply(model)).unwrap();
    let basis = model.unembedding().to_kind(Kind::Double).to_device(Device::Cpu).tr().linalg_pinv(1e-10, false);
    let semantic = basis.get(i64::from(desired)) - basis.get(wrong);
    let alpha = 0.01 * repairer.config.published.scale;
    let first = &done.changes[0];
    let step = (&first.new * (1.0 + alpha) - &first.old).to_kind(Kind::Double);
    let cosine =
        step.dot(&semantic).double_value(&[]) / (step.norm().double_value(&[]) * semantic.norm().double_value(&[]));
    assert!(cosine > 0.999, "the first patch is not along the semantic direction: cosine {cosine}");
}

/// The gated repair: the case is right while every weight keeps its hash, an unrelated prompt's logits are
/// bit-identical (no gate fires there), neither exporter writes the model, and the gates round-trip through a
/// saved patch set.
fn gates_leave_the_weights_and_unrelated_logits_alone(model: &Model, tokens: &Tokens, done: &Repair, original: &str) {
    assert!(done.fixed(), "the gated repair fixes the case: {:?}", done.margins_after);
    assert!(done.changes.iter().all(|c| matches!(c.target, ChangeTarget::Gate { .. })), "{:?}", done.changes);
    assert_eq!(weights_sha256(model).unwrap(), original, "a gated repair changed weights");
    let probe = model.encode("def area(r):\n    return 3.14 * r * r\n").unwrap();
    let gated = logits_vec(model, &probe);
    done.revert(model).unwrap();
    assert_eq!(model.gates.active().unwrap(), 0, "reverting empties the slots");
    assert_eq!(logits_vec(model, &probe), gated, "a gate fired on an unrelated prompt");
    done.changes.iter().try_for_each(|c| c.apply(model)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = save_hf_folder(model, &dir.path().join("hf")).unwrap_err().to_string();
    assert!(error.contains("gated repairs") && error.contains("export without them"), "{error}");
    assert!(save_gguf(model, &dir.path().join("m.gguf"), GgmlType::F16).is_err());
    assert!(!dir.path().join("hf").exists() && !dir.path().join("m.gguf").exists(), "nothing is written");

    // As a saved patch set: reverted, loaded, applied (the case right again), reverted, applied for the caller.
    let mut set = PatchSet::new(ModelIdentity::of(model).unwrap());
    set.push(done, None, None);
    set.save(&dir.path().join("gates.ron")).unwrap();
    done.revert(model).unwrap();
    let loaded = PatchSet::load(&dir.path().join("gates.ron")).unwrap();
    loaded.apply(model).unwrap();
    assert!(check(model, tokens).unwrap().correct(), "the loaded gates repair the case");
    loaded.revert(model).unwrap();
    assert_eq!(model.gates.active().unwrap(), 0);
    assert!(!check(model, tokens).unwrap().correct());
    done.changes.iter().try_for_each(|c| c.apply(model)).unwrap();
}

#[test]
fn baselines_edit_exactly_what_they_claim_and_revert() {
    let model = default_model();
    let original = weights_sha256(&model).unwrap();
    let case = expanduser_case();
    let mut repairer = repairer(&model);
    let methods =
        [Method::MintGradient, Method::RandomNeurons, Method::FineTuneLayer, Method::RankOne, Method::MintPublished];
    for method in methods {
        let (done, metrics) = repairer.repair_case(&model, &case, method).unwrap();
        assert!(!done.changes.is_empty(), "{method} changed nothing");
        match method {
            Method::MintGradient | Method::RandomNeurons => {
                assert!(done.changes.iter().all(|c| c.target.neuron().is_some()), "{method}: {:?}", done.changes);
                assert!(metrics.neurons_changed <= repairer.config.mint.max_edits);
                for change in &done.changes {
                    let n = change.target.neuron().unwrap();
                    let matrix = ChangeTarget::Parameter(model.arch().mlp(n.layer).output.0);
                    let now = matrix.read(&model).unwrap();
                    assert_eq!(
                        now.select(1, n.index as i64),
                        change.new,
                        "{method}: the column is not what was recorded"
                    );
                }
            }
            Method::FineTuneLayer => {
                let names: Vec<String> = done.changes.iter().map(|c| c.target.to_string()).collect();
                let layer = names[0].split('.').nth(1).unwrap().to_string();
                assert!(names.iter().all(|n| n.starts_with(&format!("blocks.{layer}.mlp."))), "{names:?}");
                assert_eq!(metrics.neurons_changed, model.shape().d_mlp);
            }
            Method::RankOne => {
                for change in &done.changes {
                    let delta = (&change.new - &change.old).to_kind(models::tch::Kind::Double);
                    let (_, singular, _) = delta.svd(true, false);
                    let (first, second) = (singular.double_value(&[0]), singular.double_value(&[1]));
                    assert!(second <= 1e-4 * first, "rank-one edit has singular values {first} and {second}");
                }
            }
            Method::MintPublished => published_edits_follow_the_semantic_basis(&model, &case, &done, &repairer),
            Method::Gated => {
                let tokens = Tokens::new(&model, &case.example).unwrap();
                gates_leave_the_weights_and_unrelated_logits_alone(&model, &tokens, &done, &original)
            }
            Method::Mint
            | Method::Joint
            | Method::JointFeatures
            | Method::Memit
            | Method::AlphaEdit
            | Method::FineTuneKl
            | Method::MintFeatures => unreachable!(),
        }
        // Reverting the recorded changes restores every weight, so nothing was changed without being recorded.
        done.revert(&model).unwrap();
        assert_eq!(weights_sha256(&model).unwrap(), original, "{method} does not revert bit-exactly");
    }
}

#[test]
fn feature_repairs_through_neuron_features_redo_neuron_mint_as_plain_weights() {
    let model = default_model();
    let original = weights_sha256(&model).unwrap();
    let case = expanduser_case();
    let tokens = Tokens::new(&model, &case.example).unwrap();
    let step = check(&model, &tokens).unwrap().first_below(0.0).unwrap();
    let ranking = repair::Ranking::Direct;
    let neurons = target(&model, tokens.context(step), tokens.desired(step), false, None).unwrap();
    let top = neurons.top(ranking, 1).unwrap().remove(0).neuron;

    // Readouts of exactly linear features: u_j = e_j, R² = 1 (up to the ridge).
    let reference: Vec<Vec<u32>> = integration_tests::stdlib_files(16)
        .iter()
        .map(|p| model.encode_prefix(&std::fs::read_to_string(p).unwrap(), 256).unwrap())
        .collect();
    let transcoder = Box::new(NeuronsAsFeatures::of(&model, top.layer));
    let basis = FeatureBasis::fit(&model, transcoder, &reference, &models::Silent).unwrap();
    assert!(basis.tokens >= 3000, "{} reference tokens", basis.tokens);
    let readout = basis.readouts.get(top.index as i64);
    let on_own = readout.double_value(&[top.index as i64]);
    let norm = f64::try_from(readout.norm()).unwrap();
    assert!((on_own - 1.0).abs() < 0.02 && on_own / norm > 0.98, "readout of neuron {top:?}: {on_own} of norm {norm}");
    let fit = basis.fit.get(top.index as i64).double_value(&[]);
    assert!(fit > 0.99, "R² {fit}");

    // Neuron MINT on the direct ranking, then feature MINT through the neurons-as-features: same unit, same margin.
    let mut config = RepairConfig::default();
    config.mint.ranking = ranking;
    let unrelated = experiments::ops::repair::unrelated_prompts(&model, 8, 48).unwrap();
    let mut with_features = Repairer::new(&model, config, unrelated, 8).unwrap().with_features(basis);
    let neuron = with_features.repair(&model, &tokens, Method::Mint).unwrap();
    neuron.revert(&model).unwrap();
    let features = with_features.repair(&model, &tokens, Method::MintFeatures).unwrap();
    let (first_neuron, first_feature) = (&neuron.steps[0], &features.steps[0]);
    assert_eq!(first_neuron.top[0].neuron, top);
    assert_eq!((first_feature.features[0].layer, first_feature.features[0].feature), (top.layer, top.index));
    let neuron_direct = first_neuron.top[0].direct;
    assert!(
        (first_feature.features[0].direct - neuron_direct).abs() <= 1e-3 * neuron_direct.abs(),
        "direct effects: feature {} vs neuron {neuron_direct}",
        first_feature.features[0].direct
    );
    let (margin_neuron, margin_feature) = (first_neuron.edits[0].margin_after, first_feature.edits[0].margin_after);
    assert!(
        (margin_feature - margin_neuron).abs() < 0.25,
        "margins after the first edit: {margin_feature} vs {margin_neuron}"
    );
    assert_eq!(features.fixed(), neuron.fixed());

    // Each change is a rank-one change of the down projection: plain weights, reverted bit for bit.
    for change in &features.changes {
        assert_eq!(change.target, ChangeTarget::Parameter(model.mlp_output(top.layer).0));
        let delta = (&change.new - &change.old).to_kind(Kind::Double);
        let (_, singular, _) = delta.svd(true, false);
        let (first, second) = (singular.double_value(&[0]), singular.double_value(&[1]));
        assert!(second <= 1e-4 * first, "feature edit has singular values {first} and {second}");
    }
    features.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original, "feature repairs do not revert bit-exactly");
    // Without a transcoder the method says what it needs.
    let mut plain = repairer(&model);
    let error = plain.repair(&model, &tokens, Method::MintFeatures).unwrap_err().to_string();
    assert!(error.contains("transcoder"), "{error}");
}

#[test]
fn exported_patched_models_are_repaired_in_transformers_and_gguf() {
    let model = default_model();
    let case = expanduser_case();
    let mut repairer = repairer(&model);
    let (done, metrics) = repairer.repair_case(&model, &case, Method::Mint).unwrap();
    assert!(metrics.effective);
    let tokens = Tokens::new(&model, &case.example).unwrap();
    let prompts = vec![tokens.context(0).to_vec(), repairer.unrelated.prompts()[0].clone()];
    let ours: Vec<Vec<f32>> = prompts.iter().map(|p| logits_vec(&model, p)).collect();

    let dir = tempfile::tempdir().unwrap();
    let (patched_dir, original_dir, gguf) =
        (dir.path().join("patched"), dir.path().join("original"), dir.path().join("patched.gguf"));
    save_hf_folder(&model, &patched_dir).unwrap();
    save_gguf(&model, &gguf, GgmlType::F32).unwrap();
    done.revert(&model).unwrap();
    save_hf_folder(&model, &original_dir).unwrap();

    let input = dir.path().join("in.json");
    std::fs::write(&input, json!({"prompts": prompts}).to_string()).unwrap();
    run_python("hf_patch_check.py", &[&patched_dir, &original_dir, &input, dir.path()]).unwrap();
    let changes: std::collections::BTreeMap<String, Vec<usize>> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("changes.json")).unwrap()).unwrap();
    let mut expected: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for change in &done.changes {
        let n = change.target.neuron().unwrap();
        expected.entry(format!("model.layers.{}.mlp.down_proj.weight", n.layer)).or_default().push(n.index);
    }
    assert_eq!(changes, expected, "the exported folder differs from the unpatched export elsewhere");
    let vocab = model.shape().vocab_size;
    for (i, logits) in ours.iter().enumerate() {
        let theirs = read_f32(&dir.path().join(format!("logits-{i}.f32")));
        assert!(max_abs_diff(logits, &theirs) <= HF_LOGIT_TOLERANCE, "prompt {i}: transformers' logits differ");
        if i == 0 {
            let last = &theirs[theirs.len() - vocab..];
            let top = (0..vocab).max_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap();
            assert_eq!(top as u32, tokens.desired(0), "transformers does not write the desired token");
        }
    }

    let reloaded = Model::load(gguf.to_str().unwrap(), LoadOptions::default()).unwrap();
    assert!(check(&reloaded, &Tokens::new(&reloaded, &case.example).unwrap()).unwrap().correct());
    assert!(max_abs_diff(&logits_vec(&reloaded, &prompts[1]), &ours[1]) <= 1e-5);
}

/// Gated repairs in a row: a second unit, for a near-identical prompt with another answer, fires on its own prompt
/// but not where the first unit's key lies, so both cases are right; with one threshold for every unit (no
/// separation) the second unit fires on the first case's prompt too and one of the two is wrong.
#[test]
fn separated_gates_keep_an_earlier_gated_repair() {
    let model = default_model();
    let first = Tokens::new(&model, &expanduser_case().example).unwrap();
    let example = Example {
        prompt: "import os\nimport sys\n\ndef run():\n    path = os.path.".into(),
        desired: "abspath".into(),
    };
    let second = Tokens::new(&model, &example).unwrap();
    let original = weights_sha256(&model).unwrap();
    for separate in [true, false] {
        let config = repair::gated::GatedConfig { separate, ..Default::default() };
        let done = [&first, &second].map(|tokens| repair::gated::gated_repair(&model, tokens, &config).unwrap());
        let right = [&first, &second].map(|tokens| check(&model, tokens).unwrap().correct());
        done.iter().rev().for_each(|d| d.revert(&model).unwrap());
        assert_eq!(model.gates.active().unwrap(), 0);
        if separate {
            assert_eq!(right, [true, true], "separated units undid a repair");
        } else {
            assert!(right.contains(&false), "without separation both stayed right: the prompts do not cross-talk");
        }
    }
    assert_eq!(weights_sha256(&model).unwrap(), original);
}
