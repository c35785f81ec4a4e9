//! The small expression language interpreters answer in, evaluated without Python. One expression of `x`:
//! numbers, strings in double quotes, `+ - * / % ^`, comparisons (1 or 0), and calls: numeric functions
//! (`abs sqrt cbrt log exp sin cos tan tanh floor ceil round sign min max if relu`) and the string primitives of
//! [`super::strings`] (`upper(x)`, `shift(x, 2)`, `reverse(upper(x))` ...).

pub use crate::value::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The input.
    X,
    /// A literal.
    Lit(Value),
    /// A unary minus.
    Neg(Box<Expr>),
    /// A binary operator.
    Bin(char, Box<Expr>, Box<Expr>),
    /// A comparison (`<`, `<=`, `>`, `>=`, `==`, `!=`).
    Cmp(String, Box<Expr>, Box<Expr>),
    /// A call.
    Call(String, Vec<Expr>),
}

/// Why an expression did not parse or evaluate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// Not in the grammar.
    #[error("parse error at character {at}: {message}")]
    Parse {
        /// Character offset.
        at: usize,
        /// What was expected.
        message: String,
    },
    /// A call or operator that cannot apply.
    #[error("evaluation error: {0}")]
    Eval(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Str(String),
    Name(String),
    Op(String),
}

