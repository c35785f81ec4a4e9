//! Side effects of a repair on prompts it should not touch: whether their top-1 tokens stay the same and how
//! far their next-token distributions move (KL divergence from before to after), and generalization to held-out
//! variants of the repaired bug.

use models::tch::{Kind, Tensor};
use models::{Hooks, Model};
use serde::{Deserialize, Serialize};

use crate::case::{check, RepairCase, Tokens};
use crate::error::{RepairError, Result};
use crate::method::Repair;

/// Unrelated prompts (equal lengths) and the model's log-probabilities on their last positions before any repair.
pub struct Unrelated {
    prompts: Vec<Vec<u32>>,
    positions: i64,
    reference: Tensor,
}

/// Log-probabilities `[prompts × positions, vocab]` of the last `positions` positions of equally long prompts,
/// differentiable when grad mode is on.
pub fn last_log_probs(model: &Model, prompts: &[Vec<u32>], positions: i64) -> Result<Tensor> {
    let batch = model.batch(prompts)?;
    let normalized = model.forward(&batch, None, &mut Hooks::default())?;
    let tail = normalized.narrow(1, batch.seq_len() - positions, positions).flatten(0, 1);
    Ok(model.unembed(&tail).to_kind(Kind::Float).log_softmax(-1, Kind::Float))
}

/// KL(p_reference ‖ p) per row, from log-probabilities `[n, vocab]`.
pub fn kl_rows(reference: &Tensor, log_probs: &Tensor) -> Tensor {
    (reference.exp() * (reference - log_probs)).sum_dim_intlist(-1, false, Kind::Float)
}

/// How much a repair disturbed unrelated prompts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Specificity {
    /// Fraction of unrelated positions whose top-1 token is unchanged.
    pub top1_unchanged: f64,
    /// Mean KL(before ‖ after) of their next-token distributions.
    pub mean_kl: f64,
}

impl Unrelated {
    /// Records the model's distributions on the last `positions` positions of each prompt (all the same length).
    pub fn new(model: &Model, prompts: Vec<Vec<u32>>, positions: usize) -> Result<Self> {
        let length = prompts.first().map(Vec::len).unwrap_or(0);
        if prompts.is_empty() || prompts.iter().any(|p| p.len() != length) || positions == 0 || positions > length {
            return Err(RepairError::Settings(format!(
                "unrelated prompts must be non-empty, equally long and hold at least {positions} tokens"
            )));
        }
        let _guard = models::tch::no_grad_guard();
        let reference = last_log_probs(model, &prompts, positions as i64)?;
        Ok(Unrelated { prompts, positions: positions as i64, reference })
    }

    /// The prompts.
    pub fn prompts(&self) -> &[Vec<u32>] {
        &self.prompts
    }

    /// The first `count` prompts with their reference distributions, for a KL penalty while training.
    pub fn anchor(&self, count: usize) -> (Vec<Vec<u32>>, i64, Tensor) {
        let count = count.clamp(1, self.prompts.len());
        let rows = count as i64 * self.positions;
        (self.prompts[..count].to_vec(), self.positions, self.reference.narrow(0, 0, rows))
    }

    /// Compares the model as it is now with the recorded distributions.
    pub fn compare(&self, model: &Model) -> Result<Specificity> {
        let _guard = models::tch::no_grad_guard();
        let now = last_log_probs(model, &self.prompts, self.positions)?;
        let same = now.argmax(-1, false).eq_tensor(&self.reference.argmax(-1, false));
        Ok(Specificity {
            top1_unchanged: same.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]),
            mean_kl: kl_rows(&self.reference, &now).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]),
        })
    }
}

/// Whether each variant's continuation is the model's greedy choice, as it is now.
pub fn variants_correct(model: &Model, case: &RepairCase) -> Result<Vec<bool>> {
    case.variants.iter().map(|v| Ok(check(model, &Tokens::new(model, v)?)?.correct())).collect()
}

/// Everything measured about one repair (benchmark deltas are added by the experiments crate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairMetrics {
    /// Every desired token is top-1 after the repair.
    pub effective: bool,
    /// Variants that were wrong before.
    pub variants_wrong_before: usize,
    /// Of those, how many are right after.
    pub variants_fixed: usize,
    /// Variants that were right before and are wrong after.
    pub variants_broken: usize,
    /// variants_fixed / variants_wrong_before, when any was wrong.
    pub generalization: Option<f64>,
    /// Side effects on unrelated prompts.
    pub specificity: Specificity,
    /// Distinct MLP neurons changed.
    pub neurons_changed: usize,
    /// Seconds the repair took.
    pub seconds: f64,
}

/// Measures `repair` (applied to the model now) given which variants were right before it.
pub fn measure(
    model: &Model,
    case: &RepairCase,
    repair: &Repair,
    variants_before: &[bool],
    unrelated: &Unrelated,
) -> Result<RepairMetrics> {
    let after = variants_correct(model, case)?;
    let wrong_before = variants_before.iter().filter(|&&ok| !ok).count();
    let fixed = variants_before.iter().zip(&after).filter(|(&b, &a)| !b && a).count();
    let broken = variants_before.iter().zip(&after).filter(|(&b, &a)| b && !a).count();
    Ok(RepairMetrics {
        effective: repair.fixed(),
        variants_wrong_before: wrong_before,
        variants_fixed: fixed,
        variants_broken: broken,
        generalization: (wrong_before > 0).then(|| fixed as f64 / wrong_before as f64),
        specificity: unrelated.compare(model)?,
        neurons_changed: repair.neurons_changed(model),
        seconds: repair.seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_by_hand() {
        let p = Tensor::from_slice(&[0.5f32, 0.5]).log().view([1, 2]);
        let q = Tensor::from_slice(&[0.25f32, 0.75]).log().view([1, 2]);
        let expected = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!((kl_rows(&p, &q).double_value(&[0]) - expected).abs() < 1e-6);
        assert!(kl_rows(&p, &p).double_value(&[0]).abs() < 1e-7);
    }
}
