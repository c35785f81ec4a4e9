//! The memory a reader may reserve for an input, and a global allocator that measures it: the peak of the bytes
//! the current thread holds during a call. Per thread, so that tests running side by side do not add
//! to each other's peaks. Tensor storage that libtorch allocates itself is not seen here; the fuzzer's RSS limit
//! bounds it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crate::targets::Target;

/// What every reader may reserve whatever its input: room for its tables and buffers.
pub const BASE_BYTES: usize = 64 << 20;

/// Bytes a reader may reserve per input byte on top of [`BASE_BYTES`]: a quantised block of 84 bytes decodes to
/// 256 floats (12 bytes a byte), and parsed text keeps its strings with their containers.
pub const BYTES_PER_INPUT_BYTE: usize = 64;

/// The most a reader may reserve for an input of `len` bytes.
pub fn bound(len: usize) -> usize {
    BASE_BYTES.saturating_add(len.saturating_mul(BYTES_PER_INPUT_BYTE))
}

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// The system allocator, counting what each thread holds and its peak during [`peak_of`].
pub struct PeakAllocator;

fn add(delta: isize) {
    // `try_with`: a thread's last frees run after its locals are gone.
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is passed on to the system allocator unchanged; the counting touches thread-local cells only.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// What `f` returns, and the most bytes the thread held while it ran above what it held before. The bytes are zero
/// unless the binary runs with [`PeakAllocator`] as its global allocator.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let out = f();
    (out, (PEAK.with(Cell::get) - start).max(0) as usize)
}

/// What `f` returns, and the bytes the thread holds after it above what it held before: memory that `f` left behind
/// (in a thread-local cache, say), which a reader should not.
pub fn retained_by<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let start = HELD.with(Cell::get);
    let out = f();
    (out, HELD.with(Cell::get) - start)
}

/// The most bytes `target` reserved reading `input` (see [`peak_of`]).
pub fn measure(target: Target, input: &[u8]) -> usize {
    peak_of(|| target(input)).1
}

/// Runs `target` on `input` and panics when it reserved more than [`bound`] allows: the check the fuzzer makes on
/// every input.
pub fn run_bounded(target: Target, input: &[u8]) {
    let peak = measure(target, input);
    let limit = bound(input.len());
    assert!(peak <= limit, "a {}-byte input made the reader reserve {peak} bytes (bound {limit})", input.len());
}
