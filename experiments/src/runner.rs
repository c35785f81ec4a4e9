//! The experiment runner: a spec becomes `runs/<timestamp>-<name>/` with the spec, one folder per step
//! (results.json, CSV tables, PNG and SVG plots), a top-level `results.json` and a `report.md` that shows them.
//! A step is done when its `done.json` exists (written last), so an interrupted run resumes where it stopped.

use std::path::{Path, PathBuf};

use models::{parse_device, parse_kind, HookPoint, LoadOptions, Model, Progress};
use probes::plots::{Curve, LayerPlot};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::spec::{InterpreterKind, ProbeTask, Spec, Step};

/// What one finished step reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSummary {
    /// Position in the spec.
    pub index: usize,
    /// Its kind.
    pub kind: String,
    /// Headline numbers, one line each.
    pub lines: Vec<String>,
    /// Files it wrote, relative to the run folder (plots first).
    pub files: Vec<String>,
    /// Seconds it took.
    pub seconds: f64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExperimentError + '_ {
    move |e| ExperimentError::Data(format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    models::files::write_atomically(path, bytes)?;
    Ok(())
}

fn json(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| ExperimentError::Data(e.to_string()))
}

/// Creates the run folder for `spec_path` under `runs` and copies the spec there.
pub fn create_run(spec_path: &Path, runs: &Path) -> Result<PathBuf> {
    let spec = Spec::load(spec_path)?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let dir = runs.join(format!("{stamp}-{}", spec.name));
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let text = std::fs::read(spec_path).map_err(io(spec_path))?;
    write(&dir.join("spec.ron"), &text)?;
    Ok(dir)
}

/// Runs (or resumes) the run in `dir`: every step without a `done.json`, then the report.
pub fn run(dir: &Path, progress: &dyn Progress) -> Result<Vec<StepSummary>> {
    let spec = Spec::load(&dir.join("spec.ron"))?;
    let options = LoadOptions { device: parse_device(&spec.device)?, kind: parse_kind(&spec.dtype)? };
    let mut model: Option<Model> = None;
    let mut summaries = Vec::with_capacity(spec.steps.len());
    for (index, step) in spec.steps.iter().enumerate() {
        let folder = format!("step-{index:02}-{}", step.kind());
        let step_dir = dir.join(&folder);
        let done = step_dir.join("done.json");
        if let Ok(text) = std::fs::read_to_string(&done) {
            if let Ok(summary) = serde_json::from_str::<StepSummary>(&text) {
                summaries.push(summary);
                continue;
            }
        }
        std::fs::create_dir_all(&step_dir).map_err(io(&step_dir))?;
        if model.is_none() {
            model = Some(Model::load_with_progress(&spec.model, options, progress)?);
        }
        let model = model.as_ref().ok_or_else(|| ExperimentError::Data("the model did not load".into()))?;
        let started = std::time::Instant::now();
        let (lines, files) = run_step(model, &spec, step, &step_dir, progress)?;
        let summary = StepSummary {
            index,
            kind: step.kind().into(),
            lines,
            files: files.into_iter().map(|f| format!("{folder}/{f}")).collect(),
            seconds: started.elapsed().as_secs_f64(),
        };
        write(&done, &json(&summary)?)?;
        summaries.push(summary);
    }
    write(&dir.join("results.json"), &json(&serde_json::json!({"spec": spec, "steps": summaries}))?)?;
    write(&dir.join("report.md"), report(&spec, &summaries).as_bytes())?;
    Ok(summaries)
}

/// The report: the spec, then each step's headline numbers, plots and tables.
fn report(spec: &Spec, steps: &[StepSummary]) -> String {
    let spec_text = ron::ser::to_string_pretty(spec, ron::ser::PrettyConfig::default()).unwrap_or_default();
    let mut out = format!(
        "# Experiment `{}`\n\nModel `{}` on {} ({}), seed {}.\n\n```ron\n{spec_text}\n```\n",
        spec.name, spec.model, spec.device, spec.dtype, spec.seed
    );
    for s in steps {
        out.push_str(&format!("\n## Step {}: {} ({:.1} s)\n\n", s.index, s.kind, s.seconds));
        for line in &s.lines {
            out.push_str(&format!("- {line}\n"));
        }
        for file in &s.files {
            if file.ends_with(".png") {
                out.push_str(&format!("\n![{file}]({file})\n"));
            } else {
                out.push_str(&format!("- [{file}]({file})\n"));
            }
        }
    }
    out
}

