"""transformers' greedy generation of the same HumanEval prompts, timed, for the HumanEval benchmark.

usage: bench_humaneval_hf.py MODEL.gguf INPUT.json OUT.json
INPUT.json: {"prompts": [[ids], ...], "max_new_tokens": N, "batch": B, "eos": id, "threads": T}
Writes OUT.json {"seconds": wall time of generation, "generated": [[new ids], ...]} (batches left-padded, as the
workbench does; generation stops at EOS).
"""
import json
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM

path, request = sys.argv[1], json.load(open(sys.argv[2]))
torch.set_num_threads(request["threads"])
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
eos, prompts, generated = request["eos"], request["prompts"], []
start = time.time()
with torch.no_grad():
    for first in range(0, len(prompts), request["batch"]):
        chunk = prompts[first:first + request["batch"]]
        width = max(len(p) for p in chunk)
        ids = torch.tensor([[eos] * (width - len(p)) + p for p in chunk])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
        out = model.generate(ids, attention_mask=mask, max_new_tokens=request["max_new_tokens"], do_sample=False,
                             eos_token_id=eos, pad_token_id=eos)
        for row in out[:, width:].tolist():
            generated.append(row[:row.index(eos)] if eos in row else row)
seconds = time.time() - start
json.dump({"seconds": seconds, "generated": generated}, open(sys.argv[3], "w"))
