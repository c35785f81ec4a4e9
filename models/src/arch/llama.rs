//! Llama (SmolLM2, CodeLlama, DeepSeek-Coder, TinyLlama): RMSNorm, rotary embeddings, grouped-query
//! attention and a SwiGLU MLP. Query/key/value and gate/up projections are stored fused for speed; the
//! per-projection tensors handed out are views of them.

use tch::{Device, Kind, Tensor};

use super::layers::{attention, rms_norm, KvCache, Rope};
use super::{place, Architecture, ForwardInput, MlpWeights, ModelShape, WeightSource};
use crate::config::HfConfig;
use crate::error::Result;
use crate::gguf::GgufFile;
use crate::hooks::{HookPoint, Hooks};

/// Hyper-parameters of a Llama model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Residual width.
    pub hidden_size: usize,
    /// MLP neurons per layer.
    pub intermediate_size: usize,
    /// Number of blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub max_position_embeddings: usize,
    /// Whether `lm_head` is the token embedding.
    pub tie_word_embeddings: bool,
}

impl LlamaConfig {
    /// Reads the `llama.*` metadata of a GGUF file.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let arch = file.require_str("general.architecture")?;
        let key = |k: &str| format!("{arch}.{k}");
        let hidden_size = file.require_u64(&key("embedding_length"))? as usize;
        let num_attention_heads = file.require_u64(&key("attention.head_count"))? as usize;
        let vocab_size = match file.get(&key("vocab_size")).and_then(|v| v.as_u64()) {
            Some(v) => v as usize,
            None => file
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .ok_or_else(|| crate::ModelError::config(key("vocab_size"), "missing"))?,
        };
        Ok(LlamaConfig {
            hidden_size,
            intermediate_size: file.require_u64(&key("feed_forward_length"))? as usize,
            num_hidden_layers: file.require_u64(&key("block_count"))? as usize,
            num_attention_heads,
            num_key_value_heads: file
                .get(&key("attention.head_count_kv"))
                .and_then(|v| v.as_u64())
                .map_or(num_attention_heads, |v| v as usize),
            head_dim: file
                .get(&key("attention.key_length"))
                .and_then(|v| v.as_u64())
                .map_or(hidden_size / num_attention_heads.max(1), |v| v as usize),
            rms_norm_eps: file.require_f64(&key("attention.layer_norm_rms_epsilon"))?,
            rope_theta: file.get(&key("rope.freq_base")).and_then(|v| v.as_f64()).unwrap_or(10_000.0),
            vocab_size,
            max_position_embeddings: file.require_u64(&key("context_length"))? as usize,
            tie_word_embeddings: file.tensor("output.weight").is_none(),
        })
    }

    /// Reads a Hugging Face `config.json`.
    pub fn from_hf(config: &HfConfig) -> Result<Self> {
        let hidden_size = config.usize("hidden_size")?;
        let num_attention_heads = config.usize("num_attention_heads")?;
        Ok(LlamaConfig {
            hidden_size,
            intermediate_size: config.usize("intermediate_size")?,
            num_hidden_layers: config.usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads: config.usize_or("num_key_value_heads", num_attention_heads)?,
            head_dim: config.usize_or("head_dim", hidden_size / num_attention_heads.max(1))?,
            rms_norm_eps: config.f64_or("rms_norm_eps", 1e-6)?,
            rope_theta: config.rope_theta(10_000.0)?,
            vocab_size: config.usize("vocab_size")?,
            max_position_embeddings: config.usize_or("max_position_embeddings", 2048)?,
            tie_word_embeddings: config.bool_or("tie_word_embeddings", false)?,
        })
    }

    fn shape(&self) -> ModelShape {
        ModelShape {
            architecture: "llama".into(),
            n_layers: self.num_hidden_layers,
            d_model: self.hidden_size,
            d_mlp: self.intermediate_size,
            n_heads: self.num_attention_heads,
            n_kv_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            vocab_size: self.vocab_size,
            context_length: self.max_position_embeddings,
            tied_embeddings: self.tie_word_embeddings,
        }
    }
}

