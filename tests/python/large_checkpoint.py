"""A 1.5-billion-parameter Qwen2 checkpoint with random weights, as transformers writes it: bf16, sharded.

usage: large_checkpoint.py TOKENIZER_GGUF OUT_DIR
The shape is Qwen2.5-Coder-1.5B's (28 layers, d_model 1536, 8960 MLP neurons, 12 query and 2 key/value heads)
with SmolLM2's tokenizer (49,152 tokens) and untied embeddings: 1.47e9 parameters, 2.9 GB in bf16, written in
shards of at most 1 GB with model.safetensors.index.json. The weights are built in bf16 from the start, so that
writing them takes about 3 GB. Prints the parameter count.
"""
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer_gguf, out = sys.argv[1:3]
tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(tokenizer_gguf), gguf_file=os.path.basename(tokenizer_gguf))
config = transformers.Qwen2Config(
    vocab_size=len(tokenizer), hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=4096, rope_theta=1000000.0,
    tie_word_embeddings=False, torch_dtype="bfloat16",
)
torch.manual_seed(0)
torch.set_default_dtype(torch.bfloat16)
with torch.no_grad():
    model = AutoModelForCausalLM.from_config(config)
    # Small weights so that activations stay finite through 28 layers of random bf16 blocks.
    for p in model.parameters():
        if p.dim() > 1:
            p.normal_(0.0, 0.02)
model.eval()
os.makedirs(out, exist_ok=True)
model.save_pretrained(out, max_shard_size="1GB", safe_serialization=True)
tokenizer.save_pretrained(out)
print(sum(p.numel() for p in model.parameters()))
