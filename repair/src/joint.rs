//! Joint repair of a set of cases in closed form, in the STAR/ASTRA manner (see shared/reference/MINT.md,
//! "Repairing many failures at once"). Every desired token of every case is a row; rows whose margin is short
//! ask for a rise of their logit gap, rows already right ask for none (constraints to keep). Neurons are chosen
//! per short row by selective direct contrast (|a · (c · v)| · |a| / rms(a on reference code)) within the quarter
//! of layers where the set's best levers lie, up to a budget per token; the change of the chosen neurons' output
//! vectors is the minimum-norm solution, weighted by the preservation statistics so that rarely-firing neurons
//! carry it, of the linearised system "row t's gap rises by g_t". The model is re-linearised and solved again for
//! a few rounds until every case is right by the margin; cases that stop improving are given up on and reported.
//! The same solve runs on a transcoder's features instead of neurons ([`Levers::Features`]): a feature's key is
//! its readout from the layer's hidden activations and its metric the readouts' second moments.

use std::collections::BTreeMap;
use std::time::Instant;

use models::tch::{Device, Kind, Tensor};
use models::{Model, Neuron, Progress};
use serde::{Deserialize, Serialize};

use crate::case::Tokens;
use crate::change::{ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::features::FeatureBasis;
use crate::method::{Method, Repair};
use crate::preservation::PreservationStats;
use crate::rows::{rows_of, Row};

/// Rounds in a row without progress after which a case is given up on.
const STRIKES: usize = 2;

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
    /// ε added to the metric's diagonal (E[k kᵀ] of the chosen neurons, or E[k²] alone), relative to the mean
    /// E[k²] of each layer.
    pub rarity_epsilon: f64,
    /// A case whose shortest margin rose by less than this share of its remaining shortfall in two rounds in a row
    /// is given up on (its tokens are kept where they are from then on).
    pub min_progress: f32,
    /// Share of the output metric given to reference code's top-1 gap directions
    /// ([`PreservationStats::gaps`]): 0 weighs
    /// a change of the residual the same in every direction, near 1 steers it away from the directions that move
    /// reference text's top-1 tokens.
    pub gap_share: f64,
}

