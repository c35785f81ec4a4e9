//! Fuzzing every reader of user-supplied files: one target function per reader ([`targets::TARGETS`]), each fed
//! arbitrary bytes. A target passes an input when the reader returns (a value or an error) without a panic or an
//! abort, and without reserving more memory than [`budget::bound`] allows for an input of its size.
//!
//! `./x fuzz TARGET [SECONDS]` runs one target under libFuzzer (the `reader` binary, built with the `libfuzzer`
//! feature and coverage instrumentation on stable Rust); the integration test `hostile_files` replays the seeds
//! and every input a fuzzer ever crashed a reader with (`fuzz/regressions/TARGET/`), and checks the memory bound
//! on crafted headers that claim huge counts.

pub mod budget;
pub mod model_files;
pub mod structured;
pub mod targets;
pub mod user_files;

#[cfg(feature = "libfuzzer")]
pub use libfuzzer_sys;
