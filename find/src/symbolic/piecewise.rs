//! Piecewise structure: a breakpoint found from the samples (where the output jumps, where its slope changes
//! most, or where the best single model misses most), each side fitted by the symbolic search over small forms.

use super::form::{number, Form};
use super::{criterion, search, Effort, Fitted};

/// An observation (x, f(x)).
type Point = (f64, f64);

/// Two forms joined at a breakpoint: `left` below `at`, `right` from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Piecewise {
    /// The breakpoint.
    pub at: f64,
    /// The form below it.
    pub left: Fitted,
    /// The form from it.
    pub right: Fitted,
}

impl Piecewise {
    /// The function at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        if x < self.at {
            self.left.eval(&[x])[0]
        } else {
            self.right.eval(&[x])[0]
        }
    }

    /// As code of the expression language.
    pub fn code(&self) -> String {
        format!("if(x < {}, {}, {})", number(self.at), self.left.code(), self.right.code())
    }

    /// Its parsimony criterion on `points` (residual floor `floor`): both pieces' independent constants and the
    /// breakpoint; both pieces' complexity and the `if`.
    pub fn criterion(&self, points: &[(f64, f64)], floor: f64) -> f64 {
        let rss: f64 = points.iter().map(|&(x, y)| (y - self.eval(x)).powi(2)).sum();
        let side = |below: bool| points.iter().filter(|p| (p.0 < self.at) == below).map(|p| p.0).collect::<Vec<f64>>();
        let parameters =
            self.left.effective_parameters(&side(true)) + self.right.effective_parameters(&side(false)) + 1;
        let complexity = self.left.form.complexity() + self.right.form.complexity() + 1.0;
        criterion(if rss.is_finite() { rss } else { f64::INFINITY }, floor, points.len(), parameters, complexity)
    }
}

/// Up to `count` candidate breakpoints of sorted `points`, at least 2 apart: the midpoints of the largest jumps in
/// the output, of the largest changes of slope, and of the largest misses of `model`.
pub fn breakpoints(points: &[(f64, f64)], model: impl Fn(f64) -> f64, count: usize) -> Vec<f64> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let slope = |i: usize| (sorted[i].1 - sorted[i - 1].1) / (sorted[i].0 - sorted[i - 1].0).max(1e-12);
    let ranked = |score: &dyn Fn(usize) -> f64, from: usize| {
        let mut at: Vec<(f64, f64)> = (from..sorted.len())
            .map(|i| (0.5 * (sorted[i - 1].0 + sorted[i].0), score(i)))
            .filter(|s| s.1.is_finite())
            .collect();
        at.sort_by(|a, b| b.1.total_cmp(&a.1));
        at.into_iter().map(|a| a.0).collect::<Vec<f64>>()
    };
    let jumps = ranked(&|i| (sorted[i].1 - sorted[i - 1].1).abs(), 1);
    let kinks = ranked(&|i| (slope(i) - slope(i - 1)).abs(), 2);
    let misses =
        ranked(&|i| (sorted[i].1 - model(sorted[i].0)).abs().max((sorted[i - 1].1 - model(sorted[i - 1].0)).abs()), 1);
    let mut chosen: Vec<f64> = Vec::new();
    loop {
        let before = chosen.len();
        for list in [&jumps, &kinks, &misses] {
            let fresh = list.iter().copied().find(|x| chosen.iter().all(|c| (c - x).abs() >= 2.0));
            if let Some(x) = fresh.filter(|_| chosen.len() < count) {
                chosen.push(x);
            }
        }
        if chosen.len() == before {
            return chosen;
        }
    }
}

/// The best piecewise model of `points` over the breakpoints `at` (each side with at least 6 points), its pieces
/// the best `forms` of the symbolic search; `None` when no breakpoint leaves 6 points on each side.
pub fn fit_piecewise(
    points: &[(f64, f64)],
    at: &[f64],
    forms: &[Form],
    effort: Effort,
    seed: u64,
    floor: f64,
) -> Option<Piecewise> {
    let mut best: Option<(f64, Piecewise)> = None;
    for &b in at {
        let (left, right): (Vec<Point>, Vec<Point>) = points.iter().partition(|p| p.0 < b);
        if left.len() < 6 || right.len() < 6 {
            continue;
        }
        let (Some(l), Some(r)) = (
            search(&left, forms, effort, seed).into_iter().next(),
            search(&right, forms, effort, seed).into_iter().next(),
        ) else {
            continue;
        };
        let piecewise = Piecewise { at: b, left: l, right: r };
        let score = piecewise.criterion(points, floor);
        if best.as_ref().is_none_or(|(s, _)| score < *s) {
            best = Some((score, piecewise));
        }
    }
    best.map(|b| b.1)
}

#[cfg(test)]
mod tests {
    use super::super::{forms, residual_floor};
    use super::*;

    #[test]
    fn a_function_that_changes_form_at_a_breakpoint_is_fitted_in_two_pieces() {
        // sin below 20, a line from there: no single small form writes it.
        let f = |x: f64| if x < 20.0 { 5.0 * (0.3 * x).sin() } else { 0.5 * x - 3.0 };
        let points: Vec<(f64, f64)> = (0..200).map(|i| -128.0 + 1.28 * i as f64 + 0.3).map(|x| (x, f(x))).collect();
        let at = breakpoints(&points, |_| 0.0, 4);
        assert!(at.iter().any(|b| (b - 20.0).abs() < 1.5), "{at:?}");
        let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
        let fit = fit_piecewise(&points, &at, &forms(2, 3), Effort::default(), 0, residual_floor(&ys)).unwrap();
        assert!((fit.at - 20.0).abs() < 1.5, "{}", fit.code());
        for x in [-100.3, -3.1, 19.0, 21.0, 90.7] {
            assert!((fit.eval(x) - f(x)).abs() < 1e-4 * f(x).abs().max(1.0), "{} at {x}", fit.code());
        }
        let code = crate::expr::Expr::parse(&fit.code()).unwrap();
        assert!((code.eval_num(90.7).unwrap() - f(90.7)).abs() < 1e-4);
    }
}
