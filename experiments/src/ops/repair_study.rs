//! The repair study as an operation: every method on mined failures, one table, the row journal, and with
//! `sequential` the MINT repairs in a row saved as a patch set.

use std::path::Path;

use models::Model;
use repair::patchset::PatchSet;
use serde::Serialize;

use super::{names, write_file, write_json, Context, Operation, Report};
use crate::error::Result;
use crate::journal::RowJournal;
use crate::repair_study::{
    journal_settings, rows_csv, run_repair_study, summary_markdown, RepairStudyReport, RepairStudySpec,
};

/// A finished study and its patch set.
#[derive(Serialize)]
#[serde(transparent)]
pub struct StudyRun {
    /// Every repair, the table, the repairs in a row.
    pub report: RepairStudyReport,
    /// The MINT repairs in a row (saved as patches.ron), when `sequential` was on.
    #[serde(skip)]
    pub patches: Option<PatchSet>,
}

impl Operation for RepairStudySpec {
    type Report = StudyRun;

    /// Runs the study, journalling every row in `context.out/rows.jsonl` (rows already there are kept); the
    /// model is reverted to how it was afterwards.
    fn run(&self, model: &Model, context: &Context) -> Result<StudyRun> {
        let mut journal = RowJournal::open(&context.out.join("rows.jsonl"), &journal_settings(self))?;
        let (report, patches) = run_repair_study(model, self, context.progress, &mut journal)?;
        if let Some(patches) = &patches {
            patches.revert(model)?;
        }
        Ok(StudyRun { report, patches })
    }
}

impl Report for StudyRun {
    fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!("{} cases; the table (results.json has every repair):", self.report.cases.len())];
        lines.extend(summary_markdown(&self.report.summary).lines().map(str::to_string));
        if let Some(sequential) = &self.report.sequential {
            lines.push(format!(
                "in a row: {} MINT repairs applied, {} still right together; unrelated top-1 unchanged {:.4}, mean KL {:.2e}; perplexity {:.3} -> {:.3}",
                sequential.repairs,
                sequential.still_fixed,
                sequential.specificity.top1_unchanged,
                sequential.specificity.mean_kl,
                sequential.before.perplexity,
                sequential.after.perplexity
            ));
        }
        lines
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        write_file(dir, "table.md", summary_markdown(&self.report.summary).as_bytes())?;
        write_file(dir, "table.csv", rows_csv(&self.report.rows).as_bytes())?;
        let mut files = names(&["table.md", "table.csv", "results.json", "rows.jsonl"]);
        if let Some(patches) = &self.patches {
            patches.save(&dir.join("patches.ron"))?;
            files.extend(names(&["patches.ron", "patches.safetensors"]));
        }
        Ok(files)
    }
}
