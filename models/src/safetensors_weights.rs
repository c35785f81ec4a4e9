//! Reading a Hugging Face checkpoint: `model.safetensors`, or shards listed by
//! `model.safetensors.index.json`, memory-mapped and copied out tensor by tensor in its stored dtype. The map's
//! pages are released as they are copied, so the map adds at most one chunk to the process's resident memory:
//! loading holds the weights, not the weights and the files besides.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::files::FileBytes;
use crate::weights::{check_shape, WeightSource};

/// Bytes copied out of the map before their pages are released: a 150 MB embedding is never resident twice.
const COPY_CHUNK_BYTES: usize = 8 << 20;

/// One safetensors file (usually memory-mapped) with its parsed header.
struct Shard {
    path: PathBuf,
    bytes: FileBytes,
    metadata: Metadata,
    data_start: usize,
}

impl Shard {
    fn open(path: PathBuf) -> Result<Self> {
        let bytes = FileBytes::map(&path)?;
        Self::parse(path, bytes)
    }

    fn parse(path: PathBuf, bytes: FileBytes) -> Result<Self> {
        let (header_len, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| ModelError::BadFormat {
            path: path.clone(),
            format: "safetensors",
            reason: e.to_string(),
        })?;
        Ok(Shard { path, bytes, metadata, data_start: 8 + header_len })
    }
}

/// A [`WeightSource`] over the safetensors files of a Hugging Face folder.
pub struct SafetensorsWeights {
    shards: Vec<Shard>,
    /// Tensor name -> index into `shards`.
    index: HashMap<String, usize>,
}

impl SafetensorsWeights {
    /// Opens `model.safetensors` in `dir`, or every shard that `model.safetensors.index.json` names.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        if !index_path.exists() {
            let path = dir.join("model.safetensors");
            let bytes = FileBytes::map(&path)?;
            return Self::parse(path, bytes);
        }
        let text = std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
        let index = ShardIndex::parse(&text, &index_path)?;
        let mut shards = Vec::with_capacity(index.files.len());
        for file in &index.files {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(ModelError::BadFormat {
                    path: index_path.clone(),
                    format: "safetensors index",
                    reason: format!("it names the shard {file}, which is not in {}", dir.display()),
                });
            }
            shards.push(Shard::open(path)?);
        }
        Ok(SafetensorsWeights { shards, index: index.shard_of })
    }

    /// A checkpoint of one safetensors file whose bytes are at hand; `path` names them in errors.
    pub fn parse(path: PathBuf, bytes: FileBytes) -> Result<Self> {
        let shard = Shard::parse(path, bytes)?;
        let index = shard.metadata.tensors().into_keys().map(|name| (name, 0)).collect();
        Ok(SafetensorsWeights { shards: vec![shard], index })
    }

    /// The shape a tensor's header gives, if the checkpoint holds it.
    pub fn shape(&self, name: &str) -> Option<Vec<i64>> {
        let info = self.shards[*self.index.get(name)?].metadata.info(name)?;
        Some(info.shape.iter().map(|&d| i64::try_from(d).unwrap_or(i64::MAX)).collect())
    }

    /// The number of elements of each tensor, from the headers alone.
    pub fn element_counts(&self) -> impl Iterator<Item = u64> + '_ {
        self.index.iter().filter_map(|(name, &shard)| {
            let info = self.shards[shard].metadata.info(name)?;
            Some(info.shape.iter().map(|&d| d as u64).product())
        })
    }

    /// Names of every tensor in the checkpoint.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

impl WeightSource for SafetensorsWeights {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let shard = self
            .index
            .get(name)
            .map(|&i| &self.shards[i])
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
        let info = shard.metadata.info(name).ok_or_else(|| {
            ModelError::MissingTensor(format!("{name} (listed in the index but not in {})", shard.path.display()))
        })?;
        let found: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        check_shape(name, shape, &found)?;
        let kind = kind_of(info.dtype).ok_or_else(|| ModelError::UnsupportedType {
            tensor: name.to_string(),
            kind: format!("{:?} (safetensors)", info.dtype),
        })?;
        let (start, end) = (shard.data_start + info.data_offsets.0, shard.data_start + info.data_offsets.1);
        if end > shard.bytes.len() {
            return Err(ModelError::Truncated {
                path: shard.path.clone(),
                what: format!("the data of tensor {name}"),
                needed: end as u64,
                available: shard.bytes.len() as u64,
            });
        }
        let expected = found.iter().product::<i64>() as usize * kind.elt_size_in_bytes();
        if end - start != expected {
            return Err(ModelError::BadFormat {
                path: shard.path.clone(),
                format: "safetensors",
                reason: format!("tensor {name} has {} bytes of data, its shape and dtype need {expected}", end - start),
            });
        }
        let tensor = Tensor::f_empty(&found, (kind, Device::Cpu))?;
        if end > start {
            // SAFETY: a new contiguous CPU tensor of `found` elements of `kind`, `end - start` bytes as checked
            // above, that nothing else references yet.
            let target = unsafe { std::slice::from_raw_parts_mut(tensor.data_ptr().cast::<u8>(), end - start) };
            for (i, chunk) in target.chunks_mut(COPY_CHUNK_BYTES).enumerate() {
                let from = start + i * COPY_CHUNK_BYTES;
                chunk.copy_from_slice(&shard.bytes[from..from + chunk.len()]);
                shard.bytes.release(from, from + chunk.len());
            }
        }
        Ok(tensor)
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

/// `model.safetensors.index.json`: which shard file holds each tensor.
#[derive(Debug)]
pub struct ShardIndex {
    /// The shard files, sorted, each once: plain file names in the checkpoint's folder.
    pub files: Vec<String>,
    /// Tensor name -> index into `files`.
    pub shard_of: HashMap<String, usize>,
}

impl ShardIndex {
    /// Parses an index's text; `path` names it in errors. A shard must be a plain file name: an index cannot send
    /// the reader outside the checkpoint's folder.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad =
            |reason: String| ModelError::BadFormat { path: path.to_path_buf(), format: "safetensors index", reason };
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let weight_map = json["weight_map"].as_object().ok_or_else(|| bad("it has no weight_map object".into()))?;
        let mut entries = Vec::with_capacity(weight_map.len());
        for (name, file) in weight_map {
            let file = file.as_str().ok_or_else(|| bad(format!("the entry for {name} is not a file name")))?;
            if Path::new(file).file_name().is_none_or(|f| f != file) {
                return Err(bad(format!("the entry for {name} names {file:?}, not a file in the checkpoint's folder")));
            }
            entries.push((name, file));
        }
        let mut files: Vec<String> = entries.iter().map(|(_, file)| file.to_string()).collect();
        files.sort_unstable();
        files.dedup();
        let shard_of = entries
            .into_iter()
            .map(|(name, file)| (name.clone(), files.binary_search_by(|f| f.as_str().cmp(file)).unwrap_or_default()))
            .collect();
        Ok(ShardIndex { files, shard_of })
    }
}
