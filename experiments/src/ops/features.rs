//! A dictionary's features as things to read and to steer with: `FeaturePages` (pages of sampled live features
//! beside pages of sampled neurons of the same layer, with the table of their simulation scores) and
//! `SteerFeatures` (the causal check of features' decoder directions against random ones).

use std::path::{Path, PathBuf};

use find::interpreters::InterpreterKind;
use find::neurons::{UnitNumeric, UnitToken};
use find::pages::{pages, Interpretation, UnitPage};
use find::session::{BlackBox, Budget, Session};
use find::units::{Neurons, UnitKind, Units};
use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Model, Progress};
use probes::sparse::steering::{steer, SteeringReport};
use probes::sparse::{saelens, Dictionary};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{names, write_file, write_json, Context, Operation, Report};
use crate::code_metrics::held_out_files;
use crate::error::{ExperimentError, Result};

/// A dictionary's features as [`Units`]: their activations are the dictionary's encoding of the point it reads.
pub struct Features {
    /// The dictionary, on the model's device.
    pub dictionary: Dictionary,
}

impl Units for Features {
    fn kind(&self) -> UnitKind {
        UnitKind::Feature
    }

    fn layer(&self) -> usize {
        self.dictionary.reads.layer().unwrap_or(0)
    }

    fn count(&self, _model: &Model) -> usize {
        self.dictionary.d_sae() as usize
    }

    fn activations(&self, model: &Model, ids: &[u32]) -> find::Result<Tensor> {
        let input = find::neurons::record_point(model, ids, self.dictionary.reads)?;
        Ok(models::tch::no_grad(|| self.dictionary.encode(&input)).to_kind(Kind::Float).to_device(Device::Cpu))
    }
}

impl Features {
    /// These features as a transcoder of one MLP layer, for feature repairs; an error for any other dictionary.
    pub fn into_transcoder(self) -> Result<Features> {
        let (reads, writes) = (self.dictionary.reads, self.dictionary.writes);
        match (reads, writes) {
            (HookPoint::MlpIn(l), HookPoint::MlpOut(m)) if l == m => Ok(self),
            _ => Err(ExperimentError::Spec(format!(
                "feature repairs need a transcoder from blocks.L.mlp.hook_in to blocks.L.hook_mlp_out; this dictionary maps {reads} to {writes}"
            ))),
        }
    }
}

impl repair::Transcoder for Features {
    fn layer(&self) -> usize {
        Units::layer(self)
    }

    fn encode(&self, mlp_in: &Tensor) -> Tensor {
        let device = self.dictionary.w_enc.device();
        models::tch::no_grad(|| self.dictionary.encode(&mlp_in.to_device(device)))
            .to_kind(Kind::Float)
            .to_device(Device::Cpu)
    }

    fn decoder(&self) -> Tensor {
        self.dictionary.w_dec.to_kind(Kind::Float).to_device(Device::Cpu)
    }
}

