//! Real Python code to probe on: a fixed list of CPython standard-library files.

use std::path::PathBuf;

use crate::error::{ProbeError, Result};

/// Whether `path` is a `.py` file of 2 to 40 KB, the files the corpora read.
fn is_code_file(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|x| x == "py")
        && std::fs::metadata(path).is_ok_and(|m| (2_000..40_000).contains(&m.len()))
}

/// The first `count` top-level `.py` files of the CPython standard library in the data directory, sorted by
/// name, between 2 and 40 KB: a fixed list of real code.
pub fn stdlib_files(count: usize) -> Result<Vec<PathBuf>> {
    let dir = models::catalogue::data_dir().join("cpython-stdlib");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| ProbeError::InvalidInput(format!("{}: {e} (run ./x setup)", dir.display())))?;
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_code_file(p)).collect();
    files.sort();
    if files.len() < count {
        return Err(ProbeError::InvalidInput(format!(
            "{} has only {} files of 2 to 40 KB, {count} asked for",
            dir.display(),
            files.len()
        )));
    }
    files.truncate(count);
    Ok(files)
}

/// The first `count` `.py` files of 2 to 40 KB in the CPython standard library's packages (its subfolders, without
/// `test`, `site-packages` and `dist-packages`), sorted by path: about 500 files and 6.5 MB, disjoint from the
/// top-level files of [`stdlib_files`] (which the held-out evaluations read), for training sparse dictionaries.
pub fn stdlib_package_files(count: usize) -> Result<Vec<PathBuf>> {
    let root = models::catalogue::data_dir().join("cpython-stdlib");
    let mut files = Vec::new();
    let mut folders: Vec<PathBuf> = Vec::new();
    let top = std::fs::read_dir(&root)
        .map_err(|e| ProbeError::InvalidInput(format!("{}: {e} (run ./x setup)", root.display())))?;
    for entry in top.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        if entry.path().is_dir() && !matches!(name.to_str(), Some("test" | "site-packages" | "dist-packages")) {
            folders.push(entry.path());
        }
    }
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.is_dir() {
                folders.push(path);
            } else if is_code_file(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.len() < count {
        return Err(ProbeError::InvalidInput(format!(
            "the standard library's packages under {} have {} files of 2 to 40 KB, {count} asked for",
            root.display(),
            files.len()
        )));
    }
    files.truncate(count);
    Ok(files)
}

/// The texts of [`stdlib_files`].
pub fn stdlib_documents(count: usize) -> Result<Vec<String>> {
    stdlib_files(count)?.iter().map(|p| Ok(std::fs::read_to_string(p).map_err(models::files::at(p))?)).collect()
}
