#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# On a GPU machine: the models on cuda:0, from gpu-bundle.tar.xz (scripts/gpu_bundle.sh makes
# it here). Runs the kernel tests and the fixture conformance tests on the GPU, writes `synth`
# llama-3-8b in each format, and measures prompt processing, batch-1 decode and continuous
# batching, with PyTorch F16 on the same shape beside them; prints a summary last.
#
#   scripts/gpu_models.sh [--formats "q4_0 q4_k q8_0"] [--steps "tests bench batches ..."]
#
# Steps (default: tests bench batches profile workload split torch): tests, kernels (bench_cuda
# --quick), gemm (bench_cuda --gemm: the integer GEMM beside dequantize + cuBLAS), mmq (batched
# decode with that GEMM and without), bench (polyinfer bench -p 512 -n 128), batches
# (decode_batches 1/8/16/32/64/128), profile (per-op GPU time, graphs off), workload (Engine on cpu
# and cuda:0), split (tensor parallelism with two ranks on cuda:0; the Engine placing models
# over two logical GPUs), ab (batch-1/8 decode with the fused launches and programmatic launch
# switched off in turn), sweep (batch-1 decode with each single-token GEMV shape forced), amx
# (CPU GEMM at 512 tokens on the host CPU, 2 cores: AMX where present), attn (decode attention
# alone, bench_cuda --attention, under each setting of ATTN_SETS, as ENV_SETS; default
# POLYINFER_GPU_ATTN_MMA=1 and =0), skip (batch-1 decode
# with kinds of launches left out, to place the step's time), ncu (Nsight Compute kernel times
# of one decode step), env (batch-1 decode under each setting in ENV_SETS, e.g.
# "POLYINFER_GPU_CARVEOUT=100;POLYINFER_GPU_PDL=0"; BATCHES, default 1; ENV_SHAPES, '|'-separated
# decode_batches prompt/gen options, default "--prompt 128 --gen 64"), sample (decode
# with greedy picks, picks sampled on the GPU, and logits sampled on the host), context
# (batch-1 decode after 128- and 512-token prompts), ncu_mmq (Nsight Compute sections of the
# integer GEMM in batch-16 decode steps), ncu_gemv (the same for one layer's GEMVs at batch 1),
# ncu_attn (Nsight Compute, full set, on one attention launch of a batch-1 decode step), trace
# (every kernel's GPU start and end in batch-1 decode through a CUPTI injection library,
# scripts/dev/kernel_trace.cpp: each launch kind's share of a step's critical path,
# scripts/dev/trace_step.py), longrows (bench_cuda --long-rows: experiments on GEMVs over long
# rows), torch (PyTorch f16).
# Environment: OUT (results folder; default build/gpu-models), SYNTH_DIR (default /tmp), ENV_SETS,
# SKIP_SETS (skip: space-separated POLYINFER_GPU_SKIP values instead of the default list).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-build/gpu-models}
SYNTH_DIR=${SYNTH_DIR:-/tmp}
FORMATS="q4_0 q4_k q8_0"
STEPS="tests bench batches profile workload split torch"
while [ $# -gt 0 ]; do
  case $1 in
    --formats) FORMATS=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    *) echo "usage: $0 [--formats LIST] [--steps LIST]" >&2; exit 2 ;;
  esac
  shift
done
step() { [[ " $STEPS " == *" $1 "* ]]; }
mkdir -p "$OUT"
LOG=$OUT/summary.txt
: >"$LOG"
START=$(date +%s)
[ -f gpu-bundle.tar.xz ] || { echo "gpu_models: no gpu-bundle.tar.xz (run scripts/gpu_bundle.sh and carry it)"; exit 1; }
ROOT=$(mktemp -d)
tar -C "$ROOT" -xJf gpu-bundle.tar.xz
B=$ROOT/gpu-bundle
CUDA_BIN=$(dirname "$(command -v nvcc)")
export LD_LIBRARY_PATH=$B/lib:$CUDA_BIN/../lib64:$CUDA_BIN/../targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
export POLYINFER_SHARED_DIR=$B/shared
PI=$B/bin/polyinfer
STATUS=0
section() { echo "== $1" | tee -a "$LOG"; }

