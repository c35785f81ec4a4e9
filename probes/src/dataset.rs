//! Activation datasets: run a model over documents, keep the activations of chosen hook points at labelled
//! token positions, and split train / validation / test by document so that no document leaks across.

use std::path::Path;

use models::tch::{Device, Kind, Tensor};
use models::tokenizer::ByteSpan;
use models::{HookPoint, Model, Progress};
use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{ProbeError, Result};
use crate::structure::structure_per_byte;

/// An `[n, d]` f32 matrix as a tensor on `device`.
pub fn to_tensor(x: &Array2<f32>, device: Device) -> Tensor {
    let standard = x.as_standard_layout();
    let values = standard.as_slice().unwrap_or_default();
    Tensor::from_slice(values).view([x.nrows() as i64, x.ncols() as i64]).to_device(device)
}

/// A way of labelling the tokens of a document.
pub trait TokenLabeller {
    /// Short name of the task (`bracket_depth`).
    fn name(&self) -> &str;
    /// Number of classes; labels are `0..classes()`.
    fn classes(&self) -> usize;
    /// A label for each token from its byte span in `text`, or `None` to leave the token out.
    fn labels(&self, text: &str, spans: &[ByteSpan]) -> Vec<Option<usize>>;
}

/// Bracket nesting depth at a token's last byte, capped at `max` (the last class means "max or deeper").
pub struct BracketDepth {
    /// Highest class.
    pub max: usize,
}

/// Indentation level of a token's logical line, capped at `max`.
pub struct IndentLevel {
    /// Highest class.
    pub max: usize,
}

fn structure_labels(
    text: &str,
    spans: &[ByteSpan],
    label: impl Fn(&crate::structure::Structure) -> usize,
) -> Vec<Option<usize>> {
    let per_byte = structure_per_byte(text);
    spans.iter().map(|&(start, end)| (end > start).then(|| per_byte.get(end - 1).map(&label)).flatten()).collect()
}

impl TokenLabeller for BracketDepth {
    fn name(&self) -> &str {
        "bracket_depth"
    }
    fn classes(&self) -> usize {
        self.max + 1
    }
    fn labels(&self, text: &str, spans: &[ByteSpan]) -> Vec<Option<usize>> {
        structure_labels(text, spans, |s| s.bracket_depth.min(self.max))
    }
}

impl TokenLabeller for IndentLevel {
    fn name(&self) -> &str {
        "indent_level"
    }
    fn classes(&self) -> usize {
        self.max + 1
    }
    fn labels(&self, text: &str, spans: &[ByteSpan]) -> Vec<Option<usize>> {
        structure_labels(text, spans, |s| s.indent_level.min(self.max))
    }
}

/// Activations at labelled token positions, one matrix per hook point, rows aligned with `labels`.
pub struct ActivationDataset {
    /// The hook points recorded, in the order of `features`.
    pub points: Vec<HookPoint>,
    /// `[tokens, width]` per hook point.
    pub features: Vec<Array2<f32>>,
    /// Class of each row.
    pub labels: Vec<usize>,
    /// Document of each row (for grouped splits).
    pub groups: Vec<usize>,
    /// Token id of each row (for control tasks).
    pub tokens: Vec<u32>,
}

/// Tokens run through the model in one batch while collecting (documents are left-padded together).
const BATCH_TOKENS: usize = 2048;

/// One tokenized document with the rows it contributes.
struct Pending {
    doc: usize,
    ids: Vec<u32>,
    /// Token positions with a label, and the labels.
    keep: Vec<(usize, usize)>,
}

/// Runs `model` over the first `max_tokens` tokens of each document and keeps the activations of `points` at
/// every labelled token. Documents go through in batches of about 2,048 tokens, so memory is bounded by the
/// result plus one batch's activations.
pub fn collect(
    model: &Model,
    documents: &[String],
    labeller: &dyn TokenLabeller,
    points: &[HookPoint],
    max_tokens: usize,
    progress: &dyn Progress,
) -> Result<ActivationDataset> {
    if points.is_empty() {
        return Err(ProbeError::InvalidInput("no hook points to record".into()));
    }
    for point in points {
        point.check(model.shape().n_layers)?;
        if point.position_dim() != 1 {
            return Err(ProbeError::InvalidInput(format!("{point} is not indexed by token position")));
        }
    }
    progress.begin("collecting activations", documents.len() as u64);
    let mut data = ActivationDataset {
        points: points.to_vec(),
        features: Vec::new(),
        labels: Vec::new(),
        groups: Vec::new(),
        tokens: Vec::new(),
    };
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); points.len()];
    let mut batch: Vec<Pending> = Vec::new();
    for (doc, text) in documents.iter().enumerate() {
        progress.check()?;
        let (mut ids, mut spans) = model.tokenizer.encode_with_offsets(text)?;
        ids.truncate(max_tokens.min(model.shape().context_length));
        spans.truncate(ids.len());
        let labels = labeller.labels(text, &spans);
        let keep: Vec<(usize, usize)> = labels.iter().enumerate().filter_map(|(i, l)| l.map(|l| (i, l))).collect();
        if !keep.is_empty() {
            batch.push(Pending { doc, ids, keep });
        }
        let batch_tokens = batch.iter().map(|p| p.ids.len()).max().unwrap_or(0) * batch.len();
        if batch_tokens >= BATCH_TOKENS || doc + 1 == documents.len() {
            run_batch(model, points, &std::mem::take(&mut batch), &mut rows, &mut data)?;
        }
        progress.advance(1);
    }
    let n = data.labels.len();
    data.features = rows
        .into_iter()
        .map(|values| {
            let width = values.len().checked_div(n).unwrap_or(0);
            Array2::from_shape_vec((n, width), values).map_err(ProbeError::from)
        })
        .collect::<Result<_>>()?;
    Ok(data)
}

