//! The probing protocol of shared/reference/PROBING.md for one activation dataset: per hook point and seed, a
//! document-grouped split, the probe's accuracy with its penalty chosen on validation data, the majority-class
//! baseline, a control task (Hewitt & Liang: each token type gets a random label drawn from the task's label
//! distribution) and selectivity; summarised over seeds with a bootstrap 95% interval.

use std::collections::HashMap;

use models::tch::{Device, Kind, Tensor};
use models::Progress;
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dataset::{grouped_split, to_tensor, ActivationDataset, Split};
use crate::error::{ProbeError, Result};
use crate::linear::{accuracy, LogisticProbe};
use crate::trainer::{self, r_squared, LbfgsOptions, LogisticBatch, RidgePath};

/// Which probe a sweep fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Multinomial logistic regression with L2, fitted by the batched tch trainer (every seed's task and
    /// control probes for every `C` in one L-BFGS run), warm-started from the previous hook point.
    #[default]
    Logistic,
    /// The same model fitted by linfa-logistic, one probe at a time (slow; for cross-checking).
    LogisticLinfa,
    /// Ridge regression on the label as a number (ordinal targets such as depth or a variable's value);
    /// accuracy is that of the rounded prediction, and R^2 is reported too.
    Ridge,
}

/// Settings of a probing sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepConfig {
    /// One split, control assignment and fit per seed (at least 3 for an interval).
    pub seeds: Vec<u64>,
    /// The probe.
    pub probe: ProbeKind,
    /// Penalties tried on validation data: scikit-learn's `C` for logistic probes, `alpha` for ridge.
    pub grid: Vec<f64>,
    /// Fraction of documents for training.
    pub train: f64,
    /// Fraction of documents for validation (the rest is test).
    pub validation: f64,
    /// Bootstrap resamples for the intervals.
    pub bootstrap: usize,
    /// Optimiser settings of the tch logistic trainer.
    pub lbfgs: LbfgsOptions,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig::for_probe(ProbeKind::Logistic)
    }
}

impl SweepConfig {
    /// Three seeds, a 60/20/20 split, and the penalty grid that suits `probe`.
    pub fn for_probe(probe: ProbeKind) -> Self {
        let grid = match probe {
            ProbeKind::Ridge => vec![1.0, 100.0, 10000.0],
            _ => vec![0.001, 0.01, 0.1],
        };
        SweepConfig {
            seeds: vec![0, 1, 2],
            probe,
            grid,
            train: 0.6,
            validation: 0.2,
            bootstrap: 1000,
            lbfgs: LbfgsOptions::default(),
        }
    }
}

/// A mean over seeds with a bootstrap 95% interval over the pooled test examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Mean over seeds.
    pub mean: f64,
    /// 2.5th percentile of the bootstrap.
    pub low: f64,
    /// 97.5th percentile of the bootstrap.
    pub high: f64,
    /// The value of each seed.
    pub per_seed: Vec<f64>,
}

/// Probe results at one hook point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResult {
    /// TransformerLens name of the hook point.
    pub point: String,
    /// Test accuracy on the task.
    pub accuracy: Summary,
    /// Test accuracy on the control task.
    pub control: Summary,
    /// Accuracy minus control accuracy.
    pub selectivity: Summary,
    /// Test accuracy of always predicting the training set's most frequent class (mean over seeds).
    pub majority: f64,
    /// Penalty (`C` or `alpha`) chosen on validation data for the task, per seed.
    pub chosen_penalty: Vec<f64>,
    /// Test R^2 of a ridge probe (mean over seeds).
    pub r2: Option<f64>,
}

/// Control labels: every token type gets one label, drawn from the empirical distribution of `labels`.
pub fn control_labels(tokens: &[u32], labels: &[usize], seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut assigned: HashMap<u32, usize> = HashMap::new();
    tokens.iter().map(|t| *assigned.entry(*t).or_insert_with(|| labels[rng.gen_range(0..labels.len())])).collect()
}

fn majority_class(labels: &[usize]) -> usize {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    labels.iter().for_each(|&l| *counts.entry(l).or_default() += 1);
    counts.into_iter().max_by_key(|&(label, n)| (n, std::cmp::Reverse(label))).map_or(0, |(label, _)| label)
}

/// Mean over seeds, with a percentile bootstrap over the pooled per-example scores of every seed.
fn summarise(per_seed_scores: &[Vec<f64>], resamples: usize, seed: u64) -> Summary {
    let per_seed: Vec<f64> = per_seed_scores.iter().map(|s| s.iter().sum::<f64>() / s.len().max(1) as f64).collect();
    let mean = per_seed.iter().sum::<f64>() / per_seed.len().max(1) as f64;
    let pooled: Vec<f64> = per_seed_scores.concat();
    if pooled.is_empty() || resamples == 0 {
        return Summary { mean, low: mean, high: mean, per_seed };
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..pooled.len()).map(|_| pooled[rng.gen_range(0..pooled.len())]).sum::<f64>() / pooled.len() as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Summary { mean, low: at(0.025), high: at(0.975), per_seed }
}