if step tests; then
  section "kernel tests (test_cuda) and model tests (test_gpu_model) on cuda:0"
  timeout 200 "$B/bin/test_cuda" >"$OUT/test_cuda.log" 2>&1 || STATUS=1
  grep -E "^FAIL|FAILED|passed|failed" "$OUT/test_cuda.log" | tail -5 | tee -a "$LOG"
  # Attention again with its splits merged through global memory alone (the HIP path).
  POLYINFER_GPU_ATTN_CLUSTER=0 timeout 100 "$B/bin/test_cuda" attention \
    >"$OUT/test_cuda_no_clusters.log" 2>&1 || STATUS=1
  grep -E "^FAIL|FAILED|passed|failed" "$OUT/test_cuda_no_clusters.log" | tail -5 |
    sed 's/^/attention without clusters: /' | tee -a "$LOG"
  # And with clusters for every shape (by default only single tokens with few splits take them).
  POLYINFER_GPU_ATTN_CLUSTER=1 timeout 100 "$B/bin/test_cuda" attention \
    >"$OUT/test_cuda_clusters.log" 2>&1 || STATUS=1
  grep -E "^FAIL|FAILED|passed|failed" "$OUT/test_cuda_clusters.log" | tail -5 |
    sed 's/^/attention with clusters always: /' | tee -a "$LOG"
  # And the f32-sum decode kernel where the tensor-core one would run, and the tensor-core one
  # wherever it can (also single tokens over short caches).
  for setting in 0 1; do
    POLYINFER_GPU_ATTN_MMA=$setting timeout 100 "$B/bin/test_cuda" attention \
      >"$OUT/test_cuda_mma$setting.log" 2>&1 || STATUS=1
    grep -E "^FAIL|FAILED|passed|failed" "$OUT/test_cuda_mma$setting.log" | tail -5 |
      sed "s/^/attention with POLYINFER_GPU_ATTN_MMA=$setting: /" | tee -a "$LOG"
  done
  timeout 300 "$B/bin/test_gpu_model" --durations yes >"$OUT/test_gpu_model.log" 2>&1 || STATUS=1
  grep -E "^conformance|test cases|passed|failed|FAILED" "$OUT/test_gpu_model.log" | tee -a "$LOG"
fi

if step kernels; then
  section "kernel benchmarks (bench_cuda --quick: GEMV table, GEMM, attention)"
  timeout 300 "$B/bin/bench_cuda" --quick 2>&1 | tee "$OUT/bench_cuda.log" |
    grep -E "^(device|stream|q4_0|q4_k|q8_0|f16|GEMV >=|attention|gemm)" | tee -a "$LOG"
fi

if step attn; then
  section "decode attention, 32/8 heads x 128, tensor cores and f32 sums (bench_cuda --attention)"
  IFS=';' read -r -a sets <<<"${ATTN_SETS:-POLYINFER_GPU_ATTN_MMA=1;POLYINFER_GPU_ATTN_MMA=0}"
  for i in "${!sets[@]}"; do
    # shellcheck disable=SC2086
    env ${sets[$i]} timeout 120 "$B/bin/bench_cuda" --attention 2>&1 |
      tee "$OUT/bench_attention_$i.log" | grep -E "^attention" |
      sed "s/^/${sets[$i]} /" | tee -a "$LOG"
  done
fi

if step longrows; then
  section "single-token Q4_0 GEMVs over long rows, by kind of weight load (bench_cuda --long-rows)"
  timeout 300 "$B/bin/bench_cuda" --long-rows 2>&1 | tee "$OUT/bench_long_rows.log" |
    grep -E "^(device|roofline|long rows)" | tee -a "$LOG"
fi

if step gemm; then
  section "integer tensor-core GEMM beside dequantize + cuBLAS (bench_cuda --quick --gemm)"
  timeout 300 "$B/bin/bench_cuda" --quick --gemm 2>&1 | tee "$OUT/bench_cuda_gemm.log" |
    grep -E "^(device|stream|mmq)" | tee -a "$LOG"
fi

