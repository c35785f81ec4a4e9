//! The causal check of a probe: add the probe's direction for a chosen class to the residual stream at the
//! probed layer and measure whether the model's behaviour moves towards that class (e.g. the value it prints),
//! against a random direction of the same norm.

use models::tch::{Device, Kind, Tensor};
use models::{Edit, HookPoint, Hooks, Intervention, Model, Positions, Progress};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::{ProbeError, Result};

/// One prompt to steer.
#[derive(Debug, Clone)]
pub struct SteeringCase {
    /// Token ids; the behaviour is the next-token distribution after the last one.
    pub ids: Vec<u32>,
    /// Positions the direction is added at.
    pub positions: Vec<i64>,
    /// The class the unsteered prompt belongs to.
    pub true_class: usize,
}

/// Mean change of the target class's log-probability, and how often it becomes the top class.
#[derive(Debug, Clone, Serialize)]
pub struct EffectStats {
    /// Mean over cases of log p(target) steered minus unsteered.
    pub mean_delta_logprob: f64,
    /// Standard deviation of that change.
    pub std_delta_logprob: f64,
    /// Fraction of cases whose most likely class token is the target after steering.
    pub target_top_rate: f64,
}

/// The probe direction against a random one.
#[derive(Debug, Clone, Serialize)]
pub struct SteeringReport {
    /// Where the direction was added.
    pub point: String,
    /// Norm of every added vector.
    pub norm: f64,
    /// Cases steered.
    pub cases: usize,
    /// Fraction of cases whose top class token is the true class without steering.
    pub unsteered_accuracy: f64,
    /// Steering along the probe's direction for the target class.
    pub probe: EffectStats,
    /// Steering along random directions of the same norm.
    pub random: EffectStats,
    /// (probe mean - random mean) / pooled standard deviation of the log-probability changes.
    pub effect_size: f64,
}

/// What to steer with: per class, a direction `[d]` in the activation space of `point`.
pub struct SteeringSetup<'a> {
    /// The hook point (the probe's layer).
    pub point: HookPoint,
    /// `[classes, d]` directions (e.g. a probe's class weights minus their mean, mapped to raw features).
    pub directions: &'a Tensor,
    /// The token that expresses each class in the output (e.g. the digit `"7"` for value 7).
    pub class_tokens: &'a [u32],
    /// Norm of the added vector.
    pub norm: f64,
    /// Seed for target classes and random directions.
    pub seed: u64,
}

fn log_probs(
    model: &Model,
    case: &SteeringCase,
    add: Option<&Tensor>,
    point: HookPoint,
    tokens: &Tensor,
) -> Result<Tensor> {
    let mut hooks = Hooks::default();
    if let Some(vector) = add {
        hooks.push(Intervention {
            point,
            positions: Positions::Only(case.positions.clone()),
            edit: Edit::Add(vector.to_kind(model.kind).to_device(model.device)),
        });
    }
    let logits = model.run_with_hooks(&case.ids, &mut hooks)?;
    Ok(logits
        .get(case.ids.len() as i64 - 1)
        .log_softmax(-1, Kind::Float)
        .index_select(0, tokens)
        .to_device(Device::Cpu))
}

/// Mean and sample standard deviation (0 and 0 for no values).
pub(crate) fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn stats(deltas: &[f64], hits: usize) -> EffectStats {
    let (mean, sd) = mean_sd(deltas);
    EffectStats {
        mean_delta_logprob: mean,
        std_delta_logprob: sd,
        target_top_rate: hits as f64 / deltas.len().max(1) as f64,
    }
}

/// Steers each case towards a random class other than its own, once along the probe direction and once along
/// a random direction, both scaled to `setup.norm`.
pub fn steering_check(
    model: &Model,
    cases: &[SteeringCase],
    setup: &SteeringSetup,
    progress: &dyn Progress,
) -> Result<SteeringReport> {
    let classes = setup.class_tokens.len();
    if classes < 2 || setup.directions.size()[0] != classes as i64 || cases.is_empty() {
        return Err(ProbeError::InvalidInput(format!(
            "{} cases, {classes} class tokens and directions {:?}",
            cases.len(),
            setup.directions.size()
        )));
    }
    let _guard = models::tch::no_grad_guard();
    let tokens = Tensor::from_slice(&setup.class_tokens.iter().map(|&t| i64::from(t)).collect::<Vec<_>>())
        .to_device(model.device);
    let width = setup.directions.size()[1];
    let scaled = |v: Tensor| -> Tensor { &v / v.norm().clamp_min(1e-12) * setup.norm };
    let mut rng = StdRng::seed_from_u64(setup.seed);
    models::tch::manual_seed(setup.seed as i64);
    let (mut probe_deltas, mut random_deltas, mut probe_hits, mut random_hits, mut correct) = (vec![], vec![], 0, 0, 0);
    progress.begin("steering", cases.len() as u64);
    for case in cases {
        progress.check()?;
        let target = (case.true_class + rng.gen_range(1..classes)) % classes;
        let base = log_probs(model, case, None, setup.point, &tokens)?;
        correct += usize::from(i64::try_from(base.argmax(0, false)).unwrap_or(-1) == case.true_class as i64);
        let probe = scaled(setup.directions.get(target as i64).to_kind(Kind::Float));
        let random = scaled(Tensor::randn([width], (Kind::Float, Device::Cpu)));
        for (direction, deltas, hits) in
            [(probe, &mut probe_deltas, &mut probe_hits), (random, &mut random_deltas, &mut random_hits)]
        {
            let steered = log_probs(model, case, Some(&direction), setup.point, &tokens)?;
            deltas.push(f64::try_from(steered.get(target as i64) - base.get(target as i64)).unwrap_or(0.0));
            *hits += usize::from(i64::try_from(steered.argmax(0, false)).unwrap_or(-1) == target as i64);
        }
        progress.advance(1);
    }
    let (probe, random) = (stats(&probe_deltas, probe_hits), stats(&random_deltas, random_hits));
    let pooled = ((probe.std_delta_logprob.powi(2) + random.std_delta_logprob.powi(2)) / 2.0).sqrt().max(1e-12);
    Ok(SteeringReport {
        point: setup.point.to_string(),
        norm: setup.norm,
        cases: cases.len(),
        unsteered_accuracy: correct as f64 / cases.len() as f64,
        effect_size: (probe.mean_delta_logprob - random.mean_delta_logprob) / pooled,
        probe,
        random,
    })
}
