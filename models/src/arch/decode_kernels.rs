//! Matrix-vector kernels for generation on the CPU, where a step multiplies a few rows of activations by every
//! weight of the model and the time goes to reading the weights: bf16 weights through AVX-512 BF16's dot products
//! (`vdpbf16ps`, f32 accumulation, activations rounded to bf16) or, on CPUs with AVX2 and FMA but no AVX-512 BF16
//! (the AMD EPYC 7003 machines), widened to f32 for fused multiply-adds with f32 activations; 8-bit weights in blocks
//! of [`GROUP`] inputs with an f32 step and minimum each through AVX-512F or AVX2 (elsewhere plain loops). libtorch's
//! own kernels for these shapes read bf16 and int8 weights at about 13 GB/s on this project's AMD machines where f32
//! streams at 20 GB/s (README, "Generation in bf16 and int8"). The weight's rows are split over rayon's threads.
//! Each kernel returns `None` for what it does not cover (another device or dtype, more than [`MAX_ROWS`] activation
//! rows, neither AVX-512 BF16 nor AVX2 for bf16), and the caller falls back to libtorch.

use half::bf16;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// The most activation rows (tokens of a step) a kernel takes; longer inputs (prompts) go to libtorch's GEMM.
pub const MAX_ROWS: usize = 8;

/// Consecutive inputs of an 8-bit weight row that share one step and minimum.
pub const GROUP: usize = 32;

/// The blocks of an 8-bit weight `[n, k]`: block `b` of row `i` holds `mins[i * g + b] + code * scales[i * g + b]`
/// for `g = ceil(k / GROUP)` blocks a row.
pub struct Blocks {
    /// Each block's step.
    pub scales: Vec<f32>,
    /// Each block's smallest value (code 0).
    pub mins: Vec<f32>,
}

/// Output rows per rayon task: enough to amortise a task, small enough to balance two to sixteen threads.
const ROWS_PER_TASK: usize = 64;

/// The activations `x` `[m, k]` as f32 rows, when `x` is a CPU tensor of f32 or bf16 with at most [`MAX_ROWS`] rows.
fn activations(x: &Tensor, k: usize) -> Option<Vec<f32>> {
    let rows = x.size().first().copied()? as usize;
    if x.device() != Device::Cpu || x.dim() != 2 || rows == 0 || rows > MAX_ROWS || x.size()[1] as usize != k {
        return None;
    }
    Vec::<f32>::try_from(x.to_kind(Kind::Float).contiguous().view([-1])).ok()
}

/// The bias as f32 values, `[n]`.
fn bias_values(bias: Option<&Tensor>, n: usize) -> Option<Option<Vec<f32>>> {
    match bias {
        None => Some(None),
        Some(b) if b.numel() == n => {
            Vec::<f32>::try_from(b.to_kind(Kind::Float).contiguous().view([-1])).ok().map(Some)
        }
        Some(_) => None,
    }
}

/// `[m, n]` of `kind` from per-weight-row outputs laid out `[n, m]`.
fn output(values: Vec<f32>, m: usize, n: usize, kind: Kind) -> Tensor {
    let out = Tensor::from_slice(&values).view([n as i64, m as i64]);
    out.tr().contiguous().to_kind(kind)
}

/// Runs `row(i, out)` for each weight row `i` in parallel, `out` being that row's `m` outputs.
fn for_each_row(n: usize, m: usize, row: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut values = vec![0.0f32; n * m];
    values.par_chunks_mut(ROWS_PER_TASK * m).enumerate().for_each(|(task, chunk)| {
        for (j, out) in chunk.chunks_mut(m).enumerate() {
            row(task * ROWS_PER_TASK + j, out);
        }
    });
    values
}

/// `f` on `x` `[.., in]` viewed as rows `[-1, in]`, its `[rows, out]` result viewed back as `[.., out]`.
pub fn on_rows(x: &Tensor, out: i64, f: impl FnOnce(&Tensor) -> Option<Tensor>) -> Option<Tensor> {
    let mut dims = x.size();
    let rows = x.f_reshape([-1, *dims.last()?]).ok()?;
    let result = f(&rows)?;
    *dims.last_mut()? = out;
    result.f_view(dims.as_slice()).ok()
}

