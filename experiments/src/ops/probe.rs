//! Linear probes per layer with the full protocol (controls, selectivity, seeds with intervals, the random-init
//! baseline), for every [`ProbeTask`]: the CPython structure and syntax tasks, program state, API cloze and user
//! tasks from JSONL.

use std::path::{Path, PathBuf};

use models::{HookPoint, Model};
use probes::program_study::{ProgramStudyReport, ProgramStudySpec};
use probes::protocol::{ProbeKind, SweepConfig};
use probes::study::{StudyReport, StudySpec};
use probes::tasks::api_cloze::{ClozeCase, ClozeReport};
use probes::tasks::ProbeTask;
use serde::{Deserialize, Serialize};

use super::{names, write_json, Context, Operation, Report};
use crate::error::{ExperimentError, Result};
use crate::units::Split;

/// What to probe for, where and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSettings {
    /// The task.
    pub task: ProbeTask,
    /// The JSONL file of a user task (`{"text", "start", "end", "label"}` per line, spans in characters).
    #[serde(default)]
    pub spans: Option<PathBuf>,
    /// Layers whose residual stream (`hook_resid_post`) is probed; `None` for every layer.
    #[serde(default)]
    pub layers: Option<Vec<usize>>,
    /// The probe.
    #[serde(default)]
    pub probe: ProbeKind,
    /// CPython files read (a fixed, sorted list), programs generated, or API modules x 5 cloze prompts.
    pub files: usize,
    /// Tokens read per file.
    pub max_tokens: usize,
    /// Seeds, from the run's seed on (one split and control task each).
    pub seeds: usize,
    /// Also probe a randomly initialised model of the same architecture.
    #[serde(default)]
    pub random_init: bool,
    /// Norm of the program-state steering vector, as a multiple of the mean residual norm at the best layer.
    #[serde(default = "steering_scale")]
    pub steering_scale: f64,
    /// Save the activation dataset to this safetensors file (structure, syntax and user tasks).
    #[serde(default)]
    pub save_activations: Option<PathBuf>,
    /// Store saved activations as f16.
    #[serde(default)]
    pub f16: bool,
    /// Probe the listed layers in units of this many, each unit collecting its layers' activations in a pass of its
    /// own and fitting them from a cold start (token tasks): the units of a run split across a cluster. Unset: one
    /// pass over every layer, each layer's fit starting from the previous layer's.
    #[serde(default)]
    pub layers_per_unit: Option<usize>,
}

fn steering_scale() -> f64 {
    0.5
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            task: ProbeTask::BracketDepth,
            spans: None,
            layers: None,
            probe: ProbeKind::Logistic,
            files: 40,
            max_tokens: 256,
            seeds: 3,
            random_init: false,
            steering_scale: 0.5,
            save_activations: None,
            f16: false,
            layers_per_unit: None,
        }
    }
}

/// What a probing run found; its shape depends on the task.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ProbeReport {
    /// A token task over documents: accuracy, control and selectivity per layer.
    Tokens(Box<StudyReport>),
    /// The program-state study.
    ProgramState(Box<ProgramStudyReport>),
    /// The API cloze quiz and its prompts.
    ApiCloze {
        /// Top-k per layer and at the output.
        report: ClozeReport,
        /// The prompts.
        cases: Vec<ClozeCase>,
    },
}

impl Operation for ProbeSettings {
    type Report = ProbeReport;

    fn run(&self, model: &Model, context: &Context) -> Result<ProbeReport> {
        match self.layers_per_unit {
            Some(_) => crate::units::run_all(self, model, context),
            None => self.run_each(model, context.seed, context.progress, |_| {}),
        }
    }
}

