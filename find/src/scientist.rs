//! The search-based scientist: chooses its inputs actively (a wide sweep, random points, then dense sampling
//! where the residuals of the best fit are large), fits every family by least squares with BIC model
//! selection, finds a local corruption as the longest run of large residuals and reports its interval; for
//! strings, checks every primitive and every composition of two against the observations, asking for more
//! inputs while several candidates remain.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fit::{best_fit, Fit};
use super::session::{Answer, Interpreter, Session};
use super::strings::{compose, primitives};
use crate::expr::Expr;
use crate::value::Value;

/// The search-based scientist.
pub struct Scientist {
    rng: StdRng,
    /// Every primitive and composition of two, parsed once, with its text and description (built on the first
    /// string function).
    string_candidates: Vec<(Expr, String, String)>,
}

impl Scientist {
    /// A scientist whose random inputs come from `seed`.
    pub fn new(seed: u64) -> Self {
        Scientist { rng: StdRng::seed_from_u64(seed), string_candidates: Vec::new() }
    }
}

fn numbers(calls: &[(Value, Value)]) -> Vec<(f64, f64)> {
    calls
        .iter()
        .filter_map(|(x, y)| match (x, y) {
            (Value::Num(x), Value::Num(y)) => Some((*x, *y)),
            _ => None,
        })
        .collect()
}

/// An observation (x, f(x)).
type Point = (f64, f64);

/// Runs (in x order) of at least 4 points spanning 3 to 40 whose outputs stay within 0.6 of the run's first
/// output: where a locally corrupted function shows noise (std 0.1) around one level. Returns each run's
/// interval and level.
fn flat_runs(points: &[(f64, f64)]) -> Vec<((f64, f64), f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut runs = Vec::new();
    let mut start = 0;
    while start < sorted.len() {
        let level = sorted[start].1;
        let end = (start..sorted.len()).find(|&j| (sorted[j].1 - level).abs() >= 0.6).unwrap_or(sorted.len());
        let span = sorted[end - 1].0 - sorted[start].0;
        if end - start >= 4 && (3.0..=40.0).contains(&span) {
            let mean = sorted[start..end].iter().map(|p| p.1).sum::<f64>() / (end - start) as f64;
            runs.push(((sorted[start].0, sorted[end - 1].0), mean));
        }
        start = end.max(start + 1);
    }
    runs
}

/// The mean of a fit over FIND's grid.
fn grid_mean(fit: &Fit) -> f64 {
    let values: Vec<f64> = (-128..128).map(|i| fit.eval(i as f64 + 0.5)).filter(|v| v.is_finite()).collect();
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// A local corruption: a flat run that a fit to the other points does not explain, at the level of that fit's
/// mean (FIND replaces the output by noise around the function's mean). Returns the interval and the fit
/// without it.
fn find_corruption(points: &[(f64, f64)]) -> Option<((f64, f64), Fit)> {
    let mut best: Option<(f64, (f64, f64), Fit)> = None;
    for ((low, high), level) in flat_runs(points) {
        let (inside, outside): (Vec<Point>, Vec<Point>) = points.iter().partition(|p| (low..=high).contains(&p.0));
        let Some(clean) = best_fit(&outside) else { continue };
        let error = |pts: &[(f64, f64)]| {
            let mut e: Vec<f64> =
                pts.iter().map(|&(x, y)| (y - clean.eval(x)).abs()).filter(|e| e.is_finite()).collect();
            e.sort_by(f64::total_cmp);
            e.get(e.len() / 2).copied().unwrap_or(0.0)
        };
        let (gap, typical) = (error(&inside), error(&outside));
        let spread = outside.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max)
            - outside.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let at_mean = (level - grid_mean(&clean)).abs() < 0.35 + 0.05 * spread;
        if at_mean && gap > 5.0 * (typical + 0.1) && best.as_ref().is_none_or(|b| gap > b.0) {
            best = Some((gap, (low, high), clean));
        }
    }
    best.map(|(_, interval, clean)| (interval, clean))
}

