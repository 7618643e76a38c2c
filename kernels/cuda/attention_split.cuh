// SPDX-License-Identifier: Apache-2.0
// What the split-K attention kernels share (kernels/cuda/attention_decode.cu and
// attention_mma.cuh; one translation unit): launch constants, the split plan, cache row
// addressing and the merge of the blocks' softmax states.
#pragma once

#include <algorithm>
#include <type_traits>

#include "kernels/cuda/context.cuh"
#include "kernels/cuda/gemv.cuh"

#if !POLYINFER_GPU_HIP && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#include <cooperative_groups.h>
#define POLYINFER_GPU_CLUSTERS 1
#else
#define POLYINFER_GPU_CLUSTERS 0
#endif
// Decode attention on the tensor cores (mma.sync): CUDA only (sm_80 and later at run time).
#if !POLYINFER_GPU_HIP
#define POLYINFER_GPU_MMA_ATTENTION 1
#else
#define POLYINFER_GPU_MMA_ATTENTION 0
#endif

// Leaving a fully unrolled loop early. nvcc: `break` (measured, H200 session 12: `continue`
// there compiled the decode kernel to 99 registers instead of 80 and cost 8 % at batch 1
// after 1024-token prompts, 9 % at batch 8); clang unrolls no loop with an early exit and
// warns, so HIP skips the remaining iterations instead.
#if POLYINFER_GPU_HIP
#define POLYINFER_UNROLLED_EXIT continue
#else
#define POLYINFER_UNROLLED_EXIT break
#endif

