//! Sparse dictionaries as operations: `TrainDictionary` (activations from the standard library's packages, a
//! TopK/BatchTopK sparse autoencoder or transcoder trained with checkpoints, saved in SAELens's format, measured on
//! held-out files) and `EvalDictionary` (a SAELens folder measured on held-out files).

use std::path::{Path, PathBuf};

use models::{HookPoint, Model};
use probes::plots::{Curve, LayerPlot};
use probes::sparse::metrics::{evaluate, DictionaryMetrics};
use probes::sparse::train::{train, TrainConfig, TrainReport, TrainingData};
use probes::sparse::{collect_training_data, saelens};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{names, write_file, write_json, Context, Operation, Report};
use crate::code_metrics::held_out_files;
use crate::error::{ExperimentError, Result};

/// Where a dictionary is measured: held-out top-level CPython files (the perplexity benchmark's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeldOut {
    /// Held-out files.
    pub files: usize,
    /// Tokens read per file.
    pub max_tokens: usize,
}

impl Default for HeldOut {
    fn default() -> Self {
        HeldOut { files: 16, max_tokens: 256 }
    }
}

/// What to train a dictionary on, how, and where to measure it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainDictionarySettings {
    /// The hook point read (TransformerLens name): `blocks.{l}.mlp.hook_in` for a transcoder, any point for a
    /// sparse autoencoder.
    pub reads: String,
    /// The hook point written, for a transcoder (`blocks.{l}.hook_mlp_out`); a sparse autoencoder when absent.
    pub writes: Option<String>,
    /// Files of the standard library's packages the activations come from.
    pub files: usize,
    /// Tokens read per file.
    pub max_tokens: usize,
    /// The training itself.
    pub training: TrainConfig,
    /// Where it is measured afterwards.
    pub held_out: HeldOut,
}

impl Default for TrainDictionarySettings {
    fn default() -> Self {
        TrainDictionarySettings {
            reads: "blocks.15.mlp.hook_in".into(),
            writes: Some("blocks.15.hook_mlp_out".into()),
            files: 516,
            max_tokens: 2048,
            training: TrainConfig::default(),
            held_out: HeldOut::default(),
        }
    }
}

/// What training found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainDictionaryReport {
    /// The settings.
    pub settings: TrainDictionarySettings,
    /// Seconds spent collecting activations (about 0 when an earlier run's were in the cache).
    pub collect_seconds: f64,
    /// The activation dataset trained on (in the cache).
    pub activations: PathBuf,
    /// The training.
    pub training: TrainReport,
    /// The metrics on held-out files.
    pub metrics: DictionaryMetrics,
    /// The SAELens folder, relative to the run folder.
    pub dictionary: String,
}

/// Name of the dictionary's SAELens folder in the run folder.
pub const DICTIONARY: &str = "dictionary";

impl TrainDictionarySettings {
    /// The points read and written.
    pub fn points(&self, n_layers: usize) -> Result<(HookPoint, HookPoint)> {
        let reads: HookPoint = self.reads.parse()?;
        let writes: HookPoint = match &self.writes {
            Some(name) => name.parse()?,
            None => reads,
        };
        for point in [reads, writes] {
            point.check(n_layers)?;
            if point.position_dim() != 1 {
                return Err(ExperimentError::Data(format!("{point} is not indexed by token position")));
            }
        }
        Ok((reads, writes))
    }

    /// The activation dataset of these settings: the cache's when any earlier run collected it (same weights,
    /// points, file texts and tokens per file), else collected into the cache. A dictionary of another size or
    /// sparsity over the same layer so trains without collecting again.
    fn activations(
        &self,
        model: &Model,
        reads: HookPoint,
        writes: HookPoint,
        progress: &dyn models::Progress,
    ) -> Result<PathBuf> {
        let files = probes::corpus::stdlib_package_files(self.files)?;
        let documents: Vec<String> =
            files.iter().map(|p| std::fs::read_to_string(p).map_err(models::files::at(p))).collect::<Result<_, _>>()?;
        let mut hasher = Sha256::new();
        hasher.update(repair::patchset::weights_sha256(model)?.as_bytes());
        hasher.update(format!("{reads} -> {writes}, {} tokens per file", self.max_tokens).as_bytes());
        for document in &documents {
            hasher.update((document.len() as u64).to_le_bytes());
            hasher.update(document.as_bytes());
        }
        let key: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let dir = models::catalogue::cache_dir().join("activations");
        let path = dir.join(format!("{key}.safetensors"));
        // The file appears only once complete, so an interrupted collection starts again.
        if !path.exists() {
            std::fs::create_dir_all(&dir).map_err(models::files::at(&dir))?;
            collect_training_data(model, &documents, reads, writes, self.max_tokens, &path, progress)?;
        }
        Ok(path)
    }
}

