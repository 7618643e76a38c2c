// SPDX-License-Identifier: Apache-2.0
// F32 / F16 / BF16 weight matmul bodies (f32 products and sums), written once over the 16-lane
// operations of simd16_<isa>.hpp.
//
// Include only from an ISA translation unit, after its simd16 header; internal linkage (see
// matmul_kernel.hpp). A tile of R rows × T tokens keeps R·T accumulators of 16 columns each
// and reduces them at the end of a column chunk: every weight vector is loaded (and converted)
// once per T tokens, every activation vector once per R rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/matmul_kernel.hpp"

namespace polyinfer::inline v0::detail {
namespace {

struct WeightsF32 {
  static VF load(const std::byte* row, int64_t c) {
    return vf_load(reinterpret_cast<const float*>(row) + c);
  }
  static VF load_n(const std::byte* row, int64_t c, int n) {
    return vf_load_n(reinterpret_cast<const float*>(row) + c, n);
  }
};

struct WeightsF16 {
  static VF load(const std::byte* row, int64_t c) {
    return vf_from_half(reinterpret_cast<const uint16_t*>(row) + c);
  }
  static VF load_n(const std::byte* row, int64_t c, int n) {
    uint16_t tmp[16] = {};
    std::memcpy(tmp, reinterpret_cast<const uint16_t*>(row) + c, static_cast<size_t>(n) * 2);
    return vf_from_half(tmp);
  }
};

struct WeightsBF16 {
  static VF load(const std::byte* row, int64_t c) {
    return vf_from_bf16(reinterpret_cast<const uint16_t*>(row) + c);
  }
  static VF load_n(const std::byte* row, int64_t c, int n) {
    uint16_t tmp[16] = {};
    std::memcpy(tmp, reinterpret_cast<const uint16_t*>(row) + c, static_cast<size_t>(n) * 2);
    return vf_from_bf16(tmp);
  }
};

template <int N, typename F>
inline void tile_tail(int rest, int64_t i, F& f) {
  if constexpr (N >= 1) {
    if (rest == N) {
      f(i, std::integral_constant<int, N>{});
    } else {
      tile_tail<N - 1>(rest, i, f);
    }
  }
}

// Calls f(i, integral_constant<N>) over [begin, end) in tiles of kMax, then one smaller tile.
template <int kMax, typename F>
inline void for_tiles(int64_t begin, int64_t end, F&& f) {
  int64_t i = begin;
  for (; i + kMax <= end; i += kMax) f(i, std::integral_constant<int, kMax>{});
  if (i < end) tile_tail<kMax - 1>(static_cast<int>(end - i), i, f);
}

// y[t][r] (+)= Σ_{c ∈ [k0, k1)} W[r][c]·x[t][c] for R rows and T tokens.
template <typename W, int R, int T>
inline void float_tile(const std::byte* w, int64_t row_bytes, const float* x, int64_t x_stride,
                       int64_t k0, int64_t k1, float* y, int64_t y_stride, bool accumulate) {
  VF acc[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) acc[r][t] = vf_zero();
  }
  int64_t c = k0;
  for (; c + 16 <= k1; c += 16) {
    VF xv[T];
    for (int t = 0; t < T; ++t) xv[t] = vf_load(x + t * x_stride + c);
    for (int r = 0; r < R; ++r) {
      const VF wv = W::load(w + r * row_bytes, c);
      for (int t = 0; t < T; ++t) acc[r][t] = vf_fmadd(wv, xv[t], acc[r][t]);
    }
  }
  if (c < k1) {
    const int n = static_cast<int>(k1 - c);
    VF xv[T];
    for (int t = 0; t < T; ++t) xv[t] = vf_load_n(x + t * x_stride + c, n);
    for (int r = 0; r < R; ++r) {
      const VF wv = W::load_n(w + r * row_bytes, c, n);
      for (int t = 0; t < T; ++t) acc[r][t] = vf_fmadd(wv, xv[t], acc[r][t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    for (int r = 0; r < R; ++r) {
      const float sum = vf_reduce(acc[r][t]);
      float& out = y[t * y_stride + r];
      out = accumulate ? out + sum : sum;
    }
  }
}

// Columns per chunk: R + T rows of a chunk stay in L1/L2 while a tile runs over them, and
// the reduction at the end of a chunk costs little against 4096 multiply-adds per lane pair.
constexpr int64_t kFloatChunk = 4096;

template <typename W, int R, int T>
void compute_float(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                   int64_t token_begin, int64_t token_end) {
  for (int64_t k0 = 0; k0 < call.cols; k0 += kFloatChunk) {
    const int64_t k1 = call.cols - k0 < kFloatChunk ? call.cols : k0 + kFloatChunk;
    const bool accumulate = k0 > 0;
    for_tiles<R>(row_begin, row_end, [&](int64_t r0, auto rows) {
      constexpr int kRows = decltype(rows)::value;
      for_tiles<T>(token_begin, token_end, [&](int64_t t0, auto tokens) {
        constexpr int kTokens = decltype(tokens)::value;
        float_tile<W, kRows, kTokens>(call.weights + r0 * call.row_bytes, call.row_bytes,
                                      call.x + t0 * call.x_stride, call.x_stride, k0, k1,
                                      call.y + t0 * call.y_stride + r0, call.y_stride, accumulate);
      });
    });
  }
}

}  // namespace
}  // namespace polyinfer::inline v0::detail
