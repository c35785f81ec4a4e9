//! A loaded model: architecture, tokenizer and device, with the forward passes every analysis builds on.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::arch::{Architecture, AttentionMask, ForwardInput, KvCache, ModelShape, WeightFormat};
use crate::catalogue;
use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::footprint::{self, MemoryNeed};
use crate::gguf::GgufFile;
use crate::hooks::{ActivationCache, HookPoint, Hooks};
use crate::load;
use crate::memory::LoadingAllocations;
use crate::progress::{Progress, Silent};
use crate::safetensors_weights::SafetensorsWeights;
use crate::tokenizer::Tokenizer;
use crate::weights::ReportingSource;

/// Where and in which precision to run a model.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// CPU or a CUDA device.
    pub device: Device,
    /// `Float` (default), `BFloat16` or `Half`.
    pub kind: Kind,
    /// Pack the linear layers' weights after loading ([`Model::pack_weights`]), for generation.
    pub packed: Option<WeightFormat>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { device: Device::Cpu, kind: Kind::Float, packed: None }
    }
}

impl LoadOptions {
    /// Dense weights of `kind` on `device`.
    pub fn new(device: Device, kind: Kind) -> Self {
        LoadOptions { device, kind, packed: None }
    }

    /// Options from a device (as [`parse_device`] reads it) and a dtype: `f32`, `bf16`, `f16`, or, for generation,
    /// packed weights with f32 activations: `bf16-weights` or `int8`.
    pub fn parse(device: &str, dtype: &str) -> Result<Self> {
        let device = parse_device(device)?;
        let packed = match dtype {
            "bf16-weights" => WeightFormat::Bf16,
            "int8" => WeightFormat::Int8,
            _ => return Ok(LoadOptions::new(device, parse_kind(dtype)?)),
        };
        Ok(LoadOptions { device, kind: Kind::Float, packed: Some(packed) })
    }
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
pub fn parse_device(spec: &str) -> Result<Device> {
    let cuda = |i: usize| {
        if i < crate::cuda::device_count() {
            Ok(Device::Cuda(i))
        } else {
            let reason = crate::cuda::unavailable_reason().unwrap_or_else(|| "no such device".into());
            Err(ModelError::InvalidInput(format!(
                "device {spec:?}: CUDA device {i} is not available here ({reason}); use cpu or auto"
            )))
        }
    };
    match spec {
        "auto" => Ok(crate::cuda::device_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => cuda(0),
        s => match s.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => cuda(i),
            None => Err(ModelError::InvalidInput(format!("unknown device {spec:?}; use cpu, cuda, cuda:N or auto"))),
        },
    }
}

/// Parses `f32`, `bf16` or `f16`.
pub fn parse_kind(spec: &str) -> Result<Kind> {
    match spec {
        "f32" | "float32" => Ok(Kind::Float),
        "bf16" | "bfloat16" => Ok(Kind::BFloat16),
        "f16" | "float16" => Ok(Kind::Half),
        _ => Err(ModelError::InvalidInput(format!("unknown dtype {spec:?}; use f32, bf16, f16, bf16-weights or int8"))),
    }
}

/// How a model was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ModelFormat {
    /// A single GGUF file.
    Gguf,
    /// A Hugging Face folder (config.json, safetensors, tokenizer.json).
    HfFolder,
}

/// Where a model came from.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSource {
    /// The name or path the user gave.
    pub spec: String,
    /// The file or folder it resolved to.
    pub path: PathBuf,
    /// Its format.
    pub format: ModelFormat,
    /// The model's own name from its metadata, if it has one.
    pub display_name: Option<String>,
}

/// Token ids of several prompts, left-padded to one length.
pub struct Batch {
    /// `[batch, seq]` int64.
    pub ids: Tensor,
    /// Absolute positions `[batch, seq]`; padding gets position 0.
    pub positions: Tensor,
    /// `[batch, seq]` bool, false on padding; `None` when no row is padded.
    pub valid: Option<Tensor>,
    /// Unpadded length of each row.
    pub lengths: Vec<usize>,
}

impl Batch {
    /// Number of rows.
    pub fn size(&self) -> usize {
        self.lengths.len()
    }

    /// Padded length.
    pub fn seq_len(&self) -> i64 {
        self.ids.size()[1]
    }
}

