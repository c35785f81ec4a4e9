//! Experiment specs in RON (`experiments/specs/*.ron`): the model, device, dtype and seed, and a list of steps.
//! A malformed spec is an error that names the file, the line and column, and the field.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::humaneval::Protocol;

/// A probing task a spec can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeTask {
    /// Bracket nesting depth.
    BracketDepth,
    /// Indentation level.
    IndentLevel,
    /// tree-sitter syntax categories.
    Syntax,
}

/// An interpreter a spec can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InterpreterKind {
    /// The search scientist.
    Scientist,
    /// The random-guess baseline.
    Random,
}

/// One step of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// A probing study over CPython files (with the random-init baseline when asked).
    Probe {
        /// Task.
        task: ProbeTask,
        /// Layers (residual stream after each).
        layers: Vec<usize>,
        /// Files read.
        files: usize,
        /// Tokens per file.
        max_tokens: usize,
        /// Seeds.
        seeds: usize,
        /// Also probe a randomly initialised model.
        #[serde(default)]
        random_init: bool,
    },
    /// The logit lens over CPython files.
    Lens {
        /// Files read.
        files: usize,
        /// Tokens per file.
        max_tokens: usize,
    },
    /// The FIND suite, scored per interpreter.
    Interpret {
        /// Numeric functions.
        numeric: usize,
        /// String functions.
        strings: usize,
        /// Interpreters.
        interpreters: Vec<InterpreterKind>,
    },
    /// HumanEval pass@k.
    HumanEval {
        /// Protocol.
        protocol: Protocol,
        /// Only the first N problems.
        limit: Option<usize>,
        /// Samples per problem.
        #[serde(default = "one")]
        samples: usize,
        /// 0 = greedy.
        #[serde(default)]
        temperature: f64,
        /// Most new tokens.
        max_tokens: usize,
    },
    /// Line completion on held-out CPython files.
    Lines {
        /// Files.
        files: usize,
        /// Context tokens.
        context: usize,
        /// Lines per file.
        lines: usize,
    },
    /// MINT repairs of mined failures beside the baselines (see [`crate::repair_study`]); with `sequential`, the
    /// MINT repairs in a row are saved as `patches.ron` for a later Export step.
    Repair(Box<crate::repair_study::RepairStudySpec>),
    /// The model with the last Repair step's patch set, written as a Hugging Face folder and/or a GGUF file.
    Export {
        /// Write `model-hf/`.
        hf: bool,
        /// Write `model.gguf` with this tensor type (`f32`, `f16`, `q8_0`), if given.
        gguf: Option<String>,
    },
    /// Perplexity on held-out CPython files.
    Perplexity {
        /// Files.
        files: usize,
        /// Tokens per file.
        tokens: usize,
    },
}

fn one() -> usize {
    1
}

impl Step {
    /// A short name for file names and the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Probe { .. } => "probe",
            Step::Lens { .. } => "lens",
            Step::Interpret { .. } => "interpret",
            Step::HumanEval { .. } => "humaneval",
            Step::Lines { .. } => "lines",
            Step::Perplexity { .. } => "perplexity",
            Step::Repair(_) => "repair",
            Step::Export { .. } => "export",
        }
    }
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Name (used in the run folder's name).
    pub name: String,
    /// Catalogue name or path of the model.
    pub model: String,
    /// `cpu`, `cuda`, `auto`.
    #[serde(default = "auto")]
    pub device: String,
    /// `f32`, `bf16`, `f16`.
    #[serde(default = "f32")]
    pub dtype: String,
    /// Seed for everything random.
    #[serde(default)]
    pub seed: u64,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

fn auto() -> String {
    "auto".into()
}

fn f32() -> String {
    "f32".into()
}

impl Spec {
    /// Parses RON text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec> {
        ron::from_str(text)
            .map_err(|e| ExperimentError::Spec(format!("{origin}:{}:{}: {}", e.position.line, e.position.col, e.code)))
    }

    /// Reads a spec file.
    pub fn load(path: &Path) -> Result<Spec> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ExperimentError::Spec(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_specs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let spec = Spec::load(&entry.unwrap().path()).unwrap();
            assert!(!spec.steps.is_empty());
            count += 1;
        }
        assert!(count >= 1);
    }

    #[test]
    fn malformed_specs_name_the_line_and_the_field() {
        let missing = "(\n  name: \"x\",\n  model: \"m\",\n)";
        let err = Spec::parse(missing, "a.ron").unwrap_err().to_string();
        assert!(err.contains("a.ron:") && err.contains("steps"), "{err}");
        let unknown = "(\n  name: \"x\",\n  model: \"m\",\n  stepz: [],\n)";
        let err = Spec::parse(unknown, "b.ron").unwrap_err().to_string();
        assert!(err.contains("b.ron:4:") && err.contains("stepz"), "{err}");
        let bad_step =
            "(\n  name: \"x\",\n  model: \"m\",\n  steps: [\n    Lens(files: \"many\", max_tokens: 3),\n  ],\n)";
        let err = Spec::parse(bad_step, "c.ron").unwrap_err().to_string();
        assert!(err.contains("c.ron:5:"), "{err}");
    }
}
