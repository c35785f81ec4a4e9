//! Program-state task (after Jin & Rinard, "Evidence of Meaning in Language Models Trained on Programs"):
//! generated straight-line Python programs over a few integer variables, written as an interactive session
//! (`>>> b = a + 4`). Every token is labelled with the value of the variable its line assigns (or prints) as
//! of that token (current state: the new value from the statement's last token on) or at the end of the
//! program (future state). The alternative-semantics control swaps what `+` and `-` do, re-executes the same
//! text, and labels it with the new values.

use std::collections::HashMap;

use models::tokenizer::ByteSpan;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::dataset::TokenLabeller;

/// Variable names the generator uses.
pub const VARIABLES: [char; 3] = ['a', 'b', 'c'];
/// Values stay in `0..VALUES` under both semantics; one class per value.
pub const VALUES: i64 = 10;

/// What the operators mean when a program is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Semantics {
    /// Python's.
    Standard,
    /// `+` subtracts and `-` adds (the control).
    SwappedAddSub,
}

/// The right-hand side of an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Expr {
    /// A literal.
    Literal(i64),
    /// `x <op> y` with a variable on the left and a variable or literal on the right.
    Binary(char, char, Operand),
}

/// The right operand of a binary expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Operand {
    /// A variable.
    Variable(char),
    /// A literal.
    Literal(i64),
}

/// One statement `target = expr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// Assigned variable.
    pub target: char,
    /// Its new value.
    pub expr: Expr,
}

/// A generated program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    /// The statements in order (every variable is assigned a literal first).
    pub statements: Vec<Statement>,
    /// The variable printed at the end.
    pub printed: char,
}

fn apply(op: char, x: i64, y: i64, semantics: Semantics) -> i64 {
    match (op, semantics) {
        ('+', Semantics::Standard) | ('-', Semantics::SwappedAddSub) => x + y,
        ('-', Semantics::Standard) | ('+', Semantics::SwappedAddSub) => x - y,
        _ => x * y,
    }
}

impl Program {
    /// The values of every variable after each statement.
    pub fn execute(&self, semantics: Semantics) -> Vec<HashMap<char, i64>> {
        let mut state: HashMap<char, i64> = HashMap::new();
        self.statements
            .iter()
            .map(|s| {
                let value = match s.expr {
                    Expr::Literal(v) => v,
                    Expr::Binary(x, op, rhs) => {
                        let y = match rhs {
                            Operand::Variable(v) => state.get(&v).copied().unwrap_or(0),
                            Operand::Literal(v) => v,
                        };
                        apply(op, state.get(&x).copied().unwrap_or(0), y, semantics)
                    }
                };
                state.insert(s.target, value);
                state.clone()
            })
            .collect()
    }

    /// The value the final `print` shows.
    pub fn output(&self, semantics: Semantics) -> i64 {
        self.execute(semantics).last().and_then(|s| s.get(&self.printed).copied()).unwrap_or(0)
    }

    /// The program as an interactive session, without the final print.
    pub fn statements_text(&self) -> String {
        self.statements
            .iter()
            .map(|s| match s.expr {
                Expr::Literal(v) => format!(">>> {} = {v}\n", s.target),
                Expr::Binary(x, op, Operand::Variable(y)) => format!(">>> {} = {x} {op} {y}\n", s.target),
                Expr::Binary(x, op, Operand::Literal(y)) => format!(">>> {} = {x} {op} {y}\n", s.target),
            })
            .collect()
    }

    /// The session with `>>> print(x)` at the end: the model's next token is the printed value.
    pub fn text(&self) -> String {
        format!("{}>>> print({})\n", self.statements_text(), self.printed)
    }

    /// Byte offset of each statement's last character in [`Program::text`].
    pub fn statement_ends(&self) -> Vec<usize> {
        let text = self.statements_text();
        text.match_indices('\n').map(|(i, _)| i - 1).collect()
    }

    /// Generates a program of `length` statements whose values stay in `0..VALUES` under both semantics.
    pub fn generate(length: usize, rng: &mut StdRng) -> Program {
        loop {
            let mut statements: Vec<Statement> = VARIABLES
                .iter()
                .map(|&v| Statement { target: v, expr: Expr::Literal(rng.gen_range(0..VALUES)) })
                .collect();
            while statements.len() < length.max(VARIABLES.len() + 1) {
                let pick = |rng: &mut StdRng| VARIABLES[rng.gen_range(0..VARIABLES.len())];
                let op = ['+', '-', '*'][rng.gen_range(0..3)];
                let rhs = if rng.gen_bool(0.5) {
                    Operand::Variable(pick(rng))
                } else {
                    Operand::Literal(rng.gen_range(1..4))
                };
                statements.push(Statement { target: pick(rng), expr: Expr::Binary(pick(rng), op, rhs) });
            }
            let program = Program { printed: statements[statements.len() - 1].target, statements };
            let in_range =
                |s: Semantics| program.execute(s).iter().all(|m| m.values().all(|v| (0..VALUES).contains(v)));
            if in_range(Semantics::Standard) && in_range(Semantics::SwappedAddSub) {
                return program;
            }
        }
    }

    /// `count` programs from `seed`.
    pub fn generate_many(count: usize, length: usize, seed: u64) -> Vec<Program> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count).map(|_| Program::generate(length, &mut rng)).collect()
    }
}

/// Which state labels a statement's last token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StateTarget {
    /// The assigned variable's value right after the statement.
    Current,
    /// The assigned variable's value at the end of the program.
    Final,
}

