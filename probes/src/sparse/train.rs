//! Training TopK and BatchTopK dictionaries with tch (Gao et al. 2024; Bussmann et al. 2024, as SAELens trains
//! them): activations read from an activation dataset (f16 on disk and in memory), a seeded shuffle each epoch,
//! inputs and targets scaled to a mean norm of sqrt(width) (folded into the weights at the end), MSE summed over
//! the output and averaged over tokens, the auxiliary-k loss on dead features, decoder rows kept at unit norm,
//! Adam with the learning rate decayed linearly over the last fifth of the steps. Every step is a function of the
//! seed and the step number, so an interrupted run resumes from its checkpoint to the same weights.

use std::path::{Path, PathBuf};

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Progress};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::dictionary::{top_k, Activation, Dictionary};
use crate::error::{ProbeError, Result};

/// How features are chosen while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sparsity {
    /// The `k` largest pre-activations of each token; the dictionary stays TopK.
    TopK,
    /// The `k × batch` largest over the batch (at most `4k` in one token); the dictionary becomes JumpReLU with
    /// one threshold, the running mean of the smallest activation kept (as SAELens saves BatchTopK).
    BatchTopK,
}

/// What to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// How features are chosen.
    pub sparsity: Sparsity,
    /// Active features per token.
    pub k: usize,
    /// Number of features.
    pub features: usize,
    /// A transcoder's affine skip path from input to output (ignored for sparse autoencoders).
    pub skip: bool,
    /// Tokens per optimiser step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Optimiser steps.
    pub steps: usize,
    /// Weight of the auxiliary-k loss (1/32 in Gao et al.).
    pub aux_k_coefficient: f64,
    /// A feature that has not fired for this many tokens counts as dead (and feeds the auxiliary loss).
    pub dead_after_tokens: usize,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// Seed of the initial weights and of the shuffles.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            sparsity: Sparsity::BatchTopK,
            k: 32,
            features: 4608,
            skip: true,
            batch_size: 4096,
            learning_rate: 5e-4,
            steps: 2000,
            aux_k_coefficient: 1.0 / 32.0,
            dead_after_tokens: 1_000_000,
            checkpoint_every: 200,
            seed: 0,
        }
    }
}

/// Activations to train on: rows of the point read and, for a transcoder, of the point written, f16.
pub struct TrainingData {
    /// The point read.
    pub reads: HookPoint,
    /// The point written.
    pub writes: HookPoint,
    /// `[tokens, d_in]`.
    pub input: Tensor,
    /// `[tokens, d_out]` for a transcoder; `None` when the dictionary reconstructs its input.
    pub target: Option<Tensor>,
}

impl TrainingData {
    /// Reads an activation dataset written by [`crate::dataset::ActivationDataset::save`]: its first point is what
    /// the dictionary reads, its second (if any) what a transcoder writes. Rows stay in their stored dtype.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |why: String| ProbeError::InvalidInput(format!("{}: {why}", path.display()));
        let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
        let mut points: Vec<(usize, HookPoint, Tensor)> = Vec::new();
        for (name, t) in tensors {
            let Some(rest) = name.strip_prefix("features.") else { continue };
            let (k, point) = rest.split_once('.').ok_or_else(|| bad(format!("bad tensor name {name}")))?;
            let k: usize = k.parse().map_err(|_| bad(format!("bad tensor name {name}")))?;
            points.push((k, point.parse()?, t));
        }
        points.sort_by_key(|p| p.0);
        let mut points = points.into_iter();
        let (_, reads, input) = points.next().ok_or_else(|| bad("no activations (features.0.*)".into()))?;
        let (writes, target) = match points.next() {
            Some((_, writes, target)) => (writes, Some(target)),
            None => (reads, None),
        };
        if target.as_ref().is_some_and(|t| t.size()[0] != input.size()[0]) {
            return Err(bad("the two points have different numbers of rows".into()));
        }
        Ok(TrainingData { reads, writes, input, target })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.input.size()[0] as usize
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `index` of the input and the target, as f32.
    fn rows(&self, index: &Tensor) -> (Tensor, Tensor) {
        let input = self.input.index_select(0, index).to_kind(Kind::Float);
        let target = match &self.target {
            Some(target) => target.index_select(0, index).to_kind(Kind::Float),
            None => input.shallow_clone(),
        };
        (input, target)
    }
}

