//! Structure-aware targets: `arbitrary` turns the fuzzer's bytes into a GGUF file or a safetensors file described
//! field by field, always well framed (magic, version, counts and lengths that match what follows), with values,
//! shapes, types and offsets arbitrary and keys and tensor names mostly the ones the loaders look up. Byte-level
//! mutation rarely keeps a GGUF header's framing intact long enough to reach the model and tokenizer built from
//! its metadata; these get there on most inputs.

use arbitrary::{Arbitrary, Unstructured};

use crate::model_files;

/// Architectures as GGUF names them, for `general.architecture` and the prefix of their keys.
const ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "starcoder2", "gpt2", "gptneox"];

/// Keys under the architecture's prefix that the loaders read.
const ARCH_KEYS: &[&str] = &[
    "block_count",
    "context_length",
    "embedding_length",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.layer_norm_rms_epsilon",
    "attention.layer_norm_epsilon",
    "attention.sliding_window",
    "rope.freq_base",
    "rope.dimension_count",
];

/// Keys outside the architecture's prefix that the loaders read.
const KEYS: &[&str] = &[
    "general.architecture",
    "general.alignment",
    "general.name",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.chat_template",
];

/// Strings the loaders compare against: architecture and tokenizer names, tokens, merges.
const WORDS: &[&str] = &[
    "llama", "gpt2", "qwen2", "gptneox", "default", "smollm", "<s>", "</s>", "<unk>", "a", "b", "a b", "ab", "Ġ", "▁",
];

/// Tensor names as llama.cpp writes them, for block 0 and outside the blocks.
const TENSORS: &[&str] = &[
    "token_embd.weight",
    "output_norm.weight",
    "output_norm.bias",
    "output.weight",
    "position_embd.weight",
    "blk.0.attn_norm.weight",
    "blk.0.attn_norm.bias",
    "blk.0.attn_q.weight",
    "blk.0.attn_k.weight",
    "blk.0.attn_v.weight",
    "blk.0.attn_qkv.weight",
    "blk.0.attn_qkv.bias",
    "blk.0.attn_output.weight",
    "blk.0.ffn_norm.weight",
    "blk.0.ffn_gate.weight",
    "blk.0.ffn_up.weight",
    "blk.0.ffn_down.weight",
];

/// One of a list of known names, or any string.
#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

impl Name {
    fn pick(&self, known: &[&str]) -> String {
        match self {
            Name::Known(i) => known[*i as usize % known.len()].to_string(),
            Name::Other(s) => s.clone(),
        }
    }
}

/// A metadata key: under the architecture's prefix, a known key, or any string.
#[derive(Arbitrary, Debug)]
enum Key {
    Arch(u8, u8),
    Known(u8),
    Other(String),
}

/// A metadata value of each GGUF type; arrays are homogeneous as the format requires.
#[derive(Arbitrary, Debug)]
enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Word(Name),
    U64(u64),
    I64(i64),
    F64(f64),
    Words(Vec<Name>),
    U32s(Vec<u32>),
    I32s(Vec<i32>),
    F32s(Vec<f32>),
    Nested(Vec<Vec<u8>>),
    /// A string or array header whose length claims more than follows.
    Claim {
        array: bool,
        len: u64,
    },
}

/// A tensor's entry in the table: name, 1 to 4 dimensions, storage type number, offset in the data section.
#[derive(Arbitrary, Debug)]
struct Tensor {
    name: Name,
    dims: Vec<u16>,
    kind: u8,
    offset: Option<u32>,
}

/// A whole GGUF file.
#[derive(Arbitrary, Debug)]
struct GgufFile {
    version_3: bool,
    arch: u8,
    metadata: Vec<(Key, Value)>,
    tensors: Vec<Tensor>,
    data: Vec<u8>,
}

/// Little-endian writing of GGUF's fields.
struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn array<T>(&mut self, kind: u32, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.u32(kind);
        self.u64(items.len() as u64);
        for x in items {
            item(self, x);
        }
    }

    fn scalar(&mut self, kind: u32, bytes: &[u8]) {
        self.u32(kind);
        self.0.extend_from_slice(bytes);
    }

    /// A value's type number and bytes.
    fn value(&mut self, value: &Value) {
        match value {
            Value::U8(v) => self.scalar(0, &[*v]),
            Value::I8(v) => self.scalar(1, &v.to_le_bytes()),
            Value::U16(v) => self.scalar(2, &v.to_le_bytes()),
            Value::I16(v) => self.scalar(3, &v.to_le_bytes()),
            Value::U32(v) => self.scalar(4, &v.to_le_bytes()),
            Value::I32(v) => self.scalar(5, &v.to_le_bytes()),
            Value::F32(v) => self.scalar(6, &v.to_le_bytes()),
            Value::Bool(v) => self.scalar(7, &[u8::from(*v)]),
            Value::Word(word) => {
                self.u32(8);
                self.string(&word.pick(WORDS));
            }
            Value::U64(v) => self.scalar(10, &v.to_le_bytes()),
            Value::I64(v) => self.scalar(11, &v.to_le_bytes()),
            Value::F64(v) => self.scalar(12, &v.to_le_bytes()),
            Value::Words(words) => {
                self.u32(9);
                self.array(8, words, |w, word| w.string(&word.pick(WORDS)));
            }
            Value::U32s(items) => {
                self.u32(9);
                self.array(4, items, |w, x| w.0.extend_from_slice(&x.to_le_bytes()));
            }
            Value::I32s(items) => {
                self.u32(9);
                self.array(5, items, |w, x| w.0.extend_from_slice(&x.to_le_bytes()));
            }
            Value::F32s(items) => {
                self.u32(9);
                self.array(6, items, |w, x| w.0.extend_from_slice(&x.to_le_bytes()));
            }
            Value::Nested(items) => {
                self.u32(9);
                self.array(9, items, |w, inner| w.array(0, inner, |w, x| w.0.push(*x)));
            }
            Value::Claim { array: true, len } => {
                self.scalar(9, &4u32.to_le_bytes());
                self.u64(*len);
            }
            Value::Claim { array: false, len } => {
                self.u32(8);
                self.u64(*len);
            }
        }
    }
}

