//! The decoder-only transformer every supported architecture is an instance of. Each architecture file
//! reads its own config and tensors and hands them over in one layout: `nn.Linear` weights (`[out, in]`),
//! query/key/value rows fused as `[q heads; k heads; v heads]` with rotary dimensions in rotate-half order,
//! gate and up rows fused as `[gate; up]`.

use tch::{Device, Kind, Tensor};

use crate::weights::WeightSource;

use super::layers::{attention, linear, rms_norm, KvCache, Rope};
use super::packed::{PackedWeight, WeightFormat};
use super::{Architecture, ForwardInput, MlpWeights, ModelShape};
use crate::error::{ModelError, Result};
use crate::hooks::{HookPoint, Hooks};

/// Which normalisation the blocks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// RMSNorm (weight only).
    Rms,
    /// RMSNorm scaled by one plus its weight (Gemma), so that a zero weight is the identity scale.
    RmsPlusOne,
    /// LayerNorm (weight and bias).
    Layer,
}

/// The MLP's non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (Llama's SwiGLU gate).
    Silu,
    /// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// Exact GELU (`gelu`).
    Gelu,
}

impl Activation {
    /// The activation named by a Hugging Face config (`hidden_act` / `activation_function`).
    pub fn from_hf(name: &str) -> Result<Self> {
        match name {
            "silu" | "swish" => Ok(Activation::Silu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "gelu" => Ok(Activation::Gelu),
            other => Err(ModelError::config("hidden_act", format!("activation {other:?} is not supported"))),
        }
    }

    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Silu => x.silu(),
            Activation::GeluTanh => x.gelu("tanh"),
            Activation::Gelu => x.gelu("none"),
        }
    }
}

/// How attention and MLP join the residual stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residual {
    /// `x + attn(ln1(x))`, then `+ mlp(ln2(.))` (Llama, GPT-2).
    Sequential,
    /// `x + attn(ln1(x)) + mlp(ln2(x))` (GPT-NeoX).
    Parallel,
    /// `x + attn(ln1(x)) + mlp(ln1(x))`, one norm shared (CodeGen, GPT-J).
    ParallelSharedNorm,
}

/// Everything that distinguishes one architecture's forward pass from another's.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// Sizes, as reported to the rest of the workbench.
    pub shape: ModelShape,
    /// Block and final norms.
    pub norm: NormKind,
    /// Norm epsilon.
    pub norm_eps: f64,
    /// Rotary embeddings on the first `rotary_dim` dimensions of each head, with this base; `None` for
    /// learned absolute positions.
    pub rotary: Option<(i64, f64)>,
    /// MLP non-linearity.
    pub activation: Activation,
    /// Whether the MLP is gated (`act(gate) * up`).
    pub gated_mlp: bool,
    /// How the sublayers join the residual stream.
    pub residual: Residual,
    /// Sliding-window attention (Mistral, StarCoder2; Gemma 2's local layers).
    pub sliding_window: Option<SlidingWindow>,
    /// Constant factors on the embeddings, the sublayers' outputs, the attention scores and the logits (Granite).
    pub scales: Scales,
    /// The Hugging Face `config.json` that describes this model, for writers.
    pub hf_config: serde_json::Value,
}

/// Sliding-window attention: each token sees itself and `size - 1` tokens before it, in the layers `layers` names.
#[derive(Debug, Clone, PartialEq)]
pub struct SlidingWindow {
    /// Tokens seen.
    pub size: i64,
    /// Which layers use the window.
    pub layers: WindowedLayers,
}

/// The layers a sliding window applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowedLayers {
    /// Every layer.
    All,
    /// Layers 0, 2, 4, ... (Gemma 2's default): a rule, so that a config's layer count reserves nothing.
    Even,
    /// The layers marked `true`, by index.
    Listed(Vec<bool>),
}

impl SlidingWindow {
    /// A window of `size` tokens in every layer.
    pub fn everywhere(size: usize) -> Self {
        SlidingWindow { size: size as i64, layers: WindowedLayers::All }
    }

