//! Built-in probing tasks beyond structure (which lives in `dataset`): syntax node kinds, program state with its
//! alternative-semantics control, API-name cloze, and user tasks from JSONL. [`ProbeTask`] names every task the
//! front-ends offer, with its labeller.

pub mod api_cloze;
pub mod program_state;
pub mod syntax;
pub mod user;

use serde::{Deserialize, Serialize};

use crate::dataset::{BracketDepth, IndentLevel, TokenLabeller};
use crate::error::{ProbeError, Result};

/// A probing task, as the command line (`bracket-depth`), specs (`BracketDepth`) and the app name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ProbeTask {
    /// Bracket nesting depth (0, 1, 2, 3 or deeper) over CPython files.
    #[default]
    BracketDepth,
    /// Indentation level (0, 1, 2, 3 or deeper) over CPython files.
    IndentLevel,
    /// The tree-sitter-python category of each token (keyword, identifier, operator, string ...).
    Syntax,
    /// Values of variables in generated programs: current and future state, the swapped-semantics control, and
    /// a steering check at the best layer.
    ProgramState,
    /// API-name cloze prompts from real standard-library uses, top-k per layer through the logit lens.
    ApiCloze,
    /// Spans and labels from a JSONL file.
    User,
}

impl ProbeTask {
    /// Every task, in the order the front-ends list them.
    pub const ALL: [ProbeTask; 6] = [
        ProbeTask::BracketDepth,
        ProbeTask::IndentLevel,
        ProbeTask::Syntax,
        ProbeTask::ProgramState,
        ProbeTask::ApiCloze,
        ProbeTask::User,
    ];

    /// The command line's name (`bracket-depth`).
    pub fn name(self) -> &'static str {
        match self {
            ProbeTask::BracketDepth => "bracket-depth",
            ProbeTask::IndentLevel => "indent-level",
            ProbeTask::Syntax => "syntax",
            ProbeTask::ProgramState => "program-state",
            ProbeTask::ApiCloze => "api-cloze",
            ProbeTask::User => "user",
        }
    }

    /// The labeller of a task that labels the tokens of CPython files; `None` for the tasks that bring their
    /// own texts (program state, API cloze, user spans).
    pub fn corpus_labeller(self) -> Option<Box<dyn TokenLabeller + Send + Sync>> {
        match self {
            ProbeTask::BracketDepth => Some(Box::new(BracketDepth { max: 3 })),
            ProbeTask::IndentLevel => Some(Box::new(IndentLevel { max: 3 })),
            ProbeTask::Syntax => Some(Box::new(syntax::SyntaxKind)),
            ProbeTask::ProgramState | ProbeTask::ApiCloze | ProbeTask::User => None,
        }
    }
}

impl std::fmt::Display for ProbeTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ProbeTask {
    type Err = ProbeError;

    fn from_str(text: &str) -> Result<Self> {
        ProbeTask::ALL.into_iter().find(|task| task.name() == text).ok_or_else(|| {
            let names: Vec<&str> = ProbeTask::ALL.iter().map(|t| t.name()).collect();
            ProbeError::InvalidInput(format!("unknown probe task {text:?}; the tasks are {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_parses_from_its_name_and_unknown_names_list_the_tasks() {
        for task in ProbeTask::ALL {
            assert_eq!(task.name().parse::<ProbeTask>().unwrap(), task);
        }
        let error = "depth".parse::<ProbeTask>().unwrap_err().to_string();
        assert!(error.contains("\"depth\"") && error.contains("api-cloze"), "{error}");
    }

    #[test]
    fn corpus_tasks_have_labellers_with_their_class_counts() {
        let classes: Vec<Option<usize>> =
            ProbeTask::ALL.iter().map(|t| t.corpus_labeller().map(|l| l.classes())).collect();
        assert_eq!(classes, [Some(4), Some(4), Some(syntax::SYNTAX_CLASSES.len()), None, None, None]);
    }
}
