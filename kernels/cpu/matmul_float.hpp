// SPDX-License-Identifier: Apache-2.0
// F32 / F16 / BF16 weight matmul bodies over the 16-row packed layouts (f32 products and sums),
// written once over the 16-lane operations of simd16_<isa>.hpp.
//
// Include only from an ISA translation unit, after its simd16 header; internal linkage (see
// matmul_kernel.hpp). Lane r of an accumulator is row r of a group: each column's 16 weights
// are one vector, multiplied by that column's activation broadcast, so there is no horizontal
// reduction and a weight vector serves T tokens and an activation G groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu/matmul_kernel.hpp"

namespace polyinfer::inline v0::detail {
namespace {

// Loaders: the 16 rows' weights of column c (kStep columns per call) of a packed group.
struct PackedF32 {
  static constexpr int kStep = 1;
  static constexpr int64_t kBytesPerColumn = kPackRows * 4;
  static int64_t group_bytes(int64_t cols) { return cols * kPackRows * 4; }
  static void load(const std::byte* group, int64_t c, VF* out) {
    out[0] = vf_load(reinterpret_cast<const float*>(group) + c * kPackRows);
  }
};

struct PackedF16 {
  static constexpr int kStep = 1;
  static constexpr int64_t kBytesPerColumn = kPackRows * 2;
  static int64_t group_bytes(int64_t cols) { return cols * kPackRows * 2; }
  static void load(const std::byte* group, int64_t c, VF* out) {
    out[0] = vf_from_half(reinterpret_cast<const uint16_t*>(group) + c * kPackRows);
  }
};

struct PackedBF16 {
  static constexpr int kStep = 2;
  static constexpr int64_t kBytesPerColumn = kPackRows * 2;
  static int64_t group_bytes(int64_t cols) { return (cols + 1) / 2 * kPackRows * 4; }
  static void load(const std::byte* group, int64_t c, VF* out) {
    vf_from_bf16_pairs(group + c * kPackRows * 2, &out[0], &out[1]);
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

// Rows of group g (of G starting at `row`) below row_end, 0..16.
inline int group_rows(int64_t row, int g, int64_t row_end) {
  const int64_t rest = row_end - row - int64_t{g} * kPackRows;
  return rest >= kPackRows ? kPackRows : rest > 0 ? static_cast<int>(rest) : 0;
}

// One column step (kStep columns) of a tile into accumulator chain `acc`.
template <typename W, int G, int T>
inline __attribute__((always_inline)) void float_x16_step(const std::byte* w, int64_t group_bytes,
                                                          int64_t c, const float* x,
                                                          int64_t x_stride, VF (&acc)[G][T]) {
  VF wv[G][W::kStep];
  for (int g = 0; g < G; ++g) {
    // Single tokens stream weights from DRAM: prefetch ~8 KiB ahead (one line per 64 bytes).
    if constexpr (T <= 2) {
      if ((c * W::kBytesPerColumn) % 64 == 0) {
        prefetch(w + g * group_bytes + c * W::kBytesPerColumn + 8192);
      }
    }
    W::load(w + g * group_bytes, c, wv[g]);
  }
  for (int j = 0; j < W::kStep; ++j) {
    for (int t = 0; t < T; ++t) {
      const VF xb = vf_set1(x[t * x_stride + c + j]);
      for (int g = 0; g < G; ++g) acc[g][t] = vf_fmadd(wv[g][j], xb, acc[g][t]);
    }
  }
}

// y[t][rows of G groups] (+)= Σ_{c ∈ [k0, k1)} W[r][c]·x[t][c] for T tokens; k0 and k1 are
// multiples of W::kStep, except k1 = cols at the end of an odd BF16 row.
template <typename W, int G, int T>
inline void float_x16_tile(const std::byte* w, int64_t group_bytes, int64_t k0, int64_t k1,
                           const float* x, int64_t x_stride, float* y, int64_t y_stride,
                           const int (&rows)[G], bool accumulate) {
  // Few accumulators: two chains over alternate column steps hide the FMA latency.
  constexpr int kChains = G * T >= 8 ? 1 : 2;
  VF acc[kChains][G][T];
  for (int h = 0; h < kChains; ++h) {
    for (int g = 0; g < G; ++g) {
      for (int t = 0; t < T; ++t) acc[h][g][t] = vf_zero();
    }
  }
  constexpr int64_t kStep = W::kStep;
  const int64_t steps = (k1 - k0) / kStep;
  int64_t c = k0;
  for (int64_t s = 0; s + kChains <= steps; s += kChains, c += kChains * kStep) {
    float_x16_step<W, G, T>(w, group_bytes, c, x, x_stride, acc[0]);
    if constexpr (kChains == 2)
      float_x16_step<W, G, T>(w, group_bytes, c + kStep, x, x_stride, acc[1]);
  }
  if (kChains == 2 && steps % 2 == 1) {
    float_x16_step<W, G, T>(w, group_bytes, c, x, x_stride, acc[0]);
    c += kStep;
  }
  if (c < k1) {
    // The last column of an odd BF16 row (its pair's second weight is padding).
    VF wv[G][kStep];
    for (int g = 0; g < G; ++g) W::load(w + g * group_bytes, c, wv[g]);
    for (int t = 0; t < T; ++t) {
      const VF xb = vf_set1(x[t * x_stride + c]);
      for (int g = 0; g < G; ++g) acc[0][g][t] = vf_fmadd(wv[g][0], xb, acc[0][g][t]);
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < T; ++t) {
      VF sum = acc[0][g][t];
      if constexpr (kChains == 2) sum = vf_add(sum, acc[1][g][t]);
      float* out = y + t * y_stride + g * kPackRows;
      if (rows[g] == kPackRows) {
        vf_store(out, accumulate ? vf_add(sum, vf_load(out)) : sum);
      } else if (rows[g] > 0) {
        vf_store_n(out, accumulate ? vf_add(sum, vf_load_n(out, rows[g])) : sum, rows[g]);
      }
    }
  }
}

// Columns per chunk for batches: the chunk of a token tile's activations and of a pair of
// groups' weights stay in L1 / L2 while the tile runs over them (partial sums go through y).
constexpr int64_t kFloatChunk = 1024;

template <typename W, int G, int T>
void float_x16_groups(const MatmulCall& call, int64_t row, int64_t row_end, int64_t k0, int64_t k1,
                      int64_t token_begin, int64_t token_end) {
  const int64_t group_bytes = W::group_bytes(call.cols);
  const std::byte* w = call.packed + row / kPackRows * group_bytes;
  int rows[G];
  for (int g = 0; g < G; ++g) rows[g] = group_rows(row, g, row_end);
  for_tiles<T>(token_begin, token_end, [&](int64_t t0, auto tokens) {
    constexpr int kTokens = decltype(tokens)::value;
    float_x16_tile<W, G, kTokens>(w, group_bytes, k0, k1, call.x + t0 * call.x_stride,
                                  call.x_stride, call.y + t0 * call.y_stride + row, call.y_stride,
                                  rows, k0 > 0);
  });
}

// Rows [row, row_end) in tiles of G groups; the last groups run as a smaller tile (the packed
// buffer ends there).
template <typename W, int G, int T>
void float_x16_rows(const MatmulCall& call, int64_t row, int64_t row_end, int64_t k0, int64_t k1,
                    int64_t token_begin, int64_t token_end) {
  for (; row + (G - 1) * kPackRows < row_end; row += G * kPackRows) {
    float_x16_groups<W, G, T>(call, row, row_end, k0, k1, token_begin, token_end);
  }
  if constexpr (G > 1) {
    if (row < row_end)
      float_x16_rows<W, G - 1, T>(call, row, row_end, k0, k1, token_begin, token_end);
  }
}

// G groups of 16 rows × T tokens per tile. Each column loads G weight vectors and T broadcast
// activations for G·T FMAs: G = 4, T = 6 keeps AVX-512 at its FMA peak (G = 2, T = 8 is
// load-bound at ~88 %).
template <typename W, int G, int T>
void compute_float_x16(const MatmulCall& call, int64_t row_begin, int64_t row_end,
                       int64_t token_begin, int64_t token_end) {
  const bool batch = token_end - token_begin >= 4;
  const int64_t chunk = batch ? kFloatChunk : call.cols;
  for (int64_t k0 = 0; k0 < call.cols; k0 += chunk) {
    const int64_t k1 = call.cols - k0 < chunk ? call.cols : k0 + chunk;
    if constexpr (G > 2) {
      if (!batch) {  // a few tokens stream weights from DRAM: two groups (streams) per tile
        float_x16_rows<W, 2, T>(call, row_begin, row_end, k0, k1, token_begin, token_end);
        continue;
      }
    }
    float_x16_rows<W, G, T>(call, row_begin, row_end, k0, k1, token_begin, token_end);
  }
}

}  // namespace
}  // namespace polyinfer::inline v0::detail