struct Block {
    input_norm: Tensor,
    /// q, k and v projections stacked: `[(heads + 2 kv_heads) * head_dim, d_model]`.
    qkv: Tensor,
    o: Tensor,
    post_attention_norm: Tensor,
    /// gate and up projections stacked: `[2 d_mlp, d_model]`.
    gate_up: Tensor,
    down: Tensor,
}

/// A Llama model ready to run.
pub struct Llama {
    config: LlamaConfig,
    shape: ModelShape,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Tensor,
    rope: Rope,
}

impl Llama {
    /// Loads the weights from `source` onto `device` in `kind`.
    pub fn load(config: LlamaConfig, source: &mut dyn WeightSource, device: Device, kind: Kind) -> Result<Self> {
        let (d, heads, kv, hd, mlp, vocab) = (
            config.hidden_size as i64,
            config.num_attention_heads as i64,
            config.num_key_value_heads as i64,
            config.head_dim as i64,
            config.intermediate_size as i64,
            config.vocab_size as i64,
        );
        let mut get =
            |name: &str, shape: &[i64]| -> Result<Tensor> { Ok(place(source.tensor(name, shape)?, device, kind)) };
        let embed = get("model.embed_tokens.weight", &[vocab, d])?;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let q = get(&format!("{p}.self_attn.q_proj.weight"), &[heads * hd, d])?;
            let k = get(&format!("{p}.self_attn.k_proj.weight"), &[kv * hd, d])?;
            let v = get(&format!("{p}.self_attn.v_proj.weight"), &[kv * hd, d])?;
            let gate = get(&format!("{p}.mlp.gate_proj.weight"), &[mlp, d])?;
            let up = get(&format!("{p}.mlp.up_proj.weight"), &[mlp, d])?;
            blocks.push(Block {
                input_norm: get(&format!("{p}.input_layernorm.weight"), &[d])?,
                qkv: Tensor::cat(&[q, k, v], 0),
                o: get(&format!("{p}.self_attn.o_proj.weight"), &[d, heads * hd])?,
                post_attention_norm: get(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
                gate_up: Tensor::cat(&[gate, up], 0),
                down: get(&format!("{p}.mlp.down_proj.weight"), &[d, mlp])?,
            });
        }
        let norm = get("model.norm.weight", &[d])?;
        let untied = !config.tie_word_embeddings && source.contains("lm_head.weight");
        let lm_head = if untied {
            place(source.tensor("lm_head.weight", &[vocab, d])?, device, kind)
        } else {
            embed.shallow_clone()
        };
        let mut config = config;
        config.tie_word_embeddings = !untied;
        let rope = Rope::new(hd, config.rope_theta, config.max_position_embeddings as i64, device, kind);
        let shape = config.shape();
        Ok(Llama { config, shape, embed, blocks, norm, lm_head, rope })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    fn block_forward(
        &self,
        l: usize,
        x: Tensor,
        input: &ForwardInput,
        rope: &(Tensor, Tensor),
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let block = &self.blocks[l];
        let (b, t) = (input.ids.size()[0], input.ids.size()[1]);
        let (heads, kv, hd) = (
            self.config.num_attention_heads as i64,
            self.config.num_key_value_heads as i64,
            self.config.head_dim as i64,
        );
        let resid_pre = hooks.apply(HookPoint::ResidPre(l), x)?;

        let h = rms_norm(&resid_pre, &block.input_norm, self.config.rms_norm_eps);
        // Queries and keys are rotated together: one rotation per layer instead of two.
        let qkv = h.linear(&block.qkv, None::<&Tensor>).view([b, t, heads + 2 * kv, hd]).transpose(1, 2);
        let qk = self.rope.apply(&qkv.narrow(1, 0, heads + kv), rope);
        let (q, k) = (qk.narrow(1, 0, heads), qk.narrow(1, heads, kv));
        let v = qkv.narrow(1, heads + kv, kv);
        let (k, v) = match cache {
            Some(c) => c.append(l, &k, &v),
            None => (k, v),
        };
        let want_pattern = hooks.wants(HookPoint::AttnPattern(l));
        let (mut z, pattern) = attention(&q, &k, &v, input.mask, 1.0 / (hd as f64).sqrt(), want_pattern);
        if let Some(pattern) = pattern {
            let pattern = hooks.apply(HookPoint::AttnPattern(l), pattern)?;
            let repeat = heads / kv;
            z = pattern.matmul(&if repeat > 1 { v.repeat_interleave_self_int(repeat, 1, None) } else { v });
        }
        let attn_out = z.transpose(1, 2).reshape([b, t, heads * hd]).linear(&block.o, None::<&Tensor>);
        let attn_out = hooks.apply(HookPoint::AttnOut(l), attn_out)?;
        let resid_mid = hooks.apply(HookPoint::ResidMid(l), resid_pre + attn_out)?;

        let h = rms_norm(&resid_mid, &block.post_attention_norm, self.config.rms_norm_eps);
        let gate_up = h.linear(&block.gate_up, None::<&Tensor>);
        let d_mlp = self.config.intermediate_size as i64;
        let pre = hooks.apply(HookPoint::MlpPre(l), gate_up.narrow(-1, 0, d_mlp))?;
        let post = hooks.apply(HookPoint::MlpPost(l), pre.silu() * gate_up.narrow(-1, d_mlp, d_mlp))?;
        let mlp_out = hooks.apply(HookPoint::MlpOut(l), post.linear(&block.down, None::<&Tensor>))?;
        hooks.apply(HookPoint::ResidPost(l), resid_mid + mlp_out)
    }
}

impl Architecture for Llama {
    fn shape(&self) -> &ModelShape {
        &self.shape
    }

