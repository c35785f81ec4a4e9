//! The repair methods the workbench compares, and the record every method returns.

use std::fmt;
use std::str::FromStr;

use models::Model;
use serde::{Deserialize, Serialize};

use crate::change::{revert_all, ChangeTarget, WeightChange};
use crate::error::{RepairError, Result};
use crate::features::FeatureScore;
use crate::target::NeuronScore;

/// A way to repair a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    /// MINT: the top-ranked neurons' output vectors moved along J^T(u_d − u_w) by the smallest amount.
    Mint,
    /// MINT's gradient variant: a few Adam steps on the top neurons' output vectors with a KL penalty on
    /// unrelated prompts.
    MintGradient,
    /// Baseline: the same patch procedure and budget on neurons chosen at random.
    RandomNeurons,
    /// Baseline: gradient fine-tuning of one whole MLP layer.
    FineTuneLayer,
    /// Baseline: a ROME-style rank-one edit of one down projection.
    RankOne,
    /// Baseline: MINT as its authors' code runs it ([`crate::published`]).
    MintPublished,
    /// The gated alternative: a new unit that fires only near the case's key, weights untouched ([`crate::gated`]).
    Gated,
    /// The joint closed-form solve of a set of cases ([`crate::joint`], STAR/ASTRA form).
    Joint,
    /// MEMIT on a set of cases ([`crate::batch_edit`]).
    Memit,
    /// AlphaEdit on a set of cases ([`crate::batch_edit`]).
    AlphaEdit,
    /// Fine-tuning of the set's layers on all its cases with a KL penalty ([`crate::gradient::finetune_set`]).
    FineTuneKl,
    /// MINT on a transcoder's features: the top-ranked features' decoder rows moved along J^T(u_d − u_w), each as
    /// a rank-one change of the down projection ([`crate::features`]).
    MintFeatures,
    /// The joint closed-form solve of a set of cases through a transcoder's features instead of neurons
    /// ([`crate::joint::Levers::Features`]).
    JointFeatures,
}

impl Method {
    /// Every method that repairs one case alone, MINT first (the joint solve repairs sets: [`crate::lifelong`]).
    pub const ALL: [Method; 8] = [
        Method::Mint,
        Method::MintGradient,
        Method::RandomNeurons,
        Method::FineTuneLayer,
        Method::RankOne,
        Method::MintPublished,
        Method::Gated,
        Method::MintFeatures,
    ];

    /// Whether the method works on a transcoder's features (and needs one: [`crate::features::FeatureConfig`]).
    pub fn needs_transcoder(self) -> bool {
        matches!(self, Method::MintFeatures | Method::JointFeatures)
    }

    /// The name used on the command line, in specs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Method::Mint => "mint",
            Method::MintGradient => "mint-gradient",
            Method::RandomNeurons => "random-neurons",
            Method::FineTuneLayer => "fine-tune-layer",
            Method::RankOne => "rank-one",
            Method::MintPublished => "mint-published",
            Method::Gated => "gated",
            Method::Joint => "joint",
            Method::Memit => "memit",
            Method::AlphaEdit => "alphaedit",
            Method::FineTuneKl => "fine-tune-kl",
            Method::MintFeatures => "mint-features",
            Method::JointFeatures => "joint-features",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = RepairError;

    fn from_str(s: &str) -> Result<Self> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            RepairError::Settings(format!("unknown repair method {s:?}; use one of {}", names.join(", ")))
        })
    }
}

/// One edit made while repairing a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EditLog {
    /// What was edited.
    pub target: ChangeTarget,
    /// |change| / |values before|.
    pub relative_change: f64,
    /// The step's margin after the edit.
    pub margin_after: f32,
    /// Whether the edit alone reached the wanted margin (false: it stopped at the size cap).
    pub reached: bool,
}

/// What happened at one wrong desired token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepLog {
    /// Index of the desired token.
    pub step: usize,
    /// The desired token.
    pub desired: u32,
    /// The model's choice instead.
    pub wrong: u32,
    /// logit_d − logit_w before.
    pub gap_before: f32,
    /// The top-ranked neurons with their scores (neuron methods).
    pub top: Vec<NeuronScore>,
    /// The top-ranked features with their scores (feature methods).
    #[serde(default)]
    pub features: Vec<FeatureScore>,
    /// The edits made.
    pub edits: Vec<EditLog>,
}

/// A repair as applied to the model: the changes (to revert or save) and what the method did.
#[derive(Debug)]
pub struct Repair {
    /// The method.
    pub method: Method,
    /// The changes in the order made.
    pub changes: Vec<WeightChange>,
    /// Per repaired token, for methods that work token by token.
    pub steps: Vec<StepLog>,
    /// Margins of the desired tokens before and after.
    pub margins_before: Vec<f32>,
    /// Margins after.
    pub margins_after: Vec<f32>,
    /// Wall-clock seconds (targeting, patching and checking).
    pub seconds: f64,
}

impl Repair {
    /// Whether every desired token is now top-1.
    pub fn fixed(&self) -> bool {
        !self.margins_after.is_empty() && self.margins_after.iter().all(|&m| m >= 0.0)
    }

    /// Distinct MLP neurons whose weights changed.
    pub fn neurons_changed(&self, model: &Model) -> usize {
        neurons_changed(model, self.changes.iter())
    }

    /// Puts the model back as it was before the repair, bit for bit.
    pub fn revert(&self, model: &Model) -> Result<()> {
        revert_all(model, &self.changes)
    }
}

/// Distinct MLP neurons whose weights `changes` touch (a changed MLP parameter touches all of its layer's, counted
/// once per layer however many of them change), and the gates they add (one new unit each).
pub fn neurons_changed<'a>(model: &Model, changes: impl Iterator<Item = &'a WeightChange>) -> usize {
    let (mut neurons, mut layers, mut gates) = (Vec::new(), Vec::new(), Vec::new());
    for change in changes {
        match &change.target {
            ChangeTarget::NeuronOutput(n) => neurons.push(*n),
            ChangeTarget::Gate { layer, slot } => gates.push((*layer, *slot)),
            ChangeTarget::Parameter(name) if name.contains(".mlp.") => {
                layers.push(name.split(".mlp.").next().unwrap_or_default().to_string())
            }
            ChangeTarget::Parameter(_) => {}
        }
    }
    neurons.sort();
    neurons.dedup();
    layers.sort();
    layers.dedup();
    neurons.retain(|n| !layers.iter().any(|l| *l == format!("blocks.{}", n.layer)));
    gates.sort();
    gates.dedup();
    neurons.len() + layers.len() * model.shape().d_mlp + gates.len()
}
