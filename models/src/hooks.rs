//! Hook points (named as in TransformerLens), the activation cache, and interventions that change an
//! activation as it flows through a forward pass.
//!
//! Every architecture calls [`Hooks::apply`] at each point of shared/ARCHITECTURE.md. An empty [`Hooks`]
//! costs one branch per point. Activations are recorded after the interventions on the same point, i.e.
//! the cache holds what flowed downstream.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use tch::{Kind, Tensor};

use crate::error::{ModelError, Result};

/// A named place in the forward pass where activations can be read or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    /// `embed`: token embeddings (plus learned positions where the architecture adds them) `[batch, seq, d_model]`.
    Embed,
    /// `blocks.{l}.hook_resid_pre`: the residual stream entering block l.
    ResidPre(usize),
    /// `blocks.{l}.attn.hook_pattern`: attention probabilities `[batch, head, query, key]`.
    AttnPattern(usize),
    /// `blocks.{l}.hook_attn_out`: attention output added to the residual.
    AttnOut(usize),
    /// `blocks.{l}.hook_resid_mid`: the residual after attention.
    ResidMid(usize),
    /// `blocks.{l}.mlp.hook_in`: the MLP's input, the residual after the block's second norm (its first for a
    /// parallel residual) `[batch, seq, d_model]`; what a transcoder reads. Named as TransformerLens's bridge names it.
    MlpIn(usize),
    /// `blocks.{l}.mlp.hook_pre`: MLP pre-activation (the gate side for gated MLPs) `[batch, seq, d_mlp]`.
    MlpPre(usize),
    /// `blocks.{l}.mlp.hook_post`: MLP neuron activations `[batch, seq, d_mlp]`, the neurons MINT addresses.
    MlpPost(usize),
    /// `blocks.{l}.hook_mlp_out`: MLP output added to the residual.
    MlpOut(usize),
    /// `blocks.{l}.hook_resid_post`: the residual leaving block l.
    ResidPost(usize),
    /// `ln_final.hook_normalized`: the final norm's output.
    LnFinal,
}

impl HookPoint {
    /// Every hook point of a model with `n_layers` blocks, in forward order.
    pub fn all(n_layers: usize) -> Vec<HookPoint> {
        let mut points = vec![HookPoint::Embed];
        for l in 0..n_layers {
            points.extend([
                HookPoint::ResidPre(l),
                HookPoint::AttnPattern(l),
                HookPoint::AttnOut(l),
                HookPoint::ResidMid(l),
                HookPoint::MlpIn(l),
                HookPoint::MlpPre(l),
                HookPoint::MlpPost(l),
                HookPoint::MlpOut(l),
                HookPoint::ResidPost(l),
            ]);
        }
        points.push(HookPoint::LnFinal);
        points
    }

    /// The block this point belongs to, if any.
    pub fn layer(self) -> Option<usize> {
        match self {
            HookPoint::Embed | HookPoint::LnFinal => None,
            HookPoint::ResidPre(l)
            | HookPoint::AttnPattern(l)
            | HookPoint::AttnOut(l)
            | HookPoint::ResidMid(l)
            | HookPoint::MlpIn(l)
            | HookPoint::MlpPre(l)
            | HookPoint::MlpPost(l)
            | HookPoint::MlpOut(l)
            | HookPoint::ResidPost(l) => Some(l),
        }
    }

    /// The dimension of the activation that indexes token positions (queries for attention patterns).
    pub fn position_dim(self) -> i64 {
        match self {
            HookPoint::AttnPattern(_) => 2,
            _ => 1,
        }
    }

