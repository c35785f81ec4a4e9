//! Least-squares fits of FIND's function families to observed (x, y) pairs, with model selection by BIC: each
//! family is a few basis functions whose non-linear parameters (a kink, a centre, a frequency) are searched on
//! a grid while the linear coefficients are solved exactly.

use crate::parallel::parallel_map;

/// One basis function of `x`, printable as an expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Basis {
    /// The expression of `x`.
    pub text: String,
    f: BasisFn,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BasisFn {
    One,
    Power(i32),
    Abs(f64),
    Above(f64),
    Relu(f64),
    Tanh(f64, f64),
    Sin(f64),
    Cos(f64),
    Gauss(f64, f64),
    Rect(f64, f64),
    Recip(f64),
    Log(f64),
    Sqrt(f64),
    RationalLow(f64),
    RationalHigh(f64),
    Square(f64),
    XSquare(f64),
    Floor(f64),
}

impl BasisFn {
    fn eval(self, x: f64) -> f64 {
        let square = |p: f64| if (x / p).floor().rem_euclid(2.0) == 0.0 { 1.0 } else { -1.0 };
        match self {
            BasisFn::One => 1.0,
            BasisFn::Power(k) => (x / 128.0).powi(k),
            BasisFn::Abs(c) => (x - c).abs(),
            BasisFn::Above(c) => f64::from(u8::from(x > c)),
            BasisFn::Relu(c) => (x - c).max(0.0),
            BasisFn::Tanh(b, c) => (b * (x - c)).tanh(),
            BasisFn::Sin(b) => (b * x).sin(),
            BasisFn::Cos(b) => (b * x).cos(),
            BasisFn::Gauss(m, s) => (-(x - m).powi(2) / (2.0 * s * s)).exp(),
            BasisFn::Rect(m, w) => f64::from(u8::from((x - m).abs() < w)),
            BasisFn::Recip(c) => 1.0 / (x - c),
            BasisFn::Log(c) => (x - c).ln(),
            BasisFn::Sqrt(c) => (x - c).sqrt(),
            BasisFn::RationalLow(c) => 1.0 / (x * x + c),
            BasisFn::RationalHigh(c) => x * x / (x * x + c),
            BasisFn::Square(p) => square(p),
            BasisFn::XSquare(p) => x * square(p),
            BasisFn::Floor(p) => (x / p).floor(),
        }
    }

    fn text(self) -> String {
        let sq = |p: f64| format!("(2 * (floor(x / {p}) % 2 == 0) - 1)");
        let shifted = |c: f64| if c < 0.0 { format!("(x + {})", -c) } else { format!("(x - {c})") };
        match self {
            BasisFn::One => "1".into(),
            BasisFn::Power(k) => format!("(x / 128)^{k}"),
            BasisFn::Abs(c) => format!("abs{}", shifted(c)),
            BasisFn::Above(c) => format!("(x > {c})"),
            BasisFn::Relu(c) => format!("relu{}", shifted(c)),
            BasisFn::Tanh(b, c) => format!("tanh({b} * {})", shifted(c)),
            BasisFn::Sin(b) => format!("sin({b} * x)"),
            BasisFn::Cos(b) => format!("cos({b} * x)"),
            BasisFn::Gauss(m, s) => format!("exp(-({}^2) / {})", shifted(m), 2.0 * s * s),
            BasisFn::Rect(m, w) => format!("(abs{} < {w})", shifted(m)),
            BasisFn::Recip(c) => format!("(1 / {})", shifted(c)),
            BasisFn::Log(c) => format!("log{}", shifted(c)),
            BasisFn::Sqrt(c) => format!("sqrt{}", shifted(c)),
            BasisFn::RationalLow(c) => format!("(1 / (x^2 + {c}))"),
            BasisFn::RationalHigh(c) => format!("(x^2 / (x^2 + {c}))"),
            BasisFn::Square(p) => sq(p),
            BasisFn::XSquare(p) => format!("(x * {})", sq(p)),
            BasisFn::Floor(p) => format!("floor(x / {p})"),
        }
    }
}

