"""Independent references for the probing tasks.

usage: probe_tasks_reference.py INPUT.json
INPUT.json: {"programs": [text, ...], "syntax": {"text": ..., "offsets": [byte, ...]},
             "lens": {"model": MODEL.gguf, "prompts": [[ids], ...]}}
Prints JSON:
- "outputs": what CPython prints for each program (the `>>> ` prompts removed), and for the same program with
  every "+" and "-" swapped (the alternative semantics);
- "syntax": for each byte offset, the category of the token Python's own `tokenize` module puts there;
- "lens": per layer, how many positions' logit-lens top-1 (transformers hidden states -> final norm -> lm_head)
  equal the final top-1 and the true next token.
"""
import contextlib
import io
import json
import keyword
import sys
import tokenize

request = json.load(open(sys.argv[1]))
result = {}


def run(source):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(source, {})
    return int(out.getvalue().strip())


programs = [p.replace(">>> ", "") for p in request.get("programs", [])]
result["outputs"] = [run(p) for p in programs]
result["swapped_outputs"] = [run(p.translate(str.maketrans("+-", "-+"))) for p in programs]

if "syntax" in request:
    text = request["syntax"]["text"]
    data = text.encode()
    line_starts = [0]
    for line in data.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    category = {}
    punctuation = set("()[]{},:.;")
    for tok in tokenize.tokenize(io.BytesIO(data).readline):
        if tok.type in (tokenize.ENCODING, tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NAME:
            name = "keyword" if keyword.iskeyword(tok.string) else "identifier"
        elif tok.type == tokenize.NUMBER:
            name = "number"
        elif tok.type in (tokenize.STRING, getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_MIDDLE", -1), getattr(tokenize, "FSTRING_END", -1)):
            name = "string"
        elif tok.type == tokenize.COMMENT:
            name = "comment"
        elif tok.type == tokenize.OP:
            name = "punctuation" if tok.string in punctuation else "operator"
        else:
            name = "other"
        # tokenize reports (row, column) in characters of decoded lines; convert to byte offsets.
        lines = text.splitlines(keepends=True)
        def byte_at(row, col):
            return line_starts[row - 1] + len(lines[row - 1][:col].encode())
        start, end = byte_at(*tok.start), byte_at(*tok.end)
        for b in range(start, end):
            category[b] = name
    result["syntax"] = [category.get(o, "whitespace" if chr(data[o]).isspace() else "other") for o in request["syntax"]["offsets"]]

if "lens" in request:
    import os
    import torch
    from transformers import AutoModelForCausalLM

    path = request["lens"]["model"]
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
    layers = model.config.num_hidden_layers
    agree, correct = [0] * layers, [0] * layers
    with torch.no_grad():
        for ids in request["lens"]["prompts"]:
            out = model(torch.tensor([ids]), output_hidden_states=True)
            final = out.logits[0, :-1].argmax(-1)
            nxt = torch.tensor(ids[1:])
            for layer in range(layers):
                # hidden_states[layer + 1] is block `layer`'s output; the last entry is already normalised.
                hidden = out.hidden_states[layer + 1][0, :-1]
                if layer < layers - 1:
                    hidden = model.model.norm(hidden)
                top = model.lm_head(hidden).argmax(-1)
                agree[layer] += int((top == final).sum())
                correct[layer] += int((top == nxt).sum())
    result["lens"] = {"agree": agree, "correct": correct}
print(json.dumps(result))
