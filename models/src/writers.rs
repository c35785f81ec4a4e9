//! Writing a loaded (possibly edited) model as a Hugging Face folder that transformers loads. Every file is
//! written atomically, and the folder appears only when complete.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;
use tch::{Kind, Tensor};

use crate::error::{ModelError, Result};
use crate::gguf::write_atomically;
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
