#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Cost/accuracy of Engine policy settings: runs `polyinfer workload` per setting, writes JSON + SVG.
"""Usage: python3 scripts/plot_cost_accuracy.py [--limit N] [--binary PATH] [--trace PATH]

Runs `polyinfer workload --config C --trace TRACE --json --fast` for the baseline, always-small,
always-medium, always-large (q8_0), the cascade at several thresholds, the router config and the
cascade without cache (variants of examples/configs/taskmodels.json written to a temporary folder
with absolute model paths), then writes docs/cost_accuracy.json and docs/cost_accuracy.svg
(x: device seconds relative to the baseline, log scale; y: accuracy). Standard library only.
"""

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "examples", "configs")
THRESHOLDS = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99]


def absolute_paths(config, folder):
    config = copy.deepcopy(config)
    for model in config.get("models", []):
        model["path"] = os.path.normpath(os.path.join(folder, model["path"]))
    return config


def settings():
    """(name, description, config dict or path) of every setting, baseline first."""
    with open(os.path.join(CONFIGS, "taskmodels.json")) as f:
        cascade = absolute_paths(json.load(f), CONFIGS)
    out = [("baseline", "taskmodels-baseline.json: always large, native, no cache, one at a time",
            os.path.join(CONFIGS, "taskmodels-baseline.json"))]
    for model in ("small", "medium", "large"):
        c = copy.deepcopy(cascade)
        c["routing"] = {"policy": "rules", "rules": [{"model": model}]}
        out.append((f"always-{model}", f"rules: always {model}/q8_0, cache, batching", c))
    for t in THRESHOLDS:
        c = copy.deepcopy(cascade)
        c["routing"]["threshold"] = t
        out.append((f"cascade {t:g}", f"cascade small>medium>large at threshold {t:g}", c))
    out.append(("router", "taskmodels-router.json: router classifier + cascade at 0.9",
                os.path.join(CONFIGS, "taskmodels-router.json")))
    c = copy.deepcopy(cascade)
    c["cache"] = {"enabled": False}
    out.append(("cascade 0.9 no cache", "taskmodels.json with the cache off", c))
    return out


def run(binary, config_path, trace, limit):
    cmd = [binary, "workload", "--config", config_path, "--trace", trace, "--json", "--fast"]
    if limit:
        cmd += ["--limit", str(limit)]
    start = time.monotonic()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1]), time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# SVG drawing (by hand).

W, H = 1060, 620
PLOT = (80, 60, 640, 520)  # left, top, right, bottom
COLORS = {"baseline": "#d62728", "always": "#7f7f7f", "cascade": "#1f77b4", "router": "#2ca02c",
          "cascade 0.9 no cache": "#9467bd"}


def esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def color(name):
    if name in COLORS:
        return COLORS[name]
    for key, value in COLORS.items():
        if name.startswith(key):
            return value
    return "#000000"


