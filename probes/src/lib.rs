//! Probing over the `models` runtime: activation datasets and probing tasks, linear probes (linfa and a batched
//! tch trainer) with the full protocol, the logit lens, the steering check, and plots. FIND-style interpretation
//! is the `find` crate.

pub mod corpus;
pub mod dataset;
pub mod error;
pub mod inspect;
pub mod linear;
pub mod logit_lens;
pub mod plots;
pub mod program_study;
pub mod protocol;
pub mod sparse;
pub mod steering;
pub mod structure;
pub mod study;
pub mod tasks;
pub mod trainer;

pub use error::{ProbeError, Result};
pub use logit_lens::{lens_over_corpus, logit_lens, top_predictions, LensCurve, LogitLens, Prediction};
