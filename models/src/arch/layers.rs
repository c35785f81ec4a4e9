//! Building blocks shared by the architectures: attention masks, the KV cache, RMSNorm, rotary embeddings
//! and attention itself.

use tch::{Device, Kind, Tensor};

use super::ModelShape;

/// Which keys each query may attend to.
pub enum AttentionMask {
    /// Plain causal attention over one unpadded sequence with no cached keys.
    Causal,
    /// Every query may see every key (a single new token per row, no padding).
    Full,
    /// An explicit additive mask `[batch, 1, query, key]` (0 = attend, very negative = blocked).
    Additive(Tensor),
}

impl AttentionMask {
    /// The mask for `seq` new tokens per row after `past` cached ones; `key_valid` `[batch, past + seq]`
    /// marks real (non-padding) tokens, `None` when no row is padded.
    pub fn build(seq: i64, past: i64, key_valid: Option<&Tensor>, device: Device, kind: Kind) -> Self {
        match (key_valid, past, seq) {
            (None, 0, _) => AttentionMask::Causal,
            (None, _, 1) => AttentionMask::Full,
            _ => {
                let total = past + seq;
                let q_pos = Tensor::arange_start(past, total, (Kind::Int64, device)).view([seq, 1]);
                let k_pos = Tensor::arange(total, (Kind::Int64, device)).view([1, total]);
                let mut allowed = k_pos.le_tensor(&q_pos).view([1, 1, seq, total]);
                if let Some(valid) = key_valid {
                    let batch = valid.size()[0];
                    allowed = allowed.logical_and(&valid.to_device(device).view([batch, 1, 1, total]));
                }
                let blocked = allowed.logical_not().to_kind(kind);
                AttentionMask::Additive(blocked * lowest(kind))
            }
        }
    }

    /// This mask for sliding-window attention of `window` tokens: each of the `seq` newest of `total` positions
    /// also stops seeing keys `window` or more positions before it (it sees itself and the `window - 1` before,
    /// as transformers' `sliding_window`). Unchanged when no key is that far.
    pub fn within_window(&self, window: i64, seq: i64, total: i64, device: Device, kind: Kind) -> Self {
        if total <= window {
            return self.clone();
        }
        let q_pos = Tensor::arange_start(total - seq, total, (Kind::Int64, device)).view([seq, 1]);
        let k_pos = Tensor::arange(total, (Kind::Int64, device)).view([1, total]);
        let far = k_pos.le_tensor(&(&q_pos - window)).view([1, 1, seq, total]);
        let additive = match self {
            AttentionMask::Additive(m) => m.shallow_clone(),
            AttentionMask::Full => Tensor::zeros([1, 1, seq, total], (kind, device)),
            AttentionMask::Causal => {
                let future = k_pos.gt_tensor(&q_pos).view([1, 1, seq, total]);
                future.to_kind(kind) * lowest(kind)
            }
        };
        AttentionMask::Additive(additive.masked_fill(&far, lowest(kind)))
    }
}

impl Clone for AttentionMask {
    fn clone(&self) -> Self {
        match self {
            AttentionMask::Causal => AttentionMask::Causal,
            AttentionMask::Full => AttentionMask::Full,
            AttentionMask::Additive(m) => AttentionMask::Additive(m.shallow_clone()),
        }
    }
}

/// The most negative finite value of `kind`: blocked scores stay finite, so fully blocked (padding) rows
/// give uniform attention instead of NaN.
fn lowest(kind: Kind) -> f64 {
    match kind {
        Kind::Half => f64::from(half::f16::MIN),
        Kind::BFloat16 => f64::from(half::bf16::MIN),
        _ => f64::from(f32::MIN),
    }
}

/// Keys and values of past tokens, preallocated for `capacity` positions.
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: i64,
    capacity: i64,
}

impl KvCache {
    /// An empty cache for `batch` rows of up to `capacity` tokens.
    pub fn new(shape: &ModelShape, batch: i64, capacity: i64, device: Device, kind: Kind) -> Self {
        let dims = [batch, shape.n_kv_heads as i64, capacity, shape.head_dim as i64];
        let layers = (0..shape.n_layers)
            .map(|_| (Tensor::zeros(dims, (kind, device)), Tensor::zeros(dims, (kind, device))))
            .collect();
        KvCache { layers, len: 0, capacity }
    }

    /// Number of cached positions.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions still free.
    pub fn remaining(&self) -> i64 {
        self.capacity - self.len
    }

