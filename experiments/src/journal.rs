//! The row journal of a long study: rows written as they finish, so a study shows progress and resumes.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// The rows of a study as they finish, one JSON line each, so that a long study shows its progress and an
/// interrupted one resumes where it stopped: rows already in the file are not computed again. The first line
/// holds the settings the rows depend on, so rows of a study with other settings are never taken.
pub struct RowJournal<R> {
    path: PathBuf,
    /// The settings the rows depend on (the first line).
    settings: serde_json::Value,
    /// Settings as written by this version: a setting added since, with a default that keeps the old behaviour,
    /// takes that default (none: not settings of this study).
    current: fn(&serde_json::Value) -> Option<serde_json::Value>,
    done: Vec<R>,
}

/// The value `measure` gives, measured once for a study with `settings`: kept in `path` (atomically) with the
/// settings and read back by a study with the same settings (a file written before a setting was added reads it at
/// its default), as [`RowJournal::once`] does for a study with a journal. Studies split into units keep what their
/// units share this way: shards that start together take turns on a lock beside the file (`.NAME.lock`), so the
/// first measures and the others read what it kept (on a filesystem without locks each measures, the same value).
pub fn measured_once<S: Serialize + DeserializeOwned, T: Serialize + DeserializeOwned>(
    path: &std::path::Path,
    settings: &S,
    measure: impl FnOnce() -> Result<T>,
) -> Result<T> {
    kept_or_measured(path, &serde_json::to_value(settings)?, as_written_now::<S>, measure)
}

/// An exclusive lock on `.NAME.lock` beside `path` (NAME its file name), held until dropped; none where the folder
/// cannot be made or the filesystem has no locks.
fn lock_beside(path: &std::path::Path) -> Option<std::fs::File> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).ok()?;
    let name = format!(".{}.lock", path.file_name()?.to_string_lossy());
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(name)).ok()?;
    file.lock().ok()?;
    Some(file)
}

/// The value kept in `path` when it was measured with `settings` (as `current` reads old settings), else the value
/// `measure` gives, kept there.
fn kept_or_measured<T: Serialize + DeserializeOwned>(
    path: &std::path::Path,
    settings: &serde_json::Value,
    current: fn(&serde_json::Value) -> Option<serde_json::Value>,
    measure: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let _turn = lock_beside(path);
    let kept = std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice::<Measured<T>>(&bytes).ok());
    if let Some(kept) = kept.filter(|kept| current(&kept.settings).as_ref() == Some(settings)) {
        return Ok(kept.value);
    }
    let value = measure()?;
    let measured = Measured { settings: settings.clone(), value };
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    crate::ops::write_file(
        dir,
        &path.file_name().unwrap_or_default().to_string_lossy(),
        &serde_json::to_vec_pretty(&measured)?,
    )?;
    Ok(measured.value)
}

/// Settings written by an older version as this version writes them: a setting added since takes its default
/// (none: not settings of type `S`).
fn as_written_now<S: Serialize + DeserializeOwned>(written: &serde_json::Value) -> Option<serde_json::Value> {
    serde_json::from_value::<S>(written.clone()).ok().and_then(|s| serde_json::to_value(s).ok())
}

/// The first line of a journal.
#[derive(Serialize, Deserialize)]
struct JournalHeader {
    settings: serde_json::Value,
}

/// A value measured once per study, in its own file beside the journal, with the settings it was measured under.
#[derive(Serialize, Deserialize)]
struct Measured<T> {
    settings: serde_json::Value,
    value: T,
}