impl Scientist {
    fn numeric(&mut self, session: &mut Session) -> Answer {
        let per_round = session.budget.inputs_per_round.max(8);
        let sweep: Vec<Value> =
            (0..per_round).map(|i| Value::Num(-128.0 + 256.0 * (i as f64 + 0.5) / per_round as f64)).collect();
        let random: Vec<Value> = (0..per_round).map(|_| Value::Num(self.rng.gen_range(-128.0..128.0))).collect();
        for inputs in [sweep, random] {
            if session.ask(&inputs).is_err() {
                break;
            }
        }
        let mut points = numbers(&session.observations());
        let Some(mut fit) = best_fit(&points) else { return Answer::default() };
        // Dense sampling around the worst residuals, while rounds remain.
        if session.rounds_left() > 0 {
            let mut worst: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x, (y - fit.eval(x)).abs())).collect();
            worst.sort_by(|a, b| b.1.total_cmp(&a.1));
            let around: Vec<Value> = worst
                .iter()
                .take(8)
                .flat_map(|&(x, _)| (0..per_round / 8).map(move |k| x - 2.0 + 4.0 * k as f64 / (per_round / 8) as f64))
                .map(|x| Value::Num(x.clamp(-128.0, 128.0)))
                .collect();
            if session.ask(&around).is_ok() {
                points = numbers(&session.observations());
                fit = best_fit(&points).unwrap_or(fit);
            }
        }
        let mut interval = None;
        if let Some(((low, high), clean)) = find_corruption(&points) {
            (interval, fit) = (Some((low, high)), clean);
            // Refine the edges with a dense round on each side.
            let half = per_round / 2;
            let edges: Vec<Value> = (0..per_round)
                .map(|k| {
                    if k < half {
                        low - 4.0 + 4.0 * k as f64 / half as f64
                    } else {
                        high + 4.0 * (k - half) as f64 / half as f64
                    }
                })
                .map(Value::Num)
                .collect();
            if session.rounds_left() > 0 && session.ask(&edges).is_ok() {
                points = numbers(&session.observations());
                if let Some((refined, clean)) = find_corruption(&points).filter(|(r, _)| r.0 <= high && r.1 >= low) {
                    (interval, fit) = (Some(refined), clean);
                }
            }
        }
        let mut code = fit.code();
        let mut domain = "all x".to_string();
        if let Some((low, high)) = interval {
            let inside: Vec<f64> = points.iter().filter(|p| (low..=high).contains(&p.0)).map(|p| p.1).collect();
            let mean = inside.iter().sum::<f64>() / inside.len().max(1) as f64;
            code = format!("if((x >= {low}) * (x <= {high}), {mean}, {code})");
            domain = format!("corrupted on [{low}, {high}]: the output there is noise around {mean:.3}");
        }
        Answer { description: format!("{} function: {}", fit.family, fit.code()), domain, code, interval }
    }

    fn strings(&mut self, session: &mut Session) -> Answer {
        const PROBES: [&str; 24] = [
            "hello",
            "WORLD",
            "abc123",
            "Banana",
            "aeiou",
            "xyz",
            "Mississippi",
            "a1b2c3",
            "Zebra42",
            "queue",
            "rhythm",
            "AbCdEf",
            "programming",
            "tEsT",
            "2024",
            "aa",
            "b",
            "racecar",
            "OpenAI",
            "data9science",
            "CamelCase",
            "snake_case",
            "LoOp",
            "interpretability",
        ];
        let inputs: Vec<Value> = PROBES.iter().map(|s| Value::Str(s.to_string())).collect();
        if session.ask(&inputs).is_err() {
            return Answer::default();
        }
        if self.string_candidates.is_empty() {
            let prims = primitives();
            let pairs = prims.iter().flat_map(|f| prims.iter().map(move |g| compose(f, g)));
            self.string_candidates = prims
                .iter()
                .cloned()
                .chain(pairs)
                .filter_map(|(e, d)| Expr::parse(&e).ok().map(|p| (p, e, d)))
                .collect();
        }
        let candidates = &self.string_candidates;
        let matches = |expr: &Expr, calls: &[(Value, Value)]| {
            calls.iter().filter(|(x, y)| matches!((x, y), (Value::Str(x), Value::Str(y)) if expr.eval_str(x).ok().as_deref() == Some(y.as_str()))).count()
        };
        let mut consistent: Vec<usize> = Vec::new();
        let observations = session.observations();
        for (i, (expr, _, _)) in candidates.iter().enumerate() {
            if matches(expr, &observations) == observations.len() {
                consistent.push(i);
            }
        }
        // Several candidates agree: ask more inputs to tell them apart.
        while consistent.len() > 1 && session.rounds_left() > 0 {
            let more: Vec<Value> = (0..24).map(|_| Value::Str(random_word(&mut self.rng))).collect();
            let Ok(calls) = session.ask(&more) else { break };
            let before = consistent.len();
            consistent.retain(|&i| matches(&candidates[i].0, &calls) == calls.len());
            if consistent.len() == before {
                break;
            }
        }
        let best = consistent.first().copied().or_else(|| {
            let all = session.observations();
            (0..candidates.len()).max_by_key(|&i| (matches(&candidates[i].0, &all), std::cmp::Reverse(i)))
        });
        match best {
            Some(i) => Answer {
                description: candidates[i].2.clone(),
                domain: "all strings".into(),
                code: candidates[i].1.clone(),
                interval: None,
            },
            None => Answer::default(),
        }
    }
}