impl Operation for TrainDictionarySettings {
    type Report = TrainDictionaryReport;

    fn run(&self, model: &Model, context: &Context) -> Result<TrainDictionaryReport> {
        let (reads, writes) = self.points(model.shape().n_layers)?;
        // The held-out files are read first, so that asking for more than there are fails before the training.
        let held_out = held_out_files(self.held_out.files)?;
        let started = std::time::Instant::now();
        let activations = self.activations(model, reads, writes, context.progress)?;
        let collect_seconds = started.elapsed().as_secs_f64();
        let data = TrainingData::load(&activations)?;
        let checkpoints = context.out.join("checkpoint");
        let (dictionary, training) = train(&data, &self.training, Some(&checkpoints), context.progress)?;
        drop(data);
        let model_name = model.source.display_name.as_deref().unwrap_or(&model.source.spec);
        saelens::save(&dictionary, &context.out.join(DICTIONARY), model_name)?;
        let metrics = evaluate(model, &dictionary, &held_out, self.held_out.max_tokens, context.progress)?;
        Ok(TrainDictionaryReport {
            settings: self.clone(),
            collect_seconds,
            activations,
            training,
            metrics,
            dictionary: DICTIONARY.into(),
        })
    }
}

/// The metric lines every dictionary report starts with.
fn metric_lines(metrics: &DictionaryMetrics) -> Vec<String> {
    vec![
        format!(
            "{} held-out tokens: L0 {:.1}, explained variance {:.3}, CE loss recovered {:.3} (CE {:.3} clean, {:.3} spliced, {:.3} zero-ablated), KL score {:.3}",
            metrics.tokens,
            metrics.l0,
            metrics.explained_variance,
            metrics.ce_loss_score,
            metrics.ce_loss_without_sae,
            metrics.ce_loss_with_sae,
            metrics.ce_loss_with_ablation,
            metrics.kl_div_score
        ),
        format!(
            "{} dead and {} dense features (active on > {:.0}% of tokens) of {}",
            metrics.dead_features,
            metrics.dense_features,
            probes::sparse::metrics::DENSE_SHARE * 100.0,
            metrics.feature_density.len()
        ),
    ]
}

impl Report for TrainDictionaryReport {
    fn summary(&self) -> Vec<String> {
        let t = &self.training;
        let mut lines = vec![format!(
            "{} features, k {}, trained {} steps of {} tokens on {} rows in {:.0} s (+{:.0} s collecting); saved in SAELens's format in {}/",
            t.config.features,
            t.config.k,
            t.config.steps,
            t.config.batch_size,
            t.rows,
            t.seconds,
            self.collect_seconds,
            self.dictionary
        )];
        lines.extend(metric_lines(&self.metrics));
        lines
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        let csv: String = std::iter::once("step,fvu,l0,dead\n".to_string())
            .chain(self.training.curve.iter().map(|c| format!("{},{:.5},{:.2},{}\n", c.step, c.fvu, c.l0, c.dead)))
            .collect();
        write_file(dir, "curve.csv", csv.as_bytes())?;
        let plot = LayerPlot {
            title: "training: fraction of variance unexplained per batch".into(),
            x_label: "step".into(),
            y_label: "1 - explained variance".into(),
            curves: vec![Curve {
                name: "training batches".into(),
                points: self.training.curve.iter().map(|c| (c.step as f64, c.fvu, c.fvu, c.fvu)).collect(),
            }],
        };
        plot.write(&dir.join("curve"))?;
        Ok(names(&["curve.png", "curve.svg", "curve.csv", "results.json"]))
    }
}

/// A dictionary in a SAELens folder, measured on held-out files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalDictionarySettings {
    /// The SAELens folder (`cfg.json` + `sae_weights.safetensors`).
    pub dictionary: PathBuf,
    /// Where it is measured.
    #[serde(default)]
    pub held_out: HeldOut,
}

/// What measuring found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalDictionaryReport {
    /// The folder measured.
    pub dictionary: PathBuf,
    /// SAELens's architecture name.
    pub architecture: String,
    /// The metrics.
    pub metrics: DictionaryMetrics,
}

impl Operation for EvalDictionarySettings {
    type Report = EvalDictionaryReport;