/// One seed's outcome at one hook point.
struct SeedOutcome {
    /// 1 or 0 per test example, on the task and on the control task.
    task: Vec<f64>,
    control: Vec<f64>,
    /// Penalty chosen on validation for the task.
    penalty: f64,
    /// Test R^2 of a ridge probe.
    r2: Option<f64>,
}

/// Row indices as a tensor on `device`.
fn index(rows: &[usize], device: Device) -> Tensor {
    Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>()).to_device(device)
}

/// `labels[rows]` as an i64 tensor on `device`.
fn label_tensor(labels: &[usize], rows: &[usize], device: Device) -> Tensor {
    Tensor::from_slice(&rows.iter().map(|&r| labels[r] as i64).collect::<Vec<_>>()).to_device(device)
}

/// For each of `groups` interleaved label sets, the grid position whose column scores best.
fn best_per_set(scores: &[f64], sets: usize) -> Vec<usize> {
    (0..sets)
        .map(|set| {
            let grid = scores.len() / sets;
            (0..grid).max_by(|&a, &b| scores[a * sets + set].total_cmp(&scores[b * sets + set])).unwrap_or(0)
        })
        .collect()
}

/// Fraction correct of each column of `predicted` against `truth` `[n, k]`.
fn column_accuracy(predicted: &Tensor, truth: &Tensor) -> Vec<f64> {
    let hits = predicted.eq_tensor(truth).to_kind(Kind::Double).mean_dim(0, false, Kind::Double);
    Vec::<f64>::try_from(hits.to_device(Device::Cpu)).unwrap_or_default()
}

/// 1 or 0 per row for column `k`.
fn hits(predicted: &Tensor, truth: &Tensor, k: i64) -> Vec<f64> {
    let h = predicted.select(1, k).eq_tensor(&truth.select(1, k)).to_kind(Kind::Double);
    Vec::<f64>::try_from(h.to_device(Device::Cpu)).unwrap_or_default()
}

/// The labelled rows of one seed: standardised features and (task, control) labels of each part.
struct SeedData {
    x: [Tensor; 3],
    y: [Tensor; 3],
    classes: i64,
}

impl SeedData {
    fn new(features: &Tensor, task: &[usize], control: &[usize], split: &Split, classes: usize) -> Self {
        let device = features.device();
        let parts = [&split.train, &split.validation, &split.test];
        let xs = trainer::standardize(features, &index(&split.train, device));
        let x = parts.map(|rows| xs.index_select(0, &index(rows, device)));
        let y = parts
            .map(|rows| Tensor::stack(&[label_tensor(task, rows, device), label_tensor(control, rows, device)], 1));
        SeedData { x, y, classes: classes as i64 }
    }

    /// Batched tch logistic probes: for each `C`, one on the task and one on the control labels.
    fn logistic(&self, config: &SweepConfig, warm: &mut Option<LogisticBatch>) -> Result<SeedOutcome> {
        let [x_train, x_val, x_test] = &self.x;
        let [y_train, y_val, y_test] = &self.y;
        let grid = config.grid.len() as i64;
        let c: Vec<f64> = config.grid.iter().flat_map(|&c| [c, c]).collect();
        let fit =
            LogisticBatch::fit(x_train, &y_train.repeat([1, grid]), self.classes, &c, warm.as_ref(), &config.lbfgs)?;
        let best = best_per_set(&column_accuracy(&fit.predict(x_val), &y_val.repeat([1, grid])), 2);
        let predicted = fit.predict(x_test);
        let chosen = |set: usize| (best[set] * 2 + set) as i64;
        let picked = Tensor::stack(&[predicted.select(1, chosen(0)), predicted.select(1, chosen(1))], 1);
        *warm = Some(fit);
        Ok(SeedOutcome {
            task: hits(&picked, y_test, 0),
            control: hits(&picked, y_test, 1),
            penalty: config.grid[best[0]],
            r2: None,
        })
    }

