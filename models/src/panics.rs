//! Containing panics of third-party code that hostile input can trigger: the `tokenizers` crate's deserializers
//! `expect` on some malformed `tokenizer.json` files instead of returning an error. The workbench's own readers
//! return errors; a panic contained here becomes one too, naming what was being read.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use crate::error::{ModelError, Result};

thread_local! {
    static CONTAINING: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f`, turning a panic inside it into [`ModelError::Foreign`] about `what` (the panic's message with it).
/// The first call installs a panic hook that keeps contained panics quiet (no message, no backtrace: they are
/// errors now) and hands every other panic to the hook that was there before (a fuzzer's turns it into a crash).
pub fn contain<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !containing() {
                previous(info);
            }
        }));
    });
    CONTAINING.with(|c| c.set(c.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        ModelError::Foreign { what: what.to_string(), message }
    })
}

/// Whether the current thread is inside [`contain`].
pub fn containing() -> bool {
    CONTAINING.with(Cell::get) > 0
}