/// The labels of one line of a program text.
#[derive(Debug, Clone)]
struct LineLabels {
    /// Bytes of the line, its newline included.
    bytes: std::ops::Range<usize>,
    /// Byte offset of the statement's last character: tokens ending there or later see the new value.
    completes_at: usize,
    /// The label before the statement completes (`None` while the variable is still undefined).
    before: Option<usize>,
    /// The label once it has.
    after: usize,
}

/// The program-state task over a set of programs. Every token of a line is labelled with a value of the
/// variable that line assigns (or prints): for the current state, its value as of that token (the old value
/// until the statement's last token, then the new one); for the future state, its value at the end.
pub struct ProgramState {
    name: String,
    lines: HashMap<String, Vec<LineLabels>>,
}

impl ProgramState {
    /// Labels for `programs` under `semantics`.
    pub fn new(programs: &[Program], target: StateTarget, semantics: Semantics) -> Self {
        let lines = programs.iter().map(|p| (p.text(), Self::line_labels(p, target, semantics))).collect();
        let name = format!(
            "program_state_{}{}",
            if target == StateTarget::Current { "current" } else { "final" },
            if semantics == Semantics::Standard { "" } else { "_swapped" }
        );
        ProgramState { name, lines }
    }

    fn line_labels(program: &Program, target: StateTarget, semantics: Semantics) -> Vec<LineLabels> {
        let states = program.execute(semantics);
        let last = states.last().cloned().unwrap_or_default();
        let value = |v: Option<&i64>| v.map(|&v| v as usize);
        let mut start = 0;
        let mut lines: Vec<LineLabels> = program
            .statements
            .iter()
            .zip(program.statement_ends())
            .enumerate()
            .map(|(i, (s, end))| {
                // Tokens before the statement completes are left out while the variable is undefined, for both
                // targets, so every label set covers the same tokens.
                let previous = if i == 0 { None } else { states[i - 1].get(&s.target) };
                let (before, after) = match target {
                    StateTarget::Current => (value(previous), states[i][&s.target] as usize),
                    StateTarget::Final => (previous.map(|_| last[&s.target] as usize), last[&s.target] as usize),
                };
                let line = LineLabels { bytes: start..end + 2, completes_at: end, before, after };
                start = end + 2;
                line
            })
            .collect();
        let printed = last.get(&program.printed).copied().unwrap_or_default() as usize;
        let text_len = program.text().len();
        lines.push(LineLabels { bytes: start..text_len, completes_at: start, before: Some(printed), after: printed });
        lines
    }
}

impl TokenLabeller for ProgramState {
    fn name(&self) -> &str {
        &self.name
    }

    fn classes(&self) -> usize {
        VALUES as usize
    }

    fn labels(&self, text: &str, spans: &[ByteSpan]) -> Vec<Option<usize>> {
        let Some(lines) = self.lines.get(text) else { return vec![None; spans.len()] };
        spans
            .iter()
            .map(|&(start, end)| {
                let last = end.checked_sub(1).filter(|&l| l >= start)?;
                let line = lines.iter().find(|l| l.bytes.contains(&last))?;
                if last >= line.completes_at {
                    Some(line.after)
                } else {
                    line.before
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_written_program_executes_under_both_semantics() {
        let program = Program {
            statements: vec![
                Statement { target: 'a', expr: Expr::Literal(3) },
                Statement { target: 'b', expr: Expr::Binary('a', '+', Operand::Literal(4)) },
                Statement { target: 'a', expr: Expr::Binary('b', '-', Operand::Variable('a')) },
            ],
            printed: 'a',
        };
        assert_eq!(program.text(), ">>> a = 3\n>>> b = a + 4\n>>> a = b - a\n>>> print(a)\n");
        assert_eq!(program.output(Semantics::Standard), 4); // b = 7, a = 7 - 3
        assert_eq!(program.output(Semantics::SwappedAddSub), 2); // b = 3 - 4 = -1, a = -1 + 3
        let text = program.text();
        let ends = program.statement_ends();
        assert_eq!(ends.iter().map(|&e| &text[e..=e]).collect::<Vec<_>>(), ["3", "4", "a"]);
        let task = ProgramState::new(std::slice::from_ref(&program), StateTarget::Current, Semantics::Standard);
        // Statement ends; ">>>" of line 1 (a undefined) and of line 3 (a still 3); "print"; "a = b" of line 3.
        let mut spans: Vec<(usize, usize)> = ends.iter().map(|&e| (e, e + 1)).collect();
        let line3 = text.find(">>> a = b").unwrap();
        spans.extend([
            (0, 3),
            (line3, line3 + 3),
            (text.find("print").unwrap(), text.find("print").unwrap() + 5),
            (line3 + 4, line3 + 9),
        ]);
        assert_eq!(task.labels(&text, &spans), [Some(3), Some(7), Some(4), None, Some(3), Some(4), Some(3)]);
        let future = ProgramState::new(&[program], StateTarget::Final, Semantics::Standard);
        assert_eq!(future.labels(&text, &spans), [Some(4), Some(7), Some(4), None, Some(4), Some(4), Some(4)]);
    }

    #[test]
    fn generated_programs_stay_in_range_and_differ_between_semantics() {
        let programs = Program::generate_many(200, 6, 1);
        let differ =
            programs.iter().filter(|p| p.output(Semantics::Standard) != p.output(Semantics::SwappedAddSub)).count();
        assert!(differ > 50, "only {differ} of 200 programs print different values under the swapped semantics");
        assert_eq!(programs, Program::generate_many(200, 6, 1), "generation is seeded");
    }
}