/// Runs one batch of documents (no unembedding) and appends their labelled rows.
fn run_batch(
    model: &Model,
    points: &[HookPoint],
    batch: &[Pending],
    rows: &mut [Vec<f32>],
    data: &mut ActivationDataset,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let _guard = models::tch::no_grad_guard();
    let prompts: Vec<Vec<u32>> = batch.iter().map(|p| p.ids.clone()).collect();
    let inputs = model.batch(&prompts)?;
    let seq = inputs.seq_len() as usize;
    let wanted = points.to_vec();
    let last_layer = points.iter().map(|p| p.layer()).collect::<Option<Vec<_>>>().and_then(|l| l.into_iter().max());
    let mut hooks = models::Hooks::recording(move |p| wanted.contains(&p));
    if let Some(layer) = last_layer {
        // No point above the highest block recorded is needed: the pass stops there.
        hooks = hooks.stop_after(layer);
    }
    let _ = model.forward(&inputs, None, &mut hooks)?;
    // Row r of the batch is left-padded by seq - len: token i sits at flat index r * seq + (seq - len) + i.
    let mut flat = Vec::new();
    for (r, pending) in batch.iter().enumerate() {
        let offset = r * seq + seq - pending.ids.len();
        for &(i, label) in &pending.keep {
            flat.push((offset + i) as i64);
            data.labels.push(label);
            data.groups.push(pending.doc);
            data.tokens.push(pending.ids[i]);
        }
    }
    let index = models::tch::Tensor::from_slice(&flat).to_device(model.device);
    for (k, point) in points.iter().enumerate() {
        let activation = hooks.cache.require(*point)?;
        let selected = activation.flatten(0, 1).index_select(0, &index).to_kind(Kind::Float).to_device(Device::Cpu);
        rows[k].extend(Vec::<f32>::try_from(selected.flatten(0, -1)).map_err(models::ModelError::from)?);
    }
    Ok(())
}

impl ActivationDataset {
    /// Saves the dataset as one safetensors file: features (as f16 when `half`, halving the size) under
    /// `features.{k}.{hook point}`, and `labels`, `groups`, `tokens` as i64. Written to a temporary file, then
    /// renamed.
    pub fn save(&self, path: &Path, half: bool) -> Result<()> {
        let kind = if half { Kind::Half } else { Kind::Float };
        let as_i64 = |v: Vec<i64>| Tensor::from_slice(&v);
        let mut tensors: Vec<(String, Tensor)> = self
            .points
            .iter()
            .zip(&self.features)
            .enumerate()
            .map(|(k, (point, x))| (format!("features.{k}.{point}"), to_tensor(x, Device::Cpu).to_kind(kind)))
            .collect();
        tensors.push(("labels".into(), as_i64(self.labels.iter().map(|&l| l as i64).collect())));
        tensors.push(("groups".into(), as_i64(self.groups.iter().map(|&g| g as i64).collect())));
        tensors.push(("tokens".into(), as_i64(self.tokens.iter().map(|&t| i64::from(t)).collect())));
        let temp = path.with_extension("safetensors.tmp");
        Tensor::write_safetensors(&tensors, &temp).map_err(models::ModelError::from)?;
        Ok(std::fs::rename(&temp, path).map_err(models::files::at(path))?)
    }

