//! Greedy next-line completion on held-out CPython files.

use std::path::Path;

use models::Model;
use serde::{Deserialize, Serialize};

use super::{names, write_json, Context, Operation, Report};
use crate::code_metrics::{file_lines, held_out, held_out_files, LineCase, LineReport};
use crate::error::Result;
use crate::units::Split;

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
        crate::units::run_all(self, model, context)
    }
}

/// One unit is one held-out file's lines.
impl Split for LinesSettings {
    type Unit = Vec<LineCase>;

    fn units(&self) -> Result<usize> {
        Ok(held_out_files(self.files)?.len())
    }

    fn run_unit(&self, index: usize, model: &Model, _context: &Context) -> Result<Vec<LineCase>> {
        let documents = held_out_files(self.files)?;
        file_lines(model, index, held_out(&documents, index)?, self.context, self.lines)
    }

    fn merge(&self, units: Vec<Vec<LineCase>>, _model: &Model, _context: &Context) -> Result<LineReport> {
        Ok(LineReport::of(self.context, units.into_iter().flatten().collect()))
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
