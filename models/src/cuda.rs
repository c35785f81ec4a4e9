//! libtorch's CUDA half, loaded when a CUDA device is asked for rather than when the process starts. The `torch`
//! wheel's libtorch is the CUDA build; linked at start-up, its CUDA libraries cost every process 0.28 GB of
//! resident memory even on machines without a GPU. Binaries link only libtorch's CPU library
//! (`build-support/rpath.rs`), and the first call here loads `libtorch_cuda.so` (which registers CUDA with libtorch
//! as it loads) when the machine has an NVIDIA driver.

use std::ffi::CStr;
use std::sync::OnceLock;

use tch::Device;

/// Whether libtorch's CUDA library is loaded, or why not.
fn load() -> &'static Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(|| {
        let driver = ["/proc/driver/nvidia/version", "/dev/nvidiactl"].iter().any(|p| std::path::Path::new(p).exists());
        if !driver {
            return Err("this machine has no NVIDIA driver".into());
        }
        load_library()
    })
}

/// Loads `libtorch_cuda.so` (found through the binary's rpath, beside libtorch's CPU library).
fn load_library() -> Result<(), String> {
    // SAFETY: dlopen takes a NUL-terminated name; the library stays loaded for the life of the process (the
    // handle is never closed), as libtorch expects of its CUDA half.
    let handle = unsafe { libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns null or a NUL-terminated message valid until the next dl* call on this thread.
        let message = unsafe { libc::dlerror() };
        let reason = if message.is_null() {
            "unknown".to_string()
        } else {
            unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
        };
        return Err(format!("libtorch_cuda.so could not be loaded: {reason}"));
    }
    Ok(())
}

/// Whether CUDA can be used: libtorch's CUDA library loads and finds a device.
pub fn available() -> bool {
    load().is_ok() && tch::Cuda::is_available()
}

/// Why CUDA cannot be used, for messages (`None` when it can).
pub fn unavailable_reason() -> Option<String> {
    match load() {
        Err(reason) => Some(reason.clone()),
        Ok(()) if !tch::Cuda::is_available() => Some("libtorch finds no CUDA device".into()),
        Ok(()) => None,
    }
}

/// The first CUDA device when CUDA can be used, else the CPU.
pub fn device_if_available() -> Device {
    if available() {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

/// Number of CUDA devices (0 when CUDA cannot be used).
pub fn device_count() -> usize {
    if available() {
        tch::Cuda::device_count() as usize
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped_libraries() -> String {
        std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps")
    }

    #[test]
    fn the_cuda_library_loads_after_start_up_and_leaves_the_cpu_working() {
        // Whatever other tests of this binary did, the binary itself does not link the CUDA library ...
        let needed = std::process::Command::new("ldd").arg(std::env::current_exe().unwrap()).output();
        if let Ok(needed) = needed {
            let needed = String::from_utf8_lossy(&needed.stdout);
            assert!(needed.contains("libtorch_cpu") && !needed.contains("libtorch_cuda"), "{needed}");
        }
        // ... and loads it on demand, as on a GPU machine (here without a driver: CUDA stays unavailable).
        load_library().expect("libtorch_cuda.so loads through the rpath");
        assert!(mapped_libraries().contains("libtorch_cuda.so"));
        assert!(!tch::Cuda::is_available() || std::path::Path::new("/dev/nvidiactl").exists());
        let x = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        assert_eq!(f64::try_from(x.dot(&x)).unwrap(), 14.0);
    }
}
