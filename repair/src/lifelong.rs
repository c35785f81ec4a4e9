//! Lifelong repair: new cases join an applied patch set without undoing the earlier ones. The set remembers every
//! case it made right; a new repair is solved jointly with them (their tokens are rows that must keep their
//! margins, and one that slipped is repaired again in the same solve), then a regression guard re-checks every
//! earlier case and the guard's windows of reference code before the patch is kept. A patch that breaks an earlier
//! repair, changes more than a set share of the windows' top-1 tokens in one step, or brings the whole set's share
//! over its budget, is solved again with a stronger ridge, and refused with the reason when that fails too. Every step
//! is one record of the patch set, revertible bit for bit.
//!
//! Steps stacked one on another spend more of the guard's budget per case than one solve of the same cases (each
//! step's change is the smallest for its case given the earlier ones, not for all of them), so a lifelong run whose
//! new case is refused may regroup (when [`GuardConfig::regroup_growth`] asks for it): the cases its kept steps
//! added are solved again together from the model before the run, then the refused case on top; the regrouped set
//! replaces the run's steps only when it holds every one of them and the new case, otherwise the set is put back as
//! it was, bit for bit.

use models::{Model, Progress};
use serde::{Deserialize, Serialize};

use crate::case::{RepairCase, Tokens};
use crate::error::{RepairError, Result};
use crate::joint::{repair_jointly, CaseOutcome, JointConfig, Levers, Preserved};
use crate::measure::Unrelated;
use crate::patchset::PatchSet;

/// When a new repair is refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// The largest share of the guard windows' top-1 tokens one step may change.
    pub max_top1_loss: f64,
    /// The largest share of the guard windows' top-1 tokens the whole set may have changed, against the model the
    /// windows were recorded on (the unpatched model, or the model with an earlier set applied when one was).
    pub max_total_top1_loss: f64,
    /// The ridge of the second try is the first one's times this.
    pub retry_ridge: f64,
    /// A refused step of several cases is tried again as two halves, each guarded (see [`Guarded::add_in_parts`]).
    pub split_refused: bool,
    /// A lifelong run regroups (see the module documentation) when a case is refused and the set holds at least
    /// this share more cases than at its last regrouping (the first time: whenever the run has kept a step);
    /// negative (the default, until a study has measured what regrouping buys): never.
    pub regroup_growth: f64,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_top1_loss: 0.03,
            max_total_top1_loss: 0.03,
            retry_ridge: 10.0,
            split_refused: true,
            regroup_growth: -1.0,
        }
    }
}

/// What the guard decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// The patch is applied and in the set.
    Kept,
    /// The model is as it was before the step.
    Refused {
        /// Why, in words.
        reason: String,
    },
}

/// One step of lifelong repair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifelongStep {
    /// The new cases' outcomes (of the last try).
    pub outcomes: Vec<CaseOutcome>,
    /// Earlier cases still right after the step (all of them when it was kept).
    pub earlier_kept: usize,
    /// Earlier cases in the set.
    pub earlier: usize,
    /// Share of the guard windows' top-1 tokens unchanged from the model they were recorded on, after the step.
    pub top1_unchanged: f64,
    /// Tries made (1 or 2).
    pub tries: usize,
    /// Kept or refused.
    pub verdict: Verdict,
    /// Seconds for the step.
    pub seconds: f64,
    /// A step of regrouping: solving the run's earlier cases again together, with a case that was refused.
    #[serde(default)]
    pub regrouped: bool,
}

/// What every guarded step of a set uses: the preservation statistics and anchors of the solve, its levers and
/// settings, the guard's limits and the reference positions it checks (recorded on the model the set's budget counts
/// from).
pub struct Guarded<'a> {
    /// The preservation statistics and anchors.
    pub preserved: &'a Preserved,
    /// What the solve changes: neurons, or a transcoder's features.
    pub levers: Levers<'a>,
    /// The solve.
    pub joint: &'a JointConfig,
    /// The guard's limits.
    pub guard: &'a GuardConfig,
    /// The reference positions the guard checks.
    pub windows: &'a Unrelated,
}

