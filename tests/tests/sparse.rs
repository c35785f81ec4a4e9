//! Sparse dictionaries against SAELens (`sae-lens` from PyPI): a sparse autoencoder and a skip-transcoder trained
//! here on a small random Llama load in SAELens, encode the same activations to the same features, survive
//! SAELens's own save back into the workbench bit for bit, and measure the same L0, explained variance, CE and KL
//! scores on the same tokens as SAELens's evaluation (for the transcoder, the same splice done by hand through
//! TransformerLens's hooks, since SAELens's evals splice at one hook only).

use integration_tests::{hf_reference, run_python};
use models::tch::{Kind, Tensor};
use models::{HookPoint, LoadOptions, Model};
use probes::sparse::train::{train, Sparsity, TrainConfig, TrainingData};
use probes::sparse::{collect_training_data, metrics, saelens};

/// Texts whose first token (`@`) occurs only there, so that SAELens's `ignore_tokens` leaves out exactly the
/// first positions, as the workbench does.
const TEXTS: [&str; 4] = [
    "@property\ndef name(self):\n    return self._name\n",
    "@dataclass\nclass Point:\n    x: int = 0\n    y: int = 1\n\n    def norm(self):\n        return (self.x ** 2 + self.y ** 2) ** 0.5\n",
    "@cache\ndef fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "@staticmethod\ndef parse(text):\n    items = [line.split('=') for line in text.splitlines() if line]\n    return dict(items)\n",
];

fn close(ours: f64, theirs: f64, tolerance: f64, what: &str) {
    assert!((ours - theirs).abs() <= tolerance * theirs.abs().max(1.0), "{what}: workbench {ours}, SAELens {theirs}");
}

#[test]
fn dictionaries_trained_here_match_saelens_in_format_encodings_and_metrics() {
    let (dir, _) = hf_reference("llama", "f32");
    let model_dir = dir.path().join("model");
    let model = Model::load(&model_dir.display().to_string(), LoadOptions::default()).unwrap();
    let documents = probes::corpus::stdlib_documents(12).unwrap();
    let texts: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    let token_lists: Vec<Vec<u32>> = texts.iter().map(|t| model.encode_prefix(t, 64).unwrap()).collect();
    let tokens_path = dir.path().join("tokens.json");
    std::fs::write(&tokens_path, serde_json::to_vec(&token_lists).unwrap()).unwrap();

    let cases = [
        ("topk sae", HookPoint::ResidPost(1), HookPoint::ResidPost(1), Sparsity::TopK, false, "topk"),
        (
            "skip transcoder",
            HookPoint::MlpIn(1),
            HookPoint::MlpOut(1),
            Sparsity::BatchTopK,
            true,
            "jumprelu_skip_transcoder",
        ),
    ];
    for (name, reads, writes, sparsity, skip, architecture) in cases {
        let data_path = dir.path().join(format!("{name}.safetensors"));
        let rows = collect_training_data(&model, &documents, reads, writes, 256, &data_path, &models::Silent).unwrap();
        assert_eq!(rows, 12 * 255, "{name}: every token but each document's first");
        let data = TrainingData::load(&data_path).unwrap();
        assert_eq!((data.reads, data.writes, data.input.kind()), (reads, writes, Kind::Half));
        let config = TrainConfig {
            sparsity,
            k: 8,
            features: 128,
            skip,
            batch_size: 256,
            learning_rate: 2e-3,
            steps: 80,
            dead_after_tokens: 4096,
            seed: 1,
            ..TrainConfig::default()
        };
        let (dictionary, report) = train(&data, &config, None, &models::Silent).unwrap();
        let (first, last) = (report.curve[0].fvu, report.curve.last().unwrap().fvu);
        assert!(last < 0.8 * first, "{name}: training went from {first} to {last} unexplained");

        let sae_dir = dir.path().join(format!("{name}-sae"));
        saelens::save(&dictionary, &sae_dir, "tiny-llama").unwrap();
        let x = data.input.narrow(0, 0, 300).to_kind(Kind::Float);
        let inputs = dir.path().join("inputs.safetensors");
        Tensor::write_safetensors(&[("x", &x)], &inputs).unwrap();
        let resaved = dir.path().join(format!("{name}-resaved"));
        std::fs::create_dir_all(&resaved).unwrap();
        let out = run_python("saelens_reference.py", &[&sae_dir, &inputs, &resaved, &model_dir, &tokens_path]).unwrap();
        let reference: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        assert_eq!(reference["architecture"], architecture, "{name}");

        // The same encodings and outputs.
        let theirs = Tensor::read_safetensors(resaved.join("reference.safetensors")).unwrap();
        let get = |n: &str| theirs.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
        let features = dictionary.encode(&x);
        assert!(features.ne(0.0).equal(&get("features").ne(0.0)), "{name}: other features are active");
        let diff = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]);
        assert!(diff(&features, &get("features")) < 1e-5, "{name}: features differ");
        assert!(diff(&dictionary.reconstruct(&x), &get("out")) < 1e-5, "{name}: outputs differ");

        // SAELens's own save loads here to the same weights.
        let back = saelens::load(&resaved).unwrap();
        assert_eq!((back.activation, back.reads, back.writes), (dictionary.activation, reads, writes));
        for ((n, a), (_, b)) in dictionary.named_tensors().into_iter().zip(back.named_tensors()) {
            assert!(a.equal(b), "{name}: {n} changed through SAELens");
        }

        // The same metrics on the same tokens.
        let ours = metrics::evaluate(&model, &dictionary, &texts, 64, &models::Silent).unwrap();
        let theirs = &reference["metrics"];
        eprintln!("{name}: ours {ours:?}\nSAELens {theirs}");
        let value = |key: &str| theirs[key].as_f64().unwrap_or_else(|| panic!("{name}: SAELens gave no {key}"));
        close(ours.l0, value("l0"), 1e-5, "l0");
        close(ours.explained_variance, value("explained_variance"), 1e-4, "explained variance");
        for (key, mine) in [
            ("ce_loss_without_sae", ours.ce_loss_without_sae),
            ("ce_loss_with_sae", ours.ce_loss_with_sae),
            ("ce_loss_with_ablation", ours.ce_loss_with_ablation),
            ("kl_div_with_sae", ours.kl_div_with_sae),
            ("kl_div_with_ablation", ours.kl_div_with_ablation),
        ] {
            close(mine, value(key), 1e-4, key);
        }
        close(ours.ce_loss_score, value("ce_loss_score"), 1e-3, "ce_loss_score");
        close(ours.kl_div_score, value("kl_div_score"), 1e-3, "kl_div_score");
        if let Some(density) = theirs["feature_density"].as_array() {
            close(ours.mse, value("mse"), 1e-4, "mse");
            close(ours.l2_ratio, value("l2_ratio"), 1e-4, "l2 ratio");
            let density: Vec<f64> = density.iter().map(|d| d.as_f64().unwrap()).collect();
            assert_eq!(density.len(), ours.feature_density.len());
            for (a, b) in ours.feature_density.iter().zip(&density) {
                close(*a, *b, 1e-6, "feature density");
            }
        }
    }
}

