"""The README's fuzzing table, from the logs of the last `./x fuzz` run of each target.

usage: fuzz_report.py LOG_DIR REGRESSIONS_DIR TARGET...

For each target: executions, executions per second, coverage (libFuzzer's `cov`: edges of the instrumented code
reached, and `ft`: features), corpus size, and the crashes that became regression inputs (fuzz/regressions/TARGET).
A target whose last run crashed says so.
"""
import os
import re
import sys

log_dir, regressions, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
print("| target | executions | exec/s | edges (cov) | features (ft) | corpus | crashes found and fixed | last run |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for target in targets:
    path = os.path.join(log_dir, f"{target}.log")
    fixed_dir = os.path.join(regressions, target)
    fixed = len(os.listdir(fixed_dir)) if os.path.isdir(fixed_dir) else 0
    if not os.path.exists(path):
        print(f"| {target} | not run | | | | | {fixed} | |")
        continue
    text = open(path, errors="replace").read()
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", text, re.M))
    progress = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", text, re.M)
    runs, cov, ft, corp = progress[-1] if progress else ("0", "", "", "")
    executions = int(stats.get("number_of_executed_units", runs))
    crashed = "deadly signal" in text or "ERROR: libFuzzer" in text
    print(f"| {target} | {executions:,} | {int(stats.get('average_exec_per_sec', 0)):,} | {cov} | {ft} | {corp} | "
          f"{fixed} | {'crashed' if crashed else 'no crash'} |")
