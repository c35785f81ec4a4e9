//! Weight changes that can be applied and reverted bit-exactly: one neuron's output vector (a column of its
//! layer's down projection), a whole parameter tensor (the baselines' layer and rank-one edits), or a slot of
//! the model's gated memory (gated repairs, which leave the weights alone).

use std::fmt;

use models::tch::{Device, Kind, Tensor};
use models::{Model, Neuron};
use serde::{Deserialize, Serialize};

use crate::error::{RepairError, Result};

/// What a change writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeTarget {
    /// A neuron's output vector, `[d_model]`.
    NeuronOutput(Neuron),
    /// A parameter by its name in `Architecture::parameters` (e.g. `blocks.3.mlp.out.weight`).
    Parameter(String),
    /// A slot of a layer's gated memory, `[key, value, threshold]` ([`models::gates`]).
    Gate {
        /// The layer (the gate reads and writes `blocks.{layer}.hook_resid_post`).
        layer: usize,
        /// The slot.
        slot: usize,
    },
}

impl fmt::Display for ChangeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeTarget::NeuronOutput(n) => write!(f, "neuron L{}.{} output", n.layer, n.index),
            ChangeTarget::Parameter(name) => write!(f, "{name}"),
            ChangeTarget::Gate { layer, slot } => write!(f, "gate {slot} at blocks.{layer}.hook_resid_post"),
        }
    }
}

impl ChangeTarget {
    /// The neuron this change edits, if it edits one.
    pub fn neuron(&self) -> Option<Neuron> {
        match self {
            ChangeTarget::NeuronOutput(n) => Some(*n),
            ChangeTarget::Parameter(_) | ChangeTarget::Gate { .. } => None,
        }
    }

    /// How many MLP neurons the change touches (a whole MLP parameter touches all of its layer's; a gate is one
    /// new unit).
    pub fn neurons_touched(&self, model: &Model) -> usize {
        match self {
            ChangeTarget::NeuronOutput(_) | ChangeTarget::Gate { .. } => 1,
            ChangeTarget::Parameter(name) if name.contains(".mlp.") => model.shape().d_mlp,
            ChangeTarget::Parameter(_) => 0,
        }
    }

    /// The live tensor this target names (sharing storage with the model); gates have none.
    fn live(&self, model: &Model) -> Result<Tensor> {
        match self {
            ChangeTarget::Gate { .. } => Err(RepairError::Mismatch(format!("{self} is not a weight"))),
            ChangeTarget::NeuronOutput(n) => {
                model.check_neuron(*n)?;
                Ok(model.mlp_output(n.layer).1.select(1, n.index as i64))
            }
            ChangeTarget::Parameter(name) => model
                .parameters()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| RepairError::Mismatch(format!("the model has no parameter {name}"))),
        }
    }

    /// The current values as an f32 CPU tensor (exact for f32, bf16 and f16 models).
    pub fn read(&self, model: &Model) -> Result<Tensor> {
        if let ChangeTarget::Gate { layer, slot } = self {
            return Ok(model.gates.read(*layer, *slot, model.shape().d_model)?);
        }
        Ok(self.live(model)?.to_kind(Kind::Float).to_device(Device::Cpu).copy())
    }

    /// Writes `values` (any float kind, any device) into the model.
    pub fn write(&self, model: &Model, values: &Tensor) -> Result<()> {
        if let ChangeTarget::Gate { layer, slot } = self {
            if *layer >= model.shape().n_layers || values.size() != [2 * model.shape().d_model as i64 + 1] {
                return Err(RepairError::Mismatch(format!("{self}: values {:?} do not fit the model", values.size())));
            }
            return Ok(model.gates.write(*layer, *slot, values)?);
        }
        model.check_editable()?;
        let mut live = self.live(model)?;
        if live.size() != values.size() {
            return Err(RepairError::Mismatch(format!(
                "{self} has shape {:?}, the values {:?}",
                live.size(),
                values.size()
            )));
        }
        let _guard = models::tch::no_grad_guard();
        live.copy_(&values.to_kind(live.kind()).to_device(live.device()));
        Ok(())
    }
}

/// One applied change: its target with the values before and after (f32, CPU).
#[derive(Debug)]
pub struct WeightChange {
    /// What changed.
    pub target: ChangeTarget,
    /// The values before.
    pub old: Tensor,
    /// The values after.
    pub new: Tensor,
}

impl WeightChange {
    /// Writes the new values.
    pub fn apply(&self, model: &Model) -> Result<()> {
        self.target.write(model, &self.new)
    }

    /// Writes the old values back.
    pub fn revert(&self, model: &Model) -> Result<()> {
        self.target.write(model, &self.old)
    }

    /// Whether the model holds exactly `values` at the target now.
    pub fn holds(&self, model: &Model, values: &Tensor) -> Result<bool> {
        Ok(self.target.read(model)?.equal(values))
    }

    /// A copy (tensors copied).
    pub fn duplicate(&self) -> Self {
        WeightChange { target: self.target.clone(), old: self.old.copy(), new: self.new.copy() }
    }
}

/// A change along a line: the target holds `base + t · direction` for a scale `t` that a search chooses.
pub struct LineEdit {
    /// Where.
    pub target: ChangeTarget,
    /// The values at t = 0 (f32, CPU).
    pub base: Tensor,
    /// The direction (same shape as `base`).
    pub direction: Tensor,
}

impl LineEdit {
    /// An edit of `target` along `direction` from its current values.
    pub fn new(model: &Model, target: ChangeTarget, direction: Tensor) -> Result<Self> {
        let base = target.read(model)?;
        if base.size() != direction.size() {
            return Err(RepairError::Mismatch(format!(
                "{target}: direction {:?} vs {:?}",
                direction.size(),
                base.size()
            )));
        }
        Ok(LineEdit { target, base, direction: direction.to_kind(Kind::Float).to_device(Device::Cpu) })
    }

    /// Writes `base + t · direction` into the model.
    pub fn set(&self, model: &Model, t: f64) -> Result<()> {
        self.target.write(model, &(&self.base + &self.direction * t))
    }

    /// The change as it stands in the model now.
    pub fn finish(self, model: &Model) -> Result<WeightChange> {
        let new = self.target.read(model)?;
        Ok(WeightChange { target: self.target, old: self.base, new })
    }
}

/// Reverts `changes` in reverse order, so that several changes of one target come back bit-exactly.
pub fn revert_all(model: &Model, changes: &[WeightChange]) -> Result<()> {
    changes.iter().rev().try_for_each(|c| c.revert(model))
}
