//! Preservation statistics: per MLP layer, the second moments of the down projection's inputs k (the activations
//! at `blocks.{l}.mlp.hook_post`) over reference code that no evaluation reads. The diagonal E[k²] steers a patch
//! onto neurons that rarely fire (so it changes little elsewhere); the full E[k kᵀ] (`d_mlp × d_mlp` per layer)
//! is what MEMIT's and AlphaEdit's updates are regularised by; and E[c cᵀ] of the reference text's top-1 gap
//! directions, the joint solve's output metric. Computed once per model and reference corpus, and
//! cached on disk under a key made of the weights' SHA-256, the reference tokens and whether the covariance is
//! included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use models::files::write_atomically;
use models::tch::{self, Device, Kind, Tensor};
use models::{HookPoint, Hooks, Model, Neuron, Progress};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};

use crate::error::{RepairError, Result};
use crate::patchset::weights_sha256;

/// Reference windows read per forward pass.
const BATCH: usize = 8;

/// Second moments of every layer's MLP neuron activations over reference text.
pub struct PreservationStats {
    /// E[k²] per neuron, `[n_layers, d_mlp]`, f32 on the CPU.
    pub second_moment: Tensor,
    /// E[k kᵀ] per layer, `[n_layers, d_mlp, d_mlp]`, f32 on the CPU, when asked for.
    pub covariance: Option<Tensor>,
    /// E[c cᵀ] of the reference text's top-1 gap directions at the final residual ([`crate::rows::gap_moment`]),
    /// `[d_model, d_model]` f32 on the CPU: which residual changes move reference text's top-1 tokens.
    pub gaps: Tensor,
    /// Reference tokens the moments are averaged over.
    pub tokens: usize,
}

/// Where statistics came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Read from this cache file.
    Cached(PathBuf),
    /// Computed now and written to this cache file.
    Computed(PathBuf),
}

impl PreservationStats {
    /// Computes the statistics over `prompts` (token ids of reference text; windows of equal length run in
    /// batches), with the full covariance when `covariance`.
    pub fn compute(model: &Model, prompts: &[Vec<u32>], covariance: bool, progress: &dyn Progress) -> Result<Self> {
        if prompts.is_empty() || prompts.iter().any(Vec::is_empty) {
            return Err(RepairError::Settings("preservation statistics need non-empty reference prompts".into()));
        }
        let shape = model.shape();
        let (layers, width) = (shape.n_layers as i64, shape.d_mlp as i64);
        let squares = Tensor::zeros([layers, width], (Kind::Double, Device::Cpu));
        let mut products = covariance.then(|| Tensor::zeros([layers, width, width], (Kind::Double, Device::Cpu)));
        let mut tokens = 0usize;
        progress.begin("preservation statistics", prompts.len() as u64);
        let guard = tch::no_grad_guard();
        for chunk in prompts.chunks(BATCH) {
            progress.check()?;
            let batch = model.batch(chunk)?;
            let mut hooks = Hooks::recording(|p| matches!(p, HookPoint::MlpPost(_)));
            let _normalized = model.forward(&batch, None, &mut hooks)?;
            let valid = valid_rows(chunk, batch.seq_len());
            for layer in 0..shape.n_layers {
                let keys = hooks.cache.require(HookPoint::MlpPost(layer))?.flatten(0, 1);
                let keys = keys.to_device(Device::Cpu).index_select(0, &valid).to_kind(Kind::Double);
                let mut row = squares.get(layer as i64);
                row += keys.square().sum_dim_intlist(0, false, Kind::Double);
                if let Some(products) = &mut products {
                    let mut block = products.get(layer as i64);
                    block += keys.tr().matmul(&keys);
                }
            }
            tokens += chunk.iter().map(Vec::len).sum::<usize>();
            progress.advance(chunk.len() as u64);
        }
        drop(guard);
        let n = tokens as f64;
        Ok(PreservationStats {
            second_moment: (squares / n).to_kind(Kind::Float),
            covariance: products.map(|p| (p / n).to_kind(Kind::Float)),
            gaps: crate::rows::gap_moment(model, prompts)?.to_kind(Kind::Float),
            tokens,
        })
    }

