//! The grammar of the symbolic search: a form is an affine atom `a·x + b`, a unary operator of a form, an operator
//! with one fitted constant (`+ c`, `% c`, `max(·, c)`, `min(·, c)`, `^ c`) of a form, or a binary operator of two
//! forms. Constants are the form's parameters, in post-order (children first). Forms print as code of the
//! expression language and evaluate over many inputs at once.

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unary {
    /// −v.
    Neg,
    /// |v|.
    Abs,
    /// √v.
    Sqrt,
    /// ∛v (signed).
    Cbrt,
    /// v².
    Square,
    /// 1 / v.
    Recip,
    /// ln v.
    Log,
    /// eᵛ.
    Exp,
    /// sin v.
    Sin,
    /// tanh v.
    Tanh,
    /// ⌊v⌋.
    Floor,
    /// v rounded to the nearest integer.
    Round,
}

impl Unary {
    /// Every unary operator.
    pub const ALL: [Unary; 12] = [
        Unary::Neg,
        Unary::Abs,
        Unary::Sqrt,
        Unary::Cbrt,
        Unary::Square,
        Unary::Recip,
        Unary::Log,
        Unary::Exp,
        Unary::Sin,
        Unary::Tanh,
        Unary::Floor,
        Unary::Round,
    ];

    fn apply(self, v: f64) -> f64 {
        match self {
            Unary::Neg => -v,
            Unary::Abs => v.abs(),
            Unary::Sqrt => v.sqrt(),
            Unary::Cbrt => v.cbrt(),
            Unary::Square => v * v,
            Unary::Recip => 1.0 / v,
            Unary::Log => v.ln(),
            Unary::Exp => v.exp(),
            Unary::Sin => v.sin(),
            Unary::Tanh => v.tanh(),
            Unary::Floor => v.floor(),
            Unary::Round => v.round(),
        }
    }

    fn code(self, inner: &str) -> String {
        let name = match self {
            Unary::Neg => return format!("-({inner})"),
            Unary::Square => return format!("({inner})^2"),
            Unary::Recip => return format!("1 / ({inner})"),
            Unary::Abs => "abs",
            Unary::Sqrt => "sqrt",
            Unary::Cbrt => "cbrt",
            Unary::Log => "log",
            Unary::Exp => "exp",
            Unary::Sin => "sin",
            Unary::Tanh => "tanh",
            Unary::Floor => "floor",
            Unary::Round => "round",
        };
        format!("{name}({inner})")
    }

    /// Whether the operator is a step function (flat almost everywhere: derivatives say nothing about its constants).
    pub fn is_step(self) -> bool {
        matches!(self, Unary::Floor | Unary::Round)
    }
}

/// An operator with one fitted constant c.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WithConstant {
    /// v + c.
    Shift,
    /// v mod c (the result has the sign of c).
    Mod,
    /// max(v, c).
    Max,
    /// min(v, c).
    Min,
    /// vᶜ.
    Pow,
}

impl WithConstant {
    /// Every operator with a constant.
    pub const ALL: [WithConstant; 5] =
        [WithConstant::Shift, WithConstant::Mod, WithConstant::Max, WithConstant::Min, WithConstant::Pow];

    fn apply(self, v: f64, c: f64) -> f64 {
        match self {
            WithConstant::Shift => v + c,
            WithConstant::Mod => v.rem_euclid(c),
            WithConstant::Max => v.max(c),
            WithConstant::Min => v.min(c),
            WithConstant::Pow => v.powf(c),
        }
    }

    fn code(self, inner: &str, c: f64) -> String {
        match self {
            WithConstant::Shift => plus(inner.to_string(), c),
            WithConstant::Mod => format!("({inner}) % {}", number(c)),
            WithConstant::Max => format!("max({inner}, {})", number(c)),
            WithConstant::Min => format!("min({inner}, {})", number(c)),
            WithConstant::Pow => format!("({inner})^{}", number(c)),
        }
    }
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Binary {
    /// l + r.
    Add,
    /// l · r.
    Mul,
    /// l / r.
    Div,
    /// max(l, r).
    Max,
    /// min(l, r).
    Min,
}

impl Binary {
    /// Every binary operator.
    pub const ALL: [Binary; 5] = [Binary::Add, Binary::Mul, Binary::Div, Binary::Max, Binary::Min];

    fn apply(self, l: f64, r: f64) -> f64 {
        match self {
            Binary::Add => l + r,
            Binary::Mul => l * r,
            Binary::Div => l / r,
            Binary::Max => l.max(r),
            Binary::Min => l.min(r),
        }
    }

    fn commutes(self) -> bool {
        self != Binary::Div
    }

