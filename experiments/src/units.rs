//! Work units: an operation made of independent pieces (HumanEval problems a batch at a time, held-out files ...)
//! runs unit by unit, and a step of a run journals each unit in its folder's `units/` as it finishes
//! (`unit-00012.json`, written atomically: a unit is done when its file exists). A shard is a share of the units
//! (every `of`-th from `index`); a rerun of a shard skips the units done, and two shards never write the same file.
//! The merge builds the operation's report from every unit once all are done. The local runner runs all units as
//! one shard, a cluster one shard per array task; the same units and the same merge either way, so both give the
//! same numbers. An operation run outside a run folder (the command line, the app) runs its units in memory.

use std::path::{Path, PathBuf};

use models::{Model, Progress};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ExperimentError, Result};
use crate::ops::{Context, Operation};

/// An operation made of independent units.
pub trait Split: Operation {
    /// What one unit finds.
    type Unit: Serialize + DeserializeOwned;
    /// How many units the operation has (known from its settings alone, so a cluster job can be sized without
    /// loading the model).
    fn units(&self) -> Result<usize>;
    /// Whether a unit's own progress (its stages and steps) is shown rather than a count of units: for operations
    /// of a few long units.
    fn shows_unit_progress(&self) -> bool {
        false
    }
    /// Runs unit `index` (below [`Split::units`]).
    fn run_unit(&self, index: usize, model: &Model, context: &Context) -> Result<Self::Unit>;
    /// The report from every unit's result, in unit order.
    fn merge(&self, units: Vec<Self::Unit>, model: &Model, context: &Context) -> Result<Self::Report>;
}

/// A share of a step's units: those whose index is `index` modulo `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard's number, below `of`.
    pub index: usize,
    /// How many shards share the units.
    pub of: usize,
}

impl Shard {
    /// Every unit in one shard.
    pub const WHOLE: Shard = Shard { index: 0, of: 1 };

    /// A shard, checked.
    pub fn new(index: usize, of: usize) -> Result<Shard> {
        if index >= of {
            return Err(ExperimentError::Spec(format!(
                "shard {index} of {of}: shards are numbered 0 to {}",
                of.max(1) - 1
            )));
        }
        Ok(Shard { index, of })
    }

    /// Whether unit `unit` is this shard's.
    pub fn holds(&self, unit: usize) -> bool {
        unit % self.of == self.index
    }
}

/// Runs `operation`'s units in memory, then merges them: what [`Operation::run`] does for an operation with units.
pub fn run_all<O: Split>(operation: &O, model: &Model, context: &Context) -> Result<O::Report> {
    let count = operation.units()?;
    let counted = UnitProgress::begin(operation, context, count);
    let unit_context = Context { progress: counted.for_units(), ..*context };
    let mut units = Vec::with_capacity(count);
    for index in 0..count {
        context.progress.check()?;
        units.push(operation.run_unit(index, model, &unit_context)?);
        counted.advance();
    }
    operation.merge(units, model, context)
}

