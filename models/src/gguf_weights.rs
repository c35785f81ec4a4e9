//! Reading a GGUF checkpoint's tensors under Hugging Face names, dequantized to f32, with the changes llama.cpp's
//! converter made to some of them undone (`gguf_arch`).

use tch::Tensor;

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::gguf_arch::{GgufArch, Heads};
use crate::weights::{check_shape, WeightSource};

/// A [`WeightSource`] over an open GGUF file.
pub struct GgufWeights<'a> {
    file: &'a GgufFile,
    arch: &'static GgufArch,
    heads: Heads,
}

impl<'a> GgufWeights<'a> {
    /// Wraps `file`, which holds an `arch` model; the head counts come from its metadata.
    pub fn new(file: &'a GgufFile, arch: &'static GgufArch) -> Result<Self> {
        let key = |k: &str| format!("{}.{k}", arch.gguf);
        let query = file.require_u64(&key("attention.head_count"))? as i64;
        let key_value = file.get(&key("attention.head_count_kv")).and_then(|v| v.as_u64()).map_or(query, |v| v as i64);
        Ok(GgufWeights { file, arch, heads: Heads { query, key_value } })
    }
}

impl WeightSource for GgufWeights<'_> {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let gguf = self.arch.tensor_name(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        if self.file.tensor(&gguf).is_none() {
            return Err(ModelError::MissingTensor(format!("{gguf} (Hugging Face name {name})")));
        }
        let (values, found) = self.file.dequantize(&gguf)?;
        let t = self.arch.to_hf(&gguf, Tensor::from_slice(&values).view(found.as_slice()), self.heads)?;
        check_shape(&gguf, shape, &t.size())?;
        Ok(t)
    }

    fn contains(&self, name: &str) -> bool {
        self.arch.tensor_name(name).is_some_and(|g| self.file.tensor(&g).is_some())
    }
}
