//! The repair study: mine real failures of the model in every bug family, repair each case with every method on
//! the same budgets (the model reverted bit-exactly between repairs), measure effectiveness, generalization,
//! specificity and benchmark deltas, and report one table with MINT beside the baselines. Optionally the MINT
//! repairs are then applied in a row, to see what many repairs do together; they become a patch set.

use std::path::PathBuf;

use models::{Model, Progress};
use repair::patchset::{ModelIdentity, PatchSet};
use repair::{Method, RepairCase, RepairConfig, RepairMetrics, Repairer, Specificity, StepLog};
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::repair_cases::{api_cases, humaneval_cases, line_cases};

/// The benchmarks run before and after every repair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BenchmarkSpec {
    /// Held-out files for perplexity.
    pub perplexity_files: usize,
    /// Tokens per perplexity file.
    pub perplexity_tokens: usize,
    /// Held-out files for line completion.
    pub line_files: usize,
    /// Lines per file.
    pub lines_per_file: usize,
    /// HumanEval problems (greedy, instruct protocol) after every repair; 0 to skip.
    pub humaneval_problems: usize,
    /// HumanEval problems before and after the repairs in a row; 0 to skip.
    pub sequential_humaneval_problems: usize,
    /// Most new tokens per HumanEval answer.
    pub humaneval_max_tokens: usize,
}

impl Default for BenchmarkSpec {
    fn default() -> Self {
        BenchmarkSpec {
            perplexity_files: 2,
            perplexity_tokens: 256,
            line_files: 1,
            lines_per_file: 4,
            humaneval_problems: 0,
            sequential_humaneval_problems: 16,
            humaneval_max_tokens: 256,
        }
    }
}

/// What a repair study does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RepairStudySpec {
    /// API-name cases.
    pub api: usize,
    /// Line-completion cases.
    pub lines: usize,
    /// HumanEval cases.
    pub humaneval: usize,
    /// A JSONL file of user cases.
    pub user_cases: Option<PathBuf>,
    /// Context tokens before a line case.
    pub line_context: usize,
    /// Longest desired continuation (tokens) of line and HumanEval cases.
    pub max_desired_tokens: usize,
    /// Methods compared.
    pub methods: Vec<Method>,
    /// Their settings.
    pub config: RepairConfig,
    /// Unrelated prompts for specificity (windows of held-out CPython files 80-99).
    pub unrelated_prompts: usize,
    /// Tokens per unrelated prompt.
    pub unrelated_tokens: usize,
    /// Positions per unrelated prompt whose distributions are compared.
    pub unrelated_positions: usize,
    /// Benchmarks before and after.
    pub benchmarks: BenchmarkSpec,
    /// Apply every MINT repair in a row afterwards.
    pub sequential: bool,
}

impl Default for RepairStudySpec {
    fn default() -> Self {
        RepairStudySpec {
            api: 20,
            lines: 15,
            humaneval: 15,
            user_cases: None,
            line_context: 96,
            max_desired_tokens: 6,
            methods: Method::ALL.to_vec(),
            config: RepairConfig::default(),
            unrelated_prompts: 24,
            unrelated_tokens: 48,
            unrelated_positions: 8,
            benchmarks: BenchmarkSpec::default(),
            sequential: true,
        }
    }
}

/// Benchmark scores of the model at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Benchmarks {
    /// Perplexity on held-out code.
    pub perplexity: f64,
    /// Line-completion exact match.
    pub line_exact_match: f64,
    /// HumanEval pass@1, when run.
    pub humaneval_pass1: Option<f64>,
}

impl Benchmarks {
    /// `self − before`, field by field.
    pub fn minus(&self, before: &Benchmarks) -> Benchmarks {
        Benchmarks {
            perplexity: self.perplexity - before.perplexity,
            line_exact_match: self.line_exact_match - before.line_exact_match,
            humaneval_pass1: self.humaneval_pass1.zip(before.humaneval_pass1).map(|(a, b)| a - b),
        }
    }
}