/// Runs `operation`'s units not journalled yet in `context.out/units/` (one shard), then merges them: an operation run
/// outside a run folder (the command line's `--out DIR`) that resumes where it stopped. The folder keeps the settings
/// its units were run with (`settings.json`); a folder of other settings is an error.
pub fn run_journalled<O: Split + Serialize>(operation: &O, model: &Model, context: &Context) -> Result<O::Report> {
    let folder = context.out.join("units");
    let settings = serde_json::to_value(operation)?;
    let path = folder.join("settings.json");
    match std::fs::read(&path) {
        Ok(bytes) if serde_json::from_slice::<serde_json::Value>(&bytes).ok().as_ref() == Some(&settings) => {}
        Ok(_) => {
            return Err(ExperimentError::Data(format!(
                "{} holds the units of a run with other settings; remove it or run into another folder",
                folder.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::ops::write_json(&folder, "settings.json", &settings)?
        }
        Err(e) => return Err(models::files::at(&path)(e).into()),
    }
    run_shard(operation, model, context, &folder, Shard::WHOLE)?;
    merge(operation, model, context, &folder)
}

/// Runs the units of `shard` that `folder` (a step's `units/`) does not hold yet, writing each as it finishes;
/// returns how many it ran.
pub fn run_shard<O: Split>(
    operation: &O,
    model: &Model,
    context: &Context,
    folder: &Path,
    shard: Shard,
) -> Result<usize> {
    let count = operation.units()?;
    let todo: Vec<usize> = (0..count).filter(|&u| shard.holds(u) && !unit_path(folder, u).exists()).collect();
    let counted = UnitProgress::begin(operation, context, todo.len());
    let unit_context = Context { progress: counted.for_units(), ..*context };
    for &index in &todo {
        context.progress.check()?;
        let unit = operation.run_unit(index, model, &unit_context)?;
        crate::ops::write_json(folder, &unit_name(index), &unit)?;
        counted.advance();
    }
    Ok(todo.len())
}

/// The report from the units in `folder`; an error naming the units not done when any is missing.
pub fn merge<O: Split>(operation: &O, model: &Model, context: &Context, folder: &Path) -> Result<O::Report> {
    let count = operation.units()?;
    let missing: Vec<usize> = (0..count).filter(|&u| !unit_path(folder, u).exists()).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(|u| u.to_string()).collect();
        return Err(ExperimentError::Data(format!(
            "{} of {count} units are not done in {} (units {}{})",
            missing.len(),
            folder.display(),
            shown.join(", "),
            if missing.len() > shown.len() { ", ..." } else { "" }
        )));
    }
    let units = (0..count)
        .map(|u| {
            let path = unit_path(folder, u);
            let text = std::fs::read(&path).map_err(models::files::at(&path))?;
            serde_json::from_slice(&text).map_err(|e| ExperimentError::Data(format!("{}: {e}", path.display())))
        })
        .collect::<Result<Vec<O::Unit>>>()?;
    operation.merge(units, model, context)
}

/// Which of `count` units `folder` (a step's `units/`) holds, by index.
pub fn done_units(folder: &Path, count: usize) -> Vec<bool> {
    (0..count).map(|u| unit_path(folder, u).exists()).collect()
}

/// The file of unit `index`.
fn unit_name(index: usize) -> String {
    format!("unit-{index:05}.json")
}

/// Where unit `index` is journalled in `folder`.
fn unit_path(folder: &Path, index: usize) -> PathBuf {
    folder.join(unit_name(index))
}

/// What the caller's progress shows while units run: the units counted (each unit's own progress hidden, though it
/// still stops when the caller's does), or each unit's own progress.
enum UnitProgress<'a> {
    Counted(&'a dyn Progress, CancelOnly<'a>),
    Shown(&'a dyn Progress),
}

impl<'a> UnitProgress<'a> {
    fn begin<O: Split>(operation: &O, context: &Context<'a>, count: usize) -> UnitProgress<'a> {
        if operation.shows_unit_progress() {
            return UnitProgress::Shown(context.progress);
        }
        context.progress.begin("units", count as u64);
        UnitProgress::Counted(context.progress, CancelOnly(context.progress))
    }

    /// The progress the units report to.
    fn for_units(&self) -> &dyn Progress {
        match self {
            UnitProgress::Counted(_, cancel) => cancel,
            UnitProgress::Shown(progress) => *progress,
        }
    }

    /// One more unit done.
    fn advance(&self) {
        if let UnitProgress::Counted(progress, _) = self {
            progress.advance(1);
        }
    }
}

/// The progress a unit reports to: nothing (the units are counted), but it stops when its caller's does.
struct CancelOnly<'a>(&'a dyn Progress);

impl Progress for CancelOnly<'_> {
    fn begin(&self, _stage: &str, _total: u64) {}
    fn advance(&self, _steps: u64) {}
    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}
