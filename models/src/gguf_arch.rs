//! The architectures llama.cpp keeps in GGUF files, and how each maps onto the Hugging Face form the runtime loads:
//! metadata keys to `config.json` fields, llama.cpp tensor names to Hugging Face ones, and the changes llama.cpp's
//! converter (`convert_hf_to_gguf.py`) makes to some tensors, undone on reading and made again on writing.

use serde_json::{json, Map, Value};
use tch::Tensor;

use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::gguf::{GgufFile, MetaValue};

/// How llama.cpp's converter stores some tensors differently from the Hugging Face checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// Every tensor as it is.
    AsIs,
    /// Query and key rows with each head's two rotary halves interleaved (`LlamaModel.permute`).
    RotaryPermuted,
    /// Norm weights plus one, so that llama.cpp's plain RMSNorm computes Gemma's `(1 + w)` scaling.
    NormsPlusOne,
    /// GPT-2's Conv1D weights transposed to `[out, in]`.
    Conv1dTransposed,
    /// GPT-NeoX's fused query/key/value rows regrouped from per-head `[head, q|k|v, dim]` to `[q|k|v, head, dim]`.
    QkvBlocks,
}

/// What a metadata value is, to read it into JSON and write it back with llama.cpp's type.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Count,
    Float,
    Flag,
}

/// One metadata key (after `{arch}.`) and the `config.json` field it holds.
struct Field {
    gguf: &'static str,
    hf: &'static str,
    kind: Kind,
    required: bool,
}

const fn required(gguf: &'static str, hf: &'static str) -> Field {
    Field { gguf, hf, kind: Kind::Count, required: true }
}

const fn count(gguf: &'static str, hf: &'static str) -> Field {
    Field { gguf, hf, kind: Kind::Count, required: false }
}

const fn float(gguf: &'static str, hf: &'static str) -> Field {
    Field { gguf, hf, kind: Kind::Float, required: false }
}

const LLAMA_FIELDS: &[Field] = &[
    required("context_length", "max_position_embeddings"),
    required("embedding_length", "hidden_size"),
    required("block_count", "num_hidden_layers"),
    required("feed_forward_length", "intermediate_size"),
    required("attention.head_count", "num_attention_heads"),
    count("attention.head_count_kv", "num_key_value_heads"),
    count("attention.key_length", "head_dim"),
    float("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
    count("attention.sliding_window", "sliding_window"),
];

const GEMMA2_FIELDS: &[Field] = &[
    float("attn_logit_softcapping", "attn_logit_softcapping"),
    float("final_logit_softcapping", "final_logit_softcapping"),
];

const GRANITE_FIELDS: &[Field] = &[
    float("attention.scale", "attention_multiplier"),
    float("embedding_scale", "embedding_multiplier"),
    float("residual_scale", "residual_multiplier"),
    float("logit_scale", "logits_scaling"),
];

const STARCODER2_FIELDS: &[Field] = &[float("attention.layer_norm_epsilon", "norm_epsilon")];

const GPT2_FIELDS: &[Field] = &[
    required("context_length", "n_positions"),
    required("embedding_length", "n_embd"),
    required("block_count", "n_layer"),
    required("feed_forward_length", "n_inner"),
    required("attention.head_count", "n_head"),
    float("attention.layer_norm_epsilon", "layer_norm_epsilon"),
];

const NEOX_FIELDS: &[Field] = &[
    required("context_length", "max_position_embeddings"),
    required("embedding_length", "hidden_size"),
    required("block_count", "num_hidden_layers"),
    required("feed_forward_length", "intermediate_size"),
    required("attention.head_count", "num_attention_heads"),
    float("attention.layer_norm_epsilon", "layer_norm_eps"),
    Field { gguf: "use_parallel_residual", hf: "use_parallel_residual", kind: Kind::Flag, required: false },
];

/// One architecture as llama.cpp names and stores it.
pub struct GgufArch {
    /// `general.architecture` in the file.
    pub gguf: &'static str,
    /// The Hugging Face `model_type` it loads as.
    pub model_type: &'static str,
    fields: &'static [&'static [Field]],
    stored: Stored,
    /// llama.cpp's GPT-2 requires `output.weight`, which the converter copies from the embedding when tied.
    pub writes_tied_output: bool,
    /// Gemma 2 keeps a norm after attention (`post_attention_norm`) where other models keep the MLP's (`ffn_norm`).
    sandwich_norms: bool,
}

