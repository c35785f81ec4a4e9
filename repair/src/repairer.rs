//! One entry point for every method: the shared state (unrelated prompts for specificity and the KL penalty,
//! key statistics for the rank-one edit) and `repair` + `measure` for a case.

use models::Model;
use serde::{Deserialize, Serialize};

use crate::case::{check, RepairCase, Tokens};
use crate::error::RepairError;
use crate::error::Result;
use crate::features::{FeatureBasis, FeatureConfig};
use crate::gated::{gated_repair, GatedConfig};
use crate::gradient::{gradient_repair, GradientConfig, Trainable};
use crate::measure::{measure, variants_correct, RepairMetrics, Unrelated};
use crate::method::{Method, Repair};
use crate::mint::{repair_tokens, Editor, MintConfig};
use crate::published::{published_repair, PublishedConfig, SemanticBasis};
use crate::statistics::{activation_rms, KeyStatistics};
use crate::target::target;

/// Settings of every method.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RepairConfig {
    /// MINT's loop (also the random-neuron and rank-one baselines).
    pub mint: MintConfig,
    /// The gradient variant and the fine-tuning baseline.
    pub gradient: GradientConfig,
    /// MINT as its authors' code runs it.
    pub published: PublishedConfig,
    /// The gated alternative.
    pub gated: GatedConfig,
    /// MINT on a transcoder's features.
    pub features: FeatureConfig,
}

/// Repairs cases with any [`Method`] and measures them against one set of unrelated prompts.
pub struct Repairer {
    /// Settings.
    pub config: RepairConfig,
    /// The unrelated prompts with the unrepaired model's distributions.
    pub unrelated: Unrelated,
    keys: KeyStatistics,
    activation_rms: models::tch::Tensor,
    /// MINT as published needs it; made at its first repair.
    semantic: Option<SemanticBasis>,
    /// Feature repairs need it ([`Repairer::with_features`]).
    features: Option<FeatureBasis>,
    repairs: u64,
}

impl Repairer {
    /// Records the model's distributions on the last `positions` positions of `unrelated` (equally long
    /// prompts); the model must not be patched yet.
    pub fn new(model: &Model, config: RepairConfig, unrelated: Vec<Vec<u32>>, positions: usize) -> Result<Self> {
        config.mint.validate()?;
        let keys = KeyStatistics::new(unrelated.clone())?;
        let activation_rms = activation_rms(model, &unrelated)?;
        Ok(Repairer {
            config,
            unrelated: Unrelated::new(model, unrelated, positions)?,
            keys,
            activation_rms,
            semantic: None,
            features: None,
            repairs: 0,
        })
    }

    /// Gives the repairer a transcoder's features, for [`Method::MintFeatures`].
    pub fn with_features(mut self, basis: FeatureBasis) -> Self {
        self.features = Some(basis);
        self
    }

    /// Takes the repairs made so far to be `repairs`: the random-neuron baseline draws its neurons from the count, so
    /// a study that repairs each case in a repairer of its own starts it where one repairer for every case would be.
    pub fn count_repairs_from(&mut self, repairs: u64) {
        self.repairs = repairs;
    }

    /// Repairs `tokens` with `method`; the changes stay applied.
    pub fn repair(&mut self, model: &Model, tokens: &Tokens, method: Method) -> Result<Repair> {
        self.repairs += 1;
        let mint = &self.config.mint;
        let rms = Some(&self.activation_rms);
        match method {
            Method::Mint => repair_tokens(model, tokens, mint, &mut Editor::Mint, rms),
            Method::RandomNeurons => {
                repair_tokens(model, tokens, mint, &mut Editor::random(mint.seed + self.repairs), rms)
            }
            Method::RankOne => repair_tokens(model, tokens, mint, &mut Editor::RankOne(&mut self.keys), rms),
            Method::MintPublished => {
                let basis = self.semantic.get_or_insert_with(|| SemanticBasis::new(model));
                published_repair(model, tokens, &self.config.published, basis)
            }
            Method::Gated => gated_repair(model, tokens, &self.config.gated),
            Method::MintFeatures => {
                let basis = self.features.as_ref().ok_or_else(|| {
                    RepairError::Settings(
                        "mint-features repairs through a transcoder: give one (features: (transcoder: Some(\"DIR\")) in a spec, --transcoder DIR on the command line)".into(),
                    )
                })?;
                repair_tokens(model, tokens, mint, &mut Editor::Features(basis), rms)
            }
            Method::Joint | Method::JointFeatures | Method::Memit | Method::AlphaEdit | Method::FineTuneKl => {
                Err(RepairError::Settings(format!(
                    "{method} repairs sets of cases: use a repair set (workbench repair --cases F.jsonl)"
                )))
            }
            Method::MintGradient | Method::FineTuneLayer => {
                let Some(step) = check(model, tokens)?.first_below(0.0) else {
                    return gradient_repair(
                        model,
                        tokens,
                        &Trainable::Neurons(Vec::new()),
                        &self.config.gradient,
                        None,
                    );
                };
                let targeting = target(model, tokens.context(step), tokens.desired(step), false, rms)?;
                let top = targeting.top(mint.ranking, mint.neurons_per_token.min(mint.max_edits))?;
                if method == Method::FineTuneLayer {
                    return gradient_repair(
                        model,
                        tokens,
                        &Trainable::Layer(top[0].neuron.layer),
                        &self.config.gradient,
                        None,
                    );
                }
                let neurons = top.iter().map(|s| s.neuron).collect();
                let anchor = self.unrelated.anchor(self.config.gradient.anchor_prompts);
                gradient_repair(model, tokens, &Trainable::Neurons(neurons), &self.config.gradient, Some(&anchor))
            }
        }
    }

    /// Repairs `case` with `method` and measures the result; the repair stays applied.
    pub fn repair_case(&mut self, model: &Model, case: &RepairCase, method: Method) -> Result<(Repair, RepairMetrics)> {
        let tokens = Tokens::new(model, &case.example)?;
        let variants_before = variants_correct(model, case)?;
        let repair = self.repair(model, &tokens, method)?;
        let metrics = measure(model, case, &repair, &variants_before, &self.unrelated)?;
        Ok((repair, metrics))
    }
}