    fn code(self, l: &str, r: &str) -> String {
        match self {
            Binary::Add => format!("({l}) + ({r})"),
            Binary::Mul => format!("({l}) * ({r})"),
            Binary::Div => format!("({l}) / ({r})"),
            Binary::Max => format!("max({l}, {r})"),
            Binary::Min => format!("min({l}, {r})"),
        }
    }
}

/// A form: an expression of `x` with constants left to fit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Form {
    /// a·x + b (two parameters).
    Atom,
    /// A unary operator of a form.
    Unary(Unary, Box<Form>),
    /// An operator with one fitted constant (one parameter after the form's own).
    Constant(WithConstant, Box<Form>),
    /// A binary operator of two forms (the left form's parameters, then the right's).
    Binary(Binary, Box<Form>, Box<Form>),
}

/// `text + c` as code: `text` alone for 0, `text - |c|` for a negative c.
pub fn plus(text: String, c: f64) -> String {
    if c == 0.0 {
        text
    } else if c < 0.0 {
        format!("{text} - {}", number(-c))
    } else {
        format!("{text} + {}", number(c))
    }
}

/// A number as code: up to 10 significant digits, no trailing zeros.
pub fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (9 - v.abs().log10().floor() as i32).clamp(0, 18) as usize;
    let text = format!("{v:.digits$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    if text == "-0" || text == "0" {
        format!("{v:e}")
    } else {
        text.to_string()
    }
}

impl Form {
    /// How many nodes the form has.
    pub fn size(&self) -> usize {
        match self {
            Form::Atom => 1,
            Form::Unary(_, f) | Form::Constant(_, f) => 1 + f.size(),
            Form::Binary(_, l, r) => 1 + l.size() + r.size(),
        }
    }

    /// The form's complexity, its nodes weighted as PySR weighs operators: arithmetic, |·|, max and min 1; roots,
    /// powers, steps and the modulo 1.5; exp, ln, sin and tanh 2 (a Lorentzian written 1 / (u² + c) is simpler
    /// than the same curve as tanh(ln|u|)).
    pub fn complexity(&self) -> f64 {
        match self {
            Form::Atom => 1.0,
            Form::Unary(u, f) => {
                let weight = match u {
                    Unary::Neg | Unary::Abs | Unary::Square | Unary::Recip => 1.0,
                    Unary::Sqrt | Unary::Cbrt | Unary::Floor | Unary::Round => 1.5,
                    Unary::Log | Unary::Exp | Unary::Sin | Unary::Tanh => 2.0,
                };
                weight + f.complexity()
            }
            Form::Constant(k, f) => {
                let weight = if matches!(k, WithConstant::Mod | WithConstant::Pow) { 1.5 } else { 1.0 };
                weight + f.complexity()
            }
            Form::Binary(_, l, r) => 1.0 + l.complexity() + r.complexity(),
        }
    }

    /// How many constants the form has.
    pub fn parameters(&self) -> usize {
        match self {
            Form::Atom => 2,
            Form::Unary(_, f) => f.parameters(),
            Form::Constant(_, f) => 1 + f.parameters(),
            Form::Binary(_, l, r) => l.parameters() + r.parameters(),
        }
    }

    /// How many atoms (occurrences of x) the form has.
    pub fn atoms(&self) -> usize {
        match self {
            Form::Atom => 1,
            Form::Unary(_, f) | Form::Constant(_, f) => f.atoms(),
            Form::Binary(_, l, r) => l.atoms() + r.atoms(),
        }
    }

    /// Whether any node of the form is a step function or a modulo (where derivatives do not guide the fit).
    pub fn has_steps(&self) -> bool {
        match self {
            Form::Atom => false,
            Form::Unary(u, f) => u.is_step() || f.has_steps(),
            Form::Constant(k, f) => *k == WithConstant::Mod || f.has_steps(),
            Form::Binary(_, l, r) => l.has_steps() || r.has_steps(),
        }
    }

    /// The form at every x of `xs` with constants `params` (post-order).
    pub fn eval(&self, xs: &[f64], params: &[f64]) -> Vec<f64> {
        let mut next = 0;
        self.eval_from(xs, params, &mut next)
    }

    fn eval_from(&self, xs: &[f64], params: &[f64], next: &mut usize) -> Vec<f64> {
        match self {
            Form::Atom => {
                let (a, b) = (params[*next], params[*next + 1]);
                *next += 2;
                xs.iter().map(|x| a * x + b).collect()
            }
            Form::Unary(u, f) => {
                let mut values = f.eval_from(xs, params, next);
                values.iter_mut().for_each(|v| *v = u.apply(*v));
                values
            }
            Form::Constant(k, f) => {
                let mut values = f.eval_from(xs, params, next);
                let c = params[*next];
                *next += 1;
                values.iter_mut().for_each(|v| *v = k.apply(*v, c));
                values
            }
            Form::Binary(op, l, r) => {
                let mut left = l.eval_from(xs, params, next);
                let right = r.eval_from(xs, params, next);
                left.iter_mut().zip(right).for_each(|(a, b)| *a = op.apply(*a, b));
                left
            }
        }
    }

