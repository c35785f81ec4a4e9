//! A sparse dictionary as SAELens holds one: an encoder into many sparse features and a decoder back, reading one
//! hook point and writing one (the same point for a sparse autoencoder; the MLP's input and output for a
//! transcoder, optionally with an affine skip path).

use models::tch::{Device, Kind, Tensor};
use models::{Edit, HookPoint, Intervention, Positions, Replacement};
use serde::{Deserialize, Serialize};

use crate::error::{ProbeError, Result};

/// How pre-activations become feature activations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    /// `relu(pre)` (SAELens's `standard`, trained with an L1 penalty elsewhere).
    Relu,
    /// The `k` largest pre-activations of each token, through a ReLU; the rest zero.
    TopK {
        /// Active features per token.
        k: usize,
    },
    /// `relu(pre)` where `pre > threshold` (one threshold per feature), zero elsewhere; what a BatchTopK
    /// dictionary becomes after training.
    JumpRelu,
}

/// Encoder and decoder weights in SAELens's layout (`x @ W_enc`, `f @ W_dec`), f32.
#[derive(Debug)]
pub struct Dictionary {
    /// How features activate.
    pub activation: Activation,
    /// The hook point whose activation is encoded.
    pub reads: HookPoint,
    /// The hook point the reconstruction stands for (equal to `reads` for a sparse autoencoder).
    pub writes: HookPoint,
    /// Whether `b_dec` is subtracted from the input before encoding (sparse autoencoders only).
    pub apply_b_dec_to_input: bool,
    /// `[d_in, d_sae]`.
    pub w_enc: Tensor,
    /// `[d_sae]`.
    pub b_enc: Tensor,
    /// `[d_sae, d_out]`: row `i` is feature `i`'s direction at the written point.
    pub w_dec: Tensor,
    /// `[d_out]`.
    pub b_dec: Tensor,
    /// `[d_sae]`, for [`Activation::JumpRelu`].
    pub threshold: Option<Tensor>,
    /// `[d_out, d_in]`: a skip-transcoder's linear path from input to output.
    pub w_skip: Option<Tensor>,
}

impl Dictionary {
    /// Width of the point read.
    pub fn d_in(&self) -> i64 {
        self.w_enc.size()[0]
    }

    /// Number of features.
    pub fn d_sae(&self) -> i64 {
        self.w_enc.size()[1]
    }

    /// Width of the point written.
    pub fn d_out(&self) -> i64 {
        self.w_dec.size()[1]
    }

    /// Whether it maps one point to another (a transcoder) rather than reconstructing its input.
    pub fn is_transcoder(&self) -> bool {
        self.reads != self.writes
    }

    /// Checks that the shapes agree with each other and with the activation.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(ProbeError::InvalidInput(format!("sparse dictionary: {what}")));
        let (d_in, d_sae, d_out) = (self.d_in(), self.d_sae(), self.d_out());
        let expect = |name: &str, t: &Tensor, want: &[i64]| -> Result<()> {
            if t.size() != want {
                return bad(format!("{name} has shape {:?}, expected {want:?}", t.size()));
            }
            Ok(())
        };
        expect("W_enc", &self.w_enc, &[d_in, d_sae])?;
        expect("b_enc", &self.b_enc, &[d_sae])?;
        expect("W_dec", &self.w_dec, &[d_sae, d_out])?;
        expect("b_dec", &self.b_dec, &[d_out])?;
        if let Some(w_skip) = &self.w_skip {
            expect("W_skip", w_skip, &[d_out, d_in])?;
        }
        match (&self.activation, &self.threshold) {
            (Activation::JumpRelu, Some(threshold)) => expect("threshold", threshold, &[d_sae])?,
            (Activation::JumpRelu, None) => return bad("a JumpReLU dictionary needs a threshold".into()),
            (Activation::TopK { k }, _) if *k == 0 || *k as i64 > d_sae => {
                return bad(format!("k = {k} with {d_sae} features"))
            }
            _ => {}
        }
        if self.apply_b_dec_to_input && d_in != d_out {
            return bad("b_dec can be subtracted from the input only when input and output widths agree".into());
        }
        if self.w_skip.is_some() && !self.is_transcoder() {
            return bad("a skip path belongs to transcoders".into());
        }
        Ok(())
    }

    /// Pre-activations `[.., d_sae]` of `x` `[.., d_in]`.
    pub fn pre_activations(&self, x: &Tensor) -> Tensor {
        let x = x.to_kind(self.w_enc.kind());
        let x = if self.apply_b_dec_to_input { x - &self.b_dec } else { x };
        x.matmul(&self.w_enc) + &self.b_enc
    }

    /// Feature activations of pre-activations.
    pub fn activate(&self, pre: &Tensor) -> Tensor {
        match (&self.activation, &self.threshold) {
            (Activation::TopK { k }, _) => top_k(pre, *k as i64),
            (Activation::JumpRelu, Some(threshold)) => pre.relu() * pre.gt_tensor(threshold).to_kind(pre.kind()),
            _ => pre.relu(),
        }
    }

    /// Feature activations `[.., d_sae]` of `x` `[.., d_in]`.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        self.activate(&self.pre_activations(x))
    }

    /// What features `f` `[.., d_sae]` write, without the skip path: `f @ W_dec + b_dec`.
    pub fn decode(&self, f: &Tensor) -> Tensor {
        f.matmul(&self.w_dec) + &self.b_dec
    }

    /// The dictionary's output for `x`: the decoded features, plus the skip path for a skip-transcoder.
    pub fn reconstruct(&self, x: &Tensor) -> Tensor {
        let out = self.decode(&self.encode(x));
        match &self.w_skip {
            Some(w_skip) => out + x.to_kind(w_skip.kind()).matmul(&w_skip.tr()),
            None => out,
        }
    }

    /// A copy sharing the weights' storage.
    pub fn shallow_clone(&self) -> Dictionary {
        self.map(Tensor::shallow_clone)
    }

    /// The dictionary on `device`.
    pub fn to_device(&self, device: Device) -> Dictionary {
        self.map(|t| t.to_device(device))
    }

    /// The dictionary with every weight passed through `f`.
    pub fn map(&self, f: impl Fn(&Tensor) -> Tensor) -> Dictionary {
        Dictionary {
            activation: self.activation,
            reads: self.reads,
            writes: self.writes,
            apply_b_dec_to_input: self.apply_b_dec_to_input,
            w_enc: f(&self.w_enc),
            b_enc: f(&self.b_enc),
            w_dec: f(&self.w_dec),
            b_dec: f(&self.b_dec),
            threshold: self.threshold.as_ref().map(&f),
            w_skip: self.w_skip.as_ref().map(&f),
        }
    }

    /// The intervention that runs the model with this dictionary's output in place of the written point's
    /// activation (SAELens's "spliced" forward pass), at every position.
    pub fn splice(&self) -> Intervention {
        Intervention {
            point: self.writes,
            positions: Positions::All,
            edit: Edit::Replace(Box::new(self.shallow_clone())),
        }
    }

    /// The weights by SAELens's names.
    pub fn named_tensors(&self) -> Vec<(&'static str, &Tensor)> {
        let mut named =
            vec![("W_enc", &self.w_enc), ("b_enc", &self.b_enc), ("W_dec", &self.w_dec), ("b_dec", &self.b_dec)];
        named.extend(self.threshold.as_ref().map(|t| ("threshold", t)));
        named.extend(self.w_skip.as_ref().map(|t| ("W_skip", t)));
        named
    }
}

