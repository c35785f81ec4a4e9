//! Probing and interpretation over the `models` runtime: the logit lens now; activation datasets, linear
//! probes and FIND interpretation in their issues.

pub mod logit_lens;

pub use logit_lens::{logit_lens, top_predictions, LogitLens, Prediction};
