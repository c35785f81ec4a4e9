//! Real Python code to probe on: a fixed list of CPython standard-library files.

use std::path::PathBuf;

use crate::error::{ProbeError, Result};

/// The first `count` top-level `.py` files of the CPython standard library in the data directory, sorted by
/// name, between 2 and 40 KB: a fixed list of real code.
pub fn stdlib_files(count: usize) -> Result<Vec<PathBuf>> {
    let dir = models::catalogue::data_dir().join("cpython-stdlib");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| ProbeError::InvalidInput(format!("{}: {e} (run ./x setup)", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "py")
                && std::fs::metadata(p).is_ok_and(|m| (2_000..40_000).contains(&m.len()))
        })
        .collect();
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

/// The texts of [`stdlib_files`].
pub fn stdlib_documents(count: usize) -> Result<Vec<String>> {
    stdlib_files(count)?.iter().map(|p| Ok(std::fs::read_to_string(p).map_err(models::files::at(p))?)).collect()
}
