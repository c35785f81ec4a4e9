//! Open-ended symbolic regression over the expression language (issue 20), in the manner of PySR, gplearn and AI
//! Feynman: forms written by a small grammar ([`form`]) are enumerated up to a size bound; each form's constants
//! are fitted by Levenberg–Marquardt from data-informed random starts (centres among the observed x, frequencies
//! from a periodogram of the observations, thresholds among the values of the sub-form they cut), its outer scale
//! and offset exactly by least squares (variable projection: the model is `β₁·form(x) + β₀`); forms compete by
//! BIC plus a description-length term (a node costs ln of the number of operators), so the simplest form that
//! explains the observations wins. [`describe`] names what the chosen form does.

pub mod describe;
pub mod form;
pub mod piecewise;

use rand::rngs::StdRng;
use rand::Rng;

pub use form::{forms, Binary, Form, Unary, WithConstant};

use crate::fit::gaussian_elimination;
use crate::parallel::parallel_map;

/// A form with its constants fitted to observations.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// The form.
    pub form: Form,
    /// Its constants (post-order).
    pub params: Vec<f64>,
    /// The outer scale β₁.
    pub scale: f64,
    /// The outer offset β₀.
    pub offset: f64,
    /// Residual sum of squares on the points fitted.
    pub rss: f64,
}

/// The number of operators a node is chosen from, for the description length.
const OPERATORS: f64 = (Unary::ALL.len() + WithConstant::ALL.len() + Binary::ALL.len()) as f64;

/// The parsimony criterion of a model with `rss` on `n` points, `parameters` fitted and complexity `complexity`
/// (nodes, weighted): BIC with a residual floor (below it, fits count as exact and the smaller model wins) plus
/// the description length.
pub fn criterion(rss: f64, floor: f64, n: usize, parameters: usize, complexity: f64) -> f64 {
    let n = n as f64;
    n * (rss.max(floor) / n).ln() + parameters as f64 * n.ln() + complexity * OPERATORS.ln()
}

/// The residual floor of `ys`: 1e-9 of their sum of squares about the mean.
pub fn residual_floor(ys: &[f64]) -> f64 {
    let mean = ys.iter().sum::<f64>() / ys.len().max(1) as f64;
    1e-9 * ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>().max(1e-12)
}

/// The variance of the noise on `points`, by Gasser, Sroka and Jennen-Steinmetz's pseudo-residuals (each point
/// against the line through its two neighbours in x, scaled to the noise's variance) with a median for
/// robustness: a smooth function's own curvature, and the few points at a jump or kink, barely move it.
pub fn noise_variance(points: &[(f64, f64)]) -> f64 {
    let mut sorted: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pseudo: Vec<f64> = sorted
        .windows(3)
        .filter(|w| w[2].0 > w[0].0)
        .map(|w| {
            let (a, b) = ((w[2].0 - w[1].0) / (w[2].0 - w[0].0), (w[1].0 - w[0].0) / (w[2].0 - w[0].0));
            ((a * w[0].1 + b * w[2].1 - w[1].1) / (a * a + b * b + 1.0).sqrt()).abs()
        })
        .collect();
    if pseudo.is_empty() {
        return 0.0;
    }
    // The median of |e| for e ~ N(0, σ²) is 0.6745 σ.
    (quantile(&pseudo, 0.5) / 0.6745).powi(2)
}

impl Fitted {
    /// The fitted function at every x of `xs`.
    pub fn eval(&self, xs: &[f64]) -> Vec<f64> {
        self.form.eval(xs, &self.params).into_iter().map(|g| self.scale * g + self.offset).collect()
    }

    /// The fitted function as code of the expression language.
    pub fn code(&self) -> String {
        let inner = self.form.code(&self.params);
        let scaled = if self.scale == 1.0 { inner } else { format!("{} * ({inner})", form::number(self.scale)) };
        form::plus(scaled, self.offset)
    }

    /// Its parsimony criterion on `n` points with residual floor `floor`, counting every constant and the outer two.
    pub fn criterion(&self, n: usize, floor: f64) -> f64 {
        criterion(self.rss, floor, n, self.form.parameters() + 2, self.form.complexity())
    }

