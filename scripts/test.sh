#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Sets up, builds and runs every test through ctest. With nvcc on PATH the `cuda` preset also
# compiles every CUDA file (their tests skip without a GPU); otherwise the `cpu` preset. The
# same kernels are compiled for AMD GPUs with hipcc (preset `hip`, the kernel tests only;
# POLYINFER_WITH_HIP=0 skips it). The Engine's tests also run under ThreadSanitizer (`tsan`).
set -euo pipefail
cd "$(dirname "$0")/.."
export POLYINFER_WITH_HIP=${POLYINFER_WITH_HIP:-1}
scripts/setup.sh
preset=cpu
if command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; then
  preset=cuda
  export PATH="$PATH:/usr/local/cuda/bin"
fi
cmake --preset "$preset" -DPOLYINFER_BUILD_TESTS=ON -DPOLYINFER_BUILD_BENCHMARKS=ON -DPOLYINFER_BUILD_EXAMPLES=ON
cmake --build --preset "$preset" -j "$(nproc)"
# The GPU kernels through HIP: compiled and linked (test_hip skips without an AMD GPU).
if [[ "$POLYINFER_WITH_HIP" == "1" ]] && command -v hipcc >/dev/null 2>&1; then
  cmake --preset hip -DPOLYINFER_BUILD_TESTS=ON -DPOLYINFER_WERROR=ON
  cmake --build --preset hip -j "$(nproc)" --target test_hip
  build/hip/tests/test_hip
fi
# The Engine's tests (stress test included) under ThreadSanitizer, then every test.
cmake --preset tsan
cmake --build --preset tsan -j "$(nproc)" --target test_engine
TSAN_OPTIONS="halt_on_error=1" build/tsan/tests/test_engine
ctest --preset "$preset" -j "$(nproc)" "$@"