impl Default for JointConfig {
    fn default() -> Self {
        JointConfig {
            margin: 1.0,
            overshoot: 0.75,
            neurons_per_token: 256,
            layer_share: 0.25,
            rounds: 8,
            ridge: 1e-3,
            rarity_epsilon: 0.01,
            min_progress: 0.05,
            gap_share: 0.9,
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
            || !(0.0..1.0).contains(&self.gap_share)
        {
            return Err(RepairError::Settings(
                "neurons_per_token and rounds must be at least 1, layer_share in (0, 1], ridge and margin not negative, gap_share in [0, 1)"
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

impl SetRepair {
    /// The record of a set repair by `method` that made `changes`, with each case's margins (before, after)
    /// and whether it was given up on, after `rounds` rounds begun at `start`.
    pub(crate) fn assemble(
        method: Method,
        changes: Vec<WeightChange>,
        (before, after): (Vec<Vec<f32>>, Vec<Vec<f32>>),
        given_up: &[bool],
        rounds: usize,
        start: Instant,
    ) -> Self {
        let outcomes = before
            .iter()
            .zip(&after)
            .zip(given_up)
            .map(|((b, a), &given_up)| CaseOutcome { margins_before: b.clone(), margins_after: a.clone(), given_up })
            .collect();
        let repair = Repair {
            method,
            changes,
            steps: Vec::new(),
            margins_before: before.concat(),
            margins_after: after.concat(),
            seconds: start.elapsed().as_secs_f64(),
        };
        SetRepair { repair, outcomes, rounds }
    }
}

/// The minimum-norm change of output vectors, in the metric of the preservation statistics, that raises each
/// row's gap by its target, to first order.
///
/// Row t has gap direction c_t (`directions[t]`, `[T, d_model]`) and keys k_t over the editable neurons
/// (`keys[t]`, `[T, S]`); the output vectors change by Δ (`[S, d_model]`), moving row t's gap by k_tᵀ Δ c_t.
/// Minimising tr(Δᵀ M Δ) (M symmetric positive definite: the keys' second moments on reference code, so that
/// changes reference text would read cost most) subject to those moves equalling `targets` (`[T]`) gives
/// Δ = M⁻¹ Σ_s λ_s k_s c_sᵀ with (A + ρI) λ = g, A_ts = (c_t · c_s)(k_tᵀ M⁻¹ k_s), and ρ `ridge` times the mean of
/// A's diagonal. M is block diagonal (neurons of different layers do not mix) and given as its diagonal
/// `blocks`, in order (one block: a dense metric); each is solved alone, so the cost grows with the layers' sizes,
/// not the whole count cubed. With an `output` metric N (`[d_model, d_model]`, symmetric positive definite) the
/// cost is tr(Δᵀ M Δ N) instead: c is replaced by N⁻¹c in Δ and A_ts = (c_tᵀ N⁻¹ c_s)(k_tᵀ M⁻¹ k_s).
/// Returns Δ as `[S, d_model]` f32.
pub fn solve(
    directions: &Tensor,
    keys: &Tensor,
    blocks: &[Tensor],
    output: Option<&Tensor>,
    targets: &Tensor,
    ridge: f64,
) -> Result<Tensor> {
    let double = |t: &Tensor| t.to_kind(Kind::Double).to_device(Device::Cpu);
    let (c, k, g) = (double(directions), double(keys), double(targets));
    let steered = match output {
        Some(n) => Tensor::linalg_solve(&double(n), &c.tr(), true).tr(),
        None => c.shallow_clone(),
    };
    let sizes: Vec<i64> = blocks.iter().map(|b| b.size()[0]).collect();
    let (t, s) = (c.size()[0], sizes.iter().sum::<i64>());
    if k.size() != [t, s] || blocks.iter().any(|b| b.size() != [b.size()[0]; 2]) || g.size() != [t] {
        return Err(RepairError::Settings(format!(
            "joint solve: {t} directions, keys {:?}, metric blocks {:?} and {:?} targets do not fit",
            k.size(),
            blocks.iter().map(Tensor::size).collect::<Vec<_>>(),
            g.size()
        )));
    }
    let mut start = 0;
    let mut spread = Vec::with_capacity(blocks.len());
    for (block, &size) in blocks.iter().zip(&sizes) {
        spread.push(Tensor::linalg_solve(&double(block), &k.narrow(1, start, size).tr(), true));
        start += size;
    }
    let spread = Tensor::cat(&spread, 0);
    let system = c.matmul(&steered.tr()) * k.matmul(&spread);
    let rho = ridge * system.diagonal(0, 0, 1).mean(Kind::Double).double_value(&[]);
    let regularised = system + Tensor::eye(t, (Kind::Double, Device::Cpu)) * rho.max(1e-12);
    let lambda = Tensor::linalg_solve(&regularised, &g.unsqueeze(1), true);
    Ok(spread.matmul(&(lambda * steered)).to_kind(Kind::Float))
}

/// What a joint repair preserves: the metric of its changes, and reference positions whose gaps it keeps.
pub struct Preserved {
    /// Second moments of the keys over reference code.
    pub stats: PreservationStats,
    /// Rows of reference text (see [`crate::rows::anchor_rows`]), constraints of every solve.
    pub anchors: Vec<Row>,
}

impl Preserved {
    /// The output metric (1 − w) I + w G / mean diag(G) for w = `share` and G the statistics' gap moment; none
    /// when `share` is 0.
    fn output_metric(&self, share: f64) -> Option<Tensor> {
        if share == 0.0 {
            return None;
        }
        let gaps = &self.stats.gaps;
        let scale = gaps.diagonal(0, 0, 1).mean(Kind::Double).double_value(&[]).max(1e-12);
        let identity = Tensor::eye(gaps.size()[0], (Kind::Double, Device::Cpu));
        Some(identity * (1.0 - share) + gaps.to_kind(Kind::Double) * (share / scale))
    }
}

/// What a joint solve changes.
#[derive(Clone, Copy)]
pub enum Levers<'a> {
    /// MLP neurons' output vectors (columns of the down projections), chosen in the layers where the set's
    /// strongest levers lie.
    Neurons,
    /// A transcoder's features: feature i's decoder row moves by Δ_i, made in the model as the rank-one change
    /// `W_down += Δ_i u_iᵀ` of its layer's down projection, u_i the feature's readout ([`crate::features`]), so the
    /// set exports as plain weights.
    Features(&'a FeatureBasis),
}

impl<'a> Levers<'a> {
    /// The method a set repaired through these levers is recorded as.
    pub fn method(self) -> Method {
        match self {
            Levers::Neurons => Method::Joint,
            Levers::Features(_) => Method::JointFeatures,
        }
    }

    fn editable(self, model: &Model, stats: &PreservationStats) -> Result<Box<dyn Editable + 'a>> {
        Ok(match self {
            Levers::Neurons => Box::new(NeuronLevers::default()),
            Levers::Features(basis) => Box::new(FeatureLevers::new(model, basis, stats)?),
        })
    }
}

/// Repairs `cases` together through `levers` (the changes stay applied; [`Repair::revert`] on the result undoes
/// them).
///
/// The first `held` cases are earlier repairs that should stay right: while one of them is right by the margin
/// at the last linearisation of every case, its rows from then are reused as constraints instead of being computed
/// again each round, and before the solve ends every case is linearised afresh (a held case that slipped is then
/// repaired in further rounds like any other). With `held` 0 every round linearises every case.
pub fn repair_jointly(
    model: &Model,
    cases: &[Tokens],
    held: usize,
    preserved: &Preserved,
    levers: Levers,
    config: &JointConfig,
    progress: &dyn Progress,
) -> Result<SetRepair> {
    config.validate()?;
    if cases.is_empty() {
        return Err(RepairError::Settings("a repair set needs at least one case".into()));
    }
    let start = Instant::now();
    let mut edited = levers.editable(model, &preserved.stats)?;
    let mut given_up = vec![false; cases.len()];
    let mut strikes = vec![0usize; cases.len()];
    let mut shortest: Vec<f32> = Vec::new();
    let mut margins_before: Option<Vec<Vec<f32>>> = None;
    let mut rounds = 0;
    let mut gains = Gains::default();
    let mut kept = KeptRows::default();
    let mut rechecking = false;
    progress.begin("joint repair rounds", config.rounds as u64);
    let rows = loop {
        progress.check()?;
        let all_fresh = kept.is_empty();
        let rows = kept.rows(model, cases, held.min(cases.len()), config.margin)?;
        let margins = margins_by_case(&rows, cases.len());
        margins_before.get_or_insert_with(|| margins.clone());
        let now: Vec<f32> = margins.iter().map(|m| m.iter().copied().fold(f32::INFINITY, f32::min)).collect();
        // A recheck follows no solve, so it says nothing of progress.
        for (case, (&before, &after)) in shortest.iter().zip(&now).enumerate().filter(|_| !rechecking) {
            let shortfall = config.margin - before;
            let stalled = shortfall > 0.0 && after - before < config.min_progress * shortfall;
            strikes[case] = if stalled { strikes[case] + 1 } else { 0 };
            given_up[case] |= strikes[case] >= STRIKES;
        }
        shortest = now;
        let short: Vec<&Row> = rows.iter().filter(|r| r.margin < config.margin && !given_up[r.case]).collect();
        if short.is_empty() || rounds == config.rounds {
            if all_fresh {
                break rows;
            }
            kept = KeptRows::default();
            rechecking = true;
            continue;
        }
        edited.choose(model, &short, &preserved.stats, config)?;
        let targets: Vec<f32> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r.margin < config.margin && !given_up[r.case] {
                    (config.margin + config.overshoot - r.margin) / gains.gain(i, r.margin)
                } else {
                    0.0
                }
            })
            .collect();
        gains.remember(&rows, &targets);
        rechecking = false;
        let constrained: Vec<&Row> = rows.iter().chain(&preserved.anchors).collect();
        let targets: Vec<f32> = targets.into_iter().chain(std::iter::repeat_n(0.0, preserved.anchors.len())).collect();
        let (keys, metric) = edited.system(&constrained, &preserved.stats, config)?;
        let delta = solve_rows(&constrained, &keys, &metric, &targets, preserved, config)?;
        edited.apply(model, &delta)?;
        rounds += 1;
        progress.advance(1);
    };
    let margins_after = margins_by_case(&rows, cases.len());
    let margins_before = margins_before.unwrap_or_default();
    let changes = edited.changes(model)?;
    Ok(SetRepair::assemble(levers.method(), changes, (margins_before, margins_after), &given_up, rounds, start))
}

/// The levers a joint solve has chosen so far, and how it moves them.
trait Editable {
    /// Adds the levers of the `short` rows (those whose margins the solve must raise).
    fn choose(&mut self, model: &Model, short: &[&Row], stats: &PreservationStats, config: &JointConfig) -> Result<()>;
    /// The chosen levers' keys at `rows` (`[rows, levers]`) and their metric, as diagonal blocks ([`solve`]).
    fn system(&self, rows: &[&Row], stats: &PreservationStats, config: &JointConfig) -> Result<(Tensor, Vec<Tensor>)>;
    /// Moves the chosen levers' output vectors by `delta` (`[levers, d_model]`) in `model`.
    fn apply(&mut self, model: &Model, delta: &Tensor) -> Result<()>;
    /// The changes made to `model` since the first choice, with the values before.
    fn changes(&self, model: &Model) -> Result<Vec<WeightChange>>;
}

/// Neurons' output vectors, with each one's values before the solve, in the layers chosen at the first round.
#[derive(Default)]
struct NeuronLevers {
    edited: BTreeMap<Neuron, Tensor>,
    layers: Option<Vec<usize>>,
}

impl Editable for NeuronLevers {
    fn choose(&mut self, model: &Model, short: &[&Row], stats: &PreservationStats, config: &JointConfig) -> Result<()> {
        let allowed = self.layers.get_or_insert_with(|| strongest_layers(model, short, stats, config)).clone();
        for row in short {
            for neuron in selective_levers(model, row, stats, &allowed, config.neurons_per_token)? {
                if let std::collections::btree_map::Entry::Vacant(entry) = self.edited.entry(neuron) {
                    entry.insert(ChangeTarget::NeuronOutput(neuron).read(model)?);
                }
            }
        }
        Ok(())
    }

    fn system(&self, rows: &[&Row], stats: &PreservationStats, config: &JointConfig) -> Result<(Tensor, Vec<Tensor>)> {
        let neurons: Vec<Neuron> = self.edited.keys().copied().collect();
        let layers: Tensor = Tensor::from_slice(&neurons.iter().map(|n| n.layer as i64).collect::<Vec<_>>());
        let indices: Tensor = Tensor::from_slice(&neurons.iter().map(|n| n.index as i64).collect::<Vec<_>>());
        let keys =
            Tensor::stack(&rows.iter().map(|r| r.keys.index(&[Some(&layers), Some(&indices)])).collect::<Vec<_>>(), 0);
        Ok((keys, stats.metric(&neurons, config.rarity_epsilon)?))
    }

    fn apply(&mut self, model: &Model, delta: &Tensor) -> Result<()> {
        for (j, neuron) in self.edited.keys().enumerate() {
            let target = ChangeTarget::NeuronOutput(*neuron);
            target.write(model, &(target.read(model)? + delta.get(j as i64)))?;
        }
        Ok(())
    }

    fn changes(&self, model: &Model) -> Result<Vec<WeightChange>> {
        self.edited
            .iter()
            .map(|(neuron, old)| {
                let target = ChangeTarget::NeuronOutput(*neuron);
                Ok(WeightChange { new: target.read(model)?, target, old: old.shallow_clone() })
            })
            .collect()
    }
}

/// A transcoder's features. Feature i's key at a row is its readout there, u_iᵀ h (h the layer's `mlp.hook_post`),
/// its output vector the decoder row plus what the solve has moved it by, and its metric the readouts' second
/// moments over the reference code of the preservation statistics, U E[h hᵀ] Uᵀ.
struct FeatureLevers<'a> {
    basis: &'a FeatureBasis,
    /// E[h hᵀ] of the layer over the reference code, `[d_mlp, d_mlp]` f64.
    covariance: Tensor,
    /// E[(u_iᵀ h)²] of every feature, `[d_sae]` f64.
    moments: Tensor,
    /// How far the solve has moved every feature's output vector so far, `[d_sae, d_model]`.
    moved: Tensor,
    chosen: std::collections::BTreeSet<i64>,
    /// The down projection before the first change.
    before: Option<Tensor>,
}

impl<'a> FeatureLevers<'a> {
    fn new(model: &Model, basis: &'a FeatureBasis, stats: &PreservationStats) -> Result<Self> {
        let layer = basis.layer();
        if layer >= model.shape().n_layers || basis.readouts.size()[1] != model.shape().d_mlp as i64 {
            return Err(RepairError::Mismatch(format!(
                "the transcoder's readouts ({:?}, layer {layer}) do not fit the model's MLPs",
                basis.readouts.size()
            )));
        }
        let covariance = stats.covariance_of(layer)?.to_kind(Kind::Double);
        let readouts = basis.readouts.to_kind(Kind::Double);
        let moments = (readouts.matmul(&covariance) * &readouts).sum_dim_intlist(1, false, Kind::Double);
        let moved = Tensor::zeros_like(basis.decoder());
        Ok(FeatureLevers { basis, covariance, moments, moved, chosen: Default::default(), before: None })
    }

    fn target(&self, model: &Model) -> ChangeTarget {
        ChangeTarget::Parameter(model.mlp_output(self.basis.layer()).0)
    }

    /// The chosen features in order, as an index.
    fn chosen_index(&self) -> Tensor {
        Tensor::from_slice(&self.chosen.iter().copied().collect::<Vec<_>>())
    }

    /// Every feature's key at `row`, `[d_sae]`.
    fn keys(&self, row: &Row) -> Tensor {
        self.basis.readouts.mv(&row.keys.get(self.basis.layer() as i64))
    }
}

impl Editable for FeatureLevers<'_> {
    /// The `neurons_per_token` features with the strongest selective direct contrast at each short row,
    /// |k · (c · d)| · |k| / rms(k on reference code), as neurons are chosen.
    fn choose(&mut self, model: &Model, short: &[&Row], _: &PreservationStats, config: &JointConfig) -> Result<()> {
        if self.before.is_none() {
            self.before = Some(self.target(model).read(model)?);
        }
        let outputs = self.basis.decoder() + &self.moved;
        let rms = self.moments.sqrt().to_kind(Kind::Float) + 1e-6;
        let count = (config.neurons_per_token as i64).min(self.basis.len() as i64);
        for row in short {
            let keys = self.keys(row);
            let scores = (&keys * outputs.mv(&row.direction)).abs() * keys.abs() / &rms;
            let (_, order) = scores.topk(count, 0, true, true);
            self.chosen.extend(Vec::<i64>::try_from(order)?);
        }
        Ok(())
    }

    fn system(&self, rows: &[&Row], _: &PreservationStats, config: &JointConfig) -> Result<(Tensor, Vec<Tensor>)> {
        let chosen = self.basis.readouts.index_select(0, &self.chosen_index());
        let layer = self.basis.layer() as i64;
        let hidden = Tensor::stack(&rows.iter().map(|r| r.keys.get(layer)).collect::<Vec<_>>(), 0);
        let keys = hidden.matmul(&chosen.tr());
        let readouts = chosen.to_kind(Kind::Double);
        let epsilon = (config.rarity_epsilon * self.moments.mean(Kind::Double).double_value(&[])).max(1e-12);
        let metric = readouts.matmul(&self.covariance).matmul(&readouts.tr())
            + Tensor::eye(readouts.size()[0], (Kind::Double, Device::Cpu)) * epsilon;
        Ok((keys, vec![metric]))
    }

    fn apply(&mut self, model: &Model, delta: &Tensor) -> Result<()> {
        let chosen = self.chosen_index();
        let _ = self.moved.index_add_(0, &chosen, delta);
        let target = self.target(model);
        target
            .write(model, &(target.read(model)? + delta.tr().matmul(&self.basis.readouts.index_select(0, &chosen))))?;
        Ok(())
    }

    fn changes(&self, model: &Model) -> Result<Vec<WeightChange>> {
        let Some(old) = &self.before else { return Ok(Vec::new()) };
        let target = self.target(model);
        Ok(vec![WeightChange { new: target.read(model)?, target, old: old.shallow_clone() }])
    }
}

/// Rows of held cases kept from the last linearisation of every case, for those right by the margin there.
#[derive(Default)]
struct KeptRows {
    rows: Vec<Row>,
}

impl KeptRows {
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every case's rows in case order: the kept ones, and the others computed at the model as it is. When none
    /// are kept, every case is linearised and the rows of the first `held` cases right by `margin` are kept.
    fn rows(&mut self, model: &Model, cases: &[Tokens], held: usize, margin: f32) -> Result<Vec<Row>> {
        if self.rows.is_empty() {
            let rows = rows_of(model, cases)?;
            let mut comfortable = vec![true; held];
            for row in rows.iter().filter(|r| r.case < held && r.margin < margin) {
                comfortable[row.case] = false;
            }
            self.rows = rows.iter().filter(|r| r.case < held && comfortable[r.case]).map(Row::shallow_clone).collect();
            return Ok(rows);
        }
        let mut reused = vec![false; cases.len()];
        for row in &self.rows {
            reused[row.case] = true;
        }
        let others: Vec<usize> = (0..cases.len()).filter(|&c| !reused[c]).collect();
        let subset: Vec<&Tokens> = others.iter().map(|&c| &cases[c]).collect();
        let mut rows: Vec<Row> = rows_of(model, &subset)?
            .into_iter()
            .map(|r| Row { case: others[r.case], ..r })
            .chain(self.rows.iter().map(Row::shallow_clone))
            .collect();
        rows.sort_by_key(|r| (r.case, r.step));
        Ok(rows)
    }
}

/// How much of the gap rise each row asked for in the last round it really got: the linearisation leaves out
/// what later layers and the final norm do to a change, so a row typically gets a fraction of what it asks for,
/// and asks for correspondingly more in the next round.
#[derive(Default)]
struct Gains {
    /// Per row (in the order of the rows, which stays the same between rounds): margin and target of the last round.
    asked: Vec<(f32, f32)>,
}

impl Gains {
    /// Smallest and largest gain believed.
    const RANGE: (f32, f32) = (0.25, 1.0);

