//! Writing a loaded (possibly edited) model as a Hugging Face folder that transformers loads, or as a GGUF
//! file that llama.cpp, the Python `gguf` package and this runtime read. Every file is written atomically,
//! and a folder appears only when complete.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;
use tch::{Kind, Tensor};

use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::files::write_atomically;
use crate::gguf::{GgmlType, GgufWriter, MetaValue};
use crate::gguf_arch::{GgufArch, Heads};
use crate::model::Model;

/// A tensor's data ready for a safetensors file.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The bytes of a tensor in its own dtype, row-major.
fn encode(t: &Tensor) -> Result<Encoded> {
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let dtype = match t.kind() {
        Kind::Float => Dtype::F32,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        other => return Err(ModelError::InvalidInput(format!("cannot write a tensor of kind {other:?}"))),
    };
    let mut bytes = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
    t.f_copy_data_u8(&mut bytes, t.numel())?;
    Ok(Encoded { dtype, shape: t.size().iter().map(|&d| d as usize).collect(), bytes })
}

/// Writes `model` as a Hugging Face folder `dir` (`config.json`, `model.safetensors`, `tokenizer.json`,
/// `tokenizer_config.json`, `chat_template.jinja`), in the model's dtype. The folder is built beside `dir`
/// and renamed into place; an existing `dir` is never overwritten.
pub fn save_hf_folder(model: &Model, dir: &Path) -> Result<()> {
    model.gates.check_exportable()?;
    if dir.exists() {
        return Err(ModelError::InvalidInput(format!("{} already exists; choose a new folder", dir.display())));
    }
    let (mut config, tensors) = model.arch().hf_export()?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = parent.join(format!(".{name}.{}.partial", std::process::id()));
    let result = write_folder(model, &staging, &mut config, &tensors)
        .and_then(|_| std::fs::rename(&staging, dir).map_err(|e| ModelError::io(dir, e)));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn write_folder(model: &Model, dir: &Path, config: &mut serde_json::Value, tensors: &[(String, Tensor)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let tokenizer = &model.tokenizer;
    let dtype = match model.kind {
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        _ => "float32",
    };
    config["torch_dtype"] = json!(dtype);
    config["bos_token_id"] = json!(tokenizer.bos_id);
    config["eos_token_id"] = json!(tokenizer.eos_id);
    config["pad_token_id"] = json!(tokenizer.pad_id);
    write_atomically(&dir.join("config.json"), serde_json::to_string_pretty(config).unwrap_or_default().as_bytes())?;

    let encoded: Vec<(String, Encoded)> =
        tensors.iter().map(|(n, t)| Ok((n.clone(), encode(t)?))).collect::<Result<_>>()?;
    let views: Vec<(String, TensorView)> = encoded
        .iter()
        .map(|(n, e)| {
            TensorView::new(e.dtype, e.shape.clone(), &e.bytes)
                .map(|v| (n.clone(), v))
                .map_err(|e| ModelError::InvalidInput(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| ModelError::InvalidInput(e.to_string()))?;
    write_atomically(&dir.join("model.safetensors"), &bytes)?;

    let tokenizer_json = tokenizer.inner().to_string(false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    write_atomically(&dir.join("tokenizer.json"), tokenizer_json.as_bytes())?;
    let token = |id: Option<u32>| id.map(|i| tokenizer.token_text(i));
    let tokenizer_config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token(tokenizer.bos_id),
        "eos_token": token(tokenizer.eos_id),
        "pad_token": token(tokenizer.pad_id),
        "add_bos_token": tokenizer.add_bos,
        "model_max_length": model.shape().context_length,
    });
    write_atomically(
        &dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tokenizer_config).unwrap_or_default().as_bytes(),
    )?;
    if let Some(template) = &tokenizer.chat_template {
        write_atomically(&dir.join("chat_template.jinja"), template.as_bytes())?;
    }
    Ok(())
}

/// The GGUF tensor type for an export, from `f32`, `f16` or `q8_0`.
pub fn parse_export_type(name: &str) -> Result<GgmlType> {
    match name.to_ascii_lowercase().as_str() {
        "f32" => Ok(GgmlType::F32),
        "f16" => Ok(GgmlType::F16),
        "q8_0" => Ok(GgmlType::Q8_0),
        _ => Err(ModelError::InvalidInput(format!("GGUF export type {name:?}: use f32, f16 or q8_0"))),
    }
}

/// Writes `model` as a GGUF file with llama.cpp's architecture name, metadata and tensor names, its tensors stored
/// as llama.cpp's converter stores them (`gguf_arch`); matrices as `kind` (F32, F16 or Q8_0), norms and biases as F32.
/// Architectures llama.cpp has no layout for are refused with the reason.
pub fn save_gguf(model: &Model, path: &Path, kind: GgmlType) -> Result<()> {
    model.gates.check_exportable()?;
    if !matches!(kind, GgmlType::F32 | GgmlType::F16 | GgmlType::Q8_0) {
        return Err(ModelError::InvalidInput(format!("GGUF export supports F32, F16 and Q8_0, not {}", kind.name())));
    }
    let (config, tensors) = model.arch().hf_export()?;
    let config = HfConfig::new(config);
    let arch = GgufArch::for_export(&config)?;
    let shape = model.shape();
    let mut w = GgufWriter::new();
    w.set("general.architecture", MetaValue::String(arch.gguf.to_string()));
    let name = model.source.display_name.as_deref().unwrap_or("workbench export");
    w.set("general.name", MetaValue::String(name.to_string()));
    for (key, value) in arch.metadata(&config, shape)? {
        w.set(&key, value);
    }
    tokenizer_metadata(model, &mut w)?;
    let heads = Heads { query: shape.n_heads as i64, key_value: shape.n_kv_heads as i64 };
    for (hf, t) in &tensors {
        let name = arch
            .tensor_name(hf)
            .ok_or_else(|| ModelError::InvalidInput(format!("no GGUF name for tensor {hf} of {}", arch.gguf)))?;
        let t = arch.to_gguf(&name, t.to_device(tch::Device::Cpu).to_kind(Kind::Float), heads)?.contiguous();
        let values: Vec<f32> = Vec::try_from(t.flatten(0, -1))?;
        let stored = if t.dim() >= 2 { kind } else { GgmlType::F32 };
        w.add_f32(&name, &t.size(), &values, stored)?;
        if arch.writes_tied_output && name == "token_embd.weight" && shape.tied_embeddings {
            w.add_f32("output.weight", &t.size(), &values, stored)?;
        }
    }
    w.write(path)
}

/// The `tokenizer.ggml.*` metadata of a byte-level BPE tokenizer.
fn tokenizer_metadata(model: &Model, w: &mut GgufWriter) -> Result<()> {
    let tokenizer = &model.tokenizer;
    let json: serde_json::Value =
        serde_json::from_str(&tokenizer.inner().to_string(false).map_err(|e| ModelError::Tokenizer(e.to_string()))?)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    let unsupported = |what: &str| ModelError::Tokenizer(format!("cannot write this tokenizer to GGUF: {what}"));
    if json["model"]["type"] != "BPE" {
        return Err(unsupported("only byte-level BPE is supported"));
    }
    let vocab = json["model"]["vocab"].as_object().ok_or_else(|| unsupported("no vocabulary"))?;
    let mut tokens = vec![String::new(); vocab.len()];
    for (token, id) in vocab {
        let slot = id
            .as_u64()
            .and_then(|i| tokens.get_mut(i as usize))
            .ok_or_else(|| unsupported("vocabulary ids are not 0..n"))?;
        *slot = token.clone();
    }
    let mut types = vec![MetaValue::I32(1); tokens.len()];
    for added in json["added_tokens"].as_array().into_iter().flatten() {
        if let Some(slot) = added["id"].as_u64().and_then(|i| types.get_mut(i as usize)) {
            *slot = MetaValue::I32(if added["special"] == true { 3 } else { 4 });
        }
    }
    let merges: Vec<MetaValue> = json["model"]["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m {
            serde_json::Value::Array(pair) => {
                MetaValue::String(format!("{} {}", pair[0].as_str().unwrap_or(""), pair[1].as_str().unwrap_or("")))
            }
            other => MetaValue::String(other.as_str().unwrap_or("").to_string()),
        })
        .collect();
    w.set("tokenizer.ggml.model", MetaValue::String("gpt2".into()));
    w.set(
        "tokenizer.ggml.pre",
        MetaValue::String(
            gguf_pre_tokenizer(&json["pre_tokenizer"]).ok_or_else(|| unsupported("unknown pre-tokenizer"))?.into(),
        ),
    );
    w.set("tokenizer.ggml.tokens", MetaValue::Array(tokens.into_iter().map(MetaValue::String).collect()));
    w.set("tokenizer.ggml.token_type", MetaValue::Array(types));
    w.set("tokenizer.ggml.merges", MetaValue::Array(merges));
    for (name, id) in [("bos", tokenizer.bos_id), ("eos", tokenizer.eos_id), ("padding", tokenizer.pad_id)] {
        if let Some(id) = id {
            w.set(&format!("tokenizer.ggml.{name}_token_id"), MetaValue::U32(id));
        }
    }
    w.set("tokenizer.ggml.add_bos_token", MetaValue::Bool(tokenizer.add_bos));
    if let Some(template) = &tokenizer.chat_template {
        w.set("tokenizer.chat_template", MetaValue::String(template.clone()));
    }
    Ok(())
}

/// The llama.cpp name of a tokenizer.json pre-tokenizer this runtime also reads back.
fn gguf_pre_tokenizer(pre: &serde_json::Value) -> Option<&'static str> {
    let is_byte_level = |p: &serde_json::Value| p["type"] == "ByteLevel" && p["use_regex"] != false;
    if is_byte_level(pre) {
        return Some("gpt2");
    }
    match pre["pretokenizers"].as_array().map(Vec::as_slice) {
        Some([digits, byte_level])
            if digits["type"] == "Digits" && digits["individual_digits"] == true && is_byte_level(byte_level) =>
        {
            Some("smollm")
        }
        _ => None,
    }
}