fn lex(text: &str) -> Result<Vec<(usize, Token)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let sign = usize::from(chars.get(i + 1).is_some_and(|&c| c == '-' || c == '+'));
                if chars.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
                    i += 1 + sign;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let n = literal
                .parse()
                .map_err(|_| ExprError::Parse { at: start, message: format!("bad number {literal}") })?;
            tokens.push((start, Token::Num(n)));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((start, Token::Name(chars[start..i].iter().collect())));
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(ExprError::Parse { at: start, message: "unterminated string".into() });
            }
            i += 1;
            tokens.push((start, Token::Str(s)));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = if ["<=", ">=", "==", "!=", "**"].contains(&two.as_str()) { two } else { c.to_string() };
            if !["+", "-", "*", "/", "%", "^", "**", "(", ")", ",", "<", ">", "<=", ">=", "==", "!="]
                .contains(&op.as_str())
            {
                return Err(ExprError::Parse { at: start, message: format!("unexpected {c:?}") });
            }
            i += op.chars().count();
            tokens.push((start, Token::Op(if op == "**" { "^".into() } else { op })));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn at(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |t| t.0)
    }

    fn error<T>(&self, message: &str) -> Result<T, ExprError> {
        Err(ExprError::Parse { at: self.at(), message: message.to_string() })
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.tokens.get(self.pos), Some((_, Token::Op(o))) if o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.additive()?;
        for op in ["<=", ">=", "==", "!=", "<", ">"] {
            if self.eat(op) {
                return Ok(Expr::Cmp(op.into(), Box::new(left), Box::new(self.additive()?)));
            }
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.term()?;
        loop {
            let op = if self.eat("+") {
                '+'
            } else if self.eat("-") {
                '-'
            } else {
                return Ok(left);
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat("*") {
                '*'
            } else if self.eat("/") {
                '/'
            } else if self.eat("%") {
                '%'
            } else {
                return Ok(left);
            };
            left = Expr::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        let base = self.atom()?;
        if self.eat("^") {
            return Ok(Expr::Bin('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        let Some((_, token)) = self.tokens.get(self.pos).cloned() else { return self.error("unexpected end") };
        self.pos += 1;
        match token {
            Token::Num(n) => Ok(Expr::Lit(Value::Num(n))),
            Token::Str(s) => Ok(Expr::Lit(Value::Str(s))),
            Token::Name(name) if name == "x" => Ok(Expr::X),
            Token::Name(name) if name == "pi" => Ok(Expr::Lit(Value::Num(std::f64::consts::PI))),
            Token::Name(name) => {
                if !self.eat("(") {
                    self.pos -= 1;
                    return self.error(&format!("unknown name {name:?} (the input is x)"));
                }
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.comparison()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return self.error("expected , or )");
                        }
                    }
                }
                Ok(Expr::Call(name, args))
            }
            Token::Op(o) if o == "(" => {
                let inner = self.comparison()?;
                if !self.eat(")") {
                    return self.error("expected )");
                }
                Ok(inner)
            }
            Token::Op(o) => {
                self.pos -= 1;
                self.error(&format!("unexpected {o:?}"))
            }
        }
    }
}

impl Expr {
    /// Parses one expression of `x`.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let tokens = lex(text)?;
        let mut parser = Parser { tokens, pos: 0, end: text.chars().count() };
        let expr = parser.comparison()?;
        if parser.pos < parser.tokens.len() {
            return parser.error("unexpected text after the expression");
        }
        Ok(expr)
    }

    /// Evaluates at `x`.
    pub fn eval(&self, x: &Value) -> Result<Value, ExprError> {
        let num = |v: Value| match v {
            Value::Num(n) => Ok(n),
            Value::Str(s) => Err(ExprError::Eval(format!("{s:?} is not a number"))),
        };
        Ok(match self {
            Expr::X => x.clone(),
            Expr::Lit(v) => v.clone(),
            Expr::Neg(e) => Value::Num(-num(e.eval(x)?)?),
            Expr::Bin(op, a, b) => match (a.eval(x)?, b.eval(x)?) {
                (Value::Str(a), Value::Str(b)) if *op == '+' => Value::Str(a + &b),
                (a, b) => {
                    let (a, b) = (num(a)?, num(b)?);
                    Value::Num(match op {
                        '+' => a + b,
                        '-' => a - b,
                        '*' => a * b,
                        '/' => a / b,
                        '%' => a.rem_euclid(b),
                        _ => a.powf(b),
                    })
                }
            },
            Expr::Cmp(op, a, b) => {
                let (a, b) = (a.eval(x)?, b.eval(x)?);
                let result = match (op.as_str(), &a, &b) {
                    ("==", _, _) => a == b,
                    ("!=", _, _) => a != b,
                    (_, Value::Num(a), Value::Num(b)) => match op.as_str() {
                        "<" => a < b,
                        "<=" => a <= b,
                        ">" => a > b,
                        _ => a >= b,
                    },
                    _ => return Err(ExprError::Eval(format!("cannot compare {a} and {b}"))),
                };
                Value::Num(if result { 1.0 } else { 0.0 })
            }
            Expr::Call(name, args) => {
                let values = args.iter().map(|a| a.eval(x)).collect::<Result<Vec<_>, _>>()?;
                call(name, values)?
            }
        })
    }

    /// Evaluates at a number.
    pub fn eval_num(&self, x: f64) -> Result<f64, ExprError> {
        match self.eval(&Value::Num(x))? {
            Value::Num(n) => Ok(n),
            Value::Str(s) => Err(ExprError::Eval(format!("the result {s:?} is not a number"))),
        }
    }

    /// Evaluates at a string.
    pub fn eval_str(&self, x: &str) -> Result<String, ExprError> {
        match self.eval(&Value::Str(x.to_string()))? {
            Value::Str(s) => Ok(s),
            Value::Num(n) => Ok(super::strings::number_word(n as i64)),
        }
    }
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, ExprError> {
    let nums: Option<Vec<f64>> = args.iter().map(|a| if let Value::Num(n) = a { Some(*n) } else { None }).collect();
    if let Some(n) = &nums {
        let one = |f: fn(f64) -> f64| -> Result<Value, ExprError> {
            match n.as_slice() {
                [a] => Ok(Value::Num(f(*a))),
                _ => Err(ExprError::Eval(format!("{name} takes one argument, got {}", n.len()))),
            }
        };
        match name {
            "abs" => return one(f64::abs),
            "sqrt" => return one(f64::sqrt),
            "cbrt" => return one(f64::cbrt),
            "sign" => {
                return one(|v| {
                    if v > 0.0 {
                        1.0
                    } else if v < 0.0 {
                        -1.0
                    } else {
                        0.0
                    }
                })
            }
            "log" => return one(f64::ln),
            "exp" => return one(f64::exp),
            "sin" => return one(f64::sin),
            "cos" => return one(f64::cos),
            "tan" => return one(f64::tan),
            "tanh" => return one(f64::tanh),
            "floor" => return one(f64::floor),
            "ceil" => return one(f64::ceil),
            "round" => return one(f64::round),
            "relu" => return one(|v| v.max(0.0)),
            "min" | "max" if !n.is_empty() => {
                let pick = if name == "min" { f64::min } else { f64::max };
                return Ok(Value::Num(
                    n.iter().copied().fold(if name == "min" { f64::INFINITY } else { f64::NEG_INFINITY }, pick),
                ));
            }
            "if" => {
                return match n.as_slice() {
                    [c, a, b] => Ok(Value::Num(if *c != 0.0 { *a } else { *b })),
                    _ => Err(ExprError::Eval("if takes (condition, then, else)".into())),
                }
            }
            _ => {}
        }
    }
    if name == "if" {
        return match args.as_slice() {
            [Value::Num(c), a, b] => Ok(if *c != 0.0 { a.clone() } else { b.clone() }),
            _ => Err(ExprError::Eval("if takes (condition, then, else)".into())),
        };
    }
    super::strings::apply(name, &args)
        .or_else(|| super::programs::apply(name, &args))
        .ok_or_else(|| ExprError::Eval(format!("unknown function {name} for arguments {args:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_compute_what_they_describe() {
        let run = |e: &str, x: &str| Expr::parse(e).unwrap().eval_str(x).unwrap();
        assert_eq!(run("upper(reverse(x))", "abc1"), "1CBA");
        assert_eq!(run("shift(x, 1)", "azZ9"), "baA9");
        assert_eq!(run("shift(x, -1)", "abc"), "zab");
        assert_eq!(run("count_vowels(x)", "education"), "five");
        assert_eq!(run("count_chars(x)", "abcdefghijklmnopqrstuvw"), "twenty-three");
        assert_eq!(run("dedup(x)", "aabbbca"), "abca");
        assert_eq!(run("rotate_right(x)", "hello"), "ohell");
        assert_eq!(run("replace(x, \"a\", \"e\")", "banana"), "benene");
        assert_eq!(run("alternate_case(x)", "hello"), "HeLlO");
        assert_eq!(run("letter_positions(x)", "ajz"), "106");
        assert_eq!(run("odd_chars(x)", "abcdef"), "bdf");
        assert!(crate::strings::primitives().len() >= 65, "{}", crate::strings::primitives().len());
        for (expr, _) in crate::strings::primitives() {
            assert!(Expr::parse(&expr).unwrap().eval_str("Hello World 42").is_ok(), "{expr}");
        }
    }

    #[test]
    fn numeric_expressions_follow_the_usual_precedence() {
        let cases = [
            ("2 + 3 * x", 4.0, 14.0),
            ("-x^2", 3.0, -9.0),
            ("(x - 1) / 2", 5.0, 2.0),
            ("if(x > 0, x, 0.1 * x)", -10.0, -1.0),
            ("abs(x - 2) + max(1, x, 3)", 5.0, 8.0),
            ("x ** 2 % 5", 3.0, 4.0),
            ("1.5e2 + x", 1.0, 151.0),
            ("cbrt(x) * sign(x - 9)", -27.0, 3.0),
            ("(x >= 1) * 2", 1.0, 2.0),
        ];
        for (text, x, expected) in cases {
            assert_eq!(Expr::parse(text).unwrap().eval_num(x).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn bad_expressions_are_errors_with_a_position() {
        for text in ["2 +", "foo", "x +* 2", "(x", "\"abc", "x $ 2", "2 3"] {
            assert!(matches!(Expr::parse(text), Err(ExprError::Parse { .. })), "{text}");
        }
        assert!(Expr::parse("nosuch(x)").unwrap().eval_num(1.0).is_err());
        assert!(Expr::parse("sqrt(1, 2)").unwrap().eval_num(1.0).is_err());
        assert!(Expr::parse("x + 1").unwrap().eval_str("ab").is_err());
    }
}