/// The fixed benchmark inputs.
struct BenchmarkSuite {
    spec: BenchmarkSpec,
    perplexity_documents: Vec<String>,
    line_documents: Vec<String>,
    problems: Vec<crate::humaneval::Problem>,
    sandbox: crate::sandbox::Sandbox,
}

impl BenchmarkSuite {
    fn new(spec: &BenchmarkSpec) -> Result<Self> {
        let documents = crate::code_metrics::held_out_files(spec.perplexity_files.max(spec.line_files))?;
        Ok(BenchmarkSuite {
            spec: spec.clone(),
            perplexity_documents: documents[..spec.perplexity_files].to_vec(),
            line_documents: documents[documents.len() - spec.line_files..].to_vec(),
            problems: crate::humaneval::default_problems()?,
            sandbox: crate::sandbox::Sandbox::new(
                &crate::sandbox::Sandbox::default_python(),
                crate::sandbox::Limits::default(),
            )?,
        })
    }

    fn measure(&self, model: &Model, humaneval_problems: usize) -> Result<Benchmarks> {
        let silent = &models::Silent;
        let perplexity =
            crate::code_metrics::perplexity(model, &self.perplexity_documents, self.spec.perplexity_tokens, silent)?;
        let lines =
            crate::code_metrics::line_completion(model, &self.line_documents, 128, self.spec.lines_per_file, silent)?;
        let humaneval_pass1 = if humaneval_problems > 0 {
            let problems = &self.problems[..humaneval_problems.min(self.problems.len())];
            let settings = crate::humaneval::GenerationSettings {
                max_new_tokens: self.spec.humaneval_max_tokens,
                ..Default::default()
            };
            let samples = crate::humaneval::generate_samples(model, problems, &settings, silent)?;
            let report = crate::humaneval::evaluate_samples(problems, &samples, &self.sandbox, 2)?;
            report.pass_at.get("pass@1").copied()
        } else {
            None
        };
        Ok(Benchmarks { perplexity: perplexity.perplexity, line_exact_match: lines.exact_match, humaneval_pass1 })
    }
}

/// One repair of one case by one method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepairRow {
    /// Case family.
    pub family: String,
    /// Case id.
    pub case: String,
    /// Method.
    pub method: Method,
    /// Its measurements.
    pub metrics: RepairMetrics,
    /// Benchmark changes (after − before).
    pub deltas: Benchmarks,
    /// Targeting and edits per repaired token (token-by-token methods).
    pub steps: Vec<StepLog>,
}

/// One method over all cases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodSummary {
    /// Method.
    pub method: Method,
    /// Cases repaired.
    pub cases: usize,
    /// Fraction made right.
    pub effectiveness: f64,
    /// Variants wrong before that are right after, over all cases.
    pub generalization: f64,
    /// Variants right before that are wrong after.
    pub variants_broken: usize,
    /// Mean fraction of unrelated top-1 tokens unchanged.
    pub top1_unchanged: f64,
    /// Mean KL on unrelated prompts.
    pub mean_kl: f64,
    /// Mean perplexity change.
    pub delta_perplexity: f64,
    /// Mean line exact-match change.
    pub delta_line_exact_match: f64,
    /// Mean HumanEval pass@1 change, when measured.
    pub delta_humaneval_pass1: Option<f64>,
    /// Median neurons changed.
    pub median_neurons: f64,
    /// Median seconds per repair.
    pub median_seconds: f64,
}

/// The MINT repairs applied one after another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequentialReport {
    /// Repairs applied (the effective ones).
    pub repairs: usize,
    /// Of their cases, how many are still right with all repairs applied.
    pub still_fixed: usize,
    /// Side effects of all repairs together.
    pub specificity: Specificity,
    /// Benchmarks before any repair.
    pub before: Benchmarks,
    /// Benchmarks with all repairs.
    pub after: Benchmarks,
}

