//! Targets for the files researchers pass each other: experiment specs and patch sets (RON, with the patch set's
//! safetensors side file), repair cases and probe tasks (JSONL), and human-eval samples (JSONL, gzipped or not).
//! Each returns whether the reader took the input whole.

use std::path::Path;

/// An experiment spec: parsed, then written back as the report shows it.
pub fn spec(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let spec = experiments::spec::Spec::parse(text, "fuzz.ron");
    spec.map(|spec| spec.compact_steps()).is_ok()
}

/// A patch set: the RON text up to the first zero byte, the safetensors side file it names after it.
pub fn patch_set(data: &[u8]) -> bool {
    let (text, tensors) = split_at_zero(data);
    let Ok(text) = std::str::from_utf8(text) else { return false };
    repair::PatchSet::parse(text, Path::new("patches.ron"), |_| Ok(tensors.to_vec())).is_ok()
}

/// Repair cases in JSONL.
pub fn repair_cases(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| repair::case::parse_user_cases(text, Path::new("cases.jsonl")).is_ok())
}

/// A probe task in JSONL (labelled character spans of texts).
pub fn probe_task(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| probes::tasks::user::UserTask::parse("fuzz", text).is_ok())
}

/// human-eval samples: gzipped when the first byte is odd, the rest of the input as the file.
pub fn humaneval_samples(data: &[u8]) -> bool {
    let Some((&flag, bytes)) = data.split_first() else { return false };
    experiments::humaneval::parse_samples(bytes, flag % 2 == 1, Path::new("samples.jsonl")).is_ok()
}

/// The bytes before the first zero byte and those after it (all and nothing when there is none).
fn split_at_zero(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}
