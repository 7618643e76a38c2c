#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Packs what the GPU model checks need into gpu-bundle.tar.xz (git-ignored), built here where
# the library's dependencies are installed: the CLI, test_gpu_model, decode_batches and
# bench_matmul (the host CPU's kernels: the GPU machine's Xeon has AMX) from the
# `cuda` preset, the shared libraries they load (system ones excepted), and the fixtures the
# tests read. GPU machines have the CUDA toolkit but not fmt, PCRE2, utf8proc or oneDNN, and no
# ../shared; scripts/gpu_models.sh unpacks the bundle there.
#
#   scripts/gpu_bundle.sh     then: device run with carry [gpu-bundle.tar.xz],
#                             command "bash scripts/gpu_check.sh --models"
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build/cuda}
SHARED=${POLYINFER_SHARED_DIR:-../shared}
[ -f "$BUILD/CMakeCache.txt" ] || cmake --preset cuda >/dev/null
cmake --build "$BUILD" --target polyinfer_cli test_gpu_model test_cuda bench_cuda decode_batches bench_matmul \
  -j"${JOBS:-2}"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
B=$STAGE/gpu-bundle
mkdir -p "$B/bin" "$B/lib" "$B/shared/fixtures/models" "$B/shared/taskmodels"
cp "$BUILD/bin/polyinfer" "$BUILD/bin/decode_batches" "$BUILD/bin/bench_matmul" "$BUILD/tests/test_gpu_model" \
  "$BUILD/tests/test_cuda" "$BUILD/bin/bench_cuda" "$B/bin/"
# Libraries outside the C runtime and the CUDA toolkit (the GPU machine has both).
for binary in "$B"/bin/*; do
  ldd "$binary" | awk '/=> \// {print $3}'
done | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so* | libm.so* | libstdc++* | libgcc_s* | libdl.so* | libpthread* | librt.so* | \
      ld-linux* | libcuda* | libcublas* | libnvidia*) ;;
    *) cp -L "$lib" "$B/lib/" ;;
  esac
done
# Symbols are not needed there, and the bundle travels within the device tool's 64 MiB.
strip --strip-unneeded "$B"/bin/* "$B"/lib/libpolyinfer.so* 2>/dev/null || true
for model in tiny-llama tiny-qwen2; do
  cp -r "$SHARED/fixtures/models/$model" "$B/shared/fixtures/models/"
done
cp "$SHARED/taskmodels/workload-dev.jsonl" "$B/shared/taskmodels/" 2>/dev/null || true
XZ_OPT=-9 tar -C "$STAGE" -cJf gpu-bundle.tar.xz gpu-bundle
ls -la gpu-bundle.tar.xz