/// Everything a repair study found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepairStudyReport {
    /// The cases, by family.
    pub cases: Vec<RepairCase>,
    /// Benchmarks of the unrepaired model.
    pub baseline: Benchmarks,
    /// Every repair.
    pub rows: Vec<RepairRow>,
    /// One line per method.
    pub summary: Vec<MethodSummary>,
    /// The repairs in a row, when run.
    pub sequential: Option<SequentialReport>,
}

/// Mines the cases a study asks for.
pub fn study_cases(model: &Model, spec: &RepairStudySpec) -> Result<Vec<RepairCase>> {
    let mut cases = api_cases(model, spec.api)?;
    cases.extend(line_cases(model, spec.lines, spec.line_context, spec.max_desired_tokens)?);
    let problems = crate::humaneval::default_problems()?;
    cases.extend(humaneval_cases(model, &problems, spec.humaneval, spec.max_desired_tokens)?);
    if let Some(path) = &spec.user_cases {
        cases.extend(repair::load_user_cases(path)?);
    }
    Ok(cases)
}

/// Windows of held-out CPython files 80-99, `tokens` long: prompts no repair should change.
pub fn unrelated_prompts(model: &Model, count: usize, tokens: usize) -> Result<Vec<Vec<u32>>> {
    let files = probes::corpus::stdlib_files(100)?;
    let mut prompts = Vec::new();
    for window in 0..4 {
        for path in &files[80..] {
            let text =
                std::fs::read_to_string(path).map_err(|e| ExperimentError::Data(format!("{}: {e}", path.display())))?;
            let ids = model.encode_prefix(&text, 64 + (window + 1) * tokens)?;
            if prompts.len() < count && ids.len() >= 64 + (window + 1) * tokens {
                prompts.push(ids[64 + window * tokens..].to_vec());
            }
        }
    }
    Ok(prompts)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => 0.5 * (values[n / 2 - 1] + values[n / 2]),
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// The per-method table of `rows`.
pub fn summarize(rows: &[RepairRow], methods: &[Method]) -> Vec<MethodSummary> {
    methods
        .iter()
        .map(|&method| {
            let mine: Vec<&RepairRow> = rows.iter().filter(|r| r.method == method).collect();
            let wrong_before: usize = mine.iter().map(|r| r.metrics.variants_wrong_before).sum();
            let fixed: usize = mine.iter().map(|r| r.metrics.variants_fixed).sum();
            let pass1: Vec<f64> = mine.iter().filter_map(|r| r.deltas.humaneval_pass1).collect();
            MethodSummary {
                method,
                cases: mine.len(),
                effectiveness: mean(mine.iter().map(|r| f64::from(u8::from(r.metrics.effective)))),
                generalization: fixed as f64 / wrong_before.max(1) as f64,
                variants_broken: mine.iter().map(|r| r.metrics.variants_broken).sum(),
                top1_unchanged: mean(mine.iter().map(|r| r.metrics.specificity.top1_unchanged)),
                mean_kl: mean(mine.iter().map(|r| r.metrics.specificity.mean_kl)),
                delta_perplexity: mean(mine.iter().map(|r| r.deltas.perplexity)),
                delta_line_exact_match: mean(mine.iter().map(|r| r.deltas.line_exact_match)),
                delta_humaneval_pass1: (!pass1.is_empty()).then(|| mean(pass1.into_iter())),
                median_neurons: median(mine.iter().map(|r| r.metrics.neurons_changed as f64).collect()),
                median_seconds: median(mine.iter().map(|r| r.metrics.seconds).collect()),
            }
        })
        .collect()
}

/// The table as Markdown.
pub fn summary_markdown(summary: &[MethodSummary]) -> String {
    let mut out = String::from(
        "| method | cases | effectiveness | generalization | variants broken | unrelated top-1 unchanged | mean KL | Δ perplexity | Δ line EM | Δ HumanEval pass@1 | median neurons | median s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summary {
        let pass1 = s.delta_humaneval_pass1.map_or("—".to_string(), |d| format!("{d:+.4}"));
        out.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {} | {:.4} | {:.2e} | {:+.4} | {:+.4} | {pass1} | {} | {:.2} |\n",
            s.method,
            s.cases,
            s.effectiveness,
            s.generalization,
            s.variants_broken,
            s.top1_unchanged,
            s.mean_kl,
            s.delta_perplexity,
            s.delta_line_exact_match,
            s.median_neurons,
            s.median_seconds
        ));
    }
    out
}