impl Replacement for Dictionary {
    fn reads(&self) -> HookPoint {
        self.reads
    }

    fn replace(&self, input: &Tensor) -> models::Result<Tensor> {
        Ok(self.reconstruct(input))
    }
}

/// The `k` largest of each row of `pre` through a ReLU, zero elsewhere.
pub fn top_k(pre: &Tensor, k: i64) -> Tensor {
    let (values, indices) = pre.topk(k, -1, true, false);
    pre.zeros_like().scatter(-1, &indices, &values.relu())
}

/// A tensor read from a file in the kind a dictionary computes in (f32).
pub(crate) fn as_f32(t: Tensor) -> Tensor {
    if t.kind() == Kind::Float {
        t
    } else {
        t.to_kind(Kind::Float)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(activation: Activation) -> Dictionary {
        // Two inputs, three features: feature i reads x0 - i and writes direction i of a 3-wide output.
        let w_enc = Tensor::from_slice(&[1f32, 1., 1., 0., 0., 0.]).view([2, 3]);
        Dictionary {
            activation,
            reads: HookPoint::MlpIn(0),
            writes: HookPoint::MlpOut(0),
            apply_b_dec_to_input: false,
            w_enc,
            b_enc: Tensor::from_slice(&[0f32, -1., -2.]),
            w_dec: Tensor::eye(3, (Kind::Float, Device::Cpu)),
            b_dec: Tensor::from_slice(&[0.5f32, 0., 0.]),
            threshold: Some(Tensor::from_slice(&[0f32, 0.5, 2.])),
            w_skip: None,
        }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn activations_match_hand_computed_values() {
        let x = Tensor::from_slice(&[3f32, 7.]).view([1, 2]);
        // Pre-activations: 3, 2, 1; the third is under its threshold of 2.
        assert_eq!(values(&tiny(Activation::Relu).encode(&x)), [3., 2., 1.]);
        assert_eq!(values(&tiny(Activation::TopK { k: 2 }).encode(&x)), [3., 2., 0.]);
        assert_eq!(values(&tiny(Activation::JumpRelu).encode(&x)), [3., 2., 0.]);
        assert_eq!(values(&tiny(Activation::TopK { k: 1 }).reconstruct(&x)), [3.5, 0., 0.]);
        let mut skip = tiny(Activation::TopK { k: 1 });
        skip.w_skip = Some(Tensor::from_slice(&[0f32, 0., 0., 1., 1., 0.]).view([3, 2]));
        assert_eq!(values(&skip.reconstruct(&x)), [3.5, 7., 3.]);
        skip.check().unwrap();
    }

    #[test]
    fn inconsistent_shapes_are_errors_that_name_the_tensor() {
        let mut bad = tiny(Activation::JumpRelu);
        bad.b_enc = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        assert!(bad.check().unwrap_err().to_string().contains("b_enc"));
        let mut no_threshold = tiny(Activation::JumpRelu);
        no_threshold.threshold = None;
        assert!(no_threshold.check().is_err());
        assert!(tiny(Activation::TopK { k: 4 }).check().is_err());
    }
}
