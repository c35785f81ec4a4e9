"""Logits and greedy continuations of transformers' Llama on the same GGUF file, in f32 on CPU.

usage: llama_reference.py MODEL.gguf INPUT.json OUT_DIR
INPUT.json: {"prompts": [[token ids], ...], "new_tokens": 32}
Writes OUT_DIR/logits-<i>.f32 (raw little-endian [seq, vocab]) and OUT_DIR/reference.json with the greedy
continuations (token ids, generation stopping at EOS as transformers does).
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

model_path, input_path, out = sys.argv[1:4]
os.makedirs(out, exist_ok=True)
with open(input_path) as f:
    request = json.load(f)
torch.set_num_threads(int(os.environ.get("REFERENCE_THREADS", "2")))
model = AutoModelForCausalLM.from_pretrained(
    os.path.dirname(model_path), gguf_file=os.path.basename(model_path), dtype=torch.float32
).eval()

continuations = []
with torch.no_grad():
    for i, ids in enumerate(request["prompts"]):
        input_ids = torch.tensor([ids])
        logits = model(input_ids).logits[0].float().contiguous()
        logits.numpy().tofile(os.path.join(out, f"logits-{i}.f32"))
        generated = model.generate(
            input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=request["new_tokens"],
            do_sample=False, eos_token_id=model.config.eos_token_id, pad_token_id=model.config.eos_token_id,
        )
        continuations.append(generated[0, len(ids):].tolist())
with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump({"continuations": continuations, "vocab": model.config.vocab_size, "eos": model.config.eos_token_id}, f)