model_of() { echo "$SYNTH_DIR/llama-3-8b-$1.gguf"; }
for type in $FORMATS; do
  model=$(model_of "$type")
  [ -f "$model" ] || timeout 600 "$PI" synth --shape llama-3-8b --type "$type" --out "$model" \
    --threads "$(nproc)" >/dev/null 2>&1 || { echo "synth $type failed" | tee -a "$LOG"; continue; }
  if step bench; then
    section "bench $type: -p 512 -n 128, median of 5"
    timeout 300 "$PI" bench "$model" --device cuda:0 -p 512 -n 128 -r 5 --json 2>&1 |
      sed "s/^{/{\"format\":\"$type\",/" | tee -a "$LOG"
  fi
  if step context; then
    section "batch-1 decode $type after 128- and 512-token prompts (bench's -p 512 -n 128 context)"
    for shape in "--prompt 128 --gen 64" "--prompt 512 --gen 128"; do
      # shellcheck disable=SC2086
      result=$(timeout 300 "$B/bin/decode_batches" "$model" --device cuda:0 --batches 1 $shape \
        --reps 3 --greedy 2>&1 | tail -1)
      echo "$type $shape: $result" | tee -a "$LOG"
    done
  fi
  if step ncu_mmq && command -v ncu >/dev/null; then
    section "Nsight Compute: the integer GEMM in batch-16 decode steps ($type)"
    timeout 400 ncu --kernel-name regex:mmq_kernel --launch-skip 130 --launch-count 4 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
      --section SchedulerStats "$B/bin/decode_batches" "$model" --device cuda:0 --batches 16 \
      --prompt 16 --gen 8 --reps 0 >"$OUT/ncu-mmq-$type.txt" 2>&1
    grep -E "mmq_kernel|Duration|Memory Throughput|DRAM Throughput|Compute \(SM\)|Achieved Occupancy|Theoretical Occupancy|Block Limit|Registers Per|Issue Slots|No Eligible|Warp Cycles Per Issued|Stall|Grid Size|Shared Memory Config" \
      "$OUT/ncu-mmq-$type.txt" | head -80 | tee -a "$LOG"
  fi
  if step ncu_gemv && command -v ncu >/dev/null; then
    section "Nsight Compute: one layer's GEMVs (qkv, o, gate_up, down) in a batch-1 decode step ($type)"
    # 129 GEMV launches a decode step (4 a layer, then the output), after one for the prefill's
    # logits (its layers take the GEMM): skip 1 + 5 steps.
    timeout 400 ncu --kernel-name regex:gemv_kernel --launch-skip 646 --launch-count 4 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
      --section LaunchStats --section WarpStateStats --section SchedulerStats \
      "$B/bin/decode_batches" "$model" --device cuda:0 --batches 1 --prompt 16 --gen 8 \
      --reps 0 >"$OUT/ncu-gemv-$type.txt" 2>&1
    grep -E "gemv_kernel|Duration|DRAM Throughput|Memory Throughput|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Achieved Occupancy|Theoretical Occupancy|Registers Per|Issue Slots|No Eligible|Warp Cycles Per Issued|Grid Size|Waves Per SM|stalled|spends" \
      "$OUT/ncu-gemv-$type.txt" | head -80 | tee -a "$LOG"
  fi
  if step ncu_attn && command -v ncu >/dev/null; then
    section "Nsight Compute: attention in a batch-1 decode step after a 128-token prompt ($type)"
    # 32 attention launches in the prefill, then 32 a step: skip the prefill and 3 steps. Once
    # with each setting of ENV_SETS beside the defaults.
    IFS=';' read -r -a sets <<<"${ENV_SETS:-}"
    for switches in "" "${sets[@]}"; do
      echo "-- ${switches:-default}" | tee -a "$LOG"
      # shellcheck disable=SC2086
      env $switches timeout 300 ncu --kernel-name regex:attention_kernel --launch-skip 128 \
        --launch-count 1 --set full --print-details all "$B/bin/decode_batches" "$model" \
        --device cuda:0 --batches 1 --prompt 128 --gen 8 --reps 0 \
        >"$OUT/ncu-attn-$type-${switches//[^A-Za-z0-9_]/_}.txt" 2>&1
      grep -E "attention_kernel|Duration|Elapsed Cycles|DRAM Throughput|Achieved Occupancy|Registers Per|Issue Slots|No Eligible|Warp Cycles Per Issued|Grid Size|Cluster Size|Block Size|stalled|spends|Stall [A-Z]" \
        "$OUT/ncu-attn-$type-${switches//[^A-Za-z0-9_]/_}.txt" | head -60 | tee -a "$LOG"
    done
  fi
  if step batches; then
    section "continuous batching $type (greedy picks on the GPU, as the Engine's greedy requests)"
    timeout 300 "$B/bin/decode_batches" "$model" --device cuda:0 --batches 1,8,16,32,64,128 \
      --prompt 128 --gen 64 --reps 3 --greedy 2>&1 | tee -a "$LOG"
    section "continuous batching $type, whole logits copied every step"
    timeout 300 "$B/bin/decode_batches" "$model" --device cuda:0 --batches 1,8 \
      --prompt 128 --gen 64 --reps 3 2>&1 | tee -a "$LOG"
  fi
  if step sample; then
    section "sampling $type: greedy picks, sampled on the GPU, logits sampled on the host"
    # (top-p is left to bench_cuda: the synthetic model's logits are nearly flat, so every
    # nucleus outgrows the device's candidates and the rows finish on the host)
    for rules in "--greedy" "--sample 0.8,40,1" "--sample 1,0,1" "--sample 0.8,40,1 --host-sample"; do
      echo "-- $rules" | tee -a "$LOG"
      # shellcheck disable=SC2086
      timeout 200 "$B/bin/decode_batches" "$model" --device cuda:0 --batches 1,32,128 \
        --prompt 128 --gen 32 --reps 3 $rules 2>&1 | tail -3 | tee -a "$LOG"
    done
  fi
