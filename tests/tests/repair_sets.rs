//! Repairs of many cases on the default model: the rows of the joint solve and its output metric against
//! transformers and autograd; a set repaired jointly applies and reverts bit-exactly (also
//! through its saved files) and its export, loaded in transformers, gets every repaired case right; the guard of
//! lifelong repair refuses a patch built to break an earlier repair and leaves the model as it was, and a refused
//! step is split; a solve that reuses held cases' rows reports the model's margins; the guard reads reference text
//! the statistics did not; fine-tuning a set edits only what it claims; the small sequential study runs and
//! resumes (lifelong repair from the patch set kept at its last N).

use integration_tests::{default_model, matrix_from_json, relative_error, run_python};
use models::Model;
use repair::patchset::{weights_sha256, ModelIdentity, PatchSet};
use repair::{Example, GuardConfig, Guarded, JointConfig, Levers, Preserved, RepairCase, Tokens, Unrelated, Verdict};
use serde_json::json;

use experiments::ops::repair::unrelated_prompts;
use experiments::ops::repair_set::{preservation, ReferenceSettings};

/// A small reference: enough for the tests, quick to compute.
fn preserved(model: &Model) -> Preserved {
    let settings = ReferenceSettings { windows: 24, tokens: 96, anchors: 64, covariance: false, ..Default::default() };
    preservation(model, &settings, &models::Silent).unwrap().0
}

fn unrelated(model: &Model) -> Unrelated {
    Unrelated::new(model, unrelated_prompts(model, 12, 48).unwrap(), 8).unwrap()
}

fn case(id: &str, prompt: &str, desired: &str) -> RepairCase {
    RepairCase {
        family: "user".into(),
        id: id.into(),
        example: Example { prompt: prompt.into(), desired: desired.into() },
        variants: vec![],
    }
}

#[test]
fn a_joint_set_reverts_bit_exactly_and_holds_in_transformers() {
    let model = default_model();
    let cases = experiments::repair_cases::MinedCases { api: 10, ..Default::default() }.mine(&model).unwrap();
    assert_eq!(cases.len(), 10, "ten API-name failures are mined");
    let (preserved, unrelated) = (preserved(&model), unrelated(&model));
    let original = weights_sha256(&model).unwrap();
    let mut patches = PatchSet::new(ModelIdentity::of(&model).unwrap());
    let guard = GuardConfig { max_top1_loss: 0.2, max_total_top1_loss: 0.2, ..Default::default() };
    let config = JointConfig::default();
    let guarded =
        Guarded { preserved: &preserved, levers: Levers::Neurons, joint: &config, guard: &guard, windows: &unrelated };
    let step = guarded.add(&model, &mut patches, &cases, &models::Silent).unwrap();
    assert_eq!(step.verdict, Verdict::Kept, "{step:?}");
    let repaired: Vec<&RepairCase> = patches.cases().collect();
    assert!(repaired.len() >= 8, "only {} of 10 cases repaired jointly", repaired.len());
    let patched = weights_sha256(&model).unwrap();
    assert_ne!(patched, original);

    // Export with the set applied, then revert; the saved set applies and reverts to the same bits.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("patched");
    models::writers::save_hf_folder(&model, &folder).unwrap();
    patches.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original, "reverting the set is not bit-exact");
    patches.save(&dir.path().join("set.ron")).unwrap();
    let loaded = PatchSet::load(&dir.path().join("set.ron")).unwrap();
    assert_eq!(loaded.cases().count(), repaired.len());
    loaded.apply(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), patched, "the loaded set applies other values");
    loaded.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original);

    // Transformers reads the exported folder and writes every repaired case.
    let requests: Vec<_> = repaired
        .iter()
        .map(|c| {
            let tokens = Tokens::new(&model, &c.example).unwrap();
            json!({"ids": tokens.ids, "prompt_len": tokens.prompt_len})
        })
        .collect();
    let (input, output) = (dir.path().join("in.json"), dir.path().join("out.json"));
    std::fs::write(&input, json!({ "cases": requests }).to_string()).unwrap();
    run_python("hf_cases_check.py", &[&folder, &input, &output]).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    for (case, margins) in repaired.iter().zip(answer["margins"].as_array().unwrap()) {
        let margins: Vec<f64> = serde_json::from_value(margins.clone()).unwrap();
        assert!(margins.iter().all(|&m| m > 0.0), "{}: transformers' margins {margins:?}", case.id);
    }
}

