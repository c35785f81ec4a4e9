//! Patch sets: the repairs made to a model, saved as RON (model identity and weight hash, what changed, the
//! cases, scores and metrics) with the old and new values in a side safetensors file. A set applies and reverts
//! bit-exactly, refusing a model whose weights are not the ones it was made on.

use std::path::{Path, PathBuf};

use models::files::write_atomically;
use models::tch::{Device, Kind, Tensor};
use models::Model;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::case::RepairCase;
use crate::change::{ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::measure::RepairMetrics;
use crate::method::{Method, Repair, StepLog};

/// Which model a patch set belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// The name or path the model was loaded from.
    pub name: String,
    /// Its architecture.
    pub architecture: String,
    /// Blocks.
    pub n_layers: usize,
    /// Residual width.
    pub d_model: usize,
    /// MLP neurons per layer.
    pub d_mlp: usize,
    /// SHA-256 of every parameter (names and f32 values) before the first patch.
    pub weights_sha256: String,
}

impl ModelIdentity {
    /// The identity of `model` as it is now.
    pub fn of(model: &Model) -> Result<Self> {
        let shape = model.shape();
        Ok(ModelIdentity {
            name: model.source.spec.clone(),
            architecture: shape.architecture.clone(),
            n_layers: shape.n_layers,
            d_model: shape.d_model,
            d_mlp: shape.d_mlp,
            weights_sha256: weights_sha256(model)?,
        })
    }

    fn check_shape(&self, model: &Model) -> Result<()> {
        let shape = model.shape();
        let found = (shape.architecture.as_str(), shape.n_layers, shape.d_model, shape.d_mlp);
        if found != (self.architecture.as_str(), self.n_layers, self.d_model, self.d_mlp) {
            return Err(RepairError::Mismatch(format!(
                "made for {} ({} with {} layers, d_model {}, d_mlp {}), the model is {} with {:?}",
                self.name, self.architecture, self.n_layers, self.d_model, self.d_mlp, shape.architecture, found
            )));
        }
        Ok(())
    }
}

/// SHA-256 over every parameter's name and f32 little-endian values.
pub fn weights_sha256(model: &Model) -> Result<String> {
    let mut hasher = Sha256::new();
    for (name, tensor) in model.parameters() {
        hasher.update(name.as_bytes());
        hasher.update(f32_bytes(&tensor)?);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn f32_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let flat = tensor.to_kind(Kind::Float).to_device(Device::Cpu).contiguous().flatten(0, -1);
    let values: Vec<f32> = Vec::try_from(&flat)?;
    Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// One repair in a set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatchRecord {
    /// The method that made it.
    pub method: Method,
    /// The case it repaired, if it came from one.
    pub case: Option<RepairCase>,
    /// The cases a set repair made right together (then `case` is `None`).
    #[serde(default)]
    pub cases: Vec<RepairCase>,
    /// What it changed, in order.
    pub targets: Vec<ChangeTarget>,
    /// What targeting found and the edits made, per repaired token.
    pub steps: Vec<StepLog>,
    /// Its measurements.
    pub metrics: Option<RepairMetrics>,
}

/// What the RON file holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    format: u32,
    tensors: String,
    model: ModelIdentity,
    patches: Vec<PatchRecord>,
}

/// Repairs of one model, in the order made.
pub struct PatchSet {
    /// The model they were made on.
    pub model: ModelIdentity,
    /// The repairs.
    pub patches: Vec<PatchRecord>,
    changes: Vec<Vec<WeightChange>>,
}

impl PatchSet {
    /// An empty set for the model `identity` describes.
    pub fn new(model: ModelIdentity) -> Self {
        PatchSet { model, patches: Vec::new(), changes: Vec::new() }
    }

    /// Adds a repair (as made, applied to the model after the earlier ones).
    pub fn push(&mut self, repair: &Repair, case: Option<RepairCase>, metrics: Option<RepairMetrics>) {
        self.patches.push(PatchRecord {
            method: repair.method,
            case,
            cases: Vec::new(),
            targets: repair.changes.iter().map(|c| c.target.clone()).collect(),
            steps: repair.steps.clone(),
            metrics,
        });
        self.changes.push(repair.changes.iter().map(WeightChange::duplicate).collect());
    }

    /// Adds a set repair (as made, applied after the earlier ones) with the cases it made right.
    pub fn push_set(&mut self, repair: &Repair, cases: Vec<RepairCase>) {
        self.push(repair, None, None);
        if let Some(record) = self.patches.last_mut() {
            record.cases = cases;
        }
    }

    /// Every case the set's repairs made right, in the order repaired.
    pub fn cases(&self) -> impl Iterator<Item = &RepairCase> {
        self.patches.iter().flat_map(|p| p.case.iter().chain(&p.cases))
    }

    /// Every change in the order made.
    pub fn changes(&self) -> impl Iterator<Item = &WeightChange> {
        self.changes.iter().flatten()
    }

    /// Applies every change in order, after checking that the model holds
    /// each change's old values bit for bit (on a mismatch the changes made so far are undone).
    pub fn apply(&self, model: &Model) -> Result<()> {
        self.model.check_shape(model)?;
        let all: Vec<&WeightChange> = self.changes().collect();
        for (done, change) in all.iter().enumerate() {
            let fits = change.holds(model, &change.old)?;
            if !fits {
                for earlier in all[..done].iter().rev() {
                    earlier.revert(model)?;
                }
                return Err(RepairError::Mismatch(format!(
                    "{} does not hold the values the patch was made on (weights {}); was the model already patched, or is it another model?",
                    change.target, self.model.weights_sha256
                )));
            }
            change.apply(model)?;
        }
        Ok(())
    }

