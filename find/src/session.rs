//! The black-box protocol: an interpreter asks for f(x) on inputs of its choice, round by round, under a
//! budget, and everything it saw is recorded; it ends with an [`Answer`].

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::suite::FunctionSpec;
use crate::error::{FindError, Result};
use crate::value::Value;

/// Something an interpreter can call.
pub trait BlackBox {
    /// Whether inputs are numbers (otherwise strings).
    fn numeric_input(&self) -> bool;
    /// What the interpreter is told about the function besides its calls (e.g. "an MLP approximation").
    fn hint(&self) -> Option<String> {
        None
    }
    /// f(x).
    fn call(&mut self, x: &Value) -> Result<Value>;
}

/// How much an interpreter may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Rounds of calls (FIND: 20).
    pub rounds: usize,
    /// Inputs per round.
    pub inputs_per_round: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { rounds: 20, inputs_per_round: 64 }
    }
}

/// One round of calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// The pairs (x, f(x)) shown.
    pub calls: Vec<(Value, Value)>,
}

/// An interpreter's answer: FIND's description, domain and code (in [`super::expr`]), and an interval where the
/// function behaves differently, when one was found.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Answer {
    /// What the function does, in words.
    pub description: String,
    /// Where its behaviour changes.
    pub domain: String,
    /// An expression of `x`.
    pub code: String,
    /// The reported corrupted interval.
    pub interval: Option<(f64, f64)>,
}

/// One interpretation in progress.
pub struct Session<'a> {
    black_box: &'a mut dyn BlackBox,
    /// The budget.
    pub budget: Budget,
    /// Every round so far.
    pub transcript: Vec<Round>,
}

impl<'a> Session<'a> {
    /// A fresh session on `black_box`.
    pub fn new(black_box: &'a mut dyn BlackBox, budget: Budget) -> Self {
        Session { black_box, budget, transcript: Vec::new() }
    }

    /// Whether inputs are numbers.
    pub fn numeric_input(&self) -> bool {
        self.black_box.numeric_input()
    }

    /// What the interpreter is told about the function.
    pub fn hint(&self) -> Option<String> {
        self.black_box.hint()
    }

    /// Rounds left.
    pub fn rounds_left(&self) -> usize {
        self.budget.rounds.saturating_sub(self.transcript.len())
    }

    /// Asks for f at `inputs` (at most `inputs_per_round` are used) as one round.
    pub fn ask(&mut self, inputs: &[Value]) -> Result<Vec<(Value, Value)>> {
        if self.rounds_left() == 0 {
            return Err(FindError::InvalidInput(format!("the budget of {} rounds is spent", self.budget.rounds)));
        }
        let calls = inputs
            .iter()
            .take(self.budget.inputs_per_round)
            .map(|x| Ok((x.clone(), self.black_box.call(x)?)))
            .collect::<Result<Vec<_>>>()?;
        self.transcript.push(Round { calls: calls.clone() });
        Ok(calls)
    }

    /// Every (x, f(x)) seen so far.
    pub fn observations(&self) -> Vec<(Value, Value)> {
        self.transcript.iter().flat_map(|r| r.calls.iter().cloned()).collect()
    }
}

/// Something that interprets functions.
pub trait Interpreter {
    /// Its name in tables.
    fn name(&self) -> String;
    /// Runs one session to its answer.
    fn interpret(&mut self, session: &mut Session) -> Answer;
}

/// A suite function as a black box, with seeded noise.
pub struct SuiteFunction<'a> {
    spec: &'a FunctionSpec,
    rng: StdRng,
}

impl<'a> SuiteFunction<'a> {
    /// The black box of `spec`; its noise is seeded by `seed`.
    pub fn new(spec: &'a FunctionSpec, seed: u64) -> Self {
        SuiteFunction { spec, rng: StdRng::seed_from_u64(seed ^ (spec.id as u64).wrapping_mul(0x9E37_79B9)) }
    }
}

impl BlackBox for SuiteFunction<'_> {
    fn numeric_input(&self) -> bool {
        !self.spec.category.is_string()
    }

    fn hint(&self) -> Option<String> {
        self.spec.mlp.as_ref().map(|_| {
            "The function is implemented by a small neural network (an MLP approximation of a simpler function)."
                .to_string()
        })
    }

    fn call(&mut self, x: &Value) -> Result<Value> {
        match x {
            Value::Num(v) if self.numeric_input() => Ok(Value::Num(self.spec.call_numeric(*v, &mut self.rng)?)),
            Value::Str(s) if !self.numeric_input() => Ok(Value::Str(self.spec.call_string(s)?)),
            other => Err(FindError::InvalidInput(format!("function {} does not take {other}", self.spec.id))),
        }
    }
}
