//! Loading reports progress through the `Progress` trait and stops when cancelled.

use std::sync::atomic::{AtomicU64, Ordering};

use integration_tests::default_model_path;
use models::{CancelToken, LoadOptions, Model, ModelError, Progress};

/// Counts steps and cancels after `stop_after` of them.
struct Counter {
    total: AtomicU64,
    done: AtomicU64,
    stop_after: u64,
    cancel: CancelToken,
}

impl Progress for Counter {
    fn begin(&self, _stage: &str, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    fn advance(&self, steps: u64) {
        if self.done.fetch_add(steps, Ordering::Relaxed) + steps >= self.stop_after {
            self.cancel.cancel();
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

fn counter(stop_after: u64) -> Counter {
    Counter { total: AtomicU64::new(0), done: AtomicU64::new(0), stop_after, cancel: CancelToken::default() }
}

#[test]
fn loading_reports_every_tensor() {
    let progress = counter(u64::MAX);
    Model::from_gguf(&default_model_path(), LoadOptions::default(), &progress).unwrap();
    // 272 tensors in the file, each read once (the unembedding is tied to the embedding).
    assert_eq!(progress.total.load(Ordering::Relaxed), 272);
    assert_eq!(progress.done.load(Ordering::Relaxed), 272);
}

#[test]
fn cancelling_stops_loading_with_an_error() {
    let progress = counter(10);
    let result = Model::from_gguf(&default_model_path(), LoadOptions::default(), &progress);
    assert!(matches!(result, Err(ModelError::Cancelled)));
    assert_eq!(progress.done.load(Ordering::Relaxed), 10, "loading went on after the cancel");
}
