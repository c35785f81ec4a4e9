//! Gradient repairs: MINT's variant (Adam on the chosen neurons' output vectors, with a KL penalty that keeps
//! unrelated prompts' distributions where they were), the fine-tuning baseline (Adam on one whole MLP layer), and
//! the fine-tuning baseline of a set (STAR's SGD baseline: Adam on the down projections of the layers a joint
//! repair would edit, on every case at once, with the KL penalty).

use std::time::Instant;

use models::tch::{Kind, Tensor};
use models::{Hooks, Model, Neuron};
use serde::{Deserialize, Serialize};

use crate::case::{check, margins, Tokens};
use crate::change::{ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::joint::SetRepair;
use crate::measure::{kl_rows, last_log_probs};
use crate::method::{Method, Repair};

/// Settings of the gradient repairs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GradientConfig {
    /// Most Adam steps; training stops as soon as every desired token has the margin.
    pub steps: usize,
    /// Adam's step size for neuron output vectors.
    pub neuron_learning_rate: f64,
    /// Adam's step size when fine-tuning a whole layer.
    pub layer_learning_rate: f64,
    /// Weight of the mean KL(before ‖ after) on unrelated prompts (MINT's variant only).
    pub kl_weight: f64,
    /// How many unrelated prompts the KL penalty reads each step.
    pub anchor_prompts: usize,
    /// The margin (logits) that stops training.
    pub margin: f32,
}

impl Default for GradientConfig {
    fn default() -> Self {
        GradientConfig {
            steps: 20,
            neuron_learning_rate: 0.02,
            layer_learning_rate: 2e-4,
            kl_weight: 1.0,
            anchor_prompts: 2,
            margin: 1.0,
        }
    }
}

/// What a gradient repair trains.
#[derive(Debug, Clone, PartialEq)]
pub enum Trainable {
    /// These neurons' output vectors.
    Neurons(Vec<Neuron>),
    /// Every weight of one layer's MLP.
    Layer(usize),
    /// The down projections of these layers.
    DownProjections(Vec<usize>),
}

/// The KL penalty's prompts: token ids, positions per prompt, reference log-probabilities.
pub type Anchor = (Vec<Vec<u32>>, i64, Tensor);

/// One trained tensor with its Adam state and the mask of entries allowed to change.
struct Trained {
    name: String,
    live: Tensor,
    before: Tensor,
    mask: Option<Tensor>,
    first: Tensor,
    second: Tensor,
}

impl Trained {
    fn new(name: String, live: Tensor, mask: Option<Tensor>) -> Self {
        let before = live.to_kind(Kind::Float).to_device(models::tch::Device::Cpu).copy();
        let (first, second) = (live.zeros_like(), live.zeros_like());
        let live = live.set_requires_grad(true);
        Trained { name, live, before, mask, first, second }
    }

    /// One Adam step (β = 0.9, 0.999) on the gradient, masked.
    fn step(&mut self, learning_rate: f64, t: i32) {
        let _guard = models::tch::no_grad_guard();
        let mut grad = self.live.grad();
        if let Some(mask) = &self.mask {
            grad *= mask;
        }
        self.first = &self.first * 0.9 + &grad * 0.1;
        self.second = &self.second * 0.999 + grad.square() * 0.001;
        let first = &self.first / (1.0 - 0.9f64.powi(t));
        let second = &self.second / (1.0 - 0.999f64.powi(t));
        let update = first / (second.sqrt() + 1e-8) * learning_rate;
        let update = match &self.mask {
            Some(mask) => update * mask,
            None => update,
        };
        let _ = self.live.f_sub_(&update);
        self.live.zero_grad();
    }
}

impl Drop for Trained {
    fn drop(&mut self) {
        self.live.zero_grad();
        let _ = self.live.set_requires_grad(false);
    }
}

/// The tensors `trainable` names, with masks for neuron columns.
fn trained_tensors(model: &Model, trainable: &Trainable) -> Result<Vec<Trained>> {
    model.check_editable()?;
    match trainable {
        Trainable::Neurons(neurons) => {
            let mut layers: Vec<usize> = neurons.iter().map(|n| n.layer).collect();
            layers.sort();
            layers.dedup();
            layers
                .into_iter()
                .map(|l| {
                    let (name, live) = model.mlp_output(l);
                    let mask = live.zeros_like();
                    for n in neurons.iter().filter(|n| n.layer == l) {
                        model.check_neuron(*n)?;
                        let _ = mask.select(1, n.index as i64).fill_(1.0);
                    }
                    Ok(Trained::new(name, live, Some(mask)))
                })
                .collect()
        }
        Trainable::DownProjections(layers) => Ok(layers
            .iter()
            .map(|&l| {
                let (name, live) = model.mlp_output(l);
                Trained::new(name, live, None)
            })
            .collect()),
        Trainable::Layer(layer) => {
            let prefix = format!("blocks.{layer}.mlp.");
            let found: Vec<Trained> = model
                .parameters()
                .into_iter()
                .filter(|(name, _)| name.starts_with(&prefix) && name.ends_with(".weight"))
                .map(|(name, live)| Trained::new(name, live, None))
                .collect();
            if found.is_empty() {
                return Err(RepairError::Settings(format!("layer {layer} has no MLP weights")));
            }
            Ok(found)
        }
    }
}

