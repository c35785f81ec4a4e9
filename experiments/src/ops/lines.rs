//! Greedy next-line completion on held-out CPython files.

use std::path::Path;

use models::Model;
use serde::{Deserialize, Serialize};

use super::{names, write_json, Context, Operation, Report};
use crate::code_metrics::{held_out_files, LineReport};
use crate::error::Result;

/// Which lines, after how much context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesSettings {
    /// Held-out files.
    pub files: usize,
    /// Context tokens before each line.
    pub context: usize,
    /// Lines per file.
    pub lines: usize,
}

impl Default for LinesSettings {
    fn default() -> Self {
        LinesSettings { files: 10, context: 256, lines: 10 }
    }
}

impl Operation for LinesSettings {
    type Report = LineReport;

    fn run(&self, model: &Model, context: &Context) -> Result<LineReport> {
        let documents = held_out_files(self.files)?;
        crate::code_metrics::line_completion(model, &documents, self.context, self.lines, context.progress)
    }
}

impl Report for LineReport {
    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} lines after {} tokens: exact match {:.4}, edit similarity {:.4}",
            self.cases.len(),
            self.context_tokens,
            self.exact_match,
            self.edit_similarity
        )]
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        Ok(names(&["results.json"]))
    }
}