/// One point of the training curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Step number (1-based).
    pub step: usize,
    /// MSE over the batch's variance (fraction of variance unexplained).
    pub fvu: f64,
    /// Mean active features per token.
    pub l0: f64,
    /// Features that had not fired for `dead_after_tokens`.
    pub dead: usize,
}

/// What training did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// The settings.
    pub config: TrainConfig,
    /// Rows trained on.
    pub rows: usize,
    /// Steps taken by this call (the rest came from a checkpoint).
    pub steps_run: usize,
    /// The step this call started from (0 unless resumed).
    pub resumed_from: usize,
    /// Seconds this call trained.
    pub seconds: f64,
    /// Every 1% of the steps.
    pub curve: Vec<CurvePoint>,
    /// Scale applied to the input while training (folded into the saved weights).
    pub input_scale: f64,
    /// Scale applied to the target while training.
    pub target_scale: f64,
}

const CHECKPOINT: &str = "checkpoint.safetensors";
const CHECKPOINT_CONFIG: &str = "checkpoint-config.json";
const ADAM_BETAS: (f64, f64) = (0.9, 0.999);

/// The trainable tensors and Adam's moments.
struct State {
    names: Vec<&'static str>,
    params: Vec<Tensor>,
    moments: Vec<(Tensor, Tensor)>,
    step: usize,
    since_fired: Tensor,
    threshold: f64,
    input_scale: f64,
    target_scale: f64,
    curve: Vec<CurvePoint>,
}

