"""Token ids from transformers.AutoTokenizer loaded from the same GGUF file.

usage: tokenizer_reference.py MODEL.gguf INPUT.json OUTPUT.json
INPUT.json: {"texts": [...], "chat": [[{"role":..., "content":...}, ...], ...]}
OUTPUT.json: {"ids": [[...]], "chat_text": [...], "chat_ids": [[...]], "plain_gguf_disagreements": N}

transformers' GGUF loader has no entry for the file's pre-tokenizer "smollm" and falls back to plain GPT-2
splitting; the model itself was trained with SmolLM2's tokenizer.json, whose pre-tokenizer is
Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)] (llama.cpp's
"smollm" is the same). We set that pre-tokenizer on the AutoTokenizer and also count how many texts the
unpatched GGUF tokenizer would tokenize differently.
"""
import json
import os
import sys

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

model_path, input_path, output_path = sys.argv[1:4]
with open(input_path) as f:
    request = json.load(f)

tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(model_path), gguf_file=os.path.basename(model_path))
plain = [tokenizer(text, add_special_tokens=True)["input_ids"] for text in request["texts"]]
tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
    [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
)
ids = [tokenizer(text, add_special_tokens=True)["input_ids"] for text in request["texts"]]
chat_text = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in request["chat"]]
chat_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in chat_text]
decoded = [tokenizer.decode(i, skip_special_tokens=False) for i in ids]
with open(output_path, "w") as f:
    json.dump({
        "ids": ids,
        "decoded": decoded,
        "chat_text": chat_text,
        "chat_ids": chat_ids,
        "plain_gguf_disagreements": sum(a != b for a, b in zip(plain, ids)),
    }, f)