    /// How many of its constants (with the outer two) the fit at `xs` depends on independently: the rank of the
    /// derivatives of its values by each constant (by forward differences), constants whose derivative vanishes
    /// everywhere (the step positions of a floor) counted as free. `exp(a·x + b)` under an outer scale has 3, not
    /// 4; `(a·x + b) % c` has 3.
    pub fn effective_parameters(&self, xs: &[f64]) -> usize {
        let base = self.form.eval(xs, &self.params);
        let mut columns: Vec<Vec<f64>> = vec![base.clone(), vec![1.0; xs.len()]];
        let mut vanishing = 0;
        for j in 0..self.params.len() {
            let h = 1e-6 * self.params[j].abs().max(1e-3);
            let mut moved = self.params.clone();
            moved[j] += h;
            let column: Vec<f64> =
                self.form.eval(xs, &moved).iter().zip(&base).map(|(a, b)| self.scale * (a - b) / h).collect();
            if column.iter().all(|v| v.abs() < 1e-9) || column.iter().any(|v| !v.is_finite()) {
                vanishing += 1;
            } else {
                columns.push(column);
            }
        }
        vanishing + rank(&columns)
    }
}

/// The numerical rank of `columns` (Gram–Schmidt with a relative tolerance of 1e-6 on each column's norm).
fn rank(columns: &[Vec<f64>]) -> usize {
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for column in columns {
        let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
        let mut rest = column.clone();
        for b in &basis {
            let dot: f64 = rest.iter().zip(b).map(|(r, b)| r * b).sum();
            rest.iter_mut().zip(b).for_each(|(r, b)| *r -= dot * b);
        }
        let left = rest.iter().map(|v| v * v).sum::<f64>().sqrt();
        if left > 1e-6 * norm.max(1e-300) {
            rest.iter_mut().for_each(|r| *r /= left);
            basis.push(rest);
        }
    }
    basis.len()
}

impl Fitted {}

