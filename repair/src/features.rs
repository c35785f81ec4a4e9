//! MINT on a transcoder's features instead of neurons. A transcoder stands for one MLP layer: its features read
//! the MLP's input and write `f_i(x) · d_i` to its output. Features are ranked by their direct effect on the
//! desired-minus-wrong logit gap at the repaired position, like neurons, and a feature's decoder row `d_i` is
//! patched by moving it along J^T(u_d − u_w). In the model itself the patch is the rank-one change
//! `W_down += t · ĝ u_iᵀ` of the layer's down projection, where `u_i` is the feature's least-squares readout
//! from the MLP's hidden activations (`f_i(x) ≈ u_iᵀ h(x)` over reference code): plain weights, which revert
//! bit-exactly and export like any other change.

use std::path::Path;

use models::tch::{self, Device, Kind, Tensor};
use models::{HookPoint, Hooks, Model, Progress};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{RepairError, Result};
use crate::patchset::weights_sha256;
use crate::preservation::valid_rows;
use crate::target::{gap_at, Gap};

/// A sparse dictionary from `blocks.{l}.mlp.hook_in` to `blocks.{l}.hook_mlp_out` (a transcoder), as feature
/// repairs use it; the `experiments` crate adapts the dictionaries of `probes::sparse`.
pub trait Transcoder {
    /// The layer whose MLP it stands for.
    fn layer(&self) -> usize;
    /// Feature activations of MLP inputs `[n, d_model]` (f32, CPU), `[n, d_sae]` f32.
    fn encode(&self, mlp_in: &Tensor) -> Tensor;
    /// The decoder rows, `[d_sae, d_model]` f32 on the CPU.
    fn decoder(&self) -> Tensor;
}

/// Where the transcoder comes from and the reference code its readouts are fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// The transcoder, a SAELens folder (`cfg.json` + `sae_weights.safetensors`); feature repairs need it.
    pub transcoder: Option<std::path::PathBuf>,
    /// Files of the standard library's packages the readouts are fitted on.
    pub reference_files: usize,
    /// Tokens read per reference file.
    pub reference_tokens: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig { transcoder: None, reference_files: 64, reference_tokens: 512 }
    }
}

/// Ridge of the readout regression, relative to the mean eigenvalue of E[h hᵀ].
const READOUT_RIDGE: f64 = 1e-3;
/// Reference windows read per forward pass.
const BATCH: usize = 4;

/// A transcoder's features with what repairing through them needs.
pub struct FeatureBasis {
    transcoder: Box<dyn Transcoder>,
    /// Decoder rows, `[d_sae, d_model]`.
    decoder: Tensor,
    /// Each feature's least-squares readout from `blocks.{l}.mlp.hook_post`, `[d_sae, d_mlp]` f32.
    pub readouts: Tensor,
    /// Root-mean-square activation of each feature over the reference code, `[d_sae]`.
    pub rms: Tensor,
    /// R² of each readout over the reference code (how well the exported change follows the feature), `[d_sae]`.
    pub fit: Tensor,
    /// Reference tokens the statistics come from.
    pub tokens: usize,
}

