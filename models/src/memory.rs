//! How the process's C allocator treats the large buffers a forward pass allocates and frees.

use std::sync::Once;

/// Free memory glibc may keep at the top of its heap before it gives pages back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const KEPT_FREE_BYTES: i32 = i32::MAX;

/// Makes glibc's `malloc`, which libtorch's CPU tensors come from, keep large freed buffers for reuse instead
/// of handing them back to the kernel. By default every buffer over 32 MiB (the logits of a batch, 200 MB for
/// 8 x 128 tokens) is a fresh `mmap`, and heap tops over 64 MiB are trimmed, so each forward pass pays a page
/// fault and a page of zeroing per 4 KiB it writes: about a sixth of a batched forward pass on 2 cores. Called
/// once per process when a model loads; only the main thread's heap is affected, and freed memory stays
/// with the process (reused by the next pass) rather than going back to the system.
pub fn reuse_large_buffers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator tuning parameters; it is thread-safe and takes plain integers.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, KEPT_FREE_BYTES);
        }
    });
}
