#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU check in one command: builds the CUDA kernels, their tests and the GPU benchmark with nvcc
# alone (no CMake configure, no Catch2 or fmt: GPU machines may lack them), runs the tests
# (every kernel against kernels/ref) and the benchmark, and prints a short table last.
#
#   scripts/gpu_check.sh               build, test, benchmark (needs a GPU)
#   scripts/gpu_check.sh --build-only  compile and link only (any machine with nvcc)
#   scripts/gpu_check.sh --quick       fewer benchmark repetitions
#
# Environment: CUDA_ARCH (default 90), BUILD_DIR (default build/gpu-check), JOBS (default nproc),
# OUT (results folder; default BUILD_DIR/out): build.log, test.log, bench.log, gpu_check.txt.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
MODE=all
BENCH_FLAGS=()
for arg in "$@"; do
  case $arg in
    --build-only) MODE=build ;;
    --quick) BENCH_FLAGS+=(--quick) ;;
    *) echo "usage: $0 [--build-only] [--quick]" >&2; exit 2 ;;
  esac
done
ARCH=${CUDA_ARCH:-90}
BUILD=${BUILD_DIR:-$ROOT/build/gpu-check}
JOBS=${JOBS:-$(nproc)}
OUT=${OUT:-$BUILD/out}
NVCC=${NVCC:-nvcc}
HOST_CXX=${CXX:-g++}
mkdir -p "$BUILD/obj" "$OUT"
START=$(date +%s)

CUDA_BIN=$(dirname "$(command -v "$NVCC")")
CUDA_LIB=$CUDA_BIN/../lib64
[ -d "$CUDA_LIB" ] || CUDA_LIB=$CUDA_BIN/../targets/x86_64-linux/lib
COMMON_FLAGS="-std=c++20 -O3 -DNDEBUG -I$ROOT -I$ROOT/include"
export NVCC HOST_CXX BUILD ROOT
export NV_FLAGS="$COMMON_FLAGS -gencode=arch=compute_$ARCH,code=sm_$ARCH -Xcompiler=-Wall,-Wextra -Xptxas=-v"
export CXX_FLAGS="$COMMON_FLAGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wno-missing-field-initializers"

# compile SOURCE: one object under $BUILD/obj, its compiler output beside it (.log).
compile() {
  local source=$1
  local object
  object=$BUILD/obj/$(echo "${source#"$ROOT"/}" | tr / _).o
  # shellcheck disable=SC2086  # the flag strings split into words on purpose
  case $source in
    *.cu) $NVCC $NV_FLAGS -c "$source" -o "$object" >"$object.log" 2>&1 ;;
    *) $HOST_CXX $CXX_FLAGS -c "$source" -o "$object" >"$object.log" 2>&1 ;;
  esac || { echo "FAILED: $source"; cat "$object.log"; return 1; }
}
export -f compile

echo "== build (sm_$ARCH, $JOBS jobs) =="
SOURCES=$(ls "$ROOT"/kernels/cuda/*.cu "$ROOT"/kernels/ref/*.cpp "$ROOT"/tests/cuda/*.cpp \
  "$ROOT"/benchmarks/bench_cuda*.cu)
rm -f "$BUILD"/obj/*.o
objects() { for f in "$@"; do echo "$BUILD/obj/$(echo "${f#"$ROOT"/}" | tr / _).o"; done; }
KERNEL_OBJECTS=$(objects "$ROOT"/kernels/cuda/*.cu)
LINK="-lcublas -Xlinker -rpath -Xlinker $CUDA_LIB"
BUILT=0
# shellcheck disable=SC2046,SC2086,SC2016
if printf '%s\n' $SOURCES | xargs -P "$JOBS" -I{} bash -c 'compile "$1"' _ {} &&
  $NVCC -o "$BUILD/test_cuda.new" $KERNEL_OBJECTS $(objects "$ROOT"/kernels/ref/*.cpp) \
    $(objects "$ROOT"/tests/cuda/*.cpp) $LINK >"$BUILD/obj/link_test.log" 2>&1 &&
  $NVCC -o "$BUILD/bench_cuda.new" $KERNEL_OBJECTS $(objects "$ROOT"/benchmarks/bench_cuda*.cu) \
    $LINK >"$BUILD/obj/link_bench.log" 2>&1; then
  mv "$BUILD/test_cuda.new" "$BUILD/test_cuda"
  mv "$BUILD/bench_cuda.new" "$BUILD/bench_cuda"
  BUILT=1
fi
cat "$BUILD"/obj/*.log >"$OUT/build.log" 2>/dev/null
if [ $BUILT = 0 ]; then
  cat "$BUILD"/obj/link_*.log 2>/dev/null
  # Binaries built elsewhere (carried in BUILD_DIR) still let the check run.
  if [ "$MODE" = build ] || [ ! -x "$BUILD/test_cuda" ] || [ ! -x "$BUILD/bench_cuda" ]; then
    echo "gpu_check: build failed" | tee "$OUT/gpu_check.txt"
    exit 1
  fi
  echo "gpu_check: build failed here; running the binaries already in $BUILD"
fi
WARNINGS=$(grep -c -i "warning" "$OUT/build.log")
SPILLS=$(grep -E "bytes spill (stores|loads)" "$OUT/build.log" | grep -c -v " 0 bytes spill stores, 0 bytes spill loads")
BUILD_SECONDS=$(( $(date +%s) - START ))
echo "build: ${BUILD_SECONDS}s, $WARNINGS warnings, $SPILLS kernels with spills (ptxas -v in build.log)"
grep -i "warning" "$OUT/build.log" | head -20
[ "$MODE" = build ] && exit 0

echo "== device =="
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader 2>&1 | head -2

echo "== tests =="
timeout 150 "$BUILD/test_cuda" 2>&1 | tee "$OUT/test.log"
TEST_STATUS=${PIPESTATUS[0]}
# Attention again with its splits merged through global memory alone (the HIP path).
POLYINFER_GPU_ATTN_CLUSTER=0 timeout 100 "$BUILD/test_cuda" attention 2>&1 | tee -a "$OUT/test.log"
[ "${PIPESTATUS[0]}" = 0 ] || TEST_STATUS=1
# And with thread-block clusters for every shape (by default: single tokens with few splits).
POLYINFER_GPU_ATTN_CLUSTER=1 timeout 100 "$BUILD/test_cuda" attention 2>&1 | tee -a "$OUT/test.log"
[ "${PIPESTATUS[0]}" = 0 ] || TEST_STATUS=1

echo "== benchmark =="
timeout 300 "$BUILD/bench_cuda" "${BENCH_FLAGS[@]}" --out "$OUT/bench_table.txt" 2>&1 | tee "$OUT/bench.log"
BENCH_STATUS=${PIPESTATUS[0]}

{
  echo "===== gpu_check summary ($(( $(date +%s) - START ))s; build ${BUILD_SECONDS}s, $WARNINGS warnings, $SPILLS spilling kernels) ====="
  grep -E "^(PASS|FAIL) |^test_cuda:" "$OUT/test.log"
  grep "FAILED" "$OUT/test.log" | head -20
  echo "tests exit $TEST_STATUS, benchmark exit $BENCH_STATUS"
  cat "$OUT/bench_table.txt" 2>/dev/null
} >"$OUT/gpu_check.txt"
echo
cat "$OUT/gpu_check.txt"
[ "$TEST_STATUS" -eq 0 ] && [ "$BENCH_STATUS" -eq 0 ]
