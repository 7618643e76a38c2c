#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Sums Nsight Compute's gpu__time_duration per kernel name from `ncu --csv` output: where one
decode step's GPU time goes (scripts/gpu_models.sh --ncu). Usage: ncu_summary.py FILE.csv"""
import csv
import re
import sys
from collections import defaultdict


def short(name):
    name = re.sub(r"\(.*", "", name)           # drop the argument list
    name = re.sub(r"^.*::", "", name.split("<")[0]) + ("<" + name.split("<", 1)[1] if "<" in name else "")
    return name[:60]


def main():
    rows = []
    with open(sys.argv[1], newline="") as f:
        lines = [line for line in f if line.startswith('"')]
    for row in csv.DictReader(lines):
        if row.get("Metric Name") == "gpu__time_duration.sum":
            rows.append((short(row["Kernel Name"]), float(row["Metric Value"].replace(",", ""))))
    total = sum(t for _, t in rows)
    by_name = defaultdict(lambda: [0.0, 0])
    for name, t in rows:
        by_name[name][0] += t
        by_name[name][1] += 1
    print(f"{len(rows)} kernels, {total / 1e3:.1f} us in all")
    for name, (t, n) in sorted(by_name.items(), key=lambda kv: -kv[1][0]):
        print(f"{t / 1e3:9.1f} us {100 * t / total:5.1f}%  {n:4d} x {t / n / 1e3:7.2f} us  {name}")


if __name__ == "__main__":
    main()
