//! Perplexity and next-token accuracy on held-out CPython files.

use std::path::Path;

use models::Model;
use serde::{Deserialize, Serialize};

use super::{names, write_json, Context, Operation, Report};
use crate::code_metrics::{held_out_files, PerplexityReport};
use crate::error::Result;

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
        let documents = held_out_files(self.files)?;
        crate::code_metrics::perplexity(model, &documents, self.tokens, context.progress)
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
