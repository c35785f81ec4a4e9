//! Where an architecture reads its weights from: the [`WeightSource`] trait that the GGUF and safetensors readers
//! implement, a source that reports progress, and the shape check every source applies.

use tch::Tensor;

use crate::error::{ModelError, Result};
use crate::progress::Progress;

/// Where an architecture reads its weights from, by Hugging Face tensor name.
pub trait WeightSource {
    /// The tensor `name` on the CPU, checked against `shape`, in the float dtype the file stores it in (f32 for
    /// GGUF's quantised blocks, which are dequantised), so that a loader converts it once, into the model's dtype.
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor>;
    /// Whether the checkpoint holds `name` (used for optional tensors such as an untied `lm_head`).
    fn contains(&self, name: &str) -> bool;
}

/// A [`WeightSource`] that reports each tensor read to a [`Progress`] and stops when it is cancelled.
pub struct ReportingSource<'a> {
    inner: &'a mut dyn WeightSource,
    progress: &'a dyn Progress,
}

impl<'a> ReportingSource<'a> {
    /// Wraps `inner`; `tensors` is the number of tensors the checkpoint holds (the stage's length).
    pub fn new(inner: &'a mut dyn WeightSource, progress: &'a dyn Progress, tensors: usize) -> Self {
        progress.begin("loading weights", tensors as u64);
        ReportingSource { inner, progress }
    }
}

impl WeightSource for ReportingSource<'_> {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        self.progress.check()?;
        let t = self.inner.tensor(name, shape)?;
        self.progress.advance(1);
        Ok(t)
    }

    fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }
}

/// Checks that `found` has `expected` shape.
pub(crate) fn check_shape(name: &str, expected: &[i64], found: &[i64]) -> Result<()> {
    if expected != found {
        return Err(ModelError::ShapeMismatch {
            tensor: name.to_string(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        });
    }
    Ok(())
}
