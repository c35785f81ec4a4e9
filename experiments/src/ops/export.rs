//! The model, with a patch set applied, written as a Hugging Face folder and/or a GGUF file; the patch set is
//! reverted afterwards.

use std::path::{Path, PathBuf};

use models::Model;
use repair::PatchSet;
use serde::{Deserialize, Serialize};

use super::{write_json, Context, Operation, Report};
use crate::error::{ExperimentError, Result};

/// Which patches, which formats. In a spec, `patches` defaults to the last earlier step that saved a patch set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSettings {
    /// The patch set to apply before writing (none: the model as loaded).
    #[serde(default)]
    pub patches: Option<PathBuf>,
    /// Write `model-hf/`.
    pub hf: bool,
    /// Write `model.gguf` with this tensor type (`f32`, `f16`, `q8_0`), if given.
    #[serde(default)]
    pub gguf: Option<String>,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings { patches: None, hf: true, gguf: None }
    }
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// Repairs in the applied patch set.
    pub repairs: usize,
    /// Neuron edits among their changes.
    pub neuron_edits: usize,
    /// The files and folders written, relative to the output folder.
    pub written: Vec<String>,
}

/// Writes `model` with `patches` applied as a Hugging Face folder at `hf` and/or a GGUF file at `gguf` (with its
/// tensor type); the patches are reverted afterwards, whatever happened.
pub fn write_model(
    model: &Model,
    patches: Option<&PatchSet>,
    hf: Option<&Path>,
    gguf: Option<(&Path, &str)>,
) -> Result<()> {
    if let Some(patches) = patches {
        patches.apply(model)?;
    }
    let written = (|| -> Result<()> {
        if let Some(folder) = hf {
            models::writers::save_hf_folder(model, folder)?;
        }
        if let Some((path, kind)) = gguf {
            models::writers::save_gguf(model, path, models::writers::parse_export_type(kind)?)?;
        }
        Ok(())
    })();
    if let Some(patches) = patches {
        patches.revert(model)?;
    }
    written
}

impl Operation for ExportSettings {
    type Report = ExportReport;

    fn run(&self, model: &Model, context: &Context) -> Result<ExportReport> {
        if !self.hf && self.gguf.is_none() {
            return Err(ExperimentError::Spec("an export needs hf: true and/or a gguf type".into()));
        }
        let patches = self.patches.as_deref().map(PatchSet::load).transpose()?;
        let folder = context.out.join("model-hf");
        if self.hf && folder.exists() {
            std::fs::remove_dir_all(&folder).map_err(models::files::at(&folder))?;
        }
        let gguf = context.out.join("model.gguf");
        write_model(
            model,
            patches.as_ref(),
            self.hf.then_some(folder.as_path()),
            self.gguf.as_deref().map(|kind| (gguf.as_path(), kind)),
        )?;
        let mut written = Vec::new();
        if self.hf {
            written.push("model-hf".to_string());
        }
        if self.gguf.is_some() {
            written.push("model.gguf".to_string());
        }
        Ok(ExportReport {
            repairs: patches.as_ref().map_or(0, |p| p.patches.len()),
            neuron_edits: patches.as_ref().map_or(0, |p| p.changes().filter(|c| c.target.neuron().is_some()).count()),
            written,
        })
    }
}

impl Report for ExportReport {
    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} repairs ({} neuron edits) exported as {}",
            self.repairs,
            self.neuron_edits,
            self.written.join(" and ")
        )]
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        Ok(self.written.iter().cloned().chain([String::from("results.json")]).collect())
    }
}