impl FeatureBasis {
    /// Fits every feature's readout over `prompts` (reference code), reading them from `cache_dir` when an earlier
    /// run fitted them for the same weights, transcoder (`transcoder_sha256`, of its files) and prompts.
    pub fn cached(
        model: &Model,
        transcoder: Box<dyn Transcoder>,
        transcoder_sha256: &str,
        prompts: &[Vec<u32>],
        cache_dir: &Path,
        progress: &dyn Progress,
    ) -> Result<Self> {
        let mut hasher = Sha256::new();
        hasher.update(weights_sha256(model)?.as_bytes());
        hasher.update(transcoder_sha256.as_bytes());
        hasher.update(format!("readouts at layer {}, ridge {READOUT_RIDGE}", transcoder.layer()).as_bytes());
        for prompt in prompts {
            hasher.update((prompt.len() as u64).to_le_bytes());
            prompt.iter().for_each(|t| hasher.update(t.to_le_bytes()));
        }
        let key: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let path = cache_dir.join(format!("{key}.safetensors"));
        let decoder = transcoder.decoder();
        if path.exists() {
            let named = Tensor::read_safetensors(&path).map_err(|e| RepairError::file(&path, e))?;
            let get = |name: &str| {
                named.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).ok_or_else(|| {
                    RepairError::file(&path, format!("no `{name}` tensor; delete the file to fit again"))
                })
            };
            let tokens = get("tokens")?.int64_value(&[]) as usize;
            return Ok(FeatureBasis {
                readouts: get("readouts")?,
                rms: get("rms")?,
                fit: get("fit")?,
                tokens,
                decoder,
                transcoder,
            });
        }
        let basis = Self::fit(model, transcoder, prompts, progress)?;
        std::fs::create_dir_all(cache_dir).map_err(|e| RepairError::file(cache_dir, e))?;
        let temp = path.with_extension("safetensors.tmp");
        let tokens = Tensor::from(basis.tokens as i64);
        let named = [("readouts", &basis.readouts), ("rms", &basis.rms), ("fit", &basis.fit), ("tokens", &tokens)];
        Tensor::write_safetensors(&named, &temp).map_err(|e| RepairError::file(&temp, e))?;
        std::fs::rename(&temp, &path).map_err(|e| RepairError::file(&path, e))?;
        Ok(basis)
    }

    /// Fits every feature's readout over `prompts`: `u_i = (E[h hᵀ] + λI)⁻¹ E[h f_i]`.
    pub fn fit(
        model: &Model,
        transcoder: Box<dyn Transcoder>,
        prompts: &[Vec<u32>],
        progress: &dyn Progress,
    ) -> Result<Self> {
        let layer = transcoder.layer();
        let shape = model.shape();
        if layer >= shape.n_layers || prompts.is_empty() || prompts.iter().any(Vec::is_empty) {
            return Err(RepairError::Settings(format!(
                "feature readouts need non-empty reference prompts and a layer below {} (the transcoder's is {layer})",
                shape.n_layers
            )));
        }
        let decoder = transcoder.decoder();
        let (d_mlp, d_sae) = (shape.d_mlp as i64, decoder.size()[0]);
        if decoder.size()[1] != shape.d_model as i64 {
            return Err(RepairError::Mismatch(format!(
                "the transcoder writes {} values, the model's MLP {}",
                decoder.size()[1],
                shape.d_model
            )));
        }
        let double = (Kind::Double, Device::Cpu);
        let (mut hh, mut hf) = (Tensor::zeros([d_mlp, d_mlp], double), Tensor::zeros([d_mlp, d_sae], double));
        let (mut f_sum, mut f_squares) = (Tensor::zeros([d_sae], double), Tensor::zeros([d_sae], double));
        let mut tokens = 0usize;
        progress.begin("feature readouts", prompts.len() as u64);
        let _guard = tch::no_grad_guard();
        for chunk in prompts.chunks(BATCH) {
            progress.check()?;
            let batch = model.batch(chunk)?;
            let mut hooks = Hooks::recording(move |p| p == HookPoint::MlpIn(layer) || p == HookPoint::MlpPost(layer))
                .stop_after(layer);
            let _output = model.forward(&batch, None, &mut hooks)?;
            let valid = valid_rows(chunk, batch.seq_len());
            let rows = |point: HookPoint| -> Result<Tensor> {
                let t = hooks.cache.require(point)?.flatten(0, 1).to_device(Device::Cpu).to_kind(Kind::Float);
                Ok(t.index_select(0, &valid))
            };
            let (x, h) = (rows(HookPoint::MlpIn(layer))?, rows(HookPoint::MlpPost(layer))?.to_kind(Kind::Double));
            let f = transcoder.encode(&x).to_kind(Kind::Double);
            hh += h.tr().matmul(&h);
            hf += h.tr().matmul(&f);
            f_sum += f.sum_dim_intlist(0, false, Kind::Double);
            f_squares += f.square().sum_dim_intlist(0, false, Kind::Double);
            tokens += valid.size()[0] as usize;
            progress.advance(chunk.len() as u64);
        }
        let n = tokens as f64;
        let (gram, cross) = (hh / n, hf / n);
        let ridge = (READOUT_RIDGE * f64::try_from(gram.trace())? / d_mlp as f64).max(1e-12);
        let regularized = &gram + Tensor::eye(d_mlp, double) * ridge;
        let readouts = Tensor::linalg_solve(&regularized, &cross, true); // [d_mlp, d_sae]
                                                                         // Residual of each readout from the accumulated moments: E[f²] − 2 uᵀE[h f] + uᵀE[h hᵀ]u.
        let mean_squares = &f_squares / n;
        let explained = (&readouts * &cross).sum_dim_intlist(0, false, Kind::Double) * 2.0
            - (gram.matmul(&readouts) * &readouts).sum_dim_intlist(0, false, Kind::Double);
        let variance = &mean_squares - (&f_sum / n).square();
        let fit = (Tensor::ones_like(&variance) - (&mean_squares - explained) / variance.clamp_min(1e-12))
            .masked_fill(&variance.le(1e-12), 0.0);
        Ok(FeatureBasis {
            readouts: readouts.tr().to_kind(Kind::Float).contiguous(),
            rms: mean_squares.sqrt().to_kind(Kind::Float),
            fit: fit.to_kind(Kind::Float),
            tokens,
            decoder,
            transcoder,
        })
    }

    /// The layer whose MLP the features stand for.
    pub fn layer(&self) -> usize {
        self.transcoder.layer()
    }

    /// How many features there are.
    pub fn len(&self) -> usize {
        self.decoder.size()[0] as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feature activations of MLP inputs `[n, d_model]`.
    pub fn encode(&self, mlp_in: &Tensor) -> Tensor {
        self.transcoder.encode(&mlp_in.to_kind(Kind::Float).to_device(Device::Cpu))
    }

    /// The decoder rows, `[d_sae, d_model]`.
    pub fn decoder(&self) -> &Tensor {
        &self.decoder
    }
}