    /// One linfa probe per label set and `C`.
    fn logistic_linfa(&self, config: &SweepConfig) -> Result<SeedOutcome> {
        let to_array = |t: &Tensor| -> Result<Array2<f64>> {
            let (n, d) = (t.size()[0] as usize, t.size()[1] as usize);
            let v = Vec::<f64>::try_from(t.to_kind(Kind::Double).to_device(Device::Cpu).flatten(0, -1))
                .map_err(models::ModelError::from)?;
            Array2::from_shape_vec((n, d), v).map_err(ProbeError::from)
        };
        let column = |t: &Tensor, k: i64| -> Vec<usize> {
            Vec::<i64>::try_from(t.select(1, k).to_device(Device::Cpu))
                .unwrap_or_default()
                .iter()
                .map(|&v| v as usize)
                .collect()
        };
        let [x_train, x_val, x_test] = [to_array(&self.x[0])?, to_array(&self.x[1])?, to_array(&self.x[2])?];
        let mut outcome = SeedOutcome { task: Vec::new(), control: Vec::new(), penalty: 0.0, r2: None };
        for k in 0..2 {
            let (probe, _) = LogisticProbe::fit_with_validation(
                (&x_train, &column(&self.y[0], k)),
                (&x_val, &column(&self.y[1], k)),
                &config.grid,
            )?;
            let truth = column(&self.y[2], k);
            let scores = probe.predict(&x_test).iter().zip(&truth).map(|(p, t)| f64::from(u8::from(p == t))).collect();
            if k == 0 {
                (outcome.task, outcome.penalty) = (scores, probe.c);
            } else {
                outcome.control = scores;
            }
        }
        Ok(outcome)
    }

    /// Ridge probes on the labels as numbers; a prediction is right when it rounds to the label.
    fn ridge(&self, config: &SweepConfig) -> Result<SeedOutcome> {
        let [x_train, x_val, x_test] = &self.x;
        let [y_train, y_val, y_test] = &self.y;
        let path = RidgePath::fit(x_train, &y_train.to_kind(Kind::Double), &config.grid)?;
        let val_r2: Vec<f64> = (0..config.grid.len()).flat_map(|a| r_squared(&path.predict(x_val, a), y_val)).collect();
        let best = best_per_set(&val_r2, 2);
        let predict = |set: usize| path.predict(x_test, best[set]).select(1, set as i64);
        let predicted = Tensor::stack(&[predict(0), predict(1)], 1);
        let rounded = predicted.round().clamp(0.0, (self.classes - 1) as f64).to_kind(Kind::Int64);
        Ok(SeedOutcome {
            task: hits(&rounded, y_test, 0),
            control: hits(&rounded, y_test, 1),
            penalty: config.grid[best[0]],
            r2: r_squared(&predicted, y_test).first().copied(),
        })
    }
}

/// Runs the protocol at every hook point of `data`, fitting on `device`.
pub fn sweep(data: &ActivationDataset, config: &SweepConfig, progress: &dyn Progress) -> Result<Vec<PointResult>> {
    sweep_each(data, config, progress, |_| {})
}