    fn in_layer(&self, layer: usize) -> bool {
        match &self.layers {
            WindowedLayers::All => true,
            WindowedLayers::Even => layer.is_multiple_of(2),
            WindowedLayers::Listed(layers) => layers.get(layer).copied().unwrap_or(false),
        }
    }
}

/// Constant factors some architectures put into the forward pass (Granite's multipliers); [`Scales::NONE`] for the
/// rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    /// Times the token embeddings.
    pub embedding: f64,
    /// Times each attention and MLP output before it joins the residual stream (`hook_attn_out` and `hook_mlp_out`
    /// record the scaled outputs).
    pub residual: f64,
    /// The attention scores' factor, instead of 1/sqrt(head width).
    pub attention: Option<f64>,
    /// The logits are divided by this.
    pub logits: f64,
    /// Attention scores capped to `cap * tanh(score / cap)` (Gemma 2).
    pub attention_softcap: Option<f64>,
    /// Logits capped the same way, after the division (Gemma 2).
    pub logit_softcap: Option<f64>,
}

impl Scales {
    /// No factors.
    pub const NONE: Scales = Scales {
        embedding: 1.0,
        residual: 1.0,
        attention: None,
        logits: 1.0,
        attention_softcap: None,
        logit_softcap: None,
    };
}

/// `tensor` times `factor`, without a multiplication when the factor is 1.
fn scaled(tensor: Tensor, factor: f64) -> Tensor {
    if factor == 1.0 {
        tensor
    } else {
        tensor * factor
    }
}

/// A norm's parameters.
pub struct Norm {
    /// Scale.
    pub weight: Tensor,
    /// Shift (LayerNorm only).
    pub bias: Option<Tensor>,
}

