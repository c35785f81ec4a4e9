//! Activations out, for a researcher's other tools: `run_with_cache` over texts, every chosen hook point written to
//! one safetensors file as a tensor named by its TransformerLens name (`blocks.3.mlp.hook_post`, `[tokens, width]`,
//! the texts' tokens one after another), with the token ids (`tokens`), the text each token belongs to
//! (`text_index`) and the texts themselves (the header's `__metadata__`, as a JSON list). The file is written as the
//! texts are read, one text's activations in memory at a time, and appears only when complete.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use tch::Kind;

use crate::error::{ModelError, Result};
use crate::hooks::HookPoint;
use crate::model::Model;
use crate::progress::Progress;

/// The hook points of a model with `n_layers` blocks whose names match any of `patterns` (globs as TransformerLens's
/// names filter takes them: `blocks.*.mlp.hook_post`, `blocks.3.hook_resid_post`), in forward order. Attention
/// patterns are left out (their shape changes with each text); a pattern that matches nothing else is an error.
pub fn matching_points(patterns: &[String], n_layers: usize) -> Result<Vec<HookPoint>> {
    let all = HookPoint::all(n_layers);
    let mut chosen = vec![false; all.len()];
    for text in patterns {
        let pattern = glob::Pattern::new(text)
            .map_err(|e| ModelError::InvalidInput(format!("hook-point pattern {text:?}: {e}")))?;
        let mut matched = false;
        for (point, chosen) in all.iter().zip(&mut chosen) {
            if !matches!(point, HookPoint::AttnPattern(_)) && pattern.matches(&point.to_string()) {
                (*chosen, matched) = (true, true);
            }
        }
        if !matched {
            return Err(ModelError::InvalidInput(format!(
                "{text:?} matches no hook point of this {n_layers}-layer model (names look like blocks.0.hook_resid_post, \
                 blocks.0.mlp.hook_post, ln_final.hook_normalized; attention patterns are not exported)"
            )));
        }
    }
    Ok(all.into_iter().zip(chosen).filter_map(|(point, chosen)| chosen.then_some(point)).collect())
}

/// What [`write_activations`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActivationsFile {
    /// Tokens, over every text.
    pub tokens: usize,
    /// Texts read (those with at least one token).
    pub texts: usize,
    /// The hook points written, by name, with their widths.
    pub points: Vec<(String, i64)>,
    /// Size of the file.
    pub bytes: u64,
}

/// Runs `model` over each of `texts` (its first `max_tokens` tokens) recording `points`, and writes the activations
/// to the safetensors file `path` (f16 when `half`, else f32), atomically.
pub fn write_activations(
    model: &Model,
    texts: &[String],
    points: &[HookPoint],
    max_tokens: usize,
    half: bool,
    path: &Path,
    progress: &dyn Progress,
) -> Result<ActivationsFile> {
    let encoded: Vec<(usize, Vec<u32>)> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| Ok((i, model.encode_prefix(text, max_tokens)?)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|(_, ids)| !ids.is_empty())
        .collect();
    let total: usize = encoded.iter().map(|(_, ids)| ids.len()).sum();
    if total == 0 || points.is_empty() {
        return Err(ModelError::InvalidInput("no tokens or no hook points to write".into()));
    }
    let wanted = points.to_vec();
    let record = |ids: &[u32]| {
        let wanted = wanted.clone();
        model.run_with_cache(ids, move |p| wanted.contains(&p)).map(|(_, cache)| cache)
    };
    let mut first = Some(record(&encoded[0].1)?);
    let widths: Vec<i64> = points
        .iter()
        .map(|&p| first.as_ref().and_then(|c| c.get(p)).and_then(|t| t.size().last().copied()).unwrap_or(0))
        .collect();
    let (element, dtype) = if half { (2u64, "F16") } else { (4u64, "F32") };
    let n = total as u64;
    let mut header = serde_json::Map::new();
    let used: Vec<&str> = encoded.iter().map(|(i, _)| texts[*i].as_str()).collect();
    header.insert(
        "__metadata__".into(),
        serde_json::json!({"texts": serde_json::Value::from(used).to_string(), "format": "workbench run_with_cache"}),
    );
    let mut offset = 0u64;
    let mut starts = Vec::with_capacity(points.len());
    for (point, &width) in points.iter().zip(&widths) {
        let size = n * width as u64 * element;
        let entry = serde_json::json!({"dtype": dtype, "shape": [n, width], "data_offsets": [offset, offset + size]});
        header.insert(point.to_string(), entry);
        starts.push(offset);
        offset += size;
    }
    let ids_start = offset;
    for name in ["tokens", "text_index"] {
        header.insert(
            name.into(),
            serde_json::json!({"dtype": "I64", "shape": [n], "data_offsets": [offset, offset + 8 * n]}),
        );
        offset += 8 * n;
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let data_start = 8 + header.len() as u64;

    progress.begin("recording activations", encoded.len() as u64);
    let mut failure = None;
    let written = crate::files::write_atomically_with(path, |file| {
        file.set_len(data_start + offset)?;
        file.write_all(&(header.len() as u64).to_le_bytes())?;
        file.write_all(&header)?;
        let mut row = 0u64;
        let (mut ids_bytes, mut index_bytes) = (Vec::new(), Vec::new());
        for (text, ids) in &encoded {
            let cache = match first.take() {
                Some(cache) => Ok(cache),
                None => record(ids),
            };
            let step = cache.and_then(|cache| {
                progress.check()?;
                for ((point, &width), &start) in points.iter().zip(&widths).zip(&starts) {
                    let tensor = cache
                        .get(*point)
                        .ok_or_else(|| ModelError::InvalidInput(format!("{point} was not recorded")))?;
                    let bytes = tensor_bytes(&tensor.reshape([-1, width]), half)?;
                    let at = data_start + start + row * width as u64 * element;
                    file.seek(SeekFrom::Start(at))
                        .and_then(|_| file.write_all(&bytes))
                        .map_err(|e| ModelError::io(path, e))?;
                }
                Ok(())
            });
            if let Err(e) = step {
                let message = e.to_string();
                failure = Some(e);
                return Err(std::io::Error::other(message));
            }
            for &id in ids {
                ids_bytes.extend_from_slice(&i64::from(id).to_le_bytes());
                index_bytes.extend_from_slice(&(*text as i64).to_le_bytes());
            }
            row += ids.len() as u64;
            progress.advance(1);
        }
        file.seek(SeekFrom::Start(data_start + ids_start))?;
        file.write_all(&ids_bytes)?;
        file.write_all(&index_bytes)
    });
    if let Some(e) = failure {
        return Err(e);
    }
    written?;
    Ok(ActivationsFile {
        tokens: total,
        texts: encoded.len(),
        points: points.iter().zip(&widths).map(|(p, &w)| (p.to_string(), w)).collect(),
        bytes: data_start + offset,
    })
}

/// The little-endian bytes of a 2-D tensor in f32, or f16 when `half`.
fn tensor_bytes(tensor: &tch::Tensor, half: bool) -> Result<Vec<u8>> {
    let values = Vec::<f32>::try_from(tensor.to_kind(Kind::Float).to_device(tch::Device::Cpu).flatten(0, -1))?;
    Ok(if half {
        values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect()
    } else {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    })
}
