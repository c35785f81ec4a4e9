//! SAELens's on-disk format: a folder with `cfg.json` (architecture, widths, hook names under `metadata`) and
//! `sae_weights.safetensors` (`W_enc`, `b_enc`, `W_dec`, `b_dec`, and `threshold` or `W_skip` where the
//! architecture has them), as `sae_lens` 6 saves and loads it.

use std::path::Path;

use models::tch::Tensor;
use models::HookPoint;
use serde_json::{json, Value};

use super::dictionary::{as_f32, Activation, Dictionary};
use crate::error::{ProbeError, Result};

/// Name of the configuration file.
pub const CFG_FILE: &str = "cfg.json";
/// Name of the weights file.
pub const WEIGHTS_FILE: &str = "sae_weights.safetensors";
/// The SAELens version whose format is written.
const SAE_LENS_VERSION: &str = "6.54.12";

/// SAELens's architecture name for a dictionary.
pub fn architecture(dictionary: &Dictionary) -> Result<&'static str> {
    let skip = dictionary.w_skip.is_some();
    Ok(match (dictionary.activation, dictionary.is_transcoder(), skip) {
        (Activation::Relu, false, _) => "standard",
        (Activation::TopK { .. }, false, _) => "topk",
        (Activation::JumpRelu, false, _) => "jumprelu",
        (Activation::Relu, true, false) => "transcoder",
        (Activation::Relu, true, true) => "skip_transcoder",
        (Activation::JumpRelu, true, false) => "jumprelu_transcoder",
        (Activation::JumpRelu, true, true) => "jumprelu_skip_transcoder",
        (Activation::TopK { .. }, true, _) => {
            return Err(ProbeError::InvalidInput(
                "SAELens has no TopK transcoder; train transcoders with BatchTopK, which saves as jumprelu_transcoder"
                    .into(),
            ))
        }
    })
}

/// Writes `dictionary` into the folder `dir` (created if needed) as SAELens saves one; `model_name` goes into the
/// metadata. Each file is written atomically, the configuration last.
pub fn save(dictionary: &Dictionary, dir: &Path, model_name: &str) -> Result<()> {
    dictionary.check()?;
    let architecture = architecture(dictionary)?;
    let mut metadata = json!({
        "sae_lens_version": SAE_LENS_VERSION,
        "sae_lens_training_version": SAE_LENS_VERSION,
        "model_name": model_name,
        "hook_name": dictionary.reads.to_string(),
    });
    let mut cfg = json!({
        "architecture": architecture,
        "d_in": dictionary.d_in(),
        "d_sae": dictionary.d_sae(),
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": dictionary.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
    });
    if dictionary.is_transcoder() {
        metadata["hook_name_out"] = json!(dictionary.writes.to_string());
        cfg["d_out"] = json!(dictionary.d_out());
    }
    if let Activation::TopK { k } = dictionary.activation {
        cfg["k"] = json!(k);
        cfg["rescale_acts_by_decoder_norm"] = json!(false);
    }
    cfg["metadata"] = metadata;
    std::fs::create_dir_all(dir).map_err(models::files::at(dir))?;
    let tensors: Vec<(&str, Tensor)> = dictionary
        .named_tensors()
        .into_iter()
        .map(|(name, t)| (name, t.to_device(models::tch::Device::Cpu).contiguous()))
        .collect();
    let temp = dir.join(format!("{WEIGHTS_FILE}.tmp"));
    Tensor::write_safetensors(&tensors, &temp).map_err(models::ModelError::from)?;
    std::fs::rename(&temp, dir.join(WEIGHTS_FILE)).map_err(models::files::at(dir))?;
    models::files::write_atomically(&dir.join(CFG_FILE), &serde_json::to_vec_pretty(&cfg)?)?;
    Ok(())
}

