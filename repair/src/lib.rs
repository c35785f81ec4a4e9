//! MINT neuron-level repair (see shared/reference/MINT.md): repair cases, neuron targeting by direct effect and
//! attribution patching, MINT's patch and its gradient variant, the baselines (random neurons, fine-tuning one
//! MLP layer, a rank-one edit), side-effect measurement, and patch sets saved as RON + safetensors that apply
//! and revert bit-exactly.
//!
//! ```no_run
//! use models::{LoadOptions, Model};
//! use repair::{Example, Method, RepairCase, RepairConfig, Repairer};
//! let model = Model::load("smollm2-135m-instruct", LoadOptions::default())?;
//! let unrelated = vec![model.encode_prefix("def add(a, b):\n    return a + b\n", 16)?];
//! let mut repairer = Repairer::new(&model, RepairConfig::default(), unrelated, 4)?;
//! let case = RepairCase {
//!     family: "api".into(),
//!     id: "json-dumps".into(),
//!     example: Example { prompt: "import json\ntext = json.".into(), desired: "dumps".into() },
//!     variants: vec![],
//! };
//! let (repair, metrics) = repairer.repair_case(&model, &case, Method::Mint)?;
//! println!("fixed: {}, KL on unrelated prompts: {}", metrics.effective, metrics.specificity.mean_kl);
//! repair.revert(&model)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch_edit;
pub mod case;
pub mod change;
pub mod error;
pub mod features;
pub mod gated;
pub mod gradient;
pub mod joint;
pub mod lifelong;
pub mod measure;
pub mod method;
pub mod mint;
pub mod patchset;
pub mod preservation;
pub mod published;
pub mod repairer;
pub mod rows;
pub mod statistics;
pub mod target;

pub use case::{check, load_user_cases, Check, Example, RepairCase, Tokens};
pub use change::{ChangeTarget, WeightChange};
pub use error::{RepairError, Result};
pub use features::{FeatureBasis, FeatureConfig, FeatureScore, Transcoder};
pub use gradient::GradientConfig;
pub use joint::{repair_jointly, CaseOutcome, JointConfig, Levers, Preserved, SetRepair};
pub use lifelong::{GuardConfig, Guarded, LifelongStep, Verdict};
pub use measure::{RepairMetrics, Specificity, Unrelated};
pub use method::{Method, Repair, StepLog};
pub use mint::MintConfig;
pub use patchset::{ModelIdentity, PatchRecord, PatchSet};
pub use preservation::{PreservationStats, Provenance};
pub use repairer::{RepairConfig, Repairer};
pub use target::{target, NeuronScore, Ranking, Targeting};
