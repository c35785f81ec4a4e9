//! The GPU check (`./x gpu-check`): the parity tests on `cuda` (SmolLM2 and the tiny model of every architecture,
//! f32 and bf16), a repair and its revert, run_with_cache, and the runtime benchmark's figures against transformers on
//! the same GPU. These tests need CUDA, so they are ignored in `./x test`; `./x gpu-check` runs them with
//! `--ignored` and gathers the rows each one appends to `$WORKBENCH_GPU_SUMMARY` into one summary file.

use std::io::Write;

use integration_tests::runtime::{measure, Settings};
use integration_tests::{hf_reference, max_abs_diff, read_f32};
use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, LoadOptions, Model};
use repair::patchset::weights_sha256;
use repair::{Method, RepairConfig, Repairer, Tokens};
use serde_json::{json, Value};

/// The CUDA device, or a panic that says why the test cannot run here.
fn cuda() -> Device {
    let reason = models::cuda::unavailable_reason();
    assert!(reason.is_none(), "CUDA is not available here ({reason:?}): run ./x gpu-check on a CUDA machine");
    Device::Cuda(0)
}

/// Appends one row of figures to the summary (`$WORKBENCH_GPU_SUMMARY`), and prints it.
fn record(row: Value) {
    println!("{row}");
    if let Some(path) = std::env::var_os("WORKBENCH_GPU_SUMMARY") {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("summary file");
        writeln!(file, "{row}").expect("write the summary row");
    }
}

fn load(name: &str, device: Device, kind: Kind) -> Model {
    Model::load(name, LoadOptions::new(device, kind)).expect("the model loads")
}

fn flat(t: &Tensor) -> Vec<f32> {
    Vec::try_from(t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1)).expect("f32 values")
}

/// Share of positions whose top token agrees between two `[positions, vocab]` logit tensors.
fn top1_agreement(a: &Tensor, b: &Tensor, vocab: i64) -> f64 {
    let (a, b) = (a.to_device(Device::Cpu).view([-1, vocab]), b.to_device(Device::Cpu).view([-1, vocab]));
    a.argmax(-1, false).eq_tensor(&b.argmax(-1, false)).to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
}

#[test]
#[ignore = "needs CUDA: run by ./x gpu-check"]
fn smollm2_on_cuda_matches_the_cpu_in_f32_and_bf16() {
    let device = cuda();
    let cpu = load(models::catalogue::DEFAULT_MODEL, Device::Cpu, Kind::Float);
    let ids = cpu.encode("import json\n\ndef load(path):\n    with open(path) as f:\n        return json.").unwrap();
    let reference = cpu.logits(&ids).unwrap();
    let vocab = cpu.shape().vocab_size as i64;
    for kind in [Kind::Float, Kind::BFloat16] {
        let gpu = load(models::catalogue::DEFAULT_MODEL, device, kind);
        let logits = gpu.logits(&ids).unwrap();
        let diff = max_abs_diff(&flat(&logits), &flat(&reference));
        let agreement = top1_agreement(&logits, &reference, vocab);
        record(json!({"check": "smollm2 logits vs cpu f32", "kind": format!("{kind:?}"), "max_abs_diff": diff,
            "top1_agreement": agreement}));
        match kind {
            Kind::Float => assert!(diff <= 1e-3, "cuda f32 logits differ from the CPU's by {diff}"),
            _ => assert!(agreement >= 0.9, "cuda bf16 agrees with the CPU's top token at {agreement} of positions"),
        }
    }
}