/// The joint solve's rows, computed for cases of different lengths in one (left-padded) batch, and the reference
/// gap moment of the output metric, against transformers and autograd in float64 on the exported model.
#[test]
fn batched_rows_and_the_gap_moment_match_transformers_autograd() {
    let model = default_model();
    let cases = [
        case("expanduser", "import os\nimport sys\n\ndef main():\n    path = os.path.", "expanduser"),
        case("home", "import os\nhome = os.path.", "expanduser"),
        case("listdir", "import os\nfor name in os.", "listdir(path):"),
    ];
    let tokens: Vec<Tokens> = cases.iter().map(|c| Tokens::new(&model, &c.example).unwrap()).collect();
    let rows = repair::rows::rows_of(&model, &tokens).unwrap();
    let prompts = unrelated_prompts(&model, 3, 32).unwrap();
    let moment = repair::rows::gap_moment(&model, &prompts).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("model");
    models::writers::save_hf_folder(&model, &folder).unwrap();
    let (input, output) = (dir.path().join("in.json"), dir.path().join("out.json"));
    let checked: Vec<_> = tokens.iter().map(|t| json!({"ids": t.ids, "prompt_len": t.prompt_len})).collect();
    std::fs::write(&input, json!({"prompts": prompts, "cases": checked}).to_string()).unwrap();
    run_python("gap_moment_reference.py", &[&folder, &input, &output]).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    let answers = answer["cases"].as_array().unwrap();
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    for (index, theirs) in answers.iter().enumerate() {
        let ours: Vec<&repair::rows::Row> = rows.iter().filter(|r| r.case == index).collect();
        let margins: Vec<f64> = serde_json::from_value(theirs["margins"].clone()).unwrap();
        assert_eq!(ours.len(), margins.len(), "{}: one row per desired token", cases[index].id);
        for (row, theirs) in ours.iter().zip(&margins) {
            assert!(
                (f64::from(row.margin) - theirs).abs() < 2e-3,
                "{}: margin {} vs {theirs}",
                cases[index].id,
                row.margin
            );
        }
        for (row, theirs) in ours.iter().zip(matrix_from_json(&theirs["directions"]).unbind(0)) {
            let error = relative_error(&row.direction, &theirs);
            assert!(error < 1e-3, "{}: gap direction off by {error:e}", cases[index].id);
        }
    }
    let error = relative_error(&moment, &matrix_from_json(&answer["moment"]));
    assert!(error < 1e-3, "the gap moment is off by {error:e}");
}

