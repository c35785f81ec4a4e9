//! Probes fitted with tch, for large datasets or CUDA: many multinomial logistic regressions over one feature
//! matrix in a single batched L-BFGS (one probe per label set and value of `C`, sharing every matrix product),
//! and ridge regression in closed form for every penalty at once.
//!
//! The logistic objective of probe `k` is scikit-learn's divided by `C_k n`: the mean cross-entropy plus
//! `||W_k||^2 / (2 C_k n)`, the bias unpenalised; so `C` means what it means in scikit-learn.

use models::tch::{Device, Kind, Tensor};

use crate::error::{ProbeError, Result};

/// The mean and standard deviation `[1, d]` of the rows `fit_rows` of `x` `[n, d]` (constant features get
/// scale 1).
pub fn feature_scale(x: &Tensor, fit_rows: &Tensor) -> (Tensor, Tensor) {
    let rows = x.index_select(0, fit_rows);
    let std = rows.std_correction(0, 0, true);
    (rows.mean_dim(0, true, Kind::Float), std.where_self(&std.gt(1e-12), &std.ones_like()))
}

/// `x` `[n, d]` standardised with the [`feature_scale`] of the rows `fit_rows`.
pub fn standardize(x: &Tensor, fit_rows: &Tensor) -> Tensor {
    let (mean, std) = feature_scale(x, fit_rows);
    (x - mean) / std
}

/// Stopping rules of the L-BFGS optimiser.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsOptions {
    /// Most iterations.
    pub max_iterations: usize,
    /// Pairs of past steps kept.
    pub history: usize,
    /// Stop when the largest gradient entry falls below this.
    pub gradient_tolerance: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions { max_iterations: 50, history: 10, gradient_tolerance: 1e-4 }
    }
}

/// `k` multinomial logistic-regression probes fitted together on the same features.
#[derive(Debug)]
pub struct LogisticBatch {
    /// `[d, k * classes]`: probe `k`'s weights are columns `k * classes .. (k + 1) * classes`.
    weight: Tensor,
    /// `[k * classes]`.
    bias: Tensor,
    probes: i64,
    classes: i64,
    /// Iterations the optimiser took.
    pub iterations: usize,
}

/// The objective of every probe summed, and its gradient, at a parameter vector.
struct Objective<'a> {
    x: &'a Tensor,
    one_hot: Tensor,
    penalty: Tensor,
    d: i64,
    outputs: i64,
}

impl Objective<'_> {
    fn split(&self, theta: &Tensor) -> (Tensor, Tensor) {
        let w = theta.narrow(0, 0, self.d * self.outputs).view([self.d, self.outputs]);
        (w, theta.narrow(0, self.d * self.outputs, self.outputs))
    }

    fn value_and_gradient(&self, theta: &Tensor) -> (f64, Tensor) {
        let (w, b) = self.split(theta);
        let n = self.x.size()[0];
        let (probes, classes) = (self.one_hot.size()[1], self.one_hot.size()[2]);
        let logits = (self.x.matmul(&w) + &b).view([n, probes, classes]);
        let log_p = logits.log_softmax(-1, Kind::Float);
        let cross_entropy = -(&log_p * &self.one_hot).sum(Kind::Float) / n as f64;
        let penalty = (&w * &w * &self.penalty).sum(Kind::Float) / 2.0;
        let residual = (log_p.exp() - &self.one_hot).view([n, self.outputs]) / n as f64;
        let grad_w = self.x.tr().matmul(&residual) + &w * &self.penalty;
        let grad_b = residual.sum_dim_intlist(0, false, Kind::Float);
        let value = f64::try_from(cross_entropy + penalty).unwrap_or(f64::NAN);
        (value, Tensor::cat(&[grad_w.flatten(0, -1), grad_b], 0))
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from(a.dot(b)).unwrap_or(f64::NAN)
}

fn max_abs(t: &Tensor) -> f64 {
    f64::try_from(t.abs().max()).unwrap_or(f64::NAN)
}