/// The best β₁, β₀ for `ys ≈ β₁·g + β₀` and the residual sum of squares, or `None` when a value of `g` is not finite.
fn project(g: &[f64], ys: &[f64]) -> Option<(f64, f64, f64)> {
    let n = g.len() as f64;
    if g.iter().any(|v| !v.is_finite()) || g.is_empty() {
        return None;
    }
    let (mg, my) = (g.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sgg, mut sgy, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in g.iter().zip(ys) {
        sgg += (a - mg) * (a - mg);
        sgy += (a - mg) * (b - my);
        syy += (b - my) * (b - my);
    }
    if sgg <= 1e-12 * (1.0 + mg * mg) * n {
        return Some((0.0, my, syy));
    }
    let scale = sgy / sgg;
    Some((scale, my - scale * mg, (syy - scale * sgy).max(0.0)))
}

/// What the observations say about plausible constants: the range of x, the strongest frequencies, and where
/// the output jumps (with the typical distance between jumps: a step width or a period).
struct Hints {
    low: f64,
    high: f64,
    frequencies: Vec<f64>,
    jumps: Vec<f64>,
    jump_spacing: Option<f64>,
    /// Where the output is largest, smallest and steepest: where bumps, kinks and sigmoids are centred.
    landmarks: [f64; 3],
}

impl Hints {
    /// The x range of `xs` and up to 3 frequencies (radians per unit) where a sinusoid fits `ys` best, by a scan
    /// of a least-squares periodogram over 0.005 to 1.2.
    fn of(xs: &[f64], ys: &[f64]) -> Hints {
        let low = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let high = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let powers: Vec<(f64, f64)> = (1..=240)
            .map(|k| {
                let w = 0.005 * k as f64;
                let (mut ss, mut sc, mut cc, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                let mean = ys.iter().sum::<f64>() / ys.len().max(1) as f64;
                for (x, y) in xs.iter().zip(ys) {
                    let (s, c) = (w * x).sin_cos();
                    (ss, sc, cc, sy, cy) =
                        (ss + s * s, sc + s * c, cc + c * c, sy + s * (y - mean), cy + c * (y - mean));
                }
                let det = ss * cc - sc * sc;
                let power =
                    if det.abs() < 1e-9 { 0.0 } else { (cc * sy * sy - 2.0 * sc * sy * cy + ss * cy * cy) / det };
                (w, power)
            })
            .collect();
        let mut peaks: Vec<(f64, f64)> = (1..powers.len() - 1)
            .filter(|&i| powers[i].1 >= powers[i - 1].1 && powers[i].1 >= powers[i + 1].1)
            .map(|i| powers[i])
            .collect();
        peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (jumps, jump_spacing) = jumps(xs, ys);
        let at_most = |key: &dyn Fn(usize) -> f64| {
            (0..xs.len()).max_by(|&a, &b| key(a).total_cmp(&key(b))).map_or(0.0, |i| xs[i])
        };
        let steepest = (1..xs.len())
            .max_by(|&a, &b| slope(xs, ys, a).total_cmp(&slope(xs, ys, b)))
            .map_or(0.0, |i| 0.5 * (xs[i - 1] + xs[i]));
        let landmarks = [at_most(&|i| ys[i]), at_most(&|i| -ys[i]), steepest];
        Hints { low, high, frequencies: peaks.iter().take(3).map(|p| p.0).collect(), jumps, jump_spacing, landmarks }
    }

    /// The width of the observed x range.
    fn span(&self) -> f64 {
        (self.high - self.low).max(1e-9)
    }

    /// An x drawn uniformly from the observed range, or two times in three one of the landmarks.
    fn any_x(&self, rng: &mut StdRng) -> f64 {
        if rng.gen_bool(2.0 / 3.0) {
            self.landmarks[rng.gen_range(0..3)]
        } else {
            rng.gen_range(self.low..=self.low + self.span())
        }
    }

    /// A step width or period in x: the spacing of the jumps when there are some (or half or twice it), the period
    /// of one of the strongest frequencies, or a random width.
    fn width(&self, rng: &mut StdRng) -> f64 {
        match (self.jump_spacing, rng.gen_range(0..4)) {
            (Some(w), 0 | 1) => w * [1.0, 1.0, 0.5, 2.0][rng.gen_range(0..4)],
            (_, 0..=2) if !self.frequencies.is_empty() => std::f64::consts::TAU / self.frequency(rng),
            _ => log_uniform(rng, 0.5, 64.0),
        }
    }

    /// The magnitude of an atom's slope: 1 (x itself, shifted) one time in four, else log-uniform on [0.002, 1.5].
    fn scale(&self, rng: &mut StdRng) -> f64 {
        if rng.gen_bool(0.25) {
            1.0
        } else {
            log_uniform(rng, 0.002, 1.5)
        }
    }

    /// One of the strongest frequencies, the strongest most often.
    fn frequency(&self, rng: &mut StdRng) -> f64 {
        let pick = [0, 0, 0, 1, 2][rng.gen_range(0..5)];
        self.frequencies[pick.min(self.frequencies.len() - 1)]
    }

    /// An x where a step or period begins: a jump when there are some, else a random x.
    fn phase(&self, rng: &mut StdRng) -> f64 {
        match self.jumps.len() {
            0 => self.any_x(rng),
            k => self.jumps[rng.gen_range(0..k)],
        }
    }
}

/// The absolute slope between sorted observations `i − 1` and `i`.
fn slope(xs: &[f64], ys: &[f64], i: usize) -> f64 {
    (ys[i] - ys[i - 1]).abs() / (xs[i] - xs[i - 1]).max(1e-12)
}

/// Where sorted observations jump (midpoints between neighbours joined by more than 4 times the median slope and
/// differing by more than 0.2% of the output range), and the median distance between consecutive jumps when there
/// are at least 3.
fn jumps(xs: &[f64], ys: &[f64]) -> (Vec<f64>, Option<f64>) {
    let slopes: Vec<f64> = (1..xs.len()).map(|i| slope(xs, ys, i)).collect();
    let range = quantile(ys, 1.0) - quantile(ys, 0.0);
    let steep = 4.0 * quantile(&slopes, 0.5);
    let at: Vec<f64> = (1..xs.len())
        .filter(|&i| slopes[i - 1] > steep && (ys[i] - ys[i - 1]).abs() > 2e-3 * range.max(1e-12))
        .map(|i| 0.5 * (xs[i - 1] + xs[i]))
        .collect();
    let spacings: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    if at.len() < 3 {
        return (at, None);
    }
    // Jumps of a staircase or a sawtooth sit at x₀ + k·w: the w near the median spacing at which the jumps line up
    // best (the Rayleigh statistic of their phases), then x₀ and w fitted to the jumps numbered by it.
    let rough = quantile(&spacings, 0.5);
    let alignment = |w: f64| {
        let (c, s) = at.iter().fold((0.0, 0.0), |(c, s), x| {
            let (sin, cos) = (std::f64::consts::TAU * (x - at[0]) / w).sin_cos();
            (c + cos, s + sin)
        });
        c * c + s * s
    };
    let rough = (0..=2000)
        .map(|i| rough * (0.6 + i as f64 * 1e-3 / 2.0))
        .max_by(|a, b| alignment(*a).total_cmp(&alignment(*b)))
        .unwrap_or(rough);
    let k: Vec<f64> = at.iter().map(|x| ((x - at[0]) / rough).round()).collect();
    let (mk, mx) = (k.iter().sum::<f64>() / k.len() as f64, at.iter().sum::<f64>() / at.len() as f64);
    let skk: f64 = k.iter().map(|k| (k - mk).powi(2)).sum();
    let skx: f64 = k.iter().zip(&at).map(|(k, x)| (k - mk) * (x - mx)).sum();
    let spacing = if skk > 0.0 { skx / skk } else { rough };
    (at, Some(spacing))
}

fn log_uniform(rng: &mut StdRng, low: f64, high: f64) -> f64 {
    (rng.gen_range(low.ln()..high.ln())).exp()
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Random starting constants for `form` (appended to `params`, post-order) from priors informed by `hints` and by
/// the values of each sub-form on `xs`; returns the form's values there. `parent` is the operator the form sits
/// under, which tells an atom what its scale means (a frequency under `sin`, a step width under `floor`).
fn start(
    form: &Form,
    xs: &[f64],
    parent: Option<&Form>,
    hints: &Hints,
    rng: &mut StdRng,
    params: &mut Vec<f64>,
) -> Vec<f64> {
    let at = params.len();
    match form {
        Form::Atom => {
            let (a, b) = match parent {
                Some(Form::Unary(Unary::Sin, _)) => {
                    let w = if !hints.frequencies.is_empty() && rng.gen_bool(0.75) {
                        hints.frequency(rng) * rng.gen_range(0.98..1.02)
                    } else {
                        log_uniform(rng, 0.005, 1.2)
                    };
                    (w, rng.gen_range(0.0..std::f64::consts::TAU))
                }
                Some(Form::Unary(u @ (Unary::Floor | Unary::Round), _)) => {
                    // A step of the floor (round) where a·x + b crosses an integer (a half).
                    let a = 1.0 / hints.width(rng);
                    let crossing = if *u == Unary::Round { 0.5 } else { 0.0 };
                    (a, crossing - a * hints.phase(rng))
                }
                Some(Form::Constant(WithConstant::Mod, _)) => (1.0, -hints.phase(rng)),
                Some(Form::Unary(Unary::Exp, _)) => {
                    // An exponent that stays within ±20 over the observed x.
                    let s = log_uniform(rng, 0.002, 20.0 / hints.span()) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                    (s, -s * hints.any_x(rng))
                }
                Some(Form::Unary(Unary::Sqrt | Unary::Log, _)) => {
                    // An argument positive on the observed x: zero at or beyond one end.
                    let s = hints.scale(rng);
                    let margin = hints.span() * log_uniform(rng, 1e-3, 1.0);
                    if rng.gen_bool(0.5) {
                        (s, -s * (hints.low - margin))
                    } else {
                        (-s, s * (hints.high + margin))
                    }
                }
                _ => {
                    let s = hints.scale(rng) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                    (s, -s * hints.any_x(rng))
                }
            };
            params.extend([a, b]);
            form.eval(xs, &params[at..])
        }
        Form::Unary(step @ (Unary::Floor | Unary::Round), f) if rng.gen_bool(0.5) => {
            // A staircase of a monotone operator of an atom: the atom that puts the operator's integer crossings
            // at the observed jumps, when there is one.
            match f.as_ref() {
                Form::Unary(g, atom) if matches!(atom.as_ref(), Form::Atom) => {
                    let crossing = if *step == Unary::Round { 0.5 } else { 0.0 };
                    match staircase_atom(*g, &hints.jumps, crossing) {
                        Some((a, b)) => params.extend([a, b]),
                        None => drop(start(f, xs, Some(form), hints, rng, params)),
                    }
                }
                _ => drop(start(f, xs, Some(form), hints, rng, params)),
            }
            form.eval(xs, &params[at..])
        }
        Form::Unary(_, f) => {
            start(f, xs, Some(form), hints, rng, params);
            form.eval(xs, &params[at..])
        }
        Form::Constant(k, f) => {
            let child = start(f, xs, Some(form), hints, rng, params);
            let span = quantile(&child, 1.0) - quantile(&child, 0.0);
            let c = match k {
                WithConstant::Shift => match rng.gen_range(0..6) {
                    0 | 1 => 1.0,
                    2 | 3 => -quantile(&child, 0.5),
                    4 => 0.0,
                    _ => rng.gen_range(-1.0..1.0) * span.max(1e-3),
                },
                WithConstant::Mod if matches!(f.as_ref(), Form::Atom) => hints.width(rng),
                WithConstant::Mod => span.max(1e-3) * log_uniform(rng, 0.02, 0.7),
                WithConstant::Max | WithConstant::Min => quantile(&child, rng.gen_range(0.05..0.95)),
                WithConstant::Pow => [0.5, 2.0, 3.0, 1.0 / 3.0, 1.5, rng.gen_range(0.2..3.0)][rng.gen_range(0..6)],
            };
            params.push(c);
            form.eval(xs, &params[at..])
        }
        Form::Binary(_, l, r) => {
            start(l, xs, Some(form), hints, rng, params);
            start(r, xs, Some(form), hints, rng, params);
            form.eval(xs, &params[at..])
        }
    }
}

/// The atom `a·x + b` under the monotone operator `g` whose crossings of consecutive levels `k + crossing` fall on
/// the sorted `jumps` (levels rising or falling, the first level searched over −20 to 60), by least squares on
/// `g⁻¹(level) = a·x + b`; `None` for fewer than 3 jumps or an operator without an inverse here.
fn staircase_atom(g: Unary, jumps: &[f64], crossing: f64) -> Option<(f64, f64)> {
    let inverse = |v: f64| match g {
        Unary::Sqrt if v >= 0.0 => Some(v * v),
        Unary::Log => Some(v.exp()),
        Unary::Cbrt => Some(v * v * v),
        Unary::Square if v >= 0.0 => Some(v.sqrt()),
        _ => None,
    };
    if jumps.len() < 3 {
        return None;
    }
    let mut best: Option<(f64, (f64, f64))> = None;
    for first in -20..=60 {
        for direction in [1.0, -1.0] {
            let targets: Option<Vec<f64>> =
                (0..jumps.len()).map(|i| inverse(f64::from(first) + direction * i as f64 + crossing)).collect();
            let Some(targets) = targets.filter(|t| t.iter().all(|v| v.is_finite())) else { continue };
            let Some((a, b, rss)) = project(jumps, &targets) else { continue };
            if a != 0.0 && best.as_ref().is_none_or(|(r, _)| rss < *r) {
                // targets ≈ a·jumps + b, so the atom is the line itself.
                best = Some((rss, (a, b)));
            }
        }
    }
    best.map(|(_, atom)| atom)
}

/// The projected fit of `form` with `params` on the points: (β₁, β₀, rss), or `None` where it is not finite.
fn projected(form: &Form, params: &[f64], xs: &[f64], ys: &[f64]) -> Option<(f64, f64, f64)> {
    project(&form.eval(xs, params), ys)
}

/// Levenberg–Marquardt on the constants of `form` from `params` (the outer scale and offset projected out), for at
/// most `iterations` steps; derivatives by forward differences.
fn levenberg_marquardt(form: &Form, mut params: Vec<f64>, xs: &[f64], ys: &[f64], iterations: usize) -> Option<Fitted> {
    let predict = |p: &[f64]| -> Option<(Vec<f64>, f64, f64, f64)> {
        let g = form.eval(xs, p);
        let (scale, offset, rss) = project(&g, ys)?;
        Some((g.iter().map(|v| scale * v + offset).collect(), scale, offset, rss))
    };
    let (mut prediction, mut scale, mut offset, mut rss) = predict(&params)?;
    let (k, mut lambda) = (params.len(), 1e-3);
    for _ in 0..iterations {
        let mut jacobian = Vec::with_capacity(k);
        for j in 0..k {
            let h = 1e-6 * params[j].abs().max(1e-3);
            let mut moved = params.clone();
            moved[j] += h;
            let column = match predict(&moved) {
                Some((p, ..)) => p.iter().zip(&prediction).map(|(a, b)| (a - b) / h).collect(),
                None => vec![0.0; xs.len()],
            };
            jacobian.push(column);
        }
        let residual: Vec<f64> = ys.iter().zip(&prediction).map(|(y, p)| y - p).collect();
        let mut gram = vec![0.0; k * k];
        let mut rhs = vec![0.0; k];
        for i in 0..k {
            rhs[i] = jacobian[i].iter().zip(&residual).map(|(a, b)| a * b).sum();
            for j in 0..=i {
                let v: f64 = jacobian[i].iter().zip(&jacobian[j]).map(|(a, b)| a * b).sum();
                (gram[i * k + j], gram[j * k + i]) = (v, v);
            }
        }
        if rhs.iter().all(|g| g.abs() < 1e-300) {
            break;
        }
        let mut improved = false;
        while lambda < 1e10 {
            let mut damped = gram.clone();
            for i in 0..k {
                damped[i * k + i] += lambda * gram[i * k + i].max(1e-12);
            }
            let Some(step) = gaussian_elimination(damped, rhs.clone(), k) else {
                lambda *= 10.0;
                continue;
            };
            let trial: Vec<f64> = params.iter().zip(&step).map(|(p, s)| p + s).collect();
            match predict(&trial) {
                Some(next) if next.3 < rss => {
                    let gain = (rss - next.3) / rss.max(1e-300);
                    (params, (prediction, scale, offset, rss)) = (trial, next);
                    lambda = (lambda / 3.0).max(1e-12);
                    improved = gain > 1e-12;
                    break;
                }
                _ => lambda *= 4.0,
            }
        }
        if !improved {
            break;
        }
    }
    Some(Fitted { form: form.clone(), params, scale, offset, rss })
}

/// Compass search on the constants of `form` from `params` for at most `evaluations` fits: each constant moved up
/// and down by its step, kept where the fit improves, every step halved when none does. For forms with steps or
/// a modulo, whose residual is flat between jumps (derivatives say nothing there).
fn compass_search(form: &Form, mut params: Vec<f64>, xs: &[f64], ys: &[f64], evaluations: usize) -> Option<Fitted> {
    let (mut scale, mut offset, mut rss) = projected(form, &params, xs, ys)?;
    let mut steps: Vec<f64> = params.iter().map(|p| 0.02 * p.abs().max(0.05)).collect();
    let mut spent = 0;
    while spent < evaluations && steps.iter().zip(&params).any(|(s, p)| *s > 1e-9 * p.abs().max(1e-3)) {
        let mut improved = false;
        for j in 0..params.len() {
            for direction in [1.0, -1.0] {
                let mut trial = params.clone();
                trial[j] += direction * steps[j];
                spent += 1;
                if let Some(fit) = projected(form, &trial, xs, ys).filter(|f| f.2 < rss) {
                    (params, (scale, offset, rss), improved) = (trial, fit, true);
                    break;
                }
            }
        }
        if !improved {
            steps.iter_mut().for_each(|s| *s /= 2.0);
        }
    }
    Some(Fitted { form: form.clone(), params, scale, offset, rss })
}

/// Fits the constants of `form` from `params`: Levenberg–Marquardt, then compass search when the form has steps.
fn fit_constants(form: &Form, params: Vec<f64>, xs: &[f64], ys: &[f64], steps: usize) -> Option<Fitted> {
    let fitted = levenberg_marquardt(form, params, xs, ys, steps)?;
    if form.has_steps() {
        compass_search(form, fitted.params, xs, ys, 4 * steps * form.parameters())
    } else {
        Some(fitted)
    }
}

/// The `effort.fitted_starts` best of `effort.starts_per_parameter` random starts per constant of `form` on the
/// screening points, each polished by `effort.polish_steps` Levenberg–Marquardt steps, smallest residual first,
/// with that residual.
fn best_starts(
    form: &Form,
    xs: &[f64],
    ys: &[f64],
    hints: &Hints,
    rng: &mut StdRng,
    effort: Effort,
) -> Option<(f64, Vec<Vec<f64>>)> {
    let mut starts: Vec<(f64, Vec<f64>)> = (0..effort.starts_per_parameter * form.parameters())
        .filter_map(|_| {
            let mut params = Vec::with_capacity(form.parameters());
            start(form, xs, None, hints, rng, &mut params);
            projected(form, &params, xs, ys).map(|(_, _, rss)| (rss, params))
        })
        .collect();
    starts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut polished: Vec<Fitted> = starts
        .into_iter()
        .take(effort.fitted_starts)
        .filter_map(|(_, params)| levenberg_marquardt(form, params, xs, ys, effort.polish_steps))
        .collect();
    polished.sort_by(|a, b| a.rss.total_cmp(&b.rss));
    let best = polished.first()?.rss;
    Some((best, polished.into_iter().map(|f| f.params).collect()))
}

/// How hard the search works.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Random starts per form and constant.
    pub starts_per_parameter: usize,
    /// The most points used to screen forms.
    pub screen_points: usize,
    /// How many of a form's best starts are fitted while screening.
    pub fitted_starts: usize,
    /// Levenberg–Marquardt steps that polish each kept start before forms are ranked.
    pub polish_steps: usize,
    /// How many forms, the best by their best start, are fitted on the screening points.
    pub fitted_forms: usize,
    /// Levenberg–Marquardt steps while screening.
    pub screen_steps: usize,
    /// How many forms are refined on every point after screening.
    pub refined: usize,
    /// Levenberg–Marquardt steps when refining.
    pub refine_steps: usize,
}

impl Default for Effort {
    fn default() -> Self {
        Effort {
            starts_per_parameter: 4,
            screen_points: 64,
            fitted_starts: 3,
            polish_steps: 2,
            fitted_forms: 400,
            screen_steps: 10,
            refined: 24,
            refine_steps: 60,
        }
    }
}

/// Every x and y of `points` as two vectors.
fn unzip(points: &[(f64, f64)]) -> (Vec<f64>, Vec<f64>) {
    points.iter().copied().unzip()
}

/// Fits every form of `forms` to `points` and returns the best fits, best first by [`Fitted::criterion`]: forms
/// are screened on an even subsample from random starts with a few Levenberg–Marquardt steps, and the
/// `effort.refined` best refined on every point. Work is split over the machine's cores; the result depends only
/// on `seed`.
pub fn search(points: &[(f64, f64)], forms: &[Form], effort: Effort, seed: u64) -> Vec<Fitted> {
    let mut points: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if points.len() < 4 {
        return Vec::new();
    }
    let every = points.len().div_ceil(effort.screen_points);
    let screen: Vec<(f64, f64)> = points.iter().step_by(every).copied().collect();
    let (sx, sy) = unzip(&screen);
    let (ax, ay) = unzip(&points);
    let hints = Hints::of(&ax, &ay);
    let floor = residual_floor(&sy);
    let ranked = |mut scored: Vec<(f64, Fitted)>, keep: usize| {
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        scored.into_iter().take(keep).map(|s| s.1).collect::<Vec<Fitted>>()
    };
    // Every form from random starts only; the most promising fitted on the subsample; the best of those on all.
    let indices: Vec<usize> = (0..forms.len()).collect();
    let started = parallel_map(&indices, seed, |&i, rng| {
        let form = &forms[i];
        let (rss, starts) = best_starts(form, &sx, &sy, &hints, rng, effort)?;
        Some((criterion(rss, floor, sx.len(), form.parameters() + 2, form.complexity()), i, starts))
    });
    let mut started: Vec<(f64, usize, Vec<Vec<f64>>)> = started.into_iter().flatten().collect();
    started.sort_by(|a, b| a.0.total_cmp(&b.0));
    started.truncate(effort.fitted_forms);
    let fitted = parallel_map(&started, seed.wrapping_add(1), |(_, i, starts), _| {
        let form = &forms[*i];
        let fits = starts.iter().filter_map(|p| fit_constants(form, p.clone(), &sx, &sy, effort.screen_steps));
        let best = fits.min_by(|a, b| a.rss.total_cmp(&b.rss))?;
        Some((best.criterion(sx.len(), floor), best))
    });
    let fitted: Vec<(f64, Fitted)> = fitted.into_iter().flatten().collect();
    refine(ranked(fitted, effort.refined), &points, effort)
}

/// Refits `fits` on every point of `points` by Levenberg–Marquardt from their constants; best first.
pub fn refine(fits: Vec<Fitted>, points: &[(f64, f64)], effort: Effort) -> Vec<Fitted> {
    let (xs, ys) = unzip(points);
    let floor = residual_floor(&ys);
    let refined =
        parallel_map(&fits, 0, |f, _| fit_constants(&f.form, f.params.clone(), &xs, &ys, effort.refine_steps));
    let mut refined: Vec<Fitted> = refined.into_iter().flatten().collect();
    refined.sort_by(|a, b| a.criterion(xs.len(), floor).total_cmp(&b.criterion(xs.len(), floor)));
    refined
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sample(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..192).map(|i| -128.0 + 256.0 * (i as f64 + 0.5) / 192.0).map(|x| (x, f(x))).collect()
    }

    #[test]
    fn noise_variance_ignores_smooth_shape_and_finds_the_noise() {
        // Exact on a line: every point lies on the line through its neighbours.
        assert_eq!(noise_variance(&sample(|x| 3.0 * x - 7.0)), 0.0);
        // On x² with spacing h = 4/3 the pseudo-residual is h² / sqrt(1.5) at every point: the median is that.
        let h: f64 = 256.0 / 192.0;
        let expected = (h * h / 1.5f64.sqrt() / 0.6745).powi(2);
        assert!((noise_variance(&sample(|x| x * x)) - expected).abs() < 1e-9 * expected);
        // Gaussian noise of σ = 2 on a sine, 2,000 points: within 10% of 4.
        let mut rng = StdRng::seed_from_u64(1);
        let normal = rand_distr::Normal::new(0.0, 2.0).unwrap();
        let noisy: Vec<(f64, f64)> = (0..2000)
            .map(|i| -128.0 + 256.0 * i as f64 / 2000.0)
            .map(|x| (x, 10.0 * (x / 9.0).sin() + rand_distr::Distribution::sample(&normal, &mut rng)))
            .collect();
        let variance = noise_variance(&noisy);
        assert!((variance - 4.0).abs() < 0.4, "{variance}");
    }

    #[test]
    fn projection_is_least_squares() {
        let g = [1.0, 2.0, 3.0, 4.0];
        let ys = [3.0, 5.0, 7.0, 9.5];
        let (scale, offset, rss) = project(&g, &ys).unwrap();
        // numpy.polyfit([1,2,3,4], [3,5,7,9.5], 1) = [2.15, 0.75]; residuals 0.1, -0.05, -0.2, 0.15.
        assert!((scale - 2.15).abs() < 1e-12 && (offset - 0.75).abs() < 1e-12, "{scale} {offset}");
        assert!((rss - 0.075).abs() < 1e-12, "{rss}");
        assert!(project(&[1.0, f64::NAN], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn the_search_recovers_forms_outside_the_family_library() {
        let all = forms(4, 5);
        type Case = (&'static str, Box<dyn Fn(f64) -> f64>);
        // The logistic 12 / (1 + exp(-(x - 10) / 8)) is 6 tanh((x - 10) / 16) + 6, and 5 round(x / 5) is
        // 5 floor(x / 5 + 1/2): the smallest form that writes the function wins, and reads as what it does.
        let cases: Vec<Case> = vec![
            ("x clamped to [-20, 30]", Box::new(|x: f64| x.clamp(-20.0, 30.0))),
            (
                "a sigmoid (tanh) from 0 to 12 centred at x = 10 (width 16)",
                Box::new(|x: f64| 12.0 / (1.0 + (-(x - 10.0) / 8.0).exp())),
            ),
            ("x rounded to the nearest multiple of 5", Box::new(|x: f64| 5.0 * (x / 5.0).round())),
        ];
        for (description, f) in cases {
            let found = search(&sample(&f), &all, Effort::default(), 0);
            let best = &found[0];
            let nmse = sample(&f).iter().map(|&(x, y)| (best.eval(&[x])[0] - y).powi(2)).sum::<f64>()
                / sample(&f).iter().map(|p| p.1 * p.1).sum::<f64>();
            assert!(nmse < 1e-9, "{description}: {} (nmse {nmse})", best.code());
            assert_eq!(describe::describe(best), description, "{}", best.code());
        }
    }
}
