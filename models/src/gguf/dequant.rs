//! Dequantization of GGML tensor storage types to f32, following ggml's reference decoders
//! (`dequantize_row_*` in ggml-quants.c). Tested against the Python `gguf` package.

use half::{bf16, f16};

/// A GGML tensor storage type, by its number in the GGUF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)] // llama.cpp's names, so that `name()` prints them
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Blocks of 32: f16 scale, 32 signed bytes.
    Q8_0,
    /// Blocks of 32: f16 scale, 4-bit values offset by 8.
    Q4_0,
    /// Blocks of 32: f16 scale and minimum, 4-bit values.
    Q4_1,
    /// Blocks of 32: f16 scale, 5-bit values offset by 16.
    Q5_0,
    /// Blocks of 32: f16 scale and minimum, 5-bit values.
    Q5_1,
    /// Super-blocks of 256: 16 sub-blocks with 4-bit scales and minimums, 2-bit values.
    Q2_K,
    /// Super-blocks of 256: 16 sub-blocks with 6-bit scales, 3-bit values (2 bits plus a high-bit mask).
    Q3_K,
    /// Super-blocks of 256: 8 sub-blocks with 6-bit scales and minimums, 4-bit values.
    Q4_K,
    /// Super-blocks of 256: like Q4_K with a fifth bit per value.
    Q5_K,
    /// Super-blocks of 256: 16 sub-blocks with 8-bit scales, 6-bit values.
    Q6_K,
    /// Blocks of 32: f16 scale, 4-bit indices into a fixed non-linear table of 16 values.
    IQ4_NL,
    /// Super-blocks of 256: IQ4_NL's table with a 6-bit scale per sub-block of 32.
    IQ4_XS,
    /// Any other type number; its data cannot be decoded here.
    Other(u32),
}

impl GgmlType {
    /// The type for a GGUF type number.
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            20 => GgmlType::IQ4_NL,
            23 => GgmlType::IQ4_XS,
            30 => GgmlType::BF16,
            other => GgmlType::Other(other),
        }
    }

    /// The GGUF type number.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::IQ4_NL => 20,
            GgmlType::IQ4_XS => 23,
            GgmlType::BF16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// The name llama.cpp uses for the type.
    pub fn name(self) -> String {
        match self {
            GgmlType::Other(id) => format!("type #{id}"),
            known => format!("{known:?}"),
        }
    }

    /// (values per block, bytes per block), or `None` for types this runtime cannot decode.
    pub fn block_layout(self) -> Option<(u64, u64)> {
        Some(match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::BF16 => (1, 2),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q2_K => (256, 84),
            GgmlType::Q3_K => (256, 110),
            GgmlType::Q4_K => (256, 144),
            GgmlType::Q5_K => (256, 176),
            GgmlType::Q6_K => (256, 210),
            GgmlType::IQ4_NL => (32, 18),
            GgmlType::IQ4_XS => (256, 136),
            GgmlType::Other(_) => return None,
        })
    }

    /// Bytes taken by `count` values, or `None` if the type is unknown, `count` is not whole blocks or their size
    /// does not fit in 64 bits (a tensor that claims 2^62 elements).
    pub fn storage_bytes(self, count: u64) -> Option<u64> {
        let (values, bytes) = self.block_layout()?;
        count.is_multiple_of(values).then(|| (count / values).checked_mul(bytes))?
    }
}

/// Decodes `count` values of type `kind` from `data`. `None` when the type is unknown or `data` does not
/// hold exactly `count` values.
pub fn dequantize(kind: GgmlType, data: &[u8], count: usize) -> Option<Vec<f32>> {
    if kind.storage_bytes(count as u64)? != data.len() as u64 {
        return None;
    }
    let (block_values, block_bytes) = kind.block_layout()?;
    let decode: fn(&[u8], &mut [f32]) = match kind {
        GgmlType::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => |b, y| y[0] = f16::from_le_bytes([b[0], b[1]]).to_f32(),
        GgmlType::BF16 => |b, y| y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q2_K => q2_k,
        GgmlType::Q3_K => q3_k,
        GgmlType::Q4_K => q4_k,
        GgmlType::Q5_K => q5_k,
        GgmlType::Q6_K => q6_k,
        GgmlType::IQ4_NL => iq4_nl,
        GgmlType::IQ4_XS => iq4_xs,
        GgmlType::Other(_) => return None,
    };
    let mut out = vec![0f32; count];
    for (block, values) in data.chunks_exact(block_bytes as usize).zip(out.chunks_exact_mut(block_values as usize)) {
        decode(block, values);
    }
    Some(out)
}

fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

fn q8_0(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    for (out, &q) in y.iter_mut().zip(&b[2..34]) {
        *out = (q as i8) as f32 * d;
    }
}

fn q4_0(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    for (j, &q) in b[4..20].iter().enumerate() {
        y[j] = (q & 0x0f) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// The 5-bit values of a Q5_0 / Q5_1 block: low nibbles from `qs`, fifth bits from the u32 `qh`.
fn five_bit_values(qh: u32, qs: &[u8]) -> [i32; 32] {
    let mut v = [0i32; 32];
    for (j, &q) in qs.iter().enumerate() {
        let high_0 = ((qh >> j) << 4) & 0x10;
        let high_1 = (qh >> (j + 12)) & 0x10;
        v[j] = ((q & 0x0f) as u32 | high_0) as i32;
        v[j + 16] = ((q >> 4) as u32 | high_1) as i32;
    }
    v
}

fn q5_0(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (out, v) in y.iter_mut().zip(five_bit_values(qh, &b[6..22])) {
        *out = (v - 16) as f32 * d;
    }
}

fn q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for (out, v) in y.iter_mut().zip(five_bit_values(qh, &b[8..24])) {
        *out = v as f32 * d + m;
    }
}

/// The 2-bit field at `shift` of each of `qs`'s bytes, for the 16 values of one Q2_K / Q3_K sub-block.
fn two_bits(qs: &[u8], shift: usize) -> impl Iterator<Item = i32> + '_ {
    qs[..16].iter().map(move |q| ((q >> shift) & 3) as i32)
}

fn q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (half_at(b, 80), half_at(b, 82));
    // Values come in 16 sub-blocks of 16: per half of 128, four bit planes over two runs of 16 bytes.
    let sub_blocks = (0..2).flat_map(|half| (0..4).flat_map(move |plane| (0..2).map(move |run| (half, plane, run))));
    for (s, ((half, plane, run), ys)) in sub_blocks.zip(y.chunks_exact_mut(16)).enumerate() {
        let (scale, min) = (d * (scales[s] & 0x0f) as f32, dmin * (scales[s] >> 4) as f32);
        for (out, q) in ys.iter_mut().zip(two_bits(&qs[32 * half + 16 * run..], 2 * plane)) {
            *out = scale * q as f32 - min;
        }
    }
}

/// The 16 signed 6-bit scales of a Q3_K super-block from its 12 packed bytes (ggml's `kmask` unpacking).
fn q3_k_scales(packed: &[u8]) -> [i32; 16] {
    let mut scales = [0i32; 16];
    for (j, scale) in scales.iter_mut().enumerate() {
        let low = if j < 8 { packed[j] & 0x0f } else { packed[j - 8] >> 4 };
        let high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        *scale = (low | (high << 4)) as i32 - 32;
    }
    scales
}

fn q3_k(b: &[u8], y: &mut [f32]) {
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], q3_k_scales(&b[96..108]));
    let d = half_at(b, 108);
    let sub_blocks = (0..2).flat_map(|half| (0..4).flat_map(move |plane| (0..2).map(move |run| (half, plane, run))));
    for (s, ((half, plane, run), ys)) in sub_blocks.zip(y.chunks_exact_mut(16)).enumerate() {
        let scale = d * scales[s] as f32;
        let mask_bit = 1u8 << (4 * half + plane);
        let high = &hmask[16 * run..16 * run + 16];
        for ((out, q), h) in ys.iter_mut().zip(two_bits(&qs[32 * half + 16 * run..], 2 * plane)).zip(high) {
            *out = scale * (q - if h & mask_bit != 0 { 0 } else { 4 }) as f32;
        }
    }
}

/// The non-linear 4-bit code book of IQ4_NL and IQ4_XS (`kvalues_iq4nl` in ggml).
const IQ4_VALUES: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// 32 values from 16 bytes of IQ4 indices: low nibbles first, then high nibbles.
fn iq4_block(scale: f32, qs: &[u8], y: &mut [f32]) {
    for (j, &q) in qs[..16].iter().enumerate() {
        y[j] = scale * IQ4_VALUES[(q & 0x0f) as usize] as f32;
        y[j + 16] = scale * IQ4_VALUES[(q >> 4) as usize] as f32;
    }
}