/// A linear layer in `nn.Linear` layout.
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`, if the layer has one.
    pub bias: Option<Tensor>,
    /// The weight packed for generation ([`Architecture::pack_weights`]); when present, steps of a few tokens
    /// multiply by it instead of `weight`.
    pub packed: Option<PackedWeight>,
}

impl Linear {
    /// A dense layer.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear { weight, bias, packed: None }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        self.packed
            .as_ref()
            .and_then(|packed| packed.linear(x, self.bias.as_ref()))
            .unwrap_or_else(|| linear(x, &self.weight, self.bias.as_ref()))
    }

    fn pack(&mut self, format: WeightFormat) -> Result<()> {
        self.packed = Some(PackedWeight::pack(format, &mut self.weight)?);
        Ok(())
    }

    /// Appends this layer's weight and bias (views) under `{prefix}.weight` / `{prefix}.bias`, for writers.
    pub fn push_to(&self, out: &mut Vec<(String, Tensor)>, prefix: &str) {
        push_weight_and_bias(out, prefix, self.weight.shallow_clone(), self.bias.as_ref().map(Tensor::shallow_clone));
    }
}

impl Norm {
    /// Appends this norm's weight and bias (views) under `{prefix}.weight` / `{prefix}.bias`, for writers.
    pub fn push_to(&self, out: &mut Vec<(String, Tensor)>, prefix: &str) {
        push_weight_and_bias(out, prefix, self.weight.shallow_clone(), self.bias.as_ref().map(Tensor::shallow_clone));
    }
}

/// Appends `{prefix}.weight` and, when there is one, `{prefix}.bias` to a writer's list of tensors.
pub fn push_weight_and_bias(out: &mut Vec<(String, Tensor)>, prefix: &str, weight: Tensor, bias: Option<Tensor>) {
    out.push((format!("{prefix}.weight"), weight));
    out.extend(bias.map(|b| (format!("{prefix}.bias"), b)));
}

/// One block's parameters in the common layout.
pub struct Block {
    /// Norm before attention (and before the MLP with a shared norm).
    pub ln1: Norm,
    /// Norm before the MLP (absent with [`Residual::ParallelSharedNorm`]).
    pub ln2: Option<Norm>,
    /// Fused query/key/value projection.
    pub qkv: Linear,
    /// Attention output projection.
    pub o: Linear,
    /// RMSNorms of each query head and each key head before the rotation (Qwen3's `q_norm`, `k_norm`).
    pub qk_norm: Option<(Norm, Norm)>,
    /// Norms of the attention output and of the MLP output before each joins the residual stream (Gemma 2's
    /// `post_attention_layernorm`, `post_feedforward_layernorm`).
    pub post_norms: Option<(Norm, Norm)>,
    /// MLP input projection (`[gate; up]` when gated).
    pub mlp_in: Linear,
    /// MLP output projection `[d_model, d_mlp]`.
    pub mlp_out: Linear,
}

/// Non-block parameters.
pub struct Embeddings {
    /// Token embeddings `[vocab, d_model]`.
    pub tokens: Tensor,
    /// Learned positions `[context, d_model]`, for architectures without rotary embeddings.
    pub positions: Option<Tensor>,
    /// Final norm.
    pub final_norm: Norm,
    /// Unembedding `[vocab, d_model]` (the token embeddings when tied) and its optional bias.
    pub unembed: Linear,
}

impl Embeddings {
    /// Appends the final norm under `{norm}` and, unless the embeddings are `tied`, the unembedding under
    /// `{unembed}`: the tail of every architecture's list of tensors, for writers.
    pub fn push_tail_to(&self, out: &mut Vec<(String, Tensor)>, norm: &str, unembed: &str, tied: bool) {
        self.final_norm.push_to(out, norm);
        if !tied {
            self.unembed.push_to(out, unembed);
        }
    }
}

/// A decoder-only transformer ready to run.
pub struct Decoder {
    config: DecoderConfig,
    embeddings: Embeddings,
    blocks: Vec<Block>,
    rope: Option<Rope>,
    hf_tensors: HfTensors,
}

/// An architecture's mapping of a decoder's parameters to Hugging Face names and layouts (each architecture file
/// has one, so the decoder needs to know none of them).
pub type HfTensors = fn(&Decoder) -> Vec<(String, Tensor)>;

impl Decoder {
    /// Assembles a model from parameters already on their device and in their dtype; `hf_tensors` writes it
    /// back under Hugging Face names. Refuses a shape no forward pass can run with ([`ModelShape::check`]) and
    /// rotary embeddings that are odd, empty or wider than a head.
    pub fn new(
        config: DecoderConfig,
        embeddings: Embeddings,
        blocks: Vec<Block>,
        hf_tensors: HfTensors,
    ) -> Result<Self> {
        config.shape.check()?;
        if let Some((dim, _)) = config.rotary {
            check_rotary(dim, config.shape.head_dim as i64)?;
        }
        let (device, kind) = (embeddings.tokens.device(), embeddings.tokens.kind());
        let rope = config.rotary.map(|(dim, base)| Rope::new(dim, base, device, kind));
        Ok(Decoder { config, embeddings, blocks, rope, hf_tensors })
    }

    /// The configuration the model runs with.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Replaces the `config.json` writers emit (with the one the model was loaded from).
    pub fn with_hf_config(mut self, config: serde_json::Value) -> Self {
        self.config.hf_config = config;
        self
    }

    /// The blocks' parameters, for writers.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// Embeddings, final norm and unembedding, for writers.
    pub fn embeddings(&self) -> &Embeddings {
        &self.embeddings
    }

    fn norm(&self, x: &Tensor, norm: &Norm) -> Tensor {
        match self.config.norm {
            NormKind::Rms => rms_norm(x, &norm.weight, self.config.norm_eps),
            NormKind::RmsPlusOne => rms_norm(x, &(&norm.weight + 1.0), self.config.norm_eps),
            NormKind::Layer => {
                let d = *x.size().last().unwrap_or(&0);
                x.layer_norm([d], Some(&norm.weight), norm.bias.as_ref(), self.config.norm_eps, false)
            }
        }
    }

    fn attention_forward(
        &self,
        l: usize,
        h: &Tensor,
        input: &ForwardInput,
        rope: Option<&(Tensor, Tensor)>,
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let shape = &self.config.shape;
        let (b, t) = (input.ids.size()[0], input.ids.size()[1]);
        let (heads, kv, hd) = (shape.n_heads as i64, shape.n_kv_heads as i64, shape.head_dim as i64);
        let qkv = self.blocks[l].qkv.forward(h).view([b, t, heads + 2 * kv, hd]).transpose(1, 2);
        let qk = match &self.blocks[l].qk_norm {
            Some((q_norm, k_norm)) => Tensor::cat(
                &[
                    rms_norm(&qkv.narrow(1, 0, heads), &q_norm.weight, self.config.norm_eps),
                    rms_norm(&qkv.narrow(1, heads, kv), &k_norm.weight, self.config.norm_eps),
                ],
                1,
            ),
            None => qkv.narrow(1, 0, heads + kv),
        };
        // Queries and keys are rotated together: one rotation per layer instead of two.
        let qk = match (&self.rope, rope) {
            (Some(r), Some(factors)) => r.apply(&qk, factors),
            _ => qk,
        };
        let (q, k, v) = (qk.narrow(1, 0, heads), qk.narrow(1, heads, kv), qkv.narrow(1, heads + kv, kv));
        let (k, v) = match cache {
            Some(c) => c.append(l, &k, &v),
            None => (k, v),
        };
        let want_pattern = hooks.wants(HookPoint::AttnPattern(l));
        let scale = self.config.scales.attention.unwrap_or(1.0 / (hd as f64).sqrt());
        let (mut z, pattern) =
            attention(&q, &k, &v, input.mask, scale, self.config.scales.attention_softcap, want_pattern);
        if let Some(pattern) = pattern {
            let pattern = hooks.apply(HookPoint::AttnPattern(l), pattern)?;
            let repeat = heads / kv;
            z = pattern.matmul(&if repeat > 1 { v.repeat_interleave_self_int(repeat, 1, None) } else { v });
        }
        let attn_out = self.blocks[l].o.forward(&z.transpose(1, 2).reshape([b, t, heads * hd]));
        let attn_out = match &self.blocks[l].post_norms {
            Some((after_attention, _)) => self.norm(&attn_out, after_attention),
            None => attn_out,
        };
        hooks.apply(HookPoint::AttnOut(l), scaled(attn_out, self.config.scales.residual))
    }

    fn mlp_forward(&self, l: usize, h: &Tensor, hooks: &mut Hooks) -> Result<Tensor> {
        let block = &self.blocks[l];
        let projected = block.mlp_in.forward(h);
        let post = if self.config.gated_mlp {
            let d_mlp = self.config.shape.d_mlp as i64;
            let pre = hooks.apply(HookPoint::MlpPre(l), projected.narrow(-1, 0, d_mlp))?;
            self.config.activation.apply(&pre) * projected.narrow(-1, d_mlp, d_mlp)
        } else {
            self.config.activation.apply(&hooks.apply(HookPoint::MlpPre(l), projected)?)
        };
        let post = hooks.apply(HookPoint::MlpPost(l), post)?;
        let mlp_out = block.mlp_out.forward(&post);
        let mlp_out = match &block.post_norms {
            Some((_, after_mlp)) => self.norm(&mlp_out, after_mlp),
            None => mlp_out,
        };
        hooks.apply(HookPoint::MlpOut(l), scaled(mlp_out, self.config.scales.residual))
    }

    fn block_forward(
        &self,
        l: usize,
        x: Tensor,
        input: &ForwardInput,
        rope: Option<&(Tensor, Tensor)>,
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let block = &self.blocks[l];
        let resid_pre = hooks.apply(HookPoint::ResidPre(l), x)?;
        let h = self.norm(&resid_pre, &block.ln1);
        let attn_out = self.attention_forward(l, &h, input, rope, cache, hooks)?;
        // With a parallel residual, resid_mid (resid_pre + attn_out) is recorded but the MLP does not read it.
        let resid_mid = hooks.apply(HookPoint::ResidMid(l), &resid_pre + attn_out)?;
        let mlp_in = match (self.config.residual, &block.ln2) {
            (Residual::Sequential, Some(ln2)) => self.norm(&resid_mid, ln2),
            (Residual::Parallel, Some(ln2)) => self.norm(&resid_pre, ln2),
            _ => h,
        };
        let mlp_in = hooks.apply(HookPoint::MlpIn(l), mlp_in)?;
        let mlp_out = self.mlp_forward(l, &mlp_in, hooks)?;
        hooks.apply(HookPoint::ResidPost(l), resid_mid + mlp_out)
    }
}

impl Architecture for Decoder {
    fn shape(&self) -> &ModelShape {
        &self.config.shape
    }

    fn forward(&self, input: &ForwardInput, mut cache: Option<&mut KvCache>, hooks: &mut Hooks) -> Result<Tensor> {
        let mut x = Tensor::embedding(&self.embeddings.tokens, input.ids, -1, false, false);
        if let Some(positions) = &self.embeddings.positions {
            x += Tensor::embedding(positions, input.positions, -1, false, false);
        }
        let mut x = hooks.apply(HookPoint::Embed, scaled(x, self.config.scales.embedding))?;
        let window = self.config.sliding_window.as_ref();
        let windowed = window.map(|window| {
            let (seq, past) = (input.ids.size()[1], cache.as_ref().map_or(0, |c| c.len()));
            input.mask.within_window(window.size, seq, past + seq, x.device(), x.kind())
        });
        let windowed = windowed.as_ref().map(|mask| ForwardInput { ids: input.ids, positions: input.positions, mask });
        let rope = self.rope.as_ref().map(|r| r.factors(input.positions));
        for l in 0..self.blocks.len() {
            let input = match (&windowed, window) {
                (Some(windowed), Some(window)) if window.in_layer(l) => windowed,
                _ => input,
            };
            x = self.block_forward(l, x, input, rope.as_ref(), cache.as_deref_mut(), hooks)?;
            if hooks.stops_after(l) {
                return Ok(x);
            }
        }
        if let Some(c) = cache {
            c.advance(input.ids.size()[1]);
        }
        hooks.apply(HookPoint::LnFinal, self.final_norm(&x))
    }

    fn final_norm(&self, resid: &Tensor) -> Tensor {
        self.norm(resid, &self.embeddings.final_norm)
    }

    fn unembed(&self, normalized: &Tensor) -> Tensor {
        let logits = scaled(self.embeddings.unembed.forward(normalized), 1.0 / self.config.scales.logits);
        match self.config.scales.logit_softcap {
            Some(cap) => (logits / cap).tanh() * cap,
            None => logits,
        }
    }

    fn unembedding(&self) -> &Tensor {
        &self.embeddings.unembed.weight
    }

    fn mlp(&self, layer: usize) -> MlpWeights {
        let block = &self.blocks[layer];
        let p = format!("blocks.{layer}.mlp");
        let inputs = if self.config.gated_mlp {
            let d_mlp = self.config.shape.d_mlp as i64;
            vec![
                (format!("{p}.gate.weight"), block.mlp_in.weight.narrow(0, 0, d_mlp)),
                (format!("{p}.up.weight"), block.mlp_in.weight.narrow(0, d_mlp, d_mlp)),
            ]
        } else {
            vec![(format!("{p}.in.weight"), block.mlp_in.weight.shallow_clone())]
        };
        MlpWeights { inputs, output: (format!("{p}.out.weight"), block.mlp_out.weight.shallow_clone()) }
    }

    fn hf_export(&self) -> Result<(serde_json::Value, Vec<(String, Tensor)>)> {
        Ok((self.config.hf_config.clone(), (self.hf_tensors)(self)))
    }

    fn pack_weights(&mut self, format: WeightFormat) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for block in &mut self.blocks {
            for linear in [&mut block.qkv, &mut block.o, &mut block.mlp_in, &mut block.mlp_out] {
                linear.pack(format)?;
            }
        }
        self.embeddings.unembed.pack(format)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("embed.tokens".to_string(), self.embeddings.tokens.shallow_clone())];
        let mut push = |name: String, t: Option<&Tensor>| {
            if let Some(t) = t {
                out.push((name, t.shallow_clone()));
            }
        };
        push("embed.positions".into(), self.embeddings.positions.as_ref());
        for (l, block) in self.blocks.iter().enumerate() {
            let p = format!("blocks.{l}");
            for (name, norm) in [("ln1", Some(&block.ln1)), ("ln2", block.ln2.as_ref())] {
                push(format!("{p}.{name}.weight"), norm.map(|n| &n.weight));
                push(format!("{p}.{name}.bias"), norm.and_then(|n| n.bias.as_ref()));
            }
            for (name, linear) in
                [("attn.qkv", &block.qkv), ("attn.o", &block.o), ("mlp.in", &block.mlp_in), ("mlp.out", &block.mlp_out)]
            {
                push(format!("{p}.{name}.weight"), Some(&linear.weight));
                push(format!("{p}.{name}.bias"), linear.bias.as_ref());
            }
        }
        push("final_norm.weight".into(), Some(&self.embeddings.final_norm.weight));
        push("final_norm.bias".into(), self.embeddings.final_norm.bias.as_ref());
        if !self.config.shape.tied_embeddings {
            push("unembed.weight".into(), Some(&self.embeddings.unembed.weight));
        }
        push("unembed.bias".into(), self.embeddings.unembed.bias.as_ref());
        out
    }
}

/// Reads tensors from a [`WeightSource`] and places them on the model's device and dtype.
pub struct Loader<'a> {
    source: &'a mut dyn WeightSource,
    device: Device,
    kind: Kind,
}

impl<'a> Loader<'a> {
    /// A loader onto `device` in `kind`.
    pub fn new(source: &'a mut dyn WeightSource, device: Device, kind: Kind) -> Self {
        Loader { source, device, kind }
    }

    /// A tensor on the CPU in the dtype its file stores, before any layout change.
    pub fn raw(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        self.source.tensor(name, shape)
    }

    /// Whether the checkpoint has `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.source.contains(name)
    }

    /// Moves a tensor to the model's device and dtype.
    pub fn place(&self, t: Tensor) -> Tensor {
        t.to_device(self.device).to_kind(self.kind)
    }

    /// A tensor, placed.
    pub fn get(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let t = self.raw(name, shape)?;
        Ok(self.place(t))
    }

    /// A norm `{prefix}.weight` (and `{prefix}.bias` for LayerNorm).
    pub fn norm(&mut self, prefix: &str, d: i64, kind: NormKind) -> Result<Norm> {
        let bias = match kind {
            NormKind::Layer => Some(self.get(&format!("{prefix}.bias"), &[d])?),
            NormKind::Rms | NormKind::RmsPlusOne => None,
        };
        Ok(Norm { weight: self.get(&format!("{prefix}.weight"), &[d])?, bias })
    }

    /// Linear layers `{prefix}.weight` `[rows, inp]` (and `{prefix}.bias` `[rows]` when `bias`) stacked row-wise
    /// into one, as the decoder fuses q/k/v and gate/up. Each part is written into the fused tensor as it is read,
    /// so loading holds one part in flight rather than every part and their concatenation. The fused tensor is
    /// allocated once the first part has been read, so that the checkpoint, not only the config, vouches for its size.
    pub fn stacked_linear(&mut self, parts: &[(&str, i64)], inp: i64, bias: bool) -> Result<Linear> {
        let rows = parts.iter().map(|(_, n)| n).sum::<i64>();
        let options = (self.kind, self.device);
        let mut fused: Option<Linear> = None;
        let mut offset = 0;
        for &(prefix, n) in parts {
            let part = self.raw(&format!("{prefix}.weight"), &[n, inp])?;
            let linear = match &mut fused {
                Some(linear) => linear,
                None => {
                    let bias = if bias { Some(Tensor::f_empty([rows], options)?) } else { None };
                    fused.insert(Linear::new(Tensor::f_empty([rows, inp], options)?, bias))
                }
            };
            linear.weight.narrow(0, offset, n).copy_(&part);
            if let Some(fused_bias) = &linear.bias {
                let part = self.raw(&format!("{prefix}.bias"), &[n])?;
                fused_bias.narrow(0, offset, n).copy_(&part);
            }
            offset += n;
        }
        fused.ok_or_else(|| ModelError::MissingTensor(format!("the parts of a fused linear layer: {parts:?}")))
    }

    /// A linear layer `{prefix}.weight` `[out, in]` with an optional `{prefix}.bias`.
    pub fn linear(&mut self, prefix: &str, out: i64, inp: i64, bias: bool) -> Result<Linear> {
        let weight = self.get(&format!("{prefix}.weight"), &[out, inp])?;
        let bias = if bias { Some(self.get(&format!("{prefix}.bias"), &[out])?) } else { None };
        Ok(Linear::new(weight, bias))
    }
}