    /// Writes layer `layer`'s new keys and values `[batch, kv_heads, seq, head_dim]` after the cached ones
    /// and returns all of them.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> (Tensor, Tensor) {
        let seq = k.size()[2];
        let (kc, vc) = &mut self.layers[layer];
        kc.narrow(2, self.len, seq).copy_(k);
        vc.narrow(2, self.len, seq).copy_(v);
        (kc.narrow(2, 0, self.len + seq), vc.narrow(2, 0, self.len + seq))
    }

    /// Forgets every position from `len` on, so the next forward pass writes there again (e.g. to try several
    /// continuations of one cached prefix).
    pub fn truncate(&mut self, len: i64) {
        self.len = self.len.min(len.max(0));
    }

    /// Marks `seq` more positions as cached; called once per forward pass after every layer appended.
    pub fn advance(&mut self, seq: i64) {
        self.len += seq;
    }
}

/// `x W^T + b` for a weight in `nn.Linear` layout `[out, in]`. On the CPU in f32 without gradients this runs
/// oneDNN's inner product (the kernel libtorch already uses for bf16) instead of MKL's `sgemm`, which on
/// this project's AMD CPUs streams the weights of a one-token step about 1.6 times slower; elsewhere, or if
/// oneDNN refuses, it is `torch.nn.functional.linear`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    if x.kind() == Kind::BFloat16 && !x.requires_grad() && !weight.requires_grad() {
        if let Some(out) = bf16_step(x, weight, bias) {
            return out;
        }
    }
    let onednn = x.device() == Device::Cpu
        && x.kind() == Kind::Float
        && weight.kind() == Kind::Float
        && !x.requires_grad()
        && !weight.requires_grad()
        && bias.is_none_or(|b| !b.requires_grad())
        && tch::utils::has_mkldnn();
    let (mut dims, weight_dims) = (x.size(), weight.size());
    let inputs = *dims.last().unwrap_or(&0);
    if onednn && weight_dims.get(1) == Some(&inputs) {
        let rows = x.reshape([-1, inputs]).contiguous();
        if let Ok(out) = super::onednn::linear(&rows, &weight.contiguous(), bias) {
            if let Some(last) = dims.last_mut() {
                *last = weight_dims[0];
            }
            return out.view(dims.as_slice());
        }
    }
    x.linear(weight, bias)
}

/// A bf16 step of a few tokens through the AVX-512 BF16 or AVX2 kernel ([`super::decode_kernels::bf16_linear`]),
/// which reads the weight at the memory's pace where libtorch's bf16 inner product does not; `None` where it declines.
fn bf16_step(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Option<Tensor> {
    super::decode_kernels::on_rows(x, weight.size()[0], |rows| super::decode_kernels::bf16_linear(rows, weight, bias))
}

/// RMSNorm as Hugging Face computes it: normalize in f32, cast back, then scale.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Tensor {
    let d = *x.size().last().unwrap_or(&0);
    if x.kind() == Kind::Float {
        x.rms_norm([d], Some(weight), eps)
    } else {
        x.to_kind(Kind::Float).rms_norm([d], None::<&Tensor>, eps).to_kind(x.kind()) * weight
    }
}

/// Rotary position embeddings (rotate-half convention), computed for the positions of each forward pass: no table
/// of every position the config allows, which a config claiming billions of positions would make enormous.
pub struct Rope {
    /// The inverse frequencies `[rotary_dim / 2]`, f32, on the model's device.
    inv_freq: Tensor,
    /// `rotate_half` as a matrix of zeros and ±1: `x.matmul(half_turn)` is exactly `cat(-x2, x1)`, in one op.
    half_turn: Tensor,
    rotary_dim: i64,
    kind: Kind,
}

impl Rope {
    /// Rotary embeddings of `rotary_dim` dimensions of each head, computed in f32 the way Hugging Face does
    /// (inverse frequencies, then position x frequency) and used in `kind`.
    pub fn new(rotary_dim: i64, base: f64, device: Device, kind: Kind) -> Self {
        let exponents = Tensor::arange_start_step(0, rotary_dim, 2, (Kind::Int64, Device::Cpu)).to_kind(Kind::Float)
            / rotary_dim as f64;
        let inv_freq = Tensor::pow_scalar(base, &exponents).reciprocal();
        let half = rotary_dim / 2;
        let identity = Tensor::eye(half, (Kind::Float, Device::Cpu));
        let zeros = Tensor::zeros([half, half], (Kind::Float, Device::Cpu));
        // out_j = -x_{half + j} and out_{half + j} = x_j, written as rows (inputs) by columns (outputs).
        let half_turn = Tensor::cat(&[Tensor::cat(&[&zeros, &identity], 1), Tensor::cat(&[-&identity, zeros], 1)], 0);
        Rope {
            inv_freq: inv_freq.to_device(device),
            half_turn: half_turn.to_device(device).to_kind(kind),
            rotary_dim,
            kind,
        }
    }

