//! Runs interpreters over a suite and tabulates FIND's scores per category; also the random-guess baseline.

use models::Progress;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::score::{score, table, Score, TableRow};
use super::session::{Answer, Budget, Interpreter, Round, Session, SuiteFunction};
use super::strings::primitives;
use super::suite::{base_function, FunctionSpec, Suite};
use crate::error::Result;

/// The random-guess baseline: a random base function (numbers) or a random primitive (strings), without
/// calling the function at all.
pub struct RandomGuess {
    rng: StdRng,
}

impl RandomGuess {
    /// A baseline drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        RandomGuess { rng: StdRng::seed_from_u64(seed) }
    }
}

impl Interpreter for RandomGuess {
    fn name(&self) -> String {
        "random guess".into()
    }

    fn interpret(&mut self, session: &mut Session) -> Answer {
        if session.numeric_input() {
            let (family, code, domain) = base_function(&mut self.rng);
            Answer { description: format!("a guess: {family}"), domain, code, interval: None }
        } else {
            let (code, description) = primitives().choose(&mut self.rng).cloned().unwrap_or_default();
            Answer { description, domain: "all strings".into(), code, interval: None }
        }
    }
}

/// One function's interpretation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The function.
    pub id: usize,
    /// What the interpreter answered.
    pub answer: Answer,
    /// How it scored.
    pub score: Score,
    /// What it asked and saw.
    pub transcript: Vec<Round>,
}

/// An interpreter's results on a suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// The interpreter.
    pub interpreter: String,
    /// Its budget.
    pub budget: Budget,
    /// Per category.
    pub table: Vec<TableRow>,
    /// Per function.
    pub outcomes: Vec<Outcome>,
}

/// Interprets every function of `suite` that `keep` accepts.
pub fn evaluate(
    suite: &Suite,
    interpreter: &mut dyn Interpreter,
    budget: Budget,
    keep: impl Fn(&FunctionSpec) -> bool,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let chosen: Vec<&FunctionSpec> = suite.functions.iter().filter(|f| keep(f)).collect();
    progress.begin(&format!("interpreting ({})", interpreter.name()), chosen.len() as u64);
    let mut outcomes = Vec::with_capacity(chosen.len());
    let mut scored = Vec::with_capacity(chosen.len());
    for spec in chosen {
        progress.check()?;
        let mut black_box = SuiteFunction::new(spec, suite.seed);
        let mut session = Session::new(&mut black_box, budget);
        let answer = interpreter.interpret(&mut session);
        let s = score(spec, &answer);
        scored.push((spec, s.clone()));
        outcomes.push(Outcome { id: spec.id, answer, score: s, transcript: session.transcript });
        progress.advance(1);
    }
    Ok(Evaluation { interpreter: interpreter.name(), budget, table: table(&scored), outcomes })
}
