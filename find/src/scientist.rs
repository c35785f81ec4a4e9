//! The search-based scientist: chooses its inputs actively (a wide sweep, random points, then dense sampling
//! where the residuals of the best fit are large), fits every family of its library by least squares with BIC
//! model selection (the fast first guess), finds a local corruption as the longest run of large residuals and
//! reports its interval, then runs the open-ended symbolic search ([`crate::symbolic`]) on the clean observations,
//! spends rounds where the leading models disagree most, and answers with the model the parsimony criterion
//! prefers, described from its structure; for strings, checks every primitive and every composition of two
//! against the observations, asking for more inputs while several candidates remain.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fit::{best_fit, Fit};
use super::model::Model;
use super::programs::pieces;
use super::session::{Answer, Interpreter, Session};
use super::strings::{compose, primitives};
use super::symbolic::piecewise::{breakpoints, fit_piecewise};
use super::symbolic::{self, residual_floor, Effort, Form};
use crate::expr::Expr;
use crate::value::Value;

/// The most rounds the numeric scientist spends where its leading models disagree.
const DISAGREEMENT_ROUNDS: usize = 3;

/// A model that explains less than this share of the variance is tried against two pieces.
const PIECEWISE_BELOW: f64 = 0.999;

/// How many breakpoints are tried.
const BREAKPOINTS: usize = 4;

/// How many of the symbolic search's best forms compete with the library's fit at the end.
const FINALISTS: usize = 4;

/// How many of the symbolic search's best forms are refitted after each of those rounds.
const REFINED_AGAIN: usize = 8;

/// Up to `count` inputs in [−128, 128] (a grid of step 0.25, those `keep` accepts, at least 1 apart) where the
/// models disagree most; none when they agree everywhere to 1e-6 of the spread of their values.
fn disagreement(models: &[Model], count: usize, keep: impl Fn(&Point) -> bool) -> Vec<Value> {
    let grid: Vec<f64> = (0..1024).map(|i| -128.0 + 0.25 * i as f64 + 0.125).filter(|&x| keep(&(x, 0.0))).collect();
    let values: Vec<Vec<f64>> = models.iter().map(|m| grid.iter().map(|&x| m.eval(x)).collect()).collect();
    let finite = values.iter().flatten().filter(|v| v.is_finite());
    let (low, high) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let spread = (high - low).max(1e-12);
    let mut gaps: Vec<(f64, f64)> = (0..grid.len())
        .map(|i| {
            let at: Vec<f64> = values.iter().map(|v| v[i]).collect();
            let gap = if at.iter().all(|v| v.is_finite()) {
                at.iter().copied().fold(f64::NEG_INFINITY, f64::max) - at.iter().copied().fold(f64::INFINITY, f64::min)
            } else if at.iter().any(|v| v.is_finite()) {
                spread
            } else {
                0.0
            };
            (grid[i], gap)
        })
        .filter(|g| g.1 > 1e-6 * spread)
        .collect();
    gaps.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut chosen: Vec<f64> = Vec::with_capacity(count);
    for (x, _) in gaps {
        if chosen.len() < count && chosen.iter().all(|c| (c - x).abs() >= 1.0) {
            chosen.push(x);
        }
    }
    chosen.into_iter().map(Value::Num).collect()
}

/// The search-based scientist.
pub struct Scientist {
    rng: StdRng,
    /// Whether numeric functions also get the symbolic search (else the family library alone).
    symbolic: bool,
    /// The symbolic search's forms (built on the first numeric function).
    forms: Vec<Form>,
    /// The smaller forms the pieces of a piecewise model are searched among (built when first needed).
    piece_forms: Vec<Form>,
    /// Every primitive, composition of two and one-piece program, parsed once, with its text and description
    /// (built on the first string function).
    string_candidates: Vec<Candidate>,
    /// Programs of a piece and a primitive, searched when none of those fits (built when first needed).
    program_candidates: Vec<Candidate>,
}

impl Scientist {
    /// A scientist whose random inputs come from `seed`.
    pub fn new(seed: u64) -> Self {
        Scientist {
            rng: StdRng::seed_from_u64(seed),
            symbolic: true,
            forms: Vec::new(),
            piece_forms: Vec::new(),
            string_candidates: Vec::new(),
            program_candidates: Vec::new(),
        }
    }