impl ProbeSettings {
    /// The layers of each unit (see [`ProbeSettings::layers_per_unit`]), checked without the model.
    fn unit_layers(&self) -> Result<Vec<Vec<usize>>> {
        let per_unit = self.layers_per_unit.unwrap_or(usize::MAX).max(1);
        let refuse = |why: &str| Err(ExperimentError::Spec(format!("layers_per_unit: {why}")));
        match &self.layers {
            _ if self.task.corpus_labeller().is_none() && self.task != ProbeTask::User => {
                refuse("only the token tasks (structure, syntax, user) split by layer")
            }
            _ if self.save_activations.is_some() => refuse("the units cannot share one save_activations file"),
            None => refuse("list the layers to split them (layers: [0, 4, 8])"),
            Some(layers) => Ok(layers.chunks(per_unit).map(<[usize]>::to_vec).collect()),
        }
    }
}

/// With `layers_per_unit`, one unit per group of layers: a probing study of those layers alone.
impl Split for ProbeSettings {
    type Unit = StudyReport;

    fn units(&self) -> Result<usize> {
        Ok(self.unit_layers()?.len())
    }

    fn run_unit(&self, index: usize, model: &Model, context: &Context) -> Result<StudyReport> {
        let layers = self.unit_layers()?.into_iter().nth(index).ok_or_else(|| {
            ExperimentError::Data(format!("probe unit {index} asked for, of {}", self.units().unwrap_or(0)))
        })?;
        let alone = ProbeSettings { layers: Some(layers), layers_per_unit: None, ..self.clone() };
        match alone.run_each(model, context.seed, context.progress, |_| {})? {
            ProbeReport::Tokens(report) => Ok(*report),
            _ => Err(ExperimentError::Spec("layers_per_unit: only the token tasks split by layer".into())),
        }
    }

    fn merge(&self, units: Vec<StudyReport>, _model: &Model, _context: &Context) -> Result<ProbeReport> {
        let mut units = units.into_iter();
        let mut report = units.next().ok_or_else(|| ExperimentError::Data("a probe with no units".into()))?;
        for unit in units {
            report.trained.extend(unit.trained);
            if let (Some(all), Some(more)) = (report.random_init.as_mut(), unit.random_init) {
                all.extend(more);
            }
        }
        Ok(ProbeReport::Tokens(Box::new(report)))
    }
}

impl ProbeSettings {
    /// The probed layers, checked against the model.
    pub fn layers_of(&self, model: &Model) -> Result<Vec<usize>> {
        let n_layers = model.shape().n_layers;
        let layers = self.layers.clone().unwrap_or_else(|| (0..n_layers).collect());
        for &layer in &layers {
            HookPoint::ResidPost(layer).check(n_layers)?;
        }
        Ok(layers)
    }

    fn sweep(&self, seed: u64) -> SweepConfig {
        SweepConfig { seeds: (seed..seed + self.seeds.max(1) as u64).collect(), ..SweepConfig::for_probe(self.probe) }
    }