/// [`sweep`], handing each hook point's result to `on_point` as soon as it is done (for live views).
pub fn sweep_each(
    data: &ActivationDataset,
    config: &SweepConfig,
    progress: &dyn Progress,
    mut on_point: impl FnMut(&PointResult),
) -> Result<Vec<PointResult>> {
    if config.seeds.is_empty() || config.grid.is_empty() {
        return Err(ProbeError::InvalidInput("a sweep needs at least one seed and one penalty".into()));
    }
    if data.labels.is_empty() {
        return Err(ProbeError::InvalidInput("the dataset has no labelled tokens".into()));
    }
    let device = models::cuda::device_if_available();
    let classes = data.labels.iter().max().map_or(1, |m| m + 1).max(2);
    progress.begin("probing", (data.points.len() * config.seeds.len()) as u64);
    let splits: Vec<(Split, Vec<usize>)> = config
        .seeds
        .iter()
        .map(|&seed| {
            (
                grouped_split(&data.groups, config.train, config.validation, seed),
                control_labels(&data.tokens, &data.labels, seed),
            )
        })
        .collect();
    if splits.iter().any(|(s, _)| s.train.is_empty() || s.validation.is_empty() || s.test.is_empty()) {
        let documents = data.groups.iter().collect::<std::collections::BTreeSet<_>>().len();
        return Err(ProbeError::InvalidInput(format!(
            "{documents} documents are too few for a train, validation and test split by document; read more files"
        )));
    }
    let mut warm: Vec<Option<LogisticBatch>> = config.seeds.iter().map(|_| None).collect();
    let mut results = Vec::with_capacity(data.points.len());
    for (point, features) in data.points.iter().zip(&data.features) {
        let features = to_tensor(features, device);
        let mut outcomes = Vec::with_capacity(config.seeds.len());
        let mut majority = 0.0;
        for ((split, control), warm) in splits.iter().zip(warm.iter_mut()) {
            progress.check()?;
            let seed_data = SeedData::new(&features, &data.labels, control, split, classes);
            outcomes.push(match config.probe {
                ProbeKind::Logistic => seed_data.logistic(config, warm)?,
                ProbeKind::LogisticLinfa => seed_data.logistic_linfa(config)?,
                ProbeKind::Ridge => seed_data.ridge(config)?,
            });
            let pick = |rows: &[usize]| -> Vec<usize> { rows.iter().map(|&r| data.labels[r]).collect() };
            let most = majority_class(&pick(&split.train));
            majority += accuracy(&vec![most; split.test.len()], &pick(&split.test)) / config.seeds.len() as f64;
            progress.advance(1);
        }
        let task: Vec<Vec<f64>> = outcomes.iter().map(|o| o.task.clone()).collect();
        let control: Vec<Vec<f64>> = outcomes.iter().map(|o| o.control.clone()).collect();
        let selectivity: Vec<Vec<f64>> =
            outcomes.iter().map(|o| o.task.iter().zip(&o.control).map(|(a, b)| a - b).collect()).collect();
        let r2: Vec<f64> = outcomes.iter().filter_map(|o| o.r2).collect();
        let result = PointResult {
            point: point.to_string(),
            accuracy: summarise(&task, config.bootstrap, 1),
            control: summarise(&control, config.bootstrap, 2),
            selectivity: summarise(&selectivity, config.bootstrap, 3),
            majority,
            chosen_penalty: outcomes.iter().map(|o| o.penalty).collect(),
            r2: (!r2.is_empty()).then(|| r2.iter().sum::<f64>() / r2.len() as f64),
        };
        on_point(&result);
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::{HookPoint, Silent};
    use ndarray::Array2;

    #[test]
    fn control_labels_are_fixed_per_token_type_and_follow_the_label_distribution() {
        let tokens: Vec<u32> = (0..4000).map(|i| i % 400).collect();
        let labels: Vec<usize> = (0..4000).map(|i| usize::from(i % 4 == 0)).collect();
        let control = control_labels(&tokens, &labels, 7);
        for (i, &t) in tokens.iter().enumerate() {
            assert_eq!(control[i], control[t as usize], "token type {t} has two control labels");
        }
        let ones = control[..400].iter().filter(|&&l| l == 1).count();
        assert!((60..140).contains(&ones), "{ones} of 400 types got label 1, expected about 100");
    }

    #[test]
    fn bootstrap_interval_brackets_the_mean() {
        let scores = vec![vec![1.0, 0.0, 1.0, 1.0], vec![1.0, 1.0, 0.0, 1.0], vec![0.0, 1.0, 1.0, 1.0]];
        let s = summarise(&scores, 2000, 0);
        assert!((s.mean - 0.75).abs() < 1e-12);
        assert!(s.low < 0.75 && s.high > 0.75 && s.low >= 0.0 && s.high <= 1.0, "{s:?}");
        assert_eq!(s.per_seed, [0.75, 0.75, 0.75]);
    }

    /// Three documents leave the test split empty: that is an error, not an accuracy of zero.
    #[test]
    fn too_few_documents_for_a_split_are_an_error() {
        let data = ActivationDataset {
            points: vec![HookPoint::ResidPost(0)],
            features: vec![Array2::from_shape_fn((30, 2), |(i, j)| (i * j) as f32)],
            labels: (0..30).map(|i| i % 2).collect(),
            groups: (0..30).map(|i| i / 10).collect(),
            tokens: (0..30).collect(),
        };
        let error = sweep(&data, &SweepConfig::default(), &Silent).unwrap_err().to_string();
        assert!(error.contains("3 documents are too few"), "{error}");
    }

    /// Labels written into one feature are found, and a control task over random token types is not.
    #[test]
    fn selectivity_is_high_when_the_feature_encodes_the_label() {
        let n = 600;
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 / 3) % 3).collect();
        let tokens: Vec<u32> = (0..n as u32).map(|i| i % 150).collect();
        let x = Array2::from_shape_fn((n, 4), |(i, j)| {
            if j == 0 {
                labels[i] as f32
            } else {
                ((i * 31 + j * 17) % 13) as f32 / 13.0
            }
        });
        let data = ActivationDataset {
            points: vec![HookPoint::ResidPost(0)],
            features: vec![x],
            labels,
            groups: (0..n).map(|i| i / 20).collect(),
            tokens,
        };
        let result = sweep(&data, &SweepConfig { grid: vec![1.0], bootstrap: 200, ..Default::default() }, &Silent)
            .unwrap()
            .remove(0);
        assert!(result.accuracy.mean > 0.95, "{result:?}");
        assert!(result.control.mean < 0.6, "{result:?}");
        assert!(result.selectivity.mean > 0.35 && (result.majority - 1.0 / 3.0).abs() < 0.1, "{result:?}");
    }
}