    /// Checks that the point exists in a model with `n_layers` blocks.
    pub fn check(self, n_layers: usize) -> Result<Self> {
        match self.layer() {
            Some(l) if l >= n_layers => Err(ModelError::HookPoint {
                name: self.to_string(),
                reason: format!("the model has {n_layers} layers (0..{})", n_layers.saturating_sub(1)),
            }),
            _ => Ok(self),
        }
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookPoint::Embed => write!(f, "embed"),
            HookPoint::ResidPre(l) => write!(f, "blocks.{l}.hook_resid_pre"),
            HookPoint::AttnPattern(l) => write!(f, "blocks.{l}.attn.hook_pattern"),
            HookPoint::AttnOut(l) => write!(f, "blocks.{l}.hook_attn_out"),
            HookPoint::ResidMid(l) => write!(f, "blocks.{l}.hook_resid_mid"),
            HookPoint::MlpIn(l) => write!(f, "blocks.{l}.mlp.hook_in"),
            HookPoint::MlpPre(l) => write!(f, "blocks.{l}.mlp.hook_pre"),
            HookPoint::MlpPost(l) => write!(f, "blocks.{l}.mlp.hook_post"),
            HookPoint::MlpOut(l) => write!(f, "blocks.{l}.hook_mlp_out"),
            HookPoint::ResidPost(l) => write!(f, "blocks.{l}.hook_resid_post"),
            HookPoint::LnFinal => write!(f, "ln_final.hook_normalized"),
        }
    }
}

impl FromStr for HookPoint {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Self> {
        let bad = |reason: &str| ModelError::HookPoint { name: name.to_string(), reason: reason.to_string() };
        match name {
            "embed" | "hook_embed" => return Ok(HookPoint::Embed),
            "ln_final.hook_normalized" => return Ok(HookPoint::LnFinal),
            _ => {}
        }
        let rest = name
            .strip_prefix("blocks.")
            .ok_or_else(|| bad("names are embed, ln_final.hook_normalized or blocks.{l}.<point>"))?;
        let (layer, point) = rest.split_once('.').ok_or_else(|| bad("expected blocks.{l}.<point>"))?;
        let l: usize = layer.parse().map_err(|_| bad("the layer is not a number"))?;
        Ok(match point {
            "hook_resid_pre" => HookPoint::ResidPre(l),
            "attn.hook_pattern" => HookPoint::AttnPattern(l),
            "hook_attn_out" => HookPoint::AttnOut(l),
            "hook_resid_mid" => HookPoint::ResidMid(l),
            "mlp.hook_in" => HookPoint::MlpIn(l),
            "mlp.hook_pre" => HookPoint::MlpPre(l),
            "mlp.hook_post" => HookPoint::MlpPost(l),
            "hook_mlp_out" => HookPoint::MlpOut(l),
            "hook_resid_post" => HookPoint::ResidPost(l),
            _ => return Err(bad("points are hook_resid_pre, attn.hook_pattern, hook_attn_out, hook_resid_mid, mlp.hook_in, mlp.hook_pre, mlp.hook_post, hook_mlp_out, hook_resid_post")),
        })
    }
}

/// Which token positions an intervention touches. Negative indices count from the end, as in Python.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Positions {
    /// Every position.
    #[default]
    All,
    /// Only these positions.
    Only(Vec<i64>),
}

/// What an intervention does to the activation at its positions.
#[derive(Debug)]
pub enum Edit {
    /// Set the chosen features (all when `None`) to zero, e.g. ablate neurons on `mlp.hook_post`.
    ZeroAblate(Option<Vec<i64>>),
    /// Set the chosen features to their mean value; `means` has one value per feature (last dimension).
    MeanAblate {
        /// Feature indices (all when `None`).
        features: Option<Vec<i64>>,
        /// Mean activation per feature, `[d]`.
        means: Tensor,
    },
    /// Add a vector over the last dimension (steering).
    Add(Tensor),
    /// Replace the activation with the same point's activation from another run (activation patching);
    /// the tensor has the activation's shape (its batch may be 1).
    Patch(Tensor),
    /// Add each slot's value where the activation's cosine similarity with its key reaches its threshold (the
    /// model's gated memory, [`crate::gates`]; every position).
    Gated(crate::gates::GatedMemory),
    /// Replace the activation with what a [`Replacement`] computes from the activation at the point it reads (the
    /// same point for a sparse autoencoder spliced in, the MLP's input for a transcoder spliced at the MLP's output).
    Replace(Box<dyn Replacement>),
}

