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
use crate::error::{FindError, Result};

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

impl Evaluation {
    /// One evaluation from evaluations of one interpreter on parts of `suite`, in order: their outcomes, and the
    /// table over all of them (what one evaluation of every part's functions gives, for an interpreter whose answer
    /// on a function does not depend on the functions it saw before).
    pub fn join(parts: Vec<Evaluation>, suite: &Suite) -> Result<Evaluation> {
        let Some(first) = parts.first() else {
            return Err(FindError::InvalidInput("no evaluations to join".into()));
        };
        let (interpreter, budget) = (first.interpreter.clone(), first.budget);
        if let Some(other) = parts.iter().find(|p| p.interpreter != interpreter) {
            return Err(FindError::InvalidInput(format!(
                "evaluations of {interpreter} and {} cannot be joined",
                other.interpreter
            )));
        }
        let outcomes: Vec<Outcome> = parts.into_iter().flat_map(|p| p.outcomes).collect();
        let scored = outcomes
            .iter()
            .map(|o| {
                let spec = suite.functions.iter().find(|f| f.id == o.id).ok_or_else(|| {
                    FindError::InvalidInput(format!("function {} of the evaluation is not in the suite", o.id))
                })?;
                Ok((spec, o.score.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Evaluation { interpreter, budget, table: table(&scored), outcomes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use models::Silent;

    /// Answers the same for every function, so its answers do not depend on order.
    struct Constant;

    impl Interpreter for Constant {
        fn name(&self) -> String {
            "constant".into()
        }

        fn interpret(&mut self, session: &mut Session) -> Answer {
            let code = if session.numeric_input() { "x * 2" } else { "x" };
            Answer { description: "twice x".into(), domain: "all x".into(), code: code.into(), interval: None }
        }
    }

    #[test]
    fn evaluations_of_parts_joined_equal_the_evaluation_of_the_whole() {
        let suite = Suite::generate(3, 12, 6).unwrap();
        let budget = Budget { rounds: 1, ..Budget::default() };
        let whole = evaluate(&suite, &mut Constant, budget, |_| true, &Silent).unwrap();
        let parts = [0..7, 7..18].map(|ids| evaluate(&suite, &mut Constant, budget, |f| ids.contains(&f.id), &Silent));
        let joined = Evaluation::join(parts.into_iter().collect::<Result<Vec<_>>>().unwrap(), &suite).unwrap();
        assert_eq!(serde_json::to_value(&joined).unwrap(), serde_json::to_value(&whole).unwrap());
        assert!(whole.table.len() > 2, "the suite spans categories");

        let random = evaluate(&suite, &mut RandomGuess::new(0), budget, |_| true, &Silent).unwrap();
        let mixed = Evaluation::join(vec![whole.clone(), random], &suite).unwrap_err();
        assert!(mixed.to_string().contains("constant and random guess"), "{mixed}");
        let other = Suite::generate(3, 2, 0).unwrap();
        assert!(Evaluation::join(vec![whole], &other).unwrap_err().to_string().contains("not in the suite"));
        assert!(Evaluation::join(Vec::new(), &suite).is_err());
    }
}