done
first=$(model_of "${FORMATS%% *}")

if step profile; then
  section "per-op GPU time of decode steps (graphs off: intervals include launch gaps)"
  for n in 1 32; do
    POLYINFER_GPU_PROFILE=1 timeout 120 "$B/bin/decode_batches" "$first" --device cuda:0 \
      --batches $n --prompt 128 --gen 16 --reps 1 --greedy 2>&1 | tee -a "$LOG"
  done
  section "graphs off"
  POLYINFER_GPU_GRAPHS=0 timeout 120 "$B/bin/decode_batches" "$first" --device cuda:0 \
    --batches 1,8 --prompt 128 --gen 64 --reps 3 --greedy 2>&1 | tee -a "$LOG"
fi

if step workload; then
  section "Engine workload (the 2000 requests of workload-dev), cpu vs cuda:0"
  TRACE=$B/shared/taskmodels/workload-dev.jsonl
  for config in taskmodels-gguf taskmodels-gguf-baseline; do
    for device in cpu cuda:0; do
      result=$(timeout 300 "$PI" workload --config "examples/configs/$config.json" \
        --trace "$TRACE" --fast --json --device "$device" 2>&1 | tail -1)
      python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(sys.argv[2], sys.argv[3], "accuracy", r["accuracy"], "errors", r["errors"], "cost_device_s", round(r["cost_device_s"], 3), "wall_s", round(r["wall_s"], 3), "p50_ms", round(r["latency_ms"]["p50"], 1))' \
        "$result" "$config" "$device" 2>&1 | tee -a "$LOG"
    done
  done
fi

if step amx; then
  section "CPU GEMM on the GPU machine's host CPU, 2 cores pinned (AMX tiles where it has them)"
  echo "cpu flags: $(grep -o -w 'amx_int8\|amx_bf16\|amx_tile\|avx512_fp16' /proc/cpuinfo | sort -u | tr '\n' ' ')" |
    tee -a "$LOG"
  POLYINFER_BENCH_THREADS=2 timeout 400 taskset -c 2,3 "$B/bin/bench_matmul" \
    --benchmark_filter='gemm/(f16|bf16|q8_0|q4_0|q4_k)/4096x4096/tokens:512|onednn/(bf16|u8s8s32)/4096x4096/tokens:512' \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>&1 | grep -E "median|rror" |
    tee -a "$LOG"
  # F16 on the AVX-512 f32 kernel, the one below the AMX split kernel, beside it.
  POLYINFER_MATMUL_KERNEL=f16_avx512_x16 POLYINFER_BENCH_THREADS=2 timeout 200 taskset -c 2,3 \
    "$B/bin/bench_matmul" --benchmark_filter='gemm/f16/4096x4096/tokens:512' \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>&1 | grep -E "median|rror" |
    tee -a "$LOG"
