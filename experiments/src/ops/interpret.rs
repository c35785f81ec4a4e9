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
    /// Functions of the suite per work unit (each interpreter scores its share of a unit's functions afresh, drawing
    /// from the run's seed mixed with the unit's place), so that a cluster run spreads the suite over its shards.
    /// Unset: each interpreter scores the whole suite in one unit.
    #[serde(default)]
    pub functions_per_unit: Option<usize>,
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
            functions_per_unit: None,
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
    /// The suite: the file given, or the one the run's seed generates, kept in `out/units/suite.json` so that the
    /// units of a step generate it once.
    fn suite(&self, seed: u64, out: &Path) -> Result<Suite> {
        match &self.suite {
            Some(path) => Ok(Suite::load(path)?),
            None => {
                let settings = (seed, self.numeric, self.strings);
                crate::journal::measured_once(&out.join("units").join("suite.json"), &settings, || {
                    Ok(Suite::generate(seed, self.numeric, self.strings)?)
                })
            }
        }
    }

    /// How many functions the suite has, known without generating it.
    fn suite_size(&self) -> Result<usize> {
        Ok(match &self.suite {
            Some(path) => Suite::load(path)?.functions.len(),
            None => self.numeric + self.strings,
        })
    }

    /// How many units each interpreter's share of the suite is split into.
    fn chunks(&self) -> Result<usize> {
        let size = self.suite_size()?;
        Ok(match self.functions_per_unit {
            Some(0) => {
                return Err(ExperimentError::Spec("functions_per_unit: a unit holds at least one function".into()))
            }
            Some(per_unit) => size.div_ceil(per_unit).max(1),
            None => 1,
        })
    }
}

/// One unit per interpreter and group of `functions_per_unit` functions (in the suite's order): the interpreter,
/// built afresh, scores those functions. Unit `u` is interpreter `u / chunks` on group `u % chunks`; the first
/// group's interpreter draws from the run's seed, so without `functions_per_unit` each interpreter scores the
/// whole suite as one run of it does. The merge joins each interpreter's groups into one evaluation.
impl Split for InterpretSettings {
    type Unit = Evaluation;

    fn units(&self) -> Result<usize> {
        Ok(self.interpreters.len() * self.chunks()?)
    }

    fn shows_unit_progress(&self) -> bool {
        true
    }

    fn run_unit(&self, index: usize, model: &Model, context: &Context) -> Result<Evaluation> {
        let chunks = self.chunks()?;
        let kind = self.interpreters.get(index / chunks).ok_or_else(|| {
            ExperimentError::Data(format!("interpret unit {index} asked for, of {}", self.interpreters.len() * chunks))
        })?;
        let suite = self.suite(context.seed, context.out)?;
        if suite.functions.len() != self.suite_size()? {
            return Err(ExperimentError::Data(format!(
                "the suite has {} functions, not the {} its settings give",
                suite.functions.len(),
                self.suite_size()?
            )));
        }
        let chunk = index % chunks;
        let per_unit = self.functions_per_unit.unwrap_or(suite.functions.len()).max(1);
        let ids: Vec<usize> = suite.functions.iter().skip(chunk * per_unit).take(per_unit).map(|f| f.id).collect();
        let budget = Budget { rounds: self.rounds, ..Budget::default() };
        let every = self.every.max(1);
        let seed = context.seed ^ (chunk as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut interpreter = kind.build(model, seed)?;
        let keep = |f: &find::suite::FunctionSpec| f.id.is_multiple_of(every) && ids.contains(&f.id);
        Ok(evaluate(&suite, interpreter.as_mut(), budget, keep, context.progress)?)
    }

    fn merge(&self, evaluations: Vec<Evaluation>, _model: &Model, context: &Context) -> Result<InterpretReport> {
        let suite = self.suite(context.seed, context.out)?;
        let chunks = self.chunks()?;
        let mut grouped = Vec::with_capacity(self.interpreters.len());
        let mut evaluations = evaluations.into_iter();
        for _ in &self.interpreters {
            grouped.push(Evaluation::join(evaluations.by_ref().take(chunks).collect(), &suite)?);
        }
        Ok(InterpretReport { suite, evaluations: grouped })
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
