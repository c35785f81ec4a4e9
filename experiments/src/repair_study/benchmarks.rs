//! The benchmarks a repair study measures before and after every repair: perplexity and line completion on
//! held-out files, and HumanEval pass@1 when asked.

use models::Model;
use serde::{Deserialize, Serialize};

use crate::error::Result;

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

/// The fixed benchmark inputs, measured again after every repair.
pub struct BenchmarkSuite {
    spec: BenchmarkSpec,
    perplexity_documents: Vec<String>,
    line_documents: Vec<String>,
    problems: Vec<crate::humaneval::Problem>,
    sandbox: crate::sandbox::Sandbox,
}

impl BenchmarkSuite {
    /// Reads the held-out files and problems of `spec`.
    pub fn new(spec: &BenchmarkSpec) -> Result<Self> {
        let documents = crate::code_metrics::held_out_files(spec.perplexity_files.max(spec.line_files))?;
        Ok(BenchmarkSuite {
            spec: spec.clone(),
            perplexity_documents: documents[..spec.perplexity_files].to_vec(),
            line_documents: documents[documents.len() - spec.line_files..].to_vec(),
            problems: crate::humaneval::default_problems()?,
            sandbox: crate::sandbox::Sandbox::standard()?,
        })
    }

    /// The model's scores now, with HumanEval on the first `humaneval_problems` problems (0: none).
    pub fn measure(&self, model: &Model, humaneval_problems: usize) -> Result<Benchmarks> {
        let silent = &models::Silent;
        let perplexity =
            crate::code_metrics::perplexity(model, &self.perplexity_documents, self.spec.perplexity_tokens, silent)?;
        let lines =
            crate::code_metrics::line_completion(model, &self.line_documents, 128, self.spec.lines_per_file, silent)?;
        let humaneval_pass1 = self.humaneval(model, humaneval_problems)?;
        Ok(Benchmarks { perplexity: perplexity.perplexity, line_exact_match: lines.exact_match, humaneval_pass1 })
    }

    /// HumanEval pass@1 (greedy, instruct protocol) on the first `problems` problems; none when `problems` is 0.
    pub fn humaneval(&self, model: &Model, problems: usize) -> Result<Option<f64>> {
        if problems == 0 {
            return Ok(None);
        }
        let problems = &self.problems[..problems.min(self.problems.len())];
        let settings = crate::humaneval::GenerationSettings {
            max_new_tokens: self.spec.humaneval_max_tokens,
            ..Default::default()
        };
        let (_, report) = crate::humaneval::run_humaneval(model, problems, &settings, &self.sandbox, &models::Silent)?;
        Ok(report.pass_at.get("pass@1").copied())
    }
}
