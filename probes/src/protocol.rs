//! The probing protocol of shared/reference/PROBING.md for one activation dataset: per hook point and seed, a
//! document-grouped split, the probe's accuracy with its penalty chosen on validation data, the majority-class
//! baseline, a control task (Hewitt & Liang: each token type gets a random label drawn from the task's label
//! distribution) and selectivity; summarised over seeds with a bootstrap 95% interval.

use std::collections::HashMap;

use models::Progress;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::dataset::{grouped_split, ActivationDataset};
use crate::error::{ProbeError, Result};
use crate::linear::{accuracy, select_rows, LogisticProbe};

/// Settings of a probing sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepConfig {
    /// One split, control assignment and fit per seed (at least 3 for an interval).
    pub seeds: Vec<u64>,
    /// Values of the inverse L2 strength `C` tried on validation data.
    pub grid: Vec<f64>,
    /// Fraction of documents for training.
    pub train: f64,
    /// Fraction of documents for validation (the rest is test).
    pub validation: f64,
    /// Bootstrap resamples for the intervals.
    pub bootstrap: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig { seeds: vec![0, 1, 2], grid: vec![0.001, 0.01, 0.1], train: 0.6, validation: 0.2, bootstrap: 1000 }
    }
}

/// A mean over seeds with a bootstrap 95% interval over the pooled test examples.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
    /// `C` chosen on validation data, per seed.
    pub chosen_c: Vec<f64>,
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

/// Runs the protocol at every hook point of `data`.
pub fn sweep(data: &ActivationDataset, config: &SweepConfig, progress: &dyn Progress) -> Result<Vec<PointResult>> {
    if config.seeds.is_empty() || config.grid.is_empty() {
        return Err(ProbeError::InvalidInput("a sweep needs at least one seed and one value of C".into()));
    }
    progress.begin("probing", (data.points.len() * config.seeds.len()) as u64);
    let mut results = Vec::with_capacity(data.points.len());
    for (point, features) in data.points.iter().zip(&data.features) {
        let (mut task_scores, mut control_scores, mut selectivity_scores) = (Vec::new(), Vec::new(), Vec::new());
        let (mut majority, mut chosen_c) = (0.0, Vec::new());
        for &seed in &config.seeds {
            progress.check()?;
            let split = grouped_split(&data.groups, config.train, config.validation, seed);
            let control = control_labels(&data.tokens, &data.labels, seed);
            let pick = |labels: &[usize], rows: &[usize]| -> Vec<usize> { rows.iter().map(|&r| labels[r]).collect() };
            let (x_train, x_val, x_test) = (
                select_rows(features, &split.train),
                select_rows(features, &split.validation),
                select_rows(features, &split.test),
            );
            let fit = |labels: &[usize]| -> Result<(Vec<f64>, f64)> {
                let (probe, _) = LogisticProbe::fit_with_validation(
                    (&x_train, &pick(labels, &split.train)),
                    (&x_val, &pick(labels, &split.validation)),
                    &config.grid,
                )?;
                let truth = pick(labels, &split.test);
                let scores =
                    probe.predict(&x_test).iter().zip(&truth).map(|(p, t)| f64::from(u8::from(p == t))).collect();
                Ok((scores, probe.c))
            };
            let (task, c) = fit(&data.labels)?;
            let (ctrl, _) = fit(&control)?;
            selectivity_scores.push(task.iter().zip(&ctrl).map(|(a, b)| a - b).collect());
            task_scores.push(task);
            control_scores.push(ctrl);
            chosen_c.push(c);
            let most = majority_class(&pick(&data.labels, &split.train));
            majority +=
                accuracy(&vec![most; split.test.len()], &pick(&data.labels, &split.test)) / config.seeds.len() as f64;
            progress.advance(1);
        }
        results.push(PointResult {
            point: point.to_string(),
            accuracy: summarise(&task_scores, config.bootstrap, 1),
            control: summarise(&control_scores, config.bootstrap, 2),
            selectivity: summarise(&selectivity_scores, config.bootstrap, 3),
            majority,
            chosen_c,
        });
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