/// `x W^T + b` for `x` `[m, k]` in f32 or bf16 (m <= [`MAX_ROWS`]) and a contiguous bf16 weight `[n, k]`, in `x`'s
/// dtype, on a CPU with AVX-512 BF16 (`x` rounded to bf16) or AVX2 and FMA (`x` in f32); `None` otherwise.
pub fn bf16_linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Option<Tensor> {
    if !matches!(x.kind(), Kind::Float | Kind::BFloat16) || weight.kind() != Kind::BFloat16 {
        return None;
    }
    let native_bf16 = simd::has_avx512_bf16();
    if !native_bf16 && !simd::has_avx2_fma() {
        return None;
    }
    if weight.device() != Device::Cpu || weight.dim() != 2 || !weight.is_contiguous() {
        return None;
    }
    let (n, k) = (weight.size()[0] as usize, weight.size()[1] as usize);
    let x_rows = activations(x, k)?;
    let m = x_rows.len() / k.max(1);
    let bias = bias_values(bias, n)?;
    // AVX-512 BF16 multiplies pairs of bf16 values; the AVX2 tier widens the weights and keeps `x` in f32.
    let x_bf16: Option<Vec<u16>> = native_bf16.then(|| x_rows.iter().map(|&v| bf16::from_f32(v).to_bits()).collect());
    // SAFETY: a contiguous CPU bf16 tensor of n * k elements, alive (borrowed) for the whole call.
    let w = unsafe { std::slice::from_raw_parts(weight.data_ptr() as *const u16, n * k) };
    let values = for_each_row(n, m, |i, out| {
        let row = &w[i * k..(i + 1) * k];
        for (j, y) in out.iter_mut().enumerate() {
            let inputs = j * k..(j + 1) * k;
            let dot = match &x_bf16 {
                Some(x_bf16) => simd::dot_bf16(row, &x_bf16[inputs]),
                None => simd::dot_bf16_f32(row, &x_rows[inputs]),
            };
            *y = dot + bias.as_ref().map_or(0.0, |b| b[i]);
        }
    });
    Some(output(values, m, n, x.kind()))
}

/// `x W^T + b` for `x` `[m, k]` in f32 or bf16 (m <= [`MAX_ROWS`]) and an 8-bit weight (uint8 `codes` `[n, k]` and
/// their [`Blocks`]), in `x`'s dtype, on the CPU; `None` otherwise. Per block, `sum (min + code * scale) x` is
/// `scale * sum code x + min * sum x`: the activations' block sums are taken once for all rows.
pub fn int8_linear(x: &Tensor, codes: &Tensor, blocks: &Blocks, bias: Option<&Tensor>) -> Option<Tensor> {
    if !matches!(x.kind(), Kind::Float | Kind::BFloat16) || codes.kind() != Kind::Uint8 || !codes.is_contiguous() {
        return None;
    }
    let (n, k) = (codes.size()[0] as usize, codes.size()[1] as usize);
    let groups = k.div_ceil(GROUP);
    if codes.device() != Device::Cpu || blocks.scales.len() != n * groups || blocks.mins.len() != n * groups {
        return None;
    }
    let x_rows = activations(x, k)?;
    let m = x_rows.len() / k.max(1);
    let block_sums: Vec<f32> =
        x_rows.chunks(k).flat_map(|row| row.chunks(GROUP).map(|b| b.iter().sum::<f32>())).collect();
    let bias = bias_values(bias, n)?;
    // SAFETY: a contiguous CPU uint8 tensor of n * k elements, alive (borrowed) for the whole call.
    let w = unsafe { std::slice::from_raw_parts(codes.data_ptr() as *const u8, n * k) };
    let values = for_each_row(n, m, |i, out| {
        let (row, span) = (&w[i * k..(i + 1) * k], i * groups..(i + 1) * groups);
        let (scales, mins) = (&blocks.scales[span.clone()], &blocks.mins[span]);
        for (j, y) in out.iter_mut().enumerate() {
            let offset = weighted_sum(mins, &block_sums[j * groups..(j + 1) * groups]);
            *y = simd::dot_codes(row, scales, &x_rows[j * k..(j + 1) * k])
                + offset
                + bias.as_ref().map_or(0.0, |b| b[i]);
        }
    });
    Some(output(values, m, n, x.kind()))
}

