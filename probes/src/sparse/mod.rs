//! Sparse dictionaries over a model's activations: sparse autoencoders (TopK, BatchTopK, JumpReLU) and transcoders
//! from an MLP's input to its output (optionally with a skip path). They are trained here ([`train`]), read and
//! written in SAELens's format ([`saelens`]), and measured as SAELens measures them ([`metrics`]).

pub mod dictionary;
pub mod metrics;
pub mod saelens;
pub mod steering;
pub mod train;

use std::path::Path;

use models::{HookPoint, Model, Progress};

use crate::dataset::{collect, TokenLabeller};
use crate::error::Result;
pub use dictionary::{Activation, Dictionary};

/// Labels every token but each document's first: the first position, which attends only to itself, carries
/// activations unlike the rest (an attention sink); dictionaries are trained and measured without it, as SAELens
/// leaves out the BOS token.
pub struct AfterFirstToken;

impl TokenLabeller for AfterFirstToken {
    fn name(&self) -> &str {
        "after_first_token"
    }
    fn classes(&self) -> usize {
        1
    }
    fn labels(&self, _text: &str, spans: &[models::tokenizer::ByteSpan]) -> Vec<Option<usize>> {
        (0..spans.len()).map(|i| (i > 0).then_some(0)).collect()
    }
}

/// Runs `model` over `documents` (their first `max_tokens` tokens) and writes the activations a dictionary from
/// `reads` to `writes` trains on to `path`, in f16 (one point when they are the same). Returns the rows written.
pub fn collect_training_data(
    model: &Model,
    documents: &[String],
    reads: HookPoint,
    writes: HookPoint,
    max_tokens: usize,
    path: &Path,
    progress: &dyn Progress,
) -> Result<usize> {
    let points = if reads == writes { vec![reads] } else { vec![reads, writes] };
    let data = collect(model, documents, &AfterFirstToken, &points, max_tokens, progress)?;
    data.save(path, true)?;
    Ok(data.labels.len())
}
