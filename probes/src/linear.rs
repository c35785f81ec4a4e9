//! Linear probes: multinomial logistic regression with an L2 penalty (linfa-logistic) on standardised
//! features, the penalty chosen on validation data.

use linfa::prelude::*;
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2, Axis};

use crate::error::{ProbeError, Result};

/// Per-feature mean and standard deviation of the training rows.
#[derive(Debug, Clone)]
pub struct Standardizer {
    mean: Array1<f64>,
    scale: Array1<f64>,
}

impl Standardizer {
    /// Fits to the rows of `x`; constant features keep scale 1.
    pub fn fit(x: &Array2<f64>) -> Self {
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()));
        let scale = x.std_axis(Axis(0), 0.0).mapv(|s| if s > 1e-12 { s } else { 1.0 });
        Standardizer { mean, scale }
    }

    /// `(x - mean) / scale`.
    pub fn apply(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &self.mean) / &self.scale
    }
}

/// The rows `rows` of `x` as f64.
pub fn select_rows(x: &Array2<f32>, rows: &[usize]) -> Array2<f64> {
    x.select(Axis(0), rows).mapv(f64::from)
}

/// A fitted multinomial logistic-regression probe.
pub struct LogisticProbe {
    standardizer: Standardizer,
    fitted: MultiFittedLogisticRegression<f64, usize>,
    /// Inverse regularisation strength, as scikit-learn's `C` (linfa's `alpha` is `1 / C`).
    pub c: f64,
}

impl LogisticProbe {
    /// Fits on `x` (rows) and `y` with inverse L2 strength `c`, after standardising the features.
    pub fn fit(x: &Array2<f64>, y: &[usize], c: f64) -> Result<Self> {
        if x.nrows() != y.len() || x.nrows() == 0 {
            return Err(ProbeError::InvalidInput(format!("{} rows of features and {} labels", x.nrows(), y.len())));
        }
        if y.iter().all(|&l| l == y[0]) {
            return Err(ProbeError::InvalidInput("the training labels have one class only".into()));
        }
        let standardizer = Standardizer::fit(x);
        let dataset = Dataset::new(standardizer.apply(x), Array1::from_vec(y.to_vec()));
        let fitted = MultiLogisticRegression::default()
            .alpha(1.0 / c)
            .max_iterations(300)
            .fit(&dataset)
            .map_err(|e| ProbeError::Fit(e.to_string()))?;
        Ok(LogisticProbe { standardizer, fitted, c })
    }

    /// Fits one probe per value of `grid` and keeps the one with the best validation accuracy.
    pub fn fit_with_validation(
        (x_train, y_train): (&Array2<f64>, &[usize]),
        (x_val, y_val): (&Array2<f64>, &[usize]),
        grid: &[f64],
    ) -> Result<(Self, f64)> {
        let mut best: Option<(Self, f64)> = None;
        for &c in grid {
            let probe = Self::fit(x_train, y_train, c)?;
            let accuracy = probe.accuracy(x_val, y_val);
            if best.as_ref().is_none_or(|(_, a)| accuracy > *a) {
                best = Some((probe, accuracy));
            }
        }
        best.ok_or_else(|| ProbeError::InvalidInput("empty regularisation grid".into()))
    }

    /// Predicted class of each row.
    pub fn predict(&self, x: &Array2<f64>) -> Vec<usize> {
        self.fitted.predict(&self.standardizer.apply(x)).to_vec()
    }

    /// Fraction of rows predicted correctly.
    pub fn accuracy(&self, x: &Array2<f64>, y: &[usize]) -> f64 {
        accuracy(&self.predict(x), y)
    }
}

/// Fraction of equal entries.
pub fn accuracy(predicted: &[usize], truth: &[usize]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_classes_are_learned_and_one_class_is_refused() {
        // Three well separated clusters in 2-D.
        let centers = [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)];
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for (label, (cx, cy)) in centers.iter().enumerate() {
            for k in 0..20 {
                let jitter = (k as f64 * 0.37).sin() * 0.5;
                rows.extend([cx + jitter, cy - jitter]);
                labels.push(label);
            }
        }
        let x = Array2::from_shape_vec((60, 2), rows).unwrap();
        let probe = LogisticProbe::fit(&x, &labels, 1.0).unwrap();
        assert_eq!(probe.accuracy(&x, &labels), 1.0);
        assert!(LogisticProbe::fit(&x, &vec![1; 60], 1.0).is_err());
    }
}
