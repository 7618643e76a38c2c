// SPDX-License-Identifier: Apache-2.0
// The GEMV kernel every weight format shares (warps over rows, 16-byte chunks per lane), and
// the table of launch shapes compiled for it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {

inline constexpr int kGemvMaxWarps = 8;

/// Loads chunk base + u·stride of every row into chunks[u][r] (u < kUnroll), past the row
/// end left unset.
template <class Format, int kRows, int kUnroll>
__device__ __forceinline__ void load_chunks(const WeightsView& w, const int64_t (&row)[kRows],
                                            int64_t base, int64_t stride,
                                            typename Format::Chunk (&chunks)[kUnroll][kRows]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int64_t k = base + u * stride;
    if (k < w.chunks) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) chunks[u][r] = Format::load(w, row[r], k);
    }
  }
}

/// acc[r][t] += the dot products of the chunks load_chunks() gave for `base`.
template <class Format, int kTokens, int kRows, int kUnroll>
__device__ __forceinline__ void dot_chunks(const WeightsView& w, const ActivationsView& x,
                                           int64_t base, int64_t stride,
                                           const typename Format::Chunk (&chunks)[kUnroll][kRows],
                                           float (&acc)[kRows][kTokens]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int64_t k = base + u * stride;
    if (k < w.chunks) {
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        const typename Format::Activation a = Format::load_x(x, t, k);
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[r][t] += Format::dot(chunks[u][r], a, k);
      }
    }
  }
}

/// y[t][r] = Σ_k Format::dot(chunk k of row r, activations of token t for chunk k).
/// Each group of kSplits warps owns kRows consecutive weight rows; lane l of split s takes
/// chunks 32s + l, 32s + l + 32·kSplits, …; each step loads kUnroll chunks of every row before
/// using any, so kRows·kUnroll 16-byte loads per lane are in flight, and the activations loaded
/// for a chunk serve all kRows rows. Splitting long rows over several warps (summed through
/// shared memory) gives more, smaller work items, so the last wave of a matrix with few rows
/// does not leave SMs idle. The first chunks are loaded before pdl_wait() (only the activations
/// come from the previous kernel): launched early, a GEMV streams its weights while the kernels
/// before it (norms, attention) still run; with kRows·kUnroll·32 chunks covering a 4096-column
/// Q4_0 row pair, all of them. Tried and slower: asking L2 for every row of the warp up front
/// with a bulk prefetch (377 vs 401 tok/s); issuing each step's loads before using the previous
/// step's chunks (Q4_0 8192×28672: 74.8 % of streaming against 80.1 %).
template <class Format, int kTokens, int kRows, int kUnroll, int kSplits>
__global__ void __launch_bounds__(kGemvMaxWarps* kWarp)
    gemv_kernel(WeightsView w, ActivationsView x, float* y, int64_t y_stride) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int warp_in_block = static_cast<int>(threadIdx.x) / kWarp;
  const int split = warp_in_block % kSplits;
  const int64_t group = (int64_t{blockIdx.x} * (blockDim.x / kWarp) + warp_in_block) / kSplits;
  const int64_t first_row = group * kRows;
  pdl_launch_dependents();
  // A split warp past the last row still reaches the __syncthreads() below.
  if (kSplits == 1 && first_row >= w.rows) return;
  int64_t row[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) row[r] = first_row + r < w.rows ? first_row + r : w.rows - 1;
  float acc[kRows][kTokens];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int t = 0; t < kTokens; ++t) acc[r][t] = 0.0f;
  }
  constexpr int64_t kStride = int64_t{kWarp} * kSplits;
  constexpr int64_t kStep = kStride * kUnroll;
  const int64_t start = split * kWarp + lane;
  bool waiting = true;
  for (int64_t base = start; base < w.chunks; base += kStep) {
    typename Format::Chunk chunks[kUnroll][kRows];
    load_chunks<Format, kRows, kUnroll>(w, row, base, kStride, chunks);
    if (waiting) {
      pdl_wait();
      waiting = false;
    }
    dot_chunks<Format, kTokens, kRows, kUnroll>(w, x, base, kStride, chunks, acc);
  }
  if constexpr (kSplits == 1) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        const float sum = warp_sum(acc[r][t]);
        if (lane == 0 && first_row + r < w.rows) y[t * y_stride + first_row + r] = sum;
      }
    }
  } else {
    __shared__ float partial[kGemvMaxWarps][kRows][kTokens];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        const float sum = warp_sum(acc[r][t]);
        if (lane == 0) partial[warp_in_block][r][t] = sum;
      }
    }
    __syncthreads();
    // Lane r·kTokens + t of the group's first warp adds the splits of row r, token t.
    if (split == 0 && lane < kRows * kTokens) {
      const int r = lane / kTokens;
      const int t = lane % kTokens;
      float sum = 0.0f;
#pragma unroll
      for (int s = 0; s < kSplits; ++s) sum += partial[warp_in_block + s][r][t];
      if (first_row + r < w.rows) y[t * y_stride + first_row + r] = sum;
    }
  }
}

