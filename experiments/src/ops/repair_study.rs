//! The repair study as an operation: every method on mined failures, a case per unit, one table, and with
//! `sequential` the repairs of one method in a row saved as a patch set.

use std::path::Path;

use models::Model;
use repair::patchset::PatchSet;
use serde::Serialize;

use super::{names, write_file, write_json, Context, Operation, Report};
use crate::error::Result;
use crate::repair_study::{
    case_rows, finish_study, rows_csv, summary_markdown, Prepared, RepairRow, RepairStudyReport, RepairStudySpec,
};
use crate::units::Split;

/// A finished study and its patch set.
#[derive(Serialize)]
#[serde(transparent)]
pub struct StudyRun {
    /// Every repair, the table, the repairs in a row.
    pub report: RepairStudyReport,
    /// The repairs in a row (saved as patches.ron), when `sequential` was on.
    #[serde(skip)]
    pub patches: Option<PatchSet>,
}

impl Operation for RepairStudySpec {
    type Report = StudyRun;

    /// Runs the study case by case, journalling each case's rows in `context.out/units/` (cases already there are
    /// kept); the model is reverted to how it was afterwards.
    fn run(&self, model: &Model, context: &Context) -> Result<StudyRun> {
        crate::units::run_journalled(self, model, context)
    }
}

impl RepairStudySpec {
    /// The study with its transcoder taken from the run folder when it names an earlier step's dictionary.
    fn in_run(&self, out: &Path) -> RepairStudySpec {
        RepairStudySpec { config: super::repair_config_in_run(&self.config, out), ..self.clone() }
    }
}

/// One unit per case asked for (API, line and HumanEval cases, then the user's): every method on that case. The
/// cases are mined, and the unrepaired model measured, once per study (`cases.json`, `baseline.json` in the step's
/// folder); units past the cases mined hold no rows. The merge makes the table and, with `sequential`, repairs every
/// case in a row.
impl Split for RepairStudySpec {
    type Unit = Vec<RepairRow>;

    fn units(&self) -> Result<usize> {
        let user = match &self.user_cases {
            Some(path) => repair::load_user_cases(path)?.len(),
            None => 0,
        };
        Ok(self.api + self.lines + self.humaneval + user)
    }

    fn run_unit(&self, index: usize, model: &Model, context: &Context) -> Result<Vec<RepairRow>> {
        let spec = self.in_run(context.out);
        case_rows(model, &spec, &Prepared::once(model, &spec, context.out)?, index)
    }

    fn merge(&self, units: Vec<Vec<RepairRow>>, model: &Model, context: &Context) -> Result<StudyRun> {
        let spec = self.in_run(context.out);
        let prepared = Prepared::once(model, &spec, context.out)?;
        let (report, patches) = finish_study(model, &spec, prepared, units.concat())?;
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
                "in a row: {} {} repairs applied, {} still right together; unrelated top-1 unchanged {:.4}, mean KL {:.2e}; perplexity {:.3} -> {:.3}",
                sequential.repairs,
                sequential.method,
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
        let mut files = names(&["table.md", "table.csv", "results.json"]);
        if let Some(patches) = &self.patches {
            patches.save(&dir.join("patches.ron"))?;
            files.extend(names(&["patches.ron", "patches.safetensors"]));
        }
        Ok(files)
    }
}