fn iq4_nl(b: &[u8], y: &mut [f32]) {
    iq4_block(half_at(b, 0), &b[2..18], y);
}

fn iq4_xs(b: &[u8], y: &mut [f32]) {
    let d = half_at(b, 0);
    let scales_high = u16::from_le_bytes([b[2], b[3]]);
    let (scales_low, qs) = (&b[4..8], &b[8..136]);
    for (ib, (ys, q)) in y.chunks_exact_mut(32).zip(qs.chunks_exact(16)).enumerate() {
        let low = (scales_low[ib / 2] >> (4 * (ib % 2))) & 0x0f;
        let high = ((scales_high >> (2 * ib)) & 3) as u8;
        iq4_block(d * ((low | (high << 4)) as i32 - 32) as f32, q, ys);
    }
}

/// Scale and minimum of sub-block `j` from the 12 packed 6-bit scale bytes of a K-quant super-block.
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((q[j] & 63) as f32, (q[j + 4] & 63) as f32)
    } else {
        let sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
        let m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        (sc as f32, m as f32)
    }
}

/// Q4_K and Q5_K share their layout up to the optional fifth-bit plane `qh`.
fn k_quant_4_or_5(b: &[u8], y: &mut [f32], qh: Option<&[u8]>, qs: &[u8]) {
    let (d, dmin) = (half_at(b, 0), half_at(b, 2));
    let scales = &b[4..16];
    for (chunk, (ys, ql)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, min1, d2, min2) = (d * sc1, dmin * m1, d * sc2, dmin * m2);
        let (bit_lo, bit_hi) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        for l in 0..32 {
            let (extra_lo, extra_hi) = match qh {
                Some(h) => (if h[l] & bit_lo != 0 { 16.0 } else { 0.0 }, if h[l] & bit_hi != 0 { 16.0 } else { 0.0 }),
                None => (0.0, 0.0),
            };
            ys[l] = d1 * ((ql[l] & 0x0f) as f32 + extra_lo) - min1;
            ys[l + 32] = d2 * ((ql[l] >> 4) as f32 + extra_hi) - min2;
        }
    }
}

fn q4_k(b: &[u8], y: &mut [f32]) {
    k_quant_4_or_5(b, y, None, &b[16..144]);
}

fn q5_k(b: &[u8], y: &mut [f32]) {
    k_quant_4_or_5(b, y, Some(&b[16..48]), &b[48..176]);
}

fn q6_k(b: &[u8], y: &mut [f32]) {
    let (ql_all, qh_all, sc_all) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = half_at(b, 208);
    for half_block in 0..2 {
        let ql = &ql_all[64 * half_block..];
        let qh = &qh_all[32 * half_block..];
        let sc = &sc_all[8 * half_block..];
        let ys = &mut y[128 * half_block..];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            ys[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            ys[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            ys[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            ys[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_block_by_hand() {
        // scale 0.5 (f16 0x3800), values -2, 0, 3, then zeros.
        let mut block = vec![0x00, 0x38];
        block.extend([(-2i8) as u8, 0, 3]);
        block.resize(34, 0);
        let y = dequantize(GgmlType::Q8_0, &block, 32).unwrap();
        assert_eq!(&y[..3], &[-1.0, 0.0, 1.5]);
    }

    #[test]
    fn q4_1_block_by_hand() {
        // d = 2, m = -1; first byte: low nibble 3 -> y[0] = 5, high nibble 1 -> y[16] = 1.
        let mut block = vec![0x00, 0x40, 0x00, 0xbc, 0x13];
        block.resize(20, 0);
        let y = dequantize(GgmlType::Q4_1, &block, 32).unwrap();
        assert_eq!((y[0], y[16], y[1]), (5.0, 1.0, -1.0));
    }

    #[test]
    fn wrong_length_or_unknown_type_is_none() {
        assert!(dequantize(GgmlType::Q4_0, &[0; 17], 32).is_none());
        assert!(dequantize(GgmlType::Other(99), &[0; 4], 1).is_none());
        assert!(GgmlType::Q4_K.storage_bytes(100).is_none());
    }
}
