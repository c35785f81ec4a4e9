//! Models by name from the Hugging Face cache, offline: `Qwen/Qwen2.5-Coder-1.5B` (or `org/name@revision`) is
//! `models--Qwen--Qwen2.5-Coder-1.5B/snapshots/<commit>/` under the hub cache, the commit read from `refs/main` (or
//! the named ref), as `huggingface_hub` lays it out. Nothing is downloaded: a model that is not there, or not all
//! there (no `config.json`, a shard of its index missing, a broken link into `blobs/`), is an error naming what is
//! missing.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// The hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
/// `~/.cache/huggingface/hub` (as `huggingface_hub` finds it).
pub fn hub_cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("HF_HUB_CACHE") {
        return dir;
    }
    let home = var("HF_HOME").unwrap_or_else(|| {
        let cache = var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|home| home.join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("huggingface")
    });
    home.join("hub")
}

/// Whether `spec` reads as a repository id (`org/name`, optionally `@revision`) rather than a path.
pub fn is_repo_id(spec: &str) -> bool {
    let id = spec.split('@').next().unwrap_or(spec);
    let parts: Vec<&str> = id.split('/').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        && !parts.iter().any(|p| *p == "." || *p == "..")
}

/// The snapshot folder of `spec` (`org/name` or `org/name@revision`; the revision a ref such as `main` or a
/// 40-digit commit) in the hub cache `cache`, checked complete.
pub fn resolve_in(cache: &Path, spec: &str) -> Result<PathBuf> {
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let missing = |what: String| ModelError::NotInCache { spec: spec.to_string(), what };
    if !repo.is_dir() {
        return Err(missing(format!("{} (the hub cache holds no such model)", repo.display())));
    }
    let commit = if revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()) {
        revision.to_string()
    } else {
        let reference = repo.join("refs").join(revision);
        let text = std::fs::read_to_string(&reference).map_err(|_| {
            missing(format!(
                "{} (the revision {revision:?}; snapshots there: {})",
                reference.display(),
                snapshots(&repo)
            ))
        })?;
        text.trim().to_string()
    };
    let snapshot = repo.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return Err(missing(format!("{} (snapshots there: {})", snapshot.display(), snapshots(&repo))));
    }
    for file in needed_files(&snapshot)? {
        // A link into blobs/ whose blob is gone (an interrupted download) does not count.
        if !snapshot.join(&file).is_file() {
            return Err(missing(snapshot.join(file).display().to_string()));
        }
    }
    Ok(snapshot)
}

/// A model of the hub cache, as `workbench models` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CachedModel {
    /// Repository id (`org/name`).
    pub id: String,
    /// The snapshot `refs/main` names, when it is complete.
    pub folder: Option<PathBuf>,
    /// `model_type` of its `config.json`.
    pub architecture: Option<String>,
    /// `torch_dtype` (or `dtype`) of its `config.json`.
    pub dtype: Option<String>,
    /// Bytes of its safetensors files.
    pub bytes: u64,
    /// Why it cannot be loaded, when it cannot.
    pub problem: Option<String>,
}

/// Every model in the hub cache `cache`, by id, each checked as [`resolve_in`] checks it (an empty list when there
/// is no cache).
pub fn cached_models(cache: &Path) -> Vec<CachedModel> {
    let mut ids: Vec<String> = std::fs::read_dir(cache)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("models--").map(|n| n.replacen("--", "/", 1)))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids.into_iter()
        .map(|id| match resolve_in(cache, &id) {
            Ok(folder) => {
                let config: serde_json::Value = std::fs::read_to_string(folder.join("config.json"))
                    .ok()
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or_default();
                let text = |key: &str| config[key].as_str().map(str::to_string);
                let bytes = std::fs::read_dir(&folder)
                    .map(|entries| {
                        entries
                            .filter_map(|e| e.ok())
                            .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
                            .filter_map(|e| std::fs::metadata(e.path()).ok())
                            .map(|m| m.len())
                            .sum()
                    })
                    .unwrap_or(0);
                CachedModel {
                    id,
                    architecture: text("model_type"),
                    dtype: text("torch_dtype").or_else(|| text("dtype")),
                    folder: Some(folder),
                    bytes,
                    problem: None,
                }
            }
            Err(e) => CachedModel {
                id,
                folder: None,
                architecture: None,
                dtype: None,
                bytes: 0,
                problem: Some(e.to_string()),
            },
        })
        .collect()
}

/// The files a Hugging Face folder needs: `config.json`, `tokenizer.json`, and `model.safetensors` or every shard its
/// index names.
fn needed_files(folder: &Path) -> Result<Vec<String>> {
    let mut files = vec!["config.json".to_string(), "tokenizer.json".to_string()];
    let index = folder.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::config("model.safetensors.index.json", e.to_string()))?;
        let mut shards: Vec<String> = value["weight_map"]
            .as_object()
            .map(|map| map.values().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        shards.sort();
        shards.dedup();
        files.extend(shards);
    } else {
        files.push("model.safetensors".into());
    }
    Ok(files)
}

/// The snapshot folders of a repository folder, for messages.
fn snapshots(repo: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(repo.join("snapshots"))
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_ids_are_told_from_paths() {
        for id in ["Qwen/Qwen2.5-Coder-1.5B", "bigcode/starcoder2-3b@main", "org/name.v2@0123abc"] {
            assert!(is_repo_id(id), "{id}");
        }
        for path in ["model.gguf", "./models/x", "/abs/path", "a/b/c", "../x", "org/", "with space/x"] {
            assert!(!is_repo_id(path), "{path}");
        }
    }

    #[test]
    fn a_model_missing_from_the_cache_is_named_with_what_is_missing() {
        let cache = tempfile::tempdir().unwrap();
        let error = resolve_in(cache.path(), "org/absent").unwrap_err().to_string();
        assert!(error.contains("models--org--absent") && error.contains("no such model"), "{error}");
        let repo = cache.path().join("models--org--half");
        std::fs::create_dir_all(repo.join("snapshots/abc")).unwrap();
        let error = resolve_in(cache.path(), "org/half").unwrap_err().to_string();
        assert!(error.contains("refs/main") && error.contains("snapshots there: abc"), "{error}");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc").unwrap();
        std::fs::write(repo.join("snapshots/abc/config.json"), "{}").unwrap();
        let error = resolve_in(cache.path(), "org/half").unwrap_err().to_string();
        assert!(error.contains("tokenizer.json"), "{error}");
    }
}
