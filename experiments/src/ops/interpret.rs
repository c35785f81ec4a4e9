//! The FIND suite scored per interpreter and category.

use std::path::{Path, PathBuf};

use find::evaluate::{evaluate, Evaluation};
use find::interpreters::InterpreterKind;
use find::session::Budget;
use find::suite::Suite;
use models::Model;
use serde::{Deserialize, Serialize};

use super::{names, write_file, write_json, Context, Operation, Report};
use crate::error::{ExperimentError, Result};
use crate::units::Split;

/// Which suite, which interpreters, what budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpretSettings {
    /// Read this suite file instead of generating one from the run's seed.
    #[serde(default)]
    pub suite: Option<PathBuf>,
    /// Numeric functions to generate.
    pub numeric: usize,
    /// String functions to generate.
    pub strings: usize,
    /// Interpreters to score.
    pub interpreters: Vec<InterpreterKind>,
    /// Rounds of calls per function.
    #[serde(default = "rounds")]
    pub rounds: usize,
    /// Score only every n-th function (for quick runs).
    #[serde(default = "every")]
    pub every: usize,
}

fn rounds() -> usize {
    Budget::default().rounds
}

fn every() -> usize {
    1
}

impl Default for InterpretSettings {
    fn default() -> Self {
        InterpretSettings {
            suite: None,
            numeric: 1000,
            strings: 1000,
            interpreters: vec![InterpreterKind::Scientist, InterpreterKind::Random],
            rounds: Budget::default().rounds,
            every: 1,
        }
    }
}

/// The suite and each interpreter's evaluation on it.
#[derive(Debug, Clone, Serialize)]
pub struct InterpretReport {
    /// The suite (written as suite.json).
    #[serde(skip)]
    pub suite: Suite,
    /// Per interpreter: scores per category and per function, with transcripts.
    pub evaluations: Vec<Evaluation>,
}

impl Operation for InterpretSettings {
    type Report = InterpretReport;

    fn run(&self, model: &Model, context: &Context) -> Result<InterpretReport> {
        crate::units::run_all(self, model, context)
    }
}

impl InterpretSettings {
    /// The suite: the file given, or the one the run's seed generates.
    fn suite(&self, seed: u64) -> Result<Suite> {
        Ok(match &self.suite {
            Some(path) => Suite::load(path)?,
            None => Suite::generate(seed, self.numeric, self.strings)?,
        })
    }
}

/// One unit per interpreter: each is built afresh and scores the whole suite, so the units are independent and give
/// what one run of every interpreter gives.
impl Split for InterpretSettings {
    type Unit = Evaluation;

    fn units(&self) -> Result<usize> {
        Ok(self.interpreters.len())
    }

    fn shows_unit_progress(&self) -> bool {
        true
    }

    fn run_unit(&self, index: usize, model: &Model, context: &Context) -> Result<Evaluation> {
        let kind = self.interpreters.get(index).ok_or_else(|| {
            ExperimentError::Data(format!("interpreter {index} asked for, of {}", self.interpreters.len()))
        })?;
        let suite = self.suite(context.seed)?;
        let budget = Budget { rounds: self.rounds, ..Budget::default() };
        let every = self.every.max(1);
        let mut interpreter = kind.build(model, context.seed)?;
        Ok(evaluate(&suite, interpreter.as_mut(), budget, |f| f.id % every == 0, context.progress)?)
    }

    fn merge(&self, evaluations: Vec<Evaluation>, _model: &Model, context: &Context) -> Result<InterpretReport> {
        Ok(InterpretReport { suite: self.suite(context.seed)?, evaluations })
    }
}

impl InterpretReport {
    /// One CSV row per interpreter and category.
    pub fn to_csv(&self) -> String {
        let mut csv = String::from("interpreter,category,functions,mean_score,mean_interval_overlap,failures\n");
        for evaluation in &self.evaluations {
            for row in &evaluation.table {
                let overlap = row.mean_interval_overlap.map_or(String::new(), |o| format!("{o:.3}"));
                csv.push_str(&format!(
                    "{},{:?},{},{:.4},{overlap},{}\n",
                    evaluation.interpreter, row.category, row.functions, row.mean_score, row.failures
                ));
            }
        }
        csv
    }
}

impl Report for InterpretReport {
    fn summary(&self) -> Vec<String> {
        self.evaluations
            .iter()
            .flat_map(|e| {
                e.table.iter().map(move |row| {
                    let overlap =
                        row.mean_interval_overlap.map_or(String::new(), |o| format!(", interval overlap {o:.3}"));
                    format!(
                        "{}: {:?} {:.3} ({} functions{overlap}, failed code {})",
                        e.interpreter, row.category, row.mean_score, row.functions, row.failures
                    )
                })
            })
            .collect()
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        self.suite.save(&dir.join("suite.json"))?;
        write_json(dir, "results.json", &self.evaluations)?;
        write_file(dir, "table.csv", self.to_csv().as_bytes())?;
        Ok(names(&["table.csv", "results.json", "suite.json"]))
    }
}