    fn forward(&self, input: &ForwardInput, mut cache: Option<&mut KvCache>, hooks: &mut Hooks) -> Result<Tensor> {
        let mut x = hooks.apply(HookPoint::Embed, Tensor::embedding(&self.embed, input.ids, -1, false, false))?;
        let rope = self.rope.factors(input.positions);
        for l in 0..self.blocks.len() {
            x = self.block_forward(l, x, input, &rope, cache.as_deref_mut(), hooks)?;
        }
        if let Some(c) = cache {
            c.advance(input.ids.size()[1]);
        }
        hooks.apply(HookPoint::LnFinal, self.final_norm(&x))
    }

    fn final_norm(&self, resid: &Tensor) -> Tensor {
        rms_norm(resid, &self.norm, self.config.rms_norm_eps)
    }

    fn unembed(&self, normalized: &Tensor) -> Tensor {
        normalized.linear(&self.lm_head, None::<&Tensor>)
    }

    fn unembedding(&self) -> &Tensor {
        &self.lm_head
    }

    fn mlp(&self, layer: usize) -> MlpWeights {
        let block = &self.blocks[layer];
        let d_mlp = self.config.intermediate_size as i64;
        let p = format!("model.layers.{layer}.mlp");
        MlpWeights {
            inputs: vec![
                (format!("{p}.gate_proj.weight"), block.gate_up.narrow(0, 0, d_mlp)),
                (format!("{p}.up_proj.weight"), block.gate_up.narrow(0, d_mlp, d_mlp)),
            ],
            output: (format!("{p}.down_proj.weight"), block.down.shallow_clone()),
        }
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        let (heads, kv, hd) = (
            self.config.num_attention_heads as i64,
            self.config.num_key_value_heads as i64,
            self.config.head_dim as i64,
        );
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embed.shallow_clone())];
        for (l, block) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{l}");
            out.push((format!("{p}.input_layernorm.weight"), block.input_norm.shallow_clone()));
            out.push((format!("{p}.self_attn.q_proj.weight"), block.qkv.narrow(0, 0, heads * hd)));
            out.push((format!("{p}.self_attn.k_proj.weight"), block.qkv.narrow(0, heads * hd, kv * hd)));
            out.push((format!("{p}.self_attn.v_proj.weight"), block.qkv.narrow(0, (heads + kv) * hd, kv * hd)));
            out.push((format!("{p}.self_attn.o_proj.weight"), block.o.shallow_clone()));
            out.push((format!("{p}.post_attention_layernorm.weight"), block.post_attention_norm.shallow_clone()));
            let mlp = self.mlp(l);
            out.extend(mlp.inputs);
            out.push(mlp.output);
        }
        out.push(("model.norm.weight".to_string(), self.norm.shallow_clone()));
        if !self.config.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), self.lm_head.shallow_clone()));
        }
        out
    }
}
