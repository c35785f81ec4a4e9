//! Perplexity and next-token accuracy on held-out CPython files.

use std::path::Path;

use models::Model;
use serde::{Deserialize, Serialize};

use super::{names, write_json, Context, Operation, Report};
use crate::code_metrics::{file_likelihood, held_out, held_out_files, FileLikelihood, PerplexityReport};
use crate::error::Result;
use crate::units::Split;

/// How much held-out code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerplexitySettings {
    /// Held-out files.
    pub files: usize,
    /// Tokens per file.
    pub tokens: usize,
}

impl Default for PerplexitySettings {
    fn default() -> Self {
        PerplexitySettings { files: 10, tokens: 256 }
    }
}

impl Operation for PerplexitySettings {
    type Report = PerplexityReport;

    fn run(&self, model: &Model, context: &Context) -> Result<PerplexityReport> {
        crate::units::run_all(self, model, context)
    }
}

/// One unit is one held-out file.
impl Split for PerplexitySettings {
    type Unit = FileLikelihood;

    fn units(&self) -> Result<usize> {
        Ok(held_out_files(self.files)?.len())
    }

    fn run_unit(&self, index: usize, model: &Model, _context: &Context) -> Result<FileLikelihood> {
        let documents = held_out_files(self.files)?;
        file_likelihood(model, held_out(&documents, index)?, self.tokens)
    }

    fn merge(&self, units: Vec<FileLikelihood>, _model: &Model, _context: &Context) -> Result<PerplexityReport> {
        Ok(PerplexityReport::of(&units))
    }
}

impl Report for PerplexityReport {
    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} tokens: perplexity {:.3}, next-token accuracy {:.4}",
            self.tokens, self.perplexity, self.next_token_accuracy
        )]
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        Ok(names(&["results.json"]))
    }
}
