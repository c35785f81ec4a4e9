//! The gated alternative (GRACE/WISE in neuron terms): a case is repaired by new units that fire only near its
//! keys, leaving every existing weight as it is. Per wrong desired token (teacher-forced on the desired text), the
//! key is the residual after block l at the prompt's last position, the value the smallest residual change that
//! raises the token's logit gap to the margin plus the overshoot along the gap's gradient (rescaled for a few
//! rounds by the gain it really got), and the unit fires where the residual's cosine similarity with the key
//! reaches the threshold ([`models::gates`]). Such repairs compose by construction (a unit is silent away from its
//! key) but generalize only as far as the threshold lets a variant's residual in, and they cannot be exported as
//! plain weights.

use std::time::Instant;

use models::tch::{Kind, Tensor};
use models::{HookPoint, Model};
use serde::{Deserialize, Serialize};

use crate::case::{check, Tokens};
use crate::change::{ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::method::{Method, Repair};
use crate::target::{competitor, gap_gradients};

/// Settings of the gated repair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GatedConfig {
    /// The layer whose residual output the units read and write, as a share of the depth (0: the first layer).
    pub depth: f64,
    /// Cosine similarity with the key at which a unit fires (at least; see `separate`).
    pub threshold: f64,
    /// Raise a new unit's threshold to halfway between 1 and its key's largest cosine similarity with the keys of
    /// the units already in the layer, so that it does not fire where an earlier unit's key lies (earlier repairs
    /// keep their answers; variants must come closer to fire it).
    pub separate: bool,
    /// The desired token must beat every other token by this many logits.
    pub margin: f32,
    /// A value asks for this much more than the margin.
    pub overshoot: f32,
    /// Most rescaling rounds per token.
    pub rounds: usize,
}

impl Default for GatedConfig {
    fn default() -> Self {
        GatedConfig { depth: 0.66, threshold: 0.9, separate: true, margin: 1.0, overshoot: 0.5, rounds: 4 }
    }
}

/// Repairs `tokens` with gated units (see the module documentation); the units stay in the model.
pub fn gated_repair(model: &Model, tokens: &Tokens, config: &GatedConfig) -> Result<Repair> {
    if !(0.0..=1.0).contains(&config.depth) || !(-1.0..=1.0).contains(&config.threshold) || config.rounds == 0 {
        return Err(RepairError::Settings("depth in [0, 1], threshold in [-1, 1] and at least one round".into()));
    }
    let start = Instant::now();
    let shape = model.shape();
    let layer = ((shape.n_layers - 1) as f64 * config.depth).round() as usize;
    let point = HookPoint::ResidPost(layer);
    let margins_before = check(model, tokens)?.margins;
    let mut changes: Vec<WeightChange> = Vec::new();
    for step in 0..tokens.steps() {
        let gap = check(model, tokens)?.margins[step];
        if gap >= config.margin {
            continue;
        }
        let (context, desired) = (tokens.context(step), tokens.desired(step));
        // The residual as the gates see it, before any of them adds its value: resid_mid + mlp_out.
        let parts = [HookPoint::ResidMid(layer), HookPoint::MlpOut(layer)];
        let (logits, cache) = model.run_with_cache(context, move |p| parts.contains(&p))?;
        let wrong = competitor(&logits.get(-1), desired)?;
        let last = |p: HookPoint| -> Result<Tensor> { Ok(cache.require(p)?.get(0).get(-1).to_kind(Kind::Float)) };
        let key = (last(parts[0])? + last(parts[1])?).to_device(models::tch::Device::Cpu);
        let gradient = gap_gradients(model, context, desired, wrong, &[(point, shape.d_model)])?.remove(0);
        let gradient = gradient.to_device(models::tch::Device::Cpu);
        let unit = &gradient / gradient.square().sum(Kind::Float).double_value(&[]).max(1e-12);
        let threshold = match model.gates.nearest_key(layer, &key)? {
            Some(nearest) if config.separate => config.threshold.max((nearest + 1.0) / 2.0),
            _ => config.threshold,
        };
        let target = ChangeTarget::Gate { layer, slot: model.gates.free_slot(layer)? };
        let old = target.read(model)?;
        let mut asked = f64::from(config.margin + config.overshoot - gap);
        let mut margin = gap;
        for _ in 0..config.rounds {
            let row = Tensor::cat(&[key.shallow_clone(), &unit * asked, Tensor::from_slice(&[threshold as f32])], 0);
            target.write(model, &row)?;
            let now = check(model, tokens)?.margins[step];
            let gain = f64::from(now - gap) / asked;
            margin = now;
            if now >= config.margin || gain <= 0.0 {
                break;
            }
            asked = f64::from(config.margin + config.overshoot - gap) / gain.clamp(0.1, 1.0);
        }
        let new = target.read(model)?;
        changes.push(WeightChange { target, old, new });
        if margin < 0.0 {
            break;
        }
    }
    let margins_after = check(model, tokens)?.margins;
    Ok(Repair {
        method: Method::Gated,
        changes,
        steps: Vec::new(),
        margins_before,
        margins_after,
        seconds: start.elapsed().as_secs_f64(),
    })
}
