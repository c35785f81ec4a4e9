"""Reference values for the GGUF reader, computed with the Python `gguf` package.

usage: gguf_reference.py MODEL.gguf OUT_DIR

Writes into OUT_DIR:
  * synthetic.gguf: every metadata value type, a custom alignment, and one tensor of each of F32, F16, BF16,
    Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (a real SmolLM2 weight slice quantized by gguf.quants) and Q2_K, Q3_K, Q4_K,
    Q5_K, Q6_K, IQ4_NL, IQ4_XS (random blocks with sane scales: gguf-py cannot quantize these);
  * <name>.f32: gguf.quants.dequantize of each synthetic tensor and of real tensors of MODEL.gguf;
  * manifest.json: expected metadata and tensor shapes.
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import quants

model_path, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
reader = gguf.GGUFReader(model_path)
by_name = {t.name: t for t in reader.tensors}


def dequantized(t):
    return quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)


manifest = {"real": [], "synthetic": [], "metadata": []}
for name in ["token_embd.weight", "blk.0.ffn_down.weight", "blk.7.attn_q.weight", "blk.29.ffn_norm.weight"]:
    t = by_name[name]
    dequantized(t).tofile(os.path.join(out, f"real-{name}.f32"))
    manifest["real"].append({"name": name, "type": t.tensor_type.name, "shape": [int(d) for d in reversed(t.shape)]})

# A real weight slice [32, 1536] to quantize.
source = dequantized(by_name["blk.0.ffn_down.weight"]).reshape(576, 1536)[:32].copy()
rng = np.random.default_rng(1234)

writer = gguf.GGUFWriter(os.path.join(out, "synthetic.gguf"), arch="llama")
writer.data_alignment = 64
writer.add_custom_alignment(64)
metadata = [
    ("test.u8", "U8", 200, writer.add_uint8),
    ("test.i8", "I8", -100, writer.add_int8),
    ("test.u16", "U16", 60000, writer.add_uint16),
    ("test.i16", "I16", -30000, writer.add_int16),
    ("test.u32", "U32", 4000000000, writer.add_uint32),
    ("test.i32", "I32", -2000000000, writer.add_int32),
    ("test.f32", "F32", 0.15625, writer.add_float32),
    ("test.bool", "Bool", True, writer.add_bool),
    ("test.string", "String", "héllo ✓", writer.add_string),
    ("test.u64", "U64", 2**62 + 3, writer.add_uint64),
    ("test.i64", "I64", -(2**62) - 5, writer.add_int64),
    ("test.f64", "F64", -2.5e-300, writer.add_float64),
]
for key, kind, value, add in metadata:
    add(key, value)
    manifest["metadata"].append({"key": key, "type": kind, "value": value})
writer.add_array("test.array_str", ["a", "bc", ""])
writer.add_array("test.array_i32", [1, -2, 3])
manifest["metadata"].append({"key": "test.array_str", "type": "Array", "value": ["a", "bc", ""]})
manifest["metadata"].append({"key": "test.array_i32", "type": "Array", "value": [1, -2, 3]})


# Where each randomly filled type keeps its f16 scales (and minimums), which are set to sane values.
SCALE_BYTES = {Q.Q2_K: (80, 84), Q.Q3_K: (108, 110), Q.Q4_K: (0, 4), Q.Q5_K: (0, 4), Q.Q6_K: (208, 210),
               Q.IQ4_NL: (0, 2), Q.IQ4_XS: (0, 2)}


def random_blocks(kind, rows, cols):
    block_values, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    blocks = rng.integers(0, 256, size=(rows * cols // block_values, block_bytes), dtype=np.uint8)
    start, end = SCALE_BYTES[kind]
    scales = rng.uniform(0.001, 0.05, size=(blocks.shape[0], (end - start) // 2)).astype(np.float16)
    blocks[:, start:end] = scales.view(np.uint8)
    return blocks.reshape(rows, -1)


for kind in [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K,
             Q.IQ4_NL, Q.IQ4_XS]:
    name = f"t.{kind.name.lower()}"
    if kind == Q.F32:
        data = source
    elif kind in SCALE_BYTES:
        data = random_blocks(kind, *source.shape)
    else:
        data = quants.quantize(source, kind)
    if kind == Q.F32:
        writer.add_tensor(name, data)
    else:
        writer.add_tensor(name, data, raw_dtype=kind)
    values = quants.dequantize(data, kind).astype(np.float32).reshape(-1) if kind != Q.F32 else data.reshape(-1)
    values.tofile(os.path.join(out, f"{name}.f32"))
    manifest["synthetic"].append({"name": name, "type": kind.name, "shape": list(source.shape)})

writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()

# The Python reader's own view of the synthetic file, as a second check on our reader.
check = gguf.GGUFReader(os.path.join(out, "synthetic.gguf"))
manifest["python_reader_tensor_offsets"] = {t.name: int(t.data_offset) for t in check.tensors}
with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(manifest, f)
