//! Targets for the files a model is loaded from: GGUF (header, metadata, tensor table, dequantisers, and the
//! model and tokenizer its metadata describe), safetensors (a file and a sharded index), `config.json` of every
//! architecture, and `tokenizer.json`. Each returns whether the reader took the input whole.

use std::path::{Path, PathBuf};

use models::config::HfConfig;
use models::error::{ModelError, Result};
use models::files::FileBytes;
use models::gguf::{dequantize, GgmlType, GgufFile};
use models::safetensors_weights::{SafetensorsWeights, ShardIndex};
use models::tch::{Device, Kind, Tensor};
use models::weights::WeightSource;
use models::{Silent, Tokenizer};

/// Text every tokenizer a target builds encodes and decodes.
const SAMPLE_TEXT: &str = "def add(a, b):\n    return a + b  # ünïcödé\n";

fn parse_gguf(data: &[u8]) -> Result<GgufFile> {
    GgufFile::parse(PathBuf::from("fuzz.gguf"), FileBytes::Owned(data.to_vec()))
}

/// GGUF: header, metadata of every value type, tensor table, and each tensor's data dequantised.
pub fn gguf(data: &[u8]) -> bool {
    let Ok(file) = parse_gguf(data) else { return false };
    for key in file.metadata.iter().map(|(k, _)| k) {
        let _ = (file.require_u64(key), file.require_f64(key), file.require_str(key));
    }
    let mut whole = true;
    for info in &file.tensors {
        whole &= file.dequantize(&info.name).is_ok();
    }
    whole
}

/// The dequantiser of the block type the first byte names, over the rest of the input (and over a count that
/// does not match it).
pub fn dequant(data: &[u8]) -> bool {
    let Some((&kind, data)) = data.split_first() else { return false };
    let kind = GgmlType::from_id(u32::from(kind));
    let Some((values, bytes)) = kind.block_layout() else { return false };
    let count = data.len() as u64 / bytes * values;
    let _ = dequantize(kind, data, data.len().saturating_mul(3));
    dequantize(kind, data, count as usize).is_some()
}

/// A whole model from a GGUF file: the architecture its metadata names, built from its tensors, and the tokenizer
/// its `tokenizer.ggml.*` metadata describes, used once.
pub fn gguf_model(data: &[u8]) -> bool {
    let Ok(file) = parse_gguf(data) else { return false };
    let arch = models::load::from_gguf(&file, Device::Cpu, Kind::Float, &Silent);
    let tokenizer = Tokenizer::from_gguf(&file).map(|tokenizer| use_tokenizer(&tokenizer));
    arch.is_ok() && tokenizer.is_ok_and(|used| used)
}

/// A safetensors file: its header, then every tensor read with the shape the header gives.
pub fn safetensors(data: &[u8]) -> bool {
    let path = PathBuf::from("model.safetensors");
    let Ok(mut weights) = SafetensorsWeights::parse(path, FileBytes::Owned(data.to_vec())) else { return false };
    let names: Vec<String> = weights.names().map(str::to_string).collect();
    let _ = weights.element_counts().count();
    let mut whole = true;
    for name in names {
        whole &= weights.shape(&name).is_some_and(|shape| weights.tensor(&name, &shape).is_ok());
    }
    whole
}

/// `model.safetensors.index.json`.
pub fn safetensors_index(data: &[u8]) -> bool {
    std::str::from_utf8(data)
        .is_ok_and(|text| ShardIndex::parse(text, Path::new("model.safetensors.index.json")).is_ok())
}

/// `config.json`: the architecture its `model_type` names, built from weights of the shapes the config asks for
/// (zeros, within the budget a checkpoint file of a few megabytes could hold).
pub fn config_json(data: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return false };
    let mut weights = ZeroWeights { elements_left: ZERO_WEIGHT_ELEMENTS };
    models::load::from_hf(&HfConfig::new(json), &mut weights, Device::Cpu, Kind::Float).is_ok()
}

/// `tokenizer.json` (as its bytes come, no `tokenizer_config.json`), used once.
pub fn tokenizer_json(data: &[u8]) -> bool {
    let path = Path::new("tokenizer.json");
    let null = serde_json::Value::Null;
    Tokenizer::from_hf_json(data, path, &null, &null, None).is_ok_and(|tokenizer| use_tokenizer(&tokenizer))
}

/// Encodes and decodes [`SAMPLE_TEXT`] and reads each token's text, as loading a model does with a tokenizer;
/// whether encoding and decoding succeeded.
fn use_tokenizer(tokenizer: &Tokenizer) -> bool {
    let _ = tokenizer.vocab_size();
    let Ok(ids) = tokenizer.encode(SAMPLE_TEXT, true) else { return false };
    for &id in &ids {
        let _ = tokenizer.token_text(id);
    }
    tokenizer.decode(&ids, false).is_ok()
}

/// Elements of zero weights [`config_json`] hands out in all: a checkpoint of a few megabytes.
const ZERO_WEIGHT_ELEMENTS: i64 = 1 << 20;

/// Weights of whatever shape is asked for, zeros, until [`ZERO_WEIGHT_ELEMENTS`] are spent: a config's
/// architecture meets weights that fit it, as from a checkpoint that matches its config.
struct ZeroWeights {
    elements_left: i64,
}

impl WeightSource for ZeroWeights {
    fn tensor(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let count = shape.iter().try_fold(1i64, |acc, &d| if d < 0 { None } else { acc.checked_mul(d) });
        match count {
            Some(count) if count <= self.elements_left => {
                self.elements_left -= count;
                Ok(Tensor::f_zeros(shape, (Kind::Float, Device::Cpu))?)
            }
            _ => Err(ModelError::MissingTensor(format!("{name} {shape:?} (beyond the fuzzing budget)"))),
        }
    }

    fn contains(&self, _name: &str) -> bool {
        true
    }
}
