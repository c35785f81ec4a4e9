//! FIND-style function interpretation (shared/reference/FIND.md): the suite of numeric and string functions,
//! the black-box protocol with a budget and a transcript, interpreters (the search scientist, an LM agent over
//! the loaded model or, with the `http` feature, an OpenAI-compatible endpoint), FIND's scores, and adapters that
//! turn neurons (or sparse features) of a loaded model into functions, with their description pages.

pub mod agent;
#[cfg(feature = "http")]
pub mod endpoint;
pub mod error;
pub mod evaluate;
pub mod expr;
pub mod fit;
pub mod interpreters;
pub mod model;
pub mod neurons;
pub mod pages;
mod parallel;
pub mod programs;
pub mod scientist;
pub mod score;
pub mod session;
pub mod strings;
pub mod suite;
pub mod symbolic;
pub mod units;
pub mod value;

pub use error::{FindError, Result};