impl State {
    fn param(&self, name: &str) -> &Tensor {
        &self.params[self.names.iter().position(|n| *n == name).unwrap_or(0)]
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    fn fresh(data: &TrainingData, config: &TrainConfig) -> Result<State> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let f = (Kind::Float, Device::Cpu);
        let (d_in, d_out, d_sae) =
            (data.input.size()[1], data.target.as_ref().unwrap_or(&data.input).size()[1], config.features as i64);
        let sample = Tensor::arange(data.len().min(65_536) as i64, (Kind::Int64, Device::Cpu));
        let (x, y) = data.rows(&sample);
        let scale = |t: &Tensor| {
            (t.size()[1] as f64).sqrt() / t.norm_scalaropt_dim(2, [-1], false).mean(Kind::Float).double_value(&[])
        };
        let (input_scale, target_scale) = (scale(&x), scale(&y));
        let w_dec = normal(&[d_sae, d_out], &mut rng);
        let w_dec = &w_dec / w_dec.norm_scalaropt_dim(2, [-1], true);
        let transcoder = data.target.is_some();
        let w_enc =
            if transcoder { normal(&[d_in, d_sae], &mut rng) / (d_in as f64).sqrt() } else { w_dec.tr().contiguous() };
        let b_dec = (y * target_scale).mean_dim(0, false, Kind::Float);
        let mut names = vec!["W_enc", "b_enc", "W_dec", "b_dec"];
        let mut params = vec![w_enc, Tensor::zeros([d_sae], f), w_dec, b_dec];
        if transcoder && config.skip {
            names.push("W_skip");
            params.push(Tensor::zeros([d_out, d_in], f));
        }
        let params: Vec<Tensor> = params.into_iter().map(|p| p.set_requires_grad(true)).collect();
        let moments = params.iter().map(|p| (p.zeros_like().detach(), p.zeros_like().detach())).collect();
        Ok(State {
            names,
            params,
            moments,
            step: 0,
            since_fired: Tensor::zeros([d_sae], (Kind::Int64, Device::Cpu)),
            threshold: 0.0,
            input_scale,
            target_scale,
            curve: Vec::new(),
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for (name, (param, (m, v))) in self.names.iter().zip(self.params.iter().zip(&self.moments)) {
            tensors.push((name.to_string(), param.detach().contiguous()));
            tensors.push((format!("adam_m.{name}"), m.contiguous()));
            tensors.push((format!("adam_v.{name}"), v.contiguous()));
        }
        tensors.push(("since_fired".into(), self.since_fired.shallow_clone()));
        let scalars = [self.step as f64, self.threshold, self.input_scale, self.target_scale];
        tensors.push(("scalars".into(), Tensor::from_slice(&scalars)));
        let curve: Vec<f64> = self.curve.iter().flat_map(|c| [c.step as f64, c.fvu, c.l0, c.dead as f64]).collect();
        tensors.push(("curve".into(), Tensor::from_slice(&curve).view([-1, 4])));
        let temp = dir.join(format!("{CHECKPOINT}.tmp"));
        Tensor::write_safetensors(&tensors, &temp).map_err(models::ModelError::from)?;
        std::fs::rename(&temp, dir.join(CHECKPOINT)).map_err(models::files::at(dir))?;
        Ok(())
    }

    fn resume(mut self, dir: &Path) -> Result<State> {
        let path = dir.join(CHECKPOINT);
        let bad = |why: String| ProbeError::InvalidInput(format!("{}: {why}", path.display()));
        let tensors = Tensor::read_safetensors(&path).map_err(|e| bad(e.to_string()))?;
        let get = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| bad(format!("no {name}")))
        };
        let _guard = models::tch::no_grad_guard();
        for (name, (param, (m, v))) in self.names.iter().zip(self.params.iter_mut().zip(&mut self.moments)) {
            let saved = get(name)?;
            if saved.size() != param.size() {
                return Err(bad(format!("{name} has shape {:?}, the settings give {:?}", saved.size(), param.size())));
            }
            param.copy_(&saved);
            *m = get(&format!("adam_m.{name}"))?;
            *v = get(&format!("adam_v.{name}"))?;
        }
        self.since_fired = get("since_fired")?;
        let scalars = Vec::<f64>::try_from(get("scalars")?).map_err(|e| bad(e.to_string()))?;
        let [step, threshold, input_scale, target_scale] = scalars[..] else { return Err(bad("bad scalars".into())) };
        (self.step, self.threshold, self.input_scale, self.target_scale) =
            (step as usize, threshold, input_scale, target_scale);
        let curve = Vec::<f64>::try_from(get("curve")?.flatten(0, -1)).map_err(|e| bad(e.to_string()))?;
        self.curve = curve
            .chunks(4)
            .map(|c| CurvePoint { step: c[0] as usize, fvu: c[1], l0: c[2], dead: c[3] as usize })
            .collect();
        Ok(self)
    }
}

/// A tensor of `shape` drawn from the standard normal distribution by `rng` (not libtorch's global generator, which
/// other threads share).
pub(crate) fn normal(shape: &[i64], rng: &mut rand::rngs::StdRng) -> Tensor {
    let count = shape.iter().product::<i64>() as usize;
    let values: Vec<f32> = StandardNormal.sample_iter(rng).take(count).collect();
    Tensor::from_slice(&values).view(shape)
}

/// The row order of epoch `epoch`: a shuffle seeded by the seed and the epoch.
fn epoch_order(rows: usize, seed: u64, epoch: usize) -> Vec<i64> {
    let mut order: Vec<i64> = (0..rows as i64).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    order
}

