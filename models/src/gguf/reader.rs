//! Parsing of a GGUF file (version 2 or 3) over a memory map or bytes in memory. Every read is bounds-checked,
//! and every count is checked against the bytes left before anything is reserved for it, so a truncated, corrupt
//! or hostile file gives a [`ModelError`] instead of a panic or an allocation out of proportion to its size.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::dequant::{dequantize, GgmlType};
use crate::error::{ModelError, Result};
use crate::files::FileBytes;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// One metadata value, with the GGUF value type it was stored as.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7.
    Bool(bool),
    /// Type 8: a UTF-8 string.
    String(String),
    /// Type 9: an array of values of one type.
    Array(Vec<MetaValue>),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl MetaValue {
    /// The value as an unsigned integer, if it is any integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if the value is an array.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Where one tensor lives in the file and how it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The tensor's GGUF name (e.g. `blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions innermost first, as GGUF stores them (the reverse of a torch shape).
    pub dims: Vec<u64>,
    /// The storage type.
    pub kind: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of values in the tensor.
    pub fn element_count(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape in torch order (outermost first).
    pub fn torch_shape(&self) -> Vec<i64> {
        self.dims.iter().rev().map(|&d| d as i64).collect()
    }
}

/// An open GGUF file: parsed header and metadata, tensor infos, and the (usually memory-mapped) data.
pub struct GgufFile {
    path: PathBuf,
    bytes: FileBytes,
    /// The GGUF format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, MetaValue)>,
    index: HashMap<String, usize>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_start: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and parses `path`. The tensor data stays on disk, memory-mapped, until it is read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bytes = FileBytes::map(&path)?;
        Self::parse(path, bytes)
    }

    /// Parses a GGUF file's bytes; `path` names them in errors.
    pub fn parse(path: PathBuf, bytes: FileBytes) -> Result<Self> {
        let mut cursor = Cursor { bytes: &bytes, pos: 0, path: &path };
        let magic = cursor.take(4, "the magic number")?;
        if magic != MAGIC {
            return Err(cursor.bad(format!("magic is {magic:?}, expected \"GGUF\"")));
        }
        let version = cursor.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(cursor.bad(format!("version {version} is not supported (2 and 3 are)")));
        }
        let tensor_count = cursor.u64("the tensor count")?;
        let metadata_count = cursor.u64("the metadata count")?;
        let mut metadata = Vec::new();
        for _ in 0..metadata_count {
            let key = cursor.string("a metadata key")?;
            let kind = cursor.u32("a metadata type")?;
            let value = cursor.value(kind, &key, 0)?;
            metadata.push((key, value));
        }
        let mut tensors = Vec::new();
        for _ in 0..tensor_count {
            tensors.push(cursor.tensor_info()?);
        }
        let index: HashMap<_, _> = metadata.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
        let alignment = match index.get("general.alignment") {
            Some(&i) => metadata[i]
                .1
                .as_u64()
                .filter(|a| *a > 0)
                .ok_or_else(|| cursor.bad("general.alignment is not a positive integer".into()))?,
            None => DEFAULT_ALIGNMENT,
        };
        let data_start = (cursor.pos as u64).div_ceil(alignment) * alignment;
        let tensor_index = tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(GgufFile { path, bytes, version, metadata, index, tensors, tensor_index, data_start })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A required unsigned integer metadata value.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(MetaValue::as_u64)
            .ok_or_else(|| ModelError::config(key, "missing from the GGUF metadata or not an integer"))
    }

    /// A required float metadata value.
    pub fn require_f64(&self, key: &str) -> Result<f64> {
        self.get(key)
            .and_then(MetaValue::as_f64)
            .ok_or_else(|| ModelError::config(key, "missing from the GGUF metadata or not a number"))
    }

    /// A required string metadata value.
    pub fn require_str(&self, key: &str) -> Result<&str> {
        self.get(key)
            .and_then(MetaValue::as_str)
            .ok_or_else(|| ModelError::config(key, "missing from the GGUF metadata or not a string"))
    }

    /// A tensor's info by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor, checked against the end of the file.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> Result<&[u8]> {
        Ok(&self.bytes[self.tensor_range(info)?])
    }

    /// Where a tensor's bytes lie in the file, checked against its end.
    fn tensor_range(&self, info: &TensorInfo) -> Result<std::ops::Range<usize>> {
        let size = info
            .kind
            .storage_bytes(info.element_count())
            .ok_or_else(|| ModelError::UnsupportedType { tensor: info.name.clone(), kind: info.kind.name() })?;
        let start = self.data_start.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(size));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(ModelError::BadFormat {
                path: self.path.clone(),
                format: "GGUF",
                reason: format!("tensor {} has an offset that overflows", info.name),
            });
        };
        if end > self.bytes.len() as u64 {
            return Err(ModelError::Truncated {
                path: self.path.clone(),
                what: format!("the data of tensor {}", info.name),
                needed: end,
                available: self.bytes.len() as u64,
            });
        }
        Ok(start as usize..end as usize)
    }

    /// A tensor's values as f32 in torch order, with its torch shape.
    pub fn dequantize(&self, name: &str) -> Result<(Vec<f32>, Vec<i64>)> {
        let info = self.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        let range = self.tensor_range(info)?;
        let values = dequantize(info.kind, &self.bytes[range.clone()], info.element_count() as usize)
            .ok_or_else(|| ModelError::UnsupportedType { tensor: info.name.clone(), kind: info.kind.name() })?;
        self.bytes.release(range.start, range.end);
        Ok((values, info.torch_shape()))
    }
}

