//! SentencePiece vocabularies of GGUF files (`tokenizer.ggml.model = "llama"`: Llama 2, CodeLlama, Mistral, Gemma,
//! Phi-3) as a `tokenizer.json`, built as transformers builds them from the same metadata: a BPE over the tokens
//! with byte fallback, its merges recovered from the token scores (the files store none), `▁` for spaces, and the
//! normalizer, pre-tokenizer and decoder transformers picks for the architecture.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::{ModelError, Result};
use crate::gguf::{GgufFile, MetaValue};

/// SentencePiece's spelling of a space.
const SPACE: &str = "\u{2581}";

/// How transformers lays out a SentencePiece vocabulary, by the file's `general.architecture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `LlamaTokenizer`: `▁` prefixed to the first word by the pre-tokenizer, one leading space stripped on decoding.
    Llama,
    /// Gemma: no prefix, spaces replaced by a normalizer; merges ordered by position in the file, not by score, and
    /// tokens of spaces alone respelled with `▁`.
    Gemma,
    /// Phi-3: `▁` prefixed to the whole text by a normalizer (a text starting with a space keeps both).
    Phi3,
}

impl Style {
    fn of(architecture: &str) -> Self {
        match architecture {
            "gemma" | "gemma2" | "gemma3" => Style::Gemma,
            "phi3" => Style::Phi3,
            _ => Style::Llama,
        }
    }
}

/// The `tokenizer.json` of the SentencePiece vocabulary in `file`; `added` are its added-token entries.
pub fn tokenizer_json(file: &GgufFile, tokens: &[String], added: Vec<Value>) -> Result<Value> {
    let style = Style::of(file.get("general.architecture").and_then(MetaValue::as_str).unwrap_or("llama"));
    let tokens: Vec<String> = match style {
        Style::Gemma => {
            tokens.iter().map(|t| if is_blank(t) { SPACE.repeat(t.chars().count()) } else { t.clone() }).collect()
        }
        Style::Llama | Style::Phi3 => tokens.to_vec(),
    };
    let scores: Vec<f64> = match style {
        Style::Gemma => (0..tokens.len()).map(|i| -(i as f64)).collect(),
        Style::Llama | Style::Phi3 => file
            .get("tokenizer.ggml.scores")
            .and_then(MetaValue::as_array)
            .ok_or_else(|| {
                ModelError::config("tokenizer.ggml.scores", "missing: a SentencePiece vocabulary needs its scores")
            })?
            .iter()
            .map(|v| v.as_f64().ok_or_else(|| ModelError::config("tokenizer.ggml.scores", "has a non-number element")))
            .collect::<Result<_>>()?,
    };
    if scores.len() != tokens.len() {
        return Err(ModelError::config(
            "tokenizer.ggml.scores",
            format!("has {} scores for {} tokens", scores.len(), tokens.len()),
        ));
    }
    let merges: Vec<Value> = merges_from_scores(&tokens, &scores).into_iter().map(|(a, b)| json!([a, b])).collect();
    let vocab: serde_json::Map<String, Value> =
        tokens.iter().enumerate().map(|(id, t)| (t.clone(), json!(id))).collect();
    let replace_space = json!({"type": "Replace", "pattern": {"String": " "}, "content": SPACE});
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": SPACE}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if style != Style::Gemma {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    let (normalizer, pre_tokenizer) = match style {
        Style::Llama => {
            (Value::Null, json!({"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "first", "split": false}))
        }
        Style::Gemma => (
            replace_space,
            json!({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}),
        ),
        Style::Phi3 => (
            json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SPACE}, replace_space]}),
            Value::Null,
        ),
    };
    let unk_token = match style {
        Style::Gemma => json!("<unk>"),
        Style::Llama | Style::Phi3 => Value::Null,
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk_token, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    }))
}

/// Whether a token is spaces alone (Gemma files spell such tokens with real spaces).
fn is_blank(token: &str) -> bool {
    !token.is_empty() && token.chars().all(|c| c == ' ')
}

/// The BPE merges a vocabulary with scores implies, as transformers' `generate_merges` recovers them: every split of
/// every token into two tokens of the vocabulary is a merge ranked by the whole token's score (highest first; ties
/// by the pieces' lengths in characters, longest first, then by the pieces' ids).
fn merges_from_scores(tokens: &[String], scores: &[f64]) -> Vec<(String, String)> {
    // A token listed twice has its last id and its last score, in the order it first appears (a Python dict).
    let ids: HashMap<&str, usize> = tokens.iter().enumerate().map(|(id, t)| (t.as_str(), id)).collect();
    let mut score_of: HashMap<&str, f64> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (token, &score) in tokens.iter().zip(scores) {
        if score_of.insert(token.as_str(), score).is_none() {
            order.push(token);
        }
    }
    let mut merges: Vec<(&str, &str, f64)> = Vec::new();
    for token in order {
        let mut local: Vec<(&str, &str, f64)> = token
            .char_indices()
            .skip(1)
            .map(|(at, _)| token.split_at(at))
            .filter(|(left, right)| ids.contains_key(left) && ids.contains_key(right))
            .map(|(left, right)| (left, right, score_of[token]))
            .collect();
        local.sort_by_key(|(left, right, _)| (ids[left], ids[right]));
        merges.extend(local);
    }
    let key = |m: &(&str, &str, f64)| (m.2, m.0.chars().count(), m.1.chars().count());
    // Python's sort with reverse=True is stable: equal keys keep their order, as here.
    merges.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0).then(kb.1.cmp(&ka.1)).then(kb.2.cmp(&ka.2))
    });
    merges.into_iter().map(|(a, b, _)| (a.to_string(), b.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn merges_follow_the_scores_of_the_tokens_they_make() {
        // Worked by hand: "ab" (score -1) outranks "abc" (-2), which splits as a+bc and ab+c; ab+c has the longer
        // left piece, so it comes first; "bc" (-3) last; "c" and the letters make no merge.
        let tokens = strings(&["a", "b", "c", "ab", "abc", "bc"]);
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -3.0];
        let merges = merges_from_scores(&tokens, &scores);
        let expected = [("a", "b"), ("ab", "c"), ("a", "bc"), ("b", "c")];
        assert_eq!(merges, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    }

    #[test]
    fn splits_fall_on_characters_not_bytes() {
        let tokens = strings(&["\u{2581}", "é", "\u{2581}é"]);
        let merges = merges_from_scores(&tokens, &[0.0, 0.0, -1.0]);
        assert_eq!(merges, vec![("\u{2581}".to_string(), "é".to_string())]);
        assert!(is_blank("   ") && !is_blank("") && !is_blank(" a"));
    }
}
