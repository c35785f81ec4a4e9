//! Weights packed for generation: a linear layer's weight stored in fewer bytes than f32, multiplied by the
//! matrix-vector kernels of [`super::decode_kernels`] on steps of a few tokens, while activations stay f32.

use serde::Serialize;
use tch::{Kind, Tensor};

use super::decode_kernels;
use super::int8::Int8Weight;
use crate::error::Result;

/// How packed weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WeightFormat {
    /// bf16, 2 bytes a weight (`--dtype bf16-weights`).
    Bf16,
    /// 8-bit codes in blocks of 32 inputs, 1.25 bytes a weight (`--dtype int8`, [`Int8Weight`]).
    Int8,
}

impl std::fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Int8 => "int8",
        })
    }
}

/// One linear layer's packed weight.
pub enum PackedWeight {
    /// `[out, in]` bf16, contiguous, on the CPU.
    Bf16(Tensor),
    /// 8-bit blocks.
    Int8(Int8Weight),
}

impl PackedWeight {
    /// Packs `weight` (`[out, in]`) and writes the rounded values back into it, so that the dense path (prompts,
    /// longer than the kernels take) computes with the same weights.
    pub fn pack(format: WeightFormat, weight: &mut Tensor) -> Result<Self> {
        match format {
            WeightFormat::Int8 => Ok(PackedWeight::Int8(Int8Weight::pack(weight)?)),
            WeightFormat::Bf16 => {
                let _guard = tch::no_grad_guard();
                let packed = weight.f_to_device(tch::Device::Cpu)?.f_to_kind(Kind::BFloat16)?.f_contiguous()?;
                weight.f_copy_(&packed)?;
                Ok(PackedWeight::Bf16(packed))
            }
        }
    }

    /// `x W^T + b` for `x` `[.., in]` through the kernel of the format, or `None` when it declines (more than a
    /// few rows, another device, a CPU without the instructions), for the caller to use the dense weight.
    pub fn linear(&self, x: &Tensor, bias: Option<&Tensor>) -> Option<Tensor> {
        match self {
            PackedWeight::Int8(weight) => weight.linear(x, bias),
            PackedWeight::Bf16(weight) => {
                decode_kernels::on_rows(x, weight.size()[0], |rows| decode_kernels::bf16_linear(rows, weight, bias))
            }
        }
    }
}
