"""Times Hugging Face transformers on the same model, inputs and thread count as the Rust runtime benchmark.

usage: bench_hf.py MODEL.gguf INPUT.json
INPUT.json: {"batch": [[ids] x 8], "prompt": [ids], "new_tokens": N, "threads": T, "repeats": R, "device": D}
(D is "cpu", the default, or "cuda:N")
Prints JSON: median seconds for the batched forward and tokens/s of greedy generation in f32 and bf16.
"""
import json
import os
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM

model_path, input_path = sys.argv[1:3]
with open(input_path) as f:
    request = json.load(f)
torch.set_num_threads(request["threads"])
device = torch.device(request.get("device", "cpu"))


def load(dtype):
    return AutoModelForCausalLM.from_pretrained(
        os.path.dirname(model_path), gguf_file=os.path.basename(model_path), dtype=dtype
    ).eval().to(device)


def finish():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn, repeats):
    fn()  # warm-up
    finish()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        finish()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def generation_rate(model, repeats):
    prompt = torch.tensor([request["prompt"]], device=device)
    n = request["new_tokens"]

    def run():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=n, min_new_tokens=n, pad_token_id=model.config.eos_token_id)
        assert out.shape[1] - prompt.shape[1] == n

    return n / median_seconds(run, repeats)


result = {}
with torch.inference_mode():
    model = load(torch.float32)
    batch = torch.tensor(request["batch"], device=device)
    result["forward_seconds"] = median_seconds(lambda: model(batch), request["repeats"])
    result["generation_tokens_per_s"] = generation_rate(model, request["repeats"])
    del model
    result["bf16_generation_tokens_per_s"] = generation_rate(load(torch.bfloat16), request["repeats"])
print(json.dumps(result))
