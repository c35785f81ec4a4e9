//! File handling shared by every crate of the workbench: atomic replacement, so that readers never see a
//! half-written file, the error of a file or folder that could not be read or written, and a file's bytes for
//! parsing (mapped from disk or held in memory), whose mapped pages are given back once they are read.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// A file or folder that could not be read or written, and what the system said. The other crates' error
/// types take it in one variant (`#[from]`).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file or folder.
    pub path: PathBuf,
    /// What the system said.
    pub source: std::io::Error,
}

/// The [`FileError`] of `path`, for `map_err`: `std::fs::read(&p).map_err(files::at(&p))?`.
pub fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so readers never
/// see a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// [`write_atomically`] for a file written piece by piece: `write` fills the temporary file (seeking as it likes),
/// which replaces `path` only when it has succeeded.
pub fn write_atomically_with(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp).and_then(|mut f| {
        write(&mut f)?;
        f.sync_all()
    });
    if let Err(e) = result.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ModelError::io(path, e));
    }
    Ok(())
}

/// The bytes of a file a reader parses: memory-mapped from disk, or held in memory (bytes that did not come from a
/// file, such as a fuzzer's inputs). Readers parse both alike and bounds-check every offset against [`len`].
///
/// [`len`]: slice::len
pub enum FileBytes {
    /// A read-only map of a file on disk.
    Mapped(memmap2::Mmap),
    /// Bytes in memory.
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `path` read-only.
    pub fn map(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: the map is read-only and the file is not modified by this process while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        Ok(FileBytes::Mapped(map))
    }

    /// Drops the resident pages of bytes `start..end` of a file map (from the page holding `start`), once they
    /// have been copied out: a later read faults them in from the file again. Readers call it tensor by tensor, so
    /// that loading holds the weights plus one tensor in flight rather than the weights and the files besides.
    /// Bytes in memory are left as they are.
    pub(crate) fn release(&self, start: usize, end: usize) {
        let FileBytes::Mapped(map) = self else { return };
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
        let first_page = start - start % page;
        // SAFETY: the map is read-only, so MADV_DONTNEED drops clean file pages only and later reads see the
        // file's bytes again. The advice is a hint: when the kernel refuses it, memory is merely not freed.
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first_page, end - first_page) };
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Owned(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");
        let missing = dir.path().join("no/such/folder/b.json");
        assert!(matches!(write_atomically(&missing, b"x"), Err(ModelError::Io { .. })));
    }
}
