"""transformers' loss on the same token ids, as the reference for the workbench's perplexity.

usage: perplexity_reference.py MODEL.gguf INPUT.json
INPUT.json: {"documents": [[ids], ...]}. Prints JSON {"nll": total negative log-likelihood, "tokens": n, "hits": n}.
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

path, request = sys.argv[1], json.load(open(sys.argv[2]))
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
nll, tokens, hits = 0.0, 0, 0
with torch.no_grad():
    for ids in request["documents"]:
        ids = torch.tensor([ids])
        logits = model(ids).logits[0, :-1]
        target = ids[0, 1:]
        nll += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        tokens += len(target)
        hits += int((logits.argmax(-1) == target).sum())
print(json.dumps({"nll": nll, "tokens": tokens, "hits": hits}))
