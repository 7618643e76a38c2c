#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up, builds and runs every test through ctest. With nvcc on PATH the `cuda` preset also
# compiles every CUDA file (their tests skip without a GPU); otherwise the `cpu` preset. The
# Engine's tests also run under ThreadSanitizer (preset `tsan`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
preset=cpu
if command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  preset=cuda
  export PATH="$PATH:/usr/local/cuda/bin"
fi
cmake --preset "$preset" -DPOLYINFER_BUILD_TESTS=ON -DPOLYINFER_BUILD_BENCHMARKS=ON -DPOLYINFER_BUILD_EXAMPLES=ON
cmake --build --preset "$preset" -j "$(nproc)"
# The Engine's tests (stress test included) under ThreadSanitizer, then every test.
cmake --preset tsan
cmake --build --preset tsan -j "$(nproc)" --target test_engine
TSAN_OPTIONS="halt_on_error=1" build/tsan/tests/test_engine
ctest --preset "$preset" -j "$(nproc)" "$@"
