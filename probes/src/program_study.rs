//! The program-state study of Jin & Rinard on generated programs: where is the current and the future value
//! of a variable linearly decodable, does a probe on the alternative (swapped) semantics do markedly worse,
//! does a randomly initialised model encode it, and does steering along the probe's direction change the
//! value the model prints (against a random direction of the same norm)?

use std::path::Path;

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Model, Progress};
use serde::Serialize;

use crate::dataset::{collect, to_tensor, ActivationDataset, TokenLabeller};
use crate::error::{ProbeError, Result};
use crate::plots::LayerPlot;
use crate::protocol::{sweep, PointResult, SweepConfig};
use crate::steering::{steering_check, SteeringCase, SteeringReport, SteeringSetup};
use crate::study::{curve, write_json_and_csv};
use crate::tasks::program_state::{Program, ProgramState, Semantics, StateTarget, VALUES};
use crate::trainer::{feature_scale, LogisticBatch};

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramStudySpec {
    /// Programs to probe on.
    pub programs: usize,
    /// Statements per program.
    pub statements: usize,
    /// Held-out programs to steer.
    pub steering_programs: usize,
    /// Norm of the steering vector as a multiple of the mean residual norm at the probed layer.
    pub steering_scale: f64,
    /// Seed of the program generator.
    pub seed: u64,
    /// Layers whose residual stream is probed.
    pub layers: Vec<usize>,
    /// Probe settings.
    pub sweep: SweepConfig,
    /// Also probe a randomly initialised model of the same architecture.
    pub random_init: bool,
}

/// Everything the study found.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramStudyReport {
    /// The settings.
    pub spec: ProgramStudySpec,
    /// Labelled tokens.
    pub tokens: usize,
    /// The current value of the assigned variable, per layer.
    pub current: Vec<PointResult>,
    /// Its value at the end of the program (future state), per layer.
    pub future: Vec<PointResult>,
    /// The current value under the swapped semantics (the control), per layer.
    pub swapped: Vec<PointResult>,
    /// The current value on a randomly initialised model.
    pub random_init: Option<Vec<PointResult>>,
    /// The layer where the current state is best decoded.
    pub best_point: String,
    /// Accuracy on the real semantics minus accuracy on the swapped ones at the best layer.
    pub semantic_gap: f64,
    /// Steering along the best layer's probe directions on held-out programs, against random directions.
    pub steering: SteeringReport,
}

/// Swaps `data`'s labels for those `labeller` gives the same documents (the same labelled positions).
fn relabel(
    model: &Model,
    documents: &[String],
    labeller: &dyn TokenLabeller,
    data: &ActivationDataset,
) -> Result<Vec<usize>> {
    let mut labels = Vec::with_capacity(data.labels.len());
    for text in documents {
        let (ids, spans) = model.tokenizer.encode_with_offsets(text)?;
        labels.extend(labeller.labels(text, &spans[..ids.len()]).into_iter().flatten());
    }
    if labels.len() != data.labels.len() {
        return Err(ProbeError::InvalidInput(format!("{} labels for {} rows", labels.len(), data.labels.len())));
    }
    Ok(labels)
}

/// Single-token ids of the digits 0-9.
fn digit_tokens(model: &Model) -> Result<Vec<u32>> {
    (0..VALUES)
        .map(|d| match model.tokenizer.encode(&d.to_string(), false)?.as_slice() {
            [id] => Ok(*id),
            other => Err(ProbeError::InvalidInput(format!("the digit {d} is {} tokens", other.len()))),
        })
        .collect()
}

/// Steering cases: each held-out program, steered on the tokens of its final `>>> print(x)` line.
fn steering_cases(model: &Model, programs: &[Program]) -> Result<Vec<SteeringCase>> {
    programs
        .iter()
        .map(|p| {
            let text = p.text();
            let (ids, spans) = model.tokenizer.encode_with_offsets(&text)?;
            let print_line = p.statements_text().len();
            let positions = spans.iter().enumerate().filter(|(_, s)| s.1 > print_line).map(|(i, _)| i as i64).collect();
            Ok(SteeringCase { ids, positions, true_class: p.output(Semantics::Standard) as usize })
        })
        .collect()
}