#[test]
fn the_guard_refuses_a_patch_that_breaks_an_earlier_repair() {
    let model = default_model();
    let (preserved, unrelated) = (preserved(&model), unrelated(&model));
    let prompt = "import os\nimport sys\n\ndef main():\n    path = os.path.";
    let mut patches = PatchSet::new(ModelIdentity::of(&model).unwrap());
    let (config, guard) =
        (JointConfig::default(), GuardConfig { max_top1_loss: 0.2, max_total_top1_loss: 0.2, ..Default::default() });
    let first = [case("expanduser", prompt, "expanduser")];
    let guarded =
        Guarded { preserved: &preserved, levers: Levers::Neurons, joint: &config, guard: &guard, windows: &unrelated };
    let step = guarded.add(&model, &mut patches, &first, &models::Silent).unwrap();
    assert_eq!(step.verdict, Verdict::Kept, "{step:?}");
    let before = weights_sha256(&model).unwrap();

    // The same prompt with another answer: repairing it means undoing the first repair.
    let conflicting = [case("abspath", prompt, "abspath")];
    let step = guarded.add(&model, &mut patches, &conflicting, &models::Silent).unwrap();
    let Verdict::Refused { reason } = &step.verdict else { panic!("the guard kept a conflicting patch: {step:?}") };
    assert!(reason.contains("expanduser") || reason.contains("could be repaired"), "{reason}");
    assert_eq!(weights_sha256(&model).unwrap(), before, "a refused step left changes behind");
    assert_eq!(patches.patches.len(), 1);
    assert!(repair::check(&model, &Tokens::new(&model, &first[0].example).unwrap()).unwrap().correct());

    // A good case and the conflicting one together: the good one goes in, the other is reported, not forced.
    let good = case("home", "import os\nhome = os.path.", "expanduser");
    let pair = [good.clone(), conflicting[0].clone()];
    let steps = guarded.add_in_parts(&model, &mut patches, &pair, &models::Silent).unwrap();
    let held: Vec<&str> = patches.cases().map(|c| c.id.as_str()).collect();
    assert_eq!(held, ["expanduser", "home"], "{steps:#?}");
    let applied = weights_sha256(&model).unwrap();

    // A guard that refuses everything: the pair is refused whole, then each half, and nothing changes.
    let strict = GuardConfig { max_top1_loss: -1.0, ..Default::default() };
    let pair = [case("a", prompt, "abspath"), case("b", "import os\nname = os.path.", "basename")];
    let strict = Guarded { guard: &strict, ..guarded };
    let steps = strict.add_in_parts(&model, &mut patches, &pair, &models::Silent).unwrap();
    let sizes: Vec<usize> = steps.iter().map(|s| s.outcomes.len()).collect();
    assert_eq!(sizes, [2, 1, 1], "the whole pair, then its halves");
    assert!(steps.iter().all(|s| matches!(s.verdict, Verdict::Refused { .. })));
    assert_eq!(weights_sha256(&model).unwrap(), applied, "refused steps left changes behind");
    assert_eq!(patches.cases().count(), 2);

    // A guard whose budget for the whole set is spent: a case that would go in is refused, and says why.
    let spent = GuardConfig { max_top1_loss: 0.2, max_total_top1_loss: -1.0, ..Default::default() };
    let spent = Guarded { guard: &spent, ..guarded };
    let home = [case("home-dir", "import os\nhome_dir = os.path.", "expanduser")];
    let step = spent.add(&model, &mut patches, &home, &models::Silent).unwrap();
    let Verdict::Refused { reason } = &step.verdict else { panic!("a spent budget kept a step: {step:?}") };
    assert!(reason.contains("in all"), "{reason}");
    assert_eq!(weights_sha256(&model).unwrap(), applied, "the refused step left changes behind");
    patches.revert(&model).unwrap();

    // Lifelong steps (a batch per case) whose third case conflicts with the first: the run regroups (its two cases
    // solved again together from the unpatched model, then the third), which cannot hold the conflicting case
    // either, so the set is put back as the two steps left it, bit for bit.
    let unpatched = weights_sha256(&model).unwrap();
    let regrouping = GuardConfig { regroup_growth: 0.0, ..guard.clone() };
    let regrouping = Guarded { guard: &regrouping, ..guarded };
    let lifelong = |batches: &[&[RepairCase]]| {
        let mut set = PatchSet::new(ModelIdentity::of(&model).unwrap());
        let steps = regrouping.add_batches(&model, &mut set, batches, &models::Silent).unwrap();
        (set, steps, weights_sha256(&model).unwrap())
    };
    let second = [good];
    let (two, _, two_sha) = lifelong(&[&first, &second]);
    two.revert(&model).unwrap();
    let (three, steps, three_sha) = lifelong(&[&first, &second, &conflicting]);
    let kinds: Vec<(bool, bool)> = steps.iter().map(|s| (matches!(s.verdict, Verdict::Kept), s.regrouped)).collect();
    assert_eq!(kinds, [(true, false), (true, false), (false, false), (false, true)], "{steps:#?}");
    let Verdict::Refused { reason } = &steps[3].verdict else { unreachable!() };
    assert!(reason.contains("the set is as it was"), "{reason}");
    assert_eq!((steps[3].earlier, steps[3].earlier_kept), (2, 2), "{:?}", steps[3]);
    assert_eq!(three_sha, two_sha, "a failed regrouping did not restore the set bit for bit");
    assert_eq!(three.patches.len(), two.patches.len());
    three.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), unpatched);
}

