"""Small randomly initialised Hugging Face checkpoints and their outputs, as references for the runtime.

usage: hf_reference.py ARCH VARIANT TOKENIZER_GGUF OUT_DIR
  ARCH     llama | qwen2 | mistral | qwen3 | starcoder2 | phi3 | granite | gemma | gemma2 | gpt2 | gpt_bigcode | gpt_bigcode_mha | codegen | gpt_neox | gpt_neox_sequential
  VARIANT  f32 | f16 | bf16 | sharded (f32 in several safetensors shards) | gguf (f32, with Gemma 2's
           query_pre_attn_scalar equal to its head width, as llama.cpp assumes)
Writes OUT_DIR/model/ (config.json, safetensors, tokenizer.json) and, from a float32 forward pass of the saved
checkpoint, OUT_DIR/logits-<i>.f32 and OUT_DIR/hidden-<i>-<layer>.f32 (output_hidden_states), plus
OUT_DIR/reference.json with the prompts' token ids and shapes.
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

arch, variant, tokenizer_gguf, out = sys.argv[1:5]
model_dir = os.path.join(out, "model")
os.makedirs(model_dir, exist_ok=True)
torch.manual_seed(0)

tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(tokenizer_gguf), gguf_file=os.path.basename(tokenizer_gguf))
VOCAB = len(tokenizer)

CONFIGS = {
    "llama": lambda: transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=50000.0,
        tie_word_embeddings=False,
    ),
    "qwen2": lambda: transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rope_theta=20000.0, tie_word_embeddings=True,
    ),
    # A window of 5 tokens, shorter than the prompts, so that the window changes what later tokens see.
    "mistral": lambda: transformers.MistralConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rope_theta=10000.0, sliding_window=5,
        tie_word_embeddings=False,
    ),
    # A head width of 24, not hidden_size / heads, so that a wrong one shows.
    "qwen3": lambda: transformers.Qwen3Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=24, max_position_embeddings=256, rope_theta=10000.0,
        tie_word_embeddings=True,
    ),
    # Biases everywhere, LayerNorm, a window of 6 tokens shorter than the prompts.
    "starcoder2": lambda: transformers.Starcoder2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, sliding_window=6, use_bias=True,
    ),
    "phi3": lambda: transformers.Phi3Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, tie_word_embeddings=False,
    ),
    # Multipliers far from 1, so that a missing one shows.
    "granite": lambda: transformers.GraniteConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, embedding_multiplier=6.0, residual_multiplier=0.3,
        attention_multiplier=0.05, logits_scaling=4.0, tie_word_embeddings=True,
    ),
    # A head width of 24 (not hidden / heads) and one key/value head.
    "gemma": lambda: transformers.GemmaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=1, head_dim=24, max_position_embeddings=256, pad_token_id=0, tie_word_embeddings=True,
    ),
    # Local layers with a window of 5 (shorter than the prompts) between global ones, caps low enough to bite.
    "gemma2": lambda: transformers.Gemma2Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=256, pad_token_id=0, sliding_window=5,
        query_pre_attn_scalar=32, attn_logit_softcapping=2.0, final_logit_softcapping=3.0, tie_word_embeddings=True,
    ),
    "gpt2": lambda: transformers.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=256),
    "gpt_bigcode": lambda: transformers.GPTBigCodeConfig(
        vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=256, multi_query=True,
    ),
    "gpt_bigcode_mha": lambda: transformers.GPTBigCodeConfig(
        vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, n_positions=256, multi_query=False,
    ),
    "codegen": lambda: transformers.CodeGenConfig(
        vocab_size=VOCAB, n_embd=64, n_layer=3, n_head=4, rotary_dim=8, n_positions=256, n_ctx=256,
    ),
    "gpt_neox": lambda: transformers.GPTNeoXConfig(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=256, use_parallel_residual=True,
    ),
    "gpt_neox_sequential": lambda: transformers.GPTNeoXConfig(
        vocab_size=VOCAB, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128,
        max_position_embeddings=256, use_parallel_residual=False,
    ),
}

config = CONFIGS[arch]()
if variant == "gguf" and arch == "gemma2":
    config.query_pre_attn_scalar = config.head_dim
config.initializer_range = 0.1  # larger than the default 0.02, so that a wrong layout changes logits a lot
model = AutoModelForCausalLM.from_config(config).eval()
with torch.no_grad():  # random norms and biases, so a misplaced one shows
    for name, p in model.named_parameters():
        if p.dim() == 1 and name.endswith("weight"):
            p.copy_(1.0 + 0.1 * torch.randn_like(p))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn_like(p))
dtype = {"f32": torch.float32, "gguf": torch.float32, "sharded": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[variant]
model = model.to(dtype)
model.save_pretrained(model_dir, max_shard_size="1MB" if variant == "sharded" else "10GB")
tokenizer.save_pretrained(model_dir)

reloaded = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
prompts = ["def add(a, b):\n    return a + b\n", "import os\nfor name in os.listdir('.'):\n    print(name)"]
ids = [tokenizer(p)["input_ids"] for p in prompts]
with torch.no_grad():
    for i, seq in enumerate(ids):
        output = reloaded(torch.tensor([seq]), output_hidden_states=True)
        output.logits[0].float().numpy().tofile(os.path.join(out, f"logits-{i}.f32"))
        for layer, hidden in enumerate(output.hidden_states):
            hidden[0].float().numpy().tofile(os.path.join(out, f"hidden-{i}-{layer}.f32"))
with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump({"prompts": prompts, "ids": ids, "layers": config.num_hidden_layers, "hidden": config.hidden_size, "vocab": VOCAB,
               "files": sorted(os.listdir(model_dir))}, f)