/// A fitted model: the family, its basis and coefficients, and its fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// The family's name ("linear", "gaussian", ...).
    pub family: String,
    /// Basis functions.
    pub basis: Vec<Basis>,
    /// Their coefficients.
    pub coefficients: Vec<f64>,
    /// Residual sum of squares on the points fitted.
    pub rss: f64,
    /// Bayesian information criterion (lower is better).
    pub bic: f64,
    /// How many constants were fitted: the coefficients and the non-linear parameters searched.
    pub parameters: usize,
}

impl Fit {
    /// The fitted function at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        self.basis.iter().zip(&self.coefficients).map(|(b, c)| c * b.f.eval(x)).sum()
    }

    /// The same basis refitted to `points` (new coefficients, residual and BIC, its searched parameters kept);
    /// `None` where the basis is not finite or the system is singular.
    pub fn refit(&self, points: &[(f64, f64)]) -> Option<Fit> {
        let basis: Vec<BasisFn> = self.basis.iter().map(|b| b.f).collect();
        let (coefficients, rss) = solve(&basis, points)?;
        let family = if self.family == "modulo" { "linear plus floor".into() } else { self.family.clone() };
        Some(Fit { family, coefficients, rss, bic: bic(rss, points, self.parameters), ..self.clone() }.named())
    }

    /// Slope s, period p and offset c when the fit is `s·(x mod p) + c` (a line plus a floor whose jumps take back
    /// exactly what the line gains over one period: x mod p = x − p·floor(x / p)).
    fn sawtooth(&self) -> Option<(f64, f64, f64)> {
        let basis: Vec<BasisFn> = self.basis.iter().map(|b| b.f).collect();
        let ([BasisFn::One, BasisFn::Power(1), BasisFn::Floor(p)], &[c, line, floor]) =
            (basis.as_slice(), self.coefficients.as_slice())
        else {
            return None;
        };
        let slope = line / 128.0;
        (floor != 0.0 && (slope * p + floor).abs() <= 1e-4 * floor.abs()).then_some((slope, *p, c))
    }

    /// The family's name, "modulo" for a line plus a floor that is one.
    fn named(self) -> Fit {
        if self.sawtooth().is_some() {
            Fit { family: "modulo".into(), ..self }
        } else {
            self
        }
    }

    /// The fitted function as an expression of `x`.
    pub fn code(&self) -> String {
        if let Some((slope, period, offset)) = self.sawtooth() {
            return format!("({slope}) * (x % {period}) + ({offset})");
        }
        let terms: Vec<String> = self
            .basis
            .iter()
            .zip(&self.coefficients)
            .filter(|(_, c)| c.abs() > 1e-12)
            .map(|(b, c)| if b.f == BasisFn::One { format!("({c})") } else { format!("({c}) * {}", b.text) })
            .collect();
        if terms.is_empty() {
            "0".into()
        } else {
            terms.join(" + ")
        }
    }
}

