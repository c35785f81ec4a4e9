"""MINT targeting computed independently with transformers and torch autograd.

usage: mint_reference.py MODEL_DIR INPUT.json OUT_DIR
INPUT.json: {"ids": [...], "desired": token}
Writes OUT_DIR/direct.f32 and OUT_DIR/attribution.f32 ([layers, d_mlp], row-major) and OUT_DIR/reference.json
({"wrong", "gap"}). Direct effect: a * (W_down^T g) with g the gradient of logit_d - logit_w with respect to the
final residual at the last position (through the final norm and lm_head only). Attribution: a * d(gap)/da.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

model_dir, input_path, out = sys.argv[1:4]
with open(input_path) as f:
    request = json.load(f)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
layers = model.model.layers
activations = {}


def keep(index):
    def hook(module, args):
        args[0].retain_grad()
        activations[index] = args[0]

    return hook


for index, layer in enumerate(layers):
    layer.mlp.down_proj.register_forward_pre_hook(keep(index))
final = {}
model.model.norm.register_forward_pre_hook(lambda module, args: final.__setitem__("x", args[0]))

desired = request["desired"]
logits = model(torch.tensor([request["ids"]])).logits[0, -1]
others = logits.detach().clone()
others[desired] = float("-inf")
wrong = int(others.argmax())
gap = logits[desired] - logits[wrong]
gap.backward()
attribution = torch.stack([activations[l][0, -1] * activations[l].grad[0, -1] for l in range(len(layers))])

x = final["x"][0, -1].detach().requires_grad_(True)
head = model.lm_head(model.model.norm(x))
(head[desired] - head[wrong]).backward()
direct = torch.stack(
    [activations[l][0, -1].detach() * (layers[l].mlp.down_proj.weight.detach().T @ x.grad) for l in range(len(layers))]
)
direct.numpy().astype("float32").tofile(os.path.join(out, "direct.f32"))
attribution.detach().numpy().astype("float32").tofile(os.path.join(out, "attribution.f32"))
with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump({"wrong": wrong, "gap": float(gap)}, f)