/// SHA-256 of a SAELens folder's two files, naming a dictionary in caches.
pub fn folder_sha256(dir: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for name in [saelens::CFG_FILE, saelens::WEIGHTS_FILE] {
        let path = dir.join(name);
        hasher.update(std::fs::read(&path).map_err(models::files::at(&path))?);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Loads a SAELens folder onto the model's device, checked against the model.
pub fn load_features(model: &Model, dir: &Path) -> Result<Features> {
    let dictionary = saelens::load(dir)?;
    for point in [dictionary.reads, dictionary.writes] {
        point.check(model.shape().n_layers)?;
    }
    Ok(Features { dictionary: dictionary.to_device(model.device) })
}

/// Every feature's activation at every token of `ids` (`[position][feature]`), for the prompt inspector.
pub fn feature_activations(model: &Model, dir: &Path, ids: &[u32]) -> Result<Vec<Vec<f32>>> {
    let activations = load_features(model, dir)?.activations(model, ids)?;
    Vec::<Vec<f32>>::try_from(activations).map_err(|e| ExperimentError::Data(format!("feature activations: {e}")))
}

/// Which features and neurons get pages, over how much text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePagesSettings {
    /// The SAELens folder.
    pub dictionary: PathBuf,
    /// Features to page, drawn at random (seeded) among those active on the files searched; or these when given.
    #[serde(default = "sample")]
    pub features: usize,
    /// These features instead of a sample.
    #[serde(default)]
    pub chosen: Vec<usize>,
    /// Neurons of the dictionary's layer to page beside them, drawn at random (0: none).
    #[serde(default = "sample")]
    pub neurons: usize,
    /// CPython standard-library files searched for the top examples (the first ones).
    #[serde(default = "files")]
    pub files: usize,
    /// Held-out CPython files the simulation scores are measured on.
    #[serde(default = "held_out")]
    pub held_out: usize,
    /// Tokens read of each file.
    #[serde(default = "max_tokens")]
    pub max_tokens: usize,
    /// Every paged unit also described by the FIND interpreter as a function of `x` written into a template.
    #[serde(default)]
    pub function: Option<UnitFunction>,
}

/// A unit as a FIND function: its activation at the end of `template` with `x` written in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitFunction {
    /// The text with `{x}`, e.g. `"x = {x}"` or `"import {x}"`.
    pub template: String,
    /// `x` is a number (else a token).
    pub numeric: bool,
    /// Rounds of the interpreter, 16 inputs each.
    pub rounds: usize,
    /// The interpreter (the search scientist unless named; `Library`, its family library alone, is the baseline
    /// before the symbolic search).
    #[serde(default = "scientist")]
    pub interpreter: InterpreterKind,
}

fn scientist() -> InterpreterKind {
    InterpreterKind::Scientist
}

impl UnitFunction {
    /// The interpreter's answer for unit `index` of `units`.
    pub fn interpret(
        &self,
        model: &Model,
        units: Box<dyn Units + '_>,
        index: usize,
        seed: u64,
    ) -> Result<Interpretation> {
        let mut function: Box<dyn BlackBox> = if self.numeric {
            Box::new(UnitNumeric::new(model, units, index, &self.template)?)
        } else {
            Box::new(UnitToken::new(model, units, index, &self.template)?)
        };
        let mut session = Session::new(function.as_mut(), Budget { rounds: self.rounds, inputs_per_round: 16 });
        let answer = self.interpreter.build(model, seed)?.interpret(&mut session);
        let fit = if self.numeric { find::score::black_box_fit(function.as_mut(), &answer.code)? } else { None };
        Ok(Interpretation {
            template: self.template.clone(),
            numeric: self.numeric,
            answer,
            nmse: fit.map(|f| f.nmse),
            simulation: fit.map(|f| f.simulation),
        })
    }
}

fn sample() -> usize {
    20
}

fn files() -> usize {
    20
}

fn held_out() -> usize {
    5
}

fn max_tokens() -> usize {
    256
}

/// The mean simulation score of one kind of unit, with its 95% interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreSummary {
    /// Neurons or features.
    pub kind: UnitKind,
    /// Pages.
    pub units: usize,
    /// Mean simulation score.
    pub mean: f64,
    /// Half-width of the 95% interval of the mean (normal approximation).
    pub interval: f64,
    /// Pages whose FIND answer, as a function of a number in the template, fits the unit within NMSE 0.1 on FIND's
    /// grid (FIND's criterion); none when no numeric template was given.
    #[serde(default)]
    pub find_right: Option<usize>,
}

impl ScoreSummary {
    fn of(kind: UnitKind, pages: &[UnitPage]) -> Option<ScoreSummary> {
        let scores: Vec<f64> = pages.iter().filter(|p| p.kind == kind).map(|p| p.simulation_score).collect();
        let n = scores.len();
        (n > 0).then(|| {
            let mean = scores.iter().sum::<f64>() / n as f64;
            let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0).max(1.0);
            let nmse: Vec<f64> = pages
                .iter()
                .filter(|p| p.kind == kind)
                .filter_map(|p| p.interpretation.as_ref().filter(|i| i.numeric))
                .map(|i| i.nmse.unwrap_or(f64::INFINITY))
                .collect();
            let find_right = (!nmse.is_empty()).then(|| nmse.iter().filter(|&&e| e < 0.1).count());
            ScoreSummary { kind, units: n, mean, interval: 1.96 * (var / n as f64).sqrt(), find_right }
        })
    }
}