/// Solves the least-squares problem for `basis` on `(x, y)` in one pass over the points (the residual from the
/// normal equations, exact to rounding far below [`bic`]'s floor); `None` when a basis value is not finite or the
/// system is singular.
fn solve(basis: &[BasisFn], points: &[(f64, f64)]) -> Option<(Vec<f64>, f64)> {
    let k = basis.len();
    let mut gram = vec![0.0; k * k];
    let mut rhs = vec![0.0; k];
    let mut row = vec![0.0; k];
    let mut squares = 0.0;
    for &(x, y) in points {
        for (r, b) in row.iter_mut().zip(basis) {
            *r = b.eval(x);
            if !r.is_finite() {
                return None;
            }
        }
        squares += y * y;
        for i in 0..k {
            rhs[i] += row[i] * y;
            for j in 0..k {
                gram[i * k + j] += row[i] * row[j];
            }
        }
    }
    let mut regularised = gram.clone();
    for i in 0..k {
        regularised[i * k + i] += 1e-9 * (1.0 + gram[i * k + i]);
    }
    let coefficients = gaussian_elimination(regularised, rhs.clone(), k)?;
    // |y - A c|² = y·y - 2 c·(Aᵀy) + cᵀ (AᵀA) c.
    let fitted: f64 =
        (0..k).map(|i| coefficients[i] * (0..k).map(|j| gram[i * k + j] * coefficients[j]).sum::<f64>()).sum();
    let cross: f64 = coefficients.iter().zip(&rhs).map(|(c, r)| c * r).sum();
    Some((coefficients, (squares - 2.0 * cross + fitted).max(0.0)))
}

pub(crate) fn gaussian_elimination(mut a: Vec<f64>, mut b: Vec<f64>, k: usize) -> Option<Vec<f64>> {
    for col in 0..k {
        let pivot = (col..k).max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))?;
        if a[pivot * k + col].abs() < 1e-300 {
            return None;
        }
        for j in 0..k {
            a.swap(col * k + j, pivot * k + j);
        }
        b.swap(col, pivot);
        for i in col + 1..k {
            let factor = a[i * k + col] / a[col * k + col];
            for j in col..k {
                a[i * k + j] -= factor * a[col * k + j];
            }
            b[i] -= factor * b[col];
        }
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|j| a[i * k + j] * x[j]).sum();
        x[i] = (b[i] - s) / a[i * k + i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

fn grid(lo: f64, hi: f64, step: f64) -> impl Iterator<Item = f64> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n).map(move |i| ((lo + step * i as f64) * 10.0).round() / 10.0)
}

