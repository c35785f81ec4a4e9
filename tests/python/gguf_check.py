"""Reads a GGUF file written by the workbench with the Python `gguf` package and, optionally, transformers.

usage: gguf_check.py FILE.gguf OUT_DIR [INPUT.json]
Writes OUT_DIR/check.json (tensor count, types, architecture), OUT_DIR/<tensor>.f32 for a few tensors
dequantized by gguf.quants, and with INPUT.json ({"prompts": [[ids]]}) OUT_DIR/logits-<i>.f32 from
transformers loading the file (gguf_file=).
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import quants

path, out = sys.argv[1], sys.argv[2]
reader = gguf.GGUFReader(path)
names = ["token_embd.weight", "blk.0.attn_q.weight", "blk.3.ffn_down.weight", "blk.0.attn_norm.weight"]
by_name = {t.name: t for t in reader.tensors}
for name in names:
    t = by_name[name]
    quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1).tofile(os.path.join(out, f"{name}.f32"))
check = {
    "tensors": len(reader.tensors),
    "types": sorted({t.tensor_type.name for t in reader.tensors}),
    "architecture": reader.fields["general.architecture"].contents(),
    "pre": reader.fields["tokenizer.ggml.pre"].contents(),
}
with open(os.path.join(out, "check.json"), "w") as f:
    json.dump(check, f)

if len(sys.argv) > 3:
    import torch
    from transformers import AutoModelForCausalLM

    with open(sys.argv[3]) as f:
        request = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
    with torch.no_grad():
        for i, ids in enumerate(request["prompts"]):
            model(torch.tensor([ids])).logits[0].float().numpy().tofile(os.path.join(out, f"logits-{i}.f32"))