impl GgufFile {
    /// The file's bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let arch = ARCHITECTURES[self.arch as usize % ARCHITECTURES.len()];
        let mut w = Writer(b"GGUF".to_vec());
        w.u32(if self.version_3 { 3 } else { 2 });
        w.u64(self.tensors.len() as u64);
        w.u64(self.metadata.len() as u64 + 1);
        w.string("general.architecture");
        w.u32(8);
        w.string(arch);
        for (key, value) in &self.metadata {
            let key = match key {
                Key::Arch(a, k) => {
                    format!(
                        "{}.{}",
                        ARCHITECTURES[*a as usize % ARCHITECTURES.len()],
                        ARCH_KEYS[*k as usize % ARCH_KEYS.len()]
                    )
                }
                Key::Known(k) => KEYS[*k as usize % KEYS.len()].to_string(),
                Key::Other(s) => s.clone(),
            };
            w.string(&key);
            w.value(value);
        }
        let mut next = 0u64;
        for tensor in &self.tensors {
            w.string(&tensor.name.pick(TENSORS));
            let dims: Vec<u64> = tensor.dims.iter().take(4).map(|&d| u64::from(d)).collect();
            w.u32(dims.len() as u32);
            for &d in &dims {
                w.u64(d);
            }
            w.u32(u32::from(tensor.kind));
            let offset = tensor.offset.map_or(next, u64::from);
            w.u64(offset);
            next = offset + 32 * dims.iter().fold(1u64, |n, &d| n.saturating_mul(d)).min(1 << 20);
        }
        w.0.resize(w.0.len().div_ceil(32) * 32, 0);
        w.0.extend_from_slice(&self.data);
        w.0
    }
}

/// The GGUF file that `data` describes (`None` when `arbitrary` finds too few bytes).
pub fn gguf_from(data: &[u8]) -> Option<Vec<u8>> {
    GgufFile::arbitrary_take_rest(Unstructured::new(data)).ok().map(|file| file.to_bytes())
}

/// A GGUF file generated field by field, read as [`model_files::gguf`] and [`model_files::gguf_model`] read one.
pub fn gguf_structured(data: &[u8]) -> bool {
    gguf_from(data).is_some_and(|bytes| model_files::gguf(&bytes) & model_files::gguf_model(&bytes))
}

/// A tensor's entry in a safetensors header: name, dtype, shape and, one time in sixteen, offsets other than the
/// next ones.
#[derive(Arbitrary, Debug)]
struct Entry {
    name: Name,
    dtype: u8,
    shape: Vec<u16>,
    offsets: (u8, u64, u64),
}

/// Dtypes as safetensors spells them, with their sizes in bytes (`Q4` is no dtype of the format).
const DTYPES: &[(&str, u64)] = &[
    ("F32", 4),
    ("F16", 2),
    ("BF16", 2),
    ("F64", 8),
    ("I64", 8),
    ("I32", 4),
    ("I8", 1),
    ("U8", 1),
    ("BOOL", 1),
    ("F8_E4M3", 1),
    ("Q4", 1),
];

/// A whole safetensors file; its data section as long as the header says unless `data_as_is`.
#[derive(Arbitrary, Debug)]
struct SafetensorsFile {
    entries: Vec<Entry>,
    metadata: Option<Vec<(String, String)>>,
    data: Vec<u8>,
    data_as_is: bool,
}

impl SafetensorsFile {
    /// The file's bytes: the header's length, the header as JSON, the data.
    fn to_bytes(&self) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut next = 0u64;
        for entry in &self.entries {
            let (dtype, bytes) = DTYPES[entry.dtype as usize % DTYPES.len()];
            let shape: Vec<u64> = entry.shape.iter().take(4).map(|&d| u64::from(d % 64)).collect();
            let size = bytes * shape.iter().product::<u64>();
            let (start, end) = match entry.offsets {
                (claim, start, end) if claim < 16 => (start, end),
                _ => (next, next.saturating_add(size)),
            };
            next = end;
            let value = serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, end]});
            header.insert(entry.name.pick(&["a", "b", "model.embed_tokens.weight", "0.0.old", "0.0.new"]), value);
        }
        if let Some(metadata) = &self.metadata {
            header.insert(
                "__metadata__".into(),
                serde_json::json!(metadata.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()),
            );
        }
        let header = serde_json::Value::Object(header).to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        let mut data = self.data.clone();
        if !self.data_as_is {
            data.resize(usize::try_from(next).unwrap_or(usize::MAX).min(1 << 20), 0);
        }
        bytes.extend_from_slice(&data);
        bytes
    }
}

/// The safetensors file that `data` describes (`None` when `arbitrary` finds too few bytes).
pub fn safetensors_from(data: &[u8]) -> Option<Vec<u8>> {
    SafetensorsFile::arbitrary_take_rest(Unstructured::new(data)).ok().map(|file| file.to_bytes())
}

/// A safetensors file generated field by field, read as [`model_files::safetensors`] reads one.
pub fn safetensors_structured(data: &[u8]) -> bool {
    safetensors_from(data).is_some_and(|bytes| model_files::safetensors(&bytes))
}
