//! The desktop app driven through egui_kittest (the AccessKit tree, as a screen reader sees it): every view on
//! the real default model, clicking and typing as a user does, checking the app's state and what it shows
//! against the crates called directly.

use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use models::{GenerationConfig, HookPoint, Model};
use workbench::gui::views::visible_token;
use workbench::gui::WorkbenchApp;

type App = Harness<'static, WorkbenchApp>;

fn harness() -> App {
    Harness::builder()
        .with_size(egui::vec2(1500.0, 1100.0))
        .with_max_steps(16)
        .build_state(|ctx, app: &mut WorkbenchApp| app.show(ctx), WorkbenchApp::default())
}

fn click(h: &mut App, label: &str) {
    h.get_by_role_and_label(Role::Button, label).click();
    h.run_steps(2);
}

/// The text field (one line or several) labelled `label`.
fn field<'h>(h: &'h App, label: &'h str) -> egui_kittest::Node<'h> {
    let mut fields = h
        .get_all_by_label(label)
        .filter(|n| matches!(n.accesskit_node().role(), Role::TextInput | Role::MultilineTextInput));
    let found = fields.next().unwrap_or_else(|| panic!("no text field labelled {label:?}"));
    assert!(fields.next().is_none(), "several text fields labelled {label:?}");
    found
}

/// Replaces the text of the field labelled `label` by typing.
fn type_into(h: &mut App, label: &str, text: &str) {
    field(h, label).focus();
    h.run_steps(1);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run_steps(1);
    field(h, label).type_text(text);
    h.run_steps(2);
}

/// Longest a frame may take while a job runs: jobs take seconds to minutes, so a frame under this bound shows
/// that the UI thread does not wait for them (the bound is loose because the tests share 2 cores).
const FRAME_LIMIT: Duration = Duration::from_secs(2);

