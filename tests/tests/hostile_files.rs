//! Hostile files: every reader of user-supplied files (`fuzz::targets::TARGETS`) takes its seeds (files written by
//! gguf-py, transformers and tokenizers) whole, reads every input a fuzzer ever crashed it with without a panic, and
//! reserves at most 64 MB for crafted files that claim huge counts and lengths.

use std::path::{Path, PathBuf};

use fuzz::budget::{measure, peak_of, retained_by, run_bounded, PeakAllocator};
use fuzz::targets::{by_name, is_structured, Target, TARGETS};
use models::files::FileBytes;
use models::gguf::GgufFile;
use models::safetensors_weights::SafetensorsWeights;

#[global_allocator]
static ALLOCATOR: PeakAllocator = PeakAllocator;

/// The memory bound of a crafted file: what the issue sets for headers that claim huge counts.
const CRAFTED_BOUND: usize = 64 << 20;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files of `dir` (none when it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths
}

fn seeds(target: &str) -> Vec<PathBuf> {
    match target {
        "spec" => files(&root().join("experiments/specs")),
        _ => files(&root().join("fuzz/seeds").join(target)),
    }
}

fn target(name: &str) -> Target {
    by_name(name).unwrap_or_else(|| panic!("no fuzz target {name}"))
}

#[test]
fn every_seed_is_a_file_its_reader_takes_whole_within_the_memory_bound() {
    for &(name, reader) in TARGETS.iter().filter(|(name, _)| !is_structured(name)) {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for seed in seeds {
            let bytes = std::fs::read(&seed).unwrap();
            let truncated = seed.to_string_lossy().contains("truncated");
            assert_eq!(reader(&bytes), !truncated, "{name}: {} (taken whole unless named truncated)", seed.display());
            run_bounded(reader, &bytes);
        }
    }
}

#[test]
fn every_input_that_once_crashed_a_reader_is_read_without_a_panic_within_the_memory_bound() {
    let Ok(dirs) = std::fs::read_dir(root().join("fuzz/regressions")) else { return };
    for dir in dirs.map(|e| e.unwrap().path()) {
        let reader = target(&dir.file_name().unwrap().to_string_lossy());
        for input in files(&dir) {
            run_bounded(reader, &std::fs::read(&input).unwrap());
        }
    }
}

/// Whether `name`'s reader takes `input` whole, checking that it reserves less than [`CRAFTED_BOUND`] on the way.
fn read_within_bound(name: &str, what: &str, input: &[u8]) -> bool {
    let reader = target(name);
    let peak = measure(reader, input);
    assert!(peak < CRAFTED_BOUND, "{name}, {what}: reserved {peak} bytes for a {}-byte file", input.len());
    reader(input)
}

/// `name`'s reader refuses `input` and reserves less than [`CRAFTED_BOUND`] on the way.
fn refused_within_bound(name: &str, what: &str, input: &[u8]) {
    assert!(!read_within_bound(name, what, input), "{name}, {what}: the reader took a crafted file whole");
}

/// A GGUF file's bytes, written field by field as the format lays them out (little-endian).
#[derive(Default)]
struct Gguf(Vec<u8>);

impl Gguf {
    fn header(tensors: u64, metadata: u64) -> Self {
        let mut file = Gguf(b"GGUF".to_vec());
        file.u32(3).u64(tensors).u64(metadata);
        file
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    /// A metadata entry of type u32 (4), string (8) or u64 (10).
    fn key_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.string(key).u32(4).u32(v)
    }
    fn key_string(&mut self, key: &str, v: &str) -> &mut Self {
        self.string(key).u32(8).string(v)
    }
    /// An array entry's head: key, type 9, item type, claimed length; the items are up to the caller.
    fn key_array(&mut self, key: &str, item_kind: u32, len: u64) -> &mut Self {
        self.string(key).u32(9).u32(item_kind).u64(len)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], kind: u32, offset: u64) -> &mut Self {
        self.string(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(kind).u64(offset)
    }
    fn padded(&mut self, bytes: usize) -> Vec<u8> {
        self.0.resize(self.0.len() + bytes, 0);
        self.0.clone()
    }
}