/// A per-layer curve without an interval.
fn plain_curve(name: &str, values: &[f64]) -> Curve {
    Curve { name: name.into(), points: values.iter().enumerate().map(|(l, &v)| (l as f64, v, v, v)).collect() }
}

type StepFiles = (Vec<String>, Vec<String>);

fn run_step(model: &Model, spec: &Spec, step: &Step, dir: &Path, progress: &dyn Progress) -> Result<StepFiles> {
    Ok(match step {
        Step::Probe { task, layers, files, max_tokens, seeds, random_init } => {
            let documents = probes::corpus::stdlib_documents(*files)?;
            let labeller: Box<dyn probes::dataset::TokenLabeller> = match task {
                ProbeTask::BracketDepth => Box::new(probes::dataset::BracketDepth { max: 3 }),
                ProbeTask::IndentLevel => Box::new(probes::dataset::IndentLevel { max: 3 }),
                ProbeTask::Syntax => Box::new(probes::tasks::syntax::SyntaxKind),
            };
            let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::ResidPost(l)).collect();
            let sweep = probes::protocol::SweepConfig {
                seeds: (spec.seed..spec.seed + *seeds as u64).collect(),
                ..Default::default()
            };
            let study = probes::study::StudySpec {
                documents: &documents,
                labeller: labeller.as_ref(),
                points: &points,
                max_tokens: *max_tokens,
                sweep,
                random_init_seed: random_init.then_some(spec.seed),
                save_dataset: None,
            };
            let report = probes::study::run_study(model, &study, progress)?;
            report.write(dir)?;
            let best = report.trained.iter().max_by(|a, b| a.accuracy.mean.total_cmp(&b.accuracy.mean));
            let mut lines =
                vec![format!("{}: {} labelled tokens from {} files", report.task, report.tokens, report.documents)];
            if let Some(b) = best {
                lines.push(format!(
                    "best {}: accuracy {:.3} [{:.3}, {:.3}], selectivity {:.3}, majority {:.3}",
                    b.point, b.accuracy.mean, b.accuracy.low, b.accuracy.high, b.selectivity.mean, b.majority
                ));
            }
            let files =
                ["accuracy.png", "selectivity.png", "accuracy.svg", "selectivity.svg", "results.csv", "results.json"];
            (lines, files.iter().map(|f| f.to_string()).collect())
        }
        Step::Lens { files, max_tokens } => {
            let documents = probes::corpus::stdlib_documents(*files)?;
            let curve = probes::lens_over_corpus(model, &documents, *max_tokens, progress)?;
            write(&dir.join("results.json"), &json(&curve)?)?;
            let csv: String = std::iter::once("layer,agrees_with_final,correct\n".to_string())
                .chain(
                    curve
                        .agrees_with_final
                        .iter()
                        .zip(&curve.correct)
                        .enumerate()
                        .map(|(l, (a, c))| format!("{l},{a:.4},{c:.4}\n")),
                )
                .collect();
            write(&dir.join("results.csv"), csv.as_bytes())?;
            let plot = LayerPlot {
                title: "logit lens: how often each layer's read-out is already right".into(),
                y_label: "fraction of positions".into(),
                curves: vec![
                    plain_curve("= final top-1", &curve.agrees_with_final),
                    plain_curve("= next token", &curve.correct),
                ],
            };
            plot.write(&dir.join("lens"))?;
            let lines = vec![format!(
                "{} positions; layer 0 = final top-1 at {:.3}, = next token at {:.3}; the output is right at {:.3}",
                curve.positions,
                curve.agrees_with_final.first().unwrap_or(&0.0),
                curve.correct.first().unwrap_or(&0.0),
                curve.final_correct
            )];
            (lines, ["lens.png", "lens.svg", "results.csv", "results.json"].iter().map(|f| f.to_string()).collect())
        }
        Step::Interpret { numeric, strings, interpreters } => {
            use probes::find::{evaluate, scientist, session, suite};
            let suite = suite::Suite::generate(spec.seed, *numeric, *strings)?;
            suite.save(&dir.join("suite.json"))?;
            let (mut lines, mut csv, mut tables) = (
                Vec::new(),
                String::from("interpreter,category,functions,mean_score,mean_interval_overlap\n"),
                Vec::new(),
            );
            for kind in interpreters {
                let mut interpreter: Box<dyn session::Interpreter> = match kind {
                    InterpreterKind::Scientist => Box::new(scientist::Scientist::new(spec.seed)),
                    InterpreterKind::Random => Box::new(evaluate::RandomGuess::new(spec.seed)),
                };
                let e =
                    evaluate::evaluate(&suite, interpreter.as_mut(), session::Budget::default(), |_| true, progress)?;
                for row in &e.table {
                    let overlap = row.mean_interval_overlap.map_or(String::new(), |o| format!("{o:.3}"));
                    csv.push_str(&format!(
                        "{},{:?},{},{:.4},{overlap}\n",
                        e.interpreter, row.category, row.functions, row.mean_score
                    ));
                    lines.push(format!(
                        "{}: {:?} {:.3} ({} functions)",
                        e.interpreter, row.category, row.mean_score, row.functions
                    ));
                }
                tables.push(serde_json::json!({"interpreter": e.interpreter, "table": e.table}));
            }
            write(&dir.join("results.json"), &json(&tables)?)?;
            write(&dir.join("results.csv"), csv.as_bytes())?;
            (lines, ["results.csv", "results.json", "suite.json"].iter().map(|f| f.to_string()).collect())
        }
        Step::HumanEval { protocol, limit, samples, temperature, max_tokens } => {
            use crate::humaneval;
            let mut problems = humaneval::default_problems()?;
            problems.truncate(limit.unwrap_or(problems.len()));
            let settings = humaneval::GenerationSettings {
                protocol: *protocol,
                samples: *samples,
                temperature: *temperature,
                seed: spec.seed,
                max_new_tokens: *max_tokens,
                ..Default::default()
            };
            let generated = humaneval::generate_samples(model, &problems, &settings, progress)?;
            humaneval::write_samples(&dir.join("samples.jsonl"), &generated)?;
            let sandbox = crate::sandbox::Sandbox::new(
                &crate::sandbox::Sandbox::default_python(),
                crate::sandbox::Limits::default(),
            )?;
            let report = humaneval::evaluate_samples(&problems, &generated, &sandbox, 4)?;
            write(&dir.join("results.json"), &json(&report)?)?;
            let csv: String = std::iter::once("task_id,passed\n".to_string())
                .chain(report.passed.iter().map(|(t, c)| format!("{t},{c}\n")))
                .collect();
            write(&dir.join("results.csv"), csv.as_bytes())?;
            let scores: Vec<String> = report.pass_at.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            let lines = vec![format!(
                "{} problems ({protocol:?}): {}; network isolated: {}",
                report.problems,
                scores.join(", "),
                report.network_isolated
            )];
            (lines, ["results.csv", "results.json", "samples.jsonl"].iter().map(|f| f.to_string()).collect())
        }
        Step::Lines { files, context, lines } => {
            let documents = crate::code_metrics::held_out_files(*files)?;
            let report = crate::code_metrics::line_completion(model, &documents, *context, *lines, progress)?;
            write(&dir.join("results.json"), &json(&report)?)?;
            let summary = vec![format!(
                "{} lines after {context} tokens: exact match {:.3}, edit similarity {:.3}",
                report.cases.len(),
                report.exact_match,
                report.edit_similarity
            )];
            (summary, vec!["results.json".into()])
        }
        Step::Repair(study) => repair_step(model, study, dir, progress)?,
        Step::Export { hf, gguf } => export_step(model, *hf, gguf.as_deref(), dir)?,
        Step::Perplexity { files, tokens } => {
            let documents = crate::code_metrics::held_out_files(*files)?;
            let report = crate::code_metrics::perplexity(model, &documents, *tokens, progress)?;
            write(&dir.join("results.json"), &json(&report)?)?;
            (
                vec![format!(
                    "{} tokens: perplexity {:.3}, next-token accuracy {:.3}",
                    report.tokens, report.perplexity, report.next_token_accuracy
                )],
                vec!["results.json".into()],
            )
        }
    })
}

