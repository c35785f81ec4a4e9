//! Neuron pages: top-activating examples of chosen neurons of a layer over CPython files, a description from them
//! and its simulation score on further files (see [`find::pages`]).

use std::path::Path;

use find::pages::{neuron_pages, UnitPage};
use find::units::Neurons;
use models::{Model, Progress};
use serde::{Deserialize, Serialize};

use super::features::UnitFunction;
use super::{write_file, write_json, Context, Operation, Report};
use crate::error::{ExperimentError, Result};
use crate::units::Split;

/// Which neurons, over how much text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagesSettings {
    /// The layer (its `mlp.hook_post`).
    pub layer: usize,
    /// The neurons' indices on it.
    pub neurons: Vec<usize>,
    /// CPython files searched for the top examples.
    #[serde(default = "files")]
    pub files: usize,
    /// Further CPython files the simulation score is measured on.
    #[serde(default = "held_out")]
    pub held_out: usize,
    /// Tokens read of each file.
    #[serde(default = "max_tokens")]
    pub max_tokens: usize,
    /// Neurons per work unit, so that a cluster run spreads them over its shards (each unit reads the files
    /// itself). Unset: every neuron in one unit, reading the files once.
    #[serde(default)]
    pub neurons_per_unit: Option<usize>,
    /// Every neuron also described by a FIND interpreter as a function of `x` written into a template.
    #[serde(default)]
    pub function: Option<UnitFunction>,
}

fn files() -> usize {
    20
}

fn held_out() -> usize {
    5
}

fn max_tokens() -> usize {
    256
}

impl PagesSettings {
    /// Pages of `neurons` of `layer`, with the default files and tokens.
    pub fn new(layer: usize, neurons: Vec<usize>) -> Self {
        PagesSettings {
            layer,
            neurons,
            files: files(),
            held_out: held_out(),
            max_tokens: max_tokens(),
            neurons_per_unit: None,
            function: None,
        }
    }

    /// Every neuron's page, read in one pass (what the app shows).
    pub fn pages(&self, model: &Model, progress: &dyn Progress) -> Result<Vec<UnitPage>> {
        self.pages_of(&self.neurons, model, progress, 0)
    }

    /// The pages of `neurons` of the layer, interpreted as functions when asked (the interpreter drawing from
    /// `seed`).
    fn pages_of(&self, neurons: &[usize], model: &Model, progress: &dyn Progress, seed: u64) -> Result<Vec<UnitPage>> {
        let mut documents = probes::corpus::stdlib_documents(self.files + self.held_out)?;
        let held_out = documents.split_off(self.files.min(documents.len()));
        let mut pages = neuron_pages(model, self.layer, neurons, &documents, &held_out, self.max_tokens, progress)?;
        if let Some(function) = &self.function {
            progress.begin("interpreting neurons as functions", pages.len() as u64);
            for page in &mut pages {
                page.interpretation =
                    Some(function.interpret(model, Box::new(Neurons(self.layer)), page.index, seed)?);
                progress.advance(1);
            }
        }
        Ok(pages)
    }

    /// The neurons of each unit, checked without the model.
    fn unit_neurons(&self) -> Result<Vec<&[usize]>> {
        if self.neurons.is_empty() {
            return Err(ExperimentError::Spec("neuron pages: list the neurons (neurons: [7, 100])".into()));
        }
        if self.neurons_per_unit == Some(0) {
            return Err(ExperimentError::Spec("neurons_per_unit: a unit holds at least one neuron".into()));
        }
        Ok(self.neurons.chunks(self.neurons_per_unit.unwrap_or(self.neurons.len())).collect())
    }
}

/// Every neuron's page, in the order asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct PagesReport {
    /// The pages.
    pub pages: Vec<UnitPage>,
}

impl Operation for PagesSettings {
    type Report = PagesReport;

    fn run(&self, model: &Model, context: &Context) -> Result<PagesReport> {
        crate::units::run_all(self, model, context)
    }
}

/// One unit per group of `neurons_per_unit` neurons: their pages alone. A page depends only on its own neuron, so
/// any grouping gives the same pages.
impl Split for PagesSettings {
    type Unit = Vec<UnitPage>;

    fn units(&self) -> Result<usize> {
        Ok(self.unit_neurons()?.len())
    }

    fn shows_unit_progress(&self) -> bool {
        true
    }

    fn run_unit(&self, index: usize, model: &Model, context: &Context) -> Result<Vec<UnitPage>> {
        let units = self.unit_neurons()?;
        let neurons = units
            .get(index)
            .ok_or_else(|| ExperimentError::Data(format!("neuron-page unit {index} asked for, of {}", units.len())))?;
        self.pages_of(neurons, model, context.progress, context.seed)
    }

    fn merge(&self, units: Vec<Vec<UnitPage>>, _model: &Model, _context: &Context) -> Result<PagesReport> {
        Ok(PagesReport { pages: units.concat() })
    }
}

impl PagesReport {
    /// One CSV row per page.
    pub fn to_csv(&self) -> String {
        let mut csv =
            String::from("layer,neuron,simulation_score,held_out_tokens,tokens,function_nmse,function_simulation\n");
        for page in &self.pages {
            let function = page.interpretation.as_ref();
            let number = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
            csv.push_str(&format!(
                "{},{},{:.4},{},\"{}\",{},{}\n",
                page.layer,
                page.index,
                page.simulation_score,
                page.held_out_tokens,
                page.tokens.join(" ").replace('"', "\"\""),
                number(function.and_then(|f| f.nmse)),
                number(function.and_then(|f| f.simulation))
            ));
        }
        csv
    }

    /// How many neurons' functions the interpreter's code simulates with a correlation of at least 0.5, of those
    /// interpreted as numeric functions; none when none was.
    pub fn functions_simulated(&self) -> Option<(usize, usize)> {
        let scores: Vec<f64> = self.pages.iter().filter_map(|p| p.interpretation.as_ref()?.simulation).collect();
        (!scores.is_empty()).then(|| (scores.iter().filter(|&&s| s >= 0.5).count(), scores.len()))
    }
}

impl Report for PagesReport {
    fn summary(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .pages
            .iter()
            .map(|p| format!("{}.{}: {} (simulation score {:.3})", p.layer, p.index, p.description, p.simulation_score))
            .collect();
        if let Some((good, of)) = self.functions_simulated() {
            lines.push(format!("as functions of x: {good} of {of} neurons simulated with a correlation >= 0.5"));
        }
        lines
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        write_file(dir, "table.csv", self.to_csv().as_bytes())?;
        let mut files = vec!["table.csv".to_string(), "results.json".to_string()];
        for page in &self.pages {
            page.write(dir)?;
            files.push(format!("{}.md", page.file_stem()));
        }
        Ok(files)
    }
}
