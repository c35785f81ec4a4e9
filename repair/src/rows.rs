//! A case's desired tokens as rows of a linear system: per teacher-forced position, the margin of the desired
//! token, the gradient of its logit gap with respect to the final residual (how a change written into the
//! residual stream moves the gap, to first order) and every MLP neuron's activation there (the keys that a
//! change of a neuron's output vector is multiplied by).

use std::borrow::Borrow;

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Hooks, Model};

use crate::case::Tokens;
use crate::error::Result;

/// One desired token of one case, linearised at the model as it is.
pub struct Row {
    /// Which case (an index into the caller's list).
    pub case: usize,
    /// Which desired token of it.
    pub step: usize,
    /// logit of the desired token minus the best other logit.
    pub margin: f32,
    /// ∂(logit_d − logit_w)/∂(final residual), `[d_model]` f32 on the CPU, w the strongest competitor.
    pub direction: Tensor,
    /// `mlp.hook_post` of every layer at the position, `[n_layers, d_mlp]` f32 on the CPU.
    pub keys: Tensor,
}

impl Row {
    /// The same row, sharing its tensors.
    pub(crate) fn shallow_clone(&self) -> Row {
        Row {
            case: self.case,
            step: self.step,
            margin: self.margin,
            direction: self.direction.shallow_clone(),
            keys: self.keys.shallow_clone(),
        }
    }
}

/// Cases whose rows are computed in one forward pass.
const BATCH: usize = 8;

/// The rows of every desired token of every case (case numbers are indices into `cases`), from one batched forward
/// pass with a cache per [`BATCH`] cases and one backward pass through the final norm and unembedding. The cases
/// may be given by value or by reference (a subset of another list, uncopied).
pub fn rows_of<T: Borrow<Tokens>>(model: &Model, cases: &[T]) -> Result<Vec<Row>> {
    let n_layers = model.shape().n_layers;
    let last_layer = n_layers - 1;
    let mut rows = Vec::new();
    for (chunk_index, chunk) in cases.chunks(BATCH).enumerate() {
        let chunk: Vec<&Tokens> = chunk.iter().map(Borrow::borrow).collect();
        let inputs: Vec<Vec<u32>> = chunk.iter().map(|t| t.ids[..t.ids.len() - 1].to_vec()).collect();
        let batch = model.batch(&inputs)?;
        let seq = batch.seq_len();
        let mut hooks =
            Hooks::recording(move |p| matches!(p, HookPoint::MlpPost(_)) || p == HookPoint::ResidPost(last_layer));
        {
            let _guard = models::tch::no_grad_guard();
            let _normalized = model.forward(&batch, None, &mut hooks)?;
        }
        let (mut resids, mut keys, mut desired, mut owners) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (b, tokens) in chunk.iter().enumerate() {
            let start = seq - inputs[b].len() as i64 + tokens.prompt_len as i64 - 1;
            let steps = tokens.steps() as i64;
            let at_answers = |point: HookPoint| -> Result<Tensor> {
                Ok(hooks.cache.require(point)?.get(b as i64).narrow(0, start, steps))
            };
            let layers = (0..n_layers)
                .map(|l| Ok(at_answers(HookPoint::MlpPost(l))?.to_kind(Kind::Float).to_device(Device::Cpu)))
                .collect::<Result<Vec<_>>>()?;
            keys.push(Tensor::stack(&layers, 1));
            resids.push(at_answers(HookPoint::ResidPost(last_layer))?);
            desired.extend(tokens.ids[tokens.prompt_len..].iter().map(|&t| i64::from(t)));
            owners.extend((0..tokens.steps()).map(|step| (chunk_index * BATCH + b, step)));
        }
        let (directions, margins) = gap_gradients(model, &Tensor::cat(&resids, 0), &desired)?;
        let keys = Tensor::cat(&keys, 0);
        rows.extend(owners.into_iter().enumerate().map(|(i, (case, step))| Row {
            case,
            step,
            margin: margins[i],
            direction: directions.get(i as i64),
            keys: keys.get(i as i64),
        }));
    }
    Ok(rows)
}

