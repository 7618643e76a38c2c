#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The demo on an existing build: the example programs over models/, then a short workload replay.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/cpu/bin
shared=${POLYINFER_SHARED_DIR:-../shared}
config=examples/configs/demo.json

for exe in financial_pipeline cascade semantic_cache polyinfer; do
  if [[ ! -x "$bin/$exe" ]]; then
    echo "run_demo: $bin/$exe missing; build first:" >&2
    echo "  cmake --build build/cpu --target financial_pipeline cascade semantic_cache polyinfer_cli" >&2
    exit 1
  fi
done

start_ms=$(($(date +%s%N) / 1000000))
echo "=== 1. financial pipeline: intent → arithmetic task models (cascade + ensemble)"
"$bin/financial_pipeline" "$config"
echo
echo "=== 2. cascade vs always-large"
"$bin/cascade" "$config"
echo
echo "=== 3. exact and semantic cache"
"$bin/semantic_cache" "$config"

trace="$shared/taskmodels/workload-dev.jsonl"
if [[ -f "$trace" && -d "$shared/taskmodels/large" ]]; then
  for c in taskmodels taskmodels-baseline; do
    echo
    echo "=== 4. workload replay (300 requests, --fast): examples/configs/$c.json"
    "$bin/polyinfer" workload --config "examples/configs/$c.json" --trace "$trace" --limit 300 --fast
  done
else
  echo
  echo "=== 4. workload replay skipped: $trace not found (the examples above need only models/)"
fi
echo
elapsed_ms=$(($(date +%s%N) / 1000000 - start_ms))
echo "demo done in $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000))) s"