/// A bounds-checked reader over the file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn bad(&self, reason: String) -> ModelError {
        ModelError::BadFormat { path: self.path.to_path_buf(), format: "GGUF", reason }
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let end = (self.pos as u64).saturating_add(n);
        if end > self.bytes.len() as u64 {
            return Err(ModelError::Truncated {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                needed: end,
                available: self.bytes.len() as u64,
            });
        }
        let slice = &self.bytes[self.pos..end as usize];
        self.pos = end as usize;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.bad(format!("{what} is not valid UTF-8")))
    }

    fn value(&mut self, kind: u32, key: &str, depth: usize) -> Result<MetaValue> {
        let what = format!("the value of {key}");
        Ok(match kind {
            0 => MetaValue::U8(self.array::<1>(&what)?[0]),
            1 => MetaValue::I8(self.array::<1>(&what)?[0] as i8),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => MetaValue::U32(self.u32(&what)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => match self.array::<1>(&what)?[0] {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(self.bad(format!("{key} is a bool stored as {b}"))),
            },
            8 => MetaValue::String(self.string(&what)?),
            9 => {
                if depth > 4 {
                    return Err(self.bad(format!("{key} nests arrays too deeply")));
                }
                let item_kind = self.u32(&what)?;
                let len = self.u64(&what)?;
                // Each element takes at least one byte: a larger count cannot be honest.
                if len > (self.bytes.len() - self.pos) as u64 {
                    return Err(ModelError::Truncated {
                        path: self.path.to_path_buf(),
                        what: format!("{len} elements of {key}"),
                        needed: (self.pos as u64).saturating_add(len),
                        available: self.bytes.len() as u64,
                    });
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    items.push(self.value(item_kind, key, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(self.u64(&what)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(&what)?)),
            other => return Err(self.bad(format!("{key} has unknown value type {other}"))),
        })
    }

    fn tensor_info(&mut self) -> Result<TensorInfo> {
        let name = self.string("a tensor name")?;
        let n_dims = self.u32("a tensor's dimension count")?;
        if n_dims > 8 {
            return Err(self.bad(format!("tensor {name} claims {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64("a tensor dimension")?);
        }
        // Shapes become torch's i64 sizes: every dimension and their product must fit.
        let fits = |n: u64| i64::try_from(n).is_ok();
        let count = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&n| fits(n) && fits(d)));
        if count.is_none() {
            return Err(self.bad(format!("tensor {name} has dimensions {dims:?} beyond 2^63 elements")));
        }
        let kind = GgmlType::from_id(self.u32("a tensor type")?);
        let offset = self.u64("a tensor offset")?;
        Ok(TensorInfo { name, dims, kind, offset })
    }
}