#[test]
fn gguf_headers_that_claim_huge_counts_reserve_little() {
    let huge = 1u64 << 60;
    refused_within_bound("gguf", "2^60 tensors", &Gguf::header(huge, 0).padded(64));
    refused_within_bound("gguf", "2^60 metadata entries", &Gguf::header(0, huge).padded(64));
    refused_within_bound("gguf", "a key of 2^60 bytes", &Gguf::header(0, 1).u64(huge).padded(64));
    refused_within_bound("gguf", "an array of 2^60 u64", &Gguf::header(0, 1).key_array("a", 10, huge).padded(64));
    refused_within_bound("gguf", "an array of 2^60 strings", &Gguf::header(0, 1).key_array("a", 8, huge).padded(64));
    // Every level claims as many items as bytes are left: each array's reservation is checked against the file.
    let mut nested = Gguf::header(0, 1);
    nested.key_array("a", 9, 60_000);
    for _ in 0..4 {
        nested.u32(9).u64(60_000);
    }
    refused_within_bound("gguf", "arrays nested five deep, each claiming the rest", &nested.padded(64 << 10));
    let tensor = |dims: &[u64], kind: u32| Gguf::header(1, 0).tensor("t", dims, kind, 0).padded(64);
    refused_within_bound("gguf", "a tensor of 2^64 elements", &tensor(&[1 << 32, 1 << 32], 0));
    refused_within_bound("gguf", "an f32 tensor of 2^40 elements", &tensor(&[1 << 20, 1 << 20], 0));
    refused_within_bound("gguf", "a Q4_0 tensor of 2^40 elements", &tensor(&[1 << 20, 1 << 20], 2));
    refused_within_bound(
        "gguf",
        "a tensor at offset 2^64 - 1",
        &Gguf::header(1, 0).tensor("t", &[4], 0, u64::MAX).padded(64),
    );
    refused_within_bound("gguf", "a tensor of 9 dimensions", &tensor(&[1; 9], 0));
}

#[test]
fn a_gguf_model_whose_metadata_claims_huge_sizes_is_refused_without_reserving_them() {
    let llama = |key: &str, value: u32| {
        let mut file = Gguf::header(0, 7);
        file.key_string("general.architecture", "llama");
        for (k, v) in [
            ("block_count", 1),
            ("context_length", 32),
            ("embedding_length", 8),
            ("feed_forward_length", 16),
            ("attention.head_count", 2),
            ("attention.head_count_kv", 1),
        ] {
            let v = if k == key { value } else { v };
            file.key_u32(&format!("llama.{k}"), v);
        }
        file.padded(64)
    };
    for key in ["block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count"] {
        refused_within_bound("gguf_model", &format!("llama.{key} = 2^32 - 1"), &llama(key, u32::MAX));
    }
    let mut tokens = Gguf::header(0, 2);
    tokens.key_string("tokenizer.ggml.model", "gpt2").key_array("tokenizer.ggml.tokens", 8, 1 << 40);
    refused_within_bound("gguf_model", "2^40 tokens", &tokens.padded(1024));
}

#[test]
fn a_gguf_model_whose_context_is_2_to_the_28_tokens_loads_without_reserving_it() {
    let mut bytes = std::fs::read(root().join("fuzz/seeds/gguf_model/tiny-llama-bpe.gguf")).unwrap();
    let key = b"llama.context_length";
    let at = bytes.windows(key.len()).position(|w| w == key).expect("the seed has a context length") + key.len();
    assert_eq!(&bytes[at..at + 4], &4u32.to_le_bytes(), "stored as u32");
    bytes[at + 4..at + 8].copy_from_slice(&(1u32 << 28).to_le_bytes());
    // A long context is no reason to refuse a model; the rotary factors are computed for the positions in use.
    assert!(read_within_bound("gguf_model", "context_length = 2^28", &bytes));
    bytes[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    refused_within_bound("gguf_model", "context_length = 2^32 - 1, beyond any model", &bytes);
}

/// A safetensors file: the header's length, the header, the data.
fn safetensors(header: &str, data: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data, 0);
    bytes
}