    /// A scientist that answers numeric functions with its family library alone, without the symbolic search (the
    /// interpreter as it was before the search, kept as a baseline).
    pub fn library_only(seed: u64) -> Self {
        Scientist { symbolic: false, ..Scientist::new(seed) }
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
/// mean (FIND replaces the output by noise around the function's mean); `fit` is the fit to every point. Returns
/// the interval and the fit without it.
fn find_corruption(points: &[(f64, f64)], fit: &Fit) -> Option<((f64, f64), Fit)> {
    let spread = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max)
        - points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mean = grid_mean(fit);
    let mut best: Option<(f64, (f64, f64), Fit)> = None;
    for ((low, high), level) in flat_runs(points) {
        // The noise sits at the function's mean, which the corruption barely moves: runs far from the mean of
        // `fit` (to every point) are not refitted.
        if (level - mean).abs() >= 2.0 * (0.35 + 0.05 * spread) {
            continue;
        }
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
        if let Some(((low, high), clean)) = find_corruption(&points, &fit) {
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
                if let Some((refined, clean)) =
                    find_corruption(&points, &fit).filter(|(r, _)| r.0 <= high && r.1 >= low)
                {
                    (interval, fit) = (Some(refined), clean);
                }
            }
        }
        let outside = move |p: &Point| interval.is_none_or(|(low, high)| !(low..=high).contains(&p.0));
        let clean: Vec<Point> = points.iter().copied().filter(outside).collect();
        let model = self.discover(session, clean, fit, outside);
        let (mut code, mut domain) = (model.code(), model.domain());
        if let Some((low, high)) = interval {
            let inside: Vec<f64> = points.iter().filter(|p| !outside(p)).map(|p| p.1).collect();
            let mean = inside.iter().sum::<f64>() / inside.len().max(1) as f64;
            code = format!("if((x >= {low}) * (x <= {high}), {mean}, {code})");
            domain = format!("corrupted on [{low}, {high}]: the output there is noise around {mean:.3}");
        }
        Answer { description: model.description(), domain, code, interval }
    }

