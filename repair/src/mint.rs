//! MINT's patch, token by token: at the first wrong desired token, rank the neurons, move the top one's output
//! vector along J^T(u_d − u_w) by the smallest amount that makes the desired token top-1 with a margin, take the
//! next neuron if a size cap stops it, and go on to the next wrong token until the continuation is right or the
//! neuron budget is spent. The random-neuron and rank-one baselines run through the same loop with another
//! choice of edit.

use std::time::Instant;

use models::tch::{Device, Tensor};
use models::{HookPoint, Model, Neuron};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::case::{check, margins, Tokens};
use crate::change::{ChangeTarget, LineEdit, WeightChange};
use crate::error::{RepairError, Result};
use crate::features::{FeatureBasis, FeatureScore, FeatureTargeting};
use crate::method::{EditLog, Method, Repair, StepLog};
use crate::statistics::KeyStatistics;
use crate::target::{gap_gradients, target, Gap, Ranking, Targeting};

/// Settings of the token-by-token repair loop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MintConfig {
    /// The desired token must beat every other token by this many logits.
    pub margin: f32,
    /// Neurons tried at one token before giving up on it.
    pub neurons_per_token: usize,
    /// Edits allowed for a whole case (neurons for MINT, rank-one edits for that baseline).
    pub max_edits: usize,
    /// Largest change of an edited vector, relative to its norm (|Δv| ≤ max_scale · |v|).
    pub max_scale: f64,
    /// How neurons are ranked.
    pub ranking: Ranking,
    /// Seed of the random-neuron baseline.
    pub seed: u64,
}

impl Default for MintConfig {
    fn default() -> Self {
        MintConfig {
            margin: 1.0,
            neurons_per_token: 2,
            max_edits: 4,
            max_scale: 10.0,
            ranking: Ranking::Selective,
            seed: 0,
        }
    }
}

impl MintConfig {
    /// Refuses settings that cannot repair anything.
    pub fn validate(&self) -> Result<()> {
        if self.neurons_per_token == 0 || self.max_edits == 0 || self.max_scale <= 0.0 || self.margin < 0.0 {
            return Err(RepairError::Settings(
                "neurons_per_token and max_edits must be at least 1, max_scale positive, margin not negative".into(),
            ));
        }
        Ok(())
    }
}

/// Which edits the loop makes at a wrong token.
pub enum Editor<'a> {
    /// MINT's top-ranked neurons.
    Mint,
    /// Neurons drawn uniformly at random (the baseline with MINT's budget and patch rule).
    RandomNeurons(Box<StdRng>),
    /// One rank-one edit of the down projection of the top-ranked neuron's layer, with key statistics for
    /// its covariance.
    RankOne(&'a mut KeyStatistics),
    /// A transcoder's top-ranked features: each decoder-row patch made as the rank-one change of the down
    /// projection through the feature's readout ([`crate::features`]).
    Features(&'a FeatureBasis),
}

impl Editor<'_> {
    /// The random-neuron editor with `seed`.
    pub fn random(seed: u64) -> Self {
        Editor::RandomNeurons(Box::new(StdRng::seed_from_u64(seed)))
    }

    fn method(&self) -> Method {
        match self {
            Editor::Mint => Method::Mint,
            Editor::RandomNeurons(_) => Method::RandomNeurons,
            Editor::RankOne(_) => Method::RankOne,
            Editor::Features(_) => Method::MintFeatures,
        }
    }

    /// The next edit at desired token `step`: targeting (recomputed, since an edit can change the strongest
    /// competitor), the unit chosen among those not in `tried` (which it joins), and the edit along its line.
    fn propose(
        &mut self,
        model: &Model,
        tokens: &Tokens,
        step: usize,
        config: &MintConfig,
        activation_rms: Option<&Tensor>,
        tried: &mut Vec<(usize, usize)>,
    ) -> Result<Proposal> {
        let (context, desired) = (tokens.context(step), tokens.desired(step));
        let ranked_neurons = |tried: &mut Vec<(usize, usize)>| -> Result<(Targeting, StepLog, Neuron)> {
            let targeting = target(model, context, desired, config.ranking == Ranking::Attribution, activation_rms)?;
            let ranked: Vec<_> = targeting
                .top(config.ranking, 10 + tried.len())?
                .into_iter()
                .filter(|s| !tried.contains(&(s.neuron.layer, s.neuron.index)))
                .collect();
            let best = ranked.first().ok_or_else(|| RepairError::Settings("no neuron left to try".into()))?.neuron;
            tried.push((best.layer, best.index));
            let log = StepLog {
                step,
                desired,
                wrong: targeting.wrong,
                gap_before: targeting.logit_gap,
                top: ranked,
                features: Vec::new(),
                edits: Vec::new(),
            };
            Ok((targeting, log, best))
        };
        let ((edit, slope, cap), log) = match self {
            Editor::Mint => {
                let (targeting, log, best) = ranked_neurons(tried)?;
                (neuron_edit(model, &targeting, best, config)?, log)
            }
            Editor::RandomNeurons(rng) => {
                let (targeting, log, _) = ranked_neurons(tried)?;
                let shape = model.shape();
                let neuron = Neuron { layer: rng.gen_range(0..shape.n_layers), index: rng.gen_range(0..shape.d_mlp) };
                (neuron_edit(model, &targeting, neuron, config)?, log)
            }
            Editor::RankOne(keys) => {
                let (targeting, log, best) = ranked_neurons(tried)?;
                (rank_one_edit(model, context, &targeting, best.layer, keys, config)?, log)
            }
            Editor::Features(basis) => {
                let (gap, targeting) = FeatureTargeting::at(model, context, desired, basis)?;
                let skip: Vec<usize> = tried.iter().map(|&(_, feature)| feature).collect();
                let features = targeting.top(basis, config.ranking == Ranking::Selective, 10, &skip)?;
                let best = features.first().ok_or_else(|| RepairError::Settings("no feature left to try".into()))?;
                tried.push((best.layer, best.feature));
                let edit = feature_edit(model, basis, &gap, best, config)?;
                let log = StepLog {
                    step,
                    desired,
                    wrong: gap.wrong,
                    gap_before: gap.logit_gap,
                    top: Vec::new(),
                    features,
                    edits: Vec::new(),
                };
                (edit, log)
            }
        };
        Ok(Proposal { log, edit, slope, cap })
    }
}

