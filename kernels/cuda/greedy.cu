// SPDX-License-Identifier: Apache-2.0
// greedy_rows(): the argmax and its log-softmax of each logits row, on the device, so greedy
// decoding copies 8 bytes per sequence instead of the vocabulary's logits.
#include <cfloat>

#include "kernels/cuda/cuda_common.cuh"

#if !POLYINFER_GPU_HIP && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#include <cooperative_groups.h>
#define POLYINFER_GPU_GREEDY_CLUSTERS 1
#else
#define POLYINFER_GPU_GREEDY_CLUSTERS 0
#endif

namespace polyinfer::inline v0::detail::gpu {
namespace {

constexpr int kThreads = 1024;

// A running (max, argmax, Σ exp(v − max)) over some of a row's values.
struct Partial {
  float max;
  int id;
  float sum;
};

__device__ __forceinline__ Partial merge(Partial a, Partial b) {
  if (b.sum == 0.0f) return a;  // b saw no finite value
  if (a.sum == 0.0f) return b;
  if (b.max > a.max || (b.max == a.max && b.id < a.id)) {
    const Partial t = a;
    a = b;
    b = t;
  }
  // a holds the larger maximum (the lower id on ties).
  a.sum += b.sum * expf(b.max - a.max);
  return a;
}

// kCluster blocks per row (a thread-block cluster: the first block merges the others' totals
// from their shared memory), or one block per row (kCluster 1: HIP, before Hopper). A block
// takes a contiguous share of the row, so with 8 blocks a 128256-entry row is two rounds of
// loads per thread instead of sixteen. Values that are not finite-or-−inf (NaN) never win, as
// on the CPU; −inf values add nothing.
template <int kCluster>
__global__ void __launch_bounds__(kThreads)
    greedy_kernel(const float* logits, int64_t vocab, GreedyPick* out) {
  pdl_begin();
  const int64_t row_index = blockIdx.x / kCluster;
  const int rank = static_cast<int>(blockIdx.x % kCluster);
  const float* row = logits + row_index * vocab;
  const int64_t begin = vocab * rank / kCluster;
  const int64_t end = vocab * (rank + 1) / kCluster;
  Partial p{-FLT_MAX, INT_MAX, 0.0f};
  // Eight values at a time: their maximum (the first of equal ones), then one rescale.
  constexpr int kUnroll = 8;
  for (int64_t base = begin + threadIdx.x; base < end; base += int64_t{kThreads} * kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + int64_t{u} * kThreads;
      v[u] = i < end ? row[i] : -INFINITY;
    }
    float group_max = p.sum == 0.0f ? -INFINITY : p.max;
    int group_id = p.id;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (v[u] > group_max) {  // i grows: an equal value later never has a lower id
        group_max = v[u];
        group_id = static_cast<int>(base + int64_t{u} * kThreads);
      }
    }
    if (!(group_max > -INFINITY)) continue;  // −inf and NaN add nothing
    float sum = p.sum > 0.0f ? p.sum * expf(p.max - group_max) : 0.0f;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) sum += v[u] > -INFINITY ? expf(v[u] - group_max) : 0.0f;
    p = Partial{group_max, group_id, sum};
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    Partial other;
    other.max = shfl_xor(p.max, offset);
    other.id = shfl_xor(p.id, offset);
    other.sum = shfl_xor(p.sum, offset);
    p = merge(p, other);
  }
  __shared__ Partial warps[kThreads / kWarp];
  __shared__ Partial block_total;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  if (lane == 0) warps[warp] = p;
  __syncthreads();
  Partial total = warps[0];
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / kWarp; ++w) total = merge(total, warps[w]);
    block_total = total;
  }
#if POLYINFER_GPU_GREEDY_CLUSTERS
  if constexpr (kCluster > 1) {
    namespace cg = cooperative_groups;
    const cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();  // every member's total is written
    if (rank == 0 && threadIdx.x == 0) {
      total = block_total;
      for (int r = 1; r < kCluster; ++r)
        total = merge(total, *cluster.map_shared_rank(&block_total, r));
    }
    cluster.sync();  // the first block has read every member's total
  }
#else
  // Code built for an architecture without clusters running on one that has them (the host
  // checks the device, not the build): fail loudly rather than pick from one share of the row.
  if constexpr (kCluster > 1) __builtin_trap();
#endif
  if (rank != 0 || threadIdx.x != 0) return;
  GreedyPick pick;
  pick.id = total.sum == 0.0f ? 0 : total.id;  // a row without a finite logit: id 0, as the CPU
  pick.logprob = total.sum == 0.0f ? -INFINITY : -logf(total.sum);
  out[row_index] = pick;
}

}  // namespace

Status greedy_rows(const float* logits, int64_t rows, int64_t vocab, GreedyPick* out,
                   Stream stream) noexcept {
  if (logits == nullptr || out == nullptr || rows < 0 || vocab < 1 || rows > INT32_MAX ||
      vocab > INT32_MAX) {
    return Status::kInvalidArgument;
  }
  if (rows == 0) return Status::kOk;
  // Hopper: a cluster of 8 blocks per row (batch-1 decode on an H200: the pick took 23 µs of
  // a 1.9 ms step with one block).
  constexpr int kCluster = 8;
  if (current_device_traits().clusters && rows * kCluster <= INT32_MAX) {
    return launch_in_clusters(&greedy_kernel<kCluster>,
                              dim3(static_cast<unsigned>(rows * kCluster)), dim3(kThreads), 0,
                              stream, true, static_cast<unsigned>(kCluster), logits, vocab, out);
  }
  return launch(&greedy_kernel<1>, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream,
                true, logits, vocab, out);
}

}  // namespace polyinfer::inline v0::detail::gpu
