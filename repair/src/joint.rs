//! Joint repair of a set of cases in closed form, in the STAR/ASTRA manner (see shared/reference/MINT.md,
//! "Repairing many failures at once"). Every desired token of every case is a row; rows whose margin is short
//! ask for a rise of their logit gap, rows already right ask for none (constraints to keep). Neurons are chosen
//! per short row by selective direct contrast (|a · (c · v)| · |a| / rms(a on reference code)) within the quarter
//! of layers where the set's best levers lie, up to a budget per token; the change of the chosen neurons' output
//! vectors is the minimum-norm solution, weighted by the preservation statistics so that rarely-firing neurons
//! carry it, of the linearised system "row t's gap rises by g_t". The model is re-linearised and solved again for
//! a few rounds until every case is right by the margin; cases that stop improving are given up on and reported.

use std::collections::BTreeMap;
use std::time::Instant;

use models::tch::{Device, Kind, Tensor};
use models::{Model, Neuron, Progress};
use serde::{Deserialize, Serialize};

use crate::case::Tokens;
use crate::change::{ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::method::{Method, Repair};
use crate::preservation::PreservationStats;
use crate::rows::{rows_of, Row};

/// Settings of the joint solve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JointConfig {
    /// Every desired token must beat every other token by this many logits.
    pub margin: f32,
    /// A short row asks for this much more than the margin, so that one linearised step more often suffices.
    pub overshoot: f32,
    /// Neurons chosen per short token and round.
    pub neurons_per_token: usize,
    /// Share of the layers whose neurons may change (the ones with the strongest levers for the set).
    pub layer_share: f64,
    /// Most re-linearisation rounds.
    pub rounds: usize,
    /// Ridge of the solve, relative to the mean diagonal of the system.
    pub ridge: f64,
    /// ε of the rarity weights 1 / (E[k²] + ε), relative to the layer's mean E[k²].
    pub rarity_epsilon: f64,
    /// A case whose shortest margin rose by less than this share of its remaining shortfall in a round is
    /// given up on (its tokens are kept where they are from then on).
    pub min_progress: f32,
}

impl Default for JointConfig {
    fn default() -> Self {
        JointConfig {
            margin: 1.0,
            overshoot: 0.5,
            neurons_per_token: 8,
            layer_share: 0.25,
            rounds: 8,
            ridge: 1e-3,
            rarity_epsilon: 0.01,
            min_progress: 0.05,
        }
    }
}