/// A dictionary on SmolLM2's last residual stream whose features write the unembedding directions of three tokens.
fn token_dictionary(model: &Model, tokens: &[u32]) -> probes::sparse::Dictionary {
    let point = HookPoint::ResidPost(model.shape().n_layers - 1);
    let index = Tensor::from_slice(&tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>());
    let rows = model.unembedding().to_kind(Kind::Float).to_device(models::tch::Device::Cpu).index_select(0, &index);
    let w_dec = &rows / rows.norm_scalaropt_dim(2, [-1], true);
    probes::sparse::Dictionary {
        activation: probes::sparse::Activation::Relu,
        reads: point,
        writes: point,
        apply_b_dec_to_input: true,
        w_enc: w_dec.tr().contiguous(),
        b_enc: Tensor::zeros([tokens.len() as i64], (Kind::Float, models::tch::Device::Cpu)),
        b_dec: Tensor::zeros([w_dec.size()[1]], (Kind::Float, models::tch::Device::Cpu)),
        w_dec,
        threshold: None,
        w_skip: None,
    }
}

#[test]
fn a_features_direction_steers_towards_its_tokens_and_random_directions_do_not() {
    let model = integration_tests::default_model();
    let tokens: Vec<u32> = ["return", " import", " self"].iter().map(|t| model.encode(t).unwrap()[0]).collect();
    let dictionary = token_dictionary(&model, &tokens);
    let prompts: Vec<Vec<u32>> = TEXTS.iter().map(|t| model.encode_prefix(t, 24).unwrap()).collect();
    let report =
        probes::sparse::steering::steer(&model, &dictionary, &[0, 1, 2], &prompts, 20.0, 3, &models::Silent).unwrap();
    eprintln!("{report:?}");
    for (row, token) in report.features.iter().zip(&tokens) {
        assert_eq!(row.targets[0], model.tokenizer.token_text(*token), "a feature's first target is its own token");
        assert!(row.feature_delta > 1.0 && row.random_delta.abs() < 0.5 * row.feature_delta, "{row:?}");
    }
    assert!(report.effect_size > 1.0 && report.features_above_random == 1.0, "{report:?}");
    assert!(probes::sparse::steering::steer(&model, &dictionary, &[3], &prompts, 1.0, 0, &models::Silent).is_err());
}

#[test]
fn feature_pages_read_the_dictionarys_encoding() {
    use find::units::{UnitKind, Units};
    let model = integration_tests::default_model();
    let tokens: Vec<u32> = ["return", " import", " self"].iter().map(|t| model.encode(t).unwrap()[0]).collect();
    let features = experiments::ops::features::Features { dictionary: token_dictionary(&model, &tokens) };
    let ids = model.encode_prefix(TEXTS[2], 40).unwrap();
    let point = features.dictionary.reads;
    let (_, cache) = model.run_with_cache(&ids, move |p| p == point).unwrap();
    let expected = features.dictionary.encode(&cache.require(point).unwrap().get(0));
    assert!(features.activations(&model, &ids).unwrap().allclose(&expected, 1e-5, 1e-5, false));
    let documents: Vec<String> = TEXTS.iter().map(|t| t.to_string()).collect();
    let pages =
        find::pages::pages(&model, &features, &[0, 2], &documents[..3], &documents[3..], 64, &models::Silent).unwrap();
    assert_eq!(
        pages.iter().map(|p| (p.kind, p.index)).collect::<Vec<_>>(),
        [(UnitKind::Feature, 0), (UnitKind::Feature, 2)]
    );
    assert_eq!(pages[1].file_stem(), format!("L{}F2", model.shape().n_layers - 1));
    // The strongest example of each feature is where the dictionary's encoding is largest over the documents.
    for page in &pages {
        let best = documents[..3]
            .iter()
            .map(|text| {
                let ids = model.encode_prefix(text, 64).unwrap();
                features.activations(&model, &ids).unwrap().select(1, page.index as i64).max().double_value(&[])
            })
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(
            (f64::from(page.top[0].activation) - best).abs() < 1e-4,
            "{}: {} vs {best}",
            page.index,
            page.top[0].activation
        );
    }
    assert!(find::pages::pages(&model, &features, &[3], &documents, &documents, 64, &models::Silent).is_err());
}
