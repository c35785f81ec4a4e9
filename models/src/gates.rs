//! Gated memory: repairs that leave every weight as it is (GRACE in neuron terms: a new unit that fires only near
//! its case's key). Layer l's table holds slots of (key, value, threshold); in every forward pass, at
//! `blocks.{l}.hook_resid_post`, each position whose residual has cosine similarity ≥ threshold with a slot's key
//! gets the slot's value added. A slot whose threshold is above 1 is empty and never fires. Slots are written and
//! read as rows `[key (d_model), value (d_model), threshold]`, so a repair edits them as it edits a weight column:
//! applied and reverted bit for bit.
//!
//! A gate on cosine similarity is not what any MLP neuron computes (a SwiGLU or GELU unit has no threshold and no
//! bias to make one), so a model with an active slot cannot be exported as plain weights: the writers refuse it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::hooks::{Edit, HookPoint, Intervention, Positions};

/// The threshold of an empty slot (cosine similarity never exceeds 1).
pub const EMPTY: f64 = 2.0;

/// Every layer's slots, `[slots, 2 d_model + 1]` f32 on the CPU.
#[derive(Default)]
pub struct Gates {
    tables: Mutex<BTreeMap<usize, Tensor>>,
}

impl Gates {
    fn tables(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<usize, Tensor>>> {
        self.tables.lock().map_err(|_| ModelError::InvalidInput("the gated memory is poisoned".into()))
    }

    /// Slot `slot` of layer `layer` as a row `[2 d_model + 1]` (an empty row when never written).
    pub fn read(&self, layer: usize, slot: usize, d_model: usize) -> Result<Tensor> {
        let tables = self.tables()?;
        Ok(match tables.get(&layer) {
            Some(table) if (slot as i64) < table.size()[0] => table.get(slot as i64).copy(),
            _ => empty_row(d_model),
        })
    }

    /// Writes slot `slot` of layer `layer` (the table grows with empty slots as needed).
    pub fn write(&self, layer: usize, slot: usize, row: &Tensor) -> Result<()> {
        let width = row.size();
        if width.len() != 1 || width[0] % 2 != 1 {
            return Err(ModelError::InvalidInput(format!("a gate slot is [2 d_model + 1], not {width:?}")));
        }
        let d_model = (width[0] as usize - 1) / 2;
        let row = row.to_kind(Kind::Float).to_device(Device::Cpu);
        let mut tables = self.tables()?;
        let table = tables.entry(layer).or_insert_with(|| Tensor::zeros([0, width[0]], (Kind::Float, Device::Cpu)));
        if table.size()[1] != width[0] {
            return Err(ModelError::InvalidInput(format!(
                "layer {layer}'s gate slots are {} wide, the row {}",
                table.size()[1],
                width[0]
            )));
        }
        let rows = table.size()[0];
        if slot as i64 >= rows {
            let missing = slot as i64 + 1 - rows;
            let empty = empty_row(d_model).unsqueeze(0).expand([missing, width[0]], false);
            *table = Tensor::cat(&[table.shallow_clone(), empty], 0);
        }
        let _guard = tch::no_grad_guard();
        table.get(slot as i64).copy_(&row);
        Ok(())
    }

    /// The first slot of `layer` that is empty (where a new gate goes).
    pub fn free_slot(&self, layer: usize) -> Result<usize> {
        let tables = self.tables()?;
        let Some(table) = tables.get(&layer) else { return Ok(0) };
        let thresholds: Vec<f32> = Vec::try_from(table.select(1, table.size()[1] - 1))?;
        Ok(thresholds.iter().position(|&t| f64::from(t) > 1.0).unwrap_or(thresholds.len()))
    }

    /// How many slots fire for some input (threshold at most 1), over all layers.
    pub fn active(&self) -> Result<usize> {
        let tables = self.tables()?;
        let mut count = 0;
        for table in tables.values() {
            count += Vec::<f32>::try_from(table.select(1, table.size()[1] - 1))?
                .iter()
                .filter(|&&t| f64::from(t) <= 1.0)
                .count();
        }
        Ok(count)
    }

    /// The interventions that run the active slots, one per layer that has any, for `device` and `kind`.
    pub fn interventions(&self, device: Device, kind: Kind) -> Result<Vec<Intervention>> {
        let tables = self.tables()?;
        let mut found = Vec::new();
        for (&layer, table) in tables.iter() {
            let Some(rows) = active_rows(table) else { continue };
            let d = (rows.size()[1] - 1) / 2;
            let memory = GatedMemory {
                keys: unit_keys(&rows).to_device(device),
                values: rows.narrow(1, d, d).to_device(device).to_kind(kind),
                thresholds: rows.select(1, 2 * d).to_device(device),
            };
            found.push(Intervention {
                point: HookPoint::ResidPost(layer),
                positions: Positions::All,
                edit: Edit::Gated(memory),
            });
        }
        Ok(found)
    }

    /// The largest cosine similarity of `key` (`[d_model]`, on the CPU) with the keys of `layer`'s active slots,
    /// none when it has none: how close a new unit's key lies to those already there.
    pub fn nearest_key(&self, layer: usize, key: &Tensor) -> Result<Option<f64>> {
        let tables = self.tables()?;
        let Some(keys) = tables.get(&layer).and_then(active_rows).map(|rows| unit_keys(&rows)) else {
            return Ok(None);
        };
        let direction = unit_length(&key.to_kind(Kind::Float).unsqueeze(0)).squeeze_dim(0);
        Ok(Some(keys.matmul(&direction).max().double_value(&[])))
    }

    /// An error saying why the model cannot be exported, when a slot is active.
    pub fn check_exportable(&self) -> Result<()> {
        match self.active()? {
            0 => Ok(()),
            n => Err(ModelError::InvalidInput(format!(
                "the model has {n} gated repairs: a gate that fires on cosine similarity above a threshold is not a \
                 weight of any layer, so no plain checkpoint computes it exactly; export without them (revert the \
                 gated patches) or keep using them in the workbench"
            ))),
        }
    }
}

/// Active slots of one layer as a hook edit: unit keys `[m, d]`, values `[m, d]`, thresholds `[m]`.
#[derive(Debug)]
pub struct GatedMemory {
    /// Unit-length keys.
    pub keys: Tensor,
    /// Values added where a key fires.
    pub values: Tensor,
    /// Cosine similarity at which each key fires.
    pub thresholds: Tensor,
}

impl GatedMemory {
    /// `x` `[.., d]` with every firing slot's value added.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let xf = x.to_kind(Kind::Float);
        let unit = &xf / xf.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12);
        let cosine = unit.matmul(&self.keys.tr());
        let fire = cosine.ge_tensor(&self.thresholds).to_kind(Kind::Float);
        x + fire.matmul(&self.values.to_kind(Kind::Float)).to_kind(x.kind())
    }
}

