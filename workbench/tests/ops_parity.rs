//! One operation, three front-ends: each operation run through the command line and through a one-step spec
//! with the same settings writes the same results.json (timings aside), so the CLI and the spec runner share
//! their numbers as well as their code; a spec run in shards (units journalled, then merged) writes what the
//! same spec run at once writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod results;
use results::results;

const MODEL: &str = "smollm2-135m-instruct";

/// One workbench process at a time: two libtorch processes on these two cores spin against each other and take
/// many times as long as one after the other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn workbench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_workbench")).args(args).output().expect("workbench runs")
}

fn succeed(output: std::process::Output) {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Runs `args` with `--out DIR` and returns DIR.
fn through_cli(dir: &Path, args: &[&str]) -> PathBuf {
    let out = dir.join("cli");
    let out_text = out.to_str().unwrap().to_string();
    succeed(workbench(&[args, &["--device", "cpu", "--out", &out_text]].concat()));
    out
}

/// Runs a spec whose only step is `step` and returns that step's folder.
fn through_spec(dir: &Path, step: &str) -> PathBuf {
    let spec = dir.join("one.ron");
    std::fs::write(&spec, format!("(name: \"one\", model: \"{MODEL}\", device: \"cpu\", seed: 0, steps: [{step}])"))
        .unwrap();
    let runs = dir.join("runs");
    succeed(workbench(&["run", spec.to_str().unwrap(), "--runs", runs.to_str().unwrap()]));
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let step_dir = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_dir()).unwrap();
    assert!(step_dir.join("done.json").exists(), "{}", step_dir.display());
    step_dir
}

