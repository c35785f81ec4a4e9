//! A case's desired tokens as rows of a linear system: per teacher-forced position, the margin of the desired
//! token, the gradient of its logit gap with respect to the final residual (how a change written into the
//! residual stream moves the gap, to first order) and every MLP neuron's activation there (the keys that a
//! change of a neuron's output vector is multiplied by).

use models::tch::{Device, Kind, Tensor};
use models::{HookPoint, Model};

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

/// The rows of every desired token of `tokens` (case number `case`), from one forward pass with a cache and
/// one backward pass through the final norm and unembedding.
pub fn rows_of(model: &Model, tokens: &Tokens, case: usize) -> Result<Vec<Row>> {
    let n_layers = model.shape().n_layers;
    let last_layer = n_layers - 1;
    let inputs = &tokens.ids[..tokens.ids.len() - 1];
    let (_, cache) = model
        .run_with_cache(inputs, move |p| matches!(p, HookPoint::MlpPost(_)) || p == HookPoint::ResidPost(last_layer))?;
    let (start, steps) = (tokens.prompt_len as i64 - 1, tokens.steps() as i64);
    let at_answers = |point: HookPoint| -> Result<Tensor> {
        Ok(cache.require(point)?.get(0).narrow(0, start, steps).to_kind(Kind::Float).to_device(Device::Cpu))
    };
    let keys = Tensor::stack(&(0..n_layers).map(|l| at_answers(HookPoint::MlpPost(l))).collect::<Result<Vec<_>>>()?, 1);
    let resid = cache.require(HookPoint::ResidPost(last_layer))?.get(0).narrow(0, start, steps);
    let desired: Vec<i64> = tokens.ids[tokens.prompt_len..].iter().map(|&t| i64::from(t)).collect();
    let (directions, margins) = gap_gradients(model, &resid, &desired)?;
    (0..steps)
        .map(|s| {
            Ok(Row {
                case,
                step: s as usize,
                margin: margins[s as usize],
                direction: directions.get(s),
                keys: keys.get(s),
            })
        })
        .collect()
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
