//! A probing study: build the activation dataset of a task over documents at chosen layers, run the
//! protocol, optionally repeat it on a randomly initialised model of the same architecture, and write the
//! results as JSON and CSV.

use std::path::Path;

use models::{HookPoint, Model, Progress};
use serde::{Deserialize, Serialize};

use crate::dataset::{collect, TokenLabeller};
use crate::error::Result;
use crate::plots::{Curve, LayerPlot};
use crate::protocol::{sweep, sweep_each, PointResult, Summary, SweepConfig};

/// Everything a probing study found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyReport {
    /// The task's name.
    pub task: String,
    /// Number of classes.
    pub classes: usize,
    /// Labelled tokens in the dataset.
    pub tokens: usize,
    /// Documents read.
    pub documents: usize,
    /// The sweep's settings.
    pub config: SweepConfig,
    /// Results on the trained model, per hook point.
    pub trained: Vec<PointResult>,
    /// The same probe on a randomly initialised model of the same architecture, when asked for.
    pub random_init: Option<Vec<PointResult>>,
}

/// What a probing study runs.
pub struct StudySpec<'a> {
    /// The texts to read.
    pub documents: &'a [String],
    /// The task.
    pub labeller: &'a dyn TokenLabeller,
    /// Where to probe.
    pub points: &'a [HookPoint],
    /// Tokens read per document.
    pub max_tokens: usize,
    /// Seeds, regularisation grid, splits.
    pub sweep: SweepConfig,
    /// With a seed, also probe a randomly initialised model of the same architecture.
    pub random_init_seed: Option<u64>,
    /// Also save the trained model's activation dataset to this safetensors file (features in f16 when the
    /// flag is set).
    pub save_dataset: Option<(&'a Path, bool)>,
}

/// Runs the study. For the random-initialisation baseline the model's weights are replaced and restored
/// afterwards, bit-exactly.
pub fn run_study(model: &Model, spec: &StudySpec, progress: &dyn Progress) -> Result<StudyReport> {
    run_study_each(model, spec, progress, |_| {})
}

/// [`run_study`], handing each trained hook point's result to `on_point` as soon as it is done (for live views).
pub fn run_study_each(
    model: &Model,
    spec: &StudySpec,
    progress: &dyn Progress,
    on_point: impl FnMut(&PointResult),
) -> Result<StudyReport> {
    let gather = || collect(model, spec.documents, spec.labeller, spec.points, spec.max_tokens, progress);
    let data = gather()?;
    if let Some((path, half)) = spec.save_dataset {
        data.save(path, half)?;
    }
    let trained = sweep_each(&data, &spec.sweep, progress, on_point)?;
    let random_init = match spec.random_init_seed {
        None => None,
        Some(seed) => {
            let snapshot = model.snapshot();
            model.reinitialize(seed)?;
            let result = gather().and_then(|d| sweep(&d, &spec.sweep, progress));
            model.restore(&snapshot)?;
            Some(result?)
        }
    };
    Ok(StudyReport {
        task: spec.labeller.name().to_string(),
        classes: spec.labeller.classes(),
        tokens: data.labels.len(),
        documents: spec.documents.len(),
        config: spec.sweep.clone(),
        trained,
        random_init,
    })
}

impl StudyReport {
    /// One CSV row per model and hook point: accuracy, control, selectivity (mean and interval), majority.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("model,point,accuracy,accuracy_low,accuracy_high,control,control_low,control_high,selectivity,selectivity_low,selectivity_high,majority\n");
        let rows = self
            .trained
            .iter()
            .map(|r| ("trained", r))
            .chain(self.random_init.iter().flatten().map(|r| ("random_init", r)));
        for (which, r) in rows {
            let (a, c, s) = (&r.accuracy, &r.control, &r.selectivity);
            out.push_str(&format!(
                "{which},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}\n",
                r.point, a.mean, a.low, a.high, c.mean, c.low, c.high, s.mean, s.low, s.high, r.majority
            ));
        }
        out
    }

    /// Writes `results.json`, `results.csv`, and the accuracy and selectivity plots (`accuracy.png/svg`,
    /// `selectivity.png/svg`) into `dir` (created if needed), each atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json_and_csv(dir, self, &self.to_csv())?;
        let random = self.random_init.as_deref().unwrap_or_default();
        let mut accuracy = vec![
            curve("trained: task", &self.trained, |r| &r.accuracy),
            curve("trained: control task", &self.trained, |r| &r.control),
            majority_curve(&self.trained),
        ];
        let mut selectivity = vec![curve("trained", &self.trained, |r| &r.selectivity)];
        if !random.is_empty() {
            accuracy.push(curve("random init: task", random, |r| &r.accuracy));
            selectivity.push(curve("random init", random, |r| &r.selectivity));
        }
        let title = |what: &str| {
            format!("{}: {what} per layer (mean of {} seeds, 95% interval)", self.task, self.config.seeds.len())
        };
        LayerPlot {
            title: title("probe accuracy"),
            x_label: "layer".into(),
            y_label: "test accuracy".into(),
            curves: accuracy,
        }
        .write(&dir.join("accuracy"))?;
        LayerPlot {
            title: title("selectivity"),
            x_label: "layer".into(),
            y_label: "accuracy - control accuracy".into(),
            curves: selectivity,
        }
        .write(&dir.join("selectivity"))?;
        Ok(())
    }
}

/// The layer a result was measured at (its position in the list when the point has no layer).
fn layer_of(index: usize, result: &PointResult) -> f64 {
    result.point.parse::<HookPoint>().ok().and_then(HookPoint::layer).unwrap_or(index) as f64
}

/// One summary per layer as a plotted curve.
pub fn curve(name: &str, results: &[PointResult], pick: impl Fn(&PointResult) -> &Summary) -> Curve {
    let points =
        results.iter().enumerate().map(|(i, r)| (layer_of(i, r), pick(r).mean, pick(r).low, pick(r).high)).collect();
    Curve { name: name.to_string(), points }
}

fn majority_curve(results: &[PointResult]) -> Curve {
    let points =
        results.iter().enumerate().map(|(i, r)| (layer_of(i, r), r.majority, r.majority, r.majority)).collect();
    Curve { name: "majority class".into(), points }
}

/// Writes `results.json` (`value` as JSON) and `results.csv` into `dir`, creating it, each atomically.
pub fn write_json_and_csv(dir: &Path, value: &impl Serialize, csv: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(models::files::at(dir))?;
    let json = serde_json::to_string_pretty(value)?;
    models::files::write_atomically(&dir.join("results.json"), json.as_bytes())?;
    models::files::write_atomically(&dir.join("results.csv"), csv.as_bytes())?;
    Ok(())
}
