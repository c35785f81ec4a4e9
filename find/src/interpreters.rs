//! The interpreters a user can choose, by name: the one place that builds them.

use models::Model;
use serde::{Deserialize, Serialize};

use super::agent::{LmAgent, LocalBackend};
use super::evaluate::RandomGuess;
use super::scientist::Scientist;
use super::session::Interpreter;
use crate::error::{FindError, Result};

/// An interpreter, as the command line (`lm-local`), specs (`LmLocal`) and the app name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InterpreterKind {
    /// The search scientist: active sampling, least-squares families, symbolic search, composition search.
    Scientist,
    /// The search scientist with its family library alone for numbers (no symbolic search): the baseline.
    Library,
    /// A random guess, without calls.
    Random,
    /// The loaded model as an LM agent (through its chat template).
    LmLocal,
    /// An OpenAI-compatible endpoint as an LM agent (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_MODEL`).
    LmEndpoint,
}

impl InterpreterKind {
    /// Every interpreter.
    pub const ALL: [InterpreterKind; 5] = [
        InterpreterKind::Scientist,
        InterpreterKind::Library,
        InterpreterKind::Random,
        InterpreterKind::LmLocal,
        InterpreterKind::LmEndpoint,
    ];

    /// The command line's name (`lm-local`).
    pub fn name(self) -> &'static str {
        match self {
            InterpreterKind::Scientist => "scientist",
            InterpreterKind::Library => "library",
            InterpreterKind::Random => "random",
            InterpreterKind::LmLocal => "lm-local",
            InterpreterKind::LmEndpoint => "lm-endpoint",
        }
    }

    /// The interpreter, drawing from `seed`; the local LM agent runs on `model`. The endpoint agent needs the
    /// `http` feature.
    pub fn build<'a>(self, model: &'a Model, seed: u64) -> Result<Box<dyn Interpreter + 'a>> {
        Ok(match self {
            InterpreterKind::Scientist => Box::new(Scientist::new(seed)),
            InterpreterKind::Library => Box::new(Scientist::library_only(seed)),
            InterpreterKind::Random => Box::new(RandomGuess::new(seed)),
            InterpreterKind::LmLocal => Box::new(LmAgent::new(LocalBackend::new(model, 96))),
            #[cfg(feature = "http")]
            InterpreterKind::LmEndpoint => {
                Box::new(LmAgent::new(crate::endpoint::EndpointBackend::from_env(std::time::Duration::from_secs(60))))
            }
            #[cfg(not(feature = "http"))]
            InterpreterKind::LmEndpoint => {
                return Err(FindError::InvalidInput("the endpoint agent needs find's `http` feature".into()))
            }
        })
    }
}

impl std::fmt::Display for InterpreterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for InterpreterKind {
    type Err = FindError;

    fn from_str(text: &str) -> Result<Self> {
        InterpreterKind::ALL.into_iter().find(|kind| kind.name() == text).ok_or_else(|| {
            let names: Vec<&str> = InterpreterKind::ALL.iter().map(|k| k.name()).collect();
            FindError::InvalidInput(format!("unknown interpreter {text:?}; the interpreters are {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interpreter_parses_from_its_name() {
        for kind in InterpreterKind::ALL {
            assert_eq!(kind.name().parse::<InterpreterKind>().unwrap(), kind);
        }
        assert!("oracle".parse::<InterpreterKind>().unwrap_err().to_string().contains("lm-endpoint"));
    }
}
