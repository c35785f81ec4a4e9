"""GGUF files with a SentencePiece-style vocabulary (`tokenizer.ggml.model = "llama"`), and transformers' ids for texts.

usage: spm_gguf.py ARCH TEXTS.json OUT_DIR
ARCH is llama, gemma2 or phi3 (transformers builds each one's tokenizer its own way). A BPE vocabulary of 1,259 tokens (256 of them bytes) is
trained by the `tokenizers` package on CPython files with SentencePiece's conventions (`▁` for a space, prefixed to the
text, byte fallback), and written as llama.cpp writes such vocabularies: tokens, scores (the merge rank, negated),
token types (control for <s> and </s>, unknown, byte tokens `<0x00>`..`<0xFF>`, normal), no merges. For Gemma the
file also spells tokens of spaces alone with real spaces, as Gemma files do. Writes OUT_DIR/vocab.gguf and
OUT_DIR/reference.json: transformers' ids (AutoTokenizer from the GGUF) and decoded text of each text of TEXTS.json,
and whether it adds BOS.
"""
import glob
import json
import os
import sys

import gguf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

arch, texts_path, out = sys.argv[1:4]
texts = json.load(open(texts_path))
os.makedirs(out, exist_ok=True)
stdlib = sorted(glob.glob(os.path.join(os.environ["WORKBENCH_DATA"], "cpython-stdlib", "*.py")))[:40]

bpe = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
bpe.train(stdlib, trainer)
model = json.loads(bpe.to_str())["model"]
vocab, merges = model["vocab"], model["merges"]
rank = {"".join(m if isinstance(m, list) else m.split(" ")): i for i, m in enumerate(merges)}
specials = ["<unk>", "<s>", "</s>"]
byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
tokens = specials + byte_tokens + [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in specials]
# Two spaces as one token, written as Gemma files write such tokens.
if arch == "gemma2":
    tokens = [("  " if t == "\u2581\u2581" else t) for t in tokens]
    if "  " not in tokens:
        tokens.append("  ")
scores, types = [], []
for t in tokens:
    key = "\u2581\u2581" if t == "  " else t
    if t in ("<s>", "</s>"):
        types.append(gguf.TokenType.CONTROL)
        scores.append(0.0)
    elif t == "<unk>":
        types.append(gguf.TokenType.UNKNOWN)
        scores.append(0.0)
    elif t.startswith("<0x") and t.endswith(">") and len(t) == 6:
        types.append(gguf.TokenType.BYTE)
        scores.append(0.0)
    else:
        types.append(gguf.TokenType.NORMAL)
        scores.append(-float(rank.get(key, len(merges))))

w = gguf.GGUFWriter(os.path.join(out, "vocab.gguf"), arch)
w.add_tokenizer_model("llama")
w.add_tokenizer_pre("default")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(tokens.index("<s>"))
w.add_eos_token_id(tokens.index("</s>"))
w.add_unk_token_id(tokens.index("<unk>"))
w.add_add_bos_token(True)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

tok = AutoTokenizer.from_pretrained(out, gguf_file="vocab.gguf")
reference = {"tokens": len(tokens), "texts": []}
for text in texts:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    reference["texts"].append({"text": text, "ids": ids, "decoded": tok.decode(ids),
                               "with_bos": tok(text)["input_ids"]})
json.dump(reference, open(os.path.join(out, "reference.json"), "w"))
