"""Gathers the GPU check's rows into one summary file.

usage: gpu_summary.py OUT_DIR STATUS SECONDS
Reads OUT_DIR/rows.jsonl (one JSON row per figure the CUDA tests recorded) and writes OUT_DIR/summary.json with the
device, the tests' exit status, the seconds taken and the rows; prints a short table.
"""
import json
import os
import sys

import torch

out, status, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows_path = os.path.join(out, "rows.jsonl")
rows = []
if os.path.exists(rows_path):
    with open(rows_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
summary = {"device": device, "tests_exit_status": status, "passed": status == 0, "seconds": seconds, "rows": rows}
tmp = os.path.join(out, ".summary.json.tmp")
with open(tmp, "w") as f:
    json.dump(summary, f, indent=1)
os.replace(tmp, os.path.join(out, "summary.json"))
print(f"GPU check on {device}: {'passed' if status == 0 else f'FAILED (exit {status})'} in {seconds} s, "
      f"{len(rows)} rows in {os.path.join(out, 'summary.json')}")
for row in rows:
    print(" ", json.dumps(row))