/// One feature's scores at the repaired position (positive = pushes towards the desired token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureScore {
    /// The transcoder's layer.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
    /// Its activation at the last position.
    pub activation: f32,
    /// Direct effect on logit_d − logit_w: f_i · (J^T(u_d − u_w)) · d_i.
    pub direct: f32,
    /// f_i / rms(f_i on reference code).
    pub selectivity: f32,
    /// Its readout at the last position, u_iᵀ h (what the exported change multiplies).
    pub readout: f32,
    /// R² of its readout over the reference code.
    pub fit: f32,
}

/// Every feature's scores at one position: the hidden activations and feature activations there, and the
/// direct effects given the gap's gradient at the final residual.
pub struct FeatureTargeting {
    /// `blocks.{l}.mlp.hook_post` at the last position, `[d_mlp]`.
    pub hidden: Tensor,
    /// Feature activations at the last position, `[d_sae]`.
    pub activations: Tensor,
    /// Direct effects, `[d_sae]`.
    pub direct: Tensor,
    /// f / rms, `[d_sae]`.
    pub selectivity: Tensor,
}

impl FeatureTargeting {
    /// Scores the features of `basis` for making `desired` the next token after `context`, with the gap there.
    pub fn at(model: &Model, context: &[u32], desired: u32, basis: &FeatureBasis) -> Result<(Gap, Self)> {
        let layer = basis.layer();
        let (gap, last) =
            gap_at(model, context, desired, move |p| p == HookPoint::MlpIn(layer) || p == HookPoint::MlpPost(layer))?;
        let activations = basis.encode(&last(HookPoint::MlpIn(layer))?.unsqueeze(0)).squeeze_dim(0);
        let direct = &activations * basis.decoder.mv(&gap.direction.to_device(Device::Cpu));
        let selectivity = &activations / (&basis.rms + 1e-6);
        let hidden = last(HookPoint::MlpPost(layer))?.to_device(Device::Cpu);
        Ok((gap, FeatureTargeting { hidden, activations, direct, selectivity }))
    }

    /// Features by decreasing |direct effect| (weighted by selectivity when `selective`), at most `count`, leaving
    /// out `skip`.
    pub fn top(
        &self,
        basis: &FeatureBasis,
        selective: bool,
        count: usize,
        skip: &[usize],
    ) -> Result<Vec<FeatureScore>> {
        let scores = if selective { &self.direct * &self.selectivity } else { self.direct.shallow_clone() };
        let (_, order) = scores.abs().topk((count + skip.len()).min(basis.len()) as i64, 0, true, true);
        let order: Vec<i64> = Vec::try_from(order)?;
        let at = |t: &Tensor, i: i64| t.double_value(&[i]) as f32;
        Ok(order
            .into_iter()
            .filter(|&i| !skip.contains(&(i as usize)))
            .take(count)
            .map(|i| FeatureScore {
                layer: basis.layer(),
                feature: i as usize,
                activation: at(&self.activations, i),
                direct: at(&self.direct, i),
                selectivity: at(&self.selectivity, i),
                readout: basis.readouts.get(i).dot(&self.hidden).double_value(&[]) as f32,
                fit: at(&basis.fit, i),
            })
            .collect())
    }
}
