//! Reading a Hugging Face checkpoint: `model.safetensors`, or shards listed by
//! `model.safetensors.index.json`, memory-mapped and copied out tensor by tensor in its stored dtype. The map's
//! pages are released as they are copied, so the map adds at most one chunk to the process's resident memory:
//! loading holds the weights, not the weights and the files besides.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;
use tch::{Device, Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::files::release_mapped;
use crate::weights::{check_shape, WeightSource};

/// Bytes copied out of the map before their pages are released: a 150 MB embedding is never resident twice.
const COPY_CHUNK_BYTES: usize = 8 << 20;

/// One memory-mapped safetensors file with its parsed header.
struct Shard {
    path: PathBuf,
    mmap: Mmap,
    metadata: Metadata,
    data_start: usize,
}

impl Shard {
    fn open(path: PathBuf) -> Result<Self> {
        let file = File::open(&path).map_err(|e| ModelError::io(&path, e))?;
        // SAFETY: the map is read-only and the file is not modified by this process while it is mapped.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&path, e))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&mmap).map_err(|e| ModelError::BadFormat {
            path: path.clone(),
            format: "safetensors",
            reason: e.to_string(),
        })?;
        Ok(Shard { path, mmap, metadata, data_start: 8 + header_len })
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
            let shard = Shard::open(dir.join("model.safetensors"))?;
            let index = shard.metadata.tensors().into_keys().map(|name| (name, 0)).collect();
            return Ok(SafetensorsWeights { shards: vec![shard], index });
        }
        let text = std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
        let bad =
            |reason: String| ModelError::BadFormat { path: index_path.clone(), format: "safetensors index", reason };
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let weight_map = json["weight_map"].as_object().ok_or_else(|| bad("it has no weight_map object".into()))?;
        let mut files: Vec<&str> = weight_map.values().filter_map(|v| v.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        let mut shards = Vec::with_capacity(files.len());
        for file in &files {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(bad(format!("it names the shard {file}, which is not in {}", dir.display())));
            }
            shards.push(Shard::open(path)?);
        }
        let mut index = HashMap::new();
        for (name, file) in weight_map {
            let shard = file.as_str().and_then(|f| files.iter().position(|x| *x == f));
            let shard = shard.ok_or_else(|| bad(format!("the entry for {name} is not a file name")))?;
            index.insert(name.clone(), shard);
        }
        Ok(SafetensorsWeights { shards, index })
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
        if end > shard.mmap.len() {
            return Err(ModelError::Truncated {
                path: shard.path.clone(),
                what: format!("the data of tensor {name}"),
                needed: end as u64,
                available: shard.mmap.len() as u64,
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
                chunk.copy_from_slice(&shard.mmap[from..from + chunk.len()]);
                release_mapped(&shard.mmap, from, from + chunk.len());
            }
        }
        Ok(tensor)
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}