def draw(points, title, subtitle):
    left, top, right, bottom = PLOT
    xs = [p["relative_device_s"] for p in points]
    ys = [p["accuracy"] for p in points]
    x_lo = 10 ** math.floor(math.log10(min(xs + [0.2]) * 0.8))
    x_hi = 10 ** math.ceil(math.log10(max(xs + [1.0]) * 1.25))
    baseline_acc = points[0]["accuracy"]
    y_lo = math.floor(min(ys + [baseline_acc - 0.01]) * 100 - 1) / 100
    y_hi = 1.0 + (1.0 - y_lo) * 0.04

    def px(x):
        return left + (math.log10(x) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo)) * (
            right - left)

    def py(y):
        return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top)

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">'
         f'{esc(title)}</text>',
         f'<text x="{W / 2}" y="42" text-anchor="middle" fill="#555">{esc(subtitle)}</text>']
    # Target region: ≥ 80 % cheaper and within 1 point of the baseline.
    tx, ty = px(0.2), py(baseline_acc - 0.01)
    s.append(f'<rect x="{left}" y="{top}" width="{tx - left:.1f}" height="{ty - top:.1f}" '
             f'fill="#2ca02c" fill-opacity="0.07"/>')
    # Grid and ticks.
    decade = x_lo
    while decade <= x_hi * 1.0001:
        for m in range(1, 10):
            x = decade * m
            if x < x_lo * 0.9999 or x > x_hi * 1.0001:
                continue
            X = px(x)
            s.append(f'<line x1="{X:.1f}" y1="{top}" x2="{X:.1f}" y2="{bottom}" stroke="#eee"/>')
            if m in (1, 2, 5):
                s.append(f'<text x="{X:.1f}" y="{bottom + 16}" text-anchor="middle">{x:g}</text>')
        decade *= 10
    step = 0.01 if y_hi - y_lo <= 0.12 else 0.05
    y = math.ceil(y_lo / step) * step
    while y <= y_hi + 1e-9:
        Y = py(y)
        s.append(f'<line x1="{left}" y1="{Y:.1f}" x2="{right}" y2="{Y:.1f}" stroke="#eee"/>')
        s.append(f'<text x="{left - 6}" y="{Y + 4:.1f}" text-anchor="end">{100 * y:.0f} %</text>')
        y += step
    s.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
             f'fill="none" stroke="#333"/>')
    s.append(f'<text x="{(left + right) / 2}" y="{bottom + 36}" text-anchor="middle">'
             f'device-seconds cost relative to the baseline (log scale)</text>')
    s.append(f'<text x="20" y="{(top + bottom) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 20 {(top + bottom) / 2})">accuracy (exact match)</text>')
    # Reference lines.
    s.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" stroke="#d62728" '
             f'stroke-dasharray="6 4"/>')
    s.append(f'<text x="{right - 4}" y="{ty - 5:.1f}" text-anchor="end" fill="#d62728">'
             f'baseline − 1 point ({100 * (baseline_acc - 0.01):.1f} %)</text>')
    s.append(f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{bottom}" stroke="#2ca02c" '
             f'stroke-dasharray="6 4"/>')
    s.append(f'<text x="{tx + 4:.1f}" y="{bottom - 8}" fill="#2ca02c">'
             f'80 % lower cost (0.2×)</text>')
    # Points with labels placed to avoid overlaps.
    boxes = []
    offsets = [(8, -6), (8, 14), (-8, -6), (-8, 14), (8, -20), (8, 28), (-8, -20), (-8, 28),
               (8, -34), (8, 42), (-8, -34), (-8, 42)]
    for p in points:
        X, Y = px(p["relative_device_s"]), py(p["accuracy"])
        s.append(f'<circle cx="{X:.1f}" cy="{Y:.1f}" r="5" fill="{color(p["name"])}" '
                 f'stroke="white"/>')
        boxes.append((X - 5, Y - 5, X + 5, Y + 5))
    for p in points:
        X, Y = px(p["relative_device_s"]), py(p["accuracy"])
        label = p["name"]
        width = 6.8 * len(label)
        chosen = None
        for dx, dy in offsets:
            x0 = X + dx if dx > 0 else X + dx - width
            box = (x0, Y + dy - 11, x0 + width, Y + dy + 3)
            if box[0] < left or box[2] > right or box[1] < top or box[3] > bottom:
                continue
            if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]
                   for b in boxes):
                chosen = (dx, dy, box)
                break
        if chosen is None:
            chosen = (8, -6, (X + 8, Y - 17, X + 8 + width, Y - 3))
        dx, dy, box = chosen
        boxes.append(box)
        anchor = "start" if dx > 0 else "end"
        if abs(dy) > 14:  # a leader line ties a far label to its point
            ly = box[3] if dy < 0 else box[1]
            s.append(f'<line x1="{X:.1f}" y1="{Y:.1f}" x2="{X + dx:.1f}" y2="{ly:.1f}" '
                     f'stroke="{color(p["name"])}" stroke-width="0.6"/>')
        s.append(f'<text x="{X + dx:.1f}" y="{Y + dy:.1f}" text-anchor="{anchor}" '
                 f'fill="{color(p["name"])}">{esc(label)}</text>')
    # Table of the numbers.
    tx0, ty0 = right + 20, top + 4
    s.append(f'<text x="{tx0}" y="{ty0}" font-weight="bold">setting</text>')
    for col, head in ((150, "acc."), (215, "dev-s ×"), (280, "units ×")):
        s.append(f'<text x="{tx0 + col + 40}" y="{ty0}" text-anchor="end" '
                 f'font-weight="bold">{head}</text>')
    for i, p in enumerate(points):
        yy = ty0 + 20 * (i + 1)
        s.append(f'<text x="{tx0}" y="{yy}" fill="{color(p["name"])}">{esc(p["name"])}</text>')
        cells = (f'{100 * p["accuracy"]:.1f} %', f'{p["relative_device_s"]:.3f}',
                 f'{p["relative_units"]:.3f}')
        for col, cell in zip((150, 215, 280), cells):
            s.append(f'<text x="{tx0 + col + 40}" y="{yy}" text-anchor="end">{cell}</text>')
    s.append("</svg>")
    return "\n".join(s) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "cpu", "bin", "polyinfer"))
    parser.add_argument("--trace", default=os.path.join(ROOT, "..", "shared", "taskmodels",
                                                        "workload-dev.jsonl"))
    parser.add_argument("--limit", type=int, default=0, help="first N requests of the trace")
    parser.add_argument("--json-out", default=os.path.join(ROOT, "docs", "cost_accuracy.json"))
    parser.add_argument("--svg-out", default=os.path.join(ROOT, "docs", "cost_accuracy.svg"))
    args = parser.parse_args()
    trace = os.path.normpath(os.path.abspath(args.trace))

    points = []
    with tempfile.TemporaryDirectory(prefix="polyinfer-cost-") as tmp:
        for i, (name, description, config) in enumerate(settings()):
            if isinstance(config, dict):
                path = os.path.join(tmp, f"setting{i}.json")
                with open(path, "w") as f:
                    json.dump(config, f, indent=1)
            else:
                path = config
            result, seconds = run(args.binary, path, trace, args.limit)
            point = {
                "name": name,
                "description": description,
                "accuracy": result["accuracy"],
                "cost_device_s": result["cost_device_s"],
                "cost_units": result["cost_units"],
                "cache_hit_rate": result["cache_hit_rate"],
                "escalations": result.get("escalations", 0),
                "errors": result["errors"],
                "requests": result["requests"],
                "shares": result["shares"],
                "latency_ms": result["latency_ms"],
                "run_wall_s": round(seconds, 2),
            }
            points.append(point)
            print(f"{name:24s} acc {100 * point['accuracy']:6.2f} %"
                  f"  device {point['cost_device_s']:.3f} s"
                  f"  units {point['cost_units']:9.1f}  hits {100 * point['cache_hit_rate']:5.1f} %"
                  f"  ({seconds:.1f} s)", flush=True)
    base = points[0]
    for p in points:
        p["relative_device_s"] = p["cost_device_s"] / base["cost_device_s"]
        p["relative_units"] = p["cost_units"] / base["cost_units"]
        p["meets_target"] = (p["relative_device_s"] <= 0.2
                             and p["accuracy"] >= base["accuracy"] - 0.01)

    n = points[0]["requests"]
    command = ("build/cpu/bin/polyinfer workload --config C --trace "
               "../shared/taskmodels/workload-dev.jsonl --json --fast"
               + (f" --limit {args.limit}" if args.limit else ""))
    out = {"trace": os.path.relpath(trace, ROOT), "requests": n, "limit": args.limit or None,
           "mode": "fast", "command": command, "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
           "settings": points}
    with open(args.json_out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    limit_note = f" (first {args.limit} requests, --limit)" if args.limit else ""
    title = f"Engine policies: cost vs accuracy, workload-dev.jsonl, {n} requests{limit_note}"
    subtitle = ("polyinfer workload --fast; cost = Σ device seconds; the shaded corner meets "
                "issue 5's target")
    with open(args.svg_out, "w") as f:
        f.write(draw(points, title, subtitle))
    print(f"wrote {os.path.relpath(args.json_out, ROOT)} and {os.path.relpath(args.svg_out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