fi

if step sweep; then
  section "batch-1 decode with each single-token GEMV shape forced (POLYINFER_GPU_GEMV=r,u,w,s)"
  for type in $FORMATS; do
    for shape in ${SWEEP_SHAPES:-default 2,4,8,1 2,4,4,1 2,2,8,1 2,2,4,1 1,4,8,1 1,4,4,1 2,2,8,2 2,2,8,4}; do
      forced=$shape
      [ "$shape" = default ] && forced=
      result=$(POLYINFER_GPU_GEMV=$forced timeout 120 "$B/bin/decode_batches" "$(model_of "$type")" \
        --device cuda:0 --batches 1 --prompt 128 --gen 64 --reps 3 --greedy 2>&1 | tail -1)
      echo "$type $shape: $result" | tee -a "$LOG"
    done
  done
fi

if step ab; then
  section "decode with the fused launches / programmatic launch switched off ($first)"
  for switches in "" "POLYINFER_GPU_FUSE=0" "POLYINFER_GPU_PDL=0" \
    "POLYINFER_GPU_FUSE=0 POLYINFER_GPU_PDL=0"; do
    echo "-- ${switches:-default}" | tee -a "$LOG"
    # shellcheck disable=SC2086
    env $switches timeout 200 "$B/bin/decode_batches" "$first" --device cuda:0 --batches 1,8 \
      --prompt 128 --gen 64 --reps 3 --greedy 2>&1 | tail -2 | tee -a "$LOG"
  done
fi

if step mmq; then
  section "batched decode, integer GEMM against dequantize + cuBLAS (POLYINFER_GPU_MMQ_MAX=0)"
  for type in $FORMATS; do
    for most in 64 0; do
      echo "-- $type POLYINFER_GPU_MMQ_MAX=$most" | tee -a "$LOG"
      POLYINFER_GPU_MMQ_MAX=$most timeout 200 "$B/bin/decode_batches" "$(model_of "$type")" \
        --device cuda:0 --batches 16,32,64,128 --prompt 128 --gen 64 --reps 3 --greedy 2>&1 |
        tee -a "$LOG"
    done
  done
fi

if step env; then
  section "batch-1 decode under each setting of ENV_SETS (';'-separated lists of VAR=value)"
  IFS=';' read -r -a sets <<<"${ENV_SETS:-}"
  IFS='|' read -r -a shapes <<<"${ENV_SHAPES:---prompt 128 --gen 64}"
  for type in $FORMATS; do
    for shape in "${shapes[@]}"; do
      for switches in "" "${sets[@]}"; do
        # shellcheck disable=SC2086
        result=$(env $switches timeout 120 "$B/bin/decode_batches" "$(model_of "$type")" \
          --device cuda:0 --batches "${BATCHES:-1}" $shape --reps 3 --greedy 2>&1 | tail -n +2)
        echo "$type $shape ${switches:-default}: $result" | tee -a "$LOG"
      done
    done
  done
fi

if step skip; then
  section "batch-1 decode with launches left out (POLYINFER_GPU_SKIP; results wrong, times place the step)"
  for type in $FORMATS; do
    for skip in "" ${SKIP_SETS:-qkv,o,gate_up,down,output rope_kv_store,attention,add_norm,silu_mul \
      attention rope_kv_store add_norm silu_mul qkv o gate_up down}; do
      result=$(POLYINFER_GPU_SKIP=$skip timeout 120 "$B/bin/decode_batches" "$(model_of "$type")" \
        --device cuda:0 --batches 1 --prompt 128 --gen 64 --reps 3 --greedy 2>&1 | tail -1)
      echo "$type skip ${skip:-nothing}: $result" | tee -a "$LOG"
    done
  done