/// Refuses `rotary_dim` rotary dimensions for heads of `head_dim`: they must be even, 2 or more, at most a head's.
pub fn check_rotary(rotary_dim: i64, head_dim: i64) -> Result<()> {
    if rotary_dim <= 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim {
        let why = format!(
            "{rotary_dim} rotary dimensions for heads of {head_dim}: must be even, 2 or more, at most the head's"
        );
        return Err(ModelError::config("rotary_dim", why));
    }
    Ok(())
}

/// Reorders fused projection rows stored per head as `[head][q, k, v][head_dim]` (GPT-NeoX, GPTBigCode
/// without multi-query) into `[q heads; k heads; v heads]`. Works for weights `[rows, in]` and biases `[rows]`.
pub fn heads_interleaved_to_blocks(t: &Tensor, heads: i64, head_dim: i64) -> Tensor {
    regroup(t, [heads, 3, head_dim])
}

/// The inverse of [`heads_interleaved_to_blocks`], for writers.
pub fn heads_blocks_to_interleaved(t: &Tensor, heads: i64, head_dim: i64) -> Tensor {
    regroup(t, [3, heads, head_dim])
}

/// Views the rows of `t` as `groups` and swaps the first two group dimensions.
fn regroup(t: &Tensor, groups: [i64; 3]) -> Tensor {
    let rest: Vec<i64> = t.size()[1..].to_vec();
    let mut grouped = groups.to_vec();
    grouped.extend(&rest);
    let mut flat = vec![groups.iter().product()];
    flat.extend(&rest);
    t.reshape(grouped.as_slice()).transpose(0, 1).reshape(flat.as_slice())
}