/// `sum a_i b_i` in eight independent lanes, a shape the compiler vectorises (one running sum it may not reorder).
fn weighted_sum(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += a[lane] * b[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The dot products, with AVX-512 or AVX2 where the CPU has them (x86-64), portable loops elsewhere.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// Whether this CPU has AVX-512 BF16 (and the AVX-512 foundation it extends).
    pub fn has_avx512_bf16() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512bf16")
    }

    /// Whether this CPU has AVX2 and FMA (every x86-64 machine of this project; the tier below AVX-512).
    pub fn has_avx2_fma() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// The dot product of bf16 weights (raw bits) and f32 activations of one length: AVX2 when the CPU has it.
    pub fn dot_bf16_f32(w: &[u16], x: &[f32]) -> f32 {
        assert_eq!(w.len(), x.len(), "dot product of unequal lengths");
        if has_avx2_fma() {
            // SAFETY: the CPU has the features the function is compiled for; the lengths are equal.
            unsafe { dot_bf16_f32_avx2(w, x) }
        } else {
            super::portable::dot_bf16_f32(w, x)
        }
    }

    /// The dot product of two bf16 vectors (raw bits) of one length in f32: `vdpbf16ps` when the CPU has it.
    pub fn dot_bf16(a: &[u16], b: &[u16]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot product of unequal lengths");
        if has_avx512_bf16() {
            // SAFETY: the CPU has the features the function is compiled for; the lengths are equal.
            unsafe { dot_bf16_avx512(a, b) }
        } else {
            super::portable::dot_bf16(a, b)
        }
    }

    /// `sum over blocks of scale * sum code x` for 8-bit codes in blocks of [`GROUP`](super::GROUP): AVX-512F
    /// when the CPU has it.
    pub fn dot_codes(codes: &[u8], scales: &[f32], x: &[f32]) -> f32 {
        assert_eq!(codes.len(), x.len(), "dot product of unequal lengths");
        assert_eq!(scales.len(), codes.len().div_ceil(super::GROUP), "one scale per block");
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F; the lengths are equal and there is a scale per block.
            unsafe { dot_codes_avx512(codes, scales, x) }
        } else if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; the lengths are equal and there is a scale per block.
            unsafe { dot_codes_avx2(codes, scales, x) }
        } else {
            super::portable::dot_codes(codes, scales, x)
        }
    }

    /// `vdpbf16ps` (pairs of products per f32 lane), 32 values a step with four independent sums, the tail under
    /// a mask.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn dot_bf16_avx512(a: &[u16], b: &[u16]) -> f32 {
        let as_bh = |v: __m512i| std::mem::transmute::<__m512i, __m512bh>(v);
        let mut sums = [_mm512_setzero_ps(); 4];
        let (len, mut i) = (a.len(), 0);
        while i + 128 <= len {
            for (s, sum) in sums.iter_mut().enumerate() {
                let (pa, pb) = (a.as_ptr().add(i + 32 * s), b.as_ptr().add(i + 32 * s));
                *sum =
                    _mm512_dpbf16_ps(*sum, as_bh(_mm512_loadu_si512(pa.cast())), as_bh(_mm512_loadu_si512(pb.cast())));
            }
            i += 128;
        }
        while i < len {
            let mask: __mmask32 = if len - i >= 32 { u32::MAX } else { (1u32 << (len - i)) - 1 };
            let va = _mm512_maskz_loadu_epi16(mask, a.as_ptr().add(i).cast());
            let vb = _mm512_maskz_loadu_epi16(mask, b.as_ptr().add(i).cast());
            sums[0] = _mm512_dpbf16_ps(sums[0], as_bh(va), as_bh(vb));
            i += 32;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(sums[0], sums[1]), _mm512_add_ps(sums[2], sums[3])))
    }

    /// Per block of 32: codes to f32 and fused multiply-adds into the block's sum, which its scale then weighs into
    /// one of two running totals; a last partial block portable.
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_codes_avx512(codes: &[u8], scales: &[f32], x: &[f32]) -> f32 {
        let mut totals = [_mm512_setzero_ps(); 2];
        let whole = codes.len() / 32;
        for block in 0..whole {
            let i = 32 * block;
            let mut sum = _mm512_setzero_ps();
            for half in [0, 16] {
                let bytes = _mm_loadu_si128(codes.as_ptr().add(i + half).cast());
                let weights = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
                sum = _mm512_fmadd_ps(weights, _mm512_loadu_ps(x.as_ptr().add(i + half)), sum);
            }
            let total = &mut totals[block % 2];
            *total = _mm512_fmadd_ps(sum, _mm512_set1_ps(scales[block]), *total);
        }
        let tail = super::portable::dot_codes(&codes[32 * whole..], &scales[whole..], &x[32 * whole..]);
        _mm512_reduce_add_ps(_mm512_add_ps(totals[0], totals[1])) + tail
    }

    /// The sum of a vector's eight lanes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sum_lanes(v: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)))
    }

    /// bf16 widened to f32 (the 16 bits shifted into the top of each lane) and fused multiply-adds, 32 values a
    /// step with four independent sums, the tail portable.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_bf16_f32_avx2(w: &[u16], x: &[f32]) -> f32 {
        let mut sums = [_mm256_setzero_ps(); 4];
        let (len, mut i) = (w.len(), 0);
        while i + 32 <= len {
            for (s, sum) in sums.iter_mut().enumerate() {
                let bits = _mm256_cvtepu16_epi32(_mm_loadu_si128(w.as_ptr().add(i + 8 * s).cast()));
                let weights = _mm256_castsi256_ps(_mm256_slli_epi32(bits, 16));
                *sum = _mm256_fmadd_ps(weights, _mm256_loadu_ps(x.as_ptr().add(i + 8 * s)), *sum);
            }
            i += 32;
        }
        let tail = super::portable::dot_bf16_f32(&w[i..], &x[i..]);
        sum_lanes(_mm256_add_ps(_mm256_add_ps(sums[0], sums[1]), _mm256_add_ps(sums[2], sums[3]))) + tail
    }

    /// Per block of 32: codes to f32 eight at a time and fused multiply-adds into two partial sums, which the
    /// block's scale then weighs into one of two running totals; a last partial block portable.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_codes_avx2(codes: &[u8], scales: &[f32], x: &[f32]) -> f32 {
        let mut totals = [_mm256_setzero_ps(); 2];
        let whole = codes.len() / 32;
        for block in 0..whole {
            let i = 32 * block;
            let weights = |at: usize| {
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(codes.as_ptr().add(i + at).cast())))
            };
            let inputs = |at: usize| _mm256_loadu_ps(x.as_ptr().add(i + at));
            let low = _mm256_fmadd_ps(weights(16), inputs(16), _mm256_mul_ps(weights(0), inputs(0)));
            let high = _mm256_fmadd_ps(weights(24), inputs(24), _mm256_mul_ps(weights(8), inputs(8)));
            let sum = _mm256_add_ps(low, high);
            let total = &mut totals[block % 2];
            *total = _mm256_fmadd_ps(sum, _mm256_set1_ps(scales[block]), *total);
        }
        let tail = super::portable::dot_codes(&codes[32 * whole..], &scales[whole..], &x[32 * whole..]);
        sum_lanes(_mm256_add_ps(totals[0], totals[1])) + tail
    }
}