/// Runs the operation both ways and compares the results.
fn same_results(cli_args: &[&str], step: &str) -> Value {
    let _turn = one_at_a_time();
    let (cli_dir, spec_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from_cli = results(&through_cli(cli_dir.path(), cli_args));
    let from_spec = results(&through_spec(spec_dir.path(), step));
    assert_eq!(from_cli, from_spec, "CLI {cli_args:?} and spec step {step} disagree");
    from_cli
}

#[test]
fn probe() {
    let r = same_results(
        &["probe", "--task", "syntax", "--layers", "1,3", "--files", "6", "--max-tokens", "64", "--seeds", "2"],
        "Probe(task: Syntax, layers: [1, 3], files: 6, max_tokens: 64, seeds: 2)",
    );
    assert_eq!(r["trained"].as_array().unwrap().len(), 2);
    // Both layers in one unit (the spec step journals it and merges): the study of the run above, number for number.
    let one_unit = same_results(
        &["probe", "--task", "syntax", "--layers", "1,3", "--files", "6", "--max-tokens", "64", "--seeds", "2"],
        "Probe(task: Syntax, layers: [1, 3], files: 6, max_tokens: 64, seeds: 2, layers_per_unit: 2)",
    );
    assert_eq!(r, one_unit);
}

#[test]
fn probe_program_state_and_api_cloze() {
    let r = same_results(
        &["probe", "--task", "program-state", "--layers", "4", "--files", "12", "--seeds", "1"],
        "Probe(task: ProgramState, layers: [4], files: 12, max_tokens: 256, seeds: 1)",
    );
    assert_eq!(r["current"].as_array().unwrap().len(), 1);
    let r = same_results(
        &["probe", "--task", "api-cloze", "--files", "2"],
        "Probe(task: ApiCloze, files: 2, max_tokens: 256, seeds: 3)",
    );
    assert!(r["report"]["cases"].as_u64().unwrap() > 0);
}

#[test]
fn lens() {
    let r = same_results(&["lens", "--files", "2", "--max-tokens", "32"], "Lens(files: 2, max_tokens: 32)");
    assert!(r["positions"].as_u64().unwrap() > 0);
}

#[test]
fn perplexity_and_lines() {
    let r = same_results(&["eval", "perplexity", "--files", "1", "--tokens", "64"], "Perplexity(files: 1, tokens: 64)");
    assert!(r["perplexity"].as_f64().unwrap() > 1.0);
    let r = same_results(
        &["eval", "lines", "--files", "1", "--tokens", "64", "--lines", "2"],
        "Lines(files: 1, context: 64, lines: 2)",
    );
    assert_eq!(r["cases"].as_array().unwrap().len(), 2);
}

#[test]
fn interpret() {
    let r = same_results(
        &[
            "interpret",
            "suite",
            "--numeric",
            "6",
            "--strings",
            "4",
            "--interpreter",
            "random",
            "--interpreter",
            "scientist",
            "--rounds",
            "3",
        ],
        "Interpret(numeric: 6, strings: 4, interpreters: [Random, Scientist], rounds: 3)",
    );
    assert_eq!(r.as_array().unwrap().len(), 2);
    let by_four = same_results(
        &["interpret", "suite", "--numeric", "6", "--strings", "4", "--rounds", "3", "--functions-per-unit", "4"],
        "Interpret(numeric: 6, strings: 4, interpreters: [Scientist, Random], rounds: 3, functions_per_unit: 4)",
    );
    assert_eq!(by_four[0]["outcomes"].as_array().unwrap().len(), 10, "{}", by_four[0]);
}

#[test]
fn neuron_pages() {
    let r = same_results(
        &["interpret", "pages", "--layer", "3", "--neurons", "7,100", "--files", "2", "--held-out", "1"],
        "Pages(layer: 3, neurons: [7, 100], files: 2, held_out: 1)",
    );
    let pages = r.as_array().unwrap();
    assert_eq!((pages.len(), &pages[1]["index"]), (2, &Value::from(100)));
    assert!(pages.iter().all(|p| p["top"].as_array().unwrap().len() == 10 && p["held_out_tokens"].as_u64() > Some(0)));
}

#[test]
fn humaneval() {
    let r = same_results(
        &["eval", "humaneval", "--protocol", "completion", "--limit", "2", "--max-tokens", "48"],
        "HumanEval(protocol: Completion, limit: 2, max_tokens: 48)",
    );
    assert_eq!(r["report"]["problems"], 2);
}

const PROMPT: &str = "import os\nimport sys\n\ndef main():\n    path = os.path.";

/// The case of [`PROMPT`] (→ `expanduser`) repaired as a joint set on a small reference, through the command line
/// with `cli_extra` arguments and through a spec step with `step_extra` fields: the results, which must agree.
fn joint_set_of_the_prompt(cli_extra: &[&str], step_extra: &str) -> Value {
    let reference = tempfile::tempdir().unwrap();
    let settings = reference.path().join("small.ron");
    std::fs::write(&settings, "(windows: 16, tokens: 96)").unwrap();
    let settings = settings.to_str().unwrap();
    let cli =
        [&["repair", "--prompt", PROMPT, "--desired", "expanduser", "--joint", "--reference", settings], cli_extra];
    let step = format!(
        "RepairSet(cases: [(family: \"user\", id: \"command-line\", example: (prompt: {PROMPT:?}, desired: \"expanduser\"), variants: [])], {step_extra}reference: (windows: 16, tokens: 96))"
    );
    same_results(&cli.concat(), &step)
}

#[test]
fn repair_set() {
    let r = joint_set_of_the_prompt(&[], "");
    assert_eq!(r["cases"][0]["repaired"], true, "{r}");
}

#[test]
fn repair_then_export() {
    let _turn = one_at_a_time();
    let (cli_dir, spec_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cli = through_cli(cli_dir.path(), &["repair", "--prompt", PROMPT, "--desired", "expanduser"]);
    let case = format!(
        "RepairCases(cases: [(family: \"user\", id: \"command-line\", example: (prompt: {PROMPT:?}, desired: \"expanduser\"), variants: [])])"
    );
    let spec = through_spec(spec_dir.path(), &case);
    assert_eq!(results(&cli), results(&spec));
    assert_eq!(results(&cli)[0]["metrics"]["effective"], true);

    // The export of that patch set: the same GGUF bytes both ways.
    let patches = cli.join("patches.ron");
    let gguf = cli_dir.path().join("model.gguf");
    succeed(workbench(&[
        "export",
        "--device",
        "cpu",
        "--patches",
        patches.to_str().unwrap(),
        "--gguf",
        gguf.to_str().unwrap(),
        "--gguf-type",
        "f16",
    ]));
    let export_dir = tempfile::tempdir().unwrap();
    let step = format!("Export(hf: false, gguf: \"f16\", patches: {:?})", patches.to_str().unwrap());
    let exported = through_spec(export_dir.path(), &step);
    assert!(std::fs::read(&gguf).unwrap() == std::fs::read(exported.join("model.gguf")).unwrap());
}

#[test]
fn repair_study() {
    let settings = "(api: 1, lines: 0, humaneval: 0, methods: [Mint, RankOne], unrelated_prompts: 4, unrelated_tokens: 24, unrelated_positions: 4, benchmarks: (perplexity_files: 1, perplexity_tokens: 64, line_files: 1, lines_per_file: 1, sequential_humaneval_problems: 0))";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.ron");
    std::fs::write(&file, settings).unwrap();
    let r =
        same_results(&["repair", "--study", "--study-settings", file.to_str().unwrap()], &format!("Repair{settings}"));
    assert_eq!(r["rows"].as_array().unwrap().len(), 2);
    assert!(r["sequential"]["repairs"].as_u64().is_some(), "{}", r["sequential"]);

    // The command line resumes from its folder's units, and refuses a folder of a study with other settings.
    let _turn = one_at_a_time();
    let out = through_cli(dir.path(), &["repair", "--study", "--study-settings", file.to_str().unwrap()]);
    let unit = out.join("units/unit-00000.json");
    let written = std::fs::metadata(&unit).unwrap().modified().unwrap();
    through_cli(dir.path(), &["repair", "--study", "--study-settings", file.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(&unit).unwrap().modified().unwrap(), written, "the case was repaired again");
    std::fs::write(&file, settings.replace("methods: [Mint, RankOne]", "methods: [Mint]")).unwrap();
    let other = workbench(&[
        "repair",
        "--study",
        "--study-settings",
        file.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    let message = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && message.contains("other settings"), "{message}");
}

/// The dictionary operations: a small transcoder trained through `features train` and through a `TrainDictionary`
/// step (same weights: seeded), then measured, paged and steered both ways on the CLI's dictionary.
#[test]
fn dictionaries() {
    let words = |line: &'static str| line.split(' ').collect::<Vec<_>>();
    let r = same_results(
        &words(
            "features train --transcoder 3 --skip --features 64 --k 8 --steps 20 --batch-size 256 --files 4 \
             --max-tokens 128 --eval-files 2 --eval-tokens 64",
        ),
        "TrainDictionary(reads: \"blocks.3.mlp.hook_in\", writes: Some(\"blocks.3.hook_mlp_out\"), files: 4, max_tokens: 128, \
        training: (sparsity: BatchTopK, k: 8, features: 64, skip: true, batch_size: 256, learning_rate: 5e-4, steps: 20, seed: 0), \
        held_out: (files: 2, max_tokens: 64))",
    );
    assert_eq!(r["training"]["curve"].as_array().map(Vec::len), Some(20), "{}", r["training"]);

    let trained = tempfile::tempdir().unwrap();
    let dictionary = {
        let _turn = one_at_a_time();
        let small = words(
            "features train --transcoder 3 --features 32 --k 4 --steps 10 --batch-size 128 --files 2 --max-tokens 128 \
             --eval-files 1 --eval-tokens 32",
        );
        through_cli(trained.path(), &small).join("dictionary")
    };
    let path = dictionary.to_str().unwrap();
    let r = same_results(
        &["features", "eval", path, "--eval-files", "2", "--eval-tokens", "48"],
        &format!("EvalDictionary(dictionary: {path:?}, held_out: (files: 2, max_tokens: 48))"),
    );
    assert_eq!(r["metrics"]["tokens"], 2 * 47, "{r}");
    let r = same_results(
        &[
            "features",
            "pages",
            path,
            "--chosen",
            "1,5",
            "--neurons",
            "2",
            "--files",
            "2",
            "--held-out",
            "1",
            "--max-tokens",
            "48",
        ],
        &format!(
            "FeaturePages(dictionary: {path:?}, chosen: [1, 5], neurons: 2, files: 2, held_out: 1, max_tokens: 48)"
        ),
    );
    assert_eq!(r["pages"].as_array().map(Vec::len), Some(4), "two features, then two neurons: {r}");
    let r = same_results(
        &["features", "steer", path, "--features", "0,3", "--prompts", "2", "--tokens", "16"],
        &format!("SteerFeatures(dictionary: {path:?}, features: [0, 3], prompts: 2, tokens: 16)"),
    );
    assert_eq!(r["features"].as_array().map(Vec::len), Some(2), "{r}");

    // A repair set solved through the dictionary's features (`--transcoder`, `features: (transcoder: ...)`).
    let r = joint_set_of_the_prompt(&["--transcoder", path], &format!("features: (transcoder: {path:?}), "));
    assert_eq!(r["method"], "JointFeatures", "{r}");
    assert_eq!(r["cases"].as_array().map(Vec::len), Some(1), "{r}");
}

/// A file of cases is repaired as one joint set by default; `--one-by-one` repairs each alone on top of the
/// earlier ones and reports what all of them did together.
#[test]
fn a_file_of_cases_is_a_set_unless_one_by_one() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.jsonl");
    let line = |prompt: &str| serde_json::json!({"prompt": prompt, "desired": "expanduser"}).to_string();
    std::fs::write(&cases, format!("{}\n{}\n", line(PROMPT), line("import os\nhome = os.path."))).unwrap();
    let reference = dir.path().join("reference.ron");
    std::fs::write(&reference, "(windows: 16, tokens: 96)").unwrap();
    let (cases, reference) = (cases.to_str().unwrap(), reference.to_str().unwrap());
    let set = through_cli(&dir.path().join("set"), &["repair", "--cases", cases, "--reference", reference]);
    let r = results(&set);
    assert_eq!(r["mode"], "Joint", "{r}");
    assert_eq!(r["cases"].as_array().unwrap().len(), 2);
    let alone = through_cli(&dir.path().join("alone"), &["repair", "--cases", cases, "--one-by-one"]);
    let together: Value = serde_json::from_str(&std::fs::read_to_string(alone.join("together.json")).unwrap()).unwrap();
    assert!(together["applied"].as_u64().unwrap() <= 2 && together["still_right"].is_u64(), "{together}");
}

/// A spec run as shards (`--step S --shard K/N`, in any order, then `--merge`) writes the same results as the same
/// spec run at once: steps with units (HumanEval batches, held-out files) journal each unit, a rerun shard skips
/// what is done, a merge before every unit is done names the missing ones, a step waits for the steps before it,
/// a step without units runs whole in shard 0, the FIND suite splits by interpreter and group of functions, a probe
/// by groups of layers, the repair study by case, neuron pages by groups of neurons and the sequential study by method.
#[test]
fn a_run_in_shards_equals_the_run_at_once() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let steps = "Perplexity(files: 3, tokens: 48), \
        HumanEval(protocol: Completion, limit: 5, max_tokens: 32, batch: 2), \
        Lens(files: 1, max_tokens: 24), \
        Interpret(numeric: 6, strings: 4, interpreters: [Random, Scientist], rounds: 3, functions_per_unit: 4), \
        Probe(task: Syntax, layers: [1, 3, 5], files: 6, max_tokens: 64, seeds: 1, layers_per_unit: 2), \
        Repair(api: 2, lines: 0, humaneval: 0, methods: [Mint, RandomNeurons], unrelated_prompts: 4, unrelated_tokens: 24, \
        unrelated_positions: 4, benchmarks: (perplexity_files: 1, perplexity_tokens: 64, line_files: 1, lines_per_file: 1, \
        sequential_humaneval_problems: 0)), \
        Pages(layer: 3, neurons: [7, 100, 300], files: 2, held_out: 1, max_tokens: 48, neurons_per_unit: 2), \
        RepairSequence(mined: (api: 2), sizes: [1, 2], methods: [Memit, Joint], reference: (windows: 16, tokens: 96), \
        unrelated: (prompts: 4, tokens: 24, positions: 4), benchmarks: (perplexity_files: 1, perplexity_tokens: 64, \
        line_files: 1, lines_per_file: 1, humaneval_problems: 0, sequential_humaneval_problems: 0))";
    let spec = dir.path().join("sharded.ron");
    std::fs::write(&spec, format!("(name: \"sharded\", model: \"{MODEL}\", device: \"cpu\", steps: [{steps}])"))
        .unwrap();
    let runs = dir.path().join("runs");
    succeed(workbench(&["run", spec.to_str().unwrap(), "--runs", runs.to_str().unwrap()]));
    let at_once = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();

    let sharded = dir.path().join("sharded");
    std::fs::create_dir(&sharded).unwrap();
    std::fs::copy(&spec, sharded.join("spec.ron")).unwrap();
    let run = sharded.to_str().unwrap();
    let part = |step: &str, what: &[&str]| workbench(&[&["run", "--resume", run, "--step", step], what].concat());

    let early = part("1", &["--shard", "0/2"]);
    assert!(!early.status.success(), "step 1 ran before step 0 was done");
    assert!(String::from_utf8_lossy(&early.stderr).contains("step 0"), "{}", String::from_utf8_lossy(&early.stderr));
    for (step, kind) in [("0", "perplexity"), ("1", "humaneval")] {
        succeed(part(step, &["--shard", "1/2"]));
        let merge = part(step, &["--merge"]);
        assert!(!merge.status.success(), "step {step} merged with a shard missing");
        let message = String::from_utf8_lossy(&merge.stderr);
        assert!(message.contains("not done") && message.contains("units 0, 2"), "{message}");
        succeed(part(step, &["--shard", "0/2"]));
        let units = sharded.join(format!("step-0{step}-{kind}/units"));
        let written = std::fs::metadata(units.join("unit-00000.json")).unwrap().modified().unwrap();
        succeed(part(step, &["--shard", "0/2"]));
        let again = std::fs::metadata(units.join("unit-00000.json")).unwrap().modified().unwrap();
        assert_eq!(written, again, "a rerun shard ran a unit that was done");
        succeed(part(step, &["--merge"]));
    }
    assert_eq!(std::fs::read_dir(sharded.join("step-01-humaneval/units")).unwrap().count(), 3, "5 problems, 2 a batch");
    succeed(part("2", &["--shard", "1/2"]));
    assert!(!sharded.join("step-02-lens/done.json").exists(), "shard 1 ran a step without units");
    succeed(part("2", &["--shard", "0/2"]));
    succeed(part("2", &["--merge"]));
    // Three groups of functions per interpreter, the second shard's first; the suite generated once, beside them.
    succeed(part("3", &["--shard", "1/2"]));
    succeed(part("3", &["--shard", "0/2"]));
    succeed(part("3", &["--merge"]));
    let interpret_units = sharded.join("step-03-interpret/units");
    let unit_files = |folder: &Path| {
        let names = std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
        names.filter(|name| name.starts_with("unit-")).count()
    };
    assert_eq!(unit_files(&interpret_units), 6);
    assert!(interpret_units.join("suite.json").exists());
    // Layers 1 and 3 in one unit, layer 5 in the other.
    succeed(part("4", &["--shard", "1/2"]));
    succeed(part("4", &["--shard", "0/2"]));
    succeed(part("4", &["--merge"]));
    assert_eq!(std::fs::read_dir(sharded.join("step-04-probe/units")).unwrap().count(), 2);
    // The repair study: a case each, the second first (its shard mines the cases and measures the baseline).
    succeed(part("5", &["--shard", "1/2"]));
    assert!(
        sharded.join("step-05-repair/cases.json").exists() && sharded.join("step-05-repair/baseline.json").exists()
    );
    succeed(part("5", &["--shard", "0/2"]));
    succeed(part("5", &["--merge"]));
    // Neurons 7 and 100 in one unit, 300 in the other.
    succeed(part("6", &["--shard", "1/2"]));
    succeed(part("6", &["--shard", "0/2"]));
    succeed(part("6", &["--merge"]));
    assert_eq!(std::fs::read_dir(sharded.join("step-06-pages/units")).unwrap().count(), 2);
    // The sequential study: a method each, the second first; both journal into one rows.jsonl.
    succeed(part("7", &["--shard", "1/2"]));
    succeed(part("7", &["--shard", "0/2"]));
    succeed(part("7", &["--merge"]));
    let journal = std::fs::read_to_string(sharded.join("step-07-repair-sequence/rows.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 5, "the settings and 2 methods x 2 sizes: {journal}");

    let steps = ["step-00-perplexity", "step-01-humaneval", "step-02-lens", "step-03-interpret", "step-04-probe"];
    let steps = [&steps[..], &["step-05-repair", "step-06-pages", "step-07-repair-sequence"]].concat();
    for step in steps {
        assert_eq!(results(&at_once.join(step)), results(&sharded.join(step)), "{step} differs when sharded");
    }
    // The repair study's summary table ends each row with a median time: its results.json is compared above.
    let summaries = |run: &Path| {
        let mut steps = results(run)["steps"].clone();
        steps[5]["lines"] = Value::Null;
        steps
    };
    assert_eq!(summaries(&at_once), summaries(&sharded), "the runs' results differ");
    let samples = |run: &Path| std::fs::read_to_string(run.join("step-01-humaneval/samples.jsonl")).unwrap();
    assert_eq!(samples(&at_once), samples(&sharded));
}