/// Feature and neuron pages, and their scores side by side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeaturePagesReport {
    /// Features first, then neurons.
    pub pages: Vec<UnitPage>,
    /// Per kind of unit.
    pub scores: Vec<ScoreSummary>,
    /// Features active on the files searched, of all.
    pub live_features: usize,
}

impl FeaturePagesSettings {
    /// Pages of `dictionary`'s features with the defaults of a spec that names only the folder.
    pub fn new(dictionary: PathBuf) -> Self {
        FeaturePagesSettings {
            dictionary,
            features: sample(),
            chosen: Vec::new(),
            neurons: sample(),
            files: files(),
            held_out: held_out(),
            max_tokens: max_tokens(),
            function: None,
        }
    }

    /// The files searched for top examples and the held-out files of the simulation scores.
    fn texts(&self) -> Result<(Vec<String>, Vec<String>)> {
        Ok((probes::corpus::stdlib_documents(self.files)?, held_out_files(self.held_out)?))
    }

    /// The page of feature `index` alone (what the app shows): no sampling, no neurons, no interpretation.
    pub fn feature_page(&self, model: &Model, index: usize, progress: &dyn Progress) -> Result<UnitPage> {
        let features = load_features(model, &self.dictionary)?;
        let (documents, held_out) = self.texts()?;
        Ok(pages(model, &features, &[index], &documents, &held_out, self.max_tokens, progress)?.remove(0))
    }

    /// The features to page: `chosen`, or a seeded sample of those active somewhere in `documents`.
    fn choose(
        &self,
        model: &Model,
        features: &Features,
        documents: &[String],
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<(Vec<usize>, usize)> {
        let count = features.count(model);
        let mut active = Tensor::zeros([count as i64], (Kind::Bool, Device::Cpu));
        progress.begin("finding live features", documents.len() as u64);
        for text in documents {
            progress.check()?;
            let ids = model.encode_prefix(text, self.max_tokens)?;
            if !ids.is_empty() {
                active = active.logical_or(&features.activations(model, &ids)?.gt(0.0).any_dim(0, false));
            }
            progress.advance(1);
        }
        let live: Vec<usize> = (0..count).filter(|&i| active.int64_value(&[i as i64]) != 0).collect();
        if !self.chosen.is_empty() {
            return Ok((self.chosen.clone(), live.len()));
        }
        let mut sample = live.clone();
        sample.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        sample.truncate(self.features);
        sample.sort_unstable();
        Ok((sample, live.len()))
    }
}

impl Operation for FeaturePagesSettings {
    type Report = FeaturePagesReport;

