//! The libFuzzer binary: runs the target that `WORKBENCH_FUZZ_TARGET` names (see `fuzz::targets::TARGETS`) on
//! every input, under the memory bound of `fuzz::budget`.
#![no_main]

use std::sync::OnceLock;

use fuzz::budget::{run_bounded, PeakAllocator};
use fuzz::targets::{by_name, Target, TARGETS};

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// The target `WORKBENCH_FUZZ_TARGET` names; on the first call it also lets panics that the workbench contains
/// (`models::panics::contain`, around libraries that panic on malformed input) through the hook with which libFuzzer
/// turns every other panic into a crash.
fn target() -> Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let crash = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !models::panics::containing() {
                crash(info);
            }
        }));
        let name = std::env::var("WORKBENCH_FUZZ_TARGET").unwrap_or_default();
        by_name(&name).unwrap_or_else(|| {
            let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            eprintln!("WORKBENCH_FUZZ_TARGET={name:?} names no target; the targets: {}", names.join(", "));
            std::process::exit(2)
        })
    })
}

fuzz::libfuzzer_sys::fuzz_target!(|data: &[u8]| run_bounded(target(), data));
