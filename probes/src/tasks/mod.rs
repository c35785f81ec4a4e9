//! Built-in probing tasks beyond structure (which lives in `dataset`): syntax node kinds, program state with its
//! alternative-semantics control, API-name cloze, and user tasks from JSONL.

pub mod api_cloze;
pub mod program_state;
pub mod syntax;
pub mod user;