using GemvKernel = void (*)(WeightsView, ActivationsView, float*, int64_t);

template <class Format, int kTokens, int kRows, int kUnroll, int kSplits = 1>
constexpr GemvKernel gemv_entry() {
  return &gemv_kernel<Format, kTokens, kRows, kUnroll, kSplits>;
}

template <class Format, int kTokens>
constexpr GemvKernel multi_token_entry() {
  return gemv_entry<Format, kTokens, kMultiTokenShapes[kTokens].rows_per_warp,
                    kMultiTokenShapes[kTokens].unroll>();
}

/// The compiled kernel for `tokens` and `config`, or null. One token: (rows per warp, unroll,
/// splits) of (1, 2, 1), (1, 4, 1), (1, 8, 1), (2, 2, 1), (2, 4, 1), (4, 2, 1), (1, 8, 2),
/// (2, 2, 2), (2, 2, 4), (2, 4, 2); 2..8 tokens: kMultiTokenShapes, unsplit.
template <class Format>
GemvKernel pick_gemv(int tokens, const GemvConfig& config) noexcept {
  const int rows = config.rows_per_warp;
  const int unroll = config.unroll;
  const int splits = std::max(config.splits, 1);
  if (tokens == 1) {
    if (splits == 1) {
      if (rows == 1 && unroll == 2) return gemv_entry<Format, 1, 1, 2>();
      if (rows == 1 && unroll == 4) return gemv_entry<Format, 1, 1, 4>();
      if (rows == 1 && unroll == 8) return gemv_entry<Format, 1, 1, 8>();
      if (rows == 2 && unroll == 2) return gemv_entry<Format, 1, 2, 2>();
      if (rows == 2 && unroll == 4) return gemv_entry<Format, 1, 2, 4>();
      if (rows == 4 && unroll == 2) return gemv_entry<Format, 1, 4, 2>();
    } else if (splits == 2) {
      if (rows == 1 && unroll == 8) return gemv_entry<Format, 1, 1, 8, 2>();
      if (rows == 2 && unroll == 2) return gemv_entry<Format, 1, 2, 2, 2>();
      if (rows == 2 && unroll == 4) return gemv_entry<Format, 1, 2, 4, 2>();
    } else if (splits == 4) {
      if (rows == 2 && unroll == 2) return gemv_entry<Format, 1, 2, 2, 4>();
    }
    return nullptr;
  }
  if (tokens < 2 || tokens > kGemvMaxTokens) return nullptr;
  const GemvShape shape = kMultiTokenShapes[tokens];
  if (rows != shape.rows_per_warp || unroll != shape.unroll || splits != 1) return nullptr;
  switch (tokens) {
    case 2:
      return multi_token_entry<Format, 2>();
    case 3:
      return multi_token_entry<Format, 3>();
    case 4:
      return multi_token_entry<Format, 4>();
    case 5:
      return multi_token_entry<Format, 5>();
    case 6:
      return multi_token_entry<Format, 6>();
    case 7:
      return multi_token_entry<Format, 7>();
    default:
      return multi_token_entry<Format, 8>();
  }
}

/// Launches Format's GEMV for `tokens` activation rows with `config`.
template <class Format>
Status dispatch_gemv(const WeightsView& w, const ActivationsView& x, int tokens, float* y,
                     int64_t y_stride, const GemvConfig& config, Stream stream,
                     bool programmatic) noexcept {
  const GemvKernel kernel = pick_gemv<Format>(tokens, config);
  const int warps = config.warps_per_block;
  const int splits = std::max(config.splits, 1);
  if (kernel == nullptr || warps < 1 || warps > kGemvMaxWarps || warps % splits != 0) {
    return Status::kUnsupported;
  }
  const int64_t blocks = ceil_div(w.rows, int64_t{config.rows_per_warp} * (warps / splits));
  return launch(kernel, dim3(static_cast<unsigned>(blocks)),
                dim3(static_cast<unsigned>(warps * kWarp)), 0, stream, programmatic, w, x, y,
                y_stride);
}

/// An activation load: an ordinary (coherent) load, never the read-only path (__ldg,
/// ld.global.nc). Activations come from the kernel before, which with programmatic launch may
/// still be writing them while this one starts: the read-only path assumes data unchanged for
/// the kernel's whole life, and the compiler may move such loads above pdl_wait() (seen: wrong
/// logits under PDL until these loads were made ordinary).
template <typename T>
__device__ __forceinline__ T load_activation(const T* p) {
  return *p;
}

/// 16 activation quants.
__device__ __forceinline__ int4 load_x16(const int8_t* p) {
  return load_activation(reinterpret_cast<const int4*>(p));
}

}  // namespace polyinfer::inline v0::detail::gpu
