//! oneDNN's inner product on dense CPU tensors, through the C++ shim `models/cpp/onednn_linear.cpp` (tch
//! binds only the variant that takes and returns oneDNN-layout tensors, which costs a copy each way).

use std::ffi::{c_char, CStr};

use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn workbench_onednn_linear(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// `x W^T + b` for `x` `[rows, in]` and a weight in `nn.Linear` layout `[out, in]`, or the error libtorch
/// reported (e.g. a build without oneDNN).
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor, String> {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let bias = bias.map_or(std::ptr::null(), Tensor::as_ptr);
    // SAFETY: the pointers are live tch tensors (or null for no bias) for the whole call; the shim catches
    // every C++ exception and either stores a newly allocated tensor in `out` or returns a strdup'ed message.
    let error = unsafe { workbench_onednn_linear(x.as_ptr(), weight.as_ptr(), bias, &mut out) };
    if error.is_null() {
        // SAFETY: `out` is a tensor the shim allocated with `new`; tch's Drop frees it the same way.
        return Ok(unsafe { Tensor::from_ptr(out) });
    }
    // SAFETY: a NUL-terminated string from strdup, freed once here.
    let message = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
    unsafe { libc::free(error.cast()) };
    Err(message)
}
