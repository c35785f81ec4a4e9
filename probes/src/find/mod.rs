//! FIND-style function interpretation (shared/reference/FIND.md): the suite of numeric and string functions,
//! the black-box protocol with a budget and a transcript, interpreters, FIND's scores, and adapters that turn
//! neurons of a loaded model into functions.

pub mod agent;
pub mod evaluate;
pub mod expr;
pub mod fit;
pub mod neurons;
pub mod pages;
pub mod scientist;
pub mod score;
pub mod session;
pub mod strings;
pub mod suite;
