// SPDX-License-Identifier: Apache-2.0
// The GEMV kernel every weight format shares (warps over rows, 16-byte chunks per lane), and
// the table of launch shapes compiled for it.
#pragma once

#include <cstdint>

#include "kernels/cuda/gemv.cuh"

namespace polyinfer::inline v0::detail::gpu {

inline constexpr int kGemvMaxWarps = 8;

/// y[t][r] = Σ_k Format::dot(chunk k of row r, activations of token t for chunk k).
/// Each warp owns kRows consecutive weight rows; lane l takes chunks l, l + 32, …; each step
/// loads kUnroll chunks of every row before using any, so kRows·kUnroll 16-byte loads per lane
/// are in flight, and the activations loaded for a chunk serve all kRows rows. The first chunks
/// are loaded before pdl_wait() (only the activations come from the previous kernel): launched
/// early, a GEMV streams its weights while the kernels before it (norms, attention) still run;
/// with kRows·kUnroll·32 chunks covering a 4096-column Q4_0 row pair, all of them. (Asking L2
/// for every row of the warp up front with a bulk prefetch measured slower: 377 vs 401 tok/s.)
template <class Format, int kTokens, int kRows, int kUnroll>
__global__ void __launch_bounds__(kGemvMaxWarps* kWarp)
    gemv_kernel(WeightsView w, ActivationsView x, float* y, int64_t y_stride) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t warp = int64_t{blockIdx.x} * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  const int64_t first_row = warp * kRows;
  pdl_launch_dependents();
  if (first_row >= w.rows) return;
  int64_t row[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) row[r] = first_row + r < w.rows ? first_row + r : w.rows - 1;
  float acc[kRows][kTokens];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int t = 0; t < kTokens; ++t) acc[r][t] = 0.0f;
  }
  bool waiting = true;
  for (int64_t base = lane; base < w.chunks; base += int64_t{kWarp} * kUnroll) {
    typename Format::Chunk chunk[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t k = base + u * kWarp;
      if (k < w.chunks) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) chunk[u][r] = Format::load(w, row[r], k);
      }
    }
    if (waiting) {
      pdl_wait();
      waiting = false;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t k = base + u * kWarp;
      if (k < w.chunks) {
#pragma unroll
        for (int t = 0; t < kTokens; ++t) {
          const typename Format::Activation a = Format::load_x(x, t, k);
#pragma unroll
          for (int r = 0; r < kRows; ++r) acc[r][t] += Format::dot(chunk[u][r], a, k);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      const float sum = warp_sum(acc[r][t]);
      if (lane == 0 && first_row + r < w.rows) y[t * y_stride + first_row + r] = sum;
    }
  }
}

using GemvKernel = void (*)(WeightsView, ActivationsView, float*, int64_t);

template <class Format, int kTokens, int kRows, int kUnroll>
constexpr GemvKernel gemv_entry() {
  return &gemv_kernel<Format, kTokens, kRows, kUnroll>;
}

template <class Format, int kTokens>
constexpr GemvKernel multi_token_entry() {
  return gemv_entry<Format, kTokens, kMultiTokenShapes[kTokens].rows_per_warp,
                    kMultiTokenShapes[kTokens].unroll>();
}

/// The compiled kernel for `tokens` and `config`, or null. One token: (rows per warp, unroll) of
/// (1, 2), (1, 4), (1, 8), (2, 2), (2, 4), (4, 2); 2..8 tokens: kMultiTokenShapes.
template <class Format>
GemvKernel pick_gemv(int tokens, const GemvConfig& config) noexcept {
  const int rows = config.rows_per_warp;
  const int unroll = config.unroll;
  if (tokens == 1) {
    if (rows == 1 && unroll == 2) return gemv_entry<Format, 1, 1, 2>();
    if (rows == 1 && unroll == 4) return gemv_entry<Format, 1, 1, 4>();
    if (rows == 1 && unroll == 8) return gemv_entry<Format, 1, 1, 8>();
    if (rows == 2 && unroll == 2) return gemv_entry<Format, 1, 2, 2>();
    if (rows == 2 && unroll == 4) return gemv_entry<Format, 1, 2, 4>();
    if (rows == 4 && unroll == 2) return gemv_entry<Format, 1, 4, 2>();
    return nullptr;
  }
  if (tokens < 2 || tokens > kGemvMaxTokens) return nullptr;
  const GemvShape shape = kMultiTokenShapes[tokens];
  if (rows != shape.rows_per_warp || unroll != shape.unroll) return nullptr;
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
  if (kernel == nullptr || warps < 1 || warps > kGemvMaxWarps) return Status::kUnsupported;
  const int64_t blocks = ceil_div(w.rows, int64_t{config.rows_per_warp} * warps);
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