/// Trains a dictionary on `data`. With `checkpoint_dir`, the state is saved there every `checkpoint_every` steps
/// and when cancelled, and a run with the same settings resumes from it.
pub fn train(
    data: &TrainingData,
    config: &TrainConfig,
    checkpoint_dir: Option<&Path>,
    progress: &dyn Progress,
) -> Result<(Dictionary, TrainReport)> {
    let batch = config.batch_size;
    if config.k == 0 || config.k > config.features || batch == 0 || config.steps == 0 {
        return Err(ProbeError::InvalidInput(format!(
            "training needs 0 < k <= features, a batch and steps (k {}, features {}, batch {}, steps {})",
            config.k, config.features, batch, config.steps
        )));
    }
    if data.len() < batch {
        return Err(ProbeError::InvalidInput(format!("{} rows of activations for batches of {batch}", data.len())));
    }
    let mut state = State::fresh(data, config)?;
    if let Some(dir) = checkpoint_dir {
        state = open_checkpoint(dir, config, state)?;
    }
    let resumed_from = state.step;
    let started = std::time::Instant::now();
    let per_epoch = data.len() / batch;
    let log_every = (config.steps / 100).max(1);
    let mut order: Option<(usize, Vec<i64>)> = None;
    progress.begin("training the dictionary", config.steps as u64);
    progress.advance(state.step as u64);
    while state.step < config.steps {
        if progress.is_cancelled() {
            if let Some(dir) = checkpoint_dir {
                state.save(dir)?;
            }
            return Err(models::ModelError::Cancelled.into());
        }
        let (epoch, within) = (state.step / per_epoch, state.step % per_epoch);
        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            order = Some((epoch, epoch_order(data.len(), config.seed, epoch)));
        }
        let rows = order.as_ref().map(|(_, o)| &o[within * batch..(within + 1) * batch]).unwrap_or_default();
        let (x, y) = data.rows(&Tensor::from_slice(rows));
        let (x, y) = (x * state.input_scale, y * state.target_scale);
        let point = step(&mut state, config, &x, &y, data.target.is_none());
        if state.step % log_every == 0 || state.step == config.steps {
            state.curve.push(point);
        }
        if let Some(dir) = checkpoint_dir.filter(|_| state.step % config.checkpoint_every.max(1) == 0) {
            state.save(dir)?;
        }
        progress.advance(1);
    }
    if let Some(dir) = checkpoint_dir {
        state.save(dir)?;
    }
    let dictionary = fold(&state, config, data);
    let report = TrainReport {
        config: config.clone(),
        rows: data.len(),
        steps_run: config.steps - resumed_from,
        resumed_from,
        seconds: started.elapsed().as_secs_f64(),
        curve: state.curve.clone(),
        input_scale: state.input_scale,
        target_scale: state.target_scale,
    };
    Ok((dictionary, report))
}

/// The state to start from: the checkpoint in `dir` when its settings are these, a fresh one when there is none.
fn open_checkpoint(dir: &Path, config: &TrainConfig, fresh: State) -> Result<State> {
    std::fs::create_dir_all(dir).map_err(models::files::at(dir))?;
    let config_path: PathBuf = dir.join(CHECKPOINT_CONFIG);
    if dir.join(CHECKPOINT).exists() {
        let saved: TrainConfig =
            serde_json::from_slice(&std::fs::read(&config_path).map_err(models::files::at(&config_path))?)?;
        if saved != *config {
            return Err(ProbeError::InvalidInput(format!(
                "{} holds a checkpoint of other settings ({saved:?}); remove it or train into another folder",
                dir.display()
            )));
        }
        return fresh.resume(dir);
    }
    models::files::write_atomically(&config_path, &serde_json::to_vec_pretty(config)?)?;
    Ok(fresh)
}

/// The features a batch activates, as (row, feature, value) triples: `k` per row for TopK, the `k × rows` largest
/// pre-activations of the whole batch for BatchTopK. Decoding gathers only their decoder rows, so the decoder costs
/// `k` rows per token instead of a dense product with every feature.
struct Chosen {
    rows: Tensor,
    features: Tensor,
    /// After the ReLU, with the gradient to the pre-activations.
    values: Tensor,
    batch: i64,
}

