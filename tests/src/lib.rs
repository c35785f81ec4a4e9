//! Helpers shared by the integration tests: the project's Python (the venv `./x setup` made), the reference
//! scripts under `tests/python/`, the default model, real CPython files, and tiny hand-made GGUF models.

pub mod find_heldout;
pub mod runtime;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use anyhow::{bail, Context, Result};
use models::gguf::{GgmlType, GgufWriter, MetaValue};
use models::tch::{Kind, Tensor};
use models::{LoadOptions, Model};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python interpreter of the project's venv (`$WORKBENCH_PYTHON`, else `.venv/bin/python`).
pub fn python() -> PathBuf {
    std::env::var_os("WORKBENCH_PYTHON").map(PathBuf::from).unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// Runs `tests/python/<script>` with `args`; fails with its stderr if it fails.
pub fn run_python(script: &str, args: &[&Path]) -> Result<String> {
    let output = Command::new(python())
        .arg(root().join("tests/python").join(script))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_VERBOSITY", "error")
        .output()
        .with_context(|| format!("running {} (did ./x setup run?)", python().display()))?;
    if !output.status.success() {
        bail!("{script} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A small random Hugging Face checkpoint of `arch` built by transformers (`hf_reference.py`, `variant` f32, f16,
/// bf16, sharded or gguf), in the returned folder's `model/`, with transformers' logits and hidden states of its
/// prompts; returns the folder and `reference.json` (the prompts, their token ids, layers, width, vocabulary).
pub fn hf_reference(arch: &str, variant: &str) -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_path_buf();
    run_python("hf_reference.py", &[Path::new(arch), Path::new(variant), &default_model_path(), &out])
        .expect("the reference checkpoint is built");
    let text = std::fs::read_to_string(out.join("reference.json")).expect("reference.json");
    (dir, serde_json::from_str(&text).expect("reference.json is JSON"))
}

/// Path of the default model's GGUF file.
pub fn default_model_path() -> PathBuf {
    models::catalogue::resolve(models::catalogue::DEFAULT_MODEL).expect("the default model is installed by ./x setup")
}

/// The default model loaded once per test binary, in f32 on the CPU.
pub fn default_model() -> MutexGuard<'static, Model> {
    static MODEL: OnceLock<Mutex<Model>> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        Mutex::new(Model::load(models::catalogue::DEFAULT_MODEL, LoadOptions::default()).expect("default model loads"))
    });
    model.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first `count` Python files of the CPython standard library: a fixed list of real code (see
/// `probes::corpus`).
pub fn stdlib_files(count: usize) -> Vec<PathBuf> {
    probes::corpus::stdlib_files(count).expect("CPython files are installed by ./x setup")
}

/// Reads a raw little-endian f32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// How far SmolLM2's f32 logits may be from transformers' (issue 2's parity bound). The workbench's f32 CPU
/// linears run on oneDNN and transformers' on MKL, so sums are taken in another order: 3e-4 apart at most on
/// the parity prompts.
pub const HF_LOGIT_TOLERANCE: f32 = 1e-3;

/// The largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// max |a − b| / max |b| over two tensors of the same shape (compared in f64).
pub fn relative_error(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
    (a - &b).abs().max().double_value(&[]) / b.abs().max().double_value(&[]).max(1e-12)
}

/// A matrix a Python reference wrote as nested lists (rows), as an f64 tensor `[rows, columns]`.
pub fn matrix_from_json(value: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<f64>> = serde_json::from_value(value.clone()).expect("a matrix as a list of equally long rows");
    Tensor::from_slice(&rows.concat()).view([rows.len() as i64, -1])
}

/// Sizes of a tiny Llama for hand-made test files.
#[derive(Debug, Clone, Copy)]
pub struct TinyLlama {
    /// Blocks.
    pub layers: usize,
    /// Residual width.
    pub d_model: usize,
    /// MLP neurons.
    pub d_mlp: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Context length.
    pub context: usize,
}

impl Default for TinyLlama {
    fn default() -> Self {
        TinyLlama { layers: 2, d_model: 32, d_mlp: 64, heads: 4, kv_heads: 2, context: 16 }
    }
}

impl TinyLlama {
    /// A GGUF writer holding a random tiny Llama whose vocabulary is the 256 byte tokens (and no merges): metadata,
    /// tokenizer and every tensor, so tests can remove or break one piece.
    pub fn writer(&self, seed: u64) -> GgufWriter {
        let mut w = GgufWriter::new();
        let s = |v: &str| MetaValue::String(v.to_string());
        let u = |v: usize| MetaValue::U32(v as u32);
        w.set("general.architecture", s("llama"));
        w.set("general.name", s("tiny test llama"));
        w.set("llama.block_count", u(self.layers));
        w.set("llama.context_length", u(self.context));
        w.set("llama.embedding_length", u(self.d_model));
        w.set("llama.feed_forward_length", u(self.d_mlp));
        w.set("llama.attention.head_count", u(self.heads));
        w.set("llama.attention.head_count_kv", u(self.kv_heads));
        w.set("llama.rope.freq_base", MetaValue::F32(10000.0));
        w.set("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5));
        w.set("tokenizer.ggml.model", s("gpt2"));
        w.set("tokenizer.ggml.pre", s("gpt2"));
        w.set(
            "tokenizer.ggml.tokens",
            MetaValue::Array(byte_level_alphabet().into_iter().map(MetaValue::String).collect()),
        );
        w.set("tokenizer.ggml.merges", MetaValue::Array(vec![]));
        w.set("tokenizer.ggml.eos_token_id", u(0));
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut random = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
                })
                .collect()
        };
        let (d, m, hd) = (self.d_model as i64, self.d_mlp as i64, (self.d_model / self.heads) as i64);
        let kv = self.kv_heads as i64 * hd;
        let mut tensors: Vec<(String, Vec<i64>)> =
            vec![("token_embd.weight".into(), vec![256, d]), ("output_norm.weight".into(), vec![d])];
        for l in 0..self.layers {
            for (name, shape) in [
                ("attn_norm", vec![d]),
                ("attn_q", vec![d, d]),
                ("attn_k", vec![kv, d]),
                ("attn_v", vec![kv, d]),
                ("attn_output", vec![d, d]),
                ("ffn_norm", vec![d]),
                ("ffn_gate", vec![m, d]),
                ("ffn_up", vec![m, d]),
                ("ffn_down", vec![d, m]),
            ] {
                tensors.push((format!("blk.{l}.{name}.weight"), shape));
            }
        }
        for (name, shape) in tensors {
            let n = shape.iter().product::<i64>() as usize;
            let values = if name.ends_with("norm.weight") { vec![1.0; n] } else { random(n) };
            w.add_f32(&name, &shape, &values, GgmlType::F32).expect("valid tensor");
        }
        w
    }
}

