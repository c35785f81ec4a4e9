//! Tiny checkpoints built in memory, for each architecture file's own tests (in the manner of
//! candle-transformers): a [`WeightSource`] that hands out random tensors under Hugging Face names and keeps
//! them, so a test can load an architecture from a `config.json` value alone and check it without any file.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::{Architecture, AttentionMask, ForwardInput};
use crate::config::HfConfig;
use crate::error::Result;
use crate::hooks::Hooks;
use crate::weights::WeightSource;

/// Random weights by Hugging Face name; `absent` names are reported as missing (an untied `lm_head` ...).
pub struct RandomWeights {
    /// Every tensor handed out, by name.
    pub made: BTreeMap<String, Tensor>,
    absent: Vec<String>,
}

impl RandomWeights {
    /// A source that has every tensor except `absent`.
    pub fn without(absent: &[&str]) -> Self {
        RandomWeights { made: BTreeMap::new(), absent: absent.iter().map(|s| s.to_string()).collect() }
    }
}

impl WeightSource for RandomWeights {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let tensor = Tensor::randn(shape, (Kind::Float, Device::Cpu)) * 0.3;
        self.made.insert(name.to_string(), tensor.copy());
        Ok(tensor)
    }

    fn contains(&self, name: &str) -> bool {
        !self.absent.iter().any(|a| a == name)
    }
}

/// Logits `[1, seq, vocab]` of `ids` through `arch`.
fn logits(arch: &dyn Architecture, ids: &[i64]) -> Tensor {
    let ids = Tensor::from_slice(ids).unsqueeze(0);
    let positions = Tensor::arange(ids.size()[1], (Kind::Int64, Device::Cpu)).unsqueeze(0);
    let input = ForwardInput { ids: &ids, positions: &positions, mask: &AttentionMask::Causal };
    let normalized = arch.forward(&input, None, &mut Hooks::default()).expect("forward pass");
    arch.unembed(&normalized)
}

/// Loads the tiny model `config` describes from random weights and checks what any architecture must do: the
/// sizes the config names, finite logits, causality (a later token never changes earlier logits), and a Hugging
/// Face export that gives back exactly the tensors it was loaded from, under the same names. Returns the model.
pub fn check_tiny(config: serde_json::Value, absent: &[&str]) -> Box<dyn Architecture> {
    let config = HfConfig::new(config);
    let mut weights = RandomWeights::without(absent);
    let arch = crate::load::from_hf(&config, &mut weights, Device::Cpu, Kind::Float).expect("the tiny model loads");
    let shape = arch.shape().clone();
    let vocab = shape.vocab_size as i64;
    assert_eq!(shape.architecture, config.model_type().unwrap());

    let ids = [1, 5, 2, vocab - 1, 0, 3];
    let first = logits(arch.as_ref(), &ids);
    assert_eq!(first.size(), [1, ids.len() as i64, vocab]);
    assert!(bool::try_from(first.isfinite().all()).unwrap(), "logits are finite");
    let mut changed = ids;
    changed[4] = 7;
    let second = logits(arch.as_ref(), &changed);
    let before = |t: &Tensor| t.narrow(1, 0, 4);
    assert!(before(&first).allclose(&before(&second), 0.0, 0.0, false), "earlier positions see a later token");
    let after = f64::try_from((first.narrow(1, 4, 2) - second.narrow(1, 4, 2)).abs().max()).unwrap();
    assert!(after > 1e-6, "the changed token must change the logits from its position on");

    let (exported_config, tensors) = arch.hf_export().expect("export");
    assert_eq!(exported_config["model_type"], config.value()["model_type"]);
    let exported: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let names = |m: &BTreeMap<String, Tensor>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&exported), names(&weights.made), "the export names every tensor it was loaded from, once");
    for (name, tensor) in &exported {
        let loaded = &weights.made[name];
        assert_eq!(tensor.size(), loaded.size(), "{name}");
        assert!(tensor.to_kind(Kind::Float).equal(loaded), "{name} is exported as it was loaded");
    }
    arch
}