/// Reads a dictionary from a SAELens folder: architectures `standard`, `topk`, `jumprelu`, `transcoder`,
/// `skip_transcoder`, `jumprelu_transcoder` and `jumprelu_skip_transcoder`, with activations not normalised
/// (`normalize_activations: none`); weights of any float dtype come back as f32.
pub fn load(dir: &Path) -> Result<Dictionary> {
    let bad = |why: String| ProbeError::InvalidInput(format!("{}: {why}", dir.display()));
    let cfg_path = dir.join(CFG_FILE);
    let cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).map_err(models::files::at(&cfg_path))?)
        .map_err(|e| bad(format!("{CFG_FILE} is not JSON: {e}")))?;
    let text = |key: &str| cfg.get(key).and_then(Value::as_str);
    let architecture = text("architecture").ok_or_else(|| bad(format!("{CFG_FILE} has no architecture")))?;
    let (activation, transcoder, skip) = match architecture {
        "standard" => (Activation::Relu, false, false),
        "topk" => {
            let k = cfg.get("k").and_then(Value::as_u64).ok_or_else(|| bad("a topk dictionary without k".into()))?;
            if cfg.get("rescale_acts_by_decoder_norm").and_then(Value::as_bool).unwrap_or(false) {
                return Err(bad(
                    "rescale_acts_by_decoder_norm = true is not supported; fold the decoder norms first".into()
                ));
            }
            (Activation::TopK { k: k as usize }, false, false)
        }
        "jumprelu" => (Activation::JumpRelu, false, false),
        "transcoder" => (Activation::Relu, true, false),
        "skip_transcoder" => (Activation::Relu, true, true),
        "jumprelu_transcoder" => (Activation::JumpRelu, true, false),
        "jumprelu_skip_transcoder" => (Activation::JumpRelu, true, true),
        other => {
            return Err(bad(format!(
                "architecture {other:?} is not supported (standard, topk, jumprelu, transcoder, skip_transcoder, \
                 jumprelu_transcoder, jumprelu_skip_transcoder)"
            )))
        }
    };
    match text("normalize_activations") {
        None | Some("none") => {}
        Some(other) => {
            return Err(bad(format!(
                "normalize_activations = {other:?}: fold the normalisation into the weights first (SAELens's \
                 fold_activation_norm_scaling_factor) so that it reads \"none\""
            )))
        }
    }
    if text("reshape_activations").is_some_and(|r| r != "none") {
        return Err(bad("dictionaries over attention heads (reshape_activations = hook_z) are not supported".into()));
    }
    let metadata = cfg.get("metadata").cloned().unwrap_or(Value::Null);
    let hook = |key: &str| -> Result<Option<HookPoint>> {
        metadata
            .get(key)
            .or_else(|| cfg.get(key))
            .and_then(Value::as_str)
            .map(|name| name.parse().map_err(ProbeError::from))
            .transpose()
    };
    let reads = hook("hook_name")?.ok_or_else(|| bad("cfg.json names no hook point (metadata.hook_name)".into()))?;
    let writes = if transcoder {
        hook("hook_name_out")?
            .ok_or_else(|| bad("a transcoder's cfg.json names no output point (metadata.hook_name_out)".into()))?
    } else {
        reads
    };
    let weights_path = dir.join(WEIGHTS_FILE);
    let tensors = Tensor::read_safetensors(&weights_path).map_err(|e| bad(format!("{WEIGHTS_FILE}: {e}")))?;
    let take = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| as_f32(t.shallow_clone()));
    let require = |name: &str| take(name).ok_or_else(|| bad(format!("{WEIGHTS_FILE} has no {name}")));
    let dictionary = Dictionary {
        activation,
        reads,
        writes,
        apply_b_dec_to_input: cfg.get("apply_b_dec_to_input").and_then(Value::as_bool).unwrap_or(!transcoder),
        w_enc: require("W_enc")?,
        b_enc: require("b_enc")?,
        w_dec: require("W_dec")?,
        b_dec: require("b_dec")?,
        threshold: if activation == Activation::JumpRelu { Some(require("threshold")?) } else { None },
        w_skip: if skip { Some(require("W_skip")?) } else { None },
    };
    dictionary.check().map_err(|e| bad(e.to_string()))?;
    let widths = [("d_in", dictionary.d_in()), ("d_sae", dictionary.d_sae()), ("d_out", dictionary.d_out())];
    for (key, found) in widths {
        if let Some(want) = cfg.get(key).and_then(Value::as_i64) {
            if want != found {
                return Err(bad(format!("cfg.json says {key} = {want}, the weights have {found}")));
            }
        }
    }
    Ok(dictionary)
}

