//! `workbench models`: the models there are to load, offline: the catalogue, the Hugging Face cache, and GGUF files
//! under given folders.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use models::catalogue::{data_dir, CATALOGUE};
use models::gguf::GgufFile;
use models::hf_cache::{cached_models, hub_cache_dir};
use serde::Serialize;

/// `workbench models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Also list the GGUF files under this folder (repeatable).
    #[arg(long = "gguf-dir")]
    gguf_dirs: Vec<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A GGUF file found under a folder.
#[derive(Serialize)]
struct GgufEntry {
    path: PathBuf,
    architecture: Option<String>,
    bytes: u64,
    problem: Option<String>,
}

/// Lists what can be loaded (`--model` takes a catalogue name, an `org/name` of the cache, or a path).
pub fn models(args: &ModelsArgs) -> Result<()> {
    let catalogue: Vec<serde_json::Value> = CATALOGUE
        .iter()
        .map(|e| {
            let path = data_dir().join(e.file);
            serde_json::json!({"name": e.name, "path": path, "installed": path.exists(), "origin": e.origin})
        })
        .collect();
    let cache = hub_cache_dir();
    let cached = cached_models(&cache);
    let gguf = gguf_files(&args.gguf_dirs);
    if args.json {
        let value = serde_json::json!({"catalogue": catalogue, "hf_cache": cache, "cached": cached, "gguf": gguf});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("catalogue:");
    for entry in &catalogue {
        let state = if entry["installed"] == true { "installed" } else { "missing: run ./x setup" };
        println!("  {:<40} {} ({state})", entry["name"].as_str().unwrap_or(""), entry["path"].as_str().unwrap_or(""));
    }
    println!("Hugging Face cache {}:", cache.display());
    for model in &cached {
        match &model.problem {
            None => println!(
                "  {:<40} {:<12} {:<9} {:>10.1} MiB",
                model.id,
                model.architecture.as_deref().unwrap_or("?"),
                model.dtype.as_deref().unwrap_or("?"),
                model.bytes as f64 / 1048576.0
            ),
            Some(problem) => println!("  {:<40} cannot be loaded: {problem}", model.id),
        }
    }
    if !args.gguf_dirs.is_empty() {
        println!("GGUF files:");
    }
    for entry in &gguf {
        match &entry.problem {
            None => println!(
                "  {:<40} {:<12} {:>10.1} MiB",
                entry.path.display(),
                entry.architecture.as_deref().unwrap_or("?"),
                entry.bytes as f64 / 1048576.0
            ),
            Some(problem) => println!("  {:<40} cannot be read: {problem}", entry.path.display()),
        }
    }
    Ok(())
}

/// The `.gguf` files directly under `dirs`, each with the architecture its header names.
fn gguf_files(dirs: &[PathBuf]) -> Vec<GgufEntry> {
    let mut paths: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "gguf"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            match GgufFile::open(&path) {
                Ok(file) => GgufEntry {
                    architecture: file.require_str("general.architecture").ok().map(str::to_string),
                    path,
                    bytes,
                    problem: None,
                },
                Err(e) => GgufEntry { path, architecture: None, bytes, problem: Some(e.to_string()) },
            }
        })
        .collect()
}