/// Steps frames until the job ends; every frame must come quickly (the UI thread never waits for the job).
fn wait(h: &mut App) {
    let started = Instant::now();
    while h.state().shared.busy() {
        let frame = Instant::now();
        h.step();
        assert!(frame.elapsed() < FRAME_LIMIT, "a frame took {:?} while a job ran", frame.elapsed());
        assert!(started.elapsed() < Duration::from_secs(900), "the job did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
}

fn failure(h: &App) -> Option<String> {
    h.state().shared.failure.as_ref().map(|(_, e)| e.clone())
}

/// The app with the default model loaded through the Model view.
fn loaded() -> App {
    let mut h = harness();
    click(&mut h, "Model");
    type_into(&mut h, "Model", "smollm2-135m-instruct");
    click(&mut h, "Load");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    h
}

/// The default model, loaded independently of the app, for reference values.
fn reference_model() -> Model {
    Model::load("smollm2-135m-instruct", models::LoadOptions::default()).expect("the default model loads")
}

#[test]
fn model_view_shows_an_error_for_a_bad_path_then_loads_the_catalogue_model() {
    let mut h = harness();
    type_into(&mut h, "Model", "/no/such/model.gguf");
    click(&mut h, "Load");
    wait(&mut h);
    let error = failure(&h).expect("loading a missing file fails");
    assert!(error.contains("/no/such/model.gguf"), "{error}");
    assert!(h.query_by_label("The job failed").is_some());
    assert!(h.query_by_label(&error).is_some(), "the error panel shows the message");
    click(&mut h, "Dismiss");
    assert!(h.query_by_label("The job failed").is_none());

    type_into(&mut h, "Model", "smollm2-135m-instruct");
    click(&mut h, "Load");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    // SmolLM2-135M's config.json: 30 layers of 1536 neurons, 9 query and 3 key/value heads of 64.
    for shown in ["30", "1536 (46080 in all)", "9 query, 3 key/value, 64 wide", "134515008", "llama"] {
        assert!(h.query_by_label(shown).is_some(), "the summary shows {shown:?}");
    }
}

/// The Model view lists the catalogue and the Hugging Face cache, an incomplete cached model with what it lacks;
/// clicking a listed model names it in the Model field.
#[test]
fn model_view_lists_the_catalogue_and_the_hub_cache() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--org--half");
    std::fs::create_dir_all(repo.join("snapshots/abc")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "abc").unwrap();
    std::fs::write(repo.join("snapshots/abc/config.json"), "{}").unwrap();
    let listed = workbench::gui::views::model::available_models(cache.path());
    assert_eq!(listed.iter().map(|m| m.spec.as_str()).collect::<Vec<_>>(), ["smollm2-135m-instruct", "org/half"]);

    // The view reads the cache HF_HUB_CACHE names (no other test of this binary reads the variable).
    std::env::set_var("HF_HUB_CACHE", cache.path());
    let mut h = harness();
    type_into(&mut h, "Model", "something else");
    let problem = listed[1].problem.clone().unwrap();
    assert!(problem.contains("tokenizer.json"), "{problem}");
    assert!(h.query_by_label(&format!("cannot be loaded: {problem}")).is_some(), "the view shows what org/half lacks");
    h.get_by_label("org/half").click();
    h.run_steps(2);
    assert_eq!(h.state().model.spec, "org/half");
    h.get_by_label("smollm2-135m-instruct").click();
    h.run_steps(2);
    assert_eq!(h.state().model.spec, "smollm2-135m-instruct");
}

#[test]
fn inspector_shows_tokens_next_tokens_lens_and_generates_like_the_runtime() {
    let mut h = loaded();
    click(&mut h, "Prompt inspector");
    let prompt = "def add(a, b):\n    return a +";
    type_into(&mut h, "Prompt", prompt);
    assert_eq!(h.state().inspector.prompt, prompt);
    click(&mut h, "Inspect");
    wait(&mut h);
    assert_eq!(failure(&h), None);

    let model = reference_model();
    let ids = model.encode(prompt).unwrap();
    let inspection = h.state().inspector.inspection.as_ref().expect("an inspection").clone();
    assert_eq!(inspection.ids, ids);
    assert!(h.query_by_label(&format!("{} tokens; click one to select it.", ids.len())).is_some());
    assert_eq!(inspection.lens.top1.len(), 30);
    assert_eq!(inspection.attention[0].len(), 9);
    assert_eq!(inspection.neurons[0][0].len(), 1536);

    // Select the last token: its top next token is the runtime's argmax.
    let last = visible_token(inspection.tokens.last().unwrap());
    h.get_all_by_role_and_label(Role::Button, &last).last().expect("the token strip shows the last token").click();
    h.run_steps(2);
    assert_eq!(h.state().inspector.selected, ids.len() - 1);
    let logits = model.logits(&ids).unwrap();
    let argmax = logits.get(ids.len() as i64 - 1).argmax(-1, false).int64_value(&[]) as u32;
    assert_eq!(inspection.lens.final_top[ids.len() - 1][0].token, argmax);
    let top = visible_token(&model.tokenizer.token_text(argmax));
    assert!(h.query_all_by_label(&top).next().is_some(), "the top next token {top:?} is shown");
    let heading = format!("Next token after {:?}", inspection.tokens.last().unwrap());
    assert!(h.query_by_label(&heading).is_some(), "{heading}");

    click(&mut h, "Generate");
    wait(&mut h);
    let expected = model.generate_text(&[prompt], &GenerationConfig::greedy(32)).unwrap().remove(0).text;
    assert_eq!(h.state().inspector.generation.as_deref(), Some(expected.as_str()));
    assert!(h.query_by_label(&expected).is_some());
}

#[test]
fn probes_draw_layers_as_they_finish_while_frames_keep_coming() {
    let mut h = loaded();
    click(&mut h, "Probes");
    type_into(&mut h, "Layers", "0,8,16");
    {
        let view = &mut h.state_mut().probes;
        view.files = 4;
        view.max_tokens = 96;
    }
    click(&mut h, "Run probes");
    let mut seen = Vec::new();
    let started = Instant::now();
    while h.state().shared.busy() {
        let frame = Instant::now();
        h.step();
        assert!(frame.elapsed() < FRAME_LIMIT, "a frame took {:?}", frame.elapsed());
        seen.push(h.state().probes.results.len());
        assert!(started.elapsed() < Duration::from_secs(600));
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
    assert_eq!(failure(&h), None);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "results only grow");
    assert!(seen.iter().any(|&n| n > 0 && n < 3), "the view showed finished layers while the sweep ran");
    let results = &h.state().probes.results;
    assert_eq!(results.len(), 3);
    for r in results {
        assert!(r.accuracy.low <= r.accuracy.mean && r.accuracy.mean <= r.accuracy.high, "{r:?}");
        assert!((r.selectivity.mean - (r.accuracy.mean - r.control.mean)).abs() < 1e-9);
    }
    assert!(h.query_by_label("3 of 3 layers probed (done)").is_some());
}

#[test]
fn neuron_view_shows_top_examples_and_an_interpreters_calls() {
    let mut h = loaded();
    click(&mut h, "Neurons");
    {
        let view = &mut h.state_mut().neurons;
        view.layer = 3;
        view.index = 100;
        view.files = 2;
        view.rounds = 2;
    }
    click(&mut h, "Top examples");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let page = h.state().neurons.page.clone().expect("a page");
    assert!(!page.top.is_empty());
    assert!(page.top.windows(2).all(|w| w[0].activation >= w[1].activation), "strongest first");
    for example in &page.top {
        assert_eq!(example.activations[example.centre], example.activation);
    }
    assert!(h.query_by_label_contains("Simulation score").is_some());
    assert!(h.query_by_label(&format!("Neuron 3.100: {}", page.description)).is_some());

    type_into(&mut h, "Template", "total = {x}");
    click(&mut h, "Interpret");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let calls = h.state().neurons.calls.clone();
    assert!(!calls.is_empty() && calls.len() <= 64, "{} calls", calls.len());
    assert!(h.state().neurons.answer.is_some());
    let model = reference_model();
    let neuron = models::Neuron { layer: 3, index: 100 };
    for &[x, y] in calls.iter().take(3) {
        let text = if x.fract() == 0.0 { format!("{}", x as i64) } else { format!("{x}") };
        let ids = model.encode(&format!("total = {text}")).unwrap();
        let (_, cache) = model.run_with_cache(&ids, |p| p == HookPoint::MlpPost(3)).unwrap();
        let direct =
            cache.get(HookPoint::MlpPost(3)).unwrap().get(0).get(ids.len() as i64 - 1).get(neuron.index as i64);
        assert!((f64::try_from(direct).unwrap() - y).abs() < 1e-4, "f({x}) = {y}");
    }
    assert!(h.query_by_label(&format!("{} calls", calls.len())).is_some());
    let [x, y] = calls[0];
    assert!(h.query_all_by_label(&format!("f({x}) = {y:.4}")).next().is_some(), "the transcript shows the first call");
}

#[test]
fn features_view_trains_and_measures_a_transcoder_pages_a_feature_and_the_inspector_shows_its_features() {
    let mut h = loaded();
    click(&mut h, "Features");
    click(&mut h, "Feature page");
    assert!(h.state().features.page.is_none() && !h.state().shared.busy(), "no page without a dictionary");
    let runs = tempfile::tempdir().unwrap();
    {
        let view = &mut h.state_mut().features;
        view.layer = 3;
        (view.training.files, view.training.max_tokens, view.training.held_out.files) = (4, 128, 2);
        let config = &mut view.training.training;
        (config.features, config.k, config.steps, config.batch_size) = (128, 8, 30, 256);
        view.files = 2;
        view.runs = runs.path().display().to_string();
    }
    click(&mut h, "Train transcoder");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let trained = h.state().features.loaded.clone().expect("the trained dictionary is loaded");
    assert!(trained.folder.starts_with(runs.path()), "{}", trained.folder.display());
    assert_eq!(h.state().shared.dictionary.as_ref(), Some(&trained.folder), "the inspector reads it");
    assert!(trained.description.contains("128 features: blocks.3.mlp.hook_in -> blocks.3.hook_mlp_out"));
    assert!(h.query_by_label_contains(&trained.description).is_some());
    for line in &trained.summary {
        assert!(h.query_by_label(line).is_some(), "{line}");
    }

    // Measuring again reads the saved folder: SAELens's metrics of the folder, computed here directly.
    click(&mut h, "Evaluate on held-out files");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let measured = h.state().features.loaded.clone().unwrap().metrics.expect("metrics");
    let model = reference_model();
    let dictionary = probes::sparse::saelens::load(&trained.folder).unwrap();
    let held_out = experiments::code_metrics::held_out_files(2).unwrap();
    let direct = probes::sparse::metrics::evaluate(&model, &dictionary, &held_out, 256, &models::Silent).unwrap();
    assert_eq!((measured.tokens, measured.dead_features), (direct.tokens, direct.dead_features));
    for (shown, expected) in [
        (measured.l0, direct.l0),
        (measured.explained_variance, direct.explained_variance),
        (measured.ce_loss_score, direct.ce_loss_score),
    ] {
        assert!((shown - expected).abs() < 1e-6, "{shown} vs {expected}");
    }

    // The page of the most frequent feature.
    let density = &measured.feature_density;
    let busiest = (0..density.len()).max_by(|&a, &b| density[a].total_cmp(&density[b])).unwrap();
    h.state_mut().features.index = busiest;
    click(&mut h, "Feature page");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let page = h.state().features.page.clone().expect("a page");
    assert_eq!((page.layer, page.index), (3, busiest));
    assert!(!page.top.is_empty() && page.top.windows(2).all(|w| w[0].activation >= w[1].activation));
    assert!(h.query_by_label(&format!("Feature 3.{busiest}: {}", page.description)).is_some());

    // The inspector shows the dictionary's features beside the neurons: its encoding of blocks.3.mlp.hook_in.
    click(&mut h, "Prompt inspector");
    let prompt = "for i in range(10):\n    print(i)";
    type_into(&mut h, "Prompt", prompt);
    click(&mut h, "Inspect");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let ids = model.encode(prompt).unwrap();
    let (_, cache) = model.run_with_cache(&ids, |p| p == HookPoint::MlpIn(3)).unwrap();
    let expected = dictionary.encode(&cache.get(HookPoint::MlpIn(3)).unwrap().squeeze_dim(0));
    let shown = h.state().inspector.features.clone().expect("features on the prompt");
    assert_eq!(shown.activations.len(), ids.len());
    for (position, row) in shown.activations.iter().enumerate() {
        for (feature, &activation) in row.iter().enumerate() {
            let direct = expected.double_value(&[position as i64, feature as i64]) as f32;
            assert!((activation - direct).abs() < 1e-4, "feature {feature} at {position}: {activation} vs {direct}");
        }
    }
    // Select the token where some feature fires hardest; its strongest feature opens in the Features view.
    let position = (0..ids.len())
        .max_by(|&a, &b| {
            let top = |p: usize| probes::inspect::strongest(&shown.activations[p], 1)[0].activation.abs();
            top(a).total_cmp(&top(b))
        })
        .unwrap();
    h.state_mut().inspector.selected = position;
    h.run_steps(2);
    let first = probes::inspect::strongest(&shown.activations[position], 1)[0];
    assert!(first.activation != 0.0, "some feature fires on the prompt");
    assert!(h.query_by_label_contains("Top features at").is_some());
    // The button sits below the heat maps, out of the window: clicked as a screen reader does.
    h.get_by_role_and_label(Role::Button, &format!("Open feature {}", first.index)).click_accesskit();
    h.run_steps(2);
    assert_eq!(h.state().view, workbench::gui::View::Features);
    assert_eq!(h.state().features.index, first.index);
}

#[test]
fn repair_previews_applies_and_reverts_a_patch_and_benchmarks_compare_before_and_after() {
    let mut h = loaded();
    click(&mut h, "Repair");
    let (prompt, desired) = ("import os\n\npath = os.path.", "expanduser");
    type_into(&mut h, "Case prompt", prompt);
    type_into(&mut h, "Desired", desired);
    click(&mut h, "Add case");
    assert_eq!(h.state().repair.cases.len(), 1);
    assert_eq!(h.state().repair.selected, Some(0));

    let model = reference_model();
    let tokens =
        repair::Tokens::new(&model, &repair::Example { prompt: prompt.into(), desired: desired.into() }).unwrap();
    let before = repair::check(&model, &tokens).unwrap();
    assert!(!before.correct(), "the case is a real failure of the model");

    click(&mut h, "Run repair");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let (margins_after, effective, first_neuron) = {
        let outcome = h.state().repair.outcome.as_ref().expect("a preview");
        let top = &outcome.repair.steps[0].top[0];
        (outcome.repair.margins_after.clone(), outcome.metrics.effective, top.neuron)
    };
    assert!(
        h.query_by_label(&format!("{}.{}", first_neuron.layer, first_neuron.index)).is_some(),
        "ranked neurons shown"
    );
    let app_model = h.state().shared.model.clone().unwrap();
    let logits_original = app_model.lock().unwrap().logits(&tokens.ids).unwrap();
    assert!(logits_original.equal(&model.logits(&tokens.ids).unwrap()), "the preview was reverted");

    click(&mut h, "Apply patch");
    assert_eq!(h.state().shared.applied_count(), 1);
    wait(&mut h);
    assert_eq!(h.state().repair.applied.cases.len(), 1, "the applied set is measured again");
    let after = repair::check(&app_model.lock().unwrap(), &tokens).unwrap();
    for (a, b) in after.margins.iter().zip(&margins_after) {
        assert!((a - b).abs() < 1e-3, "applied margins {:?} vs preview {margins_after:?}", after.margins);
    }
    assert_eq!(after.correct(), effective);

    click(&mut h, "Benchmarks");
    {
        let view = &mut h.state_mut().benchmarks;
        view.files = 1;
        view.lines = 2;
    }
    click(&mut h, "Run benchmark");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let comparison = h.state().benchmarks.comparison.clone().expect("a comparison");
    assert_eq!(comparison.repairs, 1);
    assert_eq!(comparison.rows.len(), 2);
    assert!(comparison.rows.iter().all(|r| r.after.is_some()));
    let (before, after) = comparison.scores();
    let heading = format!("Lines: before {before:.3}, after {:.3}", after.unwrap());
    assert!(h.query_by_label(&heading).is_some(), "{heading}");
    assert_eq!(h.state().shared.applied_count(), 1, "the benchmark put the patch back");

    click(&mut h, "Repair");
    click(&mut h, "Revert last patch");
    assert_eq!(failure(&h), None);
    assert_eq!(h.state().shared.applied_count(), 0);
    let logits_reverted = app_model.lock().unwrap().logits(&tokens.ids).unwrap();
    assert!(logits_reverted.equal(&logits_original), "reverting restores the model bit for bit");
}

/// Types a case into the Repair view's fields and adds it to the queue.
fn add_case(h: &mut App, prompt: &str, desired: &str) {
    type_into(h, "Case prompt", prompt);
    type_into(h, "Desired", desired);
    click(h, "Add case");
}

#[test]
fn repair_view_repairs_a_queue_jointly_shows_margins_refusals_and_a_regression_in_red() {
    let mut h = loaded();
    click(&mut h, "Repair");
    let prompt = "import os\\n\\npath = os.path.";
    add_case(&mut h, prompt, "expanduser");
    add_case(&mut h, "import os\\nhome = os.path.", "expanduser");
    click(&mut h, "Repair all jointly");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    assert_eq!(h.state().shared.applied_count(), 1, "one joint step holds the set");
    assert!(h.state().repair.applied.last.as_ref().is_some_and(|l| l.refusals.is_empty()));

    // The margins shown are those of the saved set applied to an independently loaded model.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("set.ron");
    type_into(&mut h, "Patch file", saved.to_str().unwrap());
    click(&mut h, "Save patch set");
    let model = reference_model();
    let set = repair::patchset::PatchSet::load(&saved).unwrap();
    set.apply(&model).unwrap();
    let shown = h.state().repair.applied.cases.clone();
    assert_eq!(shown.len(), 2);
    for (case, row) in set.cases().zip(&shown) {
        let margins = repair::check(&model, &repair::Tokens::new(&model, &case.example).unwrap()).unwrap().margins;
        let shortest = margins.iter().copied().fold(f32::INFINITY, f32::min);
        assert!((shortest - row.margin).abs() < 1e-3, "{}: shown {} vs {shortest}", row.name, row.margin);
        assert!(row.margin >= 0.0, "the joint repair made {} right", row.name);
        assert!(h.query_by_label(&format!("{:+.2}", row.margin)).is_some(), "the table shows {}", row.name);
    }
    // What the model wrote before the repair: a case that wants it back contradicts the first one.
    set.revert(&model).unwrap();
    let ids = model.encode(&prompt.replace("\\n", "\n")).unwrap();
    let logits = model.logits(&ids).unwrap();
    let top = model.tokenizer.token_text(i64::try_from(logits.get(-1).argmax(-1, false)).unwrap() as u32);
    add_case(&mut h, prompt, &top);
    click(&mut h, "Repair all jointly");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let refusals = h.state().repair.applied.last.clone().unwrap().refusals;
    assert_eq!(refusals.len(), 1, "the guard refuses the contradicting case");
    assert!(h.query_by_label(&format!("Refused by the guard: {}", refusals[0])).is_some());
    assert_eq!(h.state().shared.applied_count(), 1, "a refused step leaves the set as it was");

    // MINT on the contradicting case, applied unguarded: the applied set shows the regression in red.
    click(&mut h, "Run repair");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    assert!(h.state().repair.outcome.as_ref().unwrap().metrics.effective, "MINT repairs the contradicting case");
    click(&mut h, "Apply patch");
    wait(&mut h);
    let rows = h.state().repair.applied.cases.clone();
    assert!(rows[0].margin < 0.0, "the first case is wrong again: {rows:?}");
    assert!(h.query_by_label(&format!("{:+.2} (regressed)", rows[0].margin)).is_some());
}

#[test]
fn benchmarks_view_plots_a_sequential_study_and_names_a_folder_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let row = |method: &str, n: usize, repaired: f64| {
        format!(
            r#"{{"method":"{method}","n":{n},"repaired":{repaired},"generalization":null,"top1_unchanged":0.99,"mean_kl":0.01,"benchmarks":{{"perplexity":11.0,"line_exact_match":0.2,"humaneval_pass1":null}},"perplexity_ratio":1.0,"neurons_changed":5,"refused":0,"seconds":1.0}}"#
        )
    };
    let step = dir.path().join("step-00-repair-sequence");
    std::fs::create_dir(&step).unwrap();
    let journal = ["{\"settings\":{}}".to_string(), row("Joint", 1, 1.0), row("Joint", 10, 0.9), row("Memit", 10, 0.8)];
    std::fs::write(step.join("rows.jsonl"), journal.join("\n") + "\n").unwrap();

    let mut h = harness();
    click(&mut h, "Benchmarks");
    type_into(&mut h, "Study run folder", dir.path().join("missing").to_str().unwrap());
    click(&mut h, "Show study");
    let error = failure(&h).expect("a missing folder is an error");
    assert!(error.contains("missing"), "{error}");
    assert!(h.query_by_label("The job failed").is_some());
    click(&mut h, "Dismiss");

    type_into(&mut h, "Study run folder", dir.path().to_str().unwrap());
    click(&mut h, "Show study");
    assert_eq!(failure(&h), None);
    let rows = h.state().benchmarks.study.clone().expect("the study's rows");
    let read: Vec<(String, usize, f64)> = rows.iter().map(|r| (r.method.to_string(), r.n, r.repaired)).collect();
    assert_eq!(read, [("joint".into(), 1, 1.0), ("joint".into(), 10, 0.9), ("memit".into(), 10, 0.8)]);
    assert!(h
        .query_by_label("3 rows; share of the N cases right against repairs applied (N), a line per method")
        .is_some());
    for method in ["joint", "memit"] {
        assert!(h.query_all_by_label(method).next().is_some(), "the legend names {method}");
    }
}