/// Runs the study.
pub fn run_program_study(
    model: &Model,
    spec: &ProgramStudySpec,
    progress: &dyn Progress,
) -> Result<ProgramStudyReport> {
    let programs = Program::generate_many(spec.programs, spec.statements, spec.seed);
    let documents: Vec<String> = programs.iter().map(Program::text).collect();
    let points: Vec<HookPoint> = spec.layers.iter().map(|&l| HookPoint::ResidPost(l)).collect();
    let current = ProgramState::new(&programs, StateTarget::Current, Semantics::Standard);
    let max_tokens = model.shape().context_length;
    let gather = || collect(model, &documents, &current, &points, max_tokens, progress);
    let mut data = gather()?;
    let current_results = sweep(&data, &spec.sweep, progress)?;
    let real_labels = data.labels.clone();
    let mut sweep_with = |labeller: &ProgramState| -> Result<Vec<PointResult>> {
        data.labels = relabel(model, &documents, labeller, &data)?;
        sweep(&data, &spec.sweep, progress)
    };
    let future = sweep_with(&ProgramState::new(&programs, StateTarget::Final, Semantics::Standard))?;
    let swapped = sweep_with(&ProgramState::new(&programs, StateTarget::Current, Semantics::SwappedAddSub))?;
    data.labels = real_labels;

    let (best, best_result) = current_results
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.accuracy.mean.total_cmp(&b.1.accuracy.mean))
        .ok_or_else(|| ProbeError::InvalidInput("no layers to probe".into()))?;
    let semantic_gap = best_result.accuracy.mean - swapped[best].accuracy.mean;

    // The probe's class directions at the best layer, fitted on every row with the C seed 0 chose.
    let features = to_tensor(&data.features[best], models::cuda::device_if_available());
    let all_rows = Tensor::arange(features.size()[0], (Kind::Int64, features.device()));
    let (mean, std) = feature_scale(&features, &all_rows);
    let labels = Tensor::from_slice(&data.labels.iter().map(|&l| l as i64).collect::<Vec<_>>()).unsqueeze(1);
    let c = best_result.chosen_penalty.first().copied().unwrap_or(0.01);
    let probe = LogisticBatch::fit(
        &((&features - &mean) / &std),
        &labels.to_device(features.device()),
        VALUES,
        &[c],
        None,
        &spec.sweep.lbfgs,
    )?;
    let directions = probe.class_directions(0, &std).to_device(Device::Cpu);
    let mean_norm = f64::try_from(features.norm_scalaropt_dim(2, [1], false).mean(Kind::Float)).unwrap_or(1.0);

    let held_out = Program::generate_many(spec.steering_programs, spec.statements, spec.seed + 1_000_003);
    let setup = SteeringSetup {
        point: points[best],
        directions: &directions,
        class_tokens: &digit_tokens(model)?,
        norm: spec.steering_scale * mean_norm,
        seed: spec.seed,
    };
    let steering = steering_check(model, &steering_cases(model, &held_out)?, &setup, progress)?;

    let random_init = if spec.random_init {
        let snapshot = model.snapshot();
        model.reinitialize(spec.seed)?;
        let result = gather().and_then(|d| sweep(&d, &spec.sweep, progress));
        model.restore(&snapshot)?;
        Some(result?)
    } else {
        None
    };
    Ok(ProgramStudyReport {
        spec: spec.clone(),
        tokens: data.labels.len(),
        best_point: points[best].to_string(),
        semantic_gap,
        current: current_results,
        future,
        swapped,
        random_init,
        steering,
    })
}

impl ProgramStudyReport {
    /// One CSV row per probed label set and layer.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("labels,point,accuracy,accuracy_low,accuracy_high,selectivity,majority\n");
        let sets = [("current", &self.current), ("future", &self.future), ("swapped_semantics", &self.swapped)];
        let random = self.random_init.iter().map(|r| ("random_init_current", r));
        for (name, results) in sets.into_iter().chain(random) {
            for r in results.iter() {
                let a = &r.accuracy;
                out.push_str(&format!(
                    "{name},{},{:.4},{:.4},{:.4},{:.4},{:.4}\n",
                    r.point, a.mean, a.low, a.high, r.selectivity.mean, r.majority
                ));
            }
        }
        out
    }

    /// Writes results.json, results.csv and `accuracy.png/svg` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_json_and_csv(dir, self, &self.to_csv())?;
        let mut curves = vec![
            curve("current value", &self.current, |r| &r.accuracy),
            curve("final value (future)", &self.future, |r| &r.accuracy),
            curve("swapped semantics (control)", &self.swapped, |r| &r.accuracy),
        ];
        if let Some(random) = &self.random_init {
            curves.push(curve("random init: current value", random, |r| &r.accuracy));
        }
        let title = "program state: probe accuracy per layer (95% interval)".to_string();
        LayerPlot { title, x_label: "layer".into(), y_label: "test accuracy".into(), curves }
            .write(&dir.join("accuracy"))?;
        Ok(())
    }
}
