"""Loads a Hugging Face folder with transformers (float32) and records logits and token ids.

usage: hf_logits.py MODEL_DIR INPUT.json OUT_DIR
INPUT.json: {"prompts": [[ids], ...], "texts": [...]}
Writes OUT_DIR/logits-<i>.f32 and OUT_DIR/tokens.json (AutoTokenizer ids of each text).
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir, input_path, out = sys.argv[1:4]
with open(input_path) as f:
    request = json.load(f)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
with torch.no_grad():
    for i, ids in enumerate(request["prompts"]):
        model(torch.tensor([ids])).logits[0].float().numpy().tofile(os.path.join(out, f"logits-{i}.f32"))
tokenizer = AutoTokenizer.from_pretrained(model_dir)
with open(os.path.join(out, "tokens.json"), "w") as f:
    json.dump([tokenizer(t, add_special_tokens=True)["input_ids"] for t in request["texts"]], f)
