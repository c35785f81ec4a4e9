//! The one way long work (loading, sweeps, benchmarks) reports progress and learns that it should stop. The
//! command line draws it with indicatif, the GUI with a progress bar.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{ModelError, Result};

/// Receives progress of a long job and says whether it was cancelled.
pub trait Progress: Send + Sync {
    /// A new stage of `total` steps begins.
    fn begin(&self, stage: &str, total: u64);
    /// `steps` more steps are done.
    fn advance(&self, steps: u64);
    /// Whether the user asked to stop; jobs check this between steps.
    fn is_cancelled(&self) -> bool {
        false
    }
    /// Returns [`ModelError::Cancelled`] once the user asked to stop.
    fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(ModelError::Cancelled);
        }
        Ok(())
    }
}

/// Progress that nobody watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _stage: &str, _total: u64) {}
    fn advance(&self, _steps: u64) {}
}

/// A cancellation flag shared between a job and whoever may stop it.
#[derive(Debug, Default, Clone)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
