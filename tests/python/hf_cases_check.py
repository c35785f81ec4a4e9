"""Checks repair cases on a Hugging Face folder with transformers, teacher-forced.

usage: hf_cases_check.py MODEL_DIR INPUT.json OUT.json
INPUT.json: {"cases": [{"ids": [...], "prompt_len": n}, ...]} (prompt then desired tokens)
OUT.json: {"margins": [[logit of the desired token minus the best other logit, per desired token], ...]}
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM

model_dir, input_path, out = sys.argv[1:4]
with open(input_path) as f:
    request = json.load(f)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
margins = []
with torch.no_grad():
    for case in request["cases"]:
        ids, start = case["ids"], case["prompt_len"]
        logits = model(torch.tensor([ids[:-1]])).logits[0]
        row = []
        for position in range(start - 1, len(ids) - 1):
            scores = logits[position].clone()
            desired = ids[position + 1]
            chosen = float(scores[desired])
            scores[desired] = float("-inf")
            row.append(chosen - float(scores.max()))
        margins.append(row)
with open(out, "w") as f:
    json.dump({"margins": margins}, f)
