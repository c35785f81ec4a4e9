//! Shared build script for every crate that links libtorch.
//!
//! torch-sys finds libtorch inside the Python venv (`LIBTORCH_USE_PYTORCH=1`) but leaves no rpath in the
//! binaries it links, so they would need `LD_LIBRARY_PATH`. This script reads the libtorch directory that
//! torch-sys exports (`DEP_TCH_LIBTORCH_LIB`, available because each crate depends on torch-sys directly)
//! and bakes it into every binary, test and benchmark of the crate. `--no-as-needed -ltorch` keeps
//! libtorch_cuda linked, so CUDA stays available on GPU machines. `models/build.rs` calls it as a module.

/// Emits the link arguments above.
pub fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib_dir}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{lib_dir}");
        println!("cargo:rustc-link-arg=-ltorch");
    }
}