/// A model ready to run: its architecture, tokenizer and device.
pub struct Model {
    arch: Box<dyn Architecture>,
    /// The model's tokenizer.
    pub tokenizer: Tokenizer,
    /// Where it runs.
    pub device: Device,
    /// Its parameter dtype.
    pub kind: Kind,
    /// How the linear layers' weights are packed for generation, if they are.
    packed: Option<WeightFormat>,
    /// Where it was loaded from.
    pub source: ModelSource,
    /// Gated repairs that run in every forward pass beside the weights (empty unless a gated repair added some).
    pub gates: crate::gates::Gates,
}

impl Model {
    /// Loads a model by catalogue name, `.gguf` path or Hugging Face folder.
    pub fn load(spec: &str, options: LoadOptions) -> Result<Self> {
        Self::load_with_progress(spec, options, &Silent)
    }

    /// [`Model::load`], reporting each tensor read to `progress` and stopping when it is cancelled.
    pub fn load_with_progress(spec: &str, options: LoadOptions, progress: &dyn Progress) -> Result<Self> {
        let path = catalogue::resolve(spec)?;
        let mut model = if path.is_dir() {
            Self::from_hf_dir(&path, options, progress)?
        } else {
            Self::from_gguf(&path, options, progress)?
        };
        model.source.spec = spec.to_string();
        if let Some(format) = options.packed {
            model.pack_weights(format)?;
        }
        Ok(model)
    }

    /// Packs the linear layers' weights for generation (the weights become the rounded values): half (bf16) or
    /// about a third (int8) of the bytes per generated token of f32. For generation and benchmarks only: from then
    /// on the weights cannot be changed ([`Model::check_editable`]), so patch first, then pack.
    pub fn pack_weights(&mut self, format: WeightFormat) -> Result<()> {
        self.arch.pack_weights(format)?;
        self.packed = Some(format);
        Ok(())
    }

    /// How the linear layers' weights are packed ([`Model::pack_weights`]), if they are.
    pub fn packed_weights(&self) -> Option<WeightFormat> {
        self.packed
    }

    /// Refuses to change the weights of a model whose weights are packed: steps multiply by the packed copies,
    /// which an edit of the weights would not reach.
    pub fn check_editable(&self) -> Result<()> {
        if let Some(format) = self.packed {
            return Err(ModelError::InvalidInput(format!(
                "the model's weights are packed to {format} for generation and cannot be changed; load it as f32 or \
                 bf16 to patch it"
            )));
        }
        Ok(())
    }

    /// Loads a GGUF file (refused as [`Model::check_memory`] says).
    pub fn from_gguf(path: &Path, options: LoadOptions, progress: &dyn Progress) -> Result<Self> {
        let _allocations = LoadingAllocations::begin();
        let file = GgufFile::open(path)?;
        Self::check_memory(MemoryNeed::of_gguf(&file, options.kind), path, options)?;
        let arch = load::from_gguf(&file, options.device, options.kind, progress)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let display_name = file.get("general.name").and_then(|v| v.as_str()).map(str::to_string);
        Ok(Self::assemble(arch, tokenizer, options, path, ModelFormat::Gguf, display_name))
    }