    /// The statistics of `model` over `prompts`, read from `dir` when an earlier run cached them for the same
    /// weights, prompts and `covariance` setting, else computed and cached there (written atomically).
    pub fn cached(
        model: &Model,
        prompts: &[Vec<u32>],
        covariance: bool,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<(Self, Provenance)> {
        let path = dir.join(format!("{}.safetensors", cache_key(model, prompts, covariance)?));
        if path.exists() {
            return Ok((Self::load(&path)?, Provenance::Cached(path)));
        }
        let stats = Self::compute(model, prompts, covariance, progress)?;
        std::fs::create_dir_all(dir).map_err(|e| RepairError::file(dir, e))?;
        stats.save(&path)?;
        Ok((stats, Provenance::Computed(path)))
    }

    /// The metric of a minimum-norm patch of `neurons`' output vectors (sorted by layer, then index), as its
    /// diagonal blocks, one per layer in order, f64 on the CPU (neurons of different layers do not mix): E[k kᵀ]
    /// over the reference code between neurons of the layer, or only its diagonal E[k²] when the covariance was
    /// not computed, plus ε = `relative_epsilon` × the layer's mean E[k²] on the diagonal. A change costs in
    /// proportion to how much reference text would read it.
    pub fn metric(&self, neurons: &[Neuron], relative_epsilon: f64) -> Result<Vec<Tensor>> {
        let mut blocks = Vec::new();
        let mut start = 0usize;
        while start < neurons.len() {
            let layer = neurons[start].layer;
            let end = start + neurons[start..].iter().take_while(|x| x.layer == layer).count();
            let index = Tensor::from_slice(&neurons[start..end].iter().map(|x| x.index as i64).collect::<Vec<_>>());
            let moments = self.second_moment.get(layer as i64).to_kind(Kind::Double);
            let epsilon = (relative_epsilon * moments.mean(Kind::Double).double_value(&[])).max(1e-12);
            let block = match &self.covariance {
                Some(c) => c.get(layer as i64).index_select(0, &index).index_select(1, &index).to_kind(Kind::Double),
                None => moments.index_select(0, &index).diag(0),
            };
            blocks.push(block + Tensor::eye((end - start) as i64, (Kind::Double, Device::Cpu)) * epsilon);
            start = end;
        }
        Ok(blocks)
    }

    /// E[k kᵀ] of `layer`; an error when the statistics were computed without the covariance.
    pub fn covariance_of(&self, layer: usize) -> Result<Tensor> {
        self.covariance.as_ref().map(|c| c.get(layer as i64)).ok_or_else(|| {
            RepairError::Settings("this method needs the full key covariance; compute the statistics with it".into())
        })
    }

    fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = vec![("second_moment", &self.second_moment), ("gaps", &self.gaps)];
        if let Some(covariance) = &self.covariance {
            tensors.push(("covariance", covariance));
        }
        let encoded: Vec<(&str, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|(name, t)| {
                let values: Vec<f32> = Vec::try_from(t.flatten(0, -1))?;
                let shape = t.size().iter().map(|&d| d as usize).collect();
                Ok((name, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect()))
            })
            .collect::<Result<_>>()?;
        let views: Vec<(&str, TensorView)> = encoded
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (*name, v))
                    .map_err(|e| RepairError::file(path, e))
            })
            .collect::<Result<_>>()?;
        let metadata = HashMap::from([("tokens".to_string(), self.tokens.to_string())]);
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| RepairError::file(path, e))?;
        Ok(write_atomically(path, &bytes)?)
    }

    fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| RepairError::file(path, e))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| RepairError::file(path, e))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| RepairError::file(path, e))?;
        let tokens =
            header.metadata().as_ref().and_then(|m| m.get("tokens")).and_then(|t| t.parse().ok()).ok_or_else(|| {
                RepairError::file(path, "no token count in the metadata; delete the file to recompute")
            })?;
        let read = |name: &str| -> Result<Tensor> {
            let view = file.tensor(name).map_err(|e| RepairError::file(path, format!("{name}: {e}")))?;
            let values: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            Ok(Tensor::from_slice(&values).view(shape.as_slice()))
        };
        let covariance = file.names().contains(&"covariance").then(|| read("covariance")).transpose()?;
        Ok(PreservationStats { second_moment: read("second_moment")?, covariance, gaps: read("gaps")?, tokens })
    }
}

/// Indices of the real (not padding) rows of a `[batch × seq]` flattening; prompts are left-padded.
pub(crate) fn valid_rows(prompts: &[Vec<u32>], seq: i64) -> Tensor {
    let rows: Vec<i64> = prompts
        .iter()
        .enumerate()
        .flat_map(|(b, p)| (seq - p.len() as i64..seq).map(move |s| b as i64 * seq + s))
        .collect();
    Tensor::from_slice(&rows)
}

/// The cache key: SHA-256 of the weights' SHA-256, every reference token id, the covariance flag and the format
/// (files without the gap moment have other keys).
fn cache_key(model: &Model, prompts: &[Vec<u32>], covariance: bool) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(weights_sha256(model)?.as_bytes());
    for prompt in prompts {
        hasher.update((prompt.len() as u64).to_le_bytes());
        prompt.iter().for_each(|t| hasher.update(t.to_le_bytes()));
    }
    hasher.update([u8::from(covariance)]);
    hasher.update(b"with gap moment");
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