/// An edit proposed at a wrong token: the targeting's log, the line to search along, the margin's first-order
/// slope per unit of scale and the scale's cap.
struct Proposal {
    log: StepLog,
    edit: LineEdit,
    slope: f64,
    cap: f64,
}

/// Repairs `tokens` in the model (the changes stay applied; [`Repair::revert`] undoes them). `activation_rms`
/// (see [`crate::statistics::activation_rms`]) is needed by [`Ranking::Selective`].
pub fn repair_tokens(
    model: &Model,
    tokens: &Tokens,
    config: &MintConfig,
    editor: &mut Editor,
    activation_rms: Option<&Tensor>,
) -> Result<Repair> {
    config.validate()?;
    let start = Instant::now();
    let margins_before = check(model, tokens)?.margins;
    let mut changes: Vec<WeightChange> = Vec::new();
    let mut steps = Vec::new();
    let mut margins_now = margins_before.clone();
    while let Some(step) = margins_now.iter().position(|&m| m < 0.0) {
        if changes.len() >= config.max_edits {
            break;
        }
        let (log, reached) =
            repair_step(model, tokens, step, margins_now[step], config, editor, activation_rms, &mut changes)?;
        steps.push(log);
        if !reached {
            break;
        }
        margins_now = check(model, tokens)?.margins;
    }
    let margins_after = check(model, tokens)?.margins;
    Ok(Repair {
        method: editor.method(),
        changes,
        steps,
        margins_before,
        margins_after,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Edits until desired token `step` has the margin or `config.neurons_per_token` edits were tried; targeting
/// is recomputed before each edit, since an edit can change the strongest competitor. An edit that does not
/// raise the margin at all is dropped. Returns the step's log and whether the margin was reached.
#[allow(clippy::too_many_arguments)]
fn repair_step(
    model: &Model,
    tokens: &Tokens,
    step: usize,
    mut current: f32,
    config: &MintConfig,
    editor: &mut Editor,
    activation_rms: Option<&Tensor>,
    changes: &mut Vec<WeightChange>,
) -> Result<(StepLog, bool)> {
    let mut log: Option<StepLog> = None;
    let mut tried = Vec::new();
    for _ in 0..config.neurons_per_token {
        if changes.len() >= config.max_edits {
            break;
        }
        let Proposal { log: proposed, edit, slope, cap } =
            editor.propose(model, tokens, step, config, activation_rms, &mut tried)?;
        let log = log.get_or_insert(proposed);
        let found = smallest_scale(model, &edit, tokens, step, config.margin, current, slope, cap)?;
        if found.scale == 0.0 {
            continue;
        }
        let relative =
            found.scale * f64::try_from(edit.direction.norm())? / f64::try_from(edit.base.norm())?.max(1e-12);
        log.edits.push(EditLog {
            target: edit.target.clone(),
            relative_change: relative,
            margin_after: found.margin,
            reached: found.reached,
        });
        changes.push(edit.finish(model)?);
        current = found.margin;
        if found.reached {
            break;
        }
    }
    let log = log.ok_or_else(|| RepairError::Settings("no edit was tried".into()))?;
    let reached = log.edits.last().is_some_and(|e| e.reached);
    Ok((log, reached))
}

/// A neuron's output vector along sign(a) · J^T(u_d − u_w), with the first-order slope of the margin per unit
/// of scale (|a| · |J^T(u_d − u_w)|) and the size cap.
fn neuron_edit(
    model: &Model,
    targeting: &Targeting,
    neuron: Neuron,
    config: &MintConfig,
) -> Result<(LineEdit, f64, f64)> {
    let activation = targeting.score_of(neuron)?.activation as f64;
    let gradient_norm = f64::try_from(targeting.direction.norm())?.max(1e-12);
    let sign = if activation < 0.0 { -1.0 } else { 1.0 };
    let direction = &targeting.direction * (sign / gradient_norm);
    let edit = LineEdit::new(model, ChangeTarget::NeuronOutput(neuron), direction)?;
    let cap = config.max_scale * f64::try_from(edit.base.norm())?;
    Ok((edit, activation.abs() * gradient_norm, cap))
}

/// A ROME-style rank-one edit of `layer`'s down projection: W' = W + t · ĥ uᵀ with u = C⁻¹k / (kᵀC⁻¹k), so that
/// the layer's output at the key k moves by t along ĥ, the gradient of the logit gap at that output, and
/// keys unlike k (under the covariance C of unrelated keys) move little.
fn rank_one_edit(
    model: &Model,
    context: &[u32],
    targeting: &Targeting,
    layer: usize,
    keys: &mut KeyStatistics,
    config: &MintConfig,
) -> Result<(LineEdit, f64, f64)> {
    let key = targeting.activations.get(layer as i64);
    let solved = keys.inverse_covariance(model, layer)?.mv(&key);
    let u = &solved / solved.dot(&key);
    let point = (HookPoint::MlpOut(layer), model.shape().d_model);
    let gradient =
        gap_gradients(model, context, targeting.desired, targeting.wrong, &[point])?.remove(0).to_device(Device::Cpu);
    let gradient_norm = f64::try_from(gradient.norm())?.max(1e-12);
    let direction = (gradient / gradient_norm).outer(&u);
    let target = ChangeTarget::Parameter(model.mlp_output(layer).0);
    let edit = LineEdit::new(model, target, direction)?;
    let output_norm = f64::try_from(edit.base.mv(&key).norm())?;
    Ok((edit, gradient_norm, config.max_scale * output_norm))
}

/// A feature's decoder row moved along J^T(u_d − u_w), made in the model as `W_down += t · ĝ u_iᵀ` with `u_i` the
/// feature's readout (sign-flipped when the readout is negative at the key), with the slope |u_iᵀ h| · |J^T(u_d −
/// u_w)| and the cap `max_scale · |d_i|` (t is how far the decoder row moves).
fn feature_edit(
    model: &Model,
    basis: &FeatureBasis,
    gap: &Gap,
    feature: &FeatureScore,
    config: &MintConfig,
) -> Result<(LineEdit, f64, f64)> {
    let gradient = gap.direction.to_device(Device::Cpu);
    let gradient_norm = f64::try_from(gradient.norm())?.max(1e-12);
    let readout = f64::from(feature.readout);
    let sign = if readout < 0.0 { -1.0 } else { 1.0 };
    let direction = (gradient * (sign / gradient_norm)).outer(&basis.readouts.get(feature.feature as i64));
    let edit = LineEdit::new(model, ChangeTarget::Parameter(model.mlp_output(basis.layer()).0), direction)?;
    let decoder_norm = f64::try_from(basis.decoder().get(feature.feature as i64).norm())?;
    Ok((edit, readout.abs() * gradient_norm, config.max_scale * decoder_norm))
}

/// Where a scale search ended.
struct Found {
    scale: f64,
    margin: f32,
    reached: bool,
}

/// The margin of desired token `step` with the model as it is.
fn step_margin(model: &Model, tokens: &Tokens, step: usize) -> Result<f32> {
    let logits = model.logits(tokens.context(step))?;
    Ok(margins(&logits.get(-1).unsqueeze(0), &[i64::from(tokens.desired(step))])?[0])
}

/// The smallest scale at which `edit` gives desired token `step` a margin of at least `margin`. The search
/// ([`search_scale`]) runs only the last position over the cached prefix (an edit's effect on the prefix is
/// left out, which is small for neurons that fire here far more than elsewhere); the result is then checked
/// with a full forward pass and grown by 25% steps until the full pass agrees.
#[allow(clippy::too_many_arguments)]
fn smallest_scale(
    model: &Model,
    edit: &LineEdit,
    tokens: &Tokens,
    step: usize,
    margin: f32,
    current: f32,
    slope: f64,
    cap: f64,
) -> Result<Found> {
    let context = tokens.context(step);
    let (prefix, last) = context.split_at(context.len() - 1);
    let mut cached = if prefix.is_empty() { None } else { Some(model.prefix_cache(prefix, 1)?) };
    let desired = [i64::from(tokens.desired(step))];
    let exact = |t: f64| -> Result<f32> {
        edit.set(model, t)?;
        step_margin(model, tokens, step)
    };
    let fast = |t: f64| -> Result<f32> {
        let Some(cache) = cached.as_mut() else { return exact(t) };
        edit.set(model, t)?;
        let logits = model.logits_after(cache, last)?;
        Ok(margins(&logits.unsqueeze(0), &desired)?[0])
    };
    let found = search_scale(fast, margin, current, slope, cap)?;
    let (mut scale, mut reached_margin) = (found.scale, exact(found.scale)?);
    while found.reached && reached_margin < margin && scale < cap {
        scale = (scale * 1.25).min(cap);
        reached_margin = exact(scale)?;
    }
    if reached_margin <= current {
        edit.set(model, 0.0)?;
        return Ok(Found { scale: 0.0, margin: current, reached: false });
    }
    Ok(Found { scale, margin: reached_margin, reached: reached_margin >= margin })
}

/// The smallest scale (to within 3%) at which `evaluate` reaches `margin`: start from the first-order estimate
/// `(margin − current) / slope`, double until it works or hits `cap`, then bisect. When even `cap` falls short,
/// the tried scale with the best margin (0 when none helped).
fn search_scale(
    mut evaluate: impl FnMut(f64) -> Result<f32>,
    margin: f32,
    current: f32,
    slope: f64,
    cap: f64,
) -> Result<Found> {
    let (mut low, mut high) = (0.0, (f64::from(margin - current) / slope.max(1e-12)).min(cap));
    let mut best = Found { scale: 0.0, margin: current, reached: false };
    let mut at_high = evaluate(high)?;
    while at_high < margin && high < cap {
        if at_high > best.margin {
            best = Found { scale: high, margin: at_high, reached: false };
        }
        low = high;
        high = (high * 2.0).min(cap);
        at_high = evaluate(high)?;
    }
    if at_high < margin {
        return Ok(if at_high > best.margin { Found { scale: high, margin: at_high, reached: false } } else { best });
    }
    while high - low > 0.03 * high {
        let middle = 0.5 * (low + high);
        let at_middle = evaluate(middle)?;
        if at_middle >= margin {
            (high, at_high) = (middle, at_middle);
        } else {
            low = middle;
        }
    }
    Ok(Found { scale: high, margin: at_high, reached: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_finds_the_smallest_scale_of_a_known_curve() {
        // margin(t) = -2 + t²: reaches 1 at t = √3; the first-order guess (slope 1) is 3.
        let found = search_scale(|t| Ok((-2.0 + t * t) as f32), 1.0, -2.0, 1.0, 100.0).unwrap();
        assert!(found.reached && found.scale >= 3f64.sqrt() && found.scale <= 1.03 * 3f64.sqrt(), "{}", found.scale);
        // A curve that peaks below the wanted margin: the best tried scale is kept.
        let found = search_scale(|t| Ok((-2.0 + t - 0.1 * t * t) as f32), 1.0, -2.0, 1.0, 8.0).unwrap();
        assert!(!found.reached && found.margin > -2.0 && found.scale <= 8.0);
        // Nothing helps: scale 0.
        let found = search_scale(|t| Ok((-2.0 - t) as f32), 1.0, -2.0, 1.0, 8.0).unwrap();
        assert_eq!((found.scale, found.reached), (0.0, false));
    }
}