/// Minimises a smooth convex function by L-BFGS with a backtracking (Armijo) line search, from `theta`.
/// Returns the minimiser and the iterations taken.
fn lbfgs(objective: &Objective, mut theta: Tensor, options: &LbfgsOptions) -> Result<(Tensor, usize)> {
    let (mut value, mut grad) = objective.value_and_gradient(&theta);
    let mut history: std::collections::VecDeque<(Tensor, Tensor, f64)> = Default::default();
    for iteration in 0..options.max_iterations {
        if !value.is_finite() {
            return Err(ProbeError::Fit(format!("the objective became {value} at iteration {iteration}")));
        }
        if max_abs(&grad) < options.gradient_tolerance {
            return Ok((theta, iteration));
        }
        // Two-loop recursion: direction = -H grad.
        let mut q = grad.copy();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot(s, &q);
            q -= y * alpha;
            alphas.push(alpha);
        }
        let gamma = history.back().map_or(1.0 / max_abs(&grad).max(1.0), |(s, y, _)| dot(s, y) / dot(y, y));
        let mut direction = q * gamma;
        for ((s, y, rho), alpha) in history.iter().zip(alphas.into_iter().rev()) {
            let beta = rho * dot(y, &direction);
            direction += s * (alpha - beta);
        }
        let direction = -direction;
        let slope = dot(&grad, &direction);
        if slope >= 0.0 {
            history.clear();
            continue;
        }
        let mut step = 1.0;
        let (next, next_value, next_grad) = loop {
            let candidate = &theta + &direction * step;
            let (v, g) = objective.value_and_gradient(&candidate);
            if v <= value + 1e-4 * step * slope || step < 1e-10 {
                break (candidate, v, g);
            }
            step *= 0.5;
        };
        let (s, y) = (&next - &theta, &next_grad - &grad);
        let sy = dot(&s, &y);
        let converged = (value - next_value).abs() <= 1e-10 * value.abs().max(1.0);
        if sy > 1e-12 {
            history.push_back((s, y, 1.0 / sy));
            if history.len() > options.history {
                history.pop_front();
            }
        }
        (theta, value, grad) = (next, next_value, next_grad);
        if converged {
            return Ok((theta, iteration + 1));
        }
    }
    Ok((theta, options.max_iterations))
}

impl LogisticBatch {
    /// Fits one probe per column of `labels` `[n, k]` (classes `0..classes`) on the standardised features `x`
    /// `[n, d]`, probe `k` with inverse L2 strength `c[k]`. `start` (the same shapes, e.g. the previous layer's
    /// probes) warm-starts the optimiser.
    pub fn fit(
        x: &Tensor,
        labels: &Tensor,
        classes: i64,
        c: &[f64],
        start: Option<&LogisticBatch>,
        options: &LbfgsOptions,
    ) -> Result<Self> {
        let _guard = models::tch::no_grad_guard();
        let (n, d) = (x.size()[0], x.size()[1]);
        let probes = c.len() as i64;
        if labels.size() != [n, probes] || n == 0 || classes < 2 {
            return Err(ProbeError::InvalidInput(format!(
                "labels {:?} for {n} rows and {probes} probes of {classes} classes",
                labels.size()
            )));
        }
        if c.iter().any(|&c| c <= 0.0 || !c.is_finite()) {
            return Err(ProbeError::InvalidInput(format!("C must be positive: {c:?}")));
        }
        let (device, outputs) = (x.device(), probes * classes);
        let one_hot = labels.to_device(device).one_hot(classes).to_kind(Kind::Float);
        let per_probe: Vec<f32> = c.iter().map(|&c| (1.0 / (c * n as f64)) as f32).collect();
        let penalty = Tensor::from_slice(&per_probe).to_device(device).repeat_interleave_self_int(classes, 0, None);
        let objective = Objective { x, one_hot, penalty, d, outputs };
        let theta = match start {
            Some(s) if s.weight.size() == [d, outputs] => Tensor::cat(&[s.weight.flatten(0, -1), s.bias.copy()], 0),
            _ => Tensor::zeros([(d + 1) * outputs], (Kind::Float, device)),
        };
        let (theta, iterations) = lbfgs(&objective, theta.to_device(device), options)?;
        let (weight, bias) = objective.split(&theta);
        Ok(LogisticBatch { weight, bias, probes, classes, iterations })
    }

