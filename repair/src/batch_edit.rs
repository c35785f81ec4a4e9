//! The closed forms of the batch editors the joint repair is compared with (shared/reference/MINT.md): MEMIT's
//! covariance-regularised least squares and AlphaEdit's null-space-projected update, each for one layer's down
//! projection W (`[d_model, d_mlp]`), with keys K (`[d_mlp, n]`, the layer's `mlp.hook_post` at the edited
//! positions) and the residual changes R (`[d_model, n]`) the edit should write there (all in f64 on the CPU); and
//! the two as repairers of a set of cases, on the same rows and budget as the joint solve.

use std::collections::HashMap;

use models::tch::{Device, Kind, Tensor};
use models::Model;
use serde::{Deserialize, Serialize};

use crate::case::Tokens;
use crate::change::{ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::joint::{margins_by_case, strongest_layers, JointConfig, SetRepair};
use crate::method::Method;
use crate::preservation::PreservationStats;
use crate::rows::Row;

fn double(t: &Tensor) -> Tensor {
    t.to_kind(Kind::Double).to_device(Device::Cpu)
}

fn check(residuals: &Tensor, keys: &Tensor, square: &Tensor) -> Result<()> {
    let (r, k, c) = (residuals.size(), keys.size(), square.size());
    if r.len() != 2 || k.len() != 2 || r[1] != k[1] || c != [k[0], k[0]] {
        return Err(RepairError::Settings(format!(
            "batch edit: residuals {r:?}, keys {k:?} and a {c:?} matrix do not fit ([d, n], [f, n], [f, f])"
        )));
    }
    Ok(())
}

/// MEMIT: ΔW = R Kᵀ (λ C₀ + K Kᵀ)⁻¹, with C₀ = E[k kᵀ] over preserved text (`covariance`, `[d_mlp, d_mlp]`).
pub fn memit_update(residuals: &Tensor, keys: &Tensor, covariance: &Tensor, lambda: f64) -> Result<Tensor> {
    check(residuals, keys, covariance)?;
    let (r, k) = (double(residuals), double(keys));
    let system = double(covariance) * lambda + k.matmul(&k.tr());
    // ΔWᵀ = (λC₀ + KKᵀ)⁻¹ K Rᵀ, the system being symmetric.
    Ok(Tensor::linalg_solve(&system, &k.matmul(&r.tr()), true).tr().to_kind(Kind::Float))
}

/// AlphaEdit's projector onto the null space of the preserved keys: P = U Uᵀ over the eigenvectors of
/// `covariance` whose eigenvalues are below `threshold`, `[d_mlp, d_mlp]`.
pub fn null_space_projector(covariance: &Tensor, threshold: f64) -> Tensor {
    let (values, vectors) = double(covariance).linalg_eigh("L");
    let kept = values.lt(threshold).nonzero().squeeze_dim(1);
    let basis = vectors.index_select(1, &kept);
    basis.matmul(&basis.tr()).to_kind(Kind::Float)
}

/// AlphaEdit: ΔW = R K₁ᵀ P (Kp Kpᵀ P + K₁ K₁ᵀ P + α I)⁻¹, with P the null-space projector and Kp Kpᵀ the
/// accumulated keys of earlier edits (`previous`, `[d_mlp, d_mlp]`; zero for the first batch).
pub fn alphaedit_update(
    residuals: &Tensor,
    keys: &Tensor,
    projector: &Tensor,
    previous: &Tensor,
    alpha: f64,
) -> Result<Tensor> {
    check(residuals, keys, projector)?;
    check(residuals, keys, previous)?;
    let (r, k, p) = (double(residuals), double(keys), double(projector));
    let f = k.size()[0];
    // ΔWᵀ = (P (Kp Kpᵀ + K₁K₁ᵀ) + αI)⁻¹ P K₁ Rᵀ, the transpose of the formula with P and the Grams symmetric.
    let system =
        p.matmul(&(double(previous) + k.matmul(&k.tr()))) + Tensor::eye(f, (Kind::Double, Device::Cpu)) * alpha;
    Ok(Tensor::linalg_solve(&system, &p.matmul(&k).matmul(&r.tr()), true).tr().to_kind(Kind::Float))
}

/// Which batch editor repairs a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchEditor {
    /// MEMIT: covariance-regularised least squares, the residual spread over the layers.
    Memit,
    /// AlphaEdit: the same spread, each update projected into the null space of the preserved keys, with the keys
    /// of earlier batches kept.
    AlphaEdit,
}

/// Settings of the batch editors, on the same cases and re-linearisation budget as the joint solve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BatchEditConfig {
    /// Every desired token must beat every other token by this many logits.
    pub margin: f32,
    /// A short row asks for this much more than the margin.
    pub overshoot: f32,
    /// Most rounds (the model re-linearised before each).
    pub rounds: usize,
    /// Share of the layers edited: those with the strongest levers for the set, as the joint solve picks them.
    pub layer_share: f64,
    /// MEMIT's weight λ of the preserved keys' second moment E[k kᵀ].
    pub lambda: f64,
    /// AlphaEdit's ridge α.
    pub alpha: f64,
    /// AlphaEdit's null space: eigenvectors of E[k kᵀ] with eigenvalues below this share of the largest.
    pub null_threshold: f64,
}

