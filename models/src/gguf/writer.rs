//! Writing GGUF files (version 3): metadata of any value type and tensors stored as F32, F16, BF16 or
//! Q8_0 (quantized as ggml's reference quantizer does). Files are written atomically.

use std::path::Path;

use half::{bf16, f16};

use super::dequant::GgmlType;
use super::reader::MetaValue;
use crate::error::{ModelError, Result};
use crate::files::write_atomically;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    kind: GgmlType,
    bytes: Vec<u8>,
}

/// Collects metadata and tensors, then writes them as one GGUF file.
pub struct GgufWriter {
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<PendingTensor>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter { metadata: Vec::new(), tensors: Vec::new(), alignment: 32 }
    }
}

impl GgufWriter {
    /// An empty file with the default alignment of 32 bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a metadata entry.
    pub fn set(&mut self, key: &str, value: MetaValue) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    /// Removes a metadata entry; returns whether it was there.
    pub fn remove_metadata(&mut self, key: &str) -> bool {
        let before = self.metadata.len();
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.len() != before
    }

    /// Removes a tensor; returns whether it was there.
    pub fn remove_tensor(&mut self, name: &str) -> bool {
        let before = self.tensors.len();
        self.tensors.retain(|t| t.name != name);
        self.tensors.len() != before
    }

    /// Aligns tensor data to `alignment` bytes (recorded as `general.alignment`).
    pub fn set_alignment(&mut self, alignment: u32) {
        self.alignment = u64::from(alignment.max(1));
        self.set("general.alignment", MetaValue::U32(alignment.max(1)));
    }

    /// Adds a tensor of `shape` (torch order) from f32 values, stored as `kind` (F32, F16, BF16 or Q8_0).
    pub fn add_f32(&mut self, name: &str, shape: &[i64], values: &[f32], kind: GgmlType) -> Result<()> {
        let count: i64 = shape.iter().product();
        if count as usize != values.len() {
            return Err(ModelError::InvalidInput(format!(
                "tensor {name}: shape {shape:?} holds {count} values, {} given",
                values.len()
            )));
        }
        let bytes = match kind {
            GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
            GgmlType::BF16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
            GgmlType::Q8_0 => {
                if !values.len().is_multiple_of(32) || shape.last().is_some_and(|d| d % 32 != 0) {
                    return Err(ModelError::InvalidInput(format!(
                        "tensor {name}: Q8_0 needs rows that are a multiple of 32 values, shape is {shape:?}"
                    )));
                }
                values.chunks_exact(32).flat_map(quantize_q8_0_block).collect()
            }
            other => {
                return Err(ModelError::UnsupportedType {
                    tensor: name.to_string(),
                    kind: format!("{} (writing supports F32, F16, BF16, Q8_0)", other.name()),
                })
            }
        };
        self.add_raw(name, shape, kind, bytes);
        Ok(())
    }

    /// Adds a tensor from already encoded bytes; nothing is checked (used to build test files).
    pub fn add_raw(&mut self, name: &str, shape: &[i64], kind: GgmlType, bytes: Vec<u8>) {
        let dims = shape.iter().rev().map(|&d| d as u64).collect();
        self.tensors.push(PendingTensor { name: name.to_string(), dims, kind, bytes });
    }

    /// The encoded file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            write_value(&mut out, value, true);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            write_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.kind.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + t.bytes.len() as u64).div_ceil(self.alignment) * self.alignment;
        }
        for t in &self.tensors {
            pad_to(&mut out, self.alignment);
            out.extend_from_slice(&t.bytes);
        }
        out
    }

    /// Writes the file atomically: to a temporary file beside `path`, then renamed over it.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomically(path, &self.to_bytes())
    }
}

/// One Q8_0 block as ggml's `quantize_row_q8_0_ref`: scale max|x| / 127, values rounded half away from zero.
fn quantize_q8_0_block(block: &[f32]) -> Vec<u8> {
    let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let inv = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(block.iter().map(|v| (v * inv).round() as i8 as u8));
    out
}

fn pad_to(out: &mut Vec<u8>, alignment: u64) {
    let len = out.len() as u64;
    out.resize(len.div_ceil(alignment) as usize * alignment as usize, 0);
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn value_type(value: &MetaValue) -> u32 {
    match value {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn write_value(out: &mut Vec<u8>, value: &MetaValue, with_type: bool) {
    if with_type {
        out.extend_from_slice(&value_type(value).to_le_bytes());
    }
    match value {
        MetaValue::U8(v) => out.push(*v),
        MetaValue::I8(v) => out.push(*v as u8),
        MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Bool(v) => out.push(u8::from(*v)),
        MetaValue::String(s) => write_string(out, s),
        MetaValue::Array(items) => {
            let item_type = items.first().map_or(4, value_type);
            out.extend_from_slice(&item_type.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                write_value(out, item, false);
            }
        }
        MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{dequantize, GgufFile};

    #[test]
    fn round_trip_through_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gguf");
        let mut w = GgufWriter::new();
        w.set("general.architecture", MetaValue::String("llama".into()));
        w.set("a.list", MetaValue::Array(vec![MetaValue::I32(-1), MetaValue::I32(2)]));
        let values: Vec<f32> = (0..64).map(|i| (i as f32 - 30.0) / 7.0).collect();
        w.add_f32("x", &[2, 32], &values, GgmlType::Q8_0).unwrap();
        w.add_f32("y", &[3], &[1.0, -2.0, 0.5], GgmlType::F16).unwrap();
        w.write(&path).unwrap();
        let file = GgufFile::open(&path).unwrap();
        assert_eq!(file.get("a.list").unwrap(), &MetaValue::Array(vec![MetaValue::I32(-1), MetaValue::I32(2)]));
        let (x, shape) = file.dequantize("x").unwrap();
        assert_eq!(shape, [2, 32]);
        // Q8_0 keeps each value within half a quantization step (amax / 127 / 2) of the original.
        let step = values.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        assert!(x.iter().zip(&values).all(|(a, b)| (a - b).abs() <= step * 0.51 + 1e-3), "{x:?}");
        assert_eq!(file.dequantize("y").unwrap().0, [1.0, -2.0, 0.5]);
        assert_eq!(dequantize(GgmlType::F32, &1.5f32.to_le_bytes(), 1).unwrap(), [1.5]);
    }
}