/// The rows of `table`'s active slots (threshold at most 1), none when no slot is active.
fn active_rows(table: &Tensor) -> Option<Tensor> {
    let thresholds = table.select(1, table.size()[1] - 1);
    let active = thresholds.le(1.0).nonzero().squeeze_dim(1);
    (active.numel() > 0).then(|| table.index_select(0, &active))
}

/// The keys of gate rows `[m, 2d + 1]` at unit length, `[m, d]`.
fn unit_keys(rows: &Tensor) -> Tensor {
    unit_length(&rows.narrow(1, 0, (rows.size()[1] - 1) / 2))
}

/// Each row of `vectors` `[m, d]` scaled to unit length (a zero row stays zero).
fn unit_length(vectors: &Tensor) -> Tensor {
    vectors / vectors.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12)
}

fn empty_row(d_model: usize) -> Tensor {
    let row = Tensor::zeros([2 * d_model as i64 + 1], (Kind::Float, Device::Cpu));
    let _ = row.get(2 * d_model as i64).fill_(EMPTY);
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &[f32], value: &[f32], threshold: f32) -> Tensor {
        Tensor::from_slice(&[key, value, &[threshold]].concat())
    }

    #[test]
    fn a_slot_fires_only_above_its_threshold_and_an_empty_one_never() {
        let gates = Gates::default();
        gates.write(0, 1, &row(&[1., 0.], &[10., 20.], 0.9)).unwrap();
        assert_eq!(gates.active().unwrap(), 1, "slot 0 was filled empty");
        assert_eq!(gates.free_slot(0).unwrap(), 0);
        let nearest = gates.nearest_key(0, &Tensor::from_slice(&[3f32, 1.])).unwrap().unwrap();
        assert!((nearest - 3.0 / 10f64.sqrt()).abs() < 1e-6, "cos((3, 1), (1, 0)) = 0.949, got {nearest}");
        let interventions = gates.interventions(Device::Cpu, Kind::Float).unwrap();
        let Edit::Gated(memory) = &interventions[0].edit else { panic!("not a gate") };
        // cos((3, 1), (1, 0)) = 0.949 fires, cos((1, 1), (1, 0)) = 0.707 does not, nor does (-1, 0).
        let x = Tensor::from_slice(&[3f32, 1., 1., 1., -1., 0.]).view([1, 3, 2]);
        let y = Vec::<f32>::try_from(memory.apply(&x).flatten(0, -1)).unwrap();
        assert_eq!(y, [13., 21., 1., 1., -1., 0.]);
        gates.write(0, 1, &empty_row(2)).unwrap();
        assert_eq!(gates.active().unwrap(), 0);
        assert!(gates.interventions(Device::Cpu, Kind::Float).unwrap().is_empty());
        assert!(gates.nearest_key(0, &Tensor::from_slice(&[3f32, 1.])).unwrap().is_none());
        assert!(gates.write(0, 0, &Tensor::zeros([4], (Kind::Float, Device::Cpu))).is_err(), "even width");
    }
}
