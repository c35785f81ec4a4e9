"""The joint solve's rows and the reference gap moment, computed independently with transformers and autograd.

usage: gap_moment_reference.py MODEL_DIR INPUT.json OUT.json
INPUT.json: {"prompts": [[ids...], ...], "cases": [{"ids": [...], "prompt_len": n}, ...]}
OUT.json: {"moment": [d, d], "cases": [{"margins": [...], "directions": [[d], ...]}, ...]}
moment: the mean over every position of every prompt of g g^T, g the gradient of logit_top1 - logit_runner-up (the
model's own top-1 there) with respect to the final residual (the input of the final norm), through the final norm
and lm_head only. margins and directions: for each case, teacher-forced at each desired token, the gap between the
desired token and the strongest other token, and its gradient the same way.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM

model_dir, input_path, output_path = sys.argv[1:4]
with open(input_path) as f:
    request = json.load(f)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
final = {}
model.model.norm.register_forward_pre_hook(lambda module, args: final.__setitem__("x", args[0]))


def gaps(ids, desired):
    """Margins and gradients at each position of `ids` (desired: a token per position, None for the top-1)."""
    with torch.no_grad():
        model(torch.tensor([ids]))
    x = final["x"][0].detach().clone().requires_grad_(True)
    logits = model.lm_head(model.model.norm(x))
    chosen = logits.argmax(-1) if desired is None else torch.tensor(desired)
    others = logits.detach().clone()
    others[torch.arange(len(chosen)), chosen] = float("-inf")
    wrong = others.argmax(-1)
    rows = torch.arange(len(chosen))
    gap = logits[rows, chosen] - logits[rows, wrong]
    gap.sum().backward()
    return gap.detach(), x.grad


d = model.config.hidden_size
moment, count = torch.zeros(d, d, dtype=torch.float64), 0
for ids in request["prompts"]:
    _, g = gaps(ids, None)
    moment += g.T @ g
    count += len(ids)
cases = []
for case in request["cases"]:
    ids, start = case["ids"], case["prompt_len"] - 1
    margins, directions = gaps(ids[:-1], ids[1:])
    cases.append({"margins": margins[start:].tolist(), "directions": directions[start:].tolist()})
with open(output_path, "w") as out:
    json.dump({"moment": (moment / count).tolist(), "cases": cases}, out)
