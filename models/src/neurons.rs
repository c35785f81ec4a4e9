//! Reading and writing the weights of single MLP neurons, and bit-exact snapshots of the whole model.
//!
//! Neuron (l, i) is feature i of `blocks.{l}.mlp.hook_post`: its input weights are row i of the up (and
//! gate) projection, its output weights column i of the down projection.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::model::Model;

/// The address of one MLP neuron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Neuron {
    /// Block index.
    pub layer: usize,
    /// Index within `mlp.hook_post`.
    pub index: usize,
}

/// A neuron's weights as f32 vectors (exact for f32, bf16 and f16 models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronWeights {
    /// Input rows by projection name (`...gate_proj.weight`, `...up_proj.weight`), each `[d_model]`.
    pub inputs: Vec<(String, Vec<f32>)>,
    /// Output column of the down projection, `[d_model]`.
    pub output: Vec<f32>,
}

/// Copies of every parameter, to restore the model bit-exactly.
pub struct WeightSnapshot {
    tensors: Vec<(String, Tensor)>,
}

impl Model {
    /// Checks that `neuron` exists.
    pub fn check_neuron(&self, neuron: Neuron) -> Result<()> {
        let shape = self.shape();
        if neuron.layer >= shape.n_layers || neuron.index >= shape.d_mlp {
            return Err(ModelError::NoSuchNeuron {
                layer: neuron.layer,
                index: neuron.index,
                layers: shape.n_layers,
                neurons: shape.d_mlp,
            });
        }
        Ok(())
    }

    /// The current weights of `neuron`.
    pub fn neuron_weights(&self, neuron: Neuron) -> Result<NeuronWeights> {
        self.check_neuron(neuron)?;
        let mlp = self.arch().mlp(neuron.layer);
        let i = neuron.index as i64;
        let inputs =
            mlp.inputs.iter().map(|(name, w)| Ok((name.clone(), to_vec(&w.get(i))?))).collect::<Result<_>>()?;
        Ok(NeuronWeights { inputs, output: to_vec(&mlp.output.1.select(1, i))? })
    }

    /// Overwrites `neuron`'s output column.
    pub fn set_neuron_output(&self, neuron: Neuron, output: &[f32]) -> Result<()> {
        self.check_neuron(neuron)?;
        self.check_editable()?;
        let mut column = self.arch().mlp(neuron.layer).output.1.select(1, neuron.index as i64);
        write_vector(&mut column, output, "output column")
    }

    /// Overwrites `neuron`'s input rows (one vector per input projection, in the order of
    /// [`NeuronWeights::inputs`]).
    pub fn set_neuron_inputs(&self, neuron: Neuron, inputs: &[Vec<f32>]) -> Result<()> {
        self.check_neuron(neuron)?;
        self.check_editable()?;
        let mlp = self.arch().mlp(neuron.layer);
        if inputs.len() != mlp.inputs.len() {
            return Err(ModelError::InvalidInput(format!(
                "neuron inputs: {} vectors given, the MLP has {} input projections",
                inputs.len(),
                mlp.inputs.len()
            )));
        }
        for ((_, w), values) in mlp.inputs.iter().zip(inputs) {
            write_vector(&mut w.get(neuron.index as i64), values, "input row")?;
        }
        Ok(())
    }

    /// Writes all of `weights` back (e.g. to revert a patch).
    pub fn set_neuron_weights(&self, neuron: Neuron, weights: &NeuronWeights) -> Result<()> {
        let inputs: Vec<Vec<f32>> = weights.inputs.iter().map(|(_, v)| v.clone()).collect();
        self.set_neuron_inputs(neuron, &inputs)?;
        self.set_neuron_output(neuron, &weights.output)
    }

    /// Copies every parameter.
    pub fn snapshot(&self) -> WeightSnapshot {
        let _guard = tch::no_grad_guard();
        WeightSnapshot { tensors: self.arch().parameters().into_iter().map(|(name, t)| (name, t.copy())).collect() }
    }

    /// Replaces every weight by a fresh random initialisation of the same architecture (matrices from
    /// N(0, 0.02), norm scales 1, biases 0): the untrained baseline of the probing protocol.
    pub fn reinitialize(&self, seed: u64) -> Result<()> {
        self.check_editable()?;
        let _guard = tch::no_grad_guard();
        tch::manual_seed(seed as i64);
        for (name, mut t) in self.arch().parameters() {
            if name.ends_with(".bias") {
                let _ = t.zero_();
            } else if t.dim() == 1 {
                let _ = t.fill_(1.0);
            } else {
                let _ = t.normal_(0.0, 0.02);
            }
        }
        Ok(())
    }

    /// Writes a snapshot back into the model, bit for bit.
    pub fn restore(&self, snapshot: &WeightSnapshot) -> Result<()> {
        self.check_editable()?;
        let _guard = tch::no_grad_guard();
        let params = self.arch().parameters();
        if params.len() != snapshot.tensors.len() {
            return Err(ModelError::InvalidInput("the snapshot was taken from another model".into()));
        }
        for ((name, mut target), (snap_name, saved)) in params.into_iter().zip(&snapshot.tensors) {
            if &name != snap_name || target.size() != saved.size() {
                return Err(ModelError::InvalidInput(format!("the snapshot does not match parameter {name}")));
            }
            target.copy_(saved);
        }
        Ok(())
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::try_from(t.to_kind(Kind::Float).to_device(tch::Device::Cpu))?)
}

fn write_vector(target: &mut Tensor, values: &[f32], what: &str) -> Result<()> {
    if target.size() != [values.len() as i64] {
        return Err(ModelError::InvalidInput(format!(
            "the {what} has {} values, expected {:?}",
            values.len(),
            target.size()
        )));
    }
    let _guard = tch::no_grad_guard();
    target.copy_(&Tensor::from_slice(values).to_kind(target.kind()).to_device(target.device()));
    Ok(())
}