    /// The operation, handing each probed layer's result to `on_layer` as soon as it is done (token tasks; the
    /// app draws the curves as they grow). It writes nothing.
    pub fn run_each(
        &self,
        model: &Model,
        seed: u64,
        progress: &dyn models::Progress,
        on_layer: impl FnMut(&probes::protocol::PointResult),
    ) -> Result<ProbeReport> {
        let layers = self.layers_of(model)?;
        let sweep = self.sweep(seed);
        if self.task == ProbeTask::ApiCloze {
            let stdlib = models::catalogue::data_dir().join("cpython-stdlib");
            let cases = probes::tasks::api_cloze::cloze_cases(model, &stdlib, self.files * 5, 5)?;
            let report = probes::tasks::api_cloze::run_cloze(model, &cases, progress)?;
            return Ok(ProbeReport::ApiCloze { report, cases });
        }
        if self.task == ProbeTask::ProgramState {
            let spec = ProgramStudySpec {
                programs: self.files,
                statements: 6,
                steering_programs: 50,
                steering_scale: self.steering_scale,
                seed,
                layers,
                sweep,
                random_init: self.random_init,
            };
            return Ok(ProbeReport::ProgramState(Box::new(probes::program_study::run_program_study(
                model, &spec, progress,
            )?)));
        }
        let user;
        let corpus_labeller = self.task.corpus_labeller();
        let (documents, labeller): (Vec<String>, &dyn probes::dataset::TokenLabeller) = match &corpus_labeller {
            Some(labeller) => (probes::corpus::stdlib_documents(self.files)?, labeller.as_ref()),
            None => {
                let path = self.spans.as_deref().ok_or_else(|| {
                    ExperimentError::Spec(
                        "the user task needs its spans file (--spans FILE.jsonl, spans: \"F\")".into(),
                    )
                })?;
                user = probes::tasks::user::UserTask::load(path)?;
                (user.documents.clone(), &user)
            }
        };
        let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::ResidPost(l)).collect();
        let study = StudySpec {
            documents: &documents,
            labeller,
            points: &points,
            max_tokens: self.max_tokens,
            sweep,
            random_init_seed: self.random_init.then_some(seed),
            save_dataset: self.save_activations.as_deref().map(|p: &Path| (p, self.f16)),
        };
        Ok(ProbeReport::Tokens(Box::new(probes::study::run_study_each(model, &study, progress, on_layer)?)))
    }
}

impl Report for ProbeReport {
    fn summary(&self) -> Vec<String> {
        match self {
            ProbeReport::Tokens(report) => {
                let mut lines =
                    vec![format!("{}: {} labelled tokens from {} files", report.task, report.tokens, report.documents)];
                let best = report.trained.iter().max_by(|a, b| a.accuracy.mean.total_cmp(&b.accuracy.mean));
                if let Some(b) = best {
                    lines.push(format!(
                        "best {}: accuracy {:.3} [{:.3}, {:.3}], selectivity {:.3}, majority {:.3}",
                        b.point, b.accuracy.mean, b.accuracy.low, b.accuracy.high, b.selectivity.mean, b.majority
                    ));
                }
                lines
            }
            ProbeReport::ProgramState(report) => {
                let s = &report.steering;
                vec![
                    format!("{} labelled tokens from {} programs", report.tokens, report.spec.programs),
                    format!(
                        "best layer {}; accuracy minus swapped-semantics accuracy there: {:+.3}",
                        report.best_point, report.semantic_gap
                    ),
                    format!(
                        "steering at {} (norm {:.1}): mean change of log p(target value) {:+.3} along the probe, {:+.3} along random directions; effect size {:.2}",
                        s.point, s.norm, s.probe.mean_delta_logprob, s.random.mean_delta_logprob, s.effect_size
                    ),
                ]
            }
            ProbeReport::ApiCloze { report, .. } => {
                let o = &report.output;
                let mut lines = vec![
                    format!("{} cloze prompts over {} modules", report.cases, report.modules),
                    format!("output: top-1 {:.3}, top-5 {:.3}, top-10 {:.3}", o.top1, o.top5, o.top10),
                ];
                lines.extend(report.per_layer.iter().map(|l| {
                    format!("layer {:>2}: top-1 {:.3}, top-5 {:.3}", l.layer.unwrap_or_default(), l.top1, l.top5)
                }));
                lines
            }
        }
    }

    fn write(&self, dir: &Path) -> Result<Vec<String>> {
        match self {
            ProbeReport::Tokens(report) => {
                report.write(dir)?;
                Ok(names(&[
                    "accuracy.png",
                    "selectivity.png",
                    "accuracy.svg",
                    "selectivity.svg",
                    "results.csv",
                    "results.json",
                ]))
            }
            ProbeReport::ProgramState(report) => {
                report.write(dir)?;
                Ok(names(&["accuracy.png", "accuracy.svg", "results.csv", "results.json"]))
            }
            ProbeReport::ApiCloze { .. } => {
                write_json(dir, "results.json", self)?;
                Ok(names(&["results.json"]))
            }
        }
    }
}