    fn run(&self, model: &Model, context: &Context) -> Result<EvalDictionaryReport> {
        let dictionary = saelens::load(&self.dictionary)?;
        let texts = held_out_files(self.held_out.files)?;
        let metrics = evaluate(model, &dictionary, &texts, self.held_out.max_tokens, context.progress)?;
        Ok(EvalDictionaryReport {
            dictionary: self.dictionary.clone(),
            architecture: saelens::architecture(&dictionary)?.into(),
            metrics,
        })
    }
}

impl Report for EvalDictionaryReport {
    fn summary(&self) -> Vec<String> {
        let mut lines = vec![format!("{} ({})", self.dictionary.display(), self.architecture)];
        lines.extend(metric_lines(&self.metrics));
        lines
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        Ok(names(&["results.json"]))
    }
}

/// One dictionary of a run on the frontier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontierPoint {
    /// The step folder that trained it.
    pub step: String,
    /// Features.
    pub features: usize,
    /// Active features per token while training.
    pub k: usize,
    /// Its metrics on held-out files.
    pub metrics: DictionaryMetrics,
}

/// The sparsity/fidelity frontier of the dictionaries one run trained: L0 against CE loss recovered and explained
/// variance, one point per finished `TrainDictionary` step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Frontier {
    /// The points, fewest features first.
    pub points: Vec<FrontierPoint>,
}

impl Frontier {
    /// Reads the report of every finished `TrainDictionary` step of the run folder `run`.
    pub fn of_run(run: &Path) -> Result<Frontier> {
        let mut steps: Vec<PathBuf> = std::fs::read_dir(run)
            .map_err(models::files::at(run))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with("-train-dictionary")))
            .filter(|p| p.join("results.json").is_file())
            .collect();
        steps.sort();
        let mut points = Vec::with_capacity(steps.len());
        for step in steps {
            let path = step.join("results.json");
            let text = std::fs::read_to_string(&path).map_err(models::files::at(&path))?;
            let report: TrainDictionaryReport = serde_json::from_str(&text)
                .map_err(|e| ExperimentError::Data(format!("{}: not a TrainDictionary report: {e}", path.display())))?;
            let name = step.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let config = &report.training.config;
            points.push(FrontierPoint { step: name, features: config.features, k: config.k, metrics: report.metrics });
        }
        if points.is_empty() {
            return Err(ExperimentError::Spec(format!("{} has no finished TrainDictionary step", run.display())));
        }
        points.sort_by_key(|p| p.features);
        Ok(Frontier { points })
    }
}

impl Report for Frontier {
    fn summary(&self) -> Vec<String> {
        self.points
            .iter()
            .map(|p| {
                let m = &p.metrics;
                format!(
                    "{} features, k {}: L0 {:.1}, explained variance {:.3}, CE loss recovered {:.3}, KL score {:.3}, {} dead ({})",
                    p.features, p.k, m.l0, m.explained_variance, m.ce_loss_score, m.kl_div_score, m.dead_features, p.step
                )
            })
            .collect()
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "frontier.json", self)?;
        let csv: String =
            std::iter::once("features,k,l0,explained_variance,ce_loss_recovered,kl_score,dead\n".to_string())
                .chain(self.points.iter().map(|p| {
                    let m = &p.metrics;
                    format!(
                        "{},{},{:.3},{:.4},{:.4},{:.4},{}\n",
                        p.features, p.k, m.l0, m.explained_variance, m.ce_loss_score, m.kl_div_score, m.dead_features
                    )
                }))
                .collect();
        write_file(dir, "frontier.csv", csv.as_bytes())?;
        let curve = |name: &str, pick: fn(&DictionaryMetrics) -> f64| Curve {
            name: name.into(),
            points: self
                .points
                .iter()
                .map(|p| (p.metrics.l0, pick(&p.metrics), pick(&p.metrics), pick(&p.metrics)))
                .collect(),
        };
        let sizes: Vec<String> = self.points.iter().map(|p| p.features.to_string()).collect();
        let plot = LayerPlot {
            title: format!("held-out fidelity against sparsity ({} features)", sizes.join(", ")),
            x_label: "L0 (active features per token)".into(),
            y_label: "score".into(),
            curves: vec![
                curve("CE loss recovered", |m| m.ce_loss_score),
                curve("explained variance", |m| m.explained_variance),
            ],
        };
        plot.write(&dir.join("frontier"))?;
        Ok(names(&["frontier.png", "frontier.svg", "frontier.csv", "frontier.json"]))
    }
}