/// The rows of a study as they finish, one JSON line each, so that a long study shows its progress and an
/// interrupted one resumes where it stopped: rows already in the file are not repaired again. The first line
/// holds the settings the rows depend on, so rows of a study with other settings are never taken.
pub struct RowJournal {
    path: PathBuf,
    settings: serde_json::Value,
    done: Vec<RepairRow>,
}

/// The first line of a journal.
#[derive(Serialize, Deserialize)]
struct JournalHeader {
    settings: serde_json::Value,
}

impl RowJournal {
    /// Opens the journal of `study` at `path`, reading the rows it already holds (a missing file holds none; a
    /// last line cut off by an interruption is dropped). A journal written with other settings (cases, repair
    /// configuration, side-effect prompts, benchmarks; the methods may differ) is an error.
    pub fn open(path: &std::path::Path, study: &RepairStudySpec) -> Result<Self> {
        let settings = Self::settings_of(study)?;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ExperimentError::Data(format!("{}: {e}", path.display()))),
        };
        let lines: Vec<&str> = text.lines().collect();
        let corrupt = |number: usize, e: serde_json::Error| {
            ExperimentError::Data(format!("{} line {}: {e}", path.display(), number + 1))
        };
        let mut done = Vec::new();
        if let Some((header, rows)) = lines.split_first() {
            match serde_json::from_str::<JournalHeader>(header) {
                Ok(header) if header.settings == settings => {}
                Ok(_) => {
                    return Err(ExperimentError::Data(format!(
                        "{} holds the repairs of a study with other settings; remove it or run into another folder",
                        path.display()
                    )))
                }
                Err(_) if rows.is_empty() => {}
                Err(e) => return Err(corrupt(0, e)),
            }
            for (index, line) in rows.iter().enumerate() {
                match serde_json::from_str::<RepairRow>(line) {
                    Ok(row) => done.push(row),
                    Err(_) if index + 1 == rows.len() => {}
                    Err(e) => return Err(corrupt(index + 1, e)),
                }
            }
        }
        let journal = RowJournal { path: path.to_path_buf(), settings, done };
        journal.rewrite()?;
        Ok(journal)
    }

    /// What a row depends on: the study without its list of methods and without the repairs in a row.
    fn settings_of(study: &RepairStudySpec) -> Result<serde_json::Value> {
        let rows_depend_on = RepairStudySpec { methods: Vec::new(), sequential: false, ..study.clone() };
        serde_json::to_value(rows_depend_on).map_err(|e| ExperimentError::Data(e.to_string()))
    }

    /// The row of `case` repaired by `method`, when the journal has it.
    pub fn find(&self, case: &RepairCase, method: Method) -> Option<&RepairRow> {
        self.done.iter().find(|row| row.family == case.family && row.case == case.id && row.method == method)
    }

    /// Adds a finished row.
    pub fn record(&mut self, row: &RepairRow) -> Result<()> {
        use std::io::Write;
        let line = json_line(row)?;
        let error = |e: std::io::Error| ExperimentError::Data(format!("{}: {e}", self.path.display()));
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(error)?;
        file.write_all(line.as_bytes()).and_then(|()| file.sync_data()).map_err(error)?;
        self.done.push(row.clone());
        Ok(())
    }

    /// Writes the settings and the rows (dropping a cut-off line) atomically.
    fn rewrite(&self) -> Result<()> {
        let mut text = json_line(&JournalHeader { settings: self.settings.clone() })?;
        for row in &self.done {
            text.push_str(&json_line(row)?);
        }
        models::files::write_atomically(&self.path, text.as_bytes())?;
        Ok(())
    }
}