const fn arch(
    gguf: &'static str,
    model_type: &'static str,
    fields: &'static [&'static [Field]],
    stored: Stored,
) -> GgufArch {
    GgufArch { gguf, model_type, fields, stored, sandwich_norms: false, writes_tied_output: false }
}

/// Every architecture this runtime reads from and writes to GGUF.
const ARCHITECTURES: &[GgufArch] = &[
    arch("llama", "llama", &[LLAMA_FIELDS], Stored::RotaryPermuted),
    arch("qwen2", "qwen2", &[LLAMA_FIELDS], Stored::AsIs),
    arch("qwen3", "qwen3", &[LLAMA_FIELDS], Stored::AsIs),
    arch("phi3", "phi3", &[LLAMA_FIELDS], Stored::AsIs),
    arch("granite", "granite", &[LLAMA_FIELDS, GRANITE_FIELDS], Stored::RotaryPermuted),
    arch("gemma", "gemma", &[LLAMA_FIELDS], Stored::NormsPlusOne),
    GgufArch { sandwich_norms: true, ..arch("gemma2", "gemma2", &[LLAMA_FIELDS, GEMMA2_FIELDS], Stored::NormsPlusOne) },
    arch("starcoder2", "starcoder2", &[LLAMA_FIELDS, STARCODER2_FIELDS], Stored::AsIs),
    GgufArch { writes_tied_output: true, ..arch("gpt2", "gpt2", &[GPT2_FIELDS], Stored::Conv1dTransposed) },
    arch("starcoder", "gpt_bigcode", &[GPT2_FIELDS], Stored::AsIs),
    arch("gptneox", "gpt_neox", &[NEOX_FIELDS], Stored::QkvBlocks),
];

/// Top-level Hugging Face modules and their llama.cpp names.
const TOP_LEVEL: &[(&str, &str)] = &[
    ("model.embed_tokens", "token_embd"),
    ("transformer.wte", "token_embd"),
    ("gpt_neox.embed_in", "token_embd"),
    ("transformer.wpe", "position_embd"),
    ("model.norm", "output_norm"),
    ("transformer.ln_f", "output_norm"),
    ("gpt_neox.final_layer_norm", "output_norm"),
    ("lm_head", "output"),
    ("embed_out", "output"),
];

/// Where the Hugging Face families keep their blocks.
const BLOCK_PREFIXES: &[&str] = &["model.layers.", "transformer.h.", "gpt_neox.layers."];

/// Modules inside a block and their llama.cpp names (Gemma 2's `post_attention_layernorm` aside).
const IN_BLOCK: &[(&str, &str)] = &[
    ("input_layernorm", "attn_norm"),
    ("ln_1", "attn_norm"),
    ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("self_attn.qkv_proj", "attn_qkv"),
    ("attn.c_attn", "attn_qkv"),
    ("attention.query_key_value", "attn_qkv"),
    ("self_attn.o_proj", "attn_output"),
    ("attn.c_proj", "attn_output"),
    ("attention.dense", "attn_output"),
    ("self_attn.q_norm", "attn_q_norm"),
    ("self_attn.k_norm", "attn_k_norm"),
    ("post_attention_layernorm", "ffn_norm"),
    ("ln_2", "ffn_norm"),
    ("pre_feedforward_layernorm", "ffn_norm"),
    ("post_feedforward_layernorm", "post_ffw_norm"),
    ("mlp.gate_proj", "ffn_gate"),
    ("mlp.up_proj", "ffn_up"),
    ("mlp.gate_up_proj", "ffn_up"),
    ("mlp.c_fc", "ffn_up"),
    ("mlp.dense_h_to_4h", "ffn_up"),
    ("mlp.down_proj", "ffn_down"),
    ("mlp.c_proj", "ffn_down"),
    ("mlp.dense_4h_to_h", "ffn_down"),
];

/// Query and key head counts, needed to undo or redo the rotary permutation and the NeoX regrouping.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    /// Query heads.
    pub query: i64,
    /// Key/value heads.
    pub key_value: i64,
}

