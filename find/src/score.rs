//! FIND's scores: numeric code is right when its NMSE against the ground truth at x = i + 0.5, i in
//! [-128, 128), is below 0.1 (points where the truth is not finite are skipped; code that fails scores 0);
//! string code scores the fraction of exact matches on 10 held-out inputs; a reported corrupted interval
//! scores its overlap (intersection over union) with the true one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::expr::Expr;
use super::session::{Answer, BlackBox};
use super::suite::{Category, FunctionSpec};
use super::value::Value;

/// How one answer scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// 1 or 0 for numeric functions (NMSE < 0.1), the fraction of exact matches for strings.
    pub value: f64,
    /// The NMSE of numeric code.
    pub nmse: Option<f64>,
    /// Intersection over union of the reported and the true corrupted interval (0 when none was reported).
    pub interval_overlap: Option<f64>,
    /// Why the code could not be scored (it did not parse or run).
    pub error: Option<String>,
}

/// Intersection over union of two intervals.
pub fn interval_overlap(a: (f64, f64), b: (f64, f64)) -> f64 {
    let inter = (a.1.min(b.1) - a.0.max(b.0)).max(0.0);
    let union = (a.1.max(b.1) - a.0.min(b.0)).max(1e-12);
    inter / union
}

/// Scores `answer` for `spec`.
pub fn score(spec: &FunctionSpec, answer: &Answer) -> Score {
    let interval_overlap =
        spec.corruption.map(|c| answer.interval.map_or(0.0, |i| interval_overlap(i, (c.low, c.high))));
    let failed = |error: String| Score { value: 0.0, nmse: None, interval_overlap, error: Some(error) };
    let code = match Expr::parse(&answer.code) {
        Ok(code) => code,
        Err(e) => return failed(format!("the code {:?} does not parse: {e}", answer.code)),
    };
    if spec.category.is_string() {
        let mut hits = 0;
        for input in &spec.test_inputs {
            let (Ok(want), Ok(got)) = (spec.call_string(input), code.eval_str(input)) else { continue };
            hits += usize::from(want == got);
        }
        return Score {
            value: hits as f64 / spec.test_inputs.len().max(1) as f64,
            nmse: None,
            interval_overlap,
            error: None,
        };
    }
    let truths: Vec<(f64, f64)> =
        grid().filter_map(|x| spec.truth(x).ok().filter(|t| t.is_finite()).map(|t| (x, t))).collect();
    let nmse = match nmse_at(&code, &truths) {
        Ok(nmse) => nmse,
        Err(e) => return failed(e),
    };
    Score { value: f64::from(u8::from(nmse < 0.1)), nmse: Some(nmse), interval_overlap, error: None }
}

/// FIND's grid of numeric test inputs: x = i + 0.5 for i in [-128, 128).
pub fn grid() -> impl Iterator<Item = f64> {
    (-128..128).map(|i| f64::from(i) + 0.5)
}

/// The NMSE of `code` against `truths` (`(x, f(x))` with f(x) finite): Σ (f − code)² / Σ f²; a prediction that
/// is not finite makes it infinite, and code that fails to run is an error (its message).
pub fn nmse_at(code: &Expr, truths: &[(f64, f64)]) -> Result<f64, String> {
    let (mut residual, mut total) = (0.0, 0.0);
    for &(x, truth) in truths {
        let predicted = match code.eval_num(x) {
            Ok(p) if p.is_finite() => p,
            Ok(_) => f64::INFINITY,
            Err(e) => return Err(e.to_string()),
        };
        residual += (truth - predicted).powi(2);
        total += truth * truth;
    }
    Ok(if total > 0.0 {
        residual / total
    } else if residual == 0.0 {
        0.0
    } else {
        f64::INFINITY
    })
}

/// How an answer's code fits a numeric black box on FIND's grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlackBoxFit {
    /// FIND's NMSE (right below 0.1).
    pub nmse: f64,
    /// The Pearson correlation of the code's values with the function's: the answer's simulation score, as
    /// OpenAI's automated interpretability scores a description by how its simulated activations correlate with
    /// the real ones (0 where either side is constant or the code is not finite).
    pub simulation: f64,
}

/// How `code` fits a numeric black box on FIND's grid (what [`score`] does for a function of the suite, for a
/// function without a ground truth, e.g. a neuron or feature); none when the code does not parse or run.
pub fn black_box_fit(function: &mut dyn BlackBox, code: &str) -> crate::Result<Option<BlackBoxFit>> {
    let Ok(code) = Expr::parse(code) else { return Ok(None) };
    let mut truths = Vec::new();
    for x in grid() {
        if let Value::Num(truth) = function.call(&Value::Num(x))? {
            truths.extend(truth.is_finite().then_some((x, truth)));
        }
    }
    let Ok(nmse) = nmse_at(&code, &truths) else { return Ok(None) };
    let predicted: Vec<f64> = truths.iter().map(|&(x, _)| code.eval_num(x).unwrap_or(f64::NAN)).collect();
    let simulation = if predicted.iter().all(|p| p.is_finite()) {
        crate::pages::correlation(&predicted, &truths.iter().map(|t| t.1).collect::<Vec<f64>>())
    } else {
        0.0
    };
    Ok(Some(BlackBoxFit { nmse, simulation }))
}

/// One row of the results table: an interpreter on one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    /// The category.
    pub category: Category,
    /// Functions scored.
    pub functions: usize,
    /// Mean score (success rate for numbers, match fraction for strings).
    pub mean_score: f64,
    /// Mean interval overlap, for corrupted functions.
    pub mean_interval_overlap: Option<f64>,
    /// Answers whose code failed.
    pub failures: usize,
}