/// A joint solve with earlier cases held (their rows reused while they are right by the margin, as lifelong repair
/// does): the margins it reports for every case, held ones included, are the model's after the solve, and the held
/// cases are still right.
#[test]
fn a_solve_that_reuses_held_cases_rows_reports_the_models_margins() {
    let model = default_model();
    let cases = experiments::repair_cases::MinedCases { api: 6, ..Default::default() }.mine(&model).unwrap();
    let tokens: Vec<Tokens> = cases.iter().map(|c| Tokens::new(&model, &c.example).unwrap()).collect();
    let (preserved, config) = (preserved(&model), JointConfig::default());
    let first =
        repair::repair_jointly(&model, &tokens[..4], 0, &preserved, Levers::Neurons, &config, &models::Silent).unwrap();
    let held = first.outcomes.iter().filter(|o| o.repaired()).count();
    assert!(held >= 3, "{:?}", first.outcomes);
    let margins = |t: &Tokens| repair::check(&model, t).unwrap().margins;
    let before: Vec<Vec<f32>> = tokens[..4].iter().map(margins).collect();
    let second =
        repair::repair_jointly(&model, &tokens, 4, &preserved, Levers::Neurons, &config, &models::Silent).unwrap();
    let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2e-3);
    for (i, (outcome, t)) in second.outcomes.iter().zip(&tokens).enumerate() {
        let (reported, now) = (&outcome.margins_after, margins(t));
        assert!(close(reported, &now), "case {i}: reported {reported:?}, the model's {now:?}");
    }
    for (i, outcome) in second.outcomes[..4].iter().enumerate() {
        assert!(close(&outcome.margins_before, &before[i]), "case {i}: {outcome:?} but {:?} before", before[i]);
        assert!(!first.outcomes[i].repaired() || outcome.repaired(), "held case {i} slipped: {outcome:?}");
    }
    assert!(second.outcomes[4..].iter().any(|o| o.repaired()), "{:?}", second.outcomes);
    second.repair.revert(&model).unwrap();
    first.repair.revert(&model).unwrap();
}

/// The guard's windows are reference code, but none of the text the preservation statistics were computed on (a
/// solve weighted by those statistics spares exactly that text, so a guard reading it would count too few changes).
#[test]
fn the_guard_reads_reference_code_the_statistics_did_not() {
    let model = default_model();
    let settings = ReferenceSettings::default();
    let statistics = experiments::ops::repair_set::reference_prompts(&model, &settings).unwrap();
    let guard = experiments::ops::repair_set::guard_windows(&model, &settings).unwrap();
    assert_eq!(statistics.len(), settings.windows);
    assert_eq!(guard.prompts().len(), settings.guard.prompts);
    for window in guard.prompts() {
        assert_eq!(window.len(), settings.guard.tokens);
        let read = statistics.iter().any(|s| s.windows(window.len()).any(|w| w == window.as_slice()));
        assert!(!read, "a guard window is text the statistics read: {:?}", model.tokenizer.decode(window, false));
    }
}