impl Chosen {
    fn of(pre: &Tensor, k: i64, sparsity: Sparsity) -> Chosen {
        let (batch, width) = (pre.size()[0], pre.size()[1]);
        let (values, rows, features) = match sparsity {
            Sparsity::TopK => {
                let (values, features) = pre.topk(k, -1, true, false);
                let rows = Tensor::arange(batch, (Kind::Int64, pre.device())).unsqueeze(1).expand([batch, k], false);
                (values.reshape([-1]), rows.reshape([-1]), features.reshape([-1]))
            }
            Sparsity::BatchTopK => {
                // The batch's k × rows largest, taken among each row's 4k largest (a full sort of the batch costs
                // ten times more): a token holds at most 4k features.
                let per_row = (4 * k).min(width);
                let (candidates, columns) = pre.topk(per_row, -1, true, false);
                let (values, flat) = candidates.reshape([-1]).topk((k * batch).min(batch * per_row), -1, true, false);
                (values, flat.floor_divide_scalar(per_row), columns.reshape([-1]).index_select(0, &flat))
            }
        };
        Chosen { rows, features, values: values.relu(), batch }
    }

    /// `Σ value × W_dec[feature]` per row, `[batch, d_out]`.
    fn decode(&self, w_dec: &Tensor) -> Tensor {
        let written = w_dec.index_select(0, &self.features) * self.values.unsqueeze(-1);
        Tensor::zeros([self.batch, w_dec.size()[1]], (w_dec.kind(), w_dec.device())).index_add(0, &self.rows, &written)
    }
}

/// One optimiser step on a batch (`x`, `y` already scaled); returns the batch's curve point.
fn step(state: &mut State, config: &TrainConfig, x: &Tensor, y: &Tensor, autoencoder: bool) -> CurvePoint {
    let k = config.k as i64;
    let (w_enc, b_enc, w_dec, b_dec) =
        (state.param("W_enc"), state.param("b_enc"), state.param("W_dec"), state.param("b_dec"));
    let centred = if autoencoder { x - b_dec } else { x.shallow_clone() };
    let pre = centred.matmul(w_enc) + b_enc;
    let chosen = Chosen::of(&pre, k, config.sparsity);
    let decoded = chosen.decode(w_dec) + b_dec;
    let out = if state.has("W_skip") { decoded + x.matmul(&state.param("W_skip").tr()) } else { decoded };
    let mse = (&out - y).square().sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float);
    let variance =
        (y - y.mean_dim(0, true, Kind::Float)).square().sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float);
    let dead = state.since_fired.ge(config.dead_after_tokens as i64);
    let n_dead = dead.sum(Kind::Int64).int64_value(&[]);
    let loss = if n_dead > 0 && config.aux_k_coefficient > 0.0 {
        // Gao et al.'s auxiliary loss: the dead features' top pre-activations reconstruct the residual error.
        let error = (y - &out).detach();
        let k_aux = (y.size()[1] / 2).min(n_dead);
        let dead_pre = pre.masked_fill(&dead.logical_not(), f64::NEG_INFINITY);
        let aux_out = top_k(&dead_pre, k_aux).nan_to_num(0.0, 0.0, 0.0).matmul(w_dec);
        let aux = (aux_out - &error).square().sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float);
        let error_variance = (&error - error.mean_dim(0, true, Kind::Float))
            .square()
            .sum_dim_intlist(-1, false, Kind::Float)
            .mean(Kind::Float);
        &mse + aux / error_variance.clamp_min(1e-12) * config.aux_k_coefficient
    } else {
        mse.shallow_clone()
    };
    loss.backward();
    state.step += 1;
    let decay_from = config.steps - config.steps / 5;
    let lr = if state.step <= decay_from {
        config.learning_rate
    } else {
        config.learning_rate * (config.steps - state.step + 1) as f64 / (config.steps - decay_from) as f64
    };
    let _guard = models::tch::no_grad_guard();
    let (b1, b2) = ADAM_BETAS;
    let t = state.step as i32;
    for (param, (m, v)) in state.params.iter_mut().zip(&mut state.moments) {
        let mut grad = param.grad();
        if !grad.defined() {
            continue;
        }
        *m = &*m * b1 + &grad * (1.0 - b1);
        *v = &*v * b2 + grad.square() * (1.0 - b2);
        let m_hat = &*m / (1.0 - b1.powi(t));
        let v_hat = &*v / (1.0 - b2.powi(t));
        let update = m_hat / (v_hat.sqrt() + 1e-8) * lr;
        let _ = param.f_sub_(&update);
        let _ = grad.zero_();
    }
    let w_dec = state.param("W_dec");
    let norms = w_dec.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-8);
    w_dec.detach().copy_(&(w_dec.detach() / norms));
    let active = chosen.values.gt(0.0);
    let fired = chosen.features.masked_select(&active);
    let fired = state.since_fired.zeros_like().index_fill(0, &fired, 1).gt(0);
    state.since_fired = (&state.since_fired + x.size()[0]).masked_fill(&fired, 0);
    if config.sparsity == Sparsity::BatchTopK {
        let positive = chosen.values.detach().masked_fill(&active.logical_not(), f64::INFINITY).min().double_value(&[]);
        if positive.is_finite() {
            state.threshold = if state.step == 1 { positive } else { 0.99 * state.threshold + 0.01 * positive };
        }
    }
    let l0 = active.sum(Kind::Float).double_value(&[]) / x.size()[0] as f64;
    CurvePoint {
        step: state.step,
        fvu: mse.double_value(&[]) / variance.double_value(&[]).max(1e-12),
        l0,
        dead: n_dead as usize,
    }
}

