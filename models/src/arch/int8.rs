//! 8-bit weight-only linear layers for generation (`--dtype int8`): each block of [`GROUP`] consecutive inputs of
//! an output row is stored as codes in [0, 255] with the block's own f32 `min` and `scale` (`w = min + code * scale`),
//! 1.25 bytes a weight where f32 takes 4. A block takes whichever of two grids reproduces it better: its range in 255
//! steps (asymmetric, as llama.cpp's Q4_1 at 4 bits) or `±max |w|` in 127 steps a side (symmetric, as Q8_0).
//! Blocks of 32 along the input are the blocks of GGUF's quantised types, so weights that were Q4_1 or Q8_0
//! (SmolLM2's) come back exactly. Activations stay f32; steps of a few tokens run the int8 kernel
//! ([`super::decode_kernels::int8_linear`]), longer inputs (prompts) libtorch's GEMM on the dense weight, which
//! packing overwrote with the same rounded values, so both compute with one set of weights.

use tch::{Kind, Tensor};

use super::decode_kernels::{self, GROUP};
use crate::error::Result;

/// A linear layer's weight `[out, in]` packed to 8 bits in blocks of [`GROUP`] inputs.
pub struct Int8Weight {
    /// `round((w - min) / scale)`, `[out, in]` uint8 on the CPU.
    codes: Tensor,
    /// Each block's step and smallest value, `[out][ceil(in / GROUP)]` row-major.
    blocks: decode_kernels::Blocks,
}

impl Int8Weight {
    /// Packs `weight` (`[out, in]`, any float dtype) and writes the rounded weight (`min + code * scale`) back into
    /// it. A block of equal values keeps a zero scale and is exact.
    pub fn pack(weight: &mut Tensor) -> Result<Self> {
        let _guard = tch::no_grad_guard();
        let (rows, inputs) = weight.size2()?;
        let w = weight.f_to_kind(Kind::Float)?.f_to_device(tch::Device::Cpu)?;
        let groups = (inputs + GROUP as i64 - 1) / GROUP as i64;
        // Padding repeats a block's last value, so that it changes neither the block's minimum nor its maximum.
        let padded = w.f_pad([0, groups * GROUP as i64 - inputs], "replicate", None)?;
        let blocks = padded.f_view([rows, groups, GROUP as i64])?;
        let tiny = f64::from(f32::MIN_POSITIVE);
        let asymmetric_min = blocks.f_amin([2], true)?;
        let asymmetric_scale = (blocks.f_amax([2], true)? - &asymmetric_min) / 255.0;
        let symmetric_scale = blocks.f_abs()?.f_amax([2], true)? / 127.0;
        let symmetric_min = &symmetric_scale * -127.0;
        let codes_on = |min: &Tensor, scale: &Tensor, top: i64| -> Result<Tensor> {
            Ok(((&blocks - min) / scale.f_clamp_min(tiny)?).f_round()?.f_clamp(0, top)?)
        };
        let (asymmetric, symmetric) =
            (codes_on(&asymmetric_min, &asymmetric_scale, 255)?, codes_on(&symmetric_min, &symmetric_scale, 254)?);
        let error = |codes: &Tensor, min: &Tensor, scale: &Tensor| -> Result<Tensor> {
            Ok((codes * scale + min - &blocks).f_abs()?.f_amax([2], true)?)
        };
        let use_symmetric = error(&symmetric, &symmetric_min, &symmetric_scale)?.f_lt_tensor(&error(
            &asymmetric,
            &asymmetric_min,
            &asymmetric_scale,
        )?)?;
        let min = symmetric_min.f_where_self(&use_symmetric, &asymmetric_min)?;
        let scale = symmetric_scale.f_where_self(&use_symmetric, &asymmetric_scale)?;
        let codes = symmetric.f_where_self(&use_symmetric, &asymmetric)?.f_to_kind(Kind::Uint8)?;
        let codes = codes.f_view([rows, groups * GROUP as i64])?.f_narrow(1, 0, inputs)?;
        let blocks = decode_kernels::Blocks {
            scales: Vec::<f32>::try_from(scale.f_view([-1])?)?,
            mins: Vec::<f32>::try_from(min.f_view([-1])?)?,
        };
        let packed = Int8Weight { codes: codes.f_contiguous()?, blocks };
        weight.f_copy_(&packed.unpacked())?;
        Ok(packed)
    }

