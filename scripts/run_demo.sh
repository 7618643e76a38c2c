#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on an existing build: inspects the default models and tokenizes a text with each.
# (Grows into the multi-model Engine demo as the Engine lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/cpu/bin/polyinfer
shared=${POLYINFER_SHARED_DIR:-../shared}
text=${1:-"Hello, world! polyinfer serves many models from one process: 12 + 30 = 42."}

models=()
for m in models/*.gguf "$shared"/fixtures/models/tiny-llama "$shared"/fixtures/models/tiny-llama/gguf/tiny-llama-q8_0.gguf \
         "$shared"/fixtures/models/tiny-qwen2 "$shared"/fixtures/models/tiny-qwen2/gguf/tiny-qwen2-q4_k_m.gguf \
         "$shared"/fixtures/models/tiny-bert "$shared"/taskmodels/large "$shared"/intent; do
  [[ -e "$m" ]] && models+=("$m")
done
if ((${#models[@]} == 0)); then
  echo "demo: no models found (looked in models/ and $shared)" >&2
  exit 1
fi

for m in "${models[@]}"; do
  echo "=== $m"
  "$bin" inspect "$m" | sed -n '2,9p'
  ids=$("$bin" tokenize "$m" --text "$text" --special)
  echo "tokens:        $(wc -w <<<"$ids") ids: $ids" | cut -c1-160
  echo "round trip:    $("$bin" detokenize "$m" --skip-special $ids)"
done