/// The 256 byte-level BPE tokens in GPT-2's byte-to-unicode order by byte value.
fn byte_level_alphabet() -> Vec<String> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).map(String::from).unwrap_or_default()
            } else {
                extra += 1;
                char::from_u32(255 + extra).map(String::from).unwrap_or_default()
            }
        })
        .collect()
}
/// A transcoder whose features are the neurons of one MLP layer of SmolLM2 (gate and up fused in `mlp.in`):
/// `f(x) = silu(x W_gateᵀ) ⊙ (x W_upᵀ)`, decoder
/// rows the down projection's columns. Feature repairs through it must do what neuron repairs do in that layer.
pub struct NeuronsAsFeatures {
    layer: usize,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

impl NeuronsAsFeatures {
    /// The neurons of `layer` of `model`, as features.
    pub fn of(model: &Model, layer: usize) -> Self {
        let cpu = |t: Tensor| t.to_kind(Kind::Float).to_device(models::tch::Device::Cpu).copy();
        let fused = format!("blocks.{layer}.mlp.in.weight");
        let (_, gate_up) = model.parameters().into_iter().find(|(n, _)| *n == fused).unwrap();
        let d_mlp = model.shape().d_mlp as i64;
        NeuronsAsFeatures {
            layer,
            gate: cpu(gate_up.narrow(0, 0, d_mlp)),
            up: cpu(gate_up.narrow(0, d_mlp, d_mlp)),
            down: cpu(model.mlp_output(layer).1),
        }
    }
}

impl repair::Transcoder for NeuronsAsFeatures {
    fn layer(&self) -> usize {
        self.layer
    }
    fn encode(&self, mlp_in: &Tensor) -> Tensor {
        mlp_in.matmul(&self.gate.tr()).silu() * mlp_in.matmul(&self.up.tr())
    }
    fn decoder(&self) -> Tensor {
        self.down.tr().contiguous()
    }
}