/// The repair study: results.json, table.md, table.csv, and with `sequential` the patch set (the model is
/// reverted afterwards, so later steps see it unpatched).
fn repair_step(
    model: &Model,
    study: &crate::repair_study::RepairStudySpec,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<StepFiles> {
    use crate::repair_study::{run_repair_study, summary_markdown, RowJournal};
    let mut journal = RowJournal::open(&dir.join("rows.jsonl"), study)?;
    let (report, patches) = run_repair_study(model, study, progress, &mut journal)?;
    write(&dir.join("results.json"), &json(&report)?)?;
    let table = summary_markdown(&report.summary);
    write(&dir.join("table.md"), table.as_bytes())?;
    let csv: String = std::iter::once("family,case,method,effective,generalization,top1_unchanged,mean_kl,delta_perplexity,delta_line_em,neurons,seconds\n".to_string())
        .chain(report.rows.iter().map(|r| {
            let m = &r.metrics;
            format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                r.family,
                r.case,
                r.method,
                m.effective,
                m.generalization.map_or(String::new(), |g| g.to_string()),
                m.specificity.top1_unchanged,
                m.specificity.mean_kl,
                r.deltas.perplexity,
                r.deltas.line_exact_match,
                m.neurons_changed,
                m.seconds
            )
        }))
        .collect();
    write(&dir.join("table.csv"), csv.as_bytes())?;
    let mut lines: Vec<String> = table.lines().map(str::to_string).collect();
    lines.insert(0, format!("{} cases; the table (results.json has every repair):", report.cases.len()));
    let mut files = ["table.md", "table.csv", "results.json", "rows.jsonl"].map(String::from).to_vec();
    if let (Some(patches), Some(sequential)) = (patches, &report.sequential) {
        patches.save(&dir.join("patches.ron"))?;
        patches.revert(model)?;
        lines.push(format!(
            "in a row: {} MINT repairs applied, {} still right together; unrelated top-1 unchanged {:.4}, mean KL {:.2e}; perplexity {:.3} -> {:.3}",
            sequential.repairs,
            sequential.still_fixed,
            sequential.specificity.top1_unchanged,
            sequential.specificity.mean_kl,
            sequential.before.perplexity,
            sequential.after.perplexity
        ));
        files.extend(["patches.ron".to_string(), "patches.safetensors".to_string()]);
    }
    Ok((lines, files))
}