    /// The gain row `i` had in the last round, given its margin now (1 when it asked for nothing).
    fn gain(&self, i: usize, margin: f32) -> f32 {
        match self.asked.get(i) {
            Some(&(before, target)) if target > 0.1 => ((margin - before) / target).clamp(Self::RANGE.0, Self::RANGE.1),
            _ => 1.0,
        }
    }

    fn remember(&mut self, rows: &[Row], targets: &[f32]) {
        self.asked = rows.iter().zip(targets).map(|(r, &t)| (r.margin, t)).collect();
    }
}

/// Each case's margins in token order.
pub(crate) fn margins_by_case(rows: &[Row], cases: usize) -> Vec<Vec<f32>> {
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

/// The layers a joint repair of `cases` would edit (see [`strongest_layers`]), for baselines that edit the
/// same layers; none when every case is already right by the margin.
pub fn set_layers(
    model: &Model,
    cases: &[Tokens],
    stats: &PreservationStats,
    config: &JointConfig,
) -> Result<Vec<usize>> {
    let rows = rows_of(model, cases)?;
    let short: Vec<&Row> = rows.iter().filter(|r| r.margin < config.margin).collect();
    Ok(if short.is_empty() { Vec::new() } else { strongest_layers(model, &short, stats, config) })
}

/// The `share` of layers whose best levers, summed over the short rows, are strongest.
pub(crate) fn strongest_layers(
    model: &Model,
    short: &[&Row],
    stats: &PreservationStats,
    config: &JointConfig,
) -> Vec<usize> {
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

/// The joint system of `rows` with `keys` (`[rows, levers]`) and the levers' metric `blocks`, solved for
/// `targets`: `[levers, d_model]`.
fn solve_rows(
    rows: &[&Row],
    keys: &Tensor,
    blocks: &[Tensor],
    targets: &[f32],
    preserved: &Preserved,
    config: &JointConfig,
) -> Result<Tensor> {
    let directions = Tensor::stack(&rows.iter().map(|r| r.direction.shallow_clone()).collect::<Vec<_>>(), 0);
    let output = preserved.output_metric(config.gap_share);
    solve(&directions, keys, blocks, output.as_ref(), &Tensor::from_slice(targets), config.ridge)
}