#[cfg(test)]
mod tests {
    use models::tch::{Device, Kind};

    use super::*;

    fn random(activation: Activation, reads: HookPoint, writes: HookPoint, skip: bool) -> Dictionary {
        let f = (Kind::Float, Device::Cpu);
        let d_out = if reads == writes { 4 } else { 3 };
        Dictionary {
            activation,
            reads,
            writes,
            apply_b_dec_to_input: reads == writes,
            w_enc: Tensor::randn([4, 6], f),
            b_enc: Tensor::randn([6], f),
            w_dec: Tensor::randn([6, d_out], f),
            b_dec: Tensor::randn([d_out], f),
            threshold: (activation == Activation::JumpRelu).then(|| Tensor::rand([6], f)),
            w_skip: skip.then(|| Tensor::randn([d_out, 4], f)),
        }
    }

    #[test]
    fn every_architecture_round_trips_bit_for_bit() {
        let (resid, mlp_in, mlp_out) = (HookPoint::ResidPost(2), HookPoint::MlpIn(1), HookPoint::MlpOut(1));
        let cases = [
            random(Activation::TopK { k: 2 }, resid, resid, false),
            random(Activation::JumpRelu, resid, resid, false),
            random(Activation::Relu, resid, resid, false),
            random(Activation::JumpRelu, mlp_in, mlp_out, true),
            random(Activation::Relu, mlp_in, mlp_out, false),
        ];
        let dir = tempfile::tempdir().unwrap();
        for dictionary in cases {
            save(&dictionary, dir.path(), "tiny").unwrap();
            let back = load(dir.path()).unwrap();
            assert_eq!(
                (back.activation, back.reads, back.writes),
                (dictionary.activation, dictionary.reads, dictionary.writes)
            );
            for ((name, a), (_, b)) in dictionary.named_tensors().into_iter().zip(back.named_tensors()) {
                assert!(a.equal(b), "{name}");
            }
            assert_eq!(back.named_tensors().len(), dictionary.named_tensors().len());
        }
    }

    #[test]
    fn unsupported_or_broken_folders_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let topk = random(Activation::TopK { k: 2 }, HookPoint::MlpIn(0), HookPoint::MlpOut(0), false);
        assert!(save(&topk, dir.path(), "m").unwrap_err().to_string().contains("BatchTopK"));
        save(&random(Activation::Relu, HookPoint::ResidPost(0), HookPoint::ResidPost(0), false), dir.path(), "m")
            .unwrap();
        let cfg_path = dir.path().join(CFG_FILE);
        let cfg = std::fs::read_to_string(&cfg_path).unwrap();
        for (from, to, says) in [
            ("\"standard\"", "\"gated\"", "not supported"),
            ("\"normalize_activations\": \"none\"", "\"normalize_activations\": \"expected_average_only_in\"", "fold"),
            ("\"d_sae\": 6", "\"d_sae\": 7", "d_sae = 7"),
            ("blocks.0.hook_resid_post", "blocks.0.hook_nothing", "blocks.0.hook_nothing"),
        ] {
            std::fs::write(&cfg_path, cfg.replace(from, to)).unwrap();
            let error = load(dir.path()).unwrap_err().to_string();
            assert!(error.contains(says), "{from} -> {to}: {error}");
        }
    }
}