/// One line of a JSONL file.
fn json_line(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map(|line| line + "\n").map_err(|e| ExperimentError::Data(e.to_string()))
}

/// Runs the study. The model is left as it was, unless `sequential` is on: then every effective MINT repair
/// stays applied, in the returned patch set. Every row is recorded in the journal as it finishes, and rows the
/// journal already holds are taken from it instead of being repaired again.
pub fn run_repair_study(
    model: &Model,
    spec: &RepairStudySpec,
    progress: &dyn Progress,
    journal: &mut RowJournal,
) -> Result<(RepairStudyReport, Option<PatchSet>)> {
    let cases = study_cases(model, spec)?;
    if cases.is_empty() {
        return Err(ExperimentError::Data("no repair cases: the model got every mined case right".into()));
    }
    let identity = ModelIdentity::of(model)?;
    let unrelated = unrelated_prompts(model, spec.unrelated_prompts, spec.unrelated_tokens)?;
    let mut repairer = Repairer::new(model, spec.config.clone(), unrelated, spec.unrelated_positions)?;
    let suite = BenchmarkSuite::new(&spec.benchmarks)?;
    let baseline = suite.measure(model, spec.benchmarks.humaneval_problems)?;
    progress.begin("repairing", (cases.len() * spec.methods.len()) as u64);
    let mut rows = Vec::new();
    for case in &cases {
        for &method in &spec.methods {
            progress.check()?;
            if let Some(row) = journal.find(case, method) {
                rows.push(row.clone());
                progress.advance(1);
                continue;
            }
            let (repair, metrics) = repairer.repair_case(model, case, method)?;
            let after = suite.measure(model, spec.benchmarks.humaneval_problems)?;
            repair.revert(model)?;
            let row = RepairRow {
                family: case.family.clone(),
                case: case.id.clone(),
                method,
                metrics,
                deltas: after.minus(&baseline),
                steps: repair.steps,
            };
            journal.record(&row)?;
            rows.push(row);
            progress.advance(1);
        }
    }
    if ModelIdentity::of(model)?.weights_sha256 != identity.weights_sha256 {
        return Err(ExperimentError::Data("reverting the repairs did not restore the model bit-exactly".into()));
    }
    let summary = summarize(&rows, &spec.methods);
    let (sequential, patches) = if spec.sequential {
        let (report, patches) = repair_in_a_row(model, &cases, &mut repairer, &suite, identity, spec)?;
        (Some(report), Some(patches))
    } else {
        (None, None)
    };
    Ok((RepairStudyReport { cases, baseline, rows, summary, sequential }, patches))
}