    /// The form as code of the expression language, with constants `params`.
    pub fn code(&self, params: &[f64]) -> String {
        let mut next = 0;
        self.code_from(params, &mut next)
    }

    fn code_from(&self, params: &[f64], next: &mut usize) -> String {
        match self {
            Form::Atom => {
                let (a, b) = (params[*next], params[*next + 1]);
                *next += 2;
                plus(if a == 1.0 { "x".into() } else { format!("{} * x", number(a)) }, b)
            }
            Form::Unary(u, f) => u.code(&f.code_from(params, next)),
            Form::Constant(k, f) => {
                let inner = f.code_from(params, next);
                let c = params[*next];
                *next += 1;
                k.code(&inner, c)
            }
            Form::Binary(op, l, r) => {
                let left = l.code_from(params, next);
                op.code(&left, &r.code_from(params, next))
            }
        }
    }

    /// The form's shape with its constants unnamed: `min(max(a·x + b, c), c)`.
    pub fn skeleton(&self) -> String {
        let params = vec![f64::NAN; self.parameters()];
        self.code(&params).replace("NaN * x + NaN", "a·x + b").replace("NaN", "c")
    }

    /// Whether any node of the form oscillates or steps (sin, floor, round, a modulo).
    fn oscillates(&self) -> bool {
        match self {
            Form::Atom => false,
            Form::Unary(u, f) => matches!(u, Unary::Sin) || u.is_step() || f.oscillates(),
            Form::Constant(k, f) => *k == WithConstant::Mod || f.oscillates(),
            Form::Binary(_, l, r) => l.oscillates() || r.oscillates(),
        }
    }

    /// Whether the form is an atom or a monotone operator of one (√, ln, ∛, ², |·|).
    fn is_monotone_of_atom(&self) -> bool {
        match self {
            Form::Atom => true,
            Form::Unary(Unary::Sqrt | Unary::Log | Unary::Cbrt | Unary::Square | Unary::Abs, f) => {
                matches!(f.as_ref(), Form::Atom)
            }
            _ => false,
        }
    }

    /// Whether the grammar keeps the form: the rules that keep the enumeration small. No form that a smaller or
    /// other form writes too (constant offsets or signs that the atom or the outer scale already carry, an
    /// operator applied twice where once is the same, commutative operators in one order), and oscillating or
    /// stepping operators (sin, floor, round, a modulo) only of an atom or a monotone operator of one, with only
    /// shifts, |·|, max and min applied over them.
    fn is_new(&self) -> bool {
        use Unary::*;
        match self {
            Form::Atom => true,
            Form::Unary(u, f) if f.oscillates() && *u != Abs => false,
            Form::Unary(Sin | Floor | Round, f) if !f.is_monotone_of_atom() => false,
            Form::Constant(WithConstant::Mod | WithConstant::Pow, f) if f.oscillates() => false,
            Form::Constant(WithConstant::Mod, f) if !matches!(f.as_ref(), Form::Atom | Form::Unary(Abs, _)) => false,
            Form::Unary(u, f) => match (u, f.as_ref()) {
                (Neg, Form::Atom | Form::Unary(Neg, _) | Form::Constant(WithConstant::Shift, _)) => false,
                (Abs, Form::Unary(Abs | Neg | Square | Sqrt | Exp, _)) => false,
                // An odd or even operator of −v is ±(the operator of v); only exp, √ and ln of a negated form are new.
                (_, Form::Unary(Neg, inner)) => !matches!(inner.as_ref(), Form::Atom) && matches!(u, Exp | Sqrt | Log),
                (Square, Form::Unary(Abs | Sqrt, _)) | (Sqrt, Form::Unary(Square, _)) => false,
                (Log, Form::Unary(Exp, _)) | (Exp, Form::Unary(Log | Exp, _)) | (Recip, Form::Unary(Recip, _)) => false,
                (Log, Form::Unary(Log, _)) | (Tanh, Form::Unary(Tanh, _)) => false,
                (Cbrt, Form::Unary(Cbrt | Square, _)) | (Square, Form::Unary(Cbrt, _)) => false,
                _ => true,
            },
            Form::Constant(k, f) => match (k, f.as_ref()) {
                (WithConstant::Shift, Form::Atom | Form::Constant(WithConstant::Shift, _)) => false,
                (WithConstant::Shift, Form::Unary(Neg, _)) => false,
                (WithConstant::Max | WithConstant::Min, Form::Constant(k2, _)) if k2 == k => false,
                (WithConstant::Max | WithConstant::Min, Form::Constant(WithConstant::Shift, _)) => false,
                (
                    WithConstant::Pow,
                    Form::Unary(Square | Sqrt | Cbrt | Exp, _) | Form::Constant(WithConstant::Pow, _),
                ) => false,
                _ => true,
            },
            Form::Binary(op, l, r) => {
                if op.commutes() && l > r {
                    return false;
                }
                match op {
                    Binary::Add => !matches!((l.as_ref(), r.as_ref()), (Form::Atom, Form::Atom)),
                    Binary::Div => !matches!(r.as_ref(), Form::Unary(Recip, _)),
                    _ => true,
                }
            }
        }
    }

