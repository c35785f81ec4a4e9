//! Tokenizers: byte-level BPE or SentencePiece (`sentencepiece`) rebuilt from GGUF metadata, or read from a Hugging
//! Face `tokenizer.json`, all run by the `tokenizers` crate; plus special tokens and the model's chat template.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ModelError, Result};
use crate::gguf::{GgufFile, MetaValue};
use crate::sentencepiece;

/// GGUF token type of control tokens (`<|im_start|>` ...), which are matched whole and never split.
const TOKEN_TYPE_CONTROL: u64 = 3;
/// GGUF token type of user-defined added tokens.
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A token's `[start, end)` byte range in the text it came from.
pub type ByteSpan = (usize, usize);

/// One message of a chat, as chat templates expect it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage { role: "user".into(), content: content.into() }
    }
}

/// A model's tokenizer with its special tokens and chat template.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Beginning-of-sequence token, if the model has one.
    pub bos_id: Option<u32>,
    /// End-of-sequence token: generation stops on it.
    pub eos_id: Option<u32>,
    /// Padding token used for batches (falls back to EOS).
    pub pad_id: Option<u32>,
    /// Whether `encode` with specials prepends BOS.
    pub add_bos: bool,
    /// The Jinja chat template the model file ships, if any.
    pub chat_template: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.vocab_size())
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

impl Tokenizer {
    /// Rebuilds the tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let model = file.require_str("tokenizer.ggml.model")?;
        let tokens = string_array(file, "tokenizer.ggml.tokens")?;
        let token_types: Vec<u64> = match file.get("tokenizer.ggml.token_type").and_then(MetaValue::as_array) {
            Some(items) => items.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
            None => vec![1; tokens.len()],
        };
        let added = added_tokens_json(&tokens, &token_types);
        let json = match model {
            "gpt2" => {
                let pre = file.get("tokenizer.ggml.pre").and_then(MetaValue::as_str).unwrap_or("default");
                let merges = string_array(file, "tokenizer.ggml.merges")?;
                byte_level_bpe_json(&tokens, &merges, added, pre_tokenizer_json(pre)?)?
            }
            "llama" => sentencepiece::tokenizer_json(file, &tokens, added)?,
            other => {
                return Err(ModelError::Tokenizer(format!(
                    "GGUF tokenizer model {other:?} is not supported (byte-level BPE, \"gpt2\", and SentencePiece, \"llama\", are)"
                )))
            }
        };
        let inner = parse_tokenizer_json(json.to_string().as_bytes(), "building the tokenizer from GGUF metadata")?;
        let id = |key: &str| file.get(key).and_then(MetaValue::as_u64).map(|v| v as u32);
        Ok(Tokenizer {
            inner,
            bos_id: id("tokenizer.ggml.bos_token_id"),
            eos_id: id("tokenizer.ggml.eos_token_id"),
            pad_id: id("tokenizer.ggml.padding_token_id"),
            // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise.
            add_bos: file.get("tokenizer.ggml.add_bos_token").and_then(MetaValue::as_bool).unwrap_or(model == "llama"),
            chat_template: file.get("tokenizer.chat_template").and_then(MetaValue::as_str).map(str::to_string),
        })
    }

    /// Reads `tokenizer.json` in `dir`, with special tokens from `tokenizer_config.json` (if present) and
    /// `config.json`, and the chat template from `chat_template.jinja` or `tokenizer_config.json`.
    pub fn from_hf_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let json = std::fs::read(&path).map_err(|e| ModelError::io(&path, e))?;
        let read_json = |name: &str| -> Value {
            std::fs::read_to_string(dir.join(name))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null)
        };
        let chat_template = std::fs::read_to_string(dir.join("chat_template.jinja")).ok();
        Self::from_hf_json(&json, &path, &read_json("tokenizer_config.json"), &read_json("config.json"), chat_template)
    }

    /// [`Tokenizer::from_hf_dir`] over contents at hand: `tokenizer.json`'s bytes (`path` names them in errors),
    /// the parsed `tokenizer_config.json` and `config.json` (`Value::Null` when absent) and `chat_template.jinja`.
    pub fn from_hf_json(
        json: &[u8],
        path: &Path,
        tok_config: &Value,
        model_config: &Value,
        chat_template: Option<String>,
    ) -> Result<Self> {
        let mut inner = parse_tokenizer_json(json, &format!("reading {}", path.display()))?;
        // The workbench pads and truncates batches itself: a file's own padding (a fixed length of 2^40 tokens, say)
        // or truncation must not decide what an encoding allocates or drops.
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| ModelError::Tokenizer(format!("{}: turning truncation off: {e}", path.display())))?;
        let token_id = |field: &str| -> Option<u32> {
            let by_name = match &tok_config[field] {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
                _ => None,
            };
            by_name
                .and_then(|name| inner.token_to_id(&name))
                .or_else(|| model_config[format!("{field}_id")].as_u64().map(|v| v as u32))
        };
        let (bos_id, eos_id, pad_id) = (token_id("bos_token"), token_id("eos_token"), token_id("pad_token"));
        Ok(Tokenizer {
            bos_id,
            eos_id,
            pad_id,
            add_bos: tok_config["add_bos_token"].as_bool().unwrap_or(false),
            chat_template: chat_template.or_else(|| tok_config["chat_template"].as_str().map(str::to_string)),
            inner,
        })
    }

    /// The `tokenizers` tokenizer underneath, e.g. to save it as `tokenizer.json`.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The id that pads batches: the padding token, else EOS, else 0.
    pub fn padding_id(&self) -> u32 {
        self.pad_id.or(self.eos_id).unwrap_or(0)
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text`. With `add_special`, BOS is prepended when the model asks for it. Special-token
    /// strings in the text (`<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if add_special && self.add_bos {
            ids.extend(self.bos_id);
        }
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// Token ids of `text` (no special tokens added) with each token's byte span in `text`.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<ByteSpan>)> {
        let encoding = self.inner.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
    }

    /// The text of `ids`; special tokens are dropped when `skip_special` is set.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner.decode(ids, skip_special).map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// A token's text as it reads, for displays (`" return"`, `"\n"`).
    pub fn token_text(&self, id: u32) -> String {
        self.inner.decode(&[id], false).unwrap_or_else(|_| format!("<{id}>"))
    }

    /// Renders `messages` with the model's chat template, as `transformers`' `apply_chat_template` does.
    pub fn apply_chat_template(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| ModelError::ChatTemplate("the model file has no chat template".into()))?;
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template("chat", template).map_err(|e| ModelError::ChatTemplate(e.to_string()))?;
        let token = |id: Option<u32>| id.map(|i| self.token_text(i)).unwrap_or_default();
        let context = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => token(self.bos_id),
            eos_token => token(self.eos_id),
        };
        env.get_template("chat").and_then(|t| t.render(context)).map_err(|e| ModelError::ChatTemplate(e.to_string()))
    }
}