impl<R: Serialize + DeserializeOwned + Clone> RowJournal<R> {
    /// Opens the journal at `path` of a study whose rows depend on `settings`, reading the rows it already holds
    /// (a missing file holds none; a last line cut off by an interruption is dropped). A journal written with
    /// other settings is an error; one written before a setting was added reads it as that setting's default.
    pub fn open<S: Serialize + DeserializeOwned>(path: &std::path::Path, settings: &S) -> Result<Self> {
        let settings = serde_json::to_value(settings)?;
        let current = as_written_now::<S>;
        let _turn = lock_beside(path);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(models::files::at(path)(e).into()),
        };
        let (written_with, done) = Self::parse(path, &text)?;
        if written_with.is_some_and(|written_with| current(&written_with).as_ref() != Some(&settings)) {
            return Err(ExperimentError::Data(format!(
                "{} holds the repairs of a study with other settings; remove it or run into another folder",
                path.display()
            )));
        }
        Self::rewrite(path, &settings, &done)?;
        Ok(RowJournal { path: path.to_path_buf(), settings, current, done })
    }

    /// The rows of the journal at `path`, whatever its settings, without changing it (to show a study's progress
    /// or results).
    pub fn read_rows(path: &std::path::Path) -> Result<Vec<R>> {
        let text = std::fs::read_to_string(path).map_err(models::files::at(path))?;
        Ok(Self::parse(path, &text)?.1)
    }

    /// The settings a journal's text was written with (none for an empty text) and its rows; a last line cut off
    /// by an interruption is dropped, a corrupt line before it is an error naming it.
    fn parse(path: &std::path::Path, text: &str) -> Result<(Option<serde_json::Value>, Vec<R>)> {
        let lines: Vec<&str> = text.lines().collect();
        let corrupt = |number: usize, e: serde_json::Error| {
            ExperimentError::Data(format!("{} line {}: {e}", path.display(), number + 1))
        };
        let Some((header, rows)) = lines.split_first() else { return Ok((None, Vec::new())) };
        let settings = match serde_json::from_str::<JournalHeader>(header) {
            Ok(header) => Some(header.settings),
            Err(_) if rows.is_empty() => None,
            Err(e) => return Err(corrupt(0, e)),
        };
        let mut done = Vec::new();
        for (index, line) in rows.iter().enumerate() {
            match serde_json::from_str::<R>(line) {
                Ok(row) => done.push(row),
                Err(_) if index + 1 == rows.len() => {}
                Err(e) => return Err(corrupt(index + 1, e)),
            }
        }
        Ok((settings, done))
    }

    /// The first finished row that `wanted` accepts.
    pub fn find(&self, wanted: impl Fn(&R) -> bool) -> Option<&R> {
        self.done.iter().find(|row| wanted(row))
    }

    /// The value `measure` gives, measured once per study: kept in `name`.json beside the journal (atomically) and
    /// read from there by a resumed study with the same settings, so that what a study measures once (the unpatched
    /// model's benchmarks, minutes of HumanEval) is not measured again on every resume. A file written with other
    /// settings, or one that does not parse, is measured again and replaced.
    pub fn once<T: Serialize + DeserializeOwned>(&self, name: &str, measure: impl FnOnce() -> Result<T>) -> Result<T> {
        kept_or_measured(&self.path.with_file_name(format!("{name}.json")), &self.settings, self.current, measure)
    }

    /// Adds a finished row. Units of a study that run at once share its journal: each row is appended under the
    /// journal's lock to the file as it is then (another unit's open may have rewritten it).
    pub fn record(&mut self, row: &R) -> Result<()> {
        use std::io::Write;
        let line = json_line(row)?;
        let _turn = lock_beside(&self.path);
        let mut file =
            std::fs::OpenOptions::new().append(true).open(&self.path).map_err(models::files::at(&self.path))?;
        file.write_all(line.as_bytes()).and_then(|()| file.sync_data()).map_err(models::files::at(&self.path))?;
        self.done.push(row.clone());
        Ok(())
    }

    /// Writes the settings and the rows (dropping a cut-off line) atomically.
    fn rewrite(path: &std::path::Path, settings: &serde_json::Value, rows: &[R]) -> Result<()> {
        let mut text = json_line(&JournalHeader { settings: settings.clone() })?;
        for row in rows {
            text.push_str(&json_line(row)?);
        }
        models::files::write_atomically(path, text.as_bytes())?;
        Ok(())
    }
}