/// Every candidate model: family name, basis, and the number of non-linear parameters searched.
fn candidates(min_x: f64) -> Vec<(&'static str, Vec<BasisFn>, usize)> {
    use BasisFn::*;
    let mut all: Vec<(&'static str, Vec<BasisFn>, usize)> = Vec::new();
    for degree in 0..=5 {
        let name = ["constant", "linear", "quadratic", "cubic", "quartic", "quintic"][degree];
        all.push((name, (0..=degree as i32).map(|k| if k == 0 { One } else { Power(k) }).collect(), 0));
    }
    for c in grid(-128.0, 128.0, 1.0) {
        all.push(("absolute", vec![One, Abs(c)], 1));
        all.push(("step", vec![One, Above(c)], 1));
        all.push(("kink", vec![One, Power(1), Relu(c)], 1));
        all.push(("linear plus step", vec![One, Power(1), Above(c)], 1));
    }
    for b in [0.02, 0.05, 0.1, 0.2, 0.3, 0.5] {
        for c in grid(-128.0, 128.0, 2.0) {
            all.push(("tanh", vec![One, Tanh(b, c)], 2));
        }
    }
    for b in grid(0.01, 0.6, 0.005) {
        all.push(("sinusoid", vec![One, Sin(b), Cos(b)], 1));
    }
    for m in grid(-128.0, 128.0, 1.0) {
        for s in [2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 25.0, 30.0] {
            all.push(("gaussian", vec![One, Gauss(m, s)], 2));
        }
        for w in grid(1.0, 35.0, 1.0) {
            all.push(("rectangle", vec![One, Rect(m, w)], 2));
        }
    }
    for c in grid(-60.0, 60.0, 0.5) {
        all.push(("reciprocal", vec![One, Recip(c)], 1));
    }
    for c in grid(-128.0, 128.0, 0.5).filter(|&c| c < min_x) {
        all.push(("logarithm", vec![One, Log(c)], 1));
        all.push(("root", vec![One, Sqrt(c)], 1));
    }
    for c in grid(1.0, 60.0, 1.0) {
        all.push(("rational", vec![RationalLow(c), RationalHigh(c)], 1));
    }
    for p in grid(2.0, 30.0, 0.1) {
        all.push(("square wave", vec![One, Square(p)], 1));
        all.push(("linear times square wave", vec![Square(p), XSquare(p)], 1));
        all.push(("floor", vec![One, Floor(p)], 1));
        all.push(("linear plus floor", vec![One, Power(1), Floor(p)], 1));
    }
    all
}

/// The BIC of a fit with residual `rss` and `parameters` on `points`, with a floor on the residual that keeps
/// exact fits comparable (below 1e-10 of the mean square output, simpler models win).
fn bic(rss: f64, points: &[(f64, f64)], parameters: usize) -> f64 {
    let n = points.len() as f64;
    let scale = points.iter().map(|p| p.1 * p.1).sum::<f64>() / n;
    n * (rss.max(1e-10 * scale.max(1e-12) * n) / n).ln() + parameters as f64 * n.ln()
}

/// The best model for the finite points of `points` by BIC, or `None` when fewer than 3 are finite.
pub fn best_fit(points: &[(f64, f64)]) -> Option<Fit> {
    let points: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    if points.len() < 3 {
        return None;
    }
    let min_x = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let candidates = candidates(min_x);
    let solved = parallel_map(&candidates, 0, |(_, basis, nonlinear), _| {
        let (coefficients, rss) = solve(basis, &points)?;
        let parameters = basis.len() + nonlinear;
        Some((bic(rss, &points, parameters), coefficients, rss, parameters))
    });
    // The first of the lowest BIC, as a sequential scan would find it.
    let mut best: Option<Fit> = None;
    for ((family, basis, _), solved) in candidates.into_iter().zip(solved) {
        let Some((bic, coefficients, rss, parameters)) = solved else { continue };
        if best.as_ref().is_none_or(|b| bic < b.bic) {
            best = Some(Fit {
                family: family.into(),
                basis: basis.into_iter().map(|f| Basis { text: f.text(), f }).collect(),
                coefficients,
                rss,
                bic,
                parameters,
            });
        }
    }
    best.map(Fit::named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;

    fn sample(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..128).map(|i| -128.0 + 2.0 * i as f64 + 0.25).map(|x| (x, f(x))).collect()
    }

    #[test]
    fn families_are_recognised_and_the_code_reproduces_the_fit() {
        type Case = (&'static str, Box<dyn Fn(f64) -> f64>);
        let cases: Vec<Case> = vec![
            ("linear", Box::new(|x| 2.5 * x - 3.0)),
            ("gaussian", Box::new(|x| 7.0 * (-(x - 20.0).powi(2) / (2.0 * 64.0)).exp())),
            ("step", Box::new(|x| if x > 12.0 { 5.0 } else { -1.0 })),
            ("absolute", Box::new(|x| -2.0 * (x + 30.0).abs() + 4.0)),
            ("sinusoid", Box::new(|x| 3.0 * (0.2 * x + 1.0).sin())),
            ("modulo", Box::new(|x: f64| 2.0 * x.rem_euclid(13.0) + 1.0)),
        ];
        for (family, f) in cases {
            let fit = best_fit(&sample(&f)).unwrap();
            assert_eq!(fit.family, family, "{}", fit.code());
            assert_eq!(fit.code().contains('%'), family == "modulo", "{}", fit.code());
            let code = Expr::parse(&fit.code()).unwrap();
            for x in [-100.5, -3.5, 0.5, 47.5] {
                assert!((code.eval_num(x).unwrap() - fit.eval(x)).abs() < 1e-6, "{family}: {}", fit.code());
                assert!(
                    (fit.eval(x) - f(x)).abs() < 1e-3 * f(x).abs().max(1.0),
                    "{family} at {x}: {} vs {}",
                    fit.eval(x),
                    f(x)
                );
            }
        }
    }
}