/// Applies the MINT repair of every case on top of the earlier ones (keeping the effective ones).
fn repair_in_a_row(
    model: &Model,
    cases: &[RepairCase],
    repairer: &mut Repairer,
    suite: &BenchmarkSuite,
    identity: ModelIdentity,
    spec: &RepairStudySpec,
) -> Result<(SequentialReport, PatchSet)> {
    let problems = spec.benchmarks.sequential_humaneval_problems;
    let before = suite.measure(model, problems)?;
    let mut patches = PatchSet::new(identity);
    let mut kept = Vec::new();
    for case in cases {
        let (repair, metrics) = repairer.repair_case(model, case, Method::Mint)?;
        if metrics.effective {
            patches.push(&repair, Some(case.clone()), Some(metrics));
            kept.push(case);
        } else {
            repair.revert(model)?;
        }
    }
    let mut still_fixed = 0;
    for case in &kept {
        still_fixed += usize::from(repair::check(model, &repair::Tokens::new(model, &case.example)?)?.correct());
    }
    let report = SequentialReport {
        repairs: kept.len(),
        still_fixed,
        specificity: repairer.unrelated.compare(model)?,
        before,
        after: suite.measure(model, problems)?,
    };
    Ok((report, patches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use repair::Example;

    fn case(id: &str) -> RepairCase {
        RepairCase {
            family: "api".into(),
            id: id.into(),
            example: Example { prompt: "os.path.".into(), desired: "join".into() },
            variants: Vec::new(),
        }
    }

    fn row(case: &RepairCase, method: Method, seconds: f64) -> RepairRow {
        RepairRow {
            family: case.family.clone(),
            case: case.id.clone(),
            method,
            metrics: RepairMetrics {
                effective: true,
                variants_wrong_before: 2,
                variants_fixed: 1,
                variants_broken: 0,
                generalization: Some(0.5),
                specificity: Specificity { top1_unchanged: 0.99, mean_kl: 1e-4 },
                neurons_changed: 1,
                seconds,
            },
            deltas: Benchmarks { perplexity: 0.01, line_exact_match: 0.0, humaneval_pass1: None },
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_journal_keeps_finished_rows_across_an_interruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let (first, second) = (case("a"), case("b"));
        let study = RepairStudySpec::default();
        let mut journal = RowJournal::open(&path, &study).unwrap();
        assert!(journal.find(&first, Method::Mint).is_none());
        journal.record(&row(&first, Method::Mint, 1.5)).unwrap();
        journal.record(&row(&second, Method::RankOne, 2.5)).unwrap();
        // An interruption in the middle of a write leaves a cut-off last line.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"family\":\"api\",\"ca");
        std::fs::write(&path, text).unwrap();

        let only_mint = RepairStudySpec { methods: vec![Method::Mint], ..study.clone() };
        let reopened = RowJournal::open(&path, &only_mint).unwrap();
        assert_eq!(reopened.find(&first, Method::Mint).map(|r| r.metrics.seconds), Some(1.5));
        assert_eq!(reopened.find(&second, Method::RankOne).map(|r| r.metrics.seconds), Some(2.5));
        assert!(reopened.find(&first, Method::RankOne).is_none());
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 3, "the settings and two rows; the cut-off line is dropped");

        let other = RepairStudySpec { line_context: study.line_context + 1, ..study };
        let error = RowJournal::open(&path, &other).err().expect("rows of other settings must not be taken");
        assert!(error.to_string().contains("other settings"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), lines, "a refused journal is kept");
    }

    #[test]
    fn a_corrupt_row_before_the_last_is_an_error_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let study = RepairStudySpec::default();
        drop(RowJournal::open(&path, &study).unwrap());
        let header = std::fs::read_to_string(&path).unwrap();
        let good = serde_json::to_string(&row(&case("a"), Method::Mint, 1.0)).unwrap();
        std::fs::write(&path, format!("{header}not json\n{good}\n")).unwrap();
        let error = RowJournal::open(&path, &study).err().expect("a corrupt journal must not load").to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn the_summary_counts_each_method_apart() {
        let (first, second) = (case("a"), case("b"));
        let mut broken = row(&second, Method::Mint, 3.0);
        broken.metrics.effective = false;
        let rows = vec![row(&first, Method::Mint, 1.0), broken, row(&first, Method::RankOne, 5.0)];
        let summary = summarize(&rows, &[Method::Mint, Method::RankOne]);
        assert_eq!((summary[0].cases, summary[0].effectiveness, summary[0].median_seconds), (2, 0.5, 2.0));
        assert_eq!(summary[0].generalization, 2.0 / 4.0);
        assert_eq!((summary[1].cases, summary[1].effectiveness, summary[1].median_seconds), (1, 1.0, 5.0));
    }
}
