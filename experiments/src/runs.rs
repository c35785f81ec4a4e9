//! Output folders of runs: `runs/2026-11-30T21-14-07-<name>`, readable and sortable by time (UTC).

use std::path::{Path, PathBuf};

use crate::error::Result;

/// The folder name of a run named `name` that starts at `time`.
pub fn run_dir_name(time: time::OffsetDateTime, name: &str) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]-[minute]-[second]");
    let stamp =
        time.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_else(|_| time.unix_timestamp().to_string());
    format!("{stamp}-{name}")
}

/// Creates a new folder for a run named `name` under `runs`; a second run in the same second gets `-2`, `-3` ...
pub fn new_run_dir(runs: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(runs).map_err(models::files::at(runs))?;
    let base = run_dir_name(time::OffsetDateTime::now_utc(), name);
    let mut attempt = 1;
    loop {
        let dir = runs.join(if attempt == 1 { base.clone() } else { format!("{base}-{attempt}") });
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => attempt += 1,
            Err(e) => return Err(models::files::at(&dir)(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_readable_utc_times_and_sort_by_time() {
        let time = time::macros::datetime!(2026-11-30 21:14:07 +02:00);
        assert_eq!(run_dir_name(time, "default"), "2026-11-30T19-14-07-default");
        let later = time::macros::datetime!(2026-12-01 09:00:00 UTC);
        assert!(run_dir_name(time, "b") < run_dir_name(later, "a"));
    }

    #[test]
    fn a_second_run_in_the_same_second_gets_its_own_folder() {
        let runs = tempfile::tempdir().unwrap();
        let first = new_run_dir(runs.path(), "x").unwrap();
        let second = new_run_dir(runs.path(), "x").unwrap();
        assert_ne!(first, second);
        assert!(first.is_dir() && second.is_dir());
    }
}
