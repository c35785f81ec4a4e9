//! Descriptions from a fitted form's structure: shapes a researcher has a name for (a sigmoid, a clamp, rounding,
//! a sawtooth, a damped sinusoid ...) are said with their parameters in the units of x and y; any other form is
//! read out operator by operator. The domain statement comes from where the fitted function is finite.

use super::form::{number, Binary, Form, Unary, WithConstant};
use super::Fitted;

/// A number for prose: 3 significant digits (whole numbers from 1,000; 0 below 1e-6, the fits' own precision).
fn n(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() < 1e-6 {
        return "0".into();
    }
    let digits = if v == 0.0 { 0 } else { (2 - v.abs().log10().floor() as i32).clamp(0, 9) };
    let unit = 10f64.powi(digits);
    format!("{}", (v * unit).round() / unit + 0.0)
}

fn near(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

/// The x where the atom `a·x + b` equals `v`.
fn where_atom(a: f64, b: f64, v: f64) -> f64 {
    (v - b) / a
}

/// What the fitted form computes, in words with its parameters.
pub fn describe(fit: &Fitted) -> String {
    let (s, o, p) = (fit.scale, fit.offset, fit.params.as_slice());
    use Form::{Atom, Binary as Bin, Constant as Con, Unary as Un};
    let atom = |f: &Form| matches!(f, Atom);
    let out = |v: f64| s * v + o;
    match &fit.form {
        Atom => format!("a line with slope {} through y = {} at x = 0", n(s * p[0]), n(out(p[1]))),
        Un(u @ (Unary::Round | Unary::Floor), f) if atom(f) => {
            // floor(v) is round(v − ½): both read as rounding a·x + b_r, steps centred where it is an integer.
            let step = 1.0 / p[0].abs();
            let centred = if *u == Unary::Floor { p[1] - 0.5 } else { p[1] };
            let on_multiples = (centred - centred.round()).abs() < 0.1 && near(out(centred.round()), 0.0, 0.01 * step);
            if near(s * p[0], 1.0, 0.01) && on_multiples {
                format!("x rounded to the nearest multiple of {}", n(step))
            } else {
                format!(
                    "a staircase: steps {} wide in x, each {} higher, one centred at x = {}",
                    n(step),
                    n(s * p[0].signum()),
                    n(where_atom(p[0], centred, centred.round()))
                )
            }
        }
        Con(WithConstant::Min, g) | Con(WithConstant::Max, g) if matches!(g.as_ref(), Con(WithConstant::Max | WithConstant::Min, f) if atom(f)) =>
        {
            let (a, b, c1, c2) = (p[0], p[1], p[2], p[3]);
            let (low, high) = (out(c1).min(out(c2)), out(c1).max(out(c2)));
            if near(s * a, 1.0, 0.01) && near(out(b), 0.0, 0.01 * (high - low)) {
                format!("x clamped to [{}, {}]", n(low), n(high))
            } else {
                let (x1, x2) = (where_atom(a, b, c1), where_atom(a, b, c2));
                format!(
                    "a ramp clamped to [{}, {}]: slope {} between x = {} and x = {}, flat outside",
                    n(low),
                    n(high),
                    n(s * a),
                    n(x1.min(x2)),
                    n(x1.max(x2))
                )
            }
        }
        Con(k @ (WithConstant::Max | WithConstant::Min), f) if atom(f) => format!(
            "a line with slope {} cut off at y = {} ({} of the line and that level), the corner at x = {}",
            n(s * p[0]),
            n(out(p[2])),
            if (*k == WithConstant::Max) == (s > 0.0) { "the larger" } else { "the smaller" },
            n(where_atom(p[0], p[1], p[2]))
        ),
        Un(Unary::Recip, g)
            if matches!(g.as_ref(), Con(WithConstant::Shift, e) if matches!(e.as_ref(), Un(Unary::Exp, f) if atom(f)))
                && p[2] > 0.0 =>
        {
            let (a, b, c) = (p[0], p[1], p[2]);
            let (far_left, far_right) = if a > 0.0 { (out(1.0 / c), o) } else { (o, out(1.0 / c)) };
            format!(
                "a sigmoid from {} to {} centred at x = {} (width {})",
                n(far_left),
                n(far_right),
                n(where_atom(a, b, c.ln())),
                n(1.0 / a.abs())
            )
        }
        Un(Unary::Tanh, f) if atom(f) => {
            let (left, right) = if s * p[0] > 0.0 { (o - s.abs(), o + s.abs()) } else { (o + s.abs(), o - s.abs()) };
            format!(
                "a sigmoid (tanh) from {} to {} centred at x = {} (width {})",
                n(left),
                n(right),
                n(where_atom(p[0], p[1], 0.0)),
                n(1.0 / p[0].abs())
            )
        }
        Con(WithConstant::Mod, f) if atom(f) => {
            // (a·x + b) mod c = a·((x − x₀) mod (c / a)) with x₀ = −b / a: a ramp of slope s·a restarting every c / a.
            let period = (p[2] / p[0]).abs();
            let start = (-p[1] / p[0]).rem_euclid(period);
            let starts_at_zero = start.min(period - start) < 0.01 * period;
            if near(s * p[0], 1.0, 0.01) && o.abs() < 0.01 * period && starts_at_zero {
                format!("x modulo {}", n(period))
            } else {
                format!("a sawtooth of period {} in x going from {} to {}", n(period), n(out(0.0)), n(out(p[2])))
            }
        }
        Un(Unary::Abs, g) if matches!(g.as_ref(), Con(WithConstant::Shift, m) if matches!(m.as_ref(), Con(WithConstant::Mod, f) if atom(f))) =>
        {
            format!(
                "a triangle wave of period {} in x between {} and {}",
                n((p[2] / p[0]).abs()),
                n(out(0.0)),
                n(out(p[2].abs() / 2.0))
            )
        }
        Un(Unary::Exp, f) if atom(f) => format!(
            "an exponential {} by e every {} in x ({} at x = 0), approaching {}",
            if p[0] > 0.0 { "growing" } else { "decaying" },
            n(1.0 / p[0].abs()),
            n(out(p[1].exp())),
            n(o)
        ),
        Un(Unary::Exp, g) if matches!(g.as_ref(), Un(Unary::Neg, h) if matches!(h.as_ref(), Un(Unary::Abs | Unary::Square, f) if atom(f))) =>
        {
            let shape = if matches!(g.as_ref(), Un(Unary::Neg, h) if matches!(h.as_ref(), Un(Unary::Abs, _))) {
                "a Laplace (exponential) bump"
            } else {
                "a gaussian bump"
            };
            format!(
                "{shape} of height {} at x = {} (width {}) on a base of {}",
                n(s),
                n(where_atom(p[0], p[1], 0.0)),
                n(1.0 / p[0].abs()),
                n(o)
            )
        }
        Un(Unary::Recip, g)
            if matches!(g.as_ref(), Con(WithConstant::Shift, h) if matches!(h.as_ref(), Un(Unary::Square, f) if atom(f)))
                && p[2] > 0.0 =>
        {
            format!(
                "a Lorentzian bump of height {} at x = {} (half width {}) on a base of {}",
                n(s / p[2]),
                n(where_atom(p[0], p[1], 0.0)),
                n(p[2].sqrt() / p[0].abs()),
                n(o)
            )
        }
        Un(Unary::Log, g) if matches!(g.as_ref(), Con(WithConstant::Shift, h) if matches!(h.as_ref(), Un(Unary::Exp, f) if atom(f))) =>
        {
            format!(
                "a softplus: flat at {} on one side of x = {}, a line of slope {} on the other",
                n(out(p[2].ln())),
                n(where_atom(p[0], p[1], p[2].ln())),
                n(s * p[0])
            )
        }
        Un(Unary::Log, g) if matches!(g.as_ref(), Con(WithConstant::Shift, h) if matches!(h.as_ref(), Un(Unary::Abs, f) if atom(f))) =>
        {
            format!(
                "the logarithm of the distance from x = {} (a {} there)",
                n(where_atom(p[0], p[1], 0.0)),
                if s > 0.0 { "dip" } else { "peak" }
            )
        }
        Un(Unary::Sin, f) if atom(f) => format!(
            "a sinusoid of period {} and amplitude {} around {}",
            n(std::f64::consts::TAU / p[0].abs()),
            n(s.abs()),
            n(o)
        ),
        Un(Unary::Cbrt, f) if atom(f) => {
            format!(
                "a signed cube root centred at x = {} (scale {})",
                n(where_atom(p[0], p[1], 0.0)),
                n(s * p[0].abs().cbrt())
            )
        }
        Bin(Binary::Max | Binary::Min, l, r) if atom(l) && atom(r) => format!(
            "the {} of two lines (slopes {} and {}), meeting at x = {}",
            if matches!(fit.form, Bin(Binary::Max, ..)) == (s > 0.0) { "larger" } else { "smaller" },
            n(s * p[0]),
            n(s * p[2]),
            n((p[3] - p[1]) / (p[0] - p[2]))
        ),
        Bin(Binary::Mul, l, r) if atom(l) && matches!(r.as_ref(), Un(Unary::Abs, f) if atom(f)) => {
            format!("a signed square (y grows as x·|x|) centred at x = {}", n(where_atom(p[2], p[3], 0.0)))
        }
        Bin(Binary::Mul, l, r) if atom(l) && matches!(r.as_ref(), Un(Unary::Sin, f) if atom(f)) => format!(
            "a sinusoid of period {} whose amplitude grows linearly with x (zero at x = {})",
            n(std::f64::consts::TAU / p[2].abs()),
            n(where_atom(p[0], p[1], 0.0))
        ),
        Bin(Binary::Mul, l, r) if matches!((l.as_ref(), r.as_ref()), (Un(Unary::Sin, a), Un(Unary::Sin, b)) if atom(a) && atom(b)) =>
        {
            let (w1, w2) = (p[0].abs(), p[2].abs());
            format!(
                "a sinusoid of period {} modulated by one of period {}",
                n(std::f64::consts::TAU / w1.max(w2)),
                n(std::f64::consts::TAU / w1.min(w2))
            )
        }
        Bin(Binary::Mul, l, r)
            if matches!(r.as_ref(), Un(Unary::Sin, f) if atom(f)) && matches!(l.as_ref(), Un(Unary::Exp, _)) =>
        {
            let q = l.parameters();
            format!("a damped sinusoid of period {} ({})", n(std::f64::consts::TAU / p[q].abs()), read(l, &p[..q]))
        }
        Bin(Binary::Div, l, r)
            if atom(l)
                && matches!(r.as_ref(), Con(WithConstant::Shift, h) if matches!(h.as_ref(), Un(Unary::Abs, f) if atom(f))) =>
        {
            format!(
                "a softsign: a smooth S-curve through x = {} saturating towards ±{}",
                n(where_atom(p[0], p[1], 0.0)),
                n((s * p[0] / p[2]).abs())
            )
        }
        form => format!("{} × {} + {}", number(s), read(form, p), number(o)),
    }
}

/// A form read out operator by operator: "the exponential of minus the absolute value of (0.1x − 2)".
fn read(form: &Form, params: &[f64]) -> String {
    let mut next = 0;
    read_from(form, params, &mut next)
}

fn read_from(form: &Form, params: &[f64], next: &mut usize) -> String {
    match form {
        Form::Atom => {
            let text = format!(
                "({}x {} {})",
                n(params[*next]),
                if params[*next + 1] < 0.0 { "−" } else { "+" },
                n(params[*next + 1].abs())
            );
            *next += 2;
            text
        }
        Form::Unary(u, f) => {
            let name = match u {
                Unary::Neg => "minus",
                Unary::Abs => "the absolute value of",
                Unary::Sqrt => "the square root of",
                Unary::Cbrt => "the cube root of",
                Unary::Square => "the square of",
                Unary::Recip => "one over",
                Unary::Log => "the logarithm of",
                Unary::Exp => "the exponential of",
                Unary::Sin => "the sine of",
                Unary::Tanh => "the tanh of",
                Unary::Floor => "the floor of",
                Unary::Round => "the nearest integer to",
            };
            format!("{name} {}", read_from(f, params, next))
        }
        Form::Constant(k, f) => {
            let inner = read_from(f, params, next);
            let c = n(params[*next]);
            *next += 1;
            match k {
                WithConstant::Shift => format!("({inner} plus {c})"),
                WithConstant::Mod => format!("({inner} modulo {c})"),
                WithConstant::Max => format!("the larger of {inner} and {c}"),
                WithConstant::Min => format!("the smaller of {inner} and {c}"),
                WithConstant::Pow => format!("({inner} to the power {c})"),
            }
        }
        Form::Binary(op, l, r) => {
            let left = read_from(l, params, next);
            let right = read_from(r, params, next);
            match op {
                Binary::Add => format!("({left} plus {right})"),
                Binary::Mul => format!("({left} times {right})"),
                Binary::Div => format!("({left} divided by {right})"),
                Binary::Max => format!("the larger of {left} and {right}"),
                Binary::Min => format!("the smaller of {left} and {right}"),
            }
        }
    }
}

/// Where a function is defined on FIND's range [−128, 128] (checked every 0.5): "all x", or the interval of x
/// where it is finite ("x >= 12.5") when it is not finite elsewhere.
pub fn domain(f: impl Fn(f64) -> f64) -> String {
    let xs: Vec<f64> = (-256..=256).map(|i| i as f64 / 2.0).collect();
    let finite: Vec<f64> = xs.iter().copied().filter(|&x| f(x).is_finite()).collect();
    match (finite.first(), finite.last()) {
        _ if finite.len() == xs.len() => "all x".into(),
        (Some(&low), Some(&high)) if high >= 128.0 => format!("x >= {}", n(low)),
        (Some(&low), Some(&high)) if low <= -128.0 => format!("x <= {}", n(high)),
        (Some(&low), Some(&high)) => format!("{} <= x <= {}", n(low), n(high)),
        _ => "nowhere on [-128, 128]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(form: Form, params: Vec<f64>, scale: f64, offset: f64) -> Fitted {
        Fitted { form, params, scale, offset, rss: 0.0 }
    }

    #[test]
    fn named_shapes_are_described_with_their_parameters() {
        let clamp =
            Form::Constant(WithConstant::Min, Box::new(Form::Constant(WithConstant::Max, Box::new(Form::Atom))));
        assert_eq!(describe(&fitted(clamp, vec![1.0, 0.0, -20.0, 30.0], 1.0, 0.0)), "x clamped to [-20, 30]");
        let round = Form::Unary(Unary::Round, Box::new(Form::Atom));
        assert_eq!(describe(&fitted(round, vec![0.2, 0.0], 5.0, 0.0)), "x rounded to the nearest multiple of 5");
        // 20 / (1 + exp(-(x - 10) / 4)): a = -0.25, b = 2.5, c = 1.
        let sigmoid = Form::Unary(
            Unary::Recip,
            Box::new(Form::Constant(WithConstant::Shift, Box::new(Form::Unary(Unary::Exp, Box::new(Form::Atom))))),
        );
        assert_eq!(
            describe(&fitted(sigmoid, vec![-0.25, 2.5, 1.0], 20.0, 0.0)),
            "a sigmoid from 0 to 20 centred at x = 10 (width 4)"
        );
        let other = Form::Unary(Unary::Sqrt, Box::new(Form::Unary(Unary::Abs, Box::new(Form::Atom))));
        assert_eq!(
            describe(&fitted(other.clone(), vec![2.0, -1.0], 1.5, 0.0)),
            "1.5 × the square root of the absolute value of (2x − 1) + 0"
        );
        let root = Form::Unary(Unary::Sqrt, Box::new(Form::Atom));
        let (root, other) = (fitted(root, vec![1.0, -12.5], 1.0, 0.0), fitted(other, vec![1.0, 0.0], 1.0, 0.0));
        assert_eq!(domain(|x| root.eval(&[x])[0]), "x >= 12.5");
        assert_eq!(domain(|x| other.eval(&[x])[0]), "all x");
    }
}
