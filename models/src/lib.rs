//! The tch runtime of the workbench: model files (GGUF), tokenizers, architectures, hook points and
//! interventions, neuron weight edits, and generation.
//!
//! ```no_run
//! use models::{Model, LoadOptions, HookPoint};
//! let model = Model::load("smollm2-135m-instruct", LoadOptions::default())?;
//! let ids = model.encode("import json\njson.")?;
//! let (logits, cache) = model.run_with_cache(&ids, |p| matches!(p, HookPoint::MlpPost(_)))?;
//! # Ok::<(), models::ModelError>(())
//! ```

pub mod activations;
pub mod arch;
pub mod catalogue;
pub mod config;
pub mod cuda;
pub mod error;
pub mod files;
pub mod footprint;
pub mod gates;
pub mod generate;
pub mod gguf;
pub mod gguf_arch;
pub mod gguf_weights;
pub mod hf_cache;
pub mod hooks;
pub mod load;
pub mod memory;
pub mod model;
pub mod neurons;
pub mod panics;
pub mod progress;
pub mod safetensors_weights;
pub mod sentencepiece;
pub mod supported;
pub mod tokenizer;
pub mod weights;
pub mod writers;

pub use arch::{Architecture, ModelShape, WeightFormat};
pub use error::{ModelError, Result};
pub use generate::{Generation, GenerationConfig, Sampling, StopReason};
pub use hooks::{ActivationCache, Edit, HookPoint, Hooks, Intervention, Positions, Replacement};
pub use model::{parse_device, parse_kind, Batch, LoadOptions, Model, ModelFormat};
pub use neurons::{Neuron, NeuronWeights, WeightSnapshot};
pub use progress::{CancelToken, Progress, Silent};
pub use tch;
pub use tokenizer::{ChatMessage, Tokenizer};
