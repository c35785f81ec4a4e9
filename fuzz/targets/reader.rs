//! The libFuzzer binary: runs the target that `WORKBENCH_FUZZ_TARGET` names (see `fuzz::targets::TARGETS`) on
//! every input, under the memory bound of `fuzz::budget`.
#![no_main]

use std::sync::OnceLock;

use fuzz::budget::{run_bounded, PeakAllocator};
use fuzz::targets::{by_name, Target, TARGETS};

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// The target `WORKBENCH_FUZZ_TARGET` names. (Panics that the workbench contains, `models::panics::contain`, never
/// reach the hook with which libFuzzer turns every panic into a crash: `contain` puts its own hook in front.)
fn target() -> Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    *TARGET.get_or_init(|| {
        let name = std::env::var("WORKBENCH_FUZZ_TARGET").unwrap_or_default();
        by_name(&name).unwrap_or_else(|| {
            let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            eprintln!("WORKBENCH_FUZZ_TARGET={name:?} names no target; the targets: {}", names.join(", "));
            std::process::exit(2)
        })
    })
}

fuzz::libfuzzer_sys::fuzz_target!(|data: &[u8]| run_bounded(target(), data));