impl JointConfig {
    /// Refuses settings that cannot repair anything.
    pub fn validate(&self) -> Result<()> {
        if self.neurons_per_token == 0
            || self.rounds == 0
            || !(self.layer_share > 0.0 && self.layer_share <= 1.0)
            || self.ridge < 0.0
            || self.margin < 0.0
        {
            return Err(RepairError::Settings(
                "neurons_per_token and rounds must be at least 1, layer_share in (0, 1], ridge and margin not negative"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// How one case of a set came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseOutcome {
    /// Margins of its desired tokens before the solve.
    pub margins_before: Vec<f32>,
    /// And after.
    pub margins_after: Vec<f32>,
    /// Whether the solve stopped trying (no progress); such a case is reported, not forced.
    pub given_up: bool,
}

impl CaseOutcome {
    /// Whether every desired token is the model's top-1 after the solve.
    pub fn repaired(&self) -> bool {
        !self.margins_after.is_empty() && self.margins_after.iter().all(|&m| m >= 0.0)
    }
}

/// A joint repair as applied: the changes (one per neuron, its values before and after the solve) and each case's
/// outcome.
#[derive(Debug)]
pub struct SetRepair {
    /// The changes, as a [`Repair`] of method [`Method::Joint`] (margins are those of every token, case by case).
    pub repair: Repair,
    /// Per case, in the order given.
    pub outcomes: Vec<CaseOutcome>,
    /// Rounds run.
    pub rounds: usize,
}

/// The weighted minimum-norm change of output vectors that raises each row's gap by its target, to first order.
///
/// Row t has gap direction c_t (`directions[t]`, `[T, d_model]`) and keys k_t over the editable neurons
/// (`keys[t]`, `[T, S]`); neuron j's output vector changes by Δv_j, moving row t's gap by Σ_j k_t[j] (c_t · Δv_j).
/// Minimising Σ_j |Δv_j|² / w_j (`weights`, `[S]`) subject to those moves equalling `targets` (`[T]`) gives
/// Δv_j = w_j Σ_s λ_s k_s[j] c_s with (A + ρI) λ = g, A_ts = (c_t · c_s) Σ_j w_j k_t[j] k_s[j], and ρ `ridge` times
/// the mean of A's diagonal. Returns Δv as `[S, d_model]` f32.
pub fn solve(directions: &Tensor, keys: &Tensor, weights: &Tensor, targets: &Tensor, ridge: f64) -> Result<Tensor> {
    let (c, k, w, g) = (
        directions.to_kind(Kind::Double),
        keys.to_kind(Kind::Double),
        weights.to_kind(Kind::Double),
        targets.to_kind(Kind::Double),
    );
    let (t, s) = (c.size()[0], w.size()[0]);
    if k.size() != [t, s] || g.size() != [t] {
        return Err(RepairError::Settings(format!(
            "joint solve: {t} directions, keys {:?}, {s} weights and {:?} targets do not fit",
            k.size(),
            g.size()
        )));
    }
    let weighted = &k * w.unsqueeze(0);
    let system = c.matmul(&c.tr()) * weighted.matmul(&k.tr());
    let rho = ridge * system.diagonal(0, 0, 1).mean(Kind::Double).double_value(&[]);
    let regularised = system + Tensor::eye(t, (Kind::Double, Device::Cpu)) * rho.max(1e-12);
    let lambda = Tensor::linalg_solve(&regularised, &g.unsqueeze(1), true);
    Ok(weighted.tr().matmul(&(lambda * c)).to_kind(Kind::Float))
}

/// Repairs `cases` together (the changes stay applied; [`Repair::revert`] on the result undoes them).
pub fn repair_jointly(
    model: &Model,
    cases: &[Tokens],
    stats: &PreservationStats,
    config: &JointConfig,
    progress: &dyn Progress,
) -> Result<SetRepair> {
    config.validate()?;
    if cases.is_empty() {
        return Err(RepairError::Settings("a repair set needs at least one case".into()));
    }
    let start = Instant::now();
    let mut edited: BTreeMap<Neuron, Tensor> = BTreeMap::new();
    let mut layers: Option<Vec<usize>> = None;
    let mut given_up = vec![false; cases.len()];
    let mut shortest: Vec<f32> = Vec::new();
    let mut margins_before: Option<Vec<Vec<f32>>> = None;
    let mut rounds = 0;
    progress.begin("joint repair rounds", config.rounds as u64);
    let rows = loop {
        progress.check()?;
        let rows = all_rows(model, cases)?;
        let margins = margins_by_case(&rows, cases.len());
        margins_before.get_or_insert_with(|| margins.clone());
        let now: Vec<f32> = margins.iter().map(|m| m.iter().copied().fold(f32::INFINITY, f32::min)).collect();
        for (case, (&before, &after)) in shortest.iter().zip(&now).enumerate() {
            let shortfall = config.margin - before;
            if shortfall > 0.0 && after - before < config.min_progress * shortfall {
                given_up[case] = true;
            }
        }
        shortest = now;
        let short: Vec<&Row> = rows.iter().filter(|r| r.margin < config.margin && !given_up[r.case]).collect();
        if short.is_empty() || rounds == config.rounds {
            break rows;
        }
        let allowed = layers.get_or_insert_with(|| strongest_layers(model, &short, stats, config)).clone();
        for row in &short {
            for neuron in selective_levers(model, row, stats, &allowed, config.neurons_per_token)? {
                if !edited.contains_key(&neuron) {
                    edited.insert(neuron, ChangeTarget::NeuronOutput(neuron).read(model)?);
                }
            }
        }
        let neurons: Vec<Neuron> = edited.keys().copied().collect();
        let targets: Vec<f32> = rows
            .iter()
            .map(|r| {
                if r.margin < config.margin && !given_up[r.case] {
                    config.margin + config.overshoot - r.margin
                } else {
                    0.0
                }
            })
            .collect();
        let delta = solve_rows(&rows, &neurons, &targets, stats, config)?;
        for (j, neuron) in neurons.iter().enumerate() {
            let target = ChangeTarget::NeuronOutput(*neuron);
            target.write(model, &(target.read(model)? + delta.get(j as i64)))?;
        }
        rounds += 1;
        progress.advance(1);
    };
    let margins_after = margins_by_case(&rows, cases.len());
    let margins_before = margins_before.unwrap_or_default();
    let changes = edited
        .into_iter()
        .map(|(neuron, old)| {
            let target = ChangeTarget::NeuronOutput(neuron);
            Ok(WeightChange { new: target.read(model)?, target, old })
        })
        .collect::<Result<Vec<_>>>()?;
    let outcomes = margins_before
        .iter()
        .zip(&margins_after)
        .zip(&given_up)
        .map(|((before, after), &given_up)| CaseOutcome {
            margins_before: before.clone(),
            margins_after: after.clone(),
            given_up,
        })
        .collect();
    let repair = Repair {
        method: Method::Joint,
        changes,
        steps: Vec::new(),
        margins_before: margins_before.concat(),
        margins_after: margins_after.concat(),
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok(SetRepair { repair, outcomes, rounds })
}

/// The rows of every case.
fn all_rows(model: &Model, cases: &[Tokens]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (case, tokens) in cases.iter().enumerate() {
        rows.extend(rows_of(model, tokens, case)?);
    }
    Ok(rows)
}

/// Each case's margins in token order.
fn margins_by_case(rows: &[Row], cases: usize) -> Vec<Vec<f32>> {
    let mut margins = vec![Vec::new(); cases];
    for row in rows {
        margins[row.case].push(row.margin);
    }
    margins
}

/// Every neuron's selective direct contrast at a row, `[n_layers, d_mlp]`: |a · (c · v)| · |a| / rms(a).
fn contrast(model: &Model, row: &Row, stats: &PreservationStats) -> Tensor {
    let _guard = models::tch::no_grad_guard();
    let layers = model.shape().n_layers;
    let projected = Tensor::stack(
        &(0..layers)
            .map(|l| {
                let weight = model.mlp_output(l).1;
                row.direction.to_kind(weight.kind()).to_device(weight.device()).matmul(&weight).to_kind(Kind::Float)
            })
            .collect::<Vec<_>>(),
        0,
    )
    .to_device(Device::Cpu);
    let rms = stats.second_moment.sqrt() + 1e-6;
    (&row.keys * projected).abs() * row.keys.abs() / rms
}

/// The `share` of layers whose best levers, summed over the short rows, are strongest.
fn strongest_layers(model: &Model, short: &[&Row], stats: &PreservationStats, config: &JointConfig) -> Vec<usize> {
    let layers = model.shape().n_layers;
    let per_token = config.neurons_per_token as i64;
    let mut strength = vec![0f64; layers];
    for row in short {
        let scores = contrast(model, row, stats);
        let (best, _) = scores.topk(per_token.min(scores.size()[1]), 1, true, true);
        let best = best.sum_dim_intlist(1, false, Kind::Double);
        let total = best.sum(Kind::Double).clamp_min(1e-12);
        let best = best / total;
        for (l, s) in strength.iter_mut().enumerate() {
            *s += best.double_value(&[l as i64]);
        }
    }
    let keep = ((layers as f64 * config.layer_share).ceil() as usize).clamp(1, layers);
    let mut order: Vec<usize> = (0..layers).collect();
    order.sort_by(|&a, &b| strength[b].total_cmp(&strength[a]));
    order.truncate(keep);
    order.sort();
    order
}

/// The `count` neurons of the `allowed` layers with the strongest selective direct contrast at `row`.
fn selective_levers(
    model: &Model,
    row: &Row,
    stats: &PreservationStats,
    allowed: &[usize],
    count: usize,
) -> Result<Vec<Neuron>> {
    let scores = contrast(model, row, stats);
    let d_mlp = scores.size()[1];
    let mask = Tensor::zeros([scores.size()[0]], (Kind::Float, Device::Cpu));
    let index = Tensor::from_slice(&allowed.iter().map(|&l| l as i64).collect::<Vec<_>>());
    let mask = mask.index_fill(0, &index, 1.0).unsqueeze(1);
    let (_, order) = (scores * mask).flatten(0, -1).topk(count as i64, 0, true, true);
    Ok(Vec::<i64>::try_from(order)?
        .into_iter()
        .map(|flat| Neuron { layer: (flat / d_mlp) as usize, index: (flat % d_mlp) as usize })
        .collect())
}

/// The joint system of `rows` over `neurons` with `targets`, solved: `[neurons, d_model]`.
fn solve_rows(
    rows: &[Row],
    neurons: &[Neuron],
    targets: &[f32],
    stats: &PreservationStats,
    config: &JointConfig,
) -> Result<Tensor> {
    let layers: Tensor = Tensor::from_slice(&neurons.iter().map(|n| n.layer as i64).collect::<Vec<_>>());
    let indices: Tensor = Tensor::from_slice(&neurons.iter().map(|n| n.index as i64).collect::<Vec<_>>());
    let directions = Tensor::stack(&rows.iter().map(|r| r.direction.shallow_clone()).collect::<Vec<_>>(), 0);
    let keys =
        Tensor::stack(&rows.iter().map(|r| r.keys.index(&[Some(&layers), Some(&indices)])).collect::<Vec<_>>(), 0);
    let rarity = Tensor::stack(
        &(0..stats.second_moment.size()[0])
            .map(|l| stats.rarity(l as usize, config.rarity_epsilon))
            .collect::<Vec<_>>(),
        0,
    );
    let weights = rarity.index(&[Some(&layers), Some(&indices)]);
    solve(&directions, &keys, &weights, &Tensor::from_slice(targets), config.ridge)
}