#[test]
fn safetensors_headers_that_claim_huge_sizes_reserve_little() {
    let mut claims_2_60 = (1u64 << 60).to_le_bytes().to_vec();
    claims_2_60.extend_from_slice(b"{}");
    refused_within_bound("safetensors", "a header of 2^60 bytes", &claims_2_60);
    let huge_shape = r#"{"t":{"dtype":"F32","shape":[2147483648,2147483648,2147483648],"data_offsets":[0,8]}}"#;
    refused_within_bound("safetensors", "a tensor of 2^93 elements", &safetensors(huge_shape, 8));
    let beyond = r#"{"t":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}"#;
    refused_within_bound("safetensors", "a tensor of 4 TB in an 8-byte file", &safetensors(beyond, 8));
    let mut patch = b"(format: 1, tensors: \"p.safetensors\", model: (name: \"m\", architecture: \"llama\", n_layers: 1, d_model: 8, d_mlp: 16, weights_sha256: \"\"), patches: [(method: Mint, case: None, cases: [], targets: [Parameter(\"w\")], steps: [], metrics: None)])\0".to_vec();
    patch.extend_from_slice(&safetensors(beyond.replace("\"t\"", "\"0.0.old\"").as_str(), 8));
    refused_within_bound("patch_set", "a side file claiming 4 TB", &patch);
}

#[test]
fn configs_and_tokenizers_that_claim_huge_sizes_are_refused_without_reserving_them() {
    let llama = |key: &str, value: u64| {
        let mut config = serde_json::json!({"model_type": "llama", "vocab_size": 32, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
            "max_position_embeddings": 32});
        config[key] = value.into();
        config.to_string().into_bytes()
    };
    let sizes = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"];
    for key in sizes.into_iter().chain(["max_position_embeddings"]) {
        refused_within_bound("config_json", &format!("{key} = 2^40"), &llama(key, 1 << 40));
    }
    let long = llama("max_position_embeddings", 1 << 28);
    assert!(read_within_bound("config_json", "max_position_embeddings = 2^28", &long), "a long context is allowed");
    refused_within_bound("config_json", "no attention heads", &llama("num_attention_heads", 0));
    refused_within_bound("config_json", "3 key/value heads for 2 query heads", &llama("num_key_value_heads", 3));
    let seed = std::fs::read_to_string(root().join("fuzz/seeds/tokenizer_json/byte-level-bpe.json")).unwrap();
    let mut padded: serde_json::Value = serde_json::from_str(&seed).unwrap();
    padded["padding"] = serde_json::json!({"strategy": {"Fixed": 1u64 << 40}, "direction": "Right",
        "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "<|endoftext|>"});
    let bytes = padded.to_string().into_bytes();
    let peak = measure(target("tokenizer_json"), &bytes);
    assert!(peak < CRAFTED_BOUND, "a tokenizer padding to 2^40 tokens reserved {peak} bytes");
}

#[test]
fn a_gzip_bomb_of_samples_is_refused_within_the_memory_bound() {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let line = b"{\"task_id\": \"HumanEval/0\", \"completion\": \"\"}\n";
    for _ in 0..(256 << 20) / line.len() {
        encoder.write_all(line).unwrap();
    }
    let mut input = vec![1u8];
    input.extend_from_slice(&encoder.finish().unwrap());
    assert!(input.len() < 2 << 20, "the bomb is {} bytes", input.len());
    refused_within_bound("humaneval_samples", "256 MB of samples in a gzip stream", &input);
}

#[test]
fn structured_generators_write_files_whose_framing_the_readers_accept() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut gguf, mut safetensors) = (0, 0);
    for _ in 0..200 {
        let len = rng.gen_range(16..512);
        let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let bytes = fuzz::structured::gguf_from(&data).expect("any 16 bytes describe a file");
        gguf += usize::from(GgufFile::parse("g.gguf".into(), FileBytes::Owned(bytes)).is_ok());
        let bytes = fuzz::structured::safetensors_from(&data).expect("any 16 bytes describe a file");
        safetensors += usize::from(SafetensorsWeights::parse("s.safetensors".into(), FileBytes::Owned(bytes)).is_ok());
    }
    // Framing is always right; what fails is a value the reader refuses (a claimed length, an unknown tensor type).
    assert!(gguf >= 100 && safetensors >= 100, "parsed: {gguf} GGUF and {safetensors} safetensors files of 200");
}