namespace polyinfer::inline v0::detail::gpu::attention_split {

// Warps per block: decode steps (≤ kGemvMaxTokens tokens, latency-bound: a block's chain of
// dependent steps is shorter over more warps) and prompts / batches (throughput-bound).
constexpr int kDecodeWarps = 8;
constexpr int kPromptWarps = 4;
constexpr int kMaxGroup = 8;  // query heads per block (more: several head groups)
// Rows per split at least (POLYINFER_GPU_ATTN_MIN_ROWS): fewer cost more in partials than they
// save.
constexpr int64_t kMinSplitRows = 32;
// The tensor-core kernel's least split (POLYINFER_GPU_ATTN_MMA_ROWS): 64 rows, a 16-row chunk
// for each of 4 warps. Measured on an H200 (q4_0 llama-3-8b decode, session 18, call 3): batch 1
// 550 tok/s after 128 prompt tokens, 520 after 1024, against 545 / 503 with 128 rows, 548 / 489
// with 32 and 535 / 499 with 256.
constexpr int64_t kMmaSplitRows = 64;
constexpr int64_t kMmaLeastRows = 256;  // one token over fewer cache rows: the f32-sum kernel

constexpr int kMaxSplits = 256;  // the merge keeps one factor per split and head
constexpr int kMaxCluster = 8;   // blocks per cluster at most (the portable cluster size)
// Dynamic shared memory per block: below 48 KB, no opt-in on CUDA, within HIP's 64 KB.
constexpr int kSharedBudget = 47 * 1024;

struct SplitPlan {
  int64_t heads;
  int64_t q_stride;     // floats between tokens' queries
  int64_t group;        // query heads per kv head
  int64_t head_groups;  // ceil(group / kMaxGroup)
  int splits;           // blocks per (token, head group); a token's rows are shared among them
  int early;     // 1: positions, tables and rows below the step's own are read before pdl_wait()
  int cluster;   // blocks per thread-block cluster (1: none); splits is a multiple of it
  int min_rows;  // rows per split at least
  int mma;       // 1: attention_mma_kernel (decode steps on f16 rows; see run_attention)
};

// The first block-table entry of `token`'s sequence.
__device__ __forceinline__ void* const* token_blocks(const DeviceKvView& view, int64_t token) {
  return view.blocks + (view.token_tables != nullptr ? view.token_tables[token] : 0);
}

// Row `row` of kv head `kv_head`. 32-bit division (attention_supports() bounds the rows): the
// 64-bit one is a long subroutine, and it ran for every row.
template <typename T>
__device__ __forceinline__ T* kv_row(const DeviceKvView& view, void* const* blocks, int64_t row,
                                     int64_t kv_head) {
  const auto r = static_cast<uint32_t>(row);
  const auto block_rows = static_cast<uint32_t>(view.block_rows);
  const uint32_t block_index = r / block_rows;
  const uint32_t in_block = r - block_index * block_rows;
  auto* block = reinterpret_cast<T*>(static_cast<char*>(blocks[block_index]) + view.block_offset);
  return block + (int64_t{in_block} * view.kv_heads + kv_head) * view.head_dim;
}

// What block (split, kv head · head groups + head group, token) of a split launch works on.
// Shares are sized from the token's own length (so fixed launch shapes, as graph replay needs,
// still spread a short context over every split), in multiples of kRows.
struct BlockWork {  // 32-bit: rows within INT32_MAX (attention_supports()), tokens ≤ 65535
  int token;
  int kv_head;
  int first_head;  // the block's first query head
  int count;       // its query heads (≤ the kernel's kHeads)
  int limit;       // the token's rows
  int share;       // rows a split
  int active;      // splits with rows (split 0 always runs)
};

template <int kHeads, int kRows>
__device__ __forceinline__ BlockWork block_work(const SplitPlan& plan, const DeviceKvView& keys,
                                                const DeviceKvView& values,
                                                const int32_t* positions, int causal) {
  BlockWork w;
  w.token = static_cast<int>(blockIdx.z);
  w.kv_head = static_cast<int>(blockIdx.y / plan.head_groups);
  w.first_head =
      static_cast<int>(w.kv_head * plan.group + (blockIdx.y % plan.head_groups) * kMaxGroup);
  w.count = static_cast<int>(min_i64(kHeads, w.kv_head * plan.group + plan.group - w.first_head));
  int64_t limit = min_i64(keys.positions, values.positions);
  if (causal) limit = max_i64(0, min_i64(int64_t{positions[w.token]} + 1, limit));
  const int64_t share =
      ceil_div(max_i64(plan.min_rows, ceil_div(limit, plan.splits)), kRows) * kRows;
  w.limit = static_cast<int>(limit);
  w.share = static_cast<int>(share);
  w.active = static_cast<int>(max_i64(1, ceil_div(limit, share)));
  return w;
}

// A split past its token's rows, about to return: as a member of a cluster with work it still
// takes part in the cluster's two barriers (merge_and_store()).
__device__ __forceinline__ void idle_split(const SplitPlan& plan, int split, int active) {
#if POLYINFER_GPU_CLUSTERS
  if (plan.cluster > 1 && split / plan.cluster * plan.cluster < active) {
    cooperative_groups::this_cluster().sync();
    cooperative_groups::this_cluster().sync();
  }
#else
  (void)plan, (void)split, (void)active;
#endif
}

// Rows of `token`'s sequence below this were written by earlier steps, so a decode step may read
// them before pdl_wait(): the least position this call gives the sequence (its tokens sit
// together, at most kGemvMaxTokens of them).
__device__ __forceinline__ int64_t rows_ready(const DeviceKvView& keys, const int32_t* positions,
                                              int64_t token, int causal) {
  int64_t ready = causal ? int64_t{positions[token]} : 0;
  for (int64_t t = token - 1; causal && t >= 0 && t >= token - kGemvMaxTokens; --t) {
    if (keys.token_tables != nullptr && keys.token_tables[t] != keys.token_tables[token]) break;
    ready = min_i64(ready, positions[t]);
  }
  return ready;
}

// The block's warps wrote their softmax states to `state` ([head][part][m, l, acc…], kParts
// parts a head, the first `parts` of them written; then kHeads · kMaxSplits factors and kHeads own
// states of scratch): combines them per head, then merges the splits (through the cluster's shared
// memory, else the last block to arrive merges them from global memory) and writes the output, and
// its 8-bit blocks with `quantized`. Called by every thread of an active split after a barrier.
template <int kDim, int kHeads, int kParts, int kWarps>
__device__ __forceinline__ void merge_and_store(float* state, int parts, int count,
                                                const SplitPlan& plan, int64_t token,
                                                int64_t first_head, int split, int active,
                                                float* partials, int* arrivals, float* out,
                                                const QuantizedRows& quantized) {
  constexpr int kThreads = kWarps * kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  float* factors = state + kHeads * kParts * (kDim + 2);
  float* own = factors + kHeads * kMaxSplits;  // the block's (then the unit's) state per head
  // The block's parts combined, per head.
  for (int index = static_cast<int>(threadIdx.x); index < count * kDim; index += kThreads) {
    const int g = index / kDim;
    const int d = index % kDim;
    const float* from_parts = state + g * kParts * (kDim + 2);
    float m_all = -INFINITY;
#pragma unroll
    for (int r = 0; r < kParts; ++r) {
      if (r >= parts) POLYINFER_UNROLLED_EXIT;
      m_all = fmaxf(m_all, from_parts[r * (kDim + 2)]);
    }
    float sum = 0.0f;
    float weighted = 0.0f;
#pragma unroll
    for (int r = 0; r < kParts; ++r) {
      if (r >= parts) POLYINFER_UNROLLED_EXIT;
      const float* from = from_parts + r * (kDim + 2);
      const float factor = m_all == -INFINITY ? 0.0f : expf(from[0] - m_all);
      sum = fmaf(factor, from[1], sum);
      weighted = fmaf(factor, from[2 + d], weighted);
    }
    own[g * (kDim + 2) + 2 + d] = weighted;
    if (d == 0) {
      own[g * (kDim + 2)] = m_all;
      own[g * (kDim + 2) + 1] = sum;
    }
  }
  // Units of the merge: blocks, or clusters of plan.cluster blocks whose first block first
  // merges the others' states from their shared memory (no global memory, no arrival).
  constexpr int kPerThread = kHeads * kDim > kThreads ? kHeads * kDim / kThreads : 1;
  int units = active;
  int unit = split;
#if POLYINFER_GPU_CLUSTERS
  if (plan.cluster > 1) {
    namespace cg = cooperative_groups;
    const cg::cluster_group cluster = cg::this_cluster();
    const int rank = static_cast<int>(cluster.block_rank());
    units = static_cast<int>(ceil_div(active, plan.cluster));
    unit = split / plan.cluster;
    const int members = min(plan.cluster, active - unit * plan.cluster);
    cluster.sync();  // every member's `own` is written
    float merged[kPerThread][3];
    if (rank == 0) {
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
        const int index = static_cast<int>(threadIdx.x) + i * kThreads;
        const int g = index / kDim;
        const int d = index % kDim;
        if (index >= count * kDim) continue;
        // Every member's m, l and value requested at once: one round trip, not one a member.
        float m_r[kMaxCluster];
        float l_r[kMaxCluster];
        float v_r[kMaxCluster];
#pragma unroll
        for (int r = 0; r < kMaxCluster; ++r) {
          m_r[r] = -INFINITY;
          l_r[r] = 0.0f;
          v_r[r] = 0.0f;
          if (r < members) {
            const float* from = cluster.map_shared_rank(own + g * (kDim + 2), r);
            m_r[r] = from[0];
            l_r[r] = from[1];
            v_r[r] = from[2 + d];
          }
        }
        float m_all = -INFINITY;
#pragma unroll
        for (int r = 0; r < kMaxCluster; ++r) m_all = fmaxf(m_all, m_r[r]);
        float sum = 0.0f;
        float weighted = 0.0f;
#pragma unroll
        for (int r = 0; r < kMaxCluster; ++r) {
          const float factor = m_all == -INFINITY || r >= members ? 0.0f : expf(m_r[r] - m_all);
          sum = fmaf(factor, l_r[r], sum);
          weighted = fmaf(factor, v_r[r], weighted);
        }
        merged[i][0] = m_all;
        merged[i][1] = sum;
        merged[i][2] = weighted;
      }
    }
    cluster.sync();  // the first block has read every member's state
    if (rank != 0) return;
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int index = static_cast<int>(threadIdx.x) + i * kThreads;
      if (index >= count * kDim) continue;
      const int g = index / kDim;
      const int d = index % kDim;
      own[g * (kDim + 2) + 2 + d] = merged[i][2];
      if (d == 0) {
        own[g * (kDim + 2)] = merged[i][0];
        own[g * (kDim + 2) + 1] = merged[i][1];
      }
    }
  }