/// Fine-tuning a set (STAR's SGD baseline) on ten mined failures: only the chosen layers' down projections change,
/// the recorded margins are the model's, they rise, and the revert is bit-exact.
#[test]
fn fine_tuning_a_set_changes_only_its_layers_down_projections_and_reverts_bit_exactly() {
    let model = default_model();
    let cases = experiments::repair_cases::MinedCases { api: 10, ..Default::default() }.mine(&model).unwrap();
    let tokens: Vec<Tokens> = cases.iter().map(|c| Tokens::new(&model, &c.example).unwrap()).collect();
    let preserved = preserved(&model);
    let layers = repair::joint::set_layers(&model, &tokens, &preserved.stats, &JointConfig::default()).unwrap();
    assert_eq!(layers.len(), 8, "a quarter of 30 layers, rounded up: {layers:?}");
    let original = weights_sha256(&model).unwrap();
    let unrelated = unrelated(&model);
    let anchor = unrelated.anchor(4);
    let config = repair::GradientConfig { steps: 40, ..Default::default() };
    let set = repair::gradient::finetune_set(&model, &tokens, &layers, &config, &anchor).unwrap();
    let names: Vec<String> = set.repair.changes.iter().map(|c| c.target.to_string()).collect();
    let wanted: Vec<String> = layers.iter().map(|&l| model.mlp_output(l).0).collect();
    assert_eq!(names, wanted, "only the down projections of the chosen layers change");
    let shortest = |m: &[f32]| m.iter().copied().fold(f32::INFINITY, f32::min);
    let (before, after): (Vec<f32>, Vec<f32>) =
        set.outcomes.iter().map(|o| (shortest(&o.margins_before), shortest(&o.margins_after))).unzip();
    for (case, (b, a)) in tokens.iter().zip(before.iter().zip(&after)) {
        let now = repair::check(&model, case).unwrap().margins;
        assert!((shortest(&now) - a).abs() < 1e-4, "recorded margin {a} vs {now:?}");
        assert!(*b < 0.0, "every mined case starts wrong: {b}");
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&after) > mean(&before) + 1.0, "training raised the margins: {before:?} -> {after:?}");
    eprintln!(
        "fine-tune: {} of 10 right; {:.1} s",
        set.outcomes.iter().filter(|o| o.repaired()).count(),
        set.repair.seconds
    );
    set.repair.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original, "reverting the fine-tuning is not bit-exact");
}