/// One line of a JSONL file.
fn json_line(value: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_string(value)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repair_study::summary::tests::{case, row};
    use crate::repair_study::summary::RepairRow;
    use crate::repair_study::{journal_settings, RepairStudySpec};
    use repair::{Method, RepairCase};

    fn open(path: &std::path::Path, study: &RepairStudySpec) -> Result<RowJournal<RepairRow>> {
        RowJournal::open(path, &journal_settings(study))
    }

    fn find<'a>(journal: &'a RowJournal<RepairRow>, case: &RepairCase, method: Method) -> Option<&'a RepairRow> {
        journal.find(|r| r.case == case.id && r.method == method)
    }

    #[test]
    fn shards_that_start_together_measure_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("units").join("baseline.json");
        let measured = std::sync::atomic::AtomicUsize::new(0);
        let measure = || {
            measured.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(0.1f64 + 0.2)
        };
        let values: Vec<f64> = std::thread::scope(|scope| {
            let shards: Vec<_> =
                (0..3).map(|_| scope.spawn(|| measured_once(&path, &"settings".to_string(), measure))).collect();
            shards.into_iter().map(|s| s.join().unwrap().unwrap()).collect()
        });
        assert_eq!(measured.into_inner(), 1, "each shard measured");
        assert_eq!(values, [0.1 + 0.2; 3], "the value kept is read back exactly");
        assert_eq!(measured_once(&path, &"other settings".to_string(), || Ok(7.0)).unwrap(), 7.0);
    }

    #[test]
    fn units_sharing_a_journal_keep_each_others_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let (first, second) = (case("a"), case("b"));
        let study = RepairStudySpec::default();
        let mut one = open(&path, &study).unwrap();
        one.record(&row(&first, Method::Mint, 1.0)).unwrap();
        // A second unit opens the journal (rewriting it) while the first goes on.
        let mut other = open(&path, &study).unwrap();
        one.record(&row(&second, Method::Mint, 2.0)).unwrap();
        other.record(&row(&second, Method::RankOne, 3.0)).unwrap();
        let rows = RowJournal::<RepairRow>::read_rows(&path).unwrap();
        let kept: Vec<(String, Method)> = rows.iter().map(|r| (r.case.clone(), r.method)).collect();
        let expected = [("a", Method::Mint), ("b", Method::Mint), ("b", Method::RankOne)];
        assert_eq!(kept, expected.map(|(c, m)| (c.to_string(), m)));
    }

    #[test]
    fn a_journal_keeps_finished_rows_across_an_interruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let (first, second) = (case("a"), case("b"));
        let study = RepairStudySpec::default();
        let mut journal = open(&path, &study).unwrap();
        assert!(find(&journal, &first, Method::Mint).is_none());
        journal.record(&row(&first, Method::Mint, 1.5)).unwrap();
        journal.record(&row(&second, Method::RankOne, 2.5)).unwrap();
        // An interruption in the middle of a write leaves a cut-off last line.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"family\":\"api\",\"ca");
        std::fs::write(&path, text).unwrap();

        let only_mint = RepairStudySpec { methods: vec![Method::Mint], ..study.clone() };
        let reopened = open(&path, &only_mint).unwrap();
        assert_eq!(find(&reopened, &first, Method::Mint).map(|r| r.metrics.seconds), Some(1.5));
        assert_eq!(find(&reopened, &second, Method::RankOne).map(|r| r.metrics.seconds), Some(2.5));
        assert!(find(&reopened, &first, Method::RankOne).is_none());
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 3, "the settings and two rows; the cut-off line is dropped");

        let other = RepairStudySpec { line_context: study.line_context + 1, ..study };
        let error = open(&path, &other).err().expect("rows of other settings must not be taken");
        assert!(error.to_string().contains("other settings"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), lines, "a refused journal is kept");
    }

    /// A journal (and a value measured once) written before a setting existed reads as that setting's default: its
    /// rows are taken by a study at the default and refused by one that sets it otherwise.
    #[test]
    fn a_journal_from_before_a_setting_was_added_reads_it_as_its_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let study = RepairStudySpec::default();
        let mut journal = open(&path, &study).unwrap();
        journal.once("baseline", || Ok(3.0)).unwrap();
        journal.record(&row(&case("a"), Method::Mint, 1.5)).unwrap();
        drop(journal);
        let without = |text: String| {
            let before = text.len();
            let text = text.replacen(&format!("\"line_context\":{},", study.line_context), "", 1);
            assert!(text.len() < before, "the setting to remove is not in {text}");
            text
        };
        std::fs::write(&path, without(std::fs::read_to_string(&path).unwrap())).unwrap();
        let baseline = dir.path().join("baseline.json");
        let compact: serde_json::Value = serde_json::from_slice(&std::fs::read(&baseline).unwrap()).unwrap();
        std::fs::write(&baseline, without(compact.to_string())).unwrap();

        let other = RepairStudySpec { line_context: study.line_context + 1, ..study.clone() };
        assert!(open(&path, &other).is_err(), "the old journal was taken for a non-default setting");
        let reopened = open(&path, &study).unwrap();
        assert_eq!(find(&reopened, &case("a"), Method::Mint).map(|r| r.metrics.seconds), Some(1.5));
        assert_eq!(reopened.once("baseline", || Ok(99.0)).unwrap(), 3.0, "the value kept was measured again");
    }

    #[test]
    fn a_value_measured_once_is_read_back_by_a_resumed_study_with_the_same_settings_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let study = RepairStudySpec::default();
        let measured = std::cell::Cell::new(0);
        let measure = |value: f64| {
            measured.set(measured.get() + 1);
            Ok(value)
        };
        assert_eq!(open(&path, &study).unwrap().once("baseline", || measure(11.5)).unwrap(), 11.5);
        let resumed = open(&path, &study).unwrap();
        assert_eq!(resumed.once("baseline", || measure(99.0)).unwrap(), 11.5, "a resume reads the value kept");
        assert_eq!(measured.get(), 1);

        let other = RepairStudySpec { line_context: study.line_context + 1, ..study };
        let elsewhere = dir.path().join("other").join("rows.jsonl");
        std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
        std::fs::copy(dir.path().join("baseline.json"), elsewhere.with_file_name("baseline.json")).unwrap();
        let fresh = open(&elsewhere, &other).unwrap();
        assert_eq!(fresh.once("baseline", || measure(7.0)).unwrap(), 7.0, "other settings measure again");
        std::fs::write(dir.path().join("baseline.json"), "{\"settings\": 1").unwrap();
        assert_eq!(resumed.once("baseline", || measure(8.0)).unwrap(), 8.0, "a cut-off file is measured again");
        assert_eq!(measured.get(), 3);
    }

    #[test]
    fn a_corrupt_row_before_the_last_is_an_error_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let study = RepairStudySpec::default();
        drop(open(&path, &study).unwrap());
        let header = std::fs::read_to_string(&path).unwrap();
        let good = serde_json::to_string(&row(&case("a"), Method::Mint, 1.0)).unwrap();
        std::fs::write(&path, format!("{header}not json\n{good}\n")).unwrap();
        let error = open(&path, &study).err().expect("a corrupt journal must not load").to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
