//! Reading a GGUF checkpoint's tensors under Hugging Face names, dequantized to f32, with llama.cpp's
//! rotary row permutation of the query and key projections undone.

use tch::Tensor;

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::weights::{check_shape, WeightSource};

/// A [`WeightSource`] over an open GGUF file.
pub struct GgufWeights<'a> {
    file: &'a GgufFile,
    architecture: String,
    n_heads: i64,
    n_kv_heads: i64,
}

impl<'a> GgufWeights<'a> {
    /// Wraps `file`; the head counts are needed to undo the query/key permutation of Llama files.
    pub fn new(file: &'a GgufFile, n_heads: usize, n_kv_heads: usize) -> Result<Self> {
        let architecture = file.require_str("general.architecture")?.to_string();
        Ok(GgufWeights { file, architecture, n_heads: n_heads as i64, n_kv_heads: n_kv_heads as i64 })
    }
}

/// The llama.cpp name of a Hugging Face tensor name of the Llama family, if it has one.
pub fn gguf_name(hf_name: &str) -> Option<String> {
    let fixed = match hf_name {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let rest = hf_name.strip_prefix("model.layers.")?;
    let (layer, param) = rest.split_once('.')?;
    let (module, suffix) = param.rsplit_once('.')?;
    let short = match module {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{short}.{suffix}"))
}

/// Inverts llama.cpp's `permute(w, n_head)`, which interleaves the two rotary halves of each head's rows.
pub fn unpermute_rotary_rows(w: &Tensor, n_head: i64) -> Tensor {
    let shape = w.size();
    let rows = shape[0];
    let mut grouped = vec![n_head, rows / n_head / 2, 2];
    grouped.extend_from_slice(&shape[1..]);
    w.reshape(grouped.as_slice()).transpose(1, 2).reshape(shape.as_slice())
}

impl WeightSource for GgufWeights<'_> {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let gguf = gguf_name(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        if self.file.tensor(&gguf).is_none() {
            return Err(ModelError::MissingTensor(format!("{gguf} (Hugging Face name {name})")));
        }
        let (values, found) = self.file.dequantize(&gguf)?;
        check_shape(&gguf, shape, &found)?;
        let t = Tensor::from_slice(&values).view(found.as_slice());
        let permuted_heads = match (self.architecture.as_str(), gguf.rsplit('.').nth(1)) {
            ("llama", Some("attn_q")) => Some(self.n_heads),
            ("llama", Some("attn_k")) => Some(self.n_kv_heads),
            _ => None,
        };
        Ok(match permuted_heads {
            Some(n) if shape.len() == 2 => unpermute_rotary_rows(&t, n),
            _ => t,
        })
    }

    fn contains(&self, name: &str) -> bool {
        gguf_name(name).is_some_and(|g| self.file.tensor(&g).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_llama_cpp() {
        assert_eq!(gguf_name("model.layers.3.self_attn.q_proj.weight").unwrap(), "blk.3.attn_q.weight");
        assert_eq!(gguf_name("model.layers.0.mlp.down_proj.weight").unwrap(), "blk.0.ffn_down.weight");
        assert_eq!(gguf_name("model.embed_tokens.weight").unwrap(), "token_embd.weight");
        assert!(gguf_name("model.layers.0.something.weight").is_none());
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(n, 2, r/n/2, c).swapaxes(1, 2).reshape(r, c)
        let (n, r, c) = (2i64, 8i64, 3i64);
        let original = Tensor::arange(r * c, (tch::Kind::Float, tch::Device::Cpu)).view([r, c]);
        let permuted = original.reshape([n, 2, r / n / 2, c]).transpose(1, 2).reshape([r, c]);
        assert!(unpermute_rotary_rows(&permuted, n).equal(&original));
    }
}