/// The CI-sized sequential-repair study (`experiments/specs/repair-sequential-small.ron`): every method at every
/// size in the table and the plots, HumanEval on more problems only at the N asked; the joint and lifelong sets keep their cases right where MINT in a row
/// collapses; a rerun of the step takes every row from the journal; a stopped method goes on from its checkpoint.
#[test]
fn the_small_sequential_study_runs_and_resumes_from_its_journal() {
    // Holding the shared model keeps this test from running beside the others (two models on 2 cores crawl).
    let _turn = default_model();
    let spec = integration_tests::root().join("experiments/specs/repair-sequential-small.ron");
    let runs = tempfile::tempdir().unwrap();
    let run = experiments::runner::create_run(&spec, runs.path()).unwrap();
    experiments::runner::run(&run, &models::Silent).unwrap();
    let step = run.join("step-00-repair-sequence");
    let table = std::fs::read_to_string(step.join("table.md")).unwrap();
    for method in [
        "joint",
        "lifelong",
        "mint-in-a-row",
        "mint-published-in-a-row",
        "gated-in-a-row",
        "memit",
        "alphaedit",
        "fine-tune-kl",
    ] {
        for n in [1, 5, 10] {
            assert!(table.contains(&format!("| {method} | {n} |")), "{method} N={n} missing:\n{table}");
        }
    }
    for plot in ["repaired.png", "top1-kept.svg", "perplexity-ratio.png"] {
        assert!(step.join(plot).exists(), "{plot} missing");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(step.join("results.json")).unwrap()).unwrap();
    let row = |method: &str, n: u64| {
        results["rows"].as_array().unwrap().iter().find(|r| r["method"] == method && r["n"] == n).unwrap().clone()
    };
    assert!(results["baseline_full_humaneval"].is_f64(), "{}", results["baseline_full_humaneval"]);
    for method in ["Joint", "Memit", "GatedInARow"] {
        assert!(row(method, 5)["humaneval_full"].is_null() && row(method, 10)["humaneval_full"].is_f64(), "{method}");
    }
    for method in ["Joint", "Lifelong"] {
        let last = row(method, 10);
        assert!(last["repaired"].as_f64().unwrap() >= 0.7, "{method}: {last}");
        assert!(last["top1_unchanged"].as_f64().unwrap() >= 0.95, "{method}: {last}");
        assert!(last["repaired"].as_f64() > row("MintInARow", 10)["repaired"].as_f64(), "{method}: {last}");
    }

    // A rerun of the step without its units (a method each) finds every row in the journal: the same table, and
    // the journal is not extended.
    let lines = std::fs::read_to_string(step.join("rows.jsonl")).unwrap().lines().count();
    std::fs::remove_file(step.join("done.json")).unwrap();
    std::fs::remove_dir_all(step.join("units")).unwrap();
    experiments::runner::run(&run, &models::Silent).unwrap();
    assert_eq!(std::fs::read_to_string(step.join("rows.jsonl")).unwrap().lines().count(), lines);
    assert_eq!(std::fs::read_to_string(step.join("table.md")).unwrap(), table);

    // Lifelong repair stopped between N = 5 and 10 goes on from the patch set kept at N = 5 (not from the
    // unpatched model), and its N = 10 row equals the uninterrupted run's; only the latest checkpoint is kept, and
    // one that cannot be read is an error naming it.
    let checkpoint = |n: usize| step.join(format!("checkpoint-lifelong-{n}.patches.ron"));
    assert!(checkpoint(10).is_file() && !checkpoint(5).exists() && !checkpoint(1).exists());
    let journal = step.join("rows.jsonl");
    let drop_lifelong = |sizes: &[usize]| {
        let text = std::fs::read_to_string(&journal).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| {
                !sizes.iter().any(|n| l.contains("\"method\":\"Lifelong\"") && l.contains(&format!("\"n\":{n},")))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(kept.lines().count() + sizes.len(), text.lines().count(), "rows to drop not found");
        std::fs::write(&journal, kept).unwrap();
    };
    // As if the study had stopped before lifelong N = 5: neither those rows, nor the N = 10 checkpoint, nor the
    // lifelong unit exist.
    drop_lifelong(&[5, 10]);
    let lifelong_unit = std::fs::read_dir(step.join("units"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|unit| std::fs::read_to_string(unit).unwrap().contains("\"Lifelong\""))
        .unwrap();
    std::fs::remove_file(lifelong_unit).unwrap();
    std::fs::remove_file(PatchSet::tensors_path(&checkpoint(10))).unwrap();
    std::fs::remove_file(checkpoint(10)).unwrap();
    std::fs::remove_file(step.join("done.json")).unwrap();
    let stopped = experiments::runner::run(&run, &StopAt { journal: journal.clone(), row: "\"n\":5," });
    assert!(stopped.is_err(), "the run was to stop before lifelong N = 10");
    assert!(checkpoint(5).is_file() && !checkpoint(10).exists());

    let good = std::fs::read(checkpoint(5)).unwrap();
    std::fs::write(checkpoint(5), "(format: 1, tensors").unwrap();
    let error = experiments::runner::run(&run, &models::Silent).unwrap_err().to_string();
    assert!(error.contains("checkpoint-lifelong-5.patches.ron"), "{error}");
    std::fs::write(checkpoint(5), good).unwrap();

    experiments::runner::run(&run, &models::Silent).unwrap();
    let resumed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(step.join("results.json")).unwrap()).unwrap();
    let again = resumed["rows"].as_array().unwrap().iter().find(|r| r["method"] == "Lifelong" && r["n"] == 10);
    let (first, again) = (row("Lifelong", 10), again.unwrap().clone());
    for field in ["repaired", "generalization", "top1_unchanged", "mean_kl", "perplexity_ratio", "humaneval_full"] {
        match (first[field].as_f64(), again[field].as_f64()) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-9, "{field}: {a} uninterrupted, {b} resumed"),
            _ => assert_eq!(first[field], again[field], "{field}"),
        }
    }
    assert_eq!((&first["neurons_changed"], &first["refused"]), (&again["neurons_changed"], &again["refused"]));
    assert!(checkpoint(10).is_file() && !checkpoint(5).exists());
}

/// Progress that asks to stop once the journal holds a lifelong row of the given size.
struct StopAt {
    journal: std::path::PathBuf,
    row: &'static str,
}

impl models::Progress for StopAt {
    fn begin(&self, _stage: &str, _total: u64) {}
    fn advance(&self, _steps: u64) {}
    fn is_cancelled(&self) -> bool {
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        text.lines().any(|l| l.contains("\"method\":\"Lifelong\"") && l.contains(self.row))
    }
}