/// A computation spliced into the forward pass in place of an activation (a sparse dictionary's reconstruction).
pub trait Replacement: Send + fmt::Debug {
    /// The point whose activation it reads: the replaced point itself or one earlier in the same block.
    fn reads(&self) -> HookPoint;
    /// The new activation, `[.., width of the replaced point]`, from the activation read `[.., width read]`.
    fn replace(&self, input: &Tensor) -> Result<Tensor>;
}

/// One change at one hook point.
#[derive(Debug)]
pub struct Intervention {
    /// Where the change happens.
    pub point: HookPoint,
    /// At which positions.
    pub positions: Positions,
    /// What it does.
    pub edit: Edit,
}

/// Activations recorded by a forward pass, by hook point.
#[derive(Debug, Default)]
pub struct ActivationCache {
    entries: BTreeMap<HookPoint, Tensor>,
}

impl ActivationCache {
    /// The activation recorded at `point`.
    pub fn get(&self, point: HookPoint) -> Option<&Tensor> {
        self.entries.get(&point)
    }

    /// The activation recorded at `point`, or an error that names the point.
    pub fn require(&self, point: HookPoint) -> Result<&Tensor> {
        self.get(point).ok_or_else(|| ModelError::HookPoint {
            name: point.to_string(),
            reason: "not recorded in this cache; include it in the filter".into(),
        })
    }

    /// The activation recorded under a TransformerLens name.
    pub fn get_named(&self, name: &str) -> Result<&Tensor> {
        self.require(name.parse()?)
    }

    /// Recorded points in forward order.
    pub fn points(&self) -> impl Iterator<Item = HookPoint> + '_ {
        self.entries.keys().copied()
    }

    /// Number of recorded points.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mean of `point`'s activation over batch and positions, `[d]`: the value for mean ablation.
    pub fn feature_means(&self, point: HookPoint) -> Option<Tensor> {
        self.get(point).map(|t| t.flatten(0, -2).mean_dim(0, false, Kind::Float))
    }

    fn insert(&mut self, point: HookPoint, value: Tensor) {
        self.entries.insert(point, value);
    }
}

type Filter = Box<dyn Fn(HookPoint) -> bool + Send>;