#[test]
fn experiments_view_runs_a_spec_shows_its_report_exports_and_survives_a_bad_spec() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tiny.ron");
    std::fs::write(
        &spec,
        r#"(name: "gui-tiny", model: "smollm2-135m-instruct", device: "auto", dtype: "f32", seed: 0,
            steps: [Perplexity(files: 1, tokens: 64)])"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.ron");
    std::fs::write(&bad, "(name: \"bad\",\n steps: [Perplexity(files: \"one\")])").unwrap();
    let runs = dir.path().join("runs");

    let mut h = loaded();
    click(&mut h, "Experiments");
    type_into(&mut h, "Runs folder", runs.to_str().unwrap());
    type_into(&mut h, "Spec", bad.to_str().unwrap());
    click(&mut h, "Run spec");
    wait(&mut h);
    let error = failure(&h).expect("a malformed spec fails");
    assert!(error.contains("2:"), "the error names the line: {error}");
    assert!(h.query_by_label("The job failed").is_some());

    type_into(&mut h, "Spec", spec.to_str().unwrap());
    click(&mut h, "Run spec");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    let run = h.state().experiments.selected.clone().expect("the finished run is selected");
    assert!(run.starts_with(&runs) && run.join("report.md").exists());
    assert!(h.query_by_label(&format!("Report of {}", run.display())).is_some());
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(h.query_by_label(&report).is_some(), "the report is shown");

    let hf = dir.path().join("exported");
    type_into(&mut h, "Hugging Face folder", hf.to_str().unwrap());
    click(&mut h, "Export");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    assert!(hf.join("config.json").exists() && hf.join("model.safetensors").exists());
    assert!(h.query_by_label(&format!("wrote Hugging Face folder {}", hf.display())).is_some());
}

