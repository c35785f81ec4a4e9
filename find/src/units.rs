//! What pages and FIND functions describe: a layer's neurons (`mlp.hook_post`), or the features of a sparse
//! dictionary (which the `probes` crate trains; an adapter in `experiments` makes them [`Units`]).

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Model};
use serde::{Deserialize, Serialize};

use crate::error::{FindError, Result};
use crate::neurons::record_point;

/// What kind of unit a page is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UnitKind {
    /// An MLP neuron.
    #[default]
    Neuron,
    /// A sparse dictionary's feature.
    Feature,
}

impl UnitKind {
    /// "Neuron" or "Feature".
    pub fn title(self) -> &'static str {
        match self {
            UnitKind::Neuron => "Neuron",
            UnitKind::Feature => "Feature",
        }
    }

    /// The letter between layer and index in file names: `L3N7`, `L3F7`.
    pub fn letter(self) -> char {
        match self {
            UnitKind::Neuron => 'N',
            UnitKind::Feature => 'F',
        }
    }
}

/// A family of units of one layer whose activations can be read per token.
pub trait Units {
    /// Neurons or features.
    fn kind(&self) -> UnitKind;
    /// The layer they belong to.
    fn layer(&self) -> usize;
    /// How many there are.
    fn count(&self, model: &Model) -> usize;
    /// Their activations `[seq, count]` (f32, on the CPU) over one run of `ids`.
    fn activations(&self, model: &Model, ids: &[u32]) -> Result<Tensor>;

    /// Checks that unit `index` exists.
    fn check(&self, model: &Model, index: usize) -> Result<()> {
        let count = self.count(model);
        if self.layer() >= model.shape().n_layers || index >= count {
            return Err(FindError::InvalidInput(format!(
                "{} {}.{index} does not exist: {} layers, {count} {}s per layer",
                self.kind().title().to_lowercase(),
                self.layer(),
                model.shape().n_layers,
                self.kind().title().to_lowercase()
            )));
        }
        Ok(())
    }
}

/// The neurons of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neurons(pub usize);

impl Units for Neurons {
    fn kind(&self) -> UnitKind {
        UnitKind::Neuron
    }

    fn layer(&self) -> usize {
        self.0
    }

    fn count(&self, model: &Model) -> usize {
        model.shape().d_mlp
    }

    fn activations(&self, model: &Model, ids: &[u32]) -> Result<Tensor> {
        Ok(record_point(model, ids, HookPoint::MlpPost(self.0))?.to_kind(Kind::Float).to_device(Device::Cpu))
    }
}