/// A random lower-case word with an occasional digit run or capitals.
pub fn random_word(rng: &mut StdRng) -> String {
    let len = rng.gen_range(3..12);
    let mut word: String = (0..len).map(|_| (b'a' + rng.gen_range(0..26)) as char).collect();
    if rng.gen_bool(0.25) {
        word = word.to_uppercase();
    }
    if rng.gen_bool(0.25) {
        word.push_str(&rng.gen_range(0..100).to_string());
    }
    word
}

impl Interpreter for Scientist {
    fn name(&self) -> String {
        "search scientist".into()
    }

    fn interpret(&mut self, session: &mut Session) -> Answer {
        if session.numeric_input() {
            self.numeric(session)
        } else {
            self.strings(session)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::{evaluate, RandomGuess};
    use crate::session::Budget;
    use crate::suite::{Category, Suite};
    use models::Silent;

    #[test]
    fn the_scientist_beats_the_targets_and_the_random_baseline() {
        let suite = Suite::generate(3, 200, 60).unwrap();
        let keep = |f: &crate::suite::FunctionSpec| {
            matches!(
                f.category,
                Category::Clean | Category::Corrupted | Category::StringSimple | Category::StringComposed
            )
        };
        let ours = evaluate(&suite, &mut Scientist::new(0), Budget::default(), keep, &Silent).unwrap();
        let random = evaluate(&suite, &mut RandomGuess::new(0), Budget::default(), keep, &Silent).unwrap();
        let row =
            |e: &crate::evaluate::Evaluation, c: Category| e.table.iter().find(|r| r.category == c).unwrap().clone();
        for c in [Category::Clean, Category::Corrupted, Category::StringSimple, Category::StringComposed] {
            eprintln!(
                "{c:?}: scientist {:.3} (overlap {:?}), random {:.3}",
                row(&ours, c).mean_score,
                row(&ours, c).mean_interval_overlap,
                row(&random, c).mean_score
            );
        }
        assert!(row(&ours, Category::Clean).mean_score >= 0.8);
        assert!(
            row(&ours, Category::StringSimple).mean_score >= 0.6
                && row(&ours, Category::StringComposed).mean_score >= 0.6
        );
        assert!(row(&ours, Category::Corrupted).mean_interval_overlap.unwrap() > 0.5);
        assert!(row(&random, Category::Clean).mean_score < 0.3);
        assert!(ours.outcomes.iter().all(|o| o.transcript.len() <= 20));
    }
}
