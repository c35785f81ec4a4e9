"""Times Hugging Face transformers on a Hugging Face folder, as the large-model benchmark times the workbench.

usage: bench_large_hf.py MODEL_DIR INPUT.json
INPUT.json: {"prompt": [ids], "new_tokens": N, "threads": T, "repeats": R, "dtype": "f32" | "bf16"}
Prints JSON: seconds to load, peak resident bytes of this process after loading, tokens/s of greedy generation,
and tokens/s of a forward pass over the prompt that returns every hidden state (transformers' run_with_cache).
"""
import json
import resource
import statistics
import sys
import time

import torch
from transformers import AutoModelForCausalLM

model_dir, input_path = sys.argv[1:3]
with open(input_path) as f:
    request = json.load(f)
torch.set_num_threads(request["threads"])
dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[request["dtype"]]


def median_seconds(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


with torch.inference_mode():
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    load_seconds = time.perf_counter() - start
    peak_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    prompt = torch.tensor([request["prompt"]])
    n = request["new_tokens"]

    def generate():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                             max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
        assert out.shape[1] - prompt.shape[1] == n

    generation = n / median_seconds(generate, request["repeats"])
    cache = prompt.shape[1] / median_seconds(lambda: model(prompt, output_hidden_states=True), request["repeats"])
print(json.dumps({"load_seconds": load_seconds, "peak_rss_after_load": peak_after_load,
                  "generation_tokens_per_s": generation, "cache_tokens_per_s": cache}))