/// Elsewhere: neither AVX-512 BF16 nor AVX2 (so the bf16 kernel declines), portable int8.
#[cfg(not(target_arch = "x86_64"))]
mod simd {
    pub fn has_avx512_bf16() -> bool {
        false
    }
    pub fn has_avx2_fma() -> bool {
        false
    }
    pub use super::portable::{dot_bf16, dot_bf16_f32, dot_codes};
}

/// Plain loops the compiler vectorises for whatever the target has.
mod portable {
    use half::bf16;

    /// The dot product of two bf16 vectors (raw bits) in f32.
    pub fn dot_bf16(a: &[u16], b: &[u16]) -> f32 {
        a.iter().zip(b).map(|(&a, &b)| bf16::from_bits(a).to_f32() * bf16::from_bits(b).to_f32()).sum()
    }

    /// The dot product of bf16 weights (raw bits) and f32 activations.
    pub fn dot_bf16_f32(w: &[u16], x: &[f32]) -> f32 {
        w.iter().zip(x).map(|(&w, &x)| bf16::from_bits(w).to_f32() * x).sum()
    }

    /// `sum over blocks of scale * sum code x` for 8-bit codes in blocks of [`GROUP`](super::GROUP).
    pub fn dot_codes(codes: &[u8], scales: &[f32], x: &[f32]) -> f32 {
        codes
            .chunks(super::GROUP)
            .zip(x.chunks(super::GROUP))
            .zip(scales)
            .map(|((codes, x), scale)| scale * codes.iter().zip(x).map(|(&c, &x)| f32::from(c) * x).sum::<f32>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    fn max_error(ours: &Tensor, exact: &Tensor) -> f64 {
        f64::try_from((ours.to_kind(Kind::Double) - exact).abs().max()).unwrap()
    }

    /// Against the product in f64 of the same bf16 values: the error is the output's bf16 rounding (2^-9 relative)
    /// plus f32 accumulation, f32 accumulation alone for f32 activations (rounded to bf16 first where the kernel
    /// uses AVX-512 BF16); odd widths exercise the tails, three rows the batch of a step. Runs the tier this CPU has.
    #[test]
    fn the_bf16_kernel_matches_the_product_in_double_precision() {
        if !simd::has_avx512_bf16() && !simd::has_avx2_fma() {
            eprintln!("skipped: this CPU has neither AVX-512 BF16 nor AVX2, the kernel declines and libtorch runs");
            return;
        }
        for (m, n, k) in [(1, 130, 576), (3, 70, 200), (8, 9, 37)] {
            let x = random(&[m, k], 1).to_kind(Kind::BFloat16);
            let (w, b) = (random(&[n, k], 2).to_kind(Kind::BFloat16), random(&[n], 3).to_kind(Kind::BFloat16));
            let ours = bf16_linear(&x, &w, Some(&b)).expect("the kernel takes this shape");
            assert_eq!((ours.size(), ours.kind()), (vec![m, n], Kind::BFloat16));
            let exact = x.to_kind(Kind::Double).matmul(&w.to_kind(Kind::Double).tr()) + b.to_kind(Kind::Double);
            let largest = f64::try_from(exact.abs().max()).unwrap();
            assert!(max_error(&ours, &exact) <= largest / 256.0, "m {m} n {n} k {k}");
        }
        // f32 activations (a model with bf16-packed weights) come back in f32.
        let x = random(&[2, 96], 6);
        let w = random(&[40, 96], 7).to_kind(Kind::BFloat16);
        let ours = bf16_linear(&x, &w, None).expect("the kernel takes f32 activations");
        assert_eq!(ours.kind(), Kind::Float);
        let x_used = if simd::has_avx512_bf16() { x.to_kind(Kind::BFloat16) } else { x };
        let exact = x_used.to_kind(Kind::Double).matmul(&w.to_kind(Kind::Double).tr());
        assert!(max_error(&ours, &exact) <= f64::try_from(exact.abs().max()).unwrap() * 1e-5);
        let too_many_rows = random(&[MAX_ROWS as i64 + 1, 16], 4).to_kind(Kind::BFloat16);
        assert!(bf16_linear(&too_many_rows, &random(&[4, 16], 5).to_kind(Kind::BFloat16), None).is_none());
    }

    /// Both 8-bit paths against `x (min + code * scale)^T + b` in f64 (f32 accumulation error only), for f32 and
    /// bf16 activations, ten blocks a row (eight lanes of block offsets and a tail, the last block 12 wide); the
    /// dot products of each tier this CPU has on a 70-long vector (a partial last block, a tail of 6).
    #[test]
    fn the_int8_kernel_multiplies_by_min_plus_code_times_scale() {
        let (n, k, groups) = (50, 300, 10);
        tch::manual_seed(6);
        let codes = Tensor::randint(256, [n, k], (Kind::Uint8, Device::Cpu));
        let blocks = Blocks {
            scales: (0..n * groups).map(|i| 0.001 * (i % 17 + 1) as f32).collect(),
            mins: (0..n * groups).map(|i| -0.1 * (i % 7) as f32).collect(),
        };
        let (rows, width, groups) = (n as usize, k as usize, groups as usize);
        let per_input = |values: &[f32]| -> Tensor {
            let v: Vec<f64> =
                (0..rows * width).map(|e| f64::from(values[(e / width) * groups + (e % width) / GROUP])).collect();
            Tensor::from_slice(&v).view([n, k])
        };
        let unpacked = per_input(&blocks.mins) + codes.to_kind(Kind::Double) * per_input(&blocks.scales);
        let bias = random(&[n], 7);
        for kind in [Kind::Float, Kind::BFloat16] {
            let x = random(&[2, k], 8).to_kind(kind);
            let ours = int8_linear(&x, &codes, &blocks, Some(&bias)).expect("the kernel takes this shape");
            assert_eq!((ours.size(), ours.kind()), (vec![2, n], kind));
            let exact = x.to_kind(Kind::Double).matmul(&unpacked.tr()) + bias.to_kind(Kind::Double);
            let largest = f64::try_from(exact.abs().max()).unwrap();
            let tolerance = if kind == Kind::Float { 1e-5 } else { 1.0 / 256.0 };
            assert!(max_error(&ours, &exact) <= largest * tolerance, "{kind:?}");
        }
        let codes: Vec<u8> = (0..70).map(|i| (i * 37 % 256) as u8).collect();
        let x: Vec<f32> = (0..70).map(|i| (i as f32 * 0.37).sin()).collect();
        let block_scales = [0.5f32, 2.0, -1.0];
        let exact: f64 = codes
            .iter()
            .zip(&x)
            .enumerate()
            .map(|(i, (&c, &x))| f64::from(block_scales[i / 32]) * f64::from(c) * f64::from(x))
            .sum();
        assert!((f64::from(portable::dot_codes(&codes, &block_scales, &x)) - exact).abs() < 1e-2);
        assert!((f64::from(simd::dot_codes(&codes, &block_scales, &x)) - exact).abs() < 1e-2);
        let (a, b): (Vec<u16>, Vec<u16>) =
            x.iter().map(|&v| (bf16::from_f32(v).to_bits(), bf16::from_f32(-v).to_bits())).unzip();
        let exact: f64 =
            a.iter().zip(&b).map(|(&a, &b)| f64::from(bf16::from_bits(a)) * f64::from(bf16::from_bits(b))).sum();
        for dot in [portable::dot_bf16(&a, &b), simd::dot_bf16(&a, &b)] {
            assert!((f64::from(dot) - exact).abs() < 1e-4, "{dot} vs {exact}");
        }
        let exact: f64 = a.iter().zip(&x).map(|(&a, &x)| f64::from(bf16::from_bits(a)) * f64::from(x)).sum();
        for dot in [portable::dot_bf16_f32(&a, &x), simd::dot_bf16_f32(&a, &x)] {
            assert!((f64::from(dot) - exact).abs() < 1e-4, "{dot} vs {exact}");
        }
    }
}
