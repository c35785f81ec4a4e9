//! The row journal of a repair study: rows written as they finish, so a long study shows progress and resumes.

use std::path::PathBuf;

use repair::{Method, RepairCase};
use serde::{Deserialize, Serialize};

use super::summary::RepairRow;
use super::RepairStudySpec;
use crate::error::{ExperimentError, Result};

/// The rows of a study as they finish, one JSON line each, so that a long study shows its progress and an
/// interrupted one resumes where it stopped: rows already in the file are not repaired again. The first line
/// holds the settings the rows depend on, so rows of a study with other settings are never taken.
pub struct RowJournal {
    path: PathBuf,
    done: Vec<RepairRow>,
    /// The file, open for appending rows.
    file: std::fs::File,
}

/// The first line of a journal.
#[derive(Serialize, Deserialize)]
struct JournalHeader {
    settings: serde_json::Value,
}

impl RowJournal {
    /// Opens the journal of `study` at `path`, reading the rows it already holds (a missing file holds none; a
    /// last line cut off by an interruption is dropped). A journal written with other settings (cases, repair
    /// configuration, side-effect prompts, benchmarks; the methods may differ) is an error.
    pub fn open(path: &std::path::Path, study: &RepairStudySpec) -> Result<Self> {
        let settings = Self::settings_of(study)?;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(models::files::at(path)(e).into()),
        };
        let lines: Vec<&str> = text.lines().collect();
        let corrupt = |number: usize, e: serde_json::Error| {
            ExperimentError::Data(format!("{} line {}: {e}", path.display(), number + 1))
        };
        let mut done = Vec::new();
        if let Some((header, rows)) = lines.split_first() {
            match serde_json::from_str::<JournalHeader>(header) {
                Ok(header) if header.settings == settings => {}
                Ok(_) => {
                    return Err(ExperimentError::Data(format!(
                        "{} holds the repairs of a study with other settings; remove it or run into another folder",
                        path.display()
                    )))
                }
                Err(_) if rows.is_empty() => {}
                Err(e) => return Err(corrupt(0, e)),
            }
            for (index, line) in rows.iter().enumerate() {
                match serde_json::from_str::<RepairRow>(line) {
                    Ok(row) => done.push(row),
                    Err(_) if index + 1 == rows.len() => {}
                    Err(e) => return Err(corrupt(index + 1, e)),
                }
            }
        }
        Self::rewrite(path, &settings, &done)?;
        let file = std::fs::OpenOptions::new().append(true).open(path).map_err(models::files::at(path))?;
        Ok(RowJournal { path: path.to_path_buf(), done, file })
    }

    /// What a row depends on: the study without its list of methods and without the repairs in a row.
    fn settings_of(study: &RepairStudySpec) -> Result<serde_json::Value> {
        let rows_depend_on = RepairStudySpec { methods: Vec::new(), sequential: false, ..study.clone() };
        Ok(serde_json::to_value(rows_depend_on)?)
    }

    /// The row of `case` repaired by `method`, when the journal has it.
    pub fn find(&self, case: &RepairCase, method: Method) -> Option<&RepairRow> {
        self.done.iter().find(|row| row.family == case.family && row.case == case.id && row.method == method)
    }

    /// Adds a finished row.
    pub fn record(&mut self, row: &RepairRow) -> Result<()> {
        use std::io::Write;
        let line = json_line(row)?;
        let file = &mut self.file;
        file.write_all(line.as_bytes()).and_then(|()| file.sync_data()).map_err(models::files::at(&self.path))?;
        self.done.push(row.clone());
        Ok(())
    }

    /// Writes the settings and the rows (dropping a cut-off line) atomically.
    fn rewrite(path: &std::path::Path, settings: &serde_json::Value, rows: &[RepairRow]) -> Result<()> {
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

    #[test]
    fn a_journal_keeps_finished_rows_across_an_interruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let (first, second) = (case("a"), case("b"));
        let study = RepairStudySpec::default();
        let mut journal = RowJournal::open(&path, &study).unwrap();
        assert!(journal.find(&first, Method::Mint).is_none());
        journal.record(&row(&first, Method::Mint, 1.5)).unwrap();
        journal.record(&row(&second, Method::RankOne, 2.5)).unwrap();
        // An interruption in the middle of a write leaves a cut-off last line.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"family\":\"api\",\"ca");
        std::fs::write(&path, text).unwrap();

        let only_mint = RepairStudySpec { methods: vec![Method::Mint], ..study.clone() };
        let reopened = RowJournal::open(&path, &only_mint).unwrap();
        assert_eq!(reopened.find(&first, Method::Mint).map(|r| r.metrics.seconds), Some(1.5));
        assert_eq!(reopened.find(&second, Method::RankOne).map(|r| r.metrics.seconds), Some(2.5));
        assert!(reopened.find(&first, Method::RankOne).is_none());
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, 3, "the settings and two rows; the cut-off line is dropped");

        let other = RepairStudySpec { line_context: study.line_context + 1, ..study };
        let error = RowJournal::open(&path, &other).err().expect("rows of other settings must not be taken");
        assert!(error.to_string().contains("other settings"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), lines, "a refused journal is kept");
    }

    #[test]
    fn a_corrupt_row_before_the_last_is_an_error_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        let study = RepairStudySpec::default();
        drop(RowJournal::open(&path, &study).unwrap());
        let header = std::fs::read_to_string(&path).unwrap();
        let good = serde_json::to_string(&row(&case("a"), Method::Mint, 1.0)).unwrap();
        std::fs::write(&path, format!("{header}not json\n{good}\n")).unwrap();
        let error = RowJournal::open(&path, &study).err().expect("a corrupt journal must not load").to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