    fn run(&self, model: &Model, context: &Context) -> Result<FeaturePagesReport> {
        let features = load_features(model, &self.dictionary)?;
        let (documents, held_out) = self.texts()?;
        let (chosen, live_features) = self.choose(model, &features, &documents, context.seed, context.progress)?;
        let mut all = pages(model, &features, &chosen, &documents, &held_out, self.max_tokens, context.progress)?;
        if self.neurons > 0 {
            let layer = Neurons(features.layer());
            let mut neurons: Vec<usize> = (0..layer.count(model)).collect();
            neurons.shuffle(&mut rand::rngs::StdRng::seed_from_u64(context.seed));
            neurons.truncate(self.neurons);
            neurons.sort_unstable();
            all.extend(pages(model, &layer, &neurons, &documents, &held_out, self.max_tokens, context.progress)?);
        }
        if let Some(function) = &self.function {
            context.progress.begin("interpreting units as functions", all.len() as u64);
            for page in &mut all {
                context.progress.check()?;
                let units: Box<dyn Units> = match page.kind {
                    UnitKind::Feature => Box::new(Features { dictionary: features.dictionary.shallow_clone() }),
                    UnitKind::Neuron => Box::new(Neurons(page.layer)),
                };
                page.interpretation = Some(function.interpret(model, units, page.index, context.seed)?);
                context.progress.advance(1);
            }
        }
        let scores =
            [UnitKind::Feature, UnitKind::Neuron].into_iter().filter_map(|k| ScoreSummary::of(k, &all)).collect();
        Ok(FeaturePagesReport { pages: all, scores, live_features })
    }
}

impl Report for FeaturePagesReport {
    fn summary(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .scores
            .iter()
            .map(|s| {
                let functions = s.find_right.map_or(String::new(), |right| {
                    format!("; {right} of {} fit by the FIND interpreter (NMSE < 0.1) as functions of x", s.units)
                });
                format!(
                    "{}s: mean simulation score {:.3} ± {:.3} over {} pages{functions}",
                    s.kind.title(),
                    s.mean,
                    s.interval,
                    s.units
                )
            })
            .collect();
        let features = self.pages.iter().filter(|p| p.kind == UnitKind::Feature).count();
        lines.push(format!(
            "{} live features searched; {features} paged (table.csv, one .md per page)",
            self.live_features
        ));
        lines
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        let mut csv = String::from("kind,layer,index,simulation_score,find_nmse,held_out_tokens,tokens\n");
        for page in &self.pages {
            let nmse = page.interpretation.as_ref().and_then(|i| i.nmse).map_or(String::new(), |e| format!("{e:.4}"));
            csv.push_str(&format!(
                "{},{},{},{:.4},{nmse},{},\"{}\"\n",
                page.kind.title().to_lowercase(),
                page.layer,
                page.index,
                page.simulation_score,
                page.held_out_tokens,
                page.tokens.join(" ").replace('"', "\"\"")
            ));
        }
        write_file(dir, "table.csv", csv.as_bytes())?;
        let mut files = names(&["table.csv", "results.json"]);
        for page in &self.pages {
            page.write(dir)?;
            files.push(format!("{}.md", page.file_stem()));
        }
        Ok(files)
    }
}

/// Which features steer which prompts, how hard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteerFeaturesSettings {
    /// The SAELens folder.
    pub dictionary: PathBuf,
    /// The features (by index).
    pub features: Vec<usize>,
    /// Prompts: a prefix of each of this many held-out CPython files.
    #[serde(default = "steer_prompts")]
    pub prompts: usize,
    /// Tokens of each prompt.
    #[serde(default = "steer_tokens")]
    pub tokens: usize,
    /// Norm of the added vectors, as a multiple of the mean norm of the residual stream after the dictionary's
    /// layer at the prompts' last tokens.
    #[serde(default = "steer_scale")]
    pub scale: f64,
}

fn steer_prompts() -> usize {
    16
}

fn steer_tokens() -> usize {
    64
}

fn steer_scale() -> f64 {
    0.5
}

impl Operation for SteerFeaturesSettings {
    type Report = SteeringReport;

    fn run(&self, model: &Model, context: &Context) -> Result<SteeringReport> {
        let features = load_features(model, &self.dictionary)?;
        let layer = features
            .dictionary
            .writes
            .layer()
            .ok_or_else(|| ExperimentError::Data("the dictionary writes no block's point".into()))?;
        let prompts: Vec<Vec<u32>> = held_out_files(self.prompts)?
            .iter()
            .map(|text| model.encode_prefix(text, self.tokens))
            .collect::<Result<_, _>>()?;
        let point = models::HookPoint::ResidPost(layer);
        let mut norms = 0.0;
        for ids in &prompts {
            let last = find::neurons::record_point(model, ids, point)?.get(ids.len() as i64 - 1);
            norms += last.to_kind(Kind::Double).norm().double_value(&[]);
        }
        let norm = self.scale * norms / prompts.len().max(1) as f64;
        Ok(steer(model, &features.dictionary, &self.features, &prompts, norm, context.seed, context.progress)?)
    }
}

impl Report for SteeringReport {
    fn summary(&self) -> Vec<String> {
        vec![format!(
            "{} features × {} prompts at {} (norm {:.2}): their top tokens' log-probability {:+.3} along the feature, {:+.3} along random directions; effect size {:.2}; {:.0}% of features above random",
            self.features.len(),
            self.prompts,
            self.point,
            self.norm,
            self.feature_delta,
            self.random_delta,
            self.effect_size,
            self.features_above_random * 100.0
        )]
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        write_json(dir, "results.json", self)?;
        Ok(names(&["results.json"]))
    }
}
