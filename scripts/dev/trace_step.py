#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Places a decode step's time from a kernel trace: the CSV scripts/dev/kernel_trace.cpp
writes, or Nsight Systems' (`nsys stats --report cuda_gpu_trace --format csv`, graph nodes
traced); columns "Start (ns)", "Duration (ns)", "Name".

    scripts/dev/trace_step.py trace.csv [--step -5]

Steps are runs of launches separated by idle GPU time of more than --gap-us (the host's work
between forward passes). For the chosen step (default: the fifth from the end, a replayed
graph) it prints the step's wall time and, per kind of launch (the GEMVs named by their place
in the layer: qkv, o, gate_up, down, then output), how often it ran, its summed duration, and its exclusive time: end - max(start, previous end), the part of
the step's critical path no earlier launch covers. With programmatic launch a kernel starts
before its predecessor ends, so durations overlap; exclusive times and the gaps (idle GPU
between one launch's end and the next one's start) add up to the wall time.
"""
import argparse
import csv
import re
import sys
from collections import defaultdict


def short_name(name):
    name = name.replace("(anonymous namespace)::", "").replace("unnamed>::", "")
    name = re.sub(r"^void ", "", name.strip())
    name = re.sub(r"<.*$", "", name)  # template arguments
    name = re.sub(r"\(.*$", "", name)  # arguments
    return name.split("::")[-1].strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--step", type=int, default=-5)
    parser.add_argument("--gap-us", type=float, default=20.0)
    parser.add_argument("--layer-steps", type=int, default=20)
    args = parser.parse_args()
    kernels = []
    with open(args.csv, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        start_key = next((c for c in columns if c.startswith("Start")), None)
        duration_key = next((c for c in columns if c.startswith("Duration")), None)
        if start_key is None or duration_key is None or "Name" not in columns:
            sys.exit(f"trace_step: no Start / Duration / Name columns in {args.csv}: {columns}")
        for row in reader:
            name = row.get("Name", "")
            if "[CUDA mem" in name or not row.get(start_key):
                continue
            start = int(float(row[start_key]))
            end = start + int(float(row[duration_key]))
            kernels.append((start, end, short_name(name)))
    kernels.sort()
    # Steps: runs of launches with no idle GPU time longer than --gap-us between them (the host
    # prepares the next step in such a gap; inside a step the launches overlap or touch).
    bounds = [0]
    reach = kernels[0][1] if kernels else 0
    for i, (start, end, _) in enumerate(kernels[1:], start=1):
        if start - reach > args.gap_us * 1e3:
            bounds.append(i)
        reach = max(reach, end)
    bounds.append(len(kernels))
    steps = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    if len(steps) < 2:
        sys.exit("trace_step: fewer than two steps (idle gaps of --gap-us) in the trace")
    chosen = args.step if -len(steps) <= args.step < len(steps) else -2
    first, last = steps[chosen]
    step = kernels[first:last]
    layers = sum(1 for k in step if k[2].startswith("attention"))
    gemv_names = ["qkv", "o", "gate_up", "down"]
    totals = defaultdict(lambda: [0, 0.0, 0.0])
    gaps = 0.0
    previous_end = step[0][0]
    gemvs = 0
    for start, end, name in step:
        if name.startswith("gemv"):
            label = gemv_names[gemvs % 4] if gemvs < 4 * layers else "output"
            name = f"{name} ({label})"
            gemvs += 1
        exclusive = max(0, end - max(start, previous_end))
        gaps += max(0, start - previous_end)
        entry = totals[name]
        entry[0] += 1
        entry[1] += (end - start) / 1e3
        entry[2] += exclusive / 1e3
        previous_end = max(previous_end, end)
    wall = (previous_end - step[0][0]) / 1e3
    after = f", then {(kernels[last][0] - previous_end) / 1e3:.1f} us to the next step" \
        if last < len(kernels) else ""
    print(f"step {args.step}: {len(step)} launches, {layers} layers, wall {wall:.1f} us, "
          f"idle gaps {gaps / 1e3:.1f} us{after}")
    print(f"{'launch':<44} {'count':>5} {'duration us':>12} {'exclusive us':>13} "
          f"{'excl/call':>10} {'share':>6}")
    for name, (count, duration, exclusive) in sorted(totals.items(), key=lambda e: -e[1][2]):
        print(f"{name[:44]:<44} {count:>5} {duration:>12.1f} {exclusive:>13.1f} "
              f"{exclusive / count:>10.2f} {100 * exclusive / wall:>5.1f}%")
    if layers >= 3:
        print_layer(kernels, steps, chosen, args.layer_steps)


def print_layer(kernels, steps, chosen, count):
    """Per launch of a layer (its place from the qkv GEMV on), averaged over the inner layers of
    the last `count` steps shaped like the chosen one: exclusive time, duration, and how long
    before the previous launch's end it started (programmatic launch: its early work)."""
    size = steps[chosen][1] - steps[chosen][0]
    shaped = [s for s in steps if s[1] - s[0] == size][-count:]
    sums = defaultdict(lambda: [0.0, 0.0, 0.0, 0])
    names = {}
    for first, last in shaped:
        step = kernels[first:last]
        attention = [i for i, k in enumerate(step) if k[2].startswith("attention")]
        period = (attention[-1] - attention[0]) // (len(attention) - 1)
        start = attention[0]
        while start > 0 and not step[start][2].startswith("gemv"):
            start -= 1
        previous_end = step[0][0]
        for i, (begin, end, name) in enumerate(step):
            place = i - start
            layer = place // period if place >= 0 else -1
            if 1 <= layer < len(attention) - 1:
                entry = sums[place % period]
                entry[0] += max(0, end - max(begin, previous_end))
                entry[1] += end - begin
                entry[2] += max(0, previous_end - begin)
                entry[3] += 1
                names[place % period] = name
            previous_end = max(previous_end, end)
    print(f"a layer, averaged over the inner layers of {len(shaped)} steps:")
    print(f"{'place':>5} {'launch':<28} {'exclusive us':>13} {'duration us':>12} "
          f"{'started early by us':>20}")
    for place in sorted(sums):
        e = sums[place]
        print(f"{place:>5} {names[place][:28]:<28} {e[0] / e[3] / 1e3:>13.2f} "
              f"{e[1] / e[3] / 1e3:>12.2f} {e[2] / e[3] / 1e3:>20.2f}")


if __name__ == "__main__":
    main()