    /// Whether the form may stand at the top, under the outer scale and offset (which carry a sign and a
    /// constant shift already).
    fn may_be_outermost(&self) -> bool {
        !matches!(self, Form::Unary(Unary::Neg, _) | Form::Constant(WithConstant::Shift, _))
    }
}

/// Every form the grammar writes with at most `max_unary_size` nodes on one atom (chains of unary operators and
/// operators with a constant), and binary forms of two such chains of at most `max_binary_size` nodes in all,
/// without forms that another form writes too.
pub fn forms(max_chain_size: usize, max_binary_size: usize) -> Vec<Form> {
    let mut chains: Vec<Vec<Form>> = vec![Vec::new(), vec![Form::Atom]];
    for size in 2..=max_chain_size.max(1) {
        let mut made = Vec::new();
        for child in &chains[size - 1] {
            let unary = Unary::ALL.iter().map(|&u| Form::Unary(u, Box::new(child.clone())));
            let constant = WithConstant::ALL.iter().map(|&k| Form::Constant(k, Box::new(child.clone())));
            made.extend(unary.chain(constant).filter(Form::is_new));
        }
        chains.push(made);
    }
    let mut all: Vec<Form> = chains.iter().flatten().cloned().collect();
    for size in 3..=max_binary_size {
        for left_size in 1..size - 1 {
            let right_size = size - 1 - left_size;
            let (Some(lefts), Some(rights)) = (chains.get(left_size), chains.get(right_size)) else { continue };
            for l in lefts {
                for r in rights {
                    for op in Binary::ALL {
                        let form = Form::Binary(op, Box::new(l.clone()), Box::new(r.clone()));
                        if form.is_new() {
                            all.push(form);
                        }
                    }
                }
            }
        }
    }
    all.retain(Form::may_be_outermost);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;

    #[test]
    fn a_forms_code_computes_what_the_form_does() {
        let clamp =
            Form::Constant(WithConstant::Min, Box::new(Form::Constant(WithConstant::Max, Box::new(Form::Atom))));
        assert_eq!(clamp.parameters(), 4);
        assert_eq!(clamp.size(), 3);
        let params = [1.0, 0.0, -20.0, 30.0];
        assert_eq!(clamp.eval(&[-50.0, 0.5, 99.0], &params), vec![-20.0, 0.5, 30.0]);
        assert_eq!(clamp.code(&params), "min(max(x, -20), 30)");
        assert_eq!(clamp.skeleton(), "min(max(a·x + b, c), c)");
        let every = forms(4, 5);
        eprintln!("forms: {}", every.len());
        let mut rng = 0.3f64;
        for form in &every {
            let params: Vec<f64> = (0..form.parameters())
                .map(|_| {
                    rng = (rng * 997.0 + 0.1).fract();
                    // Three decimals: the code prints them exactly, so code and form compute the same numbers.
                    0.2 + (rng * 1000.0).round() / 1000.0
                })
                .collect();
            let code = Expr::parse(&form.code(&params)).unwrap_or_else(|e| panic!("{}: {e}", form.code(&params)));
            let xs = [-0.9, -0.3, 0.4, 0.8];
            for (x, v) in xs.iter().zip(form.eval(&xs, &params)) {
                let c = code.eval_num(*x).unwrap();
                assert!(
                    (!v.is_finite() && !c.is_finite()) || v == c || (v - c).abs() <= 1e-4 * v.abs().max(1.0),
                    "{} at {x}: {v} vs {c}",
                    form.code(&params)
                );
            }
        }
        assert!(every.iter().all(|f| f.size() <= 5) && every.contains(&clamp));
    }

    #[test]
    fn numbers_print_short_and_exact_enough() {
        assert_eq!(number(20.0), "20");
        assert_eq!(number(-0.125), "-0.125");
        assert_eq!(number(1.0 / 3.0), "0.3333333333");
        assert_eq!(number(123456.789), "123456.789");
        assert!((number(1.5e-9).parse::<f64>().unwrap() - 1.5e-9).abs() < 1e-15);
    }
}