    /// Loads a Hugging Face folder: `config.json`, `model.safetensors` (or a sharded index) and `tokenizer.json`
    /// (refused as [`Model::check_memory`] says).
    pub fn from_hf_dir(dir: &Path, options: LoadOptions, progress: &dyn Progress) -> Result<Self> {
        let _allocations = LoadingAllocations::begin();
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::BadFormat {
            path: config_path.clone(),
            format: "config.json",
            reason: e.to_string(),
        })?;
        let config = HfConfig::new(json);
        let mut weights = SafetensorsWeights::open(dir)?;
        Self::check_memory(MemoryNeed::of_safetensors(&weights, options.kind), dir, options)?;
        let tensors = weights.names().count();
        let mut reporting = ReportingSource::new(&mut weights, progress, tensors);
        let arch = load::from_hf(&config, &mut reporting, options.device, options.kind)?;
        let tokenizer = Tokenizer::from_hf_dir(dir)?;
        let display_name = config.get("_name_or_path").as_str().filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Self::assemble(arch, tokenizer, options, dir, ModelFormat::HfFolder, display_name))
    }

    /// On the CPU, refuses a model that would need more memory than is available, from its headers, before any
    /// weight is read ([`MemoryNeed`]).
    fn check_memory(need: MemoryNeed, path: &Path, options: LoadOptions) -> Result<()> {
        if options.device != Device::Cpu {
            return Ok(());
        }
        need.check_fits(&path.display().to_string(), options.kind, footprint::available_bytes()?)
    }

    fn assemble(
        arch: Box<dyn Architecture>,
        tokenizer: Tokenizer,
        options: LoadOptions,
        path: &Path,
        format: ModelFormat,
        display_name: Option<String>,
    ) -> Self {
        let source = ModelSource { spec: path.display().to_string(), path: path.to_path_buf(), format, display_name };
        Model {
            arch,
            tokenizer,
            device: options.device,
            kind: options.kind,
            packed: None,
            source,
            gates: Default::default(),
        }
    }

    /// The architecture, for code that needs its weights or layers.
    pub fn arch(&self) -> &dyn Architecture {
        self.arch.as_ref()
    }

    /// The logits a residual-stream tensor `[.., d_model]` reads out to: the unembedding of its final norm
    /// (the logit lens at any layer; the model's own logits at the last).
    pub fn read_out(&self, resid: &Tensor) -> Tensor {
        self.arch.unembed(&self.arch.final_norm(resid))
    }

    /// Logits `[.., vocab]` from final-normalized residuals (`ln_final.hook_normalized`).
    pub fn unembed(&self, normalized: &Tensor) -> Tensor {
        self.arch.unembed(normalized)
    }

    /// The final norm applied to a residual-stream tensor.
    pub fn final_norm(&self, resid: &Tensor) -> Tensor {
        self.arch.final_norm(resid)
    }

    /// The unembedding matrix `[vocab, d_model]`.
    pub fn unembedding(&self) -> &Tensor {
        self.arch.unembedding()
    }

    /// The name and the live tensor of layer `layer`'s MLP output projection `[d_model, d_mlp]` (column i is
    /// neuron i's output vector; writing into it edits the model).
    pub fn mlp_output(&self, layer: usize) -> (String, Tensor) {
        self.arch.mlp(layer).output
    }

    /// Every parameter under a stable name, sharing storage with the model (tied weights once).
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        self.arch.parameters()
    }

    /// Sizes of the model.
    pub fn shape(&self) -> &ModelShape {
        self.arch.shape()
    }

    /// Number of parameters (tied weights counted once).
    pub fn parameter_count(&self) -> i64 {
        self.arch.parameters().iter().map(|(_, t)| t.numel() as i64).sum()
    }

    /// Bytes the parameters take in memory.
    pub fn parameter_bytes(&self) -> i64 {
        self.arch.parameters().iter().map(|(_, t)| (t.numel() * t.kind().elt_size_in_bytes()) as i64).sum()
    }

    /// Token ids of a prompt, checked to be non-empty and to fit the context.
    pub fn encode(&self, prompt: &str) -> Result<Vec<u32>> {
        let ids = self.tokenizer.encode(prompt, true)?;
        self.check_prompt(&ids)?;
        Ok(ids)
    }

    /// The first `max_tokens` token ids of a document (no special tokens), never more than the context holds:
    /// how corpus readers cut long files.
    pub fn encode_prefix(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
        let mut ids = self.tokenizer.encode(text, false)?;
        ids.truncate(max_tokens.min(self.shape().context_length));
        Ok(ids)
    }

    /// Refuses empty prompts and prompts longer than the context.
    pub fn check_prompt(&self, ids: &[u32]) -> Result<()> {
        if ids.is_empty() {
            return Err(ModelError::InvalidInput("the prompt is empty".into()));
        }
        let context = self.shape().context_length;
        if ids.len() > context {
            return Err(ModelError::ContextOverflow { tokens: ids.len(), context });
        }
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.shape().vocab_size) {
            return Err(ModelError::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.shape().vocab_size
            )));
        }
        Ok(())
    }

    /// Left-pads `prompts` into one batch on the model's device.
    pub fn batch(&self, prompts: &[Vec<u32>]) -> Result<Batch> {
        if prompts.is_empty() {
            return Err(ModelError::InvalidInput("no prompts given".into()));
        }
        for p in prompts {
            self.check_prompt(p)?;
        }
        let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let seq = *lengths.iter().max().unwrap_or(&0);
        let pad = i64::from(self.tokenizer.padding_id());
        let (mut ids, mut positions, mut valid) = (Vec::new(), Vec::new(), Vec::new());
        for p in prompts {
            let padding = seq - p.len();
            ids.extend(std::iter::repeat_n(pad, padding).chain(p.iter().map(|&t| i64::from(t))));
            positions.extend(std::iter::repeat_n(0, padding).chain(0..p.len() as i64));
            valid.extend(std::iter::repeat_n(false, padding).chain(std::iter::repeat_n(true, p.len())));
        }
        let shape = [prompts.len() as i64, seq as i64];
        let padded = lengths.iter().any(|&l| l != seq);
        Ok(Batch {
            ids: Tensor::from_slice(&ids).view(shape).to_device(self.device),
            positions: Tensor::from_slice(&positions).view(shape).to_device(self.device),
            valid: padded.then(|| Tensor::from_slice(&valid).view(shape).to_device(self.device)),
            lengths,
        })
    }

    /// Runs `batch` (continuing `cache` if given) and returns the final normalized residual
    /// `[batch, seq, d_model]`.
    pub fn forward(&self, batch: &Batch, cache: Option<&mut KvCache>, hooks: &mut Hooks) -> Result<Tensor> {
        for intervention in hooks.interventions() {
            intervention.point.check(self.shape().n_layers)?;
        }
        let past = cache.as_ref().map_or(0, |c| c.len());
        let mask = AttentionMask::build(batch.seq_len(), past, batch.valid.as_ref(), self.device, self.kind);
        let input = ForwardInput { ids: &batch.ids, positions: &batch.positions, mask: &mask };
        let gates = self.gates.interventions(self.device, self.kind)?;
        if gates.is_empty() {
            return self.arch.forward(&input, cache, hooks);
        }
        hooks.with_standing(gates, |hooks| self.arch.forward(&input, cache, hooks))
    }

    /// Logits `[seq, vocab]` (f32) of one prompt's token ids, with `hooks` applied and recorded.
    pub fn run_with_hooks(&self, ids: &[u32], hooks: &mut Hooks) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let batch = self.batch(&[ids.to_vec()])?;
        let normalized = self.forward(&batch, None, hooks)?;
        Ok(self.arch.unembed(&normalized.squeeze_dim(0)).to_kind(Kind::Float))
    }

    /// Logits `[seq, vocab]` (f32) of one prompt's token ids.
    pub fn logits(&self, ids: &[u32]) -> Result<Tensor> {
        self.run_with_hooks(ids, &mut Hooks::default())
    }

    /// Logits and the activations at every hook point `filter` accepts (TransformerLens' `run_with_cache`).
    pub fn run_with_cache(
        &self,
        ids: &[u32],
        filter: impl Fn(HookPoint) -> bool + Send + 'static,
    ) -> Result<(Tensor, ActivationCache)> {
        let mut hooks = Hooks::recording(filter);
        let logits = self.run_with_hooks(ids, &mut hooks)?;
        Ok((logits, hooks.cache))
    }

    /// Keys and values of `prefix` with room for `extra` more tokens, for evaluating many continuations of one
    /// prefix with [`Model::logits_after`].
    pub fn prefix_cache(&self, prefix: &[u32], extra: usize) -> Result<KvCache> {
        let _guard = tch::no_grad_guard();
        let batch = self.batch(&[prefix.to_vec()])?;
        let mut cache = KvCache::new(self.shape(), 1, (prefix.len() + extra) as i64, self.device, self.kind);
        let _ = self.forward(&batch, Some(&mut cache), &mut Hooks::default())?;
        Ok(cache)
    }

    /// Logits `[vocab]` (f32) of the last of `ids` read after the prefix in `cache`, which afterwards holds only
    /// the prefix again. Layers see the prefix's cached keys and values as they were computed.
    pub fn logits_after(&self, cache: &mut KvCache, ids: &[u32]) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let past = cache.len();
        if ids.is_empty() || cache.remaining() < ids.len() as i64 {
            return Err(ModelError::InvalidInput(format!(
                "{} tokens after a cached prefix with room for {}",
                ids.len(),
                cache.remaining()
            )));
        }
        self.check_prompt(ids)?;
        let n = ids.len() as i64;
        let batch = Batch {
            ids: Tensor::from_slice(&ids.iter().map(|&t| i64::from(t)).collect::<Vec<_>>())
                .view([1, n])
                .to_device(self.device),
            positions: Tensor::arange_start(past, past + n, (Kind::Int64, self.device)).view([1, n]),
            valid: None,
            lengths: vec![ids.len()],
        };
        let normalized = self.forward(&batch, Some(cache), &mut Hooks::default());
        cache.truncate(past);
        Ok(self.arch.unembed(&normalized?.get(0).get(-1)).to_kind(Kind::Float))
    }

    /// Logits of several prompts at once `[batch, seq, vocab]` (left-padded; see [`Batch`]).
    pub fn batch_logits(&self, batch: &Batch, hooks: &mut Hooks) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let normalized = self.forward(batch, None, hooks)?;
        Ok(self.arch.unembed(&normalized).to_kind(Kind::Float))
    }
}