impl Guarded<'_> {
    /// Adds `new` cases to the applied `patches` as one step (see the module documentation); the step is in
    /// `patches` when kept.
    pub fn add(
        &self,
        model: &Model,
        patches: &mut PatchSet,
        new: &[RepairCase],
        progress: &dyn Progress,
    ) -> Result<LifelongStep> {
        let top1_before = self.windows.compare(model)?.top1_unchanged;
        self.add_at(model, patches, new, top1_before, progress)
    }

    /// [`Guarded::add`] on a model whose guard windows keep `top1_before` of their top-1 tokens (measured by the
    /// caller: after a kept step it is that step's `top1_unchanged`, after a refused one what it was before).
    fn add_at(
        &self,
        model: &Model,
        patches: &mut PatchSet,
        new: &[RepairCase],
        top1_before: f64,
        progress: &dyn Progress,
    ) -> Result<LifelongStep> {
        let (preserved, guard, windows) = (self.preserved, self.guard, self.windows);
        if new.is_empty() {
            return Err(RepairError::Settings("no new cases to add".into()));
        }
        let start = std::time::Instant::now();
        let earlier: Vec<RepairCase> = patches.cases().cloned().collect();
        let all: Vec<RepairCase> = earlier.iter().chain(new).cloned().collect();
        let tokens: Vec<Tokens> = all.iter().map(|c| Tokens::new(model, &c.example)).collect::<Result<_>>()?;
        let mut config = self.joint.clone();
        let mut last = None;
        for tries in 1..=2 {
            let set = repair_jointly(model, &tokens, earlier.len(), preserved, self.levers, &config, progress)?;
            let (old, fresh) = set.outcomes.split_at(earlier.len());
            let regressions: Vec<&str> = old
                .iter()
                .zip(&earlier)
                .filter(|(o, _)| o.margins_before.iter().all(|&m| m >= 0.0) && !o.repaired())
                .map(|(_, case)| case.id.as_str())
                .collect();
            let top1 = windows.compare(model)?.top1_unchanged;
            let repaired: Vec<RepairCase> =
                fresh.iter().zip(new).filter(|(o, _)| o.repaired()).map(|(_, c)| c.clone()).collect();
            let reason = if repaired.is_empty() {
                Some(format!("none of the {} new cases could be repaired", new.len()))
            } else if !regressions.is_empty() {
                Some(format!("it would break {} earlier repairs ({})", regressions.len(), regressions.join(", ")))
            } else if top1_before - top1 > guard.max_top1_loss {
                Some(format!(
                    "it would change {:.3} of the guard windows' top-1 tokens (limit {:.3} a step)",
                    top1_before - top1,
                    guard.max_top1_loss
                ))
            } else if 1.0 - top1 > guard.max_total_top1_loss {
                Some(format!(
                    "the set would then have changed {:.3} of the guard windows' top-1 tokens (limit {:.3} in all)",
                    1.0 - top1,
                    guard.max_total_top1_loss
                ))
            } else {
                None
            };
            let mut step = LifelongStep {
                outcomes: fresh.to_vec(),
                earlier_kept: earlier.len() - regressions.len(),
                earlier: earlier.len(),
                top1_unchanged: top1,
                tries,
                verdict: Verdict::Kept,
                seconds: start.elapsed().as_secs_f64(),
                regrouped: false,
            };
            let Some(reason) = reason else {
                patches.push_set(&set.repair, repaired);
                return Ok(step);
            };
            set.repair.revert(model)?;
            step.verdict = Verdict::Refused { reason };
            last = Some(step);
            if repaired.is_empty() {
                break;
            }
            config.ridge *= guard.retry_ridge;
        }
        last.ok_or_else(|| RepairError::Settings("the guard made no try".into()))
    }

    /// Adds `new` cases as one guarded step; when the guard refuses a step of several cases and
    /// `guard.split_refused`, its two halves are added in turn the same way (so a set too large for one step's
    /// share of top-1 tokens goes in as several, and a case that cannot go in is isolated). Every step made is
    /// returned in order, refused ones included.
    pub fn add_in_parts(
        &self,
        model: &Model,
        patches: &mut PatchSet,
        new: &[RepairCase],
        progress: &dyn Progress,
    ) -> Result<Vec<LifelongStep>> {
        let mut top1 = self.windows.compare(model)?.top1_unchanged;
        self.add_in_parts_at(model, patches, new, &mut top1, progress)
    }

    /// [`Guarded::add_in_parts`] from the guard windows' share `top1` (see [`Guarded::add_at`]), which it keeps
    /// up to date with the steps kept.
    fn add_in_parts_at(
        &self,
        model: &Model,
        patches: &mut PatchSet,
        new: &[RepairCase],
        top1: &mut f64,
        progress: &dyn Progress,
    ) -> Result<Vec<LifelongStep>> {
        let step = self.add_at(model, patches, new, *top1, progress)?;
        let refused = matches!(step.verdict, Verdict::Refused { .. });
        if !refused {
            *top1 = step.top1_unchanged;
        }
        let split = self.guard.split_refused && new.len() > 1 && refused;
        let mut steps = vec![step];
        if split {
            let (first, second) = new.split_at(new.len() / 2);
            for half in [first, second] {
                steps.extend(self.add_in_parts_at(model, patches, half, top1, progress)?);
            }
        }
        Ok(steps)
    }

    /// Adds each batch of cases to the applied `patches` in one guarded step, or in parts when the guard refuses it
    /// whole (see [`Guarded::add_in_parts`]); with more than one batch (lifelong repair) a batch left out makes the
    /// run regroup as `guard.regroup_growth` allows (see the module documentation). `progress` counts the batches.
    pub fn add_batches(
        &self,
        model: &Model,
        patches: &mut PatchSet,
        batches: &[&[RepairCase]],
        progress: &dyn Progress,
    ) -> Result<Vec<LifelongStep>> {
        progress.begin("repair set steps", batches.len() as u64);
        let mut steps = Vec::new();
        let before = RunStart { records: patches.patches.len(), top1: self.windows.compare(model)?.top1_unchanged };
        let mut top1 = before.top1;
        let mut regrouped_at: Option<usize> = None;
        for batch in batches {
            progress.check()?;
            steps.extend(self.add_in_parts_at(model, patches, batch, &mut top1, &models::Silent)?);
            let held = patches.cases().count();
            let grown = regrouped_at.is_none_or(|at| held as f64 >= at as f64 * (1.0 + self.guard.regroup_growth));
            let may_regroup = batches.len() > 1 && self.guard.regroup_growth >= 0.0 && grown;
            if may_regroup && patches.patches.len() > before.records {
                let left: Vec<RepairCase> =
                    batch.iter().filter(|&c| !patches.cases().any(|h| h == c)).cloned().collect();
                if !left.is_empty() {
                    regrouped_at = Some(held);
                    steps.push(self.regroup(model, patches, &left, &before, &mut top1)?);
                }
            }
            progress.advance(1);
        }
        Ok(steps)
    }

    /// Solves the cases added since `before` again together from the model as it was then, then `new` on top (each
    /// guarded, in parts); keeps the result when it holds all of them and a new case, else restores the set.
    /// Returns one step that says which (its outcomes are the new cases', none when they were not tried).
    fn regroup(
        &self,
        model: &Model,
        patches: &mut PatchSet,
        new: &[RepairCase],
        before: &RunStart,
        top1: &mut f64,
    ) -> Result<LifelongStep> {
        let start = std::time::Instant::now();
        let run = patches.split_off(model, before.records)?;
        let again: Vec<RepairCase> = run.cases().cloned().collect();
        let (earlier, mut share) = (patches.cases().count(), before.top1);
        let mut tries = self.add_in_parts_at(model, patches, &again, &mut share, &models::Silent)?;
        let kept_again = patches.cases().count() - earlier;
        let mut outcomes = Vec::new();
        if kept_again == again.len() {
            let new_steps = self.add_in_parts_at(model, patches, new, &mut share, &models::Silent)?;
            outcomes = new_steps.last().map(|t| t.outcomes.clone()).unwrap_or_default();
            tries.extend(new_steps);
        }
        let kept_new = patches.cases().count() - earlier - kept_again;
        let mut step = LifelongStep {
            outcomes,
            earlier_kept: kept_again,
            earlier: again.len(),
            top1_unchanged: share,
            tries: tries.len(),
            verdict: Verdict::Kept,
            seconds: 0.0,
            regrouped: true,
        };
        if kept_new > 0 {
            *top1 = share;
        } else {
            drop(patches.split_off(model, before.records)?);
            patches.append_applied(model, run)?;
            step.top1_unchanged = *top1;
            step.verdict = Verdict::Refused {
                reason: format!(
                    "solved again together, the {} cases of this run kept {kept_again} and then none of the {} new: the set is as it was",
                    again.len(),
                    new.len()
                ),
            };
        }
        step.seconds = start.elapsed().as_secs_f64();
        Ok(step)
    }
}

/// Where a run of steps began: the records the set held, and the guard windows' share of top-1 tokens then.
struct RunStart {
    records: usize,
    top1: f64,
}