    /// Logits `[n, k, classes]` of every probe.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        let _guard = models::tch::no_grad_guard();
        (x.matmul(&self.weight) + &self.bias).view([x.size()[0], self.probes, self.classes])
    }

    /// Predicted class `[n, k]` of every probe.
    pub fn predict(&self, x: &Tensor) -> Tensor {
        self.logits(x).argmax(-1, false)
    }

    /// Probe `k`'s weights `[d, classes]` in the standardised feature space.
    pub fn weights(&self, k: i64) -> Tensor {
        self.weight.narrow(1, k * self.classes, self.classes)
    }

    /// Per class, the direction `[classes, d]` in the raw feature space that raises that class's logit against
    /// the others' mean: probe `k`'s class weights minus their mean, divided by the features' `std` `[1, d]`.
    pub fn class_directions(&self, k: i64, std: &Tensor) -> Tensor {
        let w = self.weights(k);
        (&w - w.mean_dim(1, true, Kind::Float)).tr() / std
    }
}

/// Ridge regressions of every column of `y` `[n, t]` on the standardised features `x` `[n, d]` for each penalty
/// `alpha` (scikit-learn's `Ridge(alpha)` with an intercept), all from one eigendecomposition of `x^T x`.
pub struct RidgePath {
    /// `[d, t]` coefficients per penalty.
    pub coefficients: Vec<Tensor>,
    /// `[t]` intercepts (the mean of `y`; `x` is centred).
    pub intercept: Tensor,
    x_mean: Tensor,
}

impl RidgePath {
    /// Fits every penalty in `alphas`. Computed in f64.
    pub fn fit(x: &Tensor, y: &Tensor, alphas: &[f64]) -> Result<Self> {
        let _guard = models::tch::no_grad_guard();
        if x.size()[0] != y.size()[0] || x.size()[0] == 0 {
            return Err(ProbeError::InvalidInput(format!("features {:?} and targets {:?}", x.size(), y.size())));
        }
        let x = x.to_kind(Kind::Double);
        let y = y.to_kind(Kind::Double);
        let x_mean = x.mean_dim(0, true, Kind::Double);
        let intercept = y.mean_dim(0, false, Kind::Double);
        let xc = &x - &x_mean;
        let (eigenvalues, q) = xc.tr().matmul(&xc).linalg_eigh("L");
        let projected = q.tr().matmul(&xc.tr().matmul(&(&y - &intercept)));
        let coefficients = alphas.iter().map(|&a| q.matmul(&(&projected / (&eigenvalues + a).unsqueeze(1)))).collect();
        Ok(RidgePath { coefficients, intercept, x_mean })
    }

    /// Predictions `[n, t]` with penalty number `which`.
    pub fn predict(&self, x: &Tensor, which: usize) -> Tensor {
        let _guard = models::tch::no_grad_guard();
        (x.to_kind(Kind::Double) - &self.x_mean).matmul(&self.coefficients[which]) + &self.intercept
    }
}