/// The trained dictionary in the data's own units: the scales folded into the weights (SAELens's
/// `fold_activation_norm_scaling_factor`), BatchTopK turned into JumpReLU with its learned threshold.
fn fold(state: &State, config: &TrainConfig, data: &TrainingData) -> Dictionary {
    let (s_in, s_out) = (state.input_scale, state.target_scale);
    let detached = |name: &str| state.param(name).detach().copy();
    let d_sae = config.features as i64;
    let (activation, threshold) = match config.sparsity {
        Sparsity::TopK => (Activation::TopK { k: config.k }, None),
        Sparsity::BatchTopK => {
            (Activation::JumpRelu, Some(Tensor::full([d_sae], state.threshold, (Kind::Float, Device::Cpu))))
        }
    };
    let autoencoder = data.target.is_none();
    Dictionary {
        activation,
        reads: data.reads,
        writes: data.writes,
        apply_b_dec_to_input: autoencoder,
        w_enc: detached("W_enc") * s_in,
        b_enc: detached("b_enc"),
        w_dec: detached("W_dec") / s_out,
        b_dec: detached("b_dec") / s_out,
        threshold,
        w_skip: state.has("W_skip").then(|| detached("W_skip") * (s_in / s_out)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Rows that are sums of 2 of 24 fixed random directions in 16 dimensions with random positive weights.
    fn sparse_data(rows: i64) -> TrainingData {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let directions = normal(&[24, 16], &mut rng);
        let noise = normal(&[rows, 24], &mut rng);
        let picks = noise.topk(2, -1, true, false).1;
        let weights = noise.zeros_like().scatter(-1, &picks, &(noise.gather(-1, &picks, false).abs() + 0.5));
        let input = weights.matmul(&directions).to_kind(Kind::Half);
        TrainingData { reads: HookPoint::ResidPost(0), writes: HookPoint::ResidPost(0), input, target: None }
    }

    fn config() -> TrainConfig {
        TrainConfig {
            sparsity: Sparsity::TopK,
            k: 2,
            features: 32,
            skip: false,
            batch_size: 256,
            learning_rate: 3e-3,
            steps: 300,
            dead_after_tokens: 5_000,
            checkpoint_every: 1000,
            seed: 5,
            ..TrainConfig::default()
        }
    }

    /// Cancels once `after` steps are done.
    struct StopAfter {
        after: u64,
        done: AtomicU64,
    }

    impl Progress for StopAfter {
        fn begin(&self, _stage: &str, _total: u64) {}
        fn advance(&self, steps: u64) {
            self.done.fetch_add(steps, Ordering::SeqCst);
        }
        fn is_cancelled(&self) -> bool {
            self.done.load(Ordering::SeqCst) >= self.after
        }
    }

    #[test]
    fn a_topk_dictionary_recovers_sparse_structure() {
        let data = sparse_data(8192);
        let (dictionary, report) =
            train(&data, &TrainConfig { steps: 1000, ..config() }, None, &models::Silent).unwrap();
        let last = report.curve.last().unwrap();
        assert!(last.fvu < 0.1, "fraction of variance unexplained {}", last.fvu);
        assert!(report.curve[0].fvu > 0.3, "the curve starts at {}", report.curve[0].fvu);
        assert_eq!(last.l0, 2.0);
        // The folded dictionary reconstructs the unscaled rows as well as training did.
        let x = data.input.narrow(0, 0, 1024).to_kind(Kind::Float);
        let fvu = (dictionary.reconstruct(&x) - &x).square().sum(Kind::Float).double_value(&[])
            / (&x - x.mean_dim(0, true, Kind::Float)).square().sum(Kind::Float).double_value(&[]);
        assert!(fvu < 0.1, "{fvu}");
    }

    #[test]
    fn chosen_features_decode_as_the_dense_product() {
        let pre = Tensor::from_slice(&[5f32, 4., -1., 0.1, 0.2, 0.3]).view([2, 3]);
        let w_dec = Tensor::from_slice(&[1f32, 0., 0., 1., 1., 1.]).view([3, 2]);
        let dense = |chosen: &Chosen| Vec::<f32>::try_from(chosen.decode(&w_dec).flatten(0, -1)).unwrap();
        // TopK 1: 5 from row 0, 0.3 from row 1.
        assert_eq!(dense(&Chosen::of(&pre, 1, Sparsity::TopK)), [5., 0., 0.3, 0.3]);
        // BatchTopK 1 keeps the two largest of the batch, both in row 0; with 2, the four largest.
        assert_eq!(dense(&Chosen::of(&pre, 1, Sparsity::BatchTopK)), [5., 4., 0., 0.]);
        let four = Chosen::of(&pre, 2, Sparsity::BatchTopK);
        assert_eq!(Vec::<i64>::try_from(&four.rows.sort(0, false).0).unwrap(), [0, 0, 1, 1]);
        assert_eq!(dense(&four), [5., 4., 0.3, 0.5]);
    }

    #[test]
    fn training_is_deterministic_and_resumes_to_the_same_weights() {
        let data = sparse_data(2048);
        let config = TrainConfig { steps: 40, checkpoint_every: 7, sparsity: Sparsity::BatchTopK, ..config() };
        let (straight, _) = train(&data, &config, None, &models::Silent).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stop = StopAfter { after: 23, done: AtomicU64::new(0) };
        let error = train(&data, &config, Some(dir.path()), &stop).err().unwrap();
        assert!(matches!(error, ProbeError::Model(models::ModelError::Cancelled)), "{error}");
        let (resumed, report) = train(&data, &config, Some(dir.path()), &models::Silent).unwrap();
        assert_eq!((report.resumed_from, report.steps_run), (23, 17));
        assert_eq!(resumed.activation, Activation::JumpRelu);
        for ((name, a), (_, b)) in straight.named_tensors().into_iter().zip(resumed.named_tensors()) {
            assert!(a.equal(b), "{name} differs after resuming");
        }
        let other = TrainConfig { seed: 6, ..config.clone() };
        let error = train(&data, &other, Some(dir.path()), &models::Silent).err().unwrap().to_string();
        assert!(error.contains("other settings"), "{error}");
        let (reseeded, _) = train(&data, &other, None, &models::Silent).unwrap();
        assert!(!reseeded.w_enc.equal(&straight.w_enc), "the seed must matter");
    }
}
