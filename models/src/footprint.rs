//! The memory a model needs before it is loaded, and the memory the machine has: `workbench info` prints both, and
//! [`crate::Model::load`] refuses a model that would not fit on the CPU instead of letting the system kill the
//! process part-way through loading.

use std::path::Path;

use serde::Serialize;
use tch::Kind;

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::safetensors_weights::SafetensorsWeights;

/// Resident memory a loaded model needs besides its weights: libtorch's and the tokenizer's code and tables, the
/// rotary tables, and the first forward pass's buffers (SmolLM2-135M-Instruct measured 300-330 MiB above its
/// weights in f32, loaded and run once).
pub const RUNTIME_BYTES: u64 = 400 << 20;

/// The environment variable that caps the memory the workbench counts as available (`8G`, `512M` or bytes), for
/// shared machines and for tests.
pub const LIMIT_VARIABLE: &str = "WORKBENCH_MEMORY_LIMIT";

/// What loading a checkpoint takes, read from its headers alone (no weights are read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryNeed {
    /// Parameters stored in the file (a tied embedding counts once).
    pub parameters: u64,
    /// Bytes of those parameters in the dtype the model is loaded in.
    pub weight_bytes: u64,
    /// Elements of the largest tensor: it is in memory twice while it is converted.
    pub largest_tensor: u64,
    /// Peak resident memory expected while loading and running: the weights, two copies of the largest tensor in
    /// f32 (read, then converted) and [`RUNTIME_BYTES`].
    pub needed_bytes: u64,
}

impl MemoryNeed {
    /// The need of the checkpoint at `path` (a `.gguf` file or a Hugging Face folder) loaded as `kind`.
    pub fn of(path: &Path, kind: Kind) -> Result<Self> {
        Ok(if path.is_dir() {
            Self::of_safetensors(&SafetensorsWeights::open(path)?, kind)
        } else {
            Self::of_gguf(&GgufFile::open(path)?, kind)
        })
    }

    /// The need of an opened GGUF file loaded as `kind`.
    pub fn of_gguf(file: &GgufFile, kind: Kind) -> Self {
        let sizes: Vec<u64> = file.tensors.iter().map(|t| t.dims.iter().product()).collect();
        Self::from_element_counts(&sizes, kind)
    }

    /// The need of an opened safetensors checkpoint loaded as `kind`.
    pub fn of_safetensors(weights: &SafetensorsWeights, kind: Kind) -> Self {
        Self::from_element_counts(&weights.element_counts().collect::<Vec<_>>(), kind)
    }

    /// The need of tensors of `sizes` elements loaded as `kind`.
    pub fn from_element_counts(sizes: &[u64], kind: Kind) -> Self {
        let parameters = sizes.iter().sum::<u64>();
        let largest_tensor = sizes.iter().copied().max().unwrap_or(0);
        let weight_bytes = parameters * kind.elt_size_in_bytes() as u64;
        let needed_bytes = weight_bytes + 2 * 4 * largest_tensor + RUNTIME_BYTES;
        MemoryNeed { parameters, weight_bytes, largest_tensor, needed_bytes }
    }

    /// Refuses, with what to do instead, when the need exceeds `available` bytes (`None`: unknown, accepted).
    pub fn check_fits(&self, model: &str, kind: Kind, available: Option<u64>) -> Result<()> {
        match available {
            Some(available) if self.needed_bytes > available => Err(ModelError::NotEnoughMemory {
                model: model.to_string(),
                dtype: format!("{kind:?}"),
                needed: gib(self.needed_bytes),
                weights: gib(self.weight_bytes),
                available: gib(available),
            }),
            _ => Ok(()),
        }
    }
}

/// Bytes in GiB, for messages.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Memory this process can still take: the kernel's `MemAvailable`, lowered by a cgroup's limit (containers,
/// Slurm jobs) and by [`LIMIT_VARIABLE`]; `None` where none of them can be read.
pub fn available_bytes() -> Result<Option<u64>> {
    let limit = match std::env::var(LIMIT_VARIABLE) {
        Ok(text) => Some(parse_size(&text).ok_or_else(|| {
            ModelError::InvalidInput(format!("{LIMIT_VARIABLE}={text:?} is not a size; write e.g. 8G, 512M or bytes"))
        })?),
        Err(_) => None,
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| mem_available(&text));
    let cgroup = cgroup_headroom();
    Ok([limit, meminfo, cgroup].into_iter().flatten().min())
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What the cgroup v2 limit of this process leaves (`memory.max` less `memory.current`), if it sets one.
fn cgroup_headroom() -> Option<u64> {
    let read = |name: &str| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(name)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?;
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// `8G`, `512M`, `64K` (powers of 1024, an optional trailing `B` or `iB`) or plain bytes.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().trim_end_matches("iB").trim_end_matches('B');
    let (number, shift) = match text.chars().last()?.to_ascii_uppercase() {
        'K' => (&text[..text.len() - 1], 10),
        'M' => (&text[..text.len() - 1], 20),
        'G' => (&text[..text.len() - 1], 30),
        'T' => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| (value * (1u64 << shift) as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_counts_each_parameter_in_the_load_dtype_and_the_largest_tensor_twice_in_f32() {
        // A 10 x 4 embedding, two 4-element norms, one 6 x 4 projection: 72 parameters, the largest 40.
        let sizes = [40, 4, 4, 24];
        let f32_need = MemoryNeed::from_element_counts(&sizes, Kind::Float);
        assert_eq!((f32_need.parameters, f32_need.weight_bytes, f32_need.largest_tensor), (72, 288, 40));
        assert_eq!(f32_need.needed_bytes, 288 + 320 + RUNTIME_BYTES);
        let bf16_need = MemoryNeed::from_element_counts(&sizes, Kind::BFloat16);
        assert_eq!((bf16_need.weight_bytes, bf16_need.needed_bytes), (144, 144 + 320 + RUNTIME_BYTES));
    }

    #[test]
    fn a_model_that_does_not_fit_is_refused_with_the_sizes_and_what_to_do() {
        let need = MemoryNeed::from_element_counts(&[3 << 30], Kind::BFloat16);
        assert!(need.check_fits("big", Kind::BFloat16, None).is_ok());
        assert!(need.check_fits("big", Kind::BFloat16, Some(64 << 30)).is_ok());
        let error = need.check_fits("big", Kind::BFloat16, Some(8 << 30)).unwrap_err().to_string();
        assert!(error.contains("big") && error.contains("BFloat16"), "{error}");
        assert!(error.contains("30.4 GiB") && error.contains("6.0 GiB of weights"), "{error}");
        assert!(error.contains("8.0 GiB is available"), "{error}");
    }

    #[test]
    fn sizes_and_meminfo_are_read_as_written() {
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("-1G"), None);
        let meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(mem_available(meminfo), Some(20_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }
}