/// What a forward pass records and changes. `Hooks::default()` does neither.
#[derive(Default)]
pub struct Hooks {
    record: Option<Filter>,
    interventions: Vec<Intervention>,
    /// Activations that a [`Edit::Replace`] at a later point reads, kept as the forward pass passes them.
    read_later: BTreeMap<HookPoint, Tensor>,
    stop_after: Option<usize>,
    /// What the forward pass recorded.
    pub cache: ActivationCache,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("records", &self.record.is_some())
            .field("interventions", &self.interventions)
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl Hooks {
    /// Records every point that `filter` accepts.
    pub fn recording(filter: impl Fn(HookPoint) -> bool + Send + 'static) -> Self {
        Hooks { record: Some(Box::new(filter)), ..Default::default() }
    }

    /// Records every hook point.
    pub fn record_all() -> Self {
        Self::recording(|_| true)
    }

    /// Records the points with these TransformerLens names.
    pub fn record_names(names: &[&str]) -> Result<Self> {
        let points: Vec<HookPoint> = names.iter().map(|n| n.parse()).collect::<Result<_>>()?;
        Ok(Self::recording(move |p| points.contains(&p)))
    }

    /// Adds an intervention; several on one point apply in the order added.
    pub fn with(mut self, intervention: Intervention) -> Self {
        self.interventions.push(intervention);
        self
    }

    /// Adds an intervention in place.
    pub fn push(&mut self, intervention: Intervention) {
        self.interventions.push(intervention);
    }

    /// Ends the forward pass after block `layer` (TransformerLens's `stop_at_layer`, exclusive of `layer + 1`), for
    /// reading activations without paying for the blocks above: the pass then returns that block's residual output,
    /// not the final norm's.
    pub fn stop_after(mut self, layer: usize) -> Self {
        self.stop_after = Some(layer);
        self
    }

    /// Whether the forward pass ends after block `layer` (see [`Hooks::stop_after`]).
    pub fn stops_after(&self, layer: usize) -> bool {
        self.stop_after == Some(layer)
    }

    /// The interventions, e.g. to check them against a model.
    pub fn interventions(&self) -> &[Intervention] {
        &self.interventions
    }

    /// Runs `run` with `standing` interventions placed before this value's own (the model's part of the forward
    /// pass comes first at a point), then removes them again.
    pub(crate) fn with_standing<T>(&mut self, standing: Vec<Intervention>, run: impl FnOnce(&mut Hooks) -> T) -> T {
        let count = standing.len();
        self.interventions.splice(0..0, standing);
        let result = run(self);
        self.interventions.drain(..count);
        result
    }

    /// Whether the forward pass must record `point`'s attention pattern (attention can skip computing it otherwise).
    pub fn wants(&self, point: HookPoint) -> bool {
        self.record.as_ref().is_some_and(|f| f(point)) || self.interventions.iter().any(|i| i.point == point)
    }

    /// Called by architectures at each hook point: applies this point's interventions, records the result
    /// if asked, and returns what flows on.
    pub fn apply(&mut self, point: HookPoint, mut x: Tensor) -> Result<Tensor> {
        if self.record.is_none() && self.interventions.is_empty() {
            return Ok(x);
        }
        for intervention in self.interventions.iter().filter(|i| i.point == point) {
            x = apply_edit(&x, intervention, &self.read_later)?;
        }
        let read_later =
            |i: &Intervention| matches!(&i.edit, Edit::Replace(r) if r.reads() == point && i.point != point);
        if self.interventions.iter().any(read_later) {
            self.read_later.insert(point, x.shallow_clone());
        }
        if self.record.as_ref().is_some_and(|f| f(point)) {
            self.cache.insert(point, x.shallow_clone());
        }
        Ok(x)
    }
}

/// A `[..]` boolean mask over `x` that is true at the intervention's positions (and features, if given).
fn selection_mask(x: &Tensor, point: HookPoint, positions: &Positions, features: Option<&[i64]>) -> Result<Tensor> {
    let dims = x.size();
    let pos_dim = point.position_dim() as usize;
    let mut shape = vec![1i64; dims.len()];
    let seq = dims[pos_dim];
    shape[pos_dim] = seq;
    let pos_mask = match positions {
        Positions::All => Tensor::ones([seq], (Kind::Bool, x.device())),
        Positions::Only(list) => index_mask(list, seq, point, "position")?.to_device(x.device()),
    }
    .view(shape.as_slice());
    Ok(match features {
        None => pos_mask,
        Some(list) => {
            let width = *dims.last().unwrap_or(&0);
            let mut feat_shape = vec![1i64; dims.len()];
            feat_shape[dims.len() - 1] = width;
            pos_mask.logical_and(
                &index_mask(list, width, point, "feature")?.to_device(x.device()).view(feat_shape.as_slice()),
            )
        }
    })
}

/// A boolean vector of length `len`, true at `indices` (negative ones count from the end).
fn index_mask(indices: &[i64], len: i64, point: HookPoint, what: &str) -> Result<Tensor> {
    let mut mask = vec![false; len as usize];
    for &i in indices {
        let j = if i < 0 { i + len } else { i };
        if !(0..len).contains(&j) {
            return Err(ModelError::InvalidInput(format!("{what} {i} is outside 0..{len} at {point}")));
        }
        mask[j as usize] = true;
    }
    Ok(Tensor::from_slice(&mask))
}

/// `replacement`'s output from `input`, at the intervention's positions of `x`.
fn replace(x: &Tensor, intervention: &Intervention, replacement: &dyn Replacement, input: &Tensor) -> Result<Tensor> {
    let point = intervention.point;
    let new = replacement.replace(input)?;
    if new.size() != x.size() {
        return Err(ModelError::InvalidInput(format!(
            "the replacement at {point} gives shape {:?}, the activation is {:?}",
            new.size(),
            x.size()
        )));
    }
    let new = new.to_kind(x.kind());
    Ok(match &intervention.positions {
        Positions::All => new,
        positions => new.where_self(&selection_mask(x, point, positions, None)?, x),
    })
}

/// `x` after `intervention`; `read_later` holds what replacements at this point read from earlier points.
fn apply_edit(x: &Tensor, intervention: &Intervention, read_later: &BTreeMap<HookPoint, Tensor>) -> Result<Tensor> {
    let Intervention { point, positions, edit } = intervention;
    let width = *x.size().last().unwrap_or(&0);
    let check_vector = |v: &Tensor, what: &str| -> Result<()> {
        if v.size() != [width] {
            return Err(ModelError::InvalidInput(format!(
                "the {what} vector at {point} has shape {:?}, expected [{width}]",
                v.size()
            )));
        }
        Ok(())
    };
    Ok(match edit {
        Edit::ZeroAblate(features) => {
            let mask = selection_mask(x, *point, positions, features.as_deref())?;
            x.masked_fill(&mask, 0.0)
        }
        Edit::MeanAblate { features, means } => {
            check_vector(means, "mean")?;
            let mask = selection_mask(x, *point, positions, features.as_deref())?;
            means.to_device(x.device()).to_kind(x.kind()).where_self(&mask, x)
        }
        Edit::Add(vector) => {
            check_vector(vector, "steering")?;
            let mask = selection_mask(x, *point, positions, None)?;
            x + mask.to_kind(x.kind()) * vector.to_device(x.device()).to_kind(x.kind())
        }
        Edit::Gated(memory) => memory.apply(x),
        Edit::Replace(replacement) => {
            let reads = replacement.reads();
            let input = if reads == *point { Some(x) } else { read_later.get(&reads) };
            let input = input.ok_or_else(|| {
                ModelError::InvalidInput(format!(
                    "the replacement at {point} reads {reads}, which the forward pass has not passed"
                ))
            })?;
            replace(x, intervention, replacement.as_ref(), input)?
        }
        Edit::Patch(source) => {
            let (found, want) = (source.size(), x.size());
            if found.len() != want.len() || found[1..] != want[1..] || (found[0] != 1 && found[0] != want[0]) {
                return Err(ModelError::InvalidInput(format!(
                    "the patch for {point} has shape {found:?}, the activation {want:?}"
                )));
            }
            let mask = selection_mask(x, *point, positions, None)?;
            source.to_device(x.device()).to_kind(x.kind()).where_self(&mask, x)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_missing_from_the_cache_is_an_error_naming_it() {
        let cache = ActivationCache::default();
        let error = cache.require(HookPoint::MlpPost(3)).unwrap_err().to_string();
        assert!(error.contains("blocks.3.mlp.hook_post") && error.contains("not recorded"), "{error}");
        assert!(cache.get_named("blocks.0.hook_resid_post").is_err());
    }

    #[test]
    fn names_round_trip() {
        for point in HookPoint::all(3) {
            let name = point.to_string();
            assert_eq!(name.parse::<HookPoint>().unwrap(), point, "{name}");
        }
        assert_eq!(HookPoint::all(3).len(), 2 + 3 * 9);
    }

    #[test]
    fn bad_names_are_errors() {
        for name in ["blocks.x.hook_resid_pre", "blocks.1.nothing", "resid", "blocks.2"] {
            assert!(name.parse::<HookPoint>().is_err(), "{name}");
        }
        assert!(HookPoint::MlpPost(5).check(4).is_err());
    }

    #[test]
    fn zero_ablation_touches_only_chosen_positions_and_features() {
        let x = Tensor::ones([1, 3, 4], (Kind::Float, tch::Device::Cpu));
        let mut hooks = Hooks::record_all().with(Intervention {
            point: HookPoint::MlpPost(0),
            positions: Positions::Only(vec![-1]),
            edit: Edit::ZeroAblate(Some(vec![1, 3])),
        });
        let y = hooks.apply(HookPoint::MlpPost(0), x).unwrap();
        let values: Vec<f32> = Vec::try_from(y.flatten(0, -1)).unwrap();
        assert_eq!(values, [1., 1., 1., 1., 1., 1., 1., 1., 1., 0., 1., 0.]);
        assert_eq!(hooks.cache.len(), 1);
    }

    #[test]
    fn steering_adds_at_positions_and_checks_shapes() {
        let x = Tensor::zeros([1, 2, 2], (Kind::Float, tch::Device::Cpu));
        let v = Tensor::from_slice(&[1f32, 2.]);
        let intervention =
            Intervention { point: HookPoint::ResidPost(0), positions: Positions::Only(vec![0]), edit: Edit::Add(v) };
        let y = apply_edit(&x, &intervention, &BTreeMap::new()).unwrap();
        assert_eq!(Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(), [1., 2., 0., 0.]);
        let wrong = Intervention {
            point: HookPoint::ResidPost(0),
            positions: Positions::All,
            edit: Edit::Add(Tensor::from_slice(&[1f32])),
        };
        assert!(apply_edit(&x, &wrong, &BTreeMap::new()).is_err());
        let out_of_range = Intervention {
            point: HookPoint::ResidPost(0),
            positions: Positions::Only(vec![5]),
            edit: Edit::ZeroAblate(None),
        };
        assert!(apply_edit(&x, &out_of_range, &BTreeMap::new()).is_err());
    }

    /// Doubles what it reads.
    #[derive(Debug)]
    struct Double(HookPoint);

    impl Replacement for Double {
        fn reads(&self) -> HookPoint {
            self.0
        }
        fn replace(&self, input: &Tensor) -> Result<Tensor> {
            Ok(input * 2.0)
        }
    }

    #[test]
    fn a_replacement_reads_an_earlier_point_and_changes_only_its_positions() {
        let ones = Tensor::ones([1, 3, 2], (Kind::Float, tch::Device::Cpu));
        let mut hooks = Hooks::default().with(Intervention {
            point: HookPoint::MlpOut(0),
            positions: Positions::Only(vec![1]),
            edit: Edit::Replace(Box::new(Double(HookPoint::MlpIn(0)))),
        });
        let mlp_in = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.]).view([1, 3, 2]);
        let passed = hooks.apply(HookPoint::MlpIn(0), mlp_in).unwrap();
        assert_eq!(Vec::<f32>::try_from(passed.flatten(0, -1)).unwrap(), [1., 2., 3., 4., 5., 6.]);
        let out = hooks.apply(HookPoint::MlpOut(0), ones.shallow_clone()).unwrap();
        assert_eq!(Vec::<f32>::try_from(out.flatten(0, -1)).unwrap(), [1., 1., 6., 8., 1., 1.]);

        // Reading a point the pass has not reached, or giving the wrong shape, is an error that says so.
        let mut early = Hooks::default().with(Intervention {
            point: HookPoint::MlpOut(0),
            positions: Positions::All,
            edit: Edit::Replace(Box::new(Double(HookPoint::MlpIn(1)))),
        });
        let error = early.apply(HookPoint::MlpOut(0), ones.shallow_clone()).unwrap_err().to_string();
        assert!(error.contains("blocks.1.mlp.hook_in") && error.contains("has not passed"), "{error}");
        let mut wide = Hooks::default().with(Intervention {
            point: HookPoint::MlpOut(0),
            positions: Positions::All,
            edit: Edit::Replace(Box::new(Double(HookPoint::MlpIn(0)))),
        });
        let _ = wide.apply(HookPoint::MlpIn(0), Tensor::ones([1, 3, 5], (Kind::Float, tch::Device::Cpu))).unwrap();
        assert!(wide.apply(HookPoint::MlpOut(0), ones).unwrap_err().to_string().contains("[1, 3, 5]"));
    }
}