impl GgufArch {
    /// The architecture a GGUF file names.
    pub fn of_file(file: &GgufFile) -> Result<&'static GgufArch> {
        let name = file.require_str("general.architecture")?;
        ARCHITECTURES.iter().find(|a| a.gguf == name).ok_or_else(|| {
            let known: Vec<&str> = ARCHITECTURES.iter().map(|a| a.gguf).collect();
            ModelError::UnknownArchitecture(format!("{name} (GGUF architectures read here: {})", known.join(", ")))
        })
    }

    /// The architecture a Hugging Face `config.json` is written as, or why llama.cpp has no layout for it.
    pub fn for_export(config: &HfConfig) -> Result<&'static GgufArch> {
        let model_type = config.model_type()?;
        let refuse = |why: String| ModelError::InvalidInput(format!("cannot write {model_type} as GGUF: {why}"));
        // llama.cpp's converter writes Mistral as Llama, which has no sliding window.
        let wanted = match model_type {
            "mistral" if config.usize_if_set("sliding_window")?.is_some() => {
                return Err(refuse("llama.cpp stores Mistral as Llama, without its sliding window".into()))
            }
            "mistral" => "llama",
            other => other,
        };
        if model_type == "gemma2" {
            let head_dim = config.usize("head_dim")? as f64;
            if config.f64_or("query_pre_attn_scalar", 256.0)? != head_dim {
                return Err(refuse(format!(
                    "llama.cpp scales Gemma 2's attention by 1/sqrt(head_dim = {head_dim}), and query_pre_attn_scalar \
                     differs"
                )));
            }
        }
        ARCHITECTURES
            .iter()
            .find(|a| a.model_type == wanted)
            .ok_or_else(|| refuse("llama.cpp defines no layout for it; export a Hugging Face folder instead".into()))
    }

    fn fields(&self) -> impl Iterator<Item = &'static Field> {
        self.fields.iter().flat_map(|group| group.iter())
    }

    /// The `config.json` of the model a GGUF file holds, built from its metadata and which tensors it has.
    pub fn hf_config(&self, file: &GgufFile) -> Result<Value> {
        let key = |k: &str| format!("{}.{k}", self.gguf);
        let mut config = Map::new();
        config.insert("model_type".into(), json!(self.model_type));
        for field in self.fields() {
            let value = file.get(&key(field.gguf));
            let json = match (field.kind, value) {
                (_, None) if field.required => {
                    return Err(ModelError::config(key(field.gguf), "missing from the GGUF metadata"))
                }
                (_, None) => continue,
                (Kind::Count, Some(v)) => v.as_u64().map(|n| json!(n)),
                (Kind::Float, Some(v)) => v.as_f64().map(|x| json!(x as f32 as f64)),
                (Kind::Flag, Some(v)) => v.as_bool().map(|b| json!(b)),
            };
            let json = json.ok_or_else(|| ModelError::config(key(field.gguf), "has the wrong type"))?;
            config.insert(field.hf.into(), json);
        }
        let vocab_size = match file.get(&key("vocab_size")).and_then(MetaValue::as_u64) {
            Some(v) => v as usize,
            None => file
                .get("tokenizer.ggml.tokens")
                .and_then(MetaValue::as_array)
                .map(<[MetaValue]>::len)
                .ok_or_else(|| ModelError::config(key("vocab_size"), "missing, and no tokenizer.ggml.tokens"))?,
        };
        config.insert("vocab_size".into(), json!(vocab_size));
        config.insert("tie_word_embeddings".into(), json!(file.tensor("output.weight").is_none()));
        if let Some(theta) = file.get(&key("rope.freq_base")).and_then(MetaValue::as_f64) {
            config.insert("rope_theta".into(), json!(theta as f32 as f64));
        }
        let has_qkv_bias = file.tensor("blk.0.attn_q.bias").is_some() || file.tensor("blk.0.attn_qkv.bias").is_some();
        let heads = file.require_u64(&key("attention.head_count"))?;
        let width = file.require_u64(&key("embedding_length"))?;
        let head_dim =
            file.get(&key("attention.key_length")).and_then(MetaValue::as_u64).unwrap_or(width / heads.max(1));
        let rotary_dims = file.get(&key("rope.dimension_count")).and_then(MetaValue::as_u64);
        match self.model_type {
            "llama" => {
                config.insert("attention_bias".into(), json!(has_qkv_bias));
            }
            "starcoder2" => {
                config.insert("use_bias".into(), json!(has_qkv_bias));
            }
            // llama.cpp runs Gemma's MLP with the tanh approximation of GELU.
            "gemma" => {
                config.insert("hidden_act".into(), json!("gelu_pytorch_tanh"));
            }
            // llama.cpp scales Gemma 2's scores by 1/sqrt(head width) (27B aside): query_pre_attn_scalar is not kept.
            "gemma2" => {
                config.insert("query_pre_attn_scalar".into(), json!(head_dim));
            }
            "phi3" => {
                let factor = rotary_dims.map_or(1.0, |r| r as f64 / head_dim as f64);
                config.insert("partial_rotary_factor".into(), json!(factor));
            }
            "gpt_bigcode" => {
                let kv = file.get(&key("attention.head_count_kv")).and_then(MetaValue::as_u64).unwrap_or(1);
                config.insert("multi_query".into(), json!(kv == 1));
            }
            "gpt_neox" => {
                let factor = rotary_dims.map_or(1.0, |r| r as f64 / (width / heads.max(1)) as f64);
                config.insert("rotary_pct".into(), json!(factor));
            }
            _ => {}
        }
        Ok(Value::Object(config))
    }

    /// The `{arch}.*` metadata of a model with `config` (its `config.json`) and `shape`.
    pub fn metadata(&self, config: &HfConfig, shape: &crate::ModelShape) -> Result<Vec<(String, MetaValue)>> {
        let key = |k: &str| format!("{}.{k}", self.gguf);
        let count = |n: usize| MetaValue::U32(n as u32);
        let mut out = vec![
            (key("context_length"), count(shape.context_length)),
            (key("embedding_length"), count(shape.d_model)),
            (key("block_count"), count(shape.n_layers)),
            (key("feed_forward_length"), count(shape.d_mlp)),
            (key("attention.head_count"), count(shape.n_heads)),
            (key("attention.head_count_kv"), count(shape.n_kv_heads)),
            (key("vocab_size"), count(shape.vocab_size)),
        ];
        let rotary_dims = match self.model_type {
            "gpt2" | "gpt_bigcode" => None,
            "gpt_neox" => Some((config.f64_or("rotary_pct", 0.25)? * shape.head_dim as f64).round() as usize),
            _ => Some(shape.head_dim),
        };
        if let Some(dims) = rotary_dims {
            out.push((key("rope.dimension_count"), count(dims)));
            out.push((key("rope.freq_base"), MetaValue::F32(config.rope_theta(10_000.0)? as f32)));
            out.push((key("attention.key_length"), count(shape.head_dim)));
            out.push((key("attention.value_length"), count(shape.head_dim)));
        }
        for field in self.fields() {
            let meta = match (field.kind, config.get(field.hf)) {
                (_, Value::Null) => continue,
                (Kind::Count, v) => v.as_u64().map(|n| MetaValue::U32(n as u32)),
                (Kind::Float, v) => v.as_f64().map(|x| MetaValue::F32(x as f32)),
                (Kind::Flag, v) => v.as_bool().map(MetaValue::Bool),
            };
            let meta = meta.ok_or_else(|| ModelError::config(field.hf, "has the wrong type"))?;
            // Counts the shape gives are written from it (GPT-2's `n_inner` may be null, meaning 4 x width).
            if !out.iter().any(|(k, _)| *k == key(field.gguf)) {
                out.push((key(field.gguf), meta));
            }
        }
        Ok(out)
    }

    /// The llama.cpp name of a Hugging Face tensor name, if the architecture has one.
    pub fn tensor_name(&self, hf_name: &str) -> Option<String> {
        let (module, suffix) = hf_name.rsplit_once('.')?;
        if let Some((_, short)) = TOP_LEVEL.iter().find(|(m, _)| *m == module) {
            return Some(format!("{short}.{suffix}"));
        }
        let rest = BLOCK_PREFIXES.iter().find_map(|p| module.strip_prefix(p))?;
        let (layer, inner) = rest.split_once('.')?;
        let short = match inner {
            "post_attention_layernorm" if self.sandwich_norms => "post_attention_norm",
            _ => IN_BLOCK.iter().find(|(m, _)| *m == inner)?.1,
        };
        Some(format!("blk.{layer}.{short}.{suffix}"))
    }

    /// A tensor as the Hugging Face checkpoint holds it, from the form it has in the GGUF file under `gguf_name`;
    /// an error when its rows do not split into the heads the metadata gives.
    pub fn to_hf(&self, gguf_name: &str, t: Tensor, heads: Heads) -> Result<Tensor> {
        self.convert(gguf_name, t, heads, Direction::ToHf)
    }

    /// A Hugging Face tensor in the form llama.cpp stores it under `gguf_name`.
    pub fn to_gguf(&self, gguf_name: &str, t: Tensor, heads: Heads) -> Result<Tensor> {
        self.convert(gguf_name, t, heads, Direction::ToGguf)
    }

    fn convert(&self, gguf_name: &str, t: Tensor, heads: Heads, direction: Direction) -> Result<Tensor> {
        let mut parts = gguf_name.rsplit('.');
        let (suffix, short) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let is_weight = suffix == "weight";
        let split = |groups: i64| {
            let Some(&rows) = t.size().first() else {
                return Err(ModelError::config(gguf_name, "a tensor without dimensions where rows of heads belong"));
            };
            if groups <= 0 || rows % groups != 0 {
                let why = format!("{rows} rows do not split into {groups} groups for the heads the metadata gives");
                return Err(ModelError::config(gguf_name, why));
            }
            Ok(rows / groups)
        };
        Ok(match self.stored {
            Stored::AsIs => t,
            Stored::RotaryPermuted => match short {
                "attn_q" => rotary_rows(&t, heads.query, split(2 * heads.query)?, direction)?,
                "attn_k" => rotary_rows(&t, heads.key_value, split(2 * heads.key_value)?, direction)?,
                _ => t,
            },
            Stored::NormsPlusOne if is_weight && short.ends_with("norm") => match direction {
                Direction::ToHf => t - 1.0,
                Direction::ToGguf => t + 1.0,
            },
            Stored::Conv1dTransposed
                if is_weight && matches!(short, "attn_qkv" | "attn_output" | "ffn_up" | "ffn_down") =>
            {
                t.tr().contiguous()
            }
            Stored::QkvBlocks if short == "attn_qkv" => {
                let size = t.size();
                let head_dim = split(3 * heads.query)?;
                let mut grouped = match direction {
                    Direction::ToHf => vec![3, heads.query, head_dim],
                    Direction::ToGguf => vec![heads.query, 3, head_dim],
                };
                grouped.extend_from_slice(&size[1..]);
                t.f_reshape(grouped.as_slice())?.transpose(0, 1).f_reshape(size.as_slice())?
            }
            Stored::NormsPlusOne | Stored::Conv1dTransposed | Stored::QkvBlocks => t,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    ToHf,
    ToGguf,
}

/// llama.cpp's `permute(w, n_head)` (to GGUF), which interleaves the two rotary halves of each head's rows, or
/// its inverse (to Hugging Face); `half` is half a head's rows.
fn rotary_rows(w: &Tensor, n_head: i64, half: i64, direction: Direction) -> Result<Tensor> {
    let shape = w.size();
    let (a, b) = match direction {
        Direction::ToGguf => (2, half),
        Direction::ToHf => (half, 2),
    };
    let mut grouped = vec![n_head, a, b];
    grouped.extend_from_slice(&shape[1..]);
    Ok(w.f_reshape(grouped.as_slice())?.transpose(1, 2).f_reshape(shape.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> &'static GgufArch {
        ARCHITECTURES.iter().find(|a| a.gguf == name).unwrap()
    }

    #[test]
    fn names_follow_llama_cpp() {
        let llama = named("llama");
        assert_eq!(llama.tensor_name("model.layers.3.self_attn.q_proj.weight").unwrap(), "blk.3.attn_q.weight");
        assert_eq!(llama.tensor_name("model.layers.0.mlp.down_proj.weight").unwrap(), "blk.0.ffn_down.weight");
        assert_eq!(llama.tensor_name("model.embed_tokens.weight").unwrap(), "token_embd.weight");
        assert_eq!(
            llama.tensor_name("model.layers.0.post_attention_layernorm.weight").unwrap(),
            "blk.0.ffn_norm.weight"
        );
        assert!(llama.tensor_name("model.layers.0.something.weight").is_none());
        let gemma2 = named("gemma2");
        assert_eq!(
            gemma2.tensor_name("model.layers.2.post_attention_layernorm.weight").unwrap(),
            "blk.2.post_attention_norm.weight"
        );
        assert_eq!(
            gemma2.tensor_name("model.layers.2.pre_feedforward_layernorm.weight").unwrap(),
            "blk.2.ffn_norm.weight"
        );
        let gpt2 = named("gpt2");
        assert_eq!(gpt2.tensor_name("transformer.h.1.attn.c_proj.bias").unwrap(), "blk.1.attn_output.bias");
        assert_eq!(gpt2.tensor_name("transformer.h.1.mlp.c_proj.weight").unwrap(), "blk.1.ffn_down.weight");
        assert_eq!(gpt2.tensor_name("transformer.wpe.weight").unwrap(), "position_embd.weight");
    }

    #[test]
    fn the_rotary_permutation_is_llama_cpps_and_reverts() {
        // llama.cpp: w.reshape(n, 2, r/n/2, c).swapaxes(1, 2).reshape(r, c)
        let (n, r, c) = (2i64, 8i64, 3i64);
        let original = Tensor::arange(r * c, (tch::Kind::Float, tch::Device::Cpu)).view([r, c]);
        let permuted = original.reshape([n, 2, r / n / 2, c]).transpose(1, 2).reshape([r, c]);
        assert!(rotary_rows(&original, n, r / n / 2, Direction::ToGguf).unwrap().equal(&permuted));
        assert!(rotary_rows(&permuted, n, r / n / 2, Direction::ToHf).unwrap().equal(&original));
    }

    #[test]
    fn every_stored_change_reverts() {
        let heads = Heads { query: 2, key_value: 1 };
        let t = Tensor::arange(24 * 4, (tch::Kind::Float, tch::Device::Cpu)).view([24, 4]);
        for (name, tensor) in [
            ("llama", "blk.0.attn_q.weight"),
            ("llama", "blk.0.attn_k.weight"),
            ("gemma", "blk.0.attn_norm.weight"),
            ("gpt2", "blk.0.attn_qkv.weight"),
            ("gptneox", "blk.0.attn_qkv.weight"),
        ] {
            let stored = named(name).to_gguf(tensor, t.shallow_clone(), heads).unwrap();
            assert!(!stored.equal(&t), "{name} {tensor}: nothing changed");
            assert!(named(name).to_hf(tensor, stored, heads).unwrap().equal(&t), "{name} {tensor}");
        }
    }

    #[test]
    fn neox_rows_regroup_from_per_head_to_blocks() {
        // Two heads of width 1: per head (q0 k0 v0 q1 k1 v1) -> blocks (q0 q1 k0 k1 v0 v1).
        let per_head = Tensor::from_slice(&[0f32, 1., 2., 3., 4., 5.]);
        let blocks =
            named("gptneox").to_gguf("blk.0.attn_qkv.bias", per_head, Heads { query: 2, key_value: 2 }).unwrap();
        assert_eq!(Vec::<f32>::try_from(blocks).unwrap(), [0., 3., 1., 4., 2., 5.]);
    }

    #[test]
    fn exports_llama_cpp_cannot_read_are_refused() {
        let refused = |config: Value| GgufArch::for_export(&HfConfig::new(config)).err().unwrap().to_string();
        assert!(refused(json!({"model_type": "codegen"})).contains("no layout"));
        assert!(refused(json!({"model_type": "mistral", "sliding_window": 4096})).contains("sliding window"));
        let gemma2 = json!({"model_type": "gemma2", "head_dim": 16, "query_pre_attn_scalar": 32});
        assert!(refused(gemma2).contains("query_pre_attn_scalar"));
        let mistral = json!({"model_type": "mistral", "sliding_window": null});
        assert_eq!(GgufArch::for_export(&HfConfig::new(mistral)).unwrap().gguf, "llama");
    }
}