#[test]
fn dequantisers_and_text_readers_keep_to_the_bound_on_crafted_claims() {
    // A block type byte and one block of data, read against a count of 2^62 values: refused before decoding.
    let q4_0 = std::fs::read(root().join("fuzz/seeds/dequant/Q4_0")).unwrap();
    for count in [1usize << 40, 1 << 62, usize::MAX] {
        let decoded = peak_of(|| models::gguf::dequantize(models::gguf::GgmlType::Q4_0, &q4_0[1..], count));
        assert!(decoded.1 < 1 << 10, "dequantising against a count of {count} reserved {} bytes", decoded.1);
        assert!(decoded.0.is_none(), "a count of {count} for 18 bytes");
    }
    let index = format!(
        "{{\"weight_map\": {{{}}}}}",
        (0..100_000).map(|i| format!("\"t{i}\": \"model-{}.safetensors\"", i % 7)).collect::<Vec<_>>().join(", ")
    );
    assert!(read_within_bound("safetensors_index", "100,000 entries", index.as_bytes()));
    refused_within_bound(
        "safetensors_index",
        "a shard outside the folder",
        br#"{"weight_map": {"a": "../../etc/passwd"}}"#,
    );
    let nested = format!("(name: \"x\", model: \"m\", steps: [{}])", "[".repeat(10_000));
    refused_within_bound("spec", "lists nested 10,000 deep", nested.as_bytes());
    let spans = r#"{"text": "x = 1", "start": 0, "end": 18446744073709551615, "label": "a"}"#;
    refused_within_bound("probe_task", "a span ending at 2^64 - 1", spans.as_bytes());
    let variants = format!(
        "{{\"prompt\": \"a\", \"desired\": \"b\", \"variants\": [{}]}}",
        "{\"prompt\": \"a\", \"desired\": \"b\"},".repeat(20_000)
    );
    refused_within_bound("repair_cases", "20,000 variants and a trailing comma", variants.as_bytes());
    let mut patch = std::fs::read(root().join("fuzz/seeds/patch_set/mint.bin")).unwrap();
    let at = patch.iter().position(|&b| b == 0).unwrap();
    patch.truncate(at + 1);
    patch.extend_from_slice(&u64::MAX.to_le_bytes());
    refused_within_bound("patch_set", "a side file whose header claims 2^64 - 1 bytes", &patch);
}

#[test]
fn the_peak_allocation_is_measured() {
    let (buffer, peak) = peak_of(|| vec![1u8; 3 << 20]);
    assert!((3 << 20..4 << 20).contains(&peak), "3 MiB reserved, {peak} bytes measured");
    drop(buffer);
    let (_, peak) = peak_of(|| drop(vec![1u8; 1 << 20]));
    assert!(peak >= 1 << 20, "a freed MiB still counts at its peak: {peak}");
}

/// A tokenizer built, used and dropped leaves nothing on its thread. tokenizers 0.23 keeps BPE words in a
/// thread-local map keyed by tokenizer instance that nothing empties: 4.5 KB per tokenizer of this seed, until the
/// fuzzer's memory limit stopped `gguf_model` after 3 million inputs; with the cache's capacity at zero, an empty
/// entry per instance, whose map reallocated 76 MB inside one input after 4.8 million. The workbench builds BPE
/// models without the cache.
#[test]
fn a_tokenizer_built_used_and_dropped_leaves_nothing_on_its_thread() {
    let tokenizer_json = target("tokenizer_json");
    for seed in ["byte-level-bpe.json", "sentencepiece-bpe.json"] {
        let seed = std::fs::read(root().join("fuzz/seeds/tokenizer_json").join(seed)).unwrap();
        assert!(tokenizer_json(&seed), "the seed builds a tokenizer that encodes and decodes");
        let (_, kept) = retained_by(|| (0..100).all(|_| tokenizer_json(&seed)));
        assert!(kept < 1024, "{kept} bytes kept on the thread after 100 tokenizers");
    }
}