    /// The best model of the observations that `keep` accepts (`clean`): the library's fit against the forms of
    /// the symbolic search, with rounds spent where the leading models disagree most (up to
    /// [`DISAGREEMENT_ROUNDS`], while they disagree), chosen by the parsimony criterion. A library fit already
    /// exact to the residual floor is kept without a search: no form can fit better, and the library's exact
    /// fits name their structure (a floor, a root, a power).
    fn discover(
        &mut self,
        session: &mut Session,
        mut clean: Vec<Point>,
        library: Fit,
        keep: impl Fn(&Point) -> bool,
    ) -> Model {
        if !self.symbolic {
            return Model::Library(library);
        }
        clean.retain(|p| p.1.is_finite());
        let missed: f64 = clean.iter().map(|&(x, y)| (y - library.eval(x)).powi(2)).sum();
        if missed <= residual_floor(&clean.iter().map(|p| p.1).collect::<Vec<f64>>()) {
            return Model::Library(library);
        }
        if self.forms.is_empty() {
            self.forms = symbolic::forms(4, 5);
        }
        let effort = Effort::default();
        let mut found = symbolic::search(&clean, &self.forms, effort, self.rng.gen());
        let mut library = library;
        for _ in 0..DISAGREEMENT_ROUNDS {
            let mut leaders = vec![Model::Library(library.clone())];
            leaders.extend(found.iter().take(2).cloned().map(Model::Symbolic));
            let inputs = disagreement(&leaders, session.budget.inputs_per_round.max(8), &keep);
            if session.rounds_left() == 0 || inputs.is_empty() {
                break;
            }
            let Ok(calls) = session.ask(&inputs) else { break };
            clean.extend(numbers(&calls).into_iter().filter(|p| p.1.is_finite() && keep(p)));
            library = library.refit(&clean).unwrap_or(library);
            let again = Effort { refine_steps: effort.refine_steps / 2, ..effort };
            found = symbolic::refine(found.into_iter().take(REFINED_AGAIN).collect(), &clean, again);
        }
        let floor = residual_floor(&clean.iter().map(|p| p.1).collect::<Vec<f64>>());
        let candidates =
            std::iter::once(Model::Library(library)).chain(found.into_iter().take(FINALISTS).map(Model::Symbolic));
        let scored: Vec<(f64, Model)> = candidates.map(|m| (m.criterion(&clean, floor), m)).collect();
        let (_, best) =
            scored.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)).expect("the library's model is a candidate");
        self.split_if_better(best, &clean, floor)
    }

    /// `best`, or two pieces of small forms joined at a breakpoint when `best` explains less than
    /// [`PIECEWISE_BELOW`] of the variance of `points`, misses by more than twice the noise (what is left is not
    /// noise), and the pieces win on the parsimony criterion.
    fn split_if_better(&mut self, best: Model, points: &[Point], floor: f64) -> Model {
        let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len().max(1) as f64;
        let total: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
        let missed: f64 = points.iter().map(|&(x, y)| (y - best.eval(x)).powi(2)).sum();
        let noise = points.len() as f64 * symbolic::noise_variance(points);
        if total <= 0.0 || missed < (1.0 - PIECEWISE_BELOW) * total || missed <= 2.0 * noise {
            return best;
        }
        if self.piece_forms.is_empty() {
            self.piece_forms = symbolic::forms(3, 3);
        }
        let at = breakpoints(points, |x| best.eval(x), BREAKPOINTS);
        let pieces = fit_piecewise(points, &at, &self.piece_forms, Effort::default(), self.rng.gen(), floor);
        match pieces.map(Model::Piecewise) {
            Some(split) if split.criterion(points, floor) < best.criterion(points, floor) => split,
            _ => best,
        }
    }

    fn strings(&mut self, session: &mut Session) -> Answer {
        const PROBES: [&str; 28] = [
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
            "hello world",
            "Big red Fox",
            "snake case here",
            "a1 b2 c3",
        ];
        let inputs: Vec<Value> = PROBES.iter().map(|s| Value::Str(s.to_string())).collect();
        if session.ask(&inputs).is_err() {
            return Answer::default();
        }
        if self.string_candidates.is_empty() {
            let prims = primitives();
            let pairs = prims.iter().flat_map(|f| prims.iter().map(move |g| compose(f, g)));
            let pieces = pieces(&word_primitives(&prims));
            self.string_candidates = parsed(prims.iter().cloned().chain(pairs).chain(pieces));
        }
        let matches = |expr: &Expr, calls: &[(Value, Value)]| {
            calls.iter().filter(|(x, y)| matches!((x, y), (Value::Str(x), Value::Str(y)) if expr.eval_str(x).ok().as_deref() == Some(y.as_str()))).count()
        };
        let observations = session.observations();
        let consistent_in = |pool: &[Candidate]| -> Vec<usize> {
            (0..pool.len()).filter(|&i| matches(&pool[i].0, &observations) == observations.len()).collect()
        };
        let mut consistent = consistent_in(&self.string_candidates);
        // No primitive, composition of two or one-piece program writes it: programs of a piece and a primitive.
        let mut pool = &self.string_candidates;
        if consistent.is_empty() {
            if self.program_candidates.is_empty() {
                let prims = primitives();
                let pieces = pieces(&word_primitives(&prims));
                let composed = pieces
                    .iter()
                    .flat_map(|p| prims.iter().flat_map(move |q| [compose_programs(p, q), compose_programs(q, p)]));
                self.program_candidates = parsed(composed);
            }
            consistent = consistent_in(&self.program_candidates);
            if !consistent.is_empty() {
                pool = &self.program_candidates;
            }
        }
        let candidates = pool;
        // Several candidates agree: ask more inputs (words and phrases) to tell them apart.
        while consistent.len() > 1 && session.rounds_left() > 0 {
            let more: Vec<Value> = (0..24).map(|_| Value::Str(random_phrase(&mut self.rng))).collect();
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

/// A string program: parsed, its code, its description.
type Candidate = (Expr, String, String);

/// The programs of `programs` (code, description) that parse.
fn parsed(programs: impl Iterator<Item = (String, String)>) -> Vec<Candidate> {
    programs.filter_map(|(e, d)| Expr::parse(&e).ok().map(|p| (p, e, d))).collect()
}

/// The names of the primitives among `primitives` that take the string alone (`upper(x)`).
fn word_primitives(primitives: &[(String, String)]) -> Vec<String> {
    primitives.iter().filter_map(|(code, _)| code.strip_suffix("(x)").map(str::to_string)).collect()
}

/// The program "apply `g`, then `f`": `f`'s code with `g`'s in place of every `x`.
fn compose_programs((f, f_description): &(String, String), (g, g_description): &(String, String)) -> (String, String) {
    let code = f.replace("(x,", &format!("({g},")).replace("(x)", &format!("({g})"));
    (code, format!("{g_description}, then {f_description}"))
}

/// A random word, or one time in two a phrase of two or three.
fn random_phrase(rng: &mut StdRng) -> String {
    let count = if rng.gen_bool(0.5) { 1 } else { rng.gen_range(2..=3) };
    (0..count).map(|_| random_word(rng)).collect::<Vec<_>>().join(" ")
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
        if self.symbolic { "search scientist" } else { "family library" }.into()
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

#[cfg(test)]
mod discovery_tests {
    use super::*;
    use crate::score::score;
    use crate::session::{Budget, SuiteFunction};
    use crate::suite::{Category, FunctionSpec};

    fn answer(definition: &str) -> (Answer, f64) {
        let spec = FunctionSpec::numeric(0, Category::Clean, "held out".into(), "all x".into(), definition.into());
        let mut black_box = SuiteFunction::new(&spec, 0);
        let answer = Scientist::new(0).interpret(&mut Session::new(&mut black_box, Budget::default()));
        let nmse = score(&spec, &answer).nmse.unwrap_or(f64::INFINITY);
        (answer, nmse)
    }

    #[test]
    fn functions_outside_the_library_are_named_by_their_structure() {
        let (clamp, nmse) = answer("min(max(x, -20), 30)");
        assert!(nmse < 1e-6 && clamp.description.starts_with("x clamped to [-20, 30]"), "{clamp:?}");
        // Its domain's edge is known to the spacing of the observations: FIND's scorer, which counts code that is
        // undefined where the truth is defined as infinitely wrong, may fail it at x = -35.5; the structure holds.
        let (root, _) = answer("floor(sqrt(x + 35.5))");
        assert!(root.code.starts_with("floor(sqrt(") && root.domain.starts_with("x >= -35"), "{root:?}");
        let (split, nmse) = answer("if(x < 20, 5 * sin(0.3 * x), 0.5 * x - 3)");
        assert!(nmse < 1e-3 && split.description.starts_with("in two pieces, changing at x = "), "{split:?}");
    }
}