/// The last Repair step's patch set applied, the model written, the patch reverted.
fn export_step(model: &Model, hf: bool, gguf: Option<&str>, dir: &Path) -> Result<StepFiles> {
    let run = dir.parent().ok_or_else(|| ExperimentError::Data("the step folder has no run folder".into()))?;
    let mut repair_steps: Vec<PathBuf> = std::fs::read_dir(run)
        .map_err(io(run))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("patches.ron").exists())
        .collect();
    repair_steps.sort();
    let source = repair_steps.pop().ok_or_else(|| {
        ExperimentError::Spec("an Export step needs an earlier Repair step with sequential: true".into())
    })?;
    let patches = repair::PatchSet::load(&source.join("patches.ron"))?;
    patches.apply(model)?;
    let written = (|| -> Result<Vec<String>> {
        let mut files = Vec::new();
        if hf {
            let folder = dir.join("model-hf");
            if folder.exists() {
                std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
            }
            models::writers::save_hf_folder(model, &folder)?;
            files.push("model-hf".to_string());
        }
        if let Some(kind) = gguf {
            models::writers::save_gguf(model, &dir.join("model.gguf"), models::writers::parse_export_type(kind)?)?;
            files.push("model.gguf".to_string());
        }
        Ok(files)
    })();
    patches.revert(model)?;
    let files = written?;
    let neurons = patches.changes().filter(|c| c.target.neuron().is_some()).count();
    Ok((
        vec![format!("{} repairs ({neurons} neuron edits) exported as {}", patches.patches.len(), files.join(" and "))],
        files,
    ))
}