    /// Loads a dataset written by [`ActivationDataset::save`] (features come back as f32).
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |why: String| ProbeError::InvalidInput(format!("{}: {why}", path.display()));
        let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
        let column = |name: &str| -> Result<Vec<i64>> {
            let t = tensors.iter().find(|(n, _)| n == name).ok_or_else(|| bad(format!("no `{name}` tensor")))?;
            Vec::<i64>::try_from(&t.1).map_err(|e| bad(e.to_string()))
        };
        let labels: Vec<usize> = column("labels")?.into_iter().map(|v| v as usize).collect();
        let mut features: Vec<(usize, HookPoint, Array2<f32>)> = Vec::new();
        for (name, t) in &tensors {
            let Some(rest) = name.strip_prefix("features.") else { continue };
            let (k, point) = rest.split_once('.').ok_or_else(|| bad(format!("bad tensor name {name}")))?;
            let k: usize = k.parse().map_err(|_| bad(format!("bad tensor name {name}")))?;
            let size = t.size();
            if size.len() != 2 || size[0] as usize != labels.len() {
                return Err(bad(format!("{name} has shape {size:?} for {} rows", labels.len())));
            }
            let values = Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).map_err(|e| bad(e.to_string()))?;
            let x =
                Array2::from_shape_vec((size[0] as usize, size[1] as usize), values).map_err(|e| bad(e.to_string()))?;
            features.push((k, point.parse()?, x));
        }
        features.sort_by_key(|f| f.0);
        Ok(ActivationDataset {
            points: features.iter().map(|f| f.1).collect(),
            features: features.into_iter().map(|f| f.2).collect(),
            labels,
            groups: column("groups")?.into_iter().map(|v| v as usize).collect(),
            tokens: column("tokens")?.into_iter().map(|v| v as u32).collect(),
        })
    }
}

/// Row indices of a train / validation / test split.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Rows to fit on.
    pub train: Vec<usize>,
    /// Rows to choose hyper-parameters on.
    pub validation: Vec<usize>,
    /// Rows to report on.
    pub test: Vec<usize>,
}

/// Splits rows by their group (document): a seeded shuffle of the groups, `train` and `validation` fractions
/// of them, the rest for test. No group is in two parts.
pub fn grouped_split(groups: &[usize], train: f64, validation: f64, seed: u64) -> Split {
    let mut ids: Vec<usize> = groups.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n_train = ((ids.len() as f64) * train).round() as usize;
    let n_val = ((ids.len() as f64) * validation).round() as usize;
    let part = |g: usize| {
        let rank = ids.iter().position(|&x| x == g).unwrap_or(0);
        if rank < n_train {
            0
        } else if rank < n_train + n_val {
            1
        } else {
            2
        }
    };
    let mut split = Split { train: Vec::new(), validation: Vec::new(), test: Vec::new() };
    for (row, &g) in groups.iter().enumerate() {
        match part(g) {
            0 => split.train.push(row),
            1 => split.validation.push(row),
            _ => split.test.push(row),
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_split_keeps_documents_whole() {
        let groups: Vec<usize> = (0..10).flat_map(|g| std::iter::repeat_n(g, 5)).collect();
        let split = grouped_split(&groups, 0.6, 0.2, 3);
        let docs = |rows: &[usize]| -> std::collections::BTreeSet<usize> { rows.iter().map(|&r| groups[r]).collect() };
        let (a, b, c) = (docs(&split.train), docs(&split.validation), docs(&split.test));
        assert_eq!((a.len(), b.len(), c.len()), (6, 2, 2));
        assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
        assert_eq!(split.train.len() + split.validation.len() + split.test.len(), 50);
        assert_ne!(grouped_split(&groups, 0.6, 0.2, 4), split, "the seed must matter");
    }

    #[test]
    fn datasets_round_trip_through_safetensors_in_f32_and_f16() {
        let x = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f32 * 0.25 - 1.0);
        let data = ActivationDataset {
            points: vec![HookPoint::ResidPost(3), HookPoint::MlpPost(1)],
            features: vec![x.clone(), x.mapv(|v| v * 2.0)],
            labels: vec![0, 1, 2, 1],
            groups: vec![0, 0, 1, 1],
            tokens: vec![5, 6, 7, 8],
        };
        let dir = tempfile::tempdir().unwrap();
        for half in [false, true] {
            let path = dir.path().join("data.safetensors");
            data.save(&path, half).unwrap();
            let back = ActivationDataset::load(&path).unwrap();
            // Multiples of 0.25 up to 4 are exact in f16 too.
            assert_eq!(
                (back.points, back.features, back.labels),
                (data.points.clone(), data.features.clone(), data.labels.clone())
            );
            assert_eq!((back.groups, back.tokens), (data.groups.clone(), data.tokens.clone()));
        }
        std::fs::write(dir.path().join("bad.safetensors"), b"not a safetensors file").unwrap();
        assert!(ActivationDataset::load(&dir.path().join("bad.safetensors")).is_err());
    }

    #[test]
    fn labels_come_from_each_tokens_last_byte() {
        let text = "f(a)\n";
        let spans = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)];
        let labels = BracketDepth { max: 3 }.labels(text, &spans);
        assert_eq!(labels, [Some(0), Some(1), Some(1), Some(0), Some(0)]);
        assert_eq!(IndentLevel { max: 2 }.labels("        x", &[(0, 9)]), [Some(2)]);
    }
}
