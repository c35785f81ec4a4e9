"""A Hugging Face folder written as GGUF the way llama.cpp's convert_hf_to_gguf.py writes it, for the tests.

usage: gguf_convert.py MODEL_DIR TOKENIZER_GGUF OUT.gguf

Tensor names come from the `gguf` package's own table (gguf.get_tensor_name_map), metadata from its GGUFWriter
helpers with the hyper-parameters llama.cpp's converter writes for each architecture, and the converter's changes to
tensors are made here as it makes them: Llama and Granite query/key rows permuted (`LlamaModel.permute`), Gemma
norms plus one, GPT-2's Conv1D weights transposed and its output duplicated from the embedding, GPT-NeoX's fused
query/key/value rows regrouped. The tokenizer metadata is copied from TOKENIZER_GGUF (the models' tokenizer).
Every tensor is stored as F32, so the test compares exact values.
"""
import glob
import json
import sys

import gguf
import torch
from gguf import MODEL_ARCH
from safetensors.torch import load_file

model_dir, tokenizer_gguf, out = sys.argv[1:4]
config = json.load(open(f"{model_dir}/config.json"))
model_type = config["model_type"]
arch = {
    "llama": MODEL_ARCH.LLAMA, "mistral": MODEL_ARCH.LLAMA, "qwen2": MODEL_ARCH.QWEN2, "qwen3": MODEL_ARCH.QWEN3,
    "phi3": MODEL_ARCH.PHI3, "granite": MODEL_ARCH.GRANITE, "gemma": MODEL_ARCH.GEMMA, "gemma2": MODEL_ARCH.GEMMA2,
    "starcoder2": MODEL_ARCH.STARCODER2, "gpt2": MODEL_ARCH.GPT2, "gpt_bigcode": MODEL_ARCH.STARCODER,
    "gpt_neox": MODEL_ARCH.GPTNEOX,
}[model_type]
w = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[arch])


def rope_theta():
    return config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta", 10000.0)


# Hyper-parameters, as the converter's set_gguf_parameters writes them for each architecture.
if arch in (MODEL_ARCH.GPT2, MODEL_ARCH.STARCODER):
    n_layers, n_head, width = config["n_layer"], config["n_head"], config["n_embd"]
    w.add_context_length(config["n_positions"])
    w.add_embedding_length(width)
    w.add_feed_forward_length(config.get("n_inner") or 4 * width)
    w.add_head_count(n_head)
    w.add_layer_norm_eps(config["layer_norm_epsilon"])
    if arch == MODEL_ARCH.STARCODER:
        w.add_head_count_kv(1 if config.get("multi_query", True) else n_head)
elif arch == MODEL_ARCH.GPTNEOX:
    n_layers, n_head, width = config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"]
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(width)
    w.add_feed_forward_length(config["intermediate_size"])
    rotary = config.get("rotary_pct") or (config.get("rope_parameters") or {}).get("partial_rotary_factor", 0.25)
    w.add_rope_dimension_count(int(rotary * (width // n_head)))
    w.add_rope_freq_base(rope_theta())
    w.add_head_count(n_head)
    w.add_parallel_residual(config.get("use_parallel_residual", True))
    w.add_layer_norm_eps(config["layer_norm_eps"])
else:
    n_layers, n_head, width = config["num_hidden_layers"], config["num_attention_heads"], config["hidden_size"]
    n_kv = config.get("num_key_value_heads") or n_head
    head_dim = config.get("head_dim") or width // n_head
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(width)
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(rope_theta())
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    if arch == MODEL_ARCH.STARCODER2:
        w.add_layer_norm_eps(config["norm_epsilon"])
    else:
        w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    if arch in (MODEL_ARCH.GEMMA2, MODEL_ARCH.PHI3, MODEL_ARCH.STARCODER2) and config.get("sliding_window"):
        w.add_sliding_window(config["sliding_window"])
    if arch == MODEL_ARCH.GEMMA2:
        w.add_attn_logit_softcapping(config["attn_logit_softcapping"])
        w.add_final_logit_softcapping(config["final_logit_softcapping"])
    if arch == MODEL_ARCH.GRANITE:
        w.add_attention_scale(config["attention_multiplier"])
        w.add_embedding_scale(config["embedding_multiplier"])
        w.add_residual_scale(config["residual_multiplier"])
        w.add_logit_scale(config["logits_scaling"])
w.add_block_count(n_layers)

# The tokenizer, copied key by key.
reader = gguf.GGUFReader(tokenizer_gguf)
for name, field in reader.fields.items():
    if name.startswith("tokenizer."):
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), kind, sub_type=sub)
vocab = len(reader.fields["tokenizer.ggml.tokens"].contents())
w.add_vocab_size(vocab)


def permute(t, heads):
    return t.reshape(heads, 2, t.shape[0] // heads // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)


names = gguf.get_tensor_name_map(arch, n_layers)
tensors = {}
for path in sorted(glob.glob(f"{model_dir}/*.safetensors")):
    tensors.update(load_file(path))
for name, t in tensors.items():
    t = t.float()
    if arch in (MODEL_ARCH.LLAMA, MODEL_ARCH.GRANITE) and name.endswith(("q_proj.weight", "q_proj.bias")):
        t = permute(t, n_head)
    if arch in (MODEL_ARCH.LLAMA, MODEL_ARCH.GRANITE) and name.endswith(("k_proj.weight", "k_proj.bias")):
        t = permute(t, n_kv)
    if arch in (MODEL_ARCH.GEMMA, MODEL_ARCH.GEMMA2):
        if name == "lm_head.weight":
            continue
        if name.endswith("norm.weight"):
            t = t + 1
    if arch == MODEL_ARCH.GPT2 and name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
        t = t.transpose(1, 0)
    if arch == MODEL_ARCH.GPTNEOX and "query_key_value" in name:
        t = t.reshape(n_head, 3, width // n_head, *t.shape[1:]).swapaxes(0, 1).reshape(t.shape)
    new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
    assert new_name is not None, f"gguf has no name for {name}"
    w.add_tensor(new_name, t.contiguous().numpy())
    if arch == MODEL_ARCH.GPT2 and new_name == "token_embd.weight":
        w.add_tensor("output.weight", t.contiguous().numpy())  # GPT-2's output is its embedding, written twice

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(json.dumps({"tensors": sorted(names.get_name(n, try_suffixes=(".weight", ".bias")) for n in tensors)}))
