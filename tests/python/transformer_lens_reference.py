"""TransformerLens's activations of the texts in a workbench activations file, by the same hook names.

usage: transformer_lens_reference.py MODEL_DIR ACTS.safetensors
TransformerLens's TransformerBridge (without its compatibility mode, which changes the weights) runs the Hugging Face
folder on each text's token ids; every tensor of the file is compared with the bridge's cache entry of the same name
(the file's `embed` is the bridge's `hook_embed`, and its `ln_final.hook_normalized` the bridge's `ln_final.hook_out`:
for RMSNorm, TransformerLens's `hook_normalized` is taken before the norm's weight). Prints JSON: the names the bridge's cache lacks, and per name the
largest |difference| over the largest |value|.
"""
import json
import sys

import numpy as np
import torch
from safetensors.numpy import load_file
from transformer_lens.model_bridge import TransformerBridge

model_dir, acts_path = sys.argv[1:3]
torch.set_num_threads(2)
bridge = TransformerBridge.boot_transformers(model_dir, device="cpu", dtype=torch.float32)
ours = load_file(acts_path)
names = [n for n in ours if n not in ("tokens", "text_index")]
# TransformerLens's RMSNorm records `hook_normalized` before multiplying by the norm's weight; the workbench's
# ln_final.hook_normalized is the norm's output (what the unembedding reads), which the bridge records as `hook_out`.
KEYS = {"embed": "hook_embed", "ln_final.hook_normalized": "ln_final.hook_out"}
missing, diffs = set(), {}
with torch.no_grad():
    for t in np.unique(ours["text_index"]):
        rows = ours["text_index"] == t
        _, cache = bridge.run_with_cache(torch.tensor([ours["tokens"][rows]]))
        for name in names:
            key = KEYS.get(name, name)
            if key not in cache:
                missing.add(name)
                continue
            theirs = cache[key][0].float().numpy()
            diff = float(np.abs(ours[name][rows] - theirs).max()) / float(np.abs(theirs).max())
            diffs[name] = max(diffs.get(name, 0.0), diff)
print(json.dumps({"missing": sorted(missing), "diffs": diffs}))