/// Positions of reference text the model's answer at which a repair must keep: of every position of `prompts`,
/// the `count` where the top-1 token leads the runner-up by the least (they flip first), as rows whose desired
/// token is the model's own top-1 (`case` is the prompt's index).
pub fn anchor_rows(model: &Model, prompts: &[Vec<u32>], count: usize) -> Result<Vec<Row>> {
    let n_layers = model.shape().n_layers;
    let last_layer = n_layers - 1;
    let mut candidates: Vec<Row> = Vec::new();
    for (prompt, ids) in prompts.iter().enumerate() {
        let (logits, cache) = model.run_with_cache(ids, move |p| {
            matches!(p, HookPoint::MlpPost(_)) || p == HookPoint::ResidPost(last_layer)
        })?;
        let top: Vec<i64> = Vec::try_from(logits.argmax(-1, false).to_device(Device::Cpu))?;
        let keys = Tensor::stack(
            &(0..n_layers)
                .map(|l| Ok(cache.require(HookPoint::MlpPost(l))?.get(0).to_kind(Kind::Float).to_device(Device::Cpu)))
                .collect::<Result<Vec<_>>>()?,
            1,
        );
        let resid = cache.require(HookPoint::ResidPost(last_layer))?.get(0);
        let (directions, margins) = gap_gradients(model, &resid, &top)?;
        candidates.extend((0..ids.len()).map(|p| Row {
            case: prompt,
            step: p,
            margin: margins[p],
            direction: directions.get(p as i64),
            keys: keys.get(p as i64),
        }));
        candidates.sort_by(|a, b| a.margin.total_cmp(&b.margin));
        candidates.truncate(count);
    }
    Ok(candidates)
}

/// E[c cᵀ] over every position of `prompts`, c the gradient of the gap between the model's top-1 token there and
/// its runner-up with respect to the final residual: how much a residual change along each direction would move
/// reference text's top-1 gaps, to first order. `[d_model, d_model]` f64 on the CPU.
pub fn gap_moment(model: &Model, prompts: &[Vec<u32>]) -> Result<Tensor> {
    let last_layer = model.shape().n_layers - 1;
    let d = model.shape().d_model as i64;
    let mut moment = Tensor::zeros([d, d], (Kind::Double, Device::Cpu));
    let mut count = 0usize;
    for ids in prompts {
        let (logits, cache) = model.run_with_cache(ids, move |p| p == HookPoint::ResidPost(last_layer))?;
        let top: Vec<i64> = Vec::try_from(logits.argmax(-1, false).to_device(Device::Cpu))?;
        let resid = cache.require(HookPoint::ResidPost(last_layer))?.get(0);
        let (directions, _) = gap_gradients(model, &resid, &top)?;
        let directions = directions.to_kind(Kind::Double);
        moment += directions.tr().matmul(&directions);
        count += ids.len();
    }
    Ok(moment / count.max(1) as f64)
}

/// For final residual rows `[n, d_model]` and each row's desired token: the gradient of logit_d − logit_w with
/// respect to the row (w the strongest other token) as `[n, d_model]` f32 on the CPU, and the margins.
fn gap_gradients(model: &Model, resid: &Tensor, desired: &[i64]) -> Result<(Tensor, Vec<f32>)> {
    let x = resid.to_kind(model.kind).detach().set_requires_grad(true);
    let logits = model.read_out(&x).to_kind(Kind::Float);
    let index = Tensor::from_slice(desired).to_device(logits.device()).unsqueeze(1);
    let chosen = logits.gather(1, &index, false).squeeze_dim(1);
    let wrong = logits.detach().scatter_value(1, &index, f64::NEG_INFINITY).argmax(1, true);
    let gaps = chosen - logits.gather(1, &wrong, false).squeeze_dim(1);
    gaps.sum(Kind::Float).backward();
    let margins = Vec::<f32>::try_from(gaps.detach().to_device(Device::Cpu))?;
    Ok((x.grad().to_kind(Kind::Float).to_device(Device::Cpu), margins))
}
