"""Checks an exported patched model against the unpatched export with transformers.

usage: hf_patch_check.py PATCHED_DIR ORIGINAL_DIR INPUT.json OUT_DIR
INPUT.json: {"prompts": [[ids], ...]}
Writes OUT_DIR/logits-<i>.f32 (the patched model's logits, float32) and OUT_DIR/changes.json: for every tensor
that differs between the two folders, the indices of the columns (dimension 1) that differ.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

patched_dir, original_dir, input_path, out = sys.argv[1:5]
with open(input_path) as f:
    request = json.load(f)
patched = AutoModelForCausalLM.from_pretrained(patched_dir, dtype=torch.float32).eval()
original = AutoModelForCausalLM.from_pretrained(original_dir, dtype=torch.float32).eval()
with torch.no_grad():
    for i, ids in enumerate(request["prompts"]):
        patched(torch.tensor([ids])).logits[0].float().numpy().tofile(os.path.join(out, f"logits-{i}.f32"))
before = original.state_dict()
changes = {}
for name, tensor in patched.state_dict().items():
    differs = tensor != before[name]
    if differs.any():
        columns = differs.any(dim=0) if differs.dim() == 2 else differs
        changes[name] = [int(i) for i in torch.nonzero(columns).flatten()]
with open(os.path.join(out, "changes.json"), "w") as f:
    json.dump(changes, f)