fn string_array(file: &GgufFile, key: &str) -> Result<Vec<String>> {
    let items = file
        .get(key)
        .and_then(MetaValue::as_array)
        .ok_or_else(|| ModelError::config(key, "missing from the GGUF metadata or not an array"))?;
    items
        .iter()
        .map(|v| v.as_str().map(str::to_string).ok_or_else(|| ModelError::config(key, "has a non-string element")))
        .collect()
}

/// The pre-tokenizer of a GGUF `tokenizer.ggml.pre` name, as llama.cpp defines it, in tokenizer.json form.
fn pre_tokenizer_json(pre: &str) -> Result<Value> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    Ok(match pre {
        "gpt2" | "default" => byte_level(true),
        // Digits one by one, then GPT-2's split (SmolLM's and StarCoder's tokenizer.json).
        "smollm" | "starcoder" | "refact" => json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "llama3" | "llama-v3" | "llama-bpe" | "smaug-bpe" => json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]}),
        "qwen2" | "deepseek-r1-qwen" => json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]}),
        other => return Err(ModelError::Tokenizer(format!("GGUF pre-tokenizer {other:?} is not supported (gpt2, default, smollm, starcoder, refact, llama3, llama-bpe, qwen2 are)"))),
    })
}

/// The `added_tokens` entries of a GGUF vocabulary: control tokens as special tokens, user-defined ones as plain
/// added tokens, both matched whole in the text.
fn added_tokens_json(tokens: &[String], token_types: &[u64]) -> Vec<Value> {
    tokens
        .iter()
        .zip(token_types)
        .enumerate()
        .filter(|(_, (_, &kind))| kind == TOKEN_TYPE_CONTROL || kind == TOKEN_TYPE_USER_DEFINED)
        .map(|(id, (content, &kind))| json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": kind == TOKEN_TYPE_CONTROL}))
        .collect()
}

/// A `tokenizer.json` parsed by the `tokenizers` crate (its panics contained), errors naming `context`, with a BPE
/// model built again without a word cache. tokenizers 0.23 keeps that cache in a thread-local map keyed by model
/// instance that nothing empties when the instance is dropped: every tokenizer built and used left its words behind
/// (4.5 KB per tokenizer in the fuzzer), and even with the capacity at zero an empty entry per instance, whose map,
/// grown past 4 million inputs, reallocated 76 MB inside one input. Only a model built without a cache never touches
/// the map, and the deserialiser always gives it one; so the model is built again by the builder the deserialiser
/// uses, from the same vocabulary and merges of the file and the settings it read.
fn parse_tokenizer_json(json: &[u8], context: &str) -> Result<tokenizers::Tokenizer> {
    let failed = |e: &dyn std::fmt::Display| ModelError::Tokenizer(format!("{context}: {e}"));
    let mut inner =
        crate::panics::contain(context, || tokenizers::Tokenizer::from_bytes(json))?.map_err(|e| failed(&e))?;
    let tokenizers::models::ModelWrapper::BPE(bpe) = inner.get_model() else { return Ok(inner) };
    let model: Value = serde_json::from_slice::<Value>(json).map_err(|e| failed(&e))?["model"].take();
    let vocab: tokenizers::models::bpe::Vocab =
        serde_json::from_value(model["vocab"].clone()).map_err(|e| failed(&e))?;
    let merges = bpe_merges(&model["merges"]).map_err(|e| failed(&e))?;
    let mut builder = tokenizers::models::bpe::BPE::builder()
        .vocab_and_merges(vocab, merges)
        .cache_capacity(0)
        .fuse_unk(bpe.fuse_unk)
        .byte_fallback(bpe.byte_fallback)
        .ignore_merges(bpe.ignore_merges);
    if let Some(dropout) = bpe.dropout {
        builder = builder.dropout(dropout);
    }
    if let Some(unk) = &bpe.unk_token {
        builder = builder.unk_token(unk.clone());
    }
    if let Some(prefix) = &bpe.continuing_subword_prefix {
        builder = builder.continuing_subword_prefix(prefix.clone());
    }
    if let Some(suffix) = &bpe.end_of_word_suffix {
        builder = builder.end_of_word_suffix(suffix.clone());
    }
    let rebuilt = crate::panics::contain(context, || builder.build())?.map_err(|e| failed(&e))?;
    inner.with_model(rebuilt);
    Ok(inner)
}

/// A BPE model's merges as `tokenizer.json` writes them, in either of the `tokenizers` crate's forms: pairs, or
/// (older files) strings `"a b"`, `#version` lines skipped.
fn bpe_merges(merges: &Value) -> std::result::Result<Vec<(String, String)>, String> {
    let Some(items) = merges.as_array() else { return Err("the BPE model has no list of merges".into()) };
    if items.iter().all(Value::is_array) {
        return serde_json::from_value(merges.clone()).map_err(|e| e.to_string());
    }
    let lines = items.iter().map(|item| item.as_str().ok_or("a merge that is neither a pair nor a string"));
    let mut pairs = Vec::with_capacity(items.len());
    for (rank, line) in lines.filter(|l| !l.is_ok_and(|l| l.starts_with("#version"))).enumerate() {
        match line?.split(' ').collect::<Vec<_>>().as_slice() {
            [a, b] => pairs.push((a.to_string(), b.to_string())),
            _ => return Err(format!("merge {} is not two tokens separated by one space", rank + 1)),
        }
    }
    Ok(pairs)
}

/// A complete `tokenizer.json` for byte-level BPE over `tokens` and `merges`.
fn byte_level_bpe_json(tokens: &[String], merges: &[String], added: Vec<Value>, pre_tokenizer: Value) -> Result<Value> {
    let vocab: serde_json::Map<String, Value> =
        tokens.iter().enumerate().map(|(id, t)| (t.clone(), json!(id))).collect();
    // Checked here because the tokenizers crate panics on a merge whose result is not in the vocabulary.
    let merges: Vec<Value> = merges
        .iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').ok_or_else(|| ModelError::Tokenizer(format!("merge {m:?} has no space")))?;
            for part in [a, b, &format!("{a}{b}")] {
                if !vocab.contains_key(part) {
                    return Err(ModelError::Tokenizer(format!(
                        "merge {m:?} uses {part:?}, which is not in the vocabulary"
                    )));
                }
            }
            Ok(json!([a, b]))
        })
        .collect::<Result<_>>()?;
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
    }))
}
