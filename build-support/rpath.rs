//! Shared build script for every crate that links libtorch.
//!
//! torch-sys finds libtorch inside the Python venv (`LIBTORCH_USE_PYTORCH=1`) but leaves no rpath in the
//! binaries it links, so they would need `LD_LIBRARY_PATH`. This script reads the libtorch directory that
//! torch-sys exports (`DEP_TCH_LIBTORCH_LIB`, available because each crate depends on torch-sys directly)
//! and bakes it into every binary, test and benchmark of the crate. Only libtorch's CPU library is linked
//! (the linker drops torch-sys's `-ltorch_cuda`, whose symbols nothing uses): `models::cuda` loads the CUDA library
//! when a CUDA device is asked for, so that processes on machines without a GPU do not carry it.
//! `models/build.rs` calls it as a module.

/// Emits the link arguments above.
pub fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib_dir}");
    }
}