/// Trains `trainable` until every desired token of `tokens` is top-1 by `config.margin` or the steps run out;
/// the KL penalty applies when `anchor` is given. The changes stay applied.
pub fn gradient_repair(
    model: &Model,
    tokens: &Tokens,
    trainable: &Trainable,
    config: &GradientConfig,
    anchor: Option<&Anchor>,
) -> Result<Repair> {
    let start = Instant::now();
    let margins_before = check(model, tokens)?.margins;
    let (method, learning_rate) = match trainable {
        Trainable::Neurons(_) => (Method::MintGradient, config.neuron_learning_rate),
        Trainable::Layer(_) | Trainable::DownProjections(_) => (Method::FineTuneLayer, config.layer_learning_rate),
    };
    let changes = train(model, std::slice::from_ref(tokens), trainable, learning_rate, config, anchor)?;
    let margins_after = check(model, tokens)?.margins;
    Ok(Repair {
        method,
        changes,
        steps: Vec::new(),
        margins_before,
        margins_after,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Fine-tunes the down projections of `layers` on every desired token of `cases` at once (cross-entropy averaged
/// over the cases, plus the KL penalty of `anchor`) until every case is right by `config.margin` or the steps run
/// out, at the whole-layer learning rate: the SGD baseline of STAR. The changes stay applied.
pub fn finetune_set(
    model: &Model,
    cases: &[Tokens],
    layers: &[usize],
    config: &GradientConfig,
    anchor: &Anchor,
) -> Result<SetRepair> {
    if cases.is_empty() || layers.is_empty() {
        return Err(RepairError::Settings("fine-tuning a set needs cases and layers".into()));
    }
    let start = Instant::now();
    let margins = |model: &Model| cases.iter().map(|t| Ok(check(model, t)?.margins)).collect::<Result<Vec<_>>>();
    let before = margins(model)?;
    let trainable = Trainable::DownProjections(layers.to_vec());
    let changes = train(model, cases, &trainable, config.layer_learning_rate, config, Some(anchor))?;
    let after = margins(model)?;
    let given_up = vec![false; cases.len()];
    Ok(SetRepair::assemble(Method::FineTuneKl, changes, (before, after), &given_up, config.steps, start))
}

/// Adam on `trainable` over the desired tokens of `cases` (see [`gradient_repair`]); returns the changes made.
fn train(
    model: &Model,
    cases: &[Tokens],
    trainable: &Trainable,
    learning_rate: f64,
    config: &GradientConfig,
    anchor: Option<&Anchor>,
) -> Result<Vec<WeightChange>> {
    let mut trained = trained_tensors(model, trainable)?;
    let mut inputs = Vec::new();
    for tokens in cases {
        let batch = model.batch(&[tokens.ids[..tokens.ids.len() - 1].to_vec()])?;
        let desired: Vec<i64> = tokens.ids[tokens.prompt_len..].iter().map(|&t| i64::from(t)).collect();
        let targets = Tensor::from_slice(&desired).to_device(model.device);
        inputs.push((tokens, batch, desired, targets));
    }
    let share = 1.0 / cases.len() as f64;
    for t in 1..=config.steps as i32 {
        let mut all_right = true;
        for (tokens, batch, desired, targets) in &inputs {
            let normalized = model.forward(batch, None, &mut Hooks::default())?;
            let rows = normalized.get(0).narrow(0, tokens.prompt_len as i64 - 1, tokens.steps() as i64);
            let logits = model.unembed(&rows).to_kind(Kind::Float);
            all_right &= margins(&logits.detach(), desired)?.iter().all(|&m| m >= config.margin);
            (logits.cross_entropy_for_logits(targets) * share).backward();
        }
        if all_right {
            break;
        }
        if let Some((prompts, positions, reference)) = anchor {
            let kl = kl_rows(reference, &last_log_probs(model, prompts, *positions)?).mean(Kind::Float);
            (kl * config.kl_weight).backward();
        }
        for tensor in &mut trained {
            tensor.step(learning_rate, t);
        }
    }
    let changes = record_changes(model, trainable, &trained)?;
    drop(trained);
    Ok(changes)
}

/// The changes training made: one per neuron column, or one per whole tensor.
fn record_changes(model: &Model, trainable: &Trainable, trained: &[Trained]) -> Result<Vec<WeightChange>> {
    let mut changes = Vec::new();
    for tensor in trained {
        let new = tensor.live.detach().to_kind(Kind::Float).to_device(models::tch::Device::Cpu).copy();
        match trainable {
            Trainable::Neurons(neurons) => {
                for n in neurons.iter().filter(|n| model.mlp_output(n.layer).0 == tensor.name) {
                    let i = n.index as i64;
                    changes.push(WeightChange {
                        target: ChangeTarget::NeuronOutput(*n),
                        old: tensor.before.select(1, i).copy(),
                        new: new.select(1, i).copy(),
                    });
                }
            }
            Trainable::Layer(_) | Trainable::DownProjections(_) => changes.push(WeightChange {
                target: ChangeTarget::Parameter(tensor.name.clone()),
                old: tensor.before.shallow_clone(),
                new,
            }),
        }
    }
    Ok(changes)
}
