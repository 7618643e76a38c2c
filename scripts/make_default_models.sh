#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates models/*.gguf, the demo's default models, from ../shared with the built CLI.
#
#   scripts/make_default_models.sh [OUT_DIR]      (default: models/)
#
# Environment: POLYINFER_SHARED_DIR (default ../shared), POLYINFER_CLI (default
# build/cpu/bin/polyinfer). The conversion is deterministic: the same inputs give the same bytes,
# whatever the thread count; the sha256 sums printed at the end are those in models/README.md.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${POLYINFER_SHARED_DIR:-$root/../shared}"
cli="${POLYINFER_CLI:-$root/build/cpu/bin/polyinfer}"
out="${1:-$root/models}"

if [[ ! -x "$cli" ]]; then
  echo "make_default_models: no CLI at $cli; build it first:" >&2
  echo "  flock /tmp/polyinfer-build.lock cmake --build build/cpu --target polyinfer_cli" >&2
  exit 1
fi
for folder in taskmodels/small taskmodels/medium taskmodels/large taskmodels/router intent; do
  if [[ ! -f "$shared/$folder/config.json" ]]; then
    echo "make_default_models: missing $shared/$folder (set POLYINFER_SHARED_DIR)" >&2
    exit 1
  fi
done
mkdir -p "$out"

convert() {  # FOLDER NAME OUTPUT
  "$cli" convert "$shared/$1" --type q8_0 --name "$2" --out "$out/$3"
}
convert taskmodels/small taskmodels-small taskmodels-small-q8_0.gguf
convert taskmodels/medium taskmodels-medium taskmodels-medium-q8_0.gguf
convert taskmodels/large taskmodels-large taskmodels-large-q8_0.gguf
convert taskmodels/router router router-q8_0.gguf
convert intent intent intent-q8_0.gguf

(cd "$out" && sha256sum taskmodels-small-q8_0.gguf taskmodels-medium-q8_0.gguf \
  taskmodels-large-q8_0.gguf router-q8_0.gguf intent-q8_0.gguf)