#[test]
fn cancel_stops_a_job_and_the_app_goes_on() {
    let mut h = loaded();
    click(&mut h, "Probes");
    type_into(&mut h, "Layers", "all");
    h.state_mut().probes.files = 60;
    click(&mut h, "Run probes");
    assert!(h.state().shared.busy());
    click(&mut h, "Cancel");
    wait(&mut h);
    let error = failure(&h).expect("a cancelled job reports it");
    assert!(error.to_lowercase().contains("cancel"), "{error}");
    click(&mut h, "Prompt inspector");
    click(&mut h, "Inspect");
    wait(&mut h);
    assert_eq!(failure(&h), None);
    assert!(h.state().inspector.inspection.is_some(), "the app goes on after a cancelled job");
}

/// eframe's storage, in memory.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn flush(&mut self) {}
}

#[test]
fn settings_survive_a_restart() {
    let mut h = harness();
    click(&mut h, "Neurons");
    type_into(&mut h, "Template", "n = {x}");
    h.state_mut().neurons.layer = 7;
    let mut storage = MemoryStorage::default();
    eframe::App::save(h.state_mut(), &mut storage);
    let restored = WorkbenchApp::restore(Some(&storage));
    assert_eq!(restored.view, workbench::gui::View::Neurons);
    assert_eq!(restored.neurons.template, "n = {x}");
    assert_eq!(restored.neurons.layer, 7);
    assert!(restored.shared.model.is_none(), "models are not stored, only settings");
    let fresh = WorkbenchApp::restore(None);
    assert_eq!(fresh.neurons.template, "x = {x}");
}