    /// The weight these codes and blocks stand for, `[out, in]` in f32.
    pub fn unpacked(&self) -> Tensor {
        let (rows, inputs) = (self.codes.size()[0], self.codes.size()[1]);
        let groups = self.blocks.scales.len() as i64 / rows.max(1);
        let per_input = |values: &[f32]| {
            let t = Tensor::from_slice(values).view([rows, groups, 1]);
            t.expand([rows, groups, GROUP as i64], false).reshape([rows, groups * GROUP as i64]).narrow(1, 0, inputs)
        };
        per_input(&self.blocks.mins) + self.codes.to_kind(Kind::Float) * per_input(&self.blocks.scales)
    }

    /// `x W^T + b` for `x` `[.., in]` in `x`'s dtype through the int8 kernel, or `None` when the kernel declines
    /// (more than a few rows, another device), for the caller to use the dense weight.
    pub fn linear(&self, x: &Tensor, bias: Option<&Tensor>) -> Option<Tensor> {
        decode_kernels::on_rows(x, self.codes.size()[0], |rows| {
            decode_kernels::int8_linear(rows, &self.codes, &self.blocks, bias)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Each entry is within half a step (`(max - min) / 255` of its block of 32 inputs, the last one 8 wide: the
    /// asymmetric grid's, the worst a block may get) of the original, the dense weight now holds the rounded values,
    /// a zero row stays zero, and blocks as GGUF's Q4_1 (16 steps from a minimum) and Q8_0 (`d * q`, q in
    /// -127..=127, the largest at 127) write come back exactly.
    #[test]
    fn packing_rounds_each_block_to_within_half_its_step() {
        tch::manual_seed(1);
        let original = Tensor::randn([64, 104], (Kind::Float, Device::Cpu));
        let mut weight = original.copy();
        let _ = weight.get(5).zero_();
        let packed = Int8Weight::pack(&mut weight).expect("packs");
        assert_eq!(packed.blocks.scales.len(), 64 * 4);
        let block_max = |start: i64, width: i64| original.narrow(1, start, width).abs().amax([1], true);
        let step = Tensor::cat(
            &[
                block_max(0, 32).expand([64, 32], false),
                block_max(32, 32).expand([64, 32], false),
                block_max(64, 32).expand([64, 32], false),
                block_max(96, 8).expand([64, 8], false),
            ],
            1,
        ) / 127.0;
        let error = (packed.unpacked() - &original).abs() - step * 0.5;
        let beyond = error.max_other(&Tensor::zeros_like(&error));
        let _ = beyond.get(5).zero_();
        assert!(f64::try_from(beyond.max()).unwrap() <= 1e-6, "an entry beyond half its row's step");
        assert!(weight.equal(&packed.unpacked()));
        assert_eq!(f64::try_from(weight.get(5).abs().sum(Kind::Float)).unwrap(), 0.0);

        let q4_1 = (0..32).map(|i| -0.75 + 0.125 * (i % 16) as f32);
        let q8_0 = (0..32).map(|i| 0.01 * ((i * 37) % 255 - 127) as f32);
        let blocks: Vec<f32> = q4_1.chain(q8_0).collect();
        let mut weight = Tensor::from_slice(&blocks).view([1, 64]);
        let exact = weight.copy();
        let _ = Int8Weight::pack(&mut weight).expect("packs");
        let error = f64::try_from((&weight - &exact).abs().max()).unwrap();
        assert!(error < 1e-6, "GGUF-style blocks come back {error} off");
    }
}