#endif
  __syncthreads();
  // A warp's 32 indices are 32 consecutive d of one head (kDim is a multiple of 32).
  for (int index = static_cast<int>(threadIdx.x); index < count * kDim; index += kThreads) {
    const int g = index / kDim;
    const int d = index % kDim;
    const float* mine = own + g * (kDim + 2);
    const int64_t head_index = token * plan.heads + first_head + g;
    if (units == 1) {
      const float result = mine[1] > 0.0f ? mine[2 + d] / mine[1] : 0.0f;
      out[head_index * kDim + d] = result;
      if (quantized.qs != nullptr)
        quantize_warp_block(result, quantized, head_index * kDim + d - d % 32);
    } else {
      float* to = partials + (head_index * plan.splits + unit) * (kDim + 2);
      to[2 + d] = mine[2 + d];
      if (d == 0) {
        to[0] = mine[0];
        to[1] = mine[1];
      }
    }
  }
  if (units == 1) return;
  if (!arrives_last(arrivals + token * gridDim.y + blockIdx.y, units)) return;
  // Per head: the units' max, each unit's factor exp(m_u − max) and the total l; then each
  // output sums its units' values. Coherent loads (other blocks wrote these during this
  // kernel), each round issued at once: the merge is two memory round trips, not one per
  // unit. The totals go where the states were.
  for (int g = warp; g < count; g += kWarps) {
    const float* states =
        partials + (token * plan.heads + first_head + g) * plan.splits * (kDim + 2);
    constexpr int kEach = kMaxSplits / kWarp;
    float m_split[kEach];
    float l_split[kEach];
    float m_max = -INFINITY;
#pragma unroll
    for (int i = 0; i < kEach; ++i) {
      const int s = lane + i * kWarp;
      m_split[i] = s < units ? load_coherent(states + s * (kDim + 2)) : -INFINITY;
      l_split[i] = s < units ? load_coherent(states + s * (kDim + 2) + 1) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kEach; ++i) m_max = fmaxf(m_max, m_split[i]);
    m_max = warp_max(m_max);
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kEach; ++i) {
      const int s = lane + i * kWarp;
      const float factor = m_max == -INFINITY ? 0.0f : expf(m_split[i] - m_max);
      if (s < units) factors[g * kMaxSplits + s] = factor;
      sum += factor * l_split[i];
    }
    sum = warp_sum(sum);
    if (lane == 0) state[g] = sum;
  }
  __syncthreads();
  // A thread's outputs: indices threadIdx.x + i·kThreads; kBatch units of each per round.
  constexpr int kBatch = kPerThread < 32 ? 32 / kPerThread : 1;
  float weighted[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) weighted[i] = 0.0f;
  for (int first = 0; first < units; first += kBatch) {
    float v[kPerThread][kBatch];
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int index = static_cast<int>(threadIdx.x) + i * kThreads;
      const int64_t head_index = token * plan.heads + first_head + index / kDim;
      const float* values_d = partials + head_index * plan.splits * (kDim + 2) + 2 + index % kDim;
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        v[i][j] = index < count * kDim && first + j < units
                      ? load_coherent(values_d + (first + j) * (kDim + 2))
                      : 0.0f;
      }
    }
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int index = static_cast<int>(threadIdx.x) + i * kThreads;
      if (index >= count * kDim) continue;
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        if (first + j < units) {
          weighted[i] = fmaf(factors[index / kDim * kMaxSplits + first + j], v[i][j], weighted[i]);
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int index = static_cast<int>(threadIdx.x) + i * kThreads;
    if (index >= count * kDim) continue;  // warp-uniform: count · kDim is a multiple of 32
    const int g = index / kDim;
    const int d = index % kDim;
    const int64_t head_index = token * plan.heads + first_head + g;
    const float sum = state[g];
    const float result = sum > 0.0f ? weighted[i] / sum : 0.0f;
    out[head_index * kDim + d] = result;
    if (quantized.qs != nullptr)
      quantize_warp_block(result, quantized, head_index * kDim + d - d % 32);
  }
}

}  // namespace polyinfer::inline v0::detail::gpu::attention_split