/// Rows per category from `(spec, score)` pairs.
pub fn table(scored: &[(&FunctionSpec, Score)]) -> Vec<TableRow> {
    let mut by: BTreeMap<Category, Vec<&Score>> = BTreeMap::new();
    for (spec, s) in scored {
        by.entry(spec.category).or_default().push(s);
    }
    by.into_iter()
        .map(|(category, scores)| {
            let n = scores.len() as f64;
            let overlaps: Vec<f64> = scores.iter().filter_map(|s| s.interval_overlap).collect();
            TableRow {
                category,
                functions: scores.len(),
                mean_score: scores.iter().map(|s| s.value).sum::<f64>() / n,
                mean_interval_overlap: (!overlaps.is_empty())
                    .then(|| overlaps.iter().sum::<f64>() / overlaps.len() as f64),
                failures: scores.iter().filter(|s| s.error.is_some()).count(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Corruption;

    fn spec(definition: &str, category: Category) -> FunctionSpec {
        FunctionSpec {
            id: 0,
            category,
            description: String::new(),
            domain: String::new(),
            definition: definition.into(),
            noise: None,
            corruption: None,
            mlp: None,
            test_inputs: vec!["abc".into(), "Hello".into()],
        }
    }

    #[test]
    fn nmse_is_computed_on_the_fixed_grid() {
        let f = spec("x", Category::Clean);
        let answer = |code: &str| Answer { code: code.into(), ..Default::default() };
        assert_eq!(score(&f, &answer("x")).nmse, Some(0.0));
        // (1.1x - x)^2 / x^2 = 0.01 at every point.
        let s = score(&f, &answer("1.1 * x"));
        assert!((s.nmse.unwrap() - 0.01).abs() < 1e-12 && s.value == 1.0);
        // sum((0.5)^2) / sum(x^2) over x = -127.5 .. 127.5 by hand: 256 * 0.25 / (2 * sum_{k=0}^{127} (k + 0.5)^2).
        let squares: f64 = (0..128).map(|k| (k as f64 + 0.5).powi(2)).sum::<f64>() * 2.0;
        assert!((score(&f, &answer("x + 0.5")).nmse.unwrap() - 64.0 / squares).abs() < 1e-12);
        assert_eq!(score(&f, &answer("-x")).value, 0.0);
        let broken = score(&f, &answer("x +"));
        assert!(broken.value == 0.0 && broken.error.is_some());
    }

    #[test]
    fn strings_score_exact_matches_and_intervals_their_overlap() {
        let f = spec("upper(x)", Category::StringSimple);
        let s = score(&f, &Answer { code: "upper(x)".into(), ..Default::default() });
        assert_eq!(s.value, 1.0);
        assert_eq!(score(&f, &Answer { code: "capitalize(x)".into(), ..Default::default() }).value, 0.0);
        let mut g = spec("x", Category::Corrupted);
        g.corruption = Some(Corruption { low: 0.0, high: 10.0, mean: 0.0 });
        let s = score(&g, &Answer { code: "x".into(), interval: Some((5.0, 15.0)), ..Default::default() });
        assert!((s.interval_overlap.unwrap() - 5.0 / 15.0).abs() < 1e-12);
        assert_eq!(score(&g, &Answer { code: "x".into(), ..Default::default() }).interval_overlap, Some(0.0));
    }

    /// A black box without a ground truth: f(x) = 2 where x > 0, not finite elsewhere.
    struct HalfConstant;

    impl BlackBox for HalfConstant {
        fn numeric_input(&self) -> bool {
            true
        }
        fn call(&mut self, x: &Value) -> crate::Result<Value> {
            let Value::Num(x) = x else { unreachable!("numbers only") };
            Ok(Value::Num(if *x > 0.0 { 2.0 } else { f64::NAN }))
        }
    }

    #[test]
    fn a_black_box_is_scored_on_the_grid_where_it_is_finite() {
        let nmse = |code: &str| black_box_fit(&mut HalfConstant, code).unwrap().map(|f| f.nmse);
        assert_eq!(nmse("2"), Some(0.0));
        // (2 - 1)² / 2² at each of the 128 points x > 0; the others are skipped (else "1" would be infinite).
        assert_eq!(nmse("1"), Some(0.25));
        // x = 0.5 .. 127.5: Σ (2 - x)² / (128 · 4).
        let by_hand: f64 = (0..128).map(|k| (1.5 - k as f64).powi(2)).sum::<f64>() / 512.0;
        assert!((nmse("x").unwrap() - by_hand).abs() < 1e-12);
        assert_eq!(nmse("x +"), None, "code that does not parse has no NMSE");
        // The simulation score is a correlation: 0 against a constant, ±1 for any line against a line.
        assert_eq!(black_box_fit(&mut HalfConstant, "x").unwrap().unwrap().simulation, 0.0);
        let simulation = |code: &str| black_box_fit(&mut Ramp, code).unwrap().unwrap().simulation;
        assert!((simulation("2 * x + 5") - 1.0).abs() < 1e-12 && (simulation("-x") + 1.0).abs() < 1e-12);
        assert_eq!(simulation("sqrt(x - 200)"), 0.0, "code not finite where the function is scores 0");
    }

    /// f(x) = x where x > 0, not finite elsewhere.
    struct Ramp;

    impl BlackBox for Ramp {
        fn numeric_input(&self) -> bool {
            true
        }
        fn call(&mut self, x: &Value) -> crate::Result<Value> {
            let Value::Num(x) = x else { unreachable!("numbers only") };
            Ok(Value::Num(if *x > 0.0 { *x } else { f64::NAN }))
        }
    }
}