impl Default for BatchEditConfig {
    fn default() -> Self {
        BatchEditConfig {
            margin: 1.0,
            overshoot: 0.5,
            rounds: 8,
            layer_share: 0.25,
            lambda: 1.0,
            alpha: 1.0,
            null_threshold: 1e-3,
        }
    }
}

/// What AlphaEdit carries from batch to batch: per layer, the projector and the Gram of the keys edited so far.
#[derive(Default)]
pub struct EditMemory {
    projectors: HashMap<usize, Tensor>,
    previous: HashMap<usize, Tensor>,
}

/// Repairs `cases` together with `editor` (the changes stay applied): per round, each short row asks its final
/// residual for the smallest change that raises its gap by the shortfall (to first order: along its gap direction
/// c, by g / |c|²), rows already right ask for none; the wanted change is spread over the chosen layers, first to
/// last, each layer's down projection updated by the editor's closed form for its share.
pub fn batch_repair(
    model: &Model,
    cases: &[Tokens],
    stats: &PreservationStats,
    editor: BatchEditor,
    config: &BatchEditConfig,
    memory: &mut EditMemory,
) -> Result<SetRepair> {
    if cases.is_empty() || config.rounds == 0 {
        return Err(RepairError::Settings("a batch edit needs cases and at least one round".into()));
    }
    let start = std::time::Instant::now();
    let mut layers: Option<Vec<usize>> = None;
    let mut originals: Vec<(usize, Tensor)> = Vec::new();
    let mut margins_before = None;
    let mut rounds = 0;
    let rows = loop {
        let rows = crate::rows::rows_of(model, cases)?;
        margins_before.get_or_insert_with(|| margins_by_case(&rows, cases.len()));
        let short: Vec<&Row> = rows.iter().filter(|r| r.margin < config.margin).collect();
        if short.is_empty() || rounds == config.rounds {
            break rows;
        }
        let joint = JointConfig { layer_share: config.layer_share, ..JointConfig::default() };
        let chosen = layers.get_or_insert_with(|| strongest_layers(model, &short, stats, &joint)).clone();
        let wanted: Vec<Tensor> = rows
            .iter()
            .map(|r| {
                let shortfall = f64::from((config.margin + config.overshoot - r.margin).max(0.0))
                    * f64::from(u8::from(r.margin < config.margin));
                &r.direction * (shortfall / r.direction.square().sum(Kind::Float).double_value(&[]).max(1e-12))
            })
            .collect();
        let mut remaining = double(&Tensor::stack(&wanted, 1));
        for (i, &layer) in chosen.iter().enumerate() {
            let keys = double(&Tensor::stack(&rows.iter().map(|r| r.keys.get(layer as i64)).collect::<Vec<_>>(), 1));
            let share = &remaining / (chosen.len() - i) as f64;
            let covariance = stats.covariance_of(layer)?;
            let update = match editor {
                BatchEditor::Memit => memit_update(&share, &keys, &covariance, config.lambda)?,
                BatchEditor::AlphaEdit => {
                    let projector = memory.projectors.entry(layer).or_insert_with(|| {
                        let largest = double(&covariance).linalg_eigvalsh("L").max().double_value(&[]);
                        null_space_projector(&covariance, config.null_threshold * largest)
                    });
                    let width = keys.size()[0];
                    let previous = memory
                        .previous
                        .entry(layer)
                        .or_insert_with(|| Tensor::zeros([width, width], (Kind::Double, Device::Cpu)));
                    alphaedit_update(&share, &keys, projector, previous, config.alpha)?
                }
            };
            let target = ChangeTarget::Parameter(model.mlp_output(layer).0);
            let now = target.read(model)?;
            if !originals.iter().any(|(l, _)| *l == layer) {
                originals.push((layer, now.copy()));
            }
            target.write(model, &(now + &update))?;
            remaining -= double(&update).matmul(&keys);
        }
        rounds += 1;
    };
    if editor == BatchEditor::AlphaEdit {
        for &(layer, _) in &originals {
            let keys = double(&Tensor::stack(&rows.iter().map(|r| r.keys.get(layer as i64)).collect::<Vec<_>>(), 1));
            if let Some(previous) = memory.previous.get_mut(&layer) {
                *previous += keys.matmul(&keys.tr());
            }
        }
    }
    let margins_after = margins_by_case(&rows, cases.len());
    let margins_before = margins_before.unwrap_or_default();
    let changes = originals
        .into_iter()
        .map(|(layer, old)| {
            let target = ChangeTarget::Parameter(model.mlp_output(layer).0);
            Ok(WeightChange { new: target.read(model)?, target, old })
        })
        .collect::<Result<Vec<_>>>()?;
    let method = match editor {
        BatchEditor::Memit => Method::Memit,
        BatchEditor::AlphaEdit => Method::AlphaEdit,
    };
    let given_up = vec![false; cases.len()];
    Ok(SetRepair::assemble(method, changes, (margins_before, margins_after), &given_up, rounds, start))
}
