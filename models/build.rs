//! Build script of `models`: the rpath every libtorch crate gets (`build-support/rpath.rs`), and the small C++
//! shim `cpp/onednn_linear.cpp`, compiled against the headers of the libtorch torch-sys links.

#[path = "../build-support/rpath.rs"]
mod rpath;

use std::path::PathBuf;

fn main() {
    rpath::main();
    println!("cargo:rerun-if-changed=cpp/onednn_linear.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not export its libtorch directory (DEP_TCH_LIBTORCH_LIB)");
    };
    // Both layouts torch-sys links, a Python wheel's `torch/lib` and a libtorch archive's `libtorch/lib`,
    // keep the headers in the sibling `include`.
    let include = PathBuf::from(lib_dir).join("../include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .file("cpp/onednn_linear.cpp")
        .compile("workbench_onednn");
}
