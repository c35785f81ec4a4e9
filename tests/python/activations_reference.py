"""transformers' activations of the texts in a workbench activations file, read with the `safetensors` package.

usage: activations_reference.py MODEL.gguf ACTS_F32.safetensors ACTS_F16.safetensors
Prints JSON: the files' tensor names and dtypes, the texts of the metadata, and the largest |difference| between the
file and transformers (hidden_states[l + 1] for blocks.l.hook_resid_post below the last block, the last hidden state
for ln_final.hook_normalized, the down projection's input for blocks.3.mlp.hook_post), each over the largest |value|.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

model_path, f32_path, f16_path = sys.argv[1:4]
torch.set_num_threads(2)
model = AutoModelForCausalLM.from_pretrained(
    os.path.dirname(model_path), gguf_file=os.path.basename(model_path), dtype=torch.float32
).eval()
ours, half = load_file(f32_path), load_file(f16_path)
with safe_open(f32_path, "np") as f:
    texts = json.loads(f.metadata()["texts"])
layers = model.config.num_hidden_layers
captured = {}
model.model.layers[3].mlp.down_proj.register_forward_hook(lambda m, args, out: captured.__setitem__("post", args[0]))
diffs = {}


def compare(name, theirs):
    value = ours[name][rows]
    scale = float(np.abs(theirs).max())
    diffs[name] = max(diffs.get(name, 0.0), float(np.abs(value - theirs).max()) / scale)


with torch.no_grad():
    for t in range(len(texts)):
        rows = ours["text_index"] == t
        ids = torch.tensor([ours["tokens"][rows]])
        hidden = model(ids, output_hidden_states=True).hidden_states
        for l in range(layers - 1):
            compare(f"blocks.{l}.hook_resid_post", hidden[l + 1][0].numpy())
        compare("ln_final.hook_normalized", hidden[-1][0].numpy())
        compare("blocks.3.mlp.hook_post", captured["post"][0].numpy())
half_error = max(
    float(np.abs(half[k].astype(np.float32) - ours[k]).max() / np.abs(ours[k]).max()) for k in ours if k.startswith("blocks")
)
print(json.dumps({
    "names": sorted(ours), "dtypes": {k: str(v.dtype) for k, v in half.items()}, "texts": texts,
    "tokens": int(ours["tokens"].shape[0]), "diffs": diffs, "half_error": half_error,
}))