/// Row order that moves each head's rotary dimensions from interleaved (pairs `2i, 2i + 1`) to rotate-half
/// order (pairs `i, i + rotary_dim / 2`); other dimensions stay.
fn rotary_half_order(heads: i64, head_dim: i64, rotary_dim: i64) -> Vec<i64> {
    let within: Vec<i64> =
        (0..rotary_dim).step_by(2).chain((1..rotary_dim).step_by(2)).chain(rotary_dim..head_dim).collect();
    (0..heads).flat_map(|h| within.iter().map(move |&i| h * head_dim + i)).collect()
}

/// Permutes the rows of a query or key projection `[heads * head_dim, in]` so that rotary dimensions stored
/// interleaved (GPT-J and CodeGen) come in rotate-half order. Scores are unchanged because queries and keys
/// are permuted alike.
pub fn interleaved_rotary_to_half(t: &Tensor, heads: i64, head_dim: i64, rotary_dim: i64) -> Tensor {
    t.index_select(0, &Tensor::from_slice(&rotary_half_order(heads, head_dim, rotary_dim)))
}

/// The inverse of [`interleaved_rotary_to_half`], for writers.
pub fn half_rotary_to_interleaved(t: &Tensor, heads: i64, head_dim: i64, rotary_dim: i64) -> Tensor {
    let order = rotary_half_order(heads, head_dim, rotary_dim);
    let mut inverse = vec![0i64; order.len()];
    for (position, &row) in order.iter().enumerate() {
        inverse[row as usize] = position as i64;
    }
    t.index_select(0, &Tensor::from_slice(&inverse))
}
