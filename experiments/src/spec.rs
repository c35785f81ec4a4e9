//! Experiment specs in RON (`experiments/specs/*.ron`): the model, device, dtype and seed, and a list of steps.
//! A malformed spec is an error that names the file, the line and column, and the field. Steps are written
//! `Lens(files: 4, max_tokens: 96)` (RON's `unwrap_variant_newtypes`) and optional values without `Some(..)`
//! (`implicit_some`); both extensions are on for every spec.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};
use crate::ops::dictionary::{EvalDictionarySettings, TrainDictionarySettings};
use crate::ops::export::ExportSettings;
use crate::ops::features::{FeaturePagesSettings, SteerFeaturesSettings};
use crate::ops::humaneval::HumanEvalSettings;
use crate::ops::interpret::InterpretSettings;
use crate::ops::lens::LensSettings;
use crate::ops::lines::LinesSettings;
use crate::ops::pages::PagesSettings;
use crate::ops::perplexity::PerplexitySettings;
use crate::ops::probe::ProbeSettings;
use crate::ops::repair::RepairSettings;
use crate::ops::repair_sequence::RepairSequenceSettings;
use crate::ops::repair_set::RepairSetSettings;
use crate::repair_study::RepairStudySpec;

/// One step of an experiment: an operation's settings (see [`crate::ops`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// Linear probes per layer with the full protocol, for any probing task.
    Probe(ProbeSettings),
    /// The logit lens over CPython files.
    Lens(LensSettings),
    /// The FIND suite, scored per interpreter.
    Interpret(InterpretSettings),
    /// Neuron pages: top examples, descriptions and simulation scores of chosen neurons.
    Pages(PagesSettings),
    /// HumanEval pass@k.
    HumanEval(HumanEvalSettings),
    /// Line completion on held-out CPython files.
    Lines(LinesSettings),
    /// Perplexity on held-out CPython files.
    Perplexity(PerplexitySettings),
    /// The repair study: mined failures, every method, one table; with `sequential`, the MINT repairs in a row
    /// saved as `patches.ron` for a later Export step.
    Repair(Box<RepairStudySpec>),
    /// Repairs of given cases (typed or a JSONL file) with one method, each on top of the earlier ones, saved as
    /// `patches.ron`.
    RepairCases(Box<RepairSettings>),
    /// A set of cases (given, a file, mined) repaired jointly or one at a time with the guard, as `patches.ron`.
    RepairSet(Box<RepairSetSettings>),
    /// The sequential-repair study: N = 1, 10, 25, 50 ... repairs by every method, measured at each N.
    RepairSequence(Box<RepairSequenceSettings>),
    /// A sparse autoencoder or transcoder trained on activations of the standard library's packages, saved in
    /// SAELens's format and measured on held-out files.
    TrainDictionary(Box<TrainDictionarySettings>),
    /// A dictionary in SAELens's format measured on held-out files (L0, explained variance, CE and KL scores).
    EvalDictionary(EvalDictionarySettings),
    /// Pages of a dictionary's features beside pages of neurons of its layer, with their simulation scores.
    FeaturePages(FeaturePagesSettings),
    /// Features' decoder directions added to prompts, against random directions of the same norm.
    SteerFeatures(SteerFeaturesSettings),
    /// The model with a patch set (by default the last earlier step's) as a Hugging Face folder and/or GGUF.
    Export(ExportSettings),
}

impl Step {
    /// A short name for file names and the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Probe(_) => "probe",
            Step::Lens(_) => "lens",
            Step::Interpret(_) => "interpret",
            Step::Pages(_) => "pages",
            Step::HumanEval(_) => "humaneval",
            Step::Lines(_) => "lines",
            Step::Perplexity(_) => "perplexity",
            Step::Repair(_) => "repair",
            Step::RepairCases(_) => "repair-cases",
            Step::RepairSet(_) => "repair-set",
            Step::RepairSequence(_) => "repair-sequence",
            Step::TrainDictionary(_) => "train-dictionary",
            Step::EvalDictionary(_) => "eval-dictionary",
            Step::FeaturePages(_) => "feature-pages",
            Step::SteerFeatures(_) => "steer-features",
            Step::Export(_) => "export",
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
    /// `f32`, `bf16`, `f16`, or for steps that only generate, packed weights with f32 activations: `bf16-weights`
    /// or `int8`.
    #[serde(default = "f32")]
    pub dtype: String,
    /// Seed for everything random.
    #[serde(default)]
    pub seed: u64,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// How `workbench run --slurm` submits it (the command line's flags override these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::slurm::SlurmSettings>,
}

/// RON as specs are written: newtype steps without a second pair of parentheses, options without `Some`.
pub fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// Compact RON with a space after each `,` and `:` outside strings.
fn spaced(compact: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(compact.len() * 2), false, false);
    for c in compact.chars() {
        out.push(c);
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ',' || c == ':' {
            out.push(' ');
        }
    }
    out
}

fn auto() -> String {
    "auto".into()
}

fn f32() -> String {
    "f32".into()
}

/// Parses RON text as specs are written (a whole spec, or one step's settings); `origin` names it in errors,
/// which give the line, the column and the field.
pub fn parse_ron<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> Result<T> {
    ron_options()
        .from_str(text)
        .map_err(|e| ExperimentError::Spec(format!("{origin}:{}:{}: {}", e.position.line, e.position.col, e.code)))
}

impl Spec {
    /// Parses RON text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec> {
        parse_ron(text, origin)
    }

    /// The spec as RON for a report: one line per step, every list on its line.
    pub fn compact_steps(&self) -> String {
        let mut out = format!(
            "(\n    name: {:?},\n    model: {:?},\n    device: {:?},\n    dtype: {:?},\n    seed: {},\n    steps: [\n",
            self.name, self.model, self.device, self.dtype, self.seed
        );
        for step in &self.steps {
            let line = ron_options().to_string(step).map_or_else(|e| format!("/* {e} */"), |text| spaced(&text));
            out.push_str(&format!("        {line},\n"));
        }
        out.push_str("    ],\n)\n");
        out
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
    fn the_compact_form_puts_each_step_on_one_line_and_parses_back() {
        let text = "(name: \"x\", model: \"m\", steps: [Probe(task: Syntax, layers: [0, 1, 2], files: 2, max_tokens: 8, seeds: 1), Export(hf: true, gguf: \"f16\", patches: \"a, b: c.ron\")])";
        let spec = Spec::parse(text, "x.ron").unwrap();
        let compact = spec.compact_steps();
        let steps: Vec<&str> = compact.lines().filter(|l| l.starts_with("        ")).collect();
        assert_eq!(steps.len(), 2, "{compact}");
        assert!(
            steps[0].contains("layers: [0, 1, 2]") && steps[0].starts_with("        Probe(task: Syntax"),
            "{compact}"
        );
        assert!(steps[1].contains("patches: \"a, b: c.ron\""), "strings are kept as they are: {compact}");
        assert_eq!(Spec::parse(&compact, "compact").unwrap(), spec);
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