/// A joint solve through a "transcoder" whose features are one layer's neurons (readouts set to the identity, so
/// a feature's key is its neuron's activation and its decoder row the neuron's output vector) chooses the same
/// units and makes the same change as the joint solve over neurons confined to that layer; with the fitted
/// readouts it repairs the same cases. Either way the set is one change of the down projection, reverted bit for
/// bit.
#[test]
fn a_joint_solve_through_neurons_as_features_is_the_neuron_solve_of_their_layer() {
    let model = default_model();
    let cases = experiments::repair_cases::MinedCases { api: 4, ..Default::default() }.mine(&model).unwrap();
    let tokens: Vec<Tokens> = cases.iter().map(|c| Tokens::new(&model, &c.example).unwrap()).collect();
    let settings = ReferenceSettings { windows: 16, tokens: 96, covariance: true, ..Default::default() };
    let preserved = preservation(&model, &settings, &models::Silent).unwrap().0;
    let config = JointConfig { layer_share: 1.0 / model.shape().n_layers as f64, ..Default::default() };
    let layer = repair::joint::set_layers(&model, &tokens, &preserved.stats, &config).unwrap()[0];
    let original = weights_sha256(&model).unwrap();
    let (name, down) = model.mlp_output(layer);
    let down_before = down.to_kind(models::tch::Kind::Float).copy();
    let solve = |levers: Levers<'_>| {
        repair::repair_jointly(&model, &tokens, 0, &preserved, levers, &config, &models::Silent).unwrap()
    };

    let neurons = solve(Levers::Neurons);
    assert!(neurons.repair.changes.iter().all(|c| c.target.neuron().is_some_and(|n| n.layer == layer)));
    let neuron_change = model.mlp_output(layer).1.to_kind(models::tch::Kind::Float) - &down_before;
    neurons.repair.revert(&model).unwrap();

    let reference: Vec<Vec<u32>> = integration_tests::stdlib_files(8)
        .iter()
        .map(|p| model.encode_prefix(&std::fs::read_to_string(p).unwrap(), 128).unwrap())
        .collect();
    let transcoder = Box::new(integration_tests::NeuronsAsFeatures::of(&model, layer));
    let mut basis = repair::FeatureBasis::fit(&model, transcoder, &reference, &models::Silent).unwrap();
    let fitted = std::mem::replace(
        &mut basis.readouts,
        models::tch::Tensor::eye(model.shape().d_mlp as i64, (models::tch::Kind::Float, models::tch::Device::Cpu)),
    );
    let features = solve(Levers::Features(&basis));
    assert_eq!(features.repair.method, repair::Method::JointFeatures);
    assert_eq!(features.repair.changes.len(), 1, "one change of the down projection");
    assert_eq!(features.repair.changes[0].target, repair::ChangeTarget::Parameter(name.clone()));
    let feature_change = model.mlp_output(layer).1.to_kind(models::tch::Kind::Float) - &down_before;
    let error = relative_error(&feature_change, &neuron_change);
    assert!(error < 1e-3, "the changes differ by {error} (relative)");
    assert_eq!(features.rounds, neurons.rounds);
    for (f, n) in features.outcomes.iter().zip(&neurons.outcomes) {
        assert_eq!(f.repaired(), n.repaired());
        for (a, b) in f.margins_after.iter().zip(&n.margins_after) {
            assert!(
                (a - b).abs() < 1e-2,
                "margins after: features {:?}, neurons {:?}",
                f.margins_after,
                n.margins_after
            );
        }
    }
    features.repair.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original, "the feature set does not revert bit-exactly");

    basis.readouts = fitted;
    let fitted = solve(Levers::Features(&basis));
    let repaired = |set: &repair::SetRepair| set.outcomes.iter().filter(|o| o.repaired()).count();
    assert!(repaired(&neurons) >= 2, "the neuron solve repaired {} of 4", repaired(&neurons));
    assert_eq!(repaired(&fitted), repaired(&neurons), "fitted readouts: {:?}", fitted.outcomes);
    fitted.repair.revert(&model).unwrap();
    assert_eq!(weights_sha256(&model).unwrap(), original);
}