/// The coefficient of determination of each column of `predicted` against `truth` `[n, t]`.
pub fn r_squared(predicted: &Tensor, truth: &Tensor) -> Vec<f64> {
    let truth = truth.to_kind(Kind::Double);
    let residual = (predicted.to_kind(Kind::Double) - &truth).square().sum_dim_intlist(0, false, Kind::Double);
    let total = (&truth - truth.mean_dim(0, true, Kind::Double)).square().sum_dim_intlist(0, false, Kind::Double);
    let ratio = residual / total.clamp_min(1e-300);
    Vec::<f64>::try_from((-ratio + 1.0).to_device(Device::Cpu)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: i64, seed: i64) -> (Tensor, Tensor) {
        models::tch::manual_seed(seed);
        let labels = Tensor::randint(3, [n], (Kind::Int64, Device::Cpu));
        let centers = Tensor::from_slice(&[0.0f32, 0.0, 4.0, 0.0, 0.0, 4.0]).view([3, 2]);
        let x = centers.index_select(0, &labels) + Tensor::randn([n, 2], (Kind::Float, Device::Cpu));
        (x, labels)
    }

    /// The fitted probe satisfies the optimality condition of its objective: the gradient vanishes, which
    /// for the bias means predicted and true class frequencies agree.
    #[test]
    fn batched_probes_reach_the_optimum_of_each_objective() {
        let (x, y) = blobs(600, 0);
        let labels = Tensor::stack(&[&y, &y], 1);
        // Run to convergence: the default stops at 50 iterations, where the gradient is only about 1e-4.
        let converged = LbfgsOptions { max_iterations: 500, gradient_tolerance: 1e-7, ..LbfgsOptions::default() };
        let fit = LogisticBatch::fit(&x, &labels, 3, &[0.01, 10.0], None, &converged).unwrap();
        let p = fit.logits(&x).softmax(-1, Kind::Float);
        let observed = y.one_hot(3).to_kind(Kind::Float).mean_dim(0, false, Kind::Float);
        for k in 0..2 {
            let predicted = p.select(1, k).mean_dim(0, false, Kind::Float);
            let gap = max_abs(&(predicted - &observed));
            assert!(gap < 1e-4, "class frequencies differ by {gap} for probe {k}");
        }
        let accuracy = |k: i64| {
            f64::try_from(fit.predict(&x).select(1, k).eq_tensor(&y).to_kind(Kind::Float).mean(Kind::Float)).unwrap()
        };
        assert!(accuracy(1) > 0.9, "{}", accuracy(1));
        // A stronger penalty gives smaller weights.
        assert!(f64::try_from(fit.weights(0).norm()).unwrap() < f64::try_from(fit.weights(1).norm()).unwrap());
    }

    #[test]
    fn ridge_matches_the_normal_equations() {
        let (x, _) = blobs(50, 1);
        let y = x.select(1, 0).unsqueeze(1) * 2.0 - x.select(1, 1).unsqueeze(1) + 3.0;
        let path = RidgePath::fit(&x, &y, &[0.0, 5.0]).unwrap();
        // alpha = 0 recovers the exact linear map (up to the f32 rounding of y).
        assert!(max_abs(&(path.predict(&x, 0) - y.to_kind(Kind::Double))) < 1e-5);
        // alpha = 5 solves (Xc^T Xc + 5 I) w = Xc^T (y - mean y).
        let xc = x.to_kind(Kind::Double) - x.to_kind(Kind::Double).mean_dim(0, true, Kind::Double);
        let yc = y.to_kind(Kind::Double) - y.to_kind(Kind::Double).mean(Kind::Double);
        let lhs = xc.tr().matmul(&xc) + Tensor::eye(2, (Kind::Double, Device::Cpu)) * 5.0;
        let expected = Tensor::linalg_solve(&lhs, &xc.tr().matmul(&yc), true);
        assert!(max_abs(&(&path.coefficients[1] - expected)) < 1e-10);
        assert!(r_squared(&path.predict(&x, 0), &y)[0] > 0.999999);
    }

    #[test]
    fn bad_shapes_and_penalties_are_refused() {
        let (x, y) = blobs(20, 2);
        let options = LbfgsOptions::default();
        assert!(LogisticBatch::fit(&x, &y.unsqueeze(1), 3, &[1.0, 1.0], None, &options).is_err());
        assert!(LogisticBatch::fit(&x, &y.unsqueeze(1), 3, &[0.0], None, &options).is_err());
        assert!(RidgePath::fit(&x, &y.narrow(0, 0, 5).unsqueeze(1), &[1.0]).is_err());
    }
}