fi

if step split; then
  section "tensor parallel: $first split in two ranks on cuda:0 (local all-reduce; NCCL needs 2 GPUs)"
  timeout 200 "$B/bin/decode_batches" "$first" --device cuda:0,cuda:0 --batches 1,32 \
    --prompt 128 --gen 32 --reps 2 --greedy 2>&1 | tee -a "$LOG"
  section "Engine placement: the workload over two logical GPUs on cuda:0 (32 MB budget each)"
  TRACE=$B/shared/taskmodels/workload-dev.jsonl
  for gpus in "" "--gpus cuda:0,cuda:1@0 --gpu-budget-mb 32"; do
    # shellcheck disable=SC2086
    result=$(timeout 300 "$PI" workload --config examples/configs/taskmodels-gguf.json \
      --trace "$TRACE" --fast --json --device cuda $gpus 2>&1 | tail -1)
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(sys.argv[2] or "one device", "accuracy", r["accuracy"], "errors", r["errors"], "wall_s", round(r["wall_s"], 3), "devices", {k: (v["peak_resident_bytes"], v["budget_bytes"], v["models"]) for k, v in r["devices"].items()}, "placed", {k: v["device"] for k, v in r["models"].items()})' \
      "$result" "$gpus" 2>&1 | tee -a "$LOG"
  done
fi

if step ncu && command -v ncu >/dev/null; then
  section "Nsight Compute: kernel times of one batch-1 decode step (graph replay)"
  # Warm-up pass only (--reps 0): a 16-token prefill, then 40 decode steps; skip to step ~6.
  timeout 300 ncu --metrics gpu__time_duration.sum --csv --print-units base --launch-skip 2600 \
    --launch-count 326 "$B/bin/decode_batches" "$first" --device cuda:0 --batches 1 --prompt 16 \
    --gen 40 --reps 0 >"$OUT/ncu-1.csv" 2>"$OUT/ncu-1.err"
  python3 scripts/dev/ncu_summary.py "$OUT/ncu-1.csv" 2>&1 | head -30 | tee -a "$LOG"
fi

if step trace; then
  section "Kernel trace (CUPTI): where a batch-1 decode step's time goes (graph replay)"
  CUDA_ROOT=$(dirname "$CUDA_BIN")
  if g++ -std=c++20 -O2 -shared -fPIC -I"$CUDA_ROOT/include" scripts/dev/kernel_trace.cpp \
    -L"$CUDA_ROOT/lib64" -lcupti -o /tmp/libkernel_trace.so >"$OUT/trace-build.log" 2>&1; then
    for type in $FORMATS; do
      CUDA_INJECTION64_PATH=/tmp/libkernel_trace.so KERNEL_TRACE_OUT="$OUT/trace-$type.csv" \
        LD_LIBRARY_PATH="$CUDA_ROOT/lib64:${LD_LIBRARY_PATH:-}" timeout 300 "$B/bin/decode_batches" \
        "$(model_of "$type")" --device cuda:0 --batches 1 --prompt 128 --gen 24 --reps 1 \
        --greedy 2>&1 | tail -1 | tee -a "$LOG"
      echo "-- $type" | tee -a "$LOG"
      python3 scripts/dev/trace_step.py "$OUT/trace-$type.csv" 2>&1 | tee -a "$LOG"
      xz -f "$OUT/trace-$type.csv"
    done
  else
    echo "kernel_trace did not build:" | tee -a "$LOG"
    tail -5 "$OUT/trace-build.log" | tee -a "$LOG"
  fi
fi

if step torch; then
  section "PyTorch f16, same shape (transformers LlamaForCausalLM, sdpa)"
  PYTHONUNBUFFERED=1 timeout 400 python3 scripts/dev/torch_llama_bench.py --shape llama-3-8b \
    --prompt 512 --gen 64 --batches 1,8,32,128 --reps 2 2>&1 | grep -v -i warn | tee -a "$LOG"
fi

echo "===== gpu_models: $(( $(date +%s) - START ))s, tests status $STATUS =====" | tee -a "$LOG"
exit "$STATUS"