    /// Reverts every change in reverse order, after checking that the model holds the patched values.
    pub fn revert(&self, model: &Model) -> Result<()> {
        revert_changes(model, self.changes().collect())
    }

    /// Reverts the last repair (it must be applied, as the last) and removes it from the set.
    pub fn revert_last(&mut self, model: &Model) -> Result<Option<PatchRecord>> {
        let Some(last) = self.changes.last() else { return Ok(None) };
        revert_changes(model, last.iter().collect())?;
        self.changes.pop();
        Ok(self.patches.pop())
    }

    /// Reverts the repairs from the `at`-th on (the last first; they must be applied) and moves them, in order, into
    /// a set of their own, which [`PatchSet::append_applied`] puts back.
    pub fn split_off(&mut self, model: &Model, at: usize) -> Result<PatchSet> {
        let at = at.min(self.patches.len());
        revert_changes(model, self.changes[at..].iter().flatten().collect())?;
        Ok(PatchSet {
            model: self.model.clone(),
            patches: self.patches.split_off(at),
            changes: self.changes.split_off(at),
        })
    }

    /// Applies `later` (made after this set's repairs; see [`PatchSet::apply`]) and adds its repairs after these.
    pub fn append_applied(&mut self, model: &Model, later: PatchSet) -> Result<()> {
        later.apply(model)?;
        self.patches.extend(later.patches);
        self.changes.extend(later.changes);
        Ok(())
    }

    /// The side file of a RON path: `<name>.safetensors` beside it.
    pub fn tensors_path(path: &Path) -> PathBuf {
        path.with_extension("safetensors")
    }

    /// Saves the set as RON at `path` and its values beside it; both written atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors_path = Self::tensors_path(path);
        let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .changes
            .iter()
            .enumerate()
            .flat_map(|(k, changes)| changes.iter().enumerate().map(move |(j, c)| (k, j, c)))
            .flat_map(|(k, j, c)| [(format!("{k}.{j}.old"), &c.old), (format!("{k}.{j}.new"), &c.new)])
            .map(|(key, t)| Ok((key, t.size().iter().map(|&d| d as usize).collect(), f32_bytes(t)?)))
            .collect::<Result<_>>()?;
        let views: Vec<(String, TensorView)> = encoded
            .iter()
            .map(|(key, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (key.clone(), v))
                    .map_err(|e| RepairError::file(&tensors_path, e))
            })
            .collect::<Result<_>>()?;
        let bytes = safetensors::serialize(views, None).map_err(|e| RepairError::file(&tensors_path, e))?;
        write_atomically(&tensors_path, &bytes)?;
        let stored = Stored {
            format: 1,
            tensors: tensors_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            model: self.model.clone(),
            patches: self.patches.clone(),
        };
        let text = ron::ser::to_string_pretty(&stored, ron::ser::PrettyConfig::default())
            .map_err(|e| RepairError::file(path, e))?;
        write_atomically(path, text.as_bytes())?;
        Ok(())
    }

    /// Loads a set saved by [`PatchSet::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| RepairError::file(path, e))?;
        Self::parse(&text, path, |tensors| std::fs::read(tensors).map_err(|e| RepairError::file(tensors, e)))
    }

    /// A patch set from the text of its RON file (`path` names it in errors, and its folder holds the side file),
    /// with the side file of tensors read by `read` from the path the text names. The side file must be a plain
    /// file name: a patch set cannot send the reader outside its folder.
    pub fn parse(text: &str, path: &Path, read: impl FnOnce(&Path) -> Result<Vec<u8>>) -> Result<Self> {
        let stored: Stored =
            ron::from_str(text).map_err(|e| RepairError::file(path, format!("not a patch set: {e}")))?;
        if Path::new(&stored.tensors).file_name().is_none_or(|f| f != stored.tensors.as_str()) {
            let why = format!("its tensors file {:?} is not a file name in the patch set's folder", stored.tensors);
            return Err(RepairError::file(path, why));
        }
        let tensors_path = path.parent().unwrap_or(Path::new(".")).join(&stored.tensors);
        let bytes = read(&tensors_path)?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| RepairError::file(&tensors_path, e))?;
        let read = |key: String| -> Result<Tensor> {
            let view = file.tensor(&key).map_err(|e| RepairError::file(&tensors_path, format!("{key}: {e}")))?;
            if view.dtype() != Dtype::F32 {
                return Err(RepairError::file(&tensors_path, format!("{key} is not f32")));
            }
            let values: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            Ok(Tensor::from_slice(&values).view(shape.as_slice()))
        };
        let changes = stored
            .patches
            .iter()
            .enumerate()
            .map(|(k, patch)| {
                patch
                    .targets
                    .iter()
                    .enumerate()
                    .map(|(j, target)| {
                        Ok(WeightChange {
                            target: target.clone(),
                            old: read(format!("{k}.{j}.old"))?,
                            new: read(format!("{k}.{j}.new"))?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        Ok(PatchSet { model: stored.model, patches: stored.patches, changes })
    }
}

/// Reverts `changes` in reverse order, after checking that the model holds each one's patched values.
fn revert_changes(model: &Model, changes: Vec<&WeightChange>) -> Result<()> {
    for change in changes.into_iter().rev() {
        if !change.holds(model, &change.new)? {
            return Err(RepairError::Mismatch(format!(
                "{} does not hold the patched values; is the patch applied?",
                change.target
            )));
        }
        change.revert(model)?;
    }
    Ok(())
}