    /// The cos and sin factors of `positions` `[batch, seq]`, shaped `[batch, 1, seq, rotary_dim]`; computed
    /// once per forward pass and shared by every layer.
    pub fn factors(&self, positions: &Tensor) -> (Tensor, Tensor) {
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * &self.inv_freq;
        let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1);
        (emb.cos().to_kind(self.kind), emb.sin().to_kind(self.kind))
    }

    /// Rotates the first `rotary_dim` dimensions of `x` `[batch, heads, seq, head_dim]` by the
    /// [`Rope::factors`] of its positions.
    pub fn apply(&self, x: &Tensor, (cos, sin): &(Tensor, Tensor)) -> Tensor {
        let head_dim = *x.size().last().unwrap_or(&0);
        let (rot, pass) = if self.rotary_dim == head_dim {
            (x.shallow_clone(), None)
        } else {
            (x.narrow(-1, 0, self.rotary_dim), Some(x.narrow(-1, self.rotary_dim, head_dim - self.rotary_dim)))
        };
        let out = &rot * cos + rot.matmul(&self.half_turn) * sin;
        match pass {
            None => out,
            Some(p) => Tensor::cat(&[out, p], -1),
        }
    }
}

/// Scaled dot-product attention of `q` `[batch, heads, seq, head_dim]` over `k`, `v`
/// `[batch, kv_heads, keys, head_dim]` (grouped-query when there are fewer kv heads), the scores capped to
/// `softcap * tanh(score / softcap)` when given (Gemma 2). When `want_pattern`, computes the probabilities explicitly
/// and returns them too; otherwise uses the fused kernel where it can (not with a cap).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    scale: f64,
    softcap: Option<f64>,
    want_pattern: bool,
) -> (Tensor, Option<Tensor>) {
    let (heads, kv_heads, queries) = (q.size()[1], k.size()[1], q.size()[2]);
    let gqa = heads != kv_heads;
    let fused = !want_pattern && softcap.is_none();
    if fused && gqa && queries == 1 && !matches!(mask, AttentionMask::Causal) {
        // One new token per row: stack each kv head's query heads as its queries, so the fused kernel runs
        // without repeating keys and values (the decode step of generation).
        let (b, hd) = (q.size()[0], q.size()[3]);
        let grouped = q.reshape([b, kv_heads, heads / kv_heads, hd]);
        let m = match mask {
            AttentionMask::Additive(m) => Some(m),
            _ => None,
        };
        let out = Tensor::scaled_dot_product_attention(&grouped, k, v, m, 0.0, false, scale, false);
        return (out.reshape([b, heads, 1, hd]), None);
    }
    if fused {
        let out = match mask {
            AttentionMask::Causal => {
                Tensor::scaled_dot_product_attention(q, k, v, None::<&Tensor>, 0.0, q.size()[2] > 1, scale, gqa)
            }
            AttentionMask::Full => {
                Tensor::scaled_dot_product_attention(q, k, v, None::<&Tensor>, 0.0, false, scale, gqa)
            }
            AttentionMask::Additive(m) => {
                Tensor::scaled_dot_product_attention(q, k, v, Some(m), 0.0, false, scale, gqa)
            }
        };
        return (out, None);
    }
    let repeat = q.size()[1] / k.size()[1];
    let (k, v) = if repeat > 1 {
        (k.repeat_interleave_self_int(repeat, 1, None), v.repeat_interleave_self_int(repeat, 1, None))
    } else {
        (k.shallow_clone(), v.shallow_clone())
    };
    let mut scores = q.matmul(&k.transpose(-2, -1)) * scale;
    if let Some(cap) = softcap {
        scores = (scores / cap).tanh() * cap;
    }
    match mask {
        AttentionMask::Full => {}
        AttentionMask::Causal => {
            let (t, s) = (scores.size()[2], scores.size()[3]);
            let future = Tensor::ones([t, s], (Kind::Bool, scores.device())).triu(s - t + 1);
            scores = scores.masked_fill(&future, f64::NEG_INFINITY);
        }
        AttentionMask::Additive(m) => scores += m,
    }
    let pattern = scores.softmax(-1, Kind::Float).to_kind(q.kind());
    (pattern.matmul(&v), want_pattern.then_some(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which keys each query sees under `mask` (`[seq, total]`, true = attended), for one row.
    fn seen(mask: &AttentionMask, seq: i64, total: i64) -> Vec<Vec<bool>> {
        let blocked = match mask {
            AttentionMask::Additive(m) => m.view([-1, seq, total]).get(0).lt(-1.0),
            _ => panic!("expected an additive mask"),
        };
        Vec::<Vec<bool>>::try_from(blocked.logical_not()).unwrap()
    }

    #[test]
    fn a_sliding_window_keeps_each_query_to_itself_and_the_keys_just_before() {
        let (cpu, f32) = (Device::Cpu, Kind::Float);
        // 5 tokens at once, window 3: query i sees keys i-2..=i.
        let causal = AttentionMask::Causal.within_window(3, 5, 5, cpu, f32);
        let by_hand: Vec<Vec<bool>> = (0..5).map(|q: i64| (0..5).map(|k| k <= q && q - k < 3).collect()).collect();
        assert_eq!(seen(&causal, 5, 5), by_hand);
        // One new token after 5 cached ones (decoding): it sees positions 3, 4 and 5.
        let decode = AttentionMask::Full.within_window(3, 1, 6, cpu, f32);
        assert_eq!(seen(&decode, 1, 6), [[false, false, false, true, true, true]]);
        // Left padding (key 0 of the row is padding) stays blocked; the window applies on top.
        let valid = Tensor::from_slice(&[false, true, true, true, true]).view([1, 5]);
        let padded = AttentionMask::build(5, 0, Some(&valid), cpu, f32).within_window(2, 5, 5, cpu, f32);
        assert_eq!(seen(&padded, 5, 5)[4], [false, false, false, true, true]);
        assert_eq!(seen(&padded, 5, 5)[1], [false, true, false, false, false]);
        // No key is out of reach: the mask is left as it was.
        assert!(matches!(AttentionMask::Causal.within_window(8, 5, 5, cpu, f32), AttentionMask::Causal));
    }

    /// `x W^T + b` in f64, the reference both kernels are held to.
    fn reference(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let exact = x.to_kind(Kind::Double).matmul(&weight.to_kind(Kind::Double).transpose(0, 1));
        match bias {
            Some(b) => exact + b.to_kind(Kind::Double),
            None => exact,
        }
    }

    fn max_error(ours: &Tensor, exact: &Tensor) -> f64 {
        (ours.to_kind(Kind::Double) - exact).abs().max().double_value(&[])
    }

    #[test]
    fn onednn_inner_product_runs_and_matches_double_precision() {
        tch::manual_seed(0);
        let (x, weight, bias) = (
            Tensor::randn([7, 40], tch::kind::FLOAT_CPU),
            Tensor::randn([24, 40], tch::kind::FLOAT_CPU),
            Tensor::randn([24], tch::kind::FLOAT_CPU),
        );
        for b in [None, Some(&bias)] {
            let ours = super::super::onednn::linear(&x, &weight, b).expect("this libtorch has oneDNN");
            assert_eq!(ours.size(), [7, 24]);
            assert!(max_error(&ours, &reference(&x, &weight, b)) < 1e-4);
        }
    }

    #[test]
    fn linear_keeps_leading_dimensions_and_gradients() {
        tch::manual_seed(1);
        let x = Tensor::randn([2, 3, 40], tch::kind::FLOAT_CPU);
        let weight = Tensor::randn([24, 40], tch::kind::FLOAT_CPU);
        let out = tch::no_grad(|| linear(&x, &weight, None));
        assert_eq!(out.size(), [2, 3, 24]);
        assert!(max_error(&out, &reference(&x, &weight, None)) < 1e-4);
        // With a weight that wants gradients the autograd-aware kernel runs and the gradient is x summed.
        let trainable = weight.copy().set_requires_grad(true);
        linear(&x, &trainable, None).sum(Kind::Float).backward();
        let expected = x.sum_dim_intlist([0i64, 1].as_slice(), false, Kind::Float).unsqueeze(0).expand([24, 40], false);
        assert!(max_error(&trainable.grad(), &expected.to_kind(Kind::Double)) < 1e-4);
    }
}