#[test]
#[ignore = "needs CUDA: run by ./x gpu-check"]
fn every_architecture_on_cuda_matches_transformers() {
    let device = cuda();
    let architectures = ["llama", "qwen2", "qwen3", "mistral", "starcoder2", "phi3", "granite", "gemma", "gemma2"];
    let others = ["gpt2", "gpt_bigcode", "codegen", "gpt_neox"];
    for arch in architectures.iter().chain(&others) {
        let (dir, reference) = hf_reference(arch, "f32");
        for kind in [Kind::Float, Kind::BFloat16] {
            let model = load(dir.path().join("model").to_str().unwrap(), device, kind);
            let mut worst = 0f32;
            for (i, ids) in reference["ids"].as_array().unwrap().iter().enumerate() {
                let ids: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
                let expected = read_f32(&dir.path().join(format!("logits-{i}.f32")));
                worst = worst.max(max_abs_diff(&flat(&model.logits(&ids).unwrap()), &expected));
            }
            record(json!({"check": "tiny model vs transformers f32", "arch": arch, "kind": format!("{kind:?}"),
                "max_abs_diff": worst}));
            let bound = if kind == Kind::Float { 1e-3 } else { 0.25 };
            assert!(worst <= bound, "{arch} {kind:?} on cuda: logits differ from transformers' by {worst}");
        }
    }
}

#[test]
#[ignore = "needs CUDA: run by ./x gpu-check"]
fn a_repair_on_cuda_reverts_bit_exactly_and_caches_match_the_cpu() {
    let device = cuda();
    let model = load(models::catalogue::DEFAULT_MODEL, device, Kind::Float);
    let prompt = model.encode("import os\nos.path.").unwrap();
    let vocab = model.shape().vocab_size as i64;
    let last = |m: &Model| m.logits(&prompt).unwrap().view([-1, vocab]).get(prompt.len() as i64 - 1);
    let wanted = i64::try_from(last(&model).topk(2, -1, true, true).1.get(1).to_device(Device::Cpu)).unwrap();
    let original = weights_sha256(&model).unwrap();
    let tokens = Tokens { ids: [prompt.clone(), vec![wanted as u32]].concat(), prompt_len: prompt.len() };
    let unrelated = vec![model.encode("def main():\n    print('hello')\n").unwrap()];
    let mut repairer = Repairer::new(&model, RepairConfig::default(), unrelated, 4).unwrap();
    let repair = repairer.repair(&model, &tokens, Method::Mint).unwrap();
    let top = i64::try_from(last(&model).argmax(-1, false).to_device(Device::Cpu)).unwrap();
    repair.revert(&model).unwrap();
    let reverted = weights_sha256(&model).unwrap() == original;
    record(json!({"check": "MINT repair on cuda", "neurons": repair.changes.len(), "wanted_is_top": top == wanted,
        "reverts_bit_exactly": reverted}));
    assert!(reverted, "the repair on cuda does not revert bit-exactly");

    let cpu = load(models::catalogue::DEFAULT_MODEL, Device::Cpu, Kind::Float);
    let wanted_points = |p: HookPoint| matches!(p, HookPoint::MlpPost(_) | HookPoint::ResidPost(_));
    let (_, gpu_cache) = model.run_with_cache(&prompt, wanted_points).unwrap();
    let (_, cpu_cache) = cpu.run_with_cache(&prompt, wanted_points).unwrap();
    let mut worst = 0f32;
    for layer in 0..model.shape().n_layers {
        for point in [HookPoint::MlpPost(layer), HookPoint::ResidPost(layer)] {
            worst = worst.max(max_abs_diff(&flat(gpu_cache.get(point).unwrap()), &flat(cpu_cache.get(point).unwrap())));
        }
    }
    record(json!({"check": "run_with_cache on cuda vs cpu", "points": 2 * model.shape().n_layers,
        "max_abs_diff": worst}));
    assert!(worst <= 1e-2, "cached activations on cuda differ from the CPU's by {worst}");
}

#[test]
#[ignore = "needs CUDA: run by ./x gpu-check"]
fn runtime_figures_on_cuda_against_transformers() {
    let settings = Settings { device: cuda(), threads: 2, repeats: 3, with_transformers: true };
    let figures = measure(&settings);
    record(json!({"check": "runtime benchmark on cuda", "figures": figures}));
    assert!(figures["generation_tokens_per_s"].as_f64().is_some_and(|r| r > 0.0), "{figures}");
}
